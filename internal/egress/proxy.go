package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// serve accepts redirected connections until the listener closes.
func (s *Service) serve() {
	defer s.conns.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closing:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooMany) {
				continue
			}
			s.log.Error("egress proxy: accepting", logkey.Err, err)
			time.Sleep(100 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.handle(c)
		}()
	}
}

var errTooMany = errors.New("too many connections")

// track registers c (to be closed by Close) against the sandbox at src's connection
// bound; it returns false when the sandbox is at its bound or unknown.
func (s *Service) track(src netip.Addr, c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb := s.sandboxes[src]
	if !add {
		delete(s.open, c)
		if sb != nil && sb.conns > 0 {
			sb.conns--
		}
		return true
	}
	if sb == nil || sb.conns >= s.cfg.MaxConnsPerSandbox {
		return false
	}
	select {
	case <-s.closing:
		return false
	default:
	}
	sb.conns++
	s.open[c] = struct{}{}
	return true
}

// hold registers an upstream connection to be closed by Close; false when closing.
func (s *Service) hold(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closing:
		return false
	default:
	}
	s.open[c] = struct{}{}
	return true
}

func (s *Service) release(c net.Conn) {
	s.mu.Lock()
	delete(s.open, c)
	s.mu.Unlock()
}

// handle proxies one redirected connection.
func (s *Service) handle(c net.Conn) {
	defer c.Close()
	src := addrOf(c.RemoteAddr())
	dst, err := originalDst(c)
	id, policy, known := s.lookup(src)
	if !known || err != nil {
		// Not a sandbox we proxy (a connection from elsewhere to our port, or a
		// sandbox removed meanwhile): nothing to decide with.
		return
	}
	if !s.track(src, c, true) {
		s.decided(false, KindCIDR, id, "dest", dst.String(), "reason", "too many connections at once")
		return
	}
	defer s.track(src, c, false)

	prefix, name, kind, err := peek(c, peekTimes{First: s.cfg.PeekFirst, Total: s.cfg.PeekTotal})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
	defer cancel()
	addrs, reason := s.plan(ctx, policy, dst.Addr(), name)
	s.decided(reason == "", kind, id, "dest", dst.String(), "name", name, "reason", reason)
	if reason != "" {
		if kind == KindHost {
			respond(c, "403 Forbidden", "warren egress policy: "+reason)
		}
		return
	}
	up, err := dialFirst(ctx, addrs, dst.Port())
	cancel()
	if err != nil {
		s.log.Info("egress dial failed", logkey.SandboxID, id, "dest", dst.String(), "name", name, logkey.Err, err)
		if kind == KindHost {
			respond(c, "502 Bad Gateway", "warren egress proxy: "+err.Error())
		}
		return
	}
	defer up.Close()
	if !s.hold(up) { // counted once, as c; up is only registered for Close
		return
	}
	defer s.release(up)
	if _, err := up.Write(prefix); err != nil {
		return
	}
	splice(c, up, s.cfg.IdleTimeout)
}

// plan decides a connection to dst for which the client named name ("" if none) and
// returns the addresses to dial, or why the connection is refused. With no name, or
// when an allow CIDR holds dst, the proxy dials dst. Otherwise it dials the name
// itself: every address the name resolves to is checked against the guard and the
// policy, so neither a forged name nor a DNS answer can point the proxy inward or at a
// denied range.
func (s *Service) plan(ctx context.Context, p domain.NetworkPolicy, dst netip.Addr, name string) ([]netip.Addr, string) {
	if allow, rule := p.Decide(dst, name); !allow {
		if name != "" {
			return nil, fmt.Sprintf("%s (at %s) is denied by rule %q", name, dst, rule)
		}
		return nil, fmt.Sprintf("%s is denied by rule %q", dst, rule)
	}
	if name == "" || allowedByCIDR(p, dst) {
		if why := s.guard.refuses(dst); why != "" {
			return nil, fmt.Sprintf("%s is %s", dst, why)
		}
		return []netip.Addr{dst}, ""
	}
	resolved, err := s.up.lookup(ctx, name)
	if err != nil {
		return nil, err.Error()
	}
	var ok []netip.Addr
	var why []string
	for _, a := range resolved {
		if w := s.guard.refuses(a); w != "" {
			why = append(why, fmt.Sprintf("%s resolves to %s, %s", name, a, w))
			continue
		}
		if allow, rule := p.Decide(a, name); !allow {
			why = append(why, fmt.Sprintf("%s resolves to %s, denied by rule %q", name, a, rule))
			continue
		}
		ok = append(ok, a)
	}
	if len(ok) == 0 {
		return nil, strings.Join(why, "; ")
	}
	return ok, ""
}

// dialFirst connects to the first of addrs that answers.
func dialFirst(ctx context.Context, addrs []netip.Addr, port uint16) (net.Conn, error) {
	var d net.Dialer
	var errs []error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, "tcp4", netip.AddrPortFrom(a, port).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// respond answers an HTTP client that will not be proxied, and closes.
func respond(c net.Conn, status, msg string) {
	_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s\n", status, len(msg)+1, msg)
}

// splice copies bytes both ways until both sides are done or one stays idle for idle.
// A side that ends its sending has the other side's sending ended too (half-close).
func splice(a, b net.Conn, idle time.Duration) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			_ = src.SetReadDeadline(time.Now().Add(idle))
			n, err := src.Read(buf)
			if n > 0 {
				_ = dst.SetWriteDeadline(time.Now().Add(idle))
				if _, werr := dst.Write(buf[:n]); werr != nil {
					a.Close()
					b.Close()
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					if cw, ok := dst.(interface{ CloseWrite() error }); ok {
						_ = cw.CloseWrite()
						return
					}
				}
				a.Close() // idle, reset or closed: end both ways
				b.Close()
				return
			}
		}
	}
	go cp(b, a)
	go cp(a, b)
	<-done
	<-done
}

func addrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(t.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
