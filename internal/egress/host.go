package egress

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
)

// errNotHTTP means the bytes do not start an HTTP/1 request.
var errNotHTTP = errors.New("not an HTTP/1 request")

// maxHead bounds the request head the proxy reads looking for Host.
const maxHead = 16 << 10

// httpMethods are the request methods the proxy recognises from the first bytes.
var httpMethods = []string{"GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "}

// looksHTTP tells whether b can be the start of an HTTP/1 request line.
func looksHTTP(b []byte) bool {
	for _, m := range httpMethods {
		n := min(len(b), len(m))
		if n > 0 && string(b[:n]) == m[:n] {
			return true
		}
	}
	return false
}

// httpHost returns the host (no port) named by the Host header of the HTTP/1 request
// head at the start of b, "" when there is none or it is an IP literal. errIncomplete
// asks for more bytes; errNotHTTP means b is not a request.
func httpHost(b []byte) (string, error) {
	if !looksHTTP(b) {
		return "", errNotHTTP
	}
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) >= maxHead {
			return "", errNotHTTP
		}
		return "", errIncomplete
	}
	lines := strings.Split(string(b[:end]), "\r\n")
	if f := strings.Fields(lines[0]); len(f) != 3 || !strings.HasPrefix(f[2], "HTTP/1.") {
		return "", errNotHTTP
	}
	for _, line := range lines[1:] {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "host") {
			continue
		}
		return hostName(strings.TrimSpace(v))
	}
	return "", nil
}

// hostName takes the name out of a Host header value ("example.com:8080", "[::1]:80").
func hostName(v string) (string, error) {
	if strings.HasPrefix(v, "[") { // IPv6 literal
		return "", nil
	}
	if h, port, ok := strings.Cut(v, ":"); ok {
		for _, c := range port {
			if c < '0' || c > '9' {
				return "", errNotHTTP
			}
		}
		v = h
	}
	if _, err := netip.ParseAddr(v); err == nil {
		return "", nil
	}
	n, ok := normalName(v)
	if !ok {
		return "", errNotHTTP
	}
	return n, nil
}
