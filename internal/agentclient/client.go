// Package agentclient is the server's client for warren-agent (the envd protocol) inside
// a sandbox: commands over Connect RPC, files over envd's /files routes.
//
// A Client is the connection to one sandbox's agent (its address, access token and
// connection pool) and answers what the sandbox's lifecycle asks: Health, WaitReady,
// WaitPortReady, Metrics, Init and Close. The jobs done through it have a type each, built on
// the connection: Files (Client.Files), Processes, pseudo-terminals included
// (Client.Processes), and the code interpreter (Client.Code). Every read from the sandbox
// is bounded (the constants below), and every error of the agent is mapped to a domain
// error kind in one place (agentError, errors.go).
package agentclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/envdpb/filesystem/filesystemconnect"
	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
)

// Bounds on what the server reads from a sandbox. Whatever runs in it (its PID 1
// included, which a tenant may have replaced) chooses what it sends; the server's
// memory is shared by every tenant, so no reply is read without a bound.
const (
	// MaxBufferedOutput is how much of each output stream (stdout, stderr) of a
	// command an Exec result holds when the output is not streamed to a callback; the
	// rest is dropped and the result marked Truncated.
	MaxBufferedOutput = 16 << 20
	// maxMessage bounds one Connect message from the agent. Output events are 32 KiB;
	// a deep directory listing is the largest legitimate one.
	maxMessage = 16 << 20
	// maxReply bounds a JSON reply of the agent or the code interpreter.
	maxReply = 1 << 20
	// maxErrorBody bounds the body of a non-2xx answer, which is only ever a message.
	maxErrorBody = 64 << 10
	// maxHeaderBytes bounds an answer's headers.
	maxHeaderBytes = 64 << 10
)

// newTransport gives each sandbox its own connection pool: addresses are reused by
// later sandboxes, and a keep-alive connection to a killed sandbox must never carry a
// request meant for its successor. Close drops the pool.
func newTransport() *http.Transport {
	return &http.Transport{
		DialContext:            (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        60 * time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
}

// boundErrors cuts the body of every non-2xx answer at maxErrorBody: such a body is
// an error message, and readers that do not bound it themselves (Connect's unary
// error path reads it whole) must not be made to hold more.
type boundErrors struct{ next http.RoundTripper }

func (b boundErrors) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.next.RoundTrip(req)
	if err == nil && resp.StatusCode/100 != 2 {
		resp.Body = &cappedBody{ReadCloser: resp.Body, left: maxErrorBody}
	}
	return resp, err
}

// cappedBody fails a read past its limit (rather than ending early, which a reader
// could take for a complete message).
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("the sandbox's answer is longer than the %d bytes the server reads", maxErrorBody)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	return n, err
}

// decodeReply decodes one JSON value of at most maxReply bytes from r into v.
func decodeReply(r io.Reader, v any) error {
	lr := &io.LimitedReader{R: r, N: maxReply + 1}
	err := json.NewDecoder(lr).Decode(v)
	if lr.N <= 0 {
		return fmt.Errorf("the answer is longer than the %d bytes the server reads", maxReply)
	}
	return err
}

// Client is the connection to one sandbox's agent. It is safe for concurrent use, and
// so are the Files, Processes and Code made from it, which share its connection pool.
type Client struct {
	base  string
	token string
	tr    *http.Transport
	http  *http.Client
	proc  processconnect.ProcessClient
	fs    filesystemconnect.FilesystemClient
}

// New returns a client for the agent at addr ("10.211.0.2:49983") using token.
func New(addr, token string) *Client {
	tr := newTransport()
	hc := &http.Client{Transport: boundErrors{tr}}
	base := "http://" + addr
	opts := []connect.ClientOption{connect.WithInterceptors(tokenInterceptor(token)), connect.WithReadMaxBytes(maxMessage)}
	return &Client{
		base: base, token: token, tr: tr, http: hc,
		proc: processconnect.NewProcessClient(hc, base, opts...),
		fs:   filesystemconnect.NewFilesystemClient(hc, base, opts...),
	}
}

// Files returns the file operations on this connection.
func (c *Client) Files() Files { return Files{c: c} }

// Processes returns the commands, background processes and pseudo-terminals on this
// connection.
func (c *Client) Processes() Processes { return Processes{c: c} }

// Code returns the code interpreter of the sandbox this connection reaches.
func (c *Client) Code() Code { return Code{c: c} }

func tokenInterceptor(token string) connect.Interceptor {
	return &headerInterceptor{token: token}
}

type headerInterceptor struct{ token string }

func (h *headerInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("X-Access-Token", h.token)
		if u := userFrom(ctx); u != "" {
			req.Header().Set("Authorization", basic(u))
		}
		return next(ctx, req)
	}
}

func (h *headerInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("X-Access-Token", h.token)
		if u := userFrom(ctx); u != "" {
			conn.RequestHeader().Set("Authorization", basic(u))
		}
		return conn
	}
}

func (h *headerInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

type userKey struct{}

// WithUser selects the sandbox user for the agent calls made with ctx.
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

func userFrom(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

func basic(user string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"))
}

// Close drops the client's idle connections; call it when the sandbox has ended.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// Health reports whether the agent answers.
func (c *Client) Health(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxReply) // lets the connection be reused
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("agent health: %s", resp.Status)
	}
	return nil
}

// WaitPortReady polls GET /health on another port of the sandbox (a template's own
// server) until it answers 2xx or ctx ends.
func (c *Client) WaitPortReady(ctx context.Context, port int) error {
	u, _ := url.Parse(c.base)
	host, _, _ := net.SplitHostPort(u.Host)
	target := "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/health"
	var last error
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		req, _ := http.NewRequestWithContext(attempt, http.MethodGet, target, nil)
		resp, err := c.http.Do(req)
		if err == nil {
			_, _ = io.CopyN(io.Discard, resp.Body, maxReply)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				cancel()
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		cancel()
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("port %d did not become ready: %w (last error: %v)", port, ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitReady polls the agent's health until it answers or ctx ends. A refused connection
// costs microseconds, so it polls every 2 ms for the first two seconds (sandbox start is
// on the critical path of every create), then every 20 ms.
func (c *Client) WaitReady(ctx context.Context) error {
	start := time.Now()
	for {
		attempt, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err := c.Health(attempt)
		cancel()
		if err == nil {
			return nil
		}
		delay := 2 * time.Millisecond
		if time.Since(start) > 2*time.Second {
			delay = 20 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent did not become ready: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}

// Metrics reads the agent's /metrics (CPU, memory and disk as seen inside the sandbox).
func (c *Client) Metrics(ctx context.Context) (*domain.SandboxMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Access-Token", c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, unreachable("reading metrics", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, httpErr(resp, "/metrics")
	}
	var m struct {
		TS         int64   `json:"ts"`
		CPUCount   int     `json:"cpu_count"`
		CPUUsedPct float64 `json:"cpu_used_pct"`
		MemTotal   int64   `json:"mem_total"`
		MemUsed    int64   `json:"mem_used"`
		MemCache   int64   `json:"mem_cache"`
		DiskUsed   int64   `json:"disk_used"`
		DiskTotal  int64   `json:"disk_total"`
	}
	if err := decodeReply(resp.Body, &m); err != nil {
		return nil, fmt.Errorf("decoding agent metrics: %w", err)
	}
	ts := time.Unix(m.TS, 0).UTC()
	if m.TS == 0 {
		ts = time.Now().UTC()
	}
	return &domain.SandboxMetrics{Timestamp: ts, CPUCount: m.CPUCount, CPUUsedPct: m.CPUUsedPct,
		MemUsed: m.MemUsed, MemTotal: m.MemTotal, MemCache: m.MemCache, DiskUsed: m.DiskUsed, DiskTotal: m.DiskTotal}, nil
}
