package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

// fakeTerm is a domain.Terminal that behaves like a tiny shell: input is echoed, the
// input "exit N" ends it with code N, and a resize prints "[size CxR]".
type fakeTerm struct {
	pr *io.PipeReader
	pw *io.PipeWriter

	mu      sync.Mutex
	code    int
	waitErr error
	killed  bool
	end     sync.Once
	done    chan struct{}
}

func newFakeTerm() *fakeTerm {
	pr, pw := io.Pipe()
	return &fakeTerm{pr: pr, pw: pw, done: make(chan struct{})}
}

func (f *fakeTerm) finish(code int, err error) {
	f.end.Do(func() {
		f.mu.Lock()
		f.code, f.waitErr = code, err
		f.mu.Unlock()
		if err != nil {
			f.pw.CloseWithError(err)
		} else {
			f.pw.Close()
		}
		close(f.done)
	})
}

func (f *fakeTerm) Read(p []byte) (int, error) { return f.pr.Read(p) }

func (f *fakeTerm) Write(p []byte) (int, error) {
	select {
	case <-f.done:
		return 0, domain.Errorf(domain.KindNotFound, "process exited")
	default:
	}
	if _, err := f.pw.Write(p); err != nil {
		return 0, err
	}
	var code int
	if _, err := fmt.Sscanf(string(p), "exit %d", &code); err == nil {
		f.finish(code, nil)
	}
	return len(p), nil
}

func (f *fakeTerm) Resize(_ context.Context, cols, rows uint32) error {
	_, err := fmt.Fprintf(f.pw, "[size %dx%d]", cols, rows)
	return err
}

func (f *fakeTerm) Wait(ctx context.Context) (int, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.code, f.waitErr
}

func (f *fakeTerm) Close() error {
	select {
	case <-f.done:
	default:
		f.mu.Lock()
		f.killed = true
		f.mu.Unlock()
	}
	f.finish(-1, nil)
	return nil
}

func (f *fakeTerm) wasKilled() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.killed
}

// terminalHarness serves a consoleFake whose terminals are fakeTerms, over a real
// listener. opened receives each terminal with its request.
type openedTerm struct {
	req  domain.TerminalRequest
	term *fakeTerm
}

func terminalHarness(t *testing.T, opts ...Option) (*harness, *consoleFake, *httptest.Server, chan openedTerm) {
	t.Helper()
	h, f := newConsoleHarness(t, opts...)
	opened := make(chan openedTerm, 4)
	f.openTerminal = func(_ context.Context, p domain.Principal, id string, req domain.TerminalRequest) (domain.Terminal, error) {
		if err := scoped(p, id, domain.ScopeSandboxesWrite); err != nil {
			return nil, err
		}
		ft := newFakeTerm()
		opened <- openedTerm{req, ft}
		return ft, nil
	}
	srv := httptest.NewServer(h.srv)
	t.Cleanup(srv.Close)
	return h, f, srv, opened
}

func dialTerminal(t *testing.T, srv *httptest.Server, query string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{"Authorization": {"Bearer " + testKey}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/sandboxes/" + sbID + "/terminal" + query
	return websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hdr})
}

// readFrame reads one frame within 10 seconds.
func readFrame(t *testing.T, c *websocket.Conn) (websocket.MessageType, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Read(ctx)
}

func wantBinary(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	typ, b, err := readFrame(t, c)
	if err != nil || typ != websocket.MessageBinary || string(b) != want {
		t.Fatalf("frame %v %q %v; want binary %q", typ, b, err, want)
	}
}

func wantControl(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	typ, b, err := readFrame(t, c)
	if err != nil || typ != websocket.MessageText {
		t.Fatalf("frame %v %q %v; want a text frame", typ, b, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("control frame %q: %v", b, err)
	}
	return m
}

func send(t *testing.T, c *websocket.Conn, typ websocket.MessageType, b string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, []byte(b)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func TestTerminalSession(t *testing.T) {
	_, _, srv, opened := terminalHarness(t)
	c, resp, err := dialTerminal(t, srv, "?cols=100&rows=30&cmd=top", nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer c.CloseNow()
	if resp.Header.Get("Sec-WebSocket-Protocol") != "" {
		t.Errorf("a subprotocol was chosen: %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	ot := <-opened
	if ot.req.Cols != 100 || ot.req.Rows != 30 || ot.req.Cmd != "top" {
		t.Errorf("terminal request %+v", ot.req)
	}

	send(t, c, websocket.MessageBinary, "echo hello\r")
	wantBinary(t, c, "echo hello\r")

	send(t, c, websocket.MessageText, `{"type":"resize","cols":120,"rows":40}`)
	wantBinary(t, c, "[size 120x40]")

	badControls := []struct{ frame, msg string }{
		{`not json`, "control messages are JSON"},
		{`{"type":"bell"}`, `unknown control message type "bell"`},
		{`{"type":"resize","cols":0,"rows":40}`, "cols and rows from 1 to 1000"},
		{`{"type":"resize","cols":80,"rows":1001}`, "cols and rows from 1 to 1000"},
	}
	for _, bc := range badControls {
		send(t, c, websocket.MessageText, bc.frame)
		m := wantControl(t, c)
		if m["type"] != "error" || !strings.Contains(fmt.Sprint(m["message"]), bc.msg) {
			t.Errorf("%s: control %v; want an error saying %q", bc.frame, m, bc.msg)
		}
	}

	// A large paste arrives whole.
	paste := strings.Repeat("x", 100<<10)
	send(t, c, websocket.MessageBinary, paste)
	var got bytes.Buffer
	for got.Len() < len(paste) {
		typ, b, err := readFrame(t, c)
		if err != nil || typ != websocket.MessageBinary {
			t.Fatalf("paste echo: %v %v", typ, err)
		}
		got.Write(b)
	}
	if got.String() != paste {
		t.Fatalf("paste echo differs (%d bytes)", got.Len())
	}

	send(t, c, websocket.MessageBinary, "exit 3")
	wantBinary(t, c, "exit 3")
	m := wantControl(t, c)
	if m["type"] != "exit" || m["code"] != 3.0 || len(m) != 2 {
		t.Errorf("exit frame %v", m)
	}
	_, _, err = readFrame(t, c)
	if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after exit: %v; want a normal close (1000)", err)
	}
	if ot.term.wasKilled() {
		t.Error("a shell that exited was killed")
	}
}

// TestTerminalClientLeaves: closing the WebSocket kills the shell.
func TestTerminalClientLeaves(t *testing.T) {
	_, _, srv, opened := terminalHarness(t)
	c, _, err := dialTerminal(t, srv, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ot := <-opened
	if ot.req.Cols != 80 || ot.req.Rows != 24 || ot.req.Cmd != "" {
		t.Errorf("default request %+v", ot.req)
	}
	send(t, c, websocket.MessageBinary, "sleep 100")
	wantBinary(t, c, "sleep 100")
	c.Close(websocket.StatusNormalClosure, "bye")
	deadline := time.Now().Add(5 * time.Second)
	for !ot.term.wasKilled() {
		if time.Now().After(deadline) {
			t.Fatal("the shell was not killed after the client left")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTerminalBreaks: a session that breaks (the sandbox stopped) ends with an exit
// frame carrying the error and close status 1011.
func TestTerminalBreaks(t *testing.T) {
	_, _, srv, opened := terminalHarness(t)
	c, _, err := dialTerminal(t, srv, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	ot := <-opened
	ot.term.finish(0, domain.Errorf(domain.KindUnavailable, "sandbox agent: the sandbox stopped"))
	m := wantControl(t, c)
	if m["type"] != "exit" || m["code"] != -1.0 || m["error"] != "sandbox agent: the sandbox stopped" {
		t.Errorf("exit frame %v", m)
	}
	_, _, err = readFrame(t, c)
	if websocket.CloseStatus(err) != websocket.StatusInternalError {
		t.Errorf("close: %v; want 1011", err)
	}
}

// TestTerminalBeforeUpgrade: what can be refused is refused with a JSON error before
// the upgrade, and no terminal is opened.
func TestTerminalBeforeUpgrade(t *testing.T) {
	h, _, srv, opened := terminalHarness(t)
	h.wantError(h.do("GET", "/v1/sandboxes/"+sbID+"/terminal", nil), 400, "invalid", "")
	h.wantError(h.do("GET", "/v1/sandboxes/"+sbID+"/terminal?cols=0", nil), 400, "invalid", "cols")
	h.wantError(h.do("GET", "/v1/sandboxes/"+sbID+"/terminal?rows=abc", nil), 400, "invalid", "rows")

	cases := []struct {
		name   string
		target string
		p      *domain.Principal
		status int
	}{
		{"another team's sandbox", "/v1/sandboxes/bbbbbbbbbbbbbbbbbbbb/terminal", nil, 404},
		{"a read-only key", "/v1/sandboxes/" + sbID + "/terminal", &domain.Principal{TeamID: "team_a", Scopes: []domain.Scope{domain.ScopeSandboxesRead}}, 403},
		{"too wide", "/v1/sandboxes/" + sbID + "/terminal?cols=1001", nil, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.p != nil {
				h.as(*c.p)
				defer h.as(testPrincipal)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			u := "ws" + strings.TrimPrefix(srv.URL, "http") + c.target
			_, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testKey}}})
			if err == nil || resp == nil || resp.StatusCode != c.status {
				t.Fatalf("dial: %v %v; want status %d", err, resp, c.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("error Content-Type %q", ct)
			}
		})
	}
	select {
	case ot := <-opened:
		t.Errorf("a terminal was opened: %+v", ot.req)
	default:
	}
}

// TestTerminalCookieAndAudit: the console opens terminals with its cookie from a page
// of the same origin (no CSRF header: it is a GET), and the session is audited.
func TestTerminalCookieAndAudit(t *testing.T) {
	teams := &fake.Teams{}
	audited := make(chan *domain.AuditEntry, 4)
	teams.RecordFn = func(_ context.Context, e *domain.AuditEntry) { audited <- e }
	h, _, srv, opened := terminalHarness(t, WithAudit(teams))
	h.keys.authenticate = func(_ context.Context, secret string) (domain.Principal, error) {
		if secret == testSession {
			return domain.Principal{TeamID: "team_a", UserID: "usr_1"}, nil
		}
		return domain.Principal{}, domain.Errorf(domain.KindUnauthorized, "log in again")
	}
	hdr := http.Header{"Cookie": {sessionCookie + "=" + testSession}, "Origin": {"http://evil.example"}}
	if _, resp, err := dialTerminal(t, srv, "", hdr); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("cross-site dial: %v %v; want 403", err, resp)
	}
	hdr.Set("Origin", srv.URL)
	c, _, err := dialTerminal(t, srv, "", hdr)
	if err != nil {
		t.Fatalf("same-origin dial: %v", err)
	}
	ot := <-opened
	send(t, c, websocket.MessageBinary, "exit 0")
	wantBinary(t, c, "exit 0")
	if m := wantControl(t, c); m["type"] != "exit" || m["code"] != 0.0 {
		t.Errorf("exit frame %v", m)
	}
	c.CloseNow()
	_ = ot
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-audited:
			if e.Action != "sandbox.terminal" {
				continue
			}
			if e.Target != sbID || e.Status != http.StatusSwitchingProtocols || e.ActorType != "user" || e.ActorID != "usr_1" {
				t.Errorf("audit entry %+v", e)
			}
			return
		case <-deadline:
			t.Fatal("no audit entry for the terminal")
		}
	}
}
