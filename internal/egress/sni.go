package egress

import (
	"encoding/binary"
	"errors"
	"strings"
)

// errIncomplete means the bytes so far are a valid beginning: read more.
var errIncomplete = errors.New("incomplete")

// errNotHello means the bytes are not a TLS ClientHello (or a malformed one).
var errNotHello = errors.New("not a TLS ClientHello")

// maxHello bounds the handshake message the proxy reassembles (a ClientHello with
// post-quantum key shares is ~2 KiB; 16 KiB is a TLS record's maximum).
const maxHello = 16 << 10

// clientHelloSNI returns the server name of the TLS ClientHello at the start of b, "" when
// the hello has none. It reassembles a hello split over several handshake records.
// errIncomplete asks for more bytes; any other error means b is not a ClientHello.
func clientHelloSNI(b []byte) (string, error) {
	var hs []byte // the handshake bytes gathered from the records so far
	for len(b) > 0 {
		if len(b) < 5 {
			return "", errIncomplete
		}
		if b[0] != 0x16 || b[1] != 3 { // handshake record, TLS major version 3
			return "", errNotHello
		}
		n := int(binary.BigEndian.Uint16(b[3:5]))
		if n == 0 || n > 1<<14 {
			return "", errNotHello
		}
		rec := b[5:]
		if len(rec) > n {
			rec = rec[:n]
		}
		hs = append(hs, rec...)
		b = b[5+len(rec):]
		if err := helloHeader(hs); err != nil {
			return "", err
		}
		if len(hs) >= 4 {
			if end := 4 + u24(hs[1:4]); len(hs) >= end {
				return helloServerName(hs[4:end])
			}
		}
	}
	return "", errIncomplete
}

func u24(b []byte) int { return int(b[0])<<16 | int(b[1])<<8 | int(b[2]) }

// helloHeader checks the handshake header in hs as far as it goes.
func helloHeader(hs []byte) error {
	if len(hs) >= 1 && hs[0] != 1 { // client_hello
		return errNotHello
	}
	if len(hs) < 4 {
		return nil
	}
	if n := u24(hs[1:4]); n > maxHello || n < 38 {
		return errNotHello
	}
	return nil
}

// reader walks length-prefixed fields; any overrun sets bad.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n > len(r.b) || n < 0 {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() int {
	v := r.take(1)
	if v == nil {
		return 0
	}
	return int(v[0])
}

func (r *reader) u16() int {
	v := r.take(2)
	if v == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(v))
}

// helloServerName parses a ClientHello body (RFC 8446 4.1.2) for the server_name
// extension (RFC 6066 3).
func helloServerName(body []byte) (string, error) {
	r := &reader{b: body}
	r.take(2 + 32)  // legacy_version, random
	r.take(r.u8())  // legacy_session_id
	r.take(r.u16()) // cipher_suites
	r.take(r.u8())  // legacy_compression_methods
	if r.bad {
		return "", errNotHello
	}
	if len(r.b) == 0 {
		return "", nil // no extensions at all (a pre-TLS 1.2 client)
	}
	exts := &reader{b: r.take(r.u16())}
	if r.bad {
		return "", errNotHello
	}
	for len(exts.b) > 0 {
		typ := exts.u16()
		data := exts.take(exts.u16())
		if exts.bad {
			return "", errNotHello
		}
		if typ != 0 {
			continue
		}
		list := &reader{b: data}
		names := &reader{b: list.take(list.u16())}
		for len(names.b) > 0 && !names.bad {
			kind := names.u8()
			name := names.take(names.u16())
			if names.bad {
				break
			}
			if kind == 0 { // host_name
				n, ok := normalName(string(name))
				if !ok {
					return "", errNotHello
				}
				return n, nil
			}
		}
		return "", errNotHello
	}
	return "", nil
}

// normalName lower-cases a DNS name, drops one trailing dot, and checks that it is a
// host name: labels of 1-63 letters, digits, '-' or '_', 253 characters at most.
func normalName(s string) (string, bool) {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if s == "" || len(s) > 253 {
		return "", false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return s, true
}
