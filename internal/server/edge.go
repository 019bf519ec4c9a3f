package server

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// This file holds what guards the two listeners against clients that hold connections
// for nothing: a cap on one address's connections, and a deadline on request bodies.

// perIPListener accepts at most max open connections from one client address; more are
// closed at accept. A refused address is logged at most once a minute.
type perIPListener struct {
	net.Listener
	max int
	log *slog.Logger

	mu     sync.Mutex
	open   map[string]int       // open connections per address; Preconditions: mu held
	logged map[string]time.Time // when each refused address was last logged; mu held
}

// limitPerIP wraps ln; max <= 0 returns ln as is.
func limitPerIP(ln net.Listener, max int, log *slog.Logger) net.Listener {
	if max <= 0 {
		return ln
	}
	return &perIPListener{Listener: ln, max: max, log: log, open: map[string]int{}, logged: map[string]time.Time{}}
}

func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := c.RemoteAddr().String()
		if host, _, err := net.SplitHostPort(ip); err == nil {
			ip = host
		}
		if l.admit(ip) {
			return &countedConn{Conn: c, done: func() { l.release(ip) }}, nil
		}
		c.Close()
	}
}

// admit counts a new connection of ip, or reports that ip is at its cap.
func (l *perIPListener) admit(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip] < l.max {
		l.open[ip]++
		return true
	}
	now := time.Now()
	if now.Sub(l.logged[ip]) >= time.Minute {
		if len(l.logged) > 4096 { // forget old entries so many addresses cannot grow the map
			for a, at := range l.logged {
				if now.Sub(at) >= time.Minute {
					delete(l.logged, a)
				}
			}
		}
		l.logged[ip] = now
		l.log.Warn("client address at its connection cap; closing its new connections", "client", ip, "max_conns_per_ip", l.max,
			"listen", l.Addr().String())
	}
	return false
}

func (l *perIPListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

// countedConn releases its place in the per-address count once, on its first Close.
type countedConn struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.done)
	return err
}

// minBodyProgress is how many bytes a request body must bring within each body read
// timeout to keep the request: a body smaller than this must arrive whole within one.
const minBodyProgress = 16 << 10

// bodyDeadline gives every request body a read deadline of timeout, moved on each time
// another minBodyProgress bytes have arrived, and cleared when the body ends: a client
// trickling a body (slowloris) is dropped after timeout, whether or not the handler
// reads the body, an upload that keeps sending
// goes on, and responses that stream after the body (commands, watches, proxied
// streams) are not timed. http.Server.ReadTimeout cannot do this: it bounds the whole
// request, uploads and WebSockets included. It must wrap the server's own
// ResponseWriter (the outermost handler), whose connection it sets deadlines on.
func bodyDeadline(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			b := &deadlineBody{ReadCloser: r.Body, rc: http.NewResponseController(w), timeout: timeout}
			// Armed now, not at the first Read: a handler that answers without reading
			// the body (a 401) leaves the server reading it to reuse the connection,
			// and that read must be timed too.
			b.arm()
			r.Body = b
		}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody is a request body under bodyDeadline.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	since   int // bytes since the deadline last moved
	ended   bool
}

// arm sets the read deadline timeout from now. An error means the connection does not
// support deadlines (HTTP/2 has its own flow control); the body is then read without.
func (b *deadlineBody) arm() {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	b.since = 0
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.ended {
		return b.ReadCloser.Read(p)
	}
	if b.since >= minBodyProgress {
		b.arm()
	}
	n, err := b.ReadCloser.Read(p)
	b.since += n
	if err == io.EOF {
		// The body is over: what follows on the connection (a streamed response, the
		// server's check for a closed connection) must not be timed. After any other
		// error (the deadline passed) the deadline stays, so the server's reads after
		// the handler fail at once and the connection is closed.
		b.ended = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
