// Package agentclient is the server's client for warren-agent (the envd protocol) inside
// a sandbox: commands over Connect RPC, files over envd's /files routes.
package agentclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/envdpb/filesystem"
	"github.com/warren-sh/warren/internal/envdpb/filesystem/filesystemconnect"
	"github.com/warren-sh/warren/internal/envdpb/process"
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

// Client talks to one sandbox's agent.
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

// Exec runs req and reports its output through onEvent as it arrives. A command that
// runs past req.Timeout is killed and ends normally, with exit code -1 and TimedOut
// set; an error means the command's end is unknown (the agent went away, ctx ended).
//
// The result holds the output only when onEvent is nil, and then at most
// MaxBufferedOutput of each stream (Truncated says some was dropped); streamed output
// goes to onEvent and is not kept.
func (c *Client) Exec(ctx context.Context, req domain.ExecRequest, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	if req.User != "" {
		ctx = WithUser(ctx, req.User)
	}
	withStdin := len(req.Stdin) > 0
	sreq := connect.NewRequest(&process.StartRequest{Process: processConfig(req), Stdin: &withStdin})
	parent := ctx
	var deadline time.Time
	if req.Timeout > 0 {
		// envd treats the call's deadline as the process's lifetime.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
		deadline, _ = ctx.Deadline()
	}
	stream, err := c.proc.Start(ctx, sreq)
	if err != nil {
		return nil, mapErr(err)
	}
	defer stream.Close()
	res := &domain.ExecResult{}
	var pid uint32
	emit := func(ev domain.ExecEvent) error {
		if onEvent == nil {
			return nil
		}
		return onEvent(ev)
	}
	for stream.Receive() {
		ev := stream.Msg().GetEvent()
		switch e := ev.GetEvent().(type) {
		case *process.ProcessEvent_Start:
			pid = e.Start.GetPid()
			if err := emit(domain.ExecEvent{PID: pid}); err != nil {
				return nil, err
			}
			if withStdin {
				if err := c.sendStdin(ctx, pid, req.Stdin); err != nil {
					return nil, err
				}
			}
		case *process.ProcessEvent_Data:
			out := dataEvent(e.Data)
			if onEvent == nil {
				keep(&res.Stdout, out.Stdout, res)
				keep(&res.Stderr, out.Stderr, res)
				continue
			}
			if err := emit(out); err != nil {
				return nil, err
			}
		case *process.ProcessEvent_End:
			endResult(e.End, res)
			if !deadline.IsZero() && !e.End.GetExited() && time.Until(deadline) < timeoutSlack {
				markTimedOut(res, req.Timeout) // the agent killed it at the deadline
			}
			if err := emit(domain.ExecEvent{End: res}); err != nil {
				return nil, err
			}
			return res, nil
		}
	}
	if err := stream.Err(); err != nil {
		// The call's deadline (ours, or the agent's copy of it, which may answer first)
		// passed before the agent's end event arrived.
		late := errors.Is(ctx.Err(), context.DeadlineExceeded) || connect.CodeOf(err) == connect.CodeDeadlineExceeded
		if pid != 0 && parent.Err() == nil && !deadline.IsZero() && late {
			c.killAfterTimeout(pid)
			markTimedOut(res, req.Timeout)
			if err := emit(domain.ExecEvent{End: res}); err != nil {
				return nil, err
			}
			return res, nil
		}
		if late && parent.Err() == nil && !deadline.IsZero() {
			return nil, domain.Errorf(domain.KindUnavailable, "the sandbox's agent did not start the command within its timeout of %s", req.Timeout)
		}
		return nil, mapErr(err)
	}
	return nil, domain.Errorf(domain.KindUnavailable, "the command's stream ended without a result; the sandbox may have stopped")
}

// keep appends data to buf up to MaxBufferedOutput and marks res truncated when some
// of it does not fit.
func keep(buf *[]byte, data []byte, res *domain.ExecResult) {
	room := MaxBufferedOutput - len(*buf)
	if len(data) > room {
		data = data[:max(room, 0)]
		res.Truncated = true
	}
	if need := len(*buf) + len(data); need > cap(*buf) {
		// Grow as append would, but never past the bound.
		grown := make([]byte, len(*buf), min(max(2*cap(*buf), need, 4096), MaxBufferedOutput))
		copy(grown, *buf)
		*buf = grown
	}
	*buf = append(*buf, data...)
}

func (c *Client) sendStdin(ctx context.Context, pid uint32, data []byte) error {
	sel := &process.ProcessSelector{Selector: &process.ProcessSelector_Pid{Pid: pid}}
	const chunk = 64 << 10
	for len(data) > 0 {
		n := min(len(data), chunk)
		_, err := c.proc.SendInput(ctx, connect.NewRequest(&process.SendInputRequest{
			Process: sel,
			Input:   &process.ProcessInput{Input: &process.ProcessInput_Stdin{Stdin: data[:n]}},
		}))
		if err != nil {
			return mapErr(err)
		}
		data = data[n:]
	}
	_, err := c.proc.CloseStdin(ctx, connect.NewRequest(&process.CloseStdinRequest{Process: sel}))
	return mapErr(err)
}

// ListDir lists path to depth levels.
func (c *Client) ListDir(ctx context.Context, path, user string, depth int) ([]domain.FileInfo, error) {
	if user != "" {
		ctx = WithUser(ctx, user)
	}
	if depth < 1 {
		depth = 1
	}
	resp, err := c.fs.ListDir(ctx, connect.NewRequest(&filesystem.ListDirRequest{Path: path, Depth: uint32(depth)}))
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]domain.FileInfo, 0, len(resp.Msg.GetEntries()))
	for _, e := range resp.Msg.GetEntries() {
		out = append(out, entryInfo(e))
	}
	return out, nil
}

func entryInfo(e *filesystem.EntryInfo) domain.FileInfo {
	t := "file"
	switch e.GetType() {
	case filesystem.FileType_FILE_TYPE_DIRECTORY:
		t = "dir"
	case filesystem.FileType_FILE_TYPE_SYMLINK:
		t = "symlink"
	}
	fi := domain.FileInfo{Name: e.GetName(), Path: e.GetPath(), Type: t, Size: e.GetSize(), Mode: e.GetMode(), Owner: e.GetOwner(), Group: e.GetGroup()}
	if e.GetModifiedTime() != nil {
		fi.Modified = e.GetModifiedTime().AsTime()
	}
	return fi
}

// Stat describes path.
func (c *Client) Stat(ctx context.Context, path, user string) (*domain.FileInfo, error) {
	if user != "" {
		ctx = WithUser(ctx, user)
	}
	resp, err := c.fs.Stat(ctx, connect.NewRequest(&filesystem.StatRequest{Path: path}))
	if err != nil {
		return nil, mapErr(err)
	}
	fi := entryInfo(resp.Msg.GetEntry())
	return &fi, nil
}

func (c *Client) filesURL(path, user string) string {
	q := url.Values{"path": {path}}
	if user != "" {
		q.Set("username", user)
	}
	return c.base + "/files?" + q.Encode()
}

// WriteFile streams r into path (parents created, owned by user).
func (c *Client) WriteFile(ctx context.Context, path, user string, r io.Reader) (*domain.FileInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.filesURL(path, user), r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Access-Token", c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, unreachable("writing "+path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, httpErr(resp, path)
	}
	var entries []struct {
		Path string `json:"path"`
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if err := decodeReply(resp.Body, &entries); err != nil || len(entries) == 0 {
		return nil, fmt.Errorf("agent upload answer unreadable: %w", err)
	}
	return c.Stat(ctx, entries[0].Path, user)
}

// ReadFile streams path's content into w.
func (c *Client) ReadFile(ctx context.Context, path, user string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.filesURL(path, user), nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Access-Token", c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return unreachable("reading "+path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpErr(resp, path)
	}
	_, err = io.Copy(w, resp.Body)
	return err
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
