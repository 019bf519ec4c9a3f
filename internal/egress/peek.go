package egress

import (
	"errors"
	"io"
	"net"
	"os"
	"time"
)

// Kinds of decision, the "kind" label of warren_egress_decisions_total.
const (
	KindSNI  = "sni"  // by the TLS ClientHello's server name
	KindHost = "host" // by the HTTP/1 Host header
	KindCIDR = "cidr" // by the destination address alone (no name seen)
	KindDNS  = "dns"  // a DNS query
)

// peekTimes bounds how long the proxy waits for a client to name its destination.
type peekTimes struct {
	// First is the wait for the first byte: a client of a server-speaks-first protocol
	// (SSH, SMTP) sends nothing, and is then decided by address alone.
	First time.Duration
	// Total is the wait for a whole ClientHello or request head once bytes came.
	Total time.Duration
}

// peek reads the first bytes the client sends, at most maxHello+5 or maxHead of them
// (whichever applies) and for at most t.Total, and returns them together with the
// server name they carry and the kind of that name. With no name found, kind is
// KindCIDR. The bytes read must be replayed to the destination. A read error other
// than a timeout is returned (the client went away).
func peek(c net.Conn, t peekTimes) (prefix []byte, name, kind string, err error) {
	buf := make([]byte, 0, 4096)
	start := time.Now()
	defer c.SetReadDeadline(time.Time{})
	_ = c.SetReadDeadline(start.Add(t.First))
	limit := maxHead
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(cap(buf), limit-len(buf)))...)[:len(buf)]
		}
		n, rerr := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > 0 {
			if len(buf) == n { // the first bytes: from now on the total bound applies
				_ = c.SetReadDeadline(start.Add(t.Total))
			}
			switch {
			case buf[0] == 0x16:
				limit = maxHello + 5*4 // a few record headers on top of the hello
				name, perr := clientHelloSNI(buf)
				if perr != errIncomplete {
					if perr != nil {
						return buf, "", KindCIDR, nil
					}
					if name == "" {
						return buf, "", KindCIDR, nil
					}
					return buf, name, KindSNI, nil
				}
			case looksHTTP(buf):
				name, perr := httpHost(buf)
				if perr != errIncomplete {
					if perr != nil || name == "" {
						return buf, "", KindCIDR, nil
					}
					return buf, name, KindHost, nil
				}
			default:
				return buf, "", KindCIDR, nil
			}
			if len(buf) >= limit {
				return buf, "", KindCIDR, nil
			}
		}
		if rerr != nil {
			if errors.Is(rerr, os.ErrDeadlineExceeded) || errors.Is(rerr, io.EOF) && len(buf) > 0 {
				return buf, "", KindCIDR, nil
			}
			return buf, "", KindCIDR, rerr
		}
	}
}
