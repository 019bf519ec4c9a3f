package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// Metrics counts what the proxy carries, for the operator's metrics (package metrics
// implements it).
type Metrics interface {
	// Request counts a request that ended with status (101 for an upgrade).
	Request(status int)
	// Bytes adds the request body bytes carried to a sandbox (in) and the response
	// body bytes carried back (out); for an upgraded connection (WebSockets), what
	// crossed the client's connection after the upgrade.
	Bytes(in, out int64)
}

// counted serves r through serve, counting its status and bytes.
func (p *Proxy) counted(w http.ResponseWriter, r *http.Request) {
	cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
	var body *countingBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &countingBody{ReadCloser: r.Body}
		r.Body = body
	}
	defer func() {
		in, out := int64(0), cw.n
		if body != nil {
			in = body.n
		}
		if cw.conn != nil {
			in, out = in+cw.conn.in.Load(), out+cw.conn.out.Load()
		}
		p.cfg.Metrics.Request(cw.status)
		p.cfg.Metrics.Bytes(in, out)
	}()
	p.serve(cw, r)
}

// countingWriter remembers the status and counts the body bytes written through it.
type countingWriter struct {
	http.ResponseWriter
	status  int
	written bool
	n       int64
	conn    *countingConn // the connection, once hijacked for an upgrade
}

// Hijack hands the connection over (an upgrade: httputil.ReverseProxy writes the 101
// itself on it) and counts what crosses it from then on.
func (w *countingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.status, w.written = http.StatusSwitchingProtocols, true
	w.conn = &countingConn{Conn: c}
	return w.conn, brw, nil
}

// countingConn counts the bytes read from and written to a hijacked connection.
type countingConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

func (w *countingWriter) WriteHeader(code int) {
	if !w.written && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.written = true
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController (flushes, hijacks, deadlines) reach the
// underlying writer.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
