package rest

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// procFake adds domain.ProcessService and domain.FileService to fakeSandboxes, as function
// fields. A nil field answers errNotSet.
type procFake struct {
	*fakeSandboxes
	startProcess  func(ctx context.Context, p domain.Principal, id string, req domain.BackgroundRequest) (uint32, error)
	listProcesses func(ctx context.Context, p domain.Principal, id string) ([]domain.ProcessInfo, error)
	attach        func(ctx context.Context, p domain.Principal, id string, pid uint32, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error)
	sendStdin     func(ctx context.Context, p domain.Principal, id string, pid uint32, data []byte) error
	closeStdin    func(ctx context.Context, p domain.Principal, id string, pid uint32) error
	signal        func(ctx context.Context, p domain.Principal, id string, pid uint32, sig string) error
	statFile      func(ctx context.Context, p domain.Principal, id, path, user string) (*domain.FileInfo, error)
	makeDir       func(ctx context.Context, p domain.Principal, id, path, user string) (*domain.FileInfo, bool, error)
	movePath      func(ctx context.Context, p domain.Principal, id, from, to, user string) (*domain.FileInfo, error)
	removePath    func(ctx context.Context, p domain.Principal, id, path, user string) error
}

var (
	_ domain.ProcessService = (*procFake)(nil)
	_ domain.FileService    = (*procFake)(nil)
)

func (f *procFake) StartProcess(ctx context.Context, p domain.Principal, id string, req domain.BackgroundRequest) (uint32, error) {
	if f.startProcess == nil {
		return 0, errNotSet
	}
	return f.startProcess(ctx, p, id, req)
}

func (f *procFake) ListProcesses(ctx context.Context, p domain.Principal, id string) ([]domain.ProcessInfo, error) {
	if f.listProcesses == nil {
		return nil, errNotSet
	}
	return f.listProcesses(ctx, p, id)
}

func (f *procFake) AttachProcess(ctx context.Context, p domain.Principal, id string, pid uint32, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	if f.attach == nil {
		return nil, errNotSet
	}
	return f.attach(ctx, p, id, pid, onEvent)
}

func (f *procFake) SendStdin(ctx context.Context, p domain.Principal, id string, pid uint32, data []byte) error {
	if f.sendStdin == nil {
		return errNotSet
	}
	return f.sendStdin(ctx, p, id, pid, data)
}

func (f *procFake) CloseStdin(ctx context.Context, p domain.Principal, id string, pid uint32) error {
	if f.closeStdin == nil {
		return errNotSet
	}
	return f.closeStdin(ctx, p, id, pid)
}

func (f *procFake) SignalProcess(ctx context.Context, p domain.Principal, id string, pid uint32, sig string) error {
	if f.signal == nil {
		return errNotSet
	}
	return f.signal(ctx, p, id, pid, sig)
}

func (f *procFake) StatFile(ctx context.Context, p domain.Principal, id, path, user string) (*domain.FileInfo, error) {
	if f.statFile == nil {
		return nil, errNotSet
	}
	return f.statFile(ctx, p, id, path, user)
}

func (f *procFake) MakeDir(ctx context.Context, p domain.Principal, id, path, user string) (*domain.FileInfo, bool, error) {
	if f.makeDir == nil {
		return nil, false, errNotSet
	}
	return f.makeDir(ctx, p, id, path, user)
}

func (f *procFake) MovePath(ctx context.Context, p domain.Principal, id, from, to, user string) (*domain.FileInfo, error) {
	if f.movePath == nil {
		return nil, errNotSet
	}
	return f.movePath(ctx, p, id, from, to, user)
}

func (f *procFake) RemovePath(ctx context.Context, p domain.Principal, id, path, user string) error {
	if f.removePath == nil {
		return errNotSet
	}
	return f.removePath(ctx, p, id, path, user)
}

// newProcHarness is a harness with its process and file service fake.
func newProcHarness(t *testing.T, opts ...Option) (*harness, *procFake) {
	t.Helper()
	h := newHarness(t, opts...)
	return h, h.proc
}

// noProcess answers like the service for pids other than 42.
func noProcess(id string, pid uint32) error {
	if err := notFoundUnless(id); err != nil {
		return err
	}
	if pid != 42 {
		return domain.Errorf(domain.KindNotFound, "process %d is not running in sandbox %s", pid, id)
	}
	return nil
}

func TestBackgroundCommand(t *testing.T) {
	h, f := newProcHarness(t)
	var got domain.BackgroundRequest
	f.startProcess = func(_ context.Context, _ domain.Principal, id string, req domain.BackgroundRequest) (uint32, error) {
		if err := notFoundUnless(id); err != nil {
			return 0, err
		}
		got = req
		return 42, nil
	}
	h.svc.exec = func(context.Context, domain.Principal, string, domain.ExecRequest, func(domain.ExecEvent) error) (*domain.ExecResult, error) {
		t.Error("a background command was run in the foreground")
		return nil, errNotSet
	}
	cases := []struct {
		body string
		want domain.BackgroundRequest
	}{
		{`{"cmd":"sleep 60","background":true}`, domain.BackgroundRequest{Exec: domain.ExecRequest{Cmd: "sleep 60"}}},
		{`{"args":["cat"],"background":true,"stdin_open":true,"stdin":"hi","timeout":30,"user":"root"}`,
			domain.BackgroundRequest{Exec: domain.ExecRequest{Args: []string{"cat"}, Stdin: []byte("hi"), Timeout: 30 * time.Second, User: "root"}, StdinOpen: true}},
	}
	for _, c := range cases {
		res := h.do("POST", "/v1/sandboxes/"+sbID+"/commands", c.body)
		if res.Status != 201 || strings.TrimSpace(string(res.Body)) != `{"pid":42}` {
			t.Errorf("%s: %d %s", c.body, res.Status, res.Body)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: request %+v, want %+v", c.body, got, c.want)
		}
	}
	// An Accept: text/event-stream header does not turn a background start into a stream.
	r := h.req("POST", "/v1/sandboxes/"+sbID+"/commands", `{"cmd":"x","background":true}`)
	r.Header.Set("Accept", "text/event-stream")
	if res := h.serve(r); res.Status != 201 {
		t.Errorf("background with Accept: text/event-stream: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("POST", "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz/commands", `{"cmd":"x","background":true}`), 404, "not_found", "")

	bad := []struct{ body, field, msg string }{
		{`{"cmd":"x","background":true,"stream":true}`, "stream", "/events"},
		{`{"cmd":"x","stdin_open":true}`, "stdin_open", `"background": true`},
		{`{"background":true}`, "cmd", "one of cmd"},
	}
	for _, c := range bad {
		m := h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/commands", c.body), 400, "invalid", c.field)
		if !strings.Contains(m["message"].(string), c.msg) {
			t.Errorf("%s: message %q lacks %q", c.body, m["message"], c.msg)
		}
	}
}

func TestListProcesses(t *testing.T) {
	h, f := newProcHarness(t)
	f.listProcesses = func(_ context.Context, p domain.Principal, id string) ([]domain.ProcessInfo, error) {
		if err := scoped(p, id, domain.ScopeSandboxesRead); err != nil {
			return nil, err
		}
		return []domain.ProcessInfo{
			{PID: 7, Cmd: "/bin/bash", Args: []string{"-c", "sleep 60"}, Cwd: "/home/user"},
			{PID: 9, Cmd: "server", Cwd: "/", Tag: "start_cmd"},
		}, nil
	}
	res := h.do("GET", "/v1/sandboxes/"+sbID+"/processes", nil)
	want := `{"processes":[{"pid":7,"cmd":"/bin/bash","args":["-c","sleep 60"],"cwd":"/home/user"},{"pid":9,"cmd":"server","args":[],"cwd":"/","tag":"start_cmd"}]}`
	if res.Status != 200 || strings.TrimSpace(string(res.Body)) != want {
		t.Errorf("list: %d %s\nwant %s", res.Status, res.Body, want)
	}
	h.wantError(h.do("GET", "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz/processes", nil), 404, "not_found", "")
}

func TestProcessEvents(t *testing.T) {
	h, f := newProcHarness(t)
	f.attach = func(_ context.Context, _ domain.Principal, id string, pid uint32, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
		if err := noProcess(id, pid); err != nil {
			return nil, err
		}
		for _, ev := range []domain.ExecEvent{{PID: pid}, {Stdout: []byte("tick\n")}, {Stderr: []byte("warn\n")}} {
			if err := onEvent(ev); err != nil {
				return nil, err
			}
		}
		return &domain.ExecResult{ExitCode: -1, Error: "signal: killed"}, nil
	}
	res := h.do("GET", "/v1/sandboxes/"+sbID+"/processes/42/events", nil)
	if res.Status != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %v %s", res.Status, res.Header, res.Body)
	}
	var names []string
	evs := parseSSE(t, res.Body)
	for _, ev := range evs {
		names = append(names, ev.name+" "+ev.data)
	}
	want := []string{`start {"pid":42}`, `stdout {"data":"dGljawo=","text":"tick\n"}`, `stderr {"data":"d2Fybgo=","text":"warn\n"}`, `end {"exit_code":-1,"error":"signal: killed"}`}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("events:\n%q\nwant\n%q", names, want)
	}

	// Unknown pids and malformed ones fail before the stream starts.
	m := h.wantError(h.do("GET", "/v1/sandboxes/"+sbID+"/processes/43/events", nil), 404, "not_found", "")
	if !strings.Contains(m["message"].(string), "process 43") {
		t.Errorf("unknown pid message: %v", m["message"])
	}
	for _, pid := range []string{"0", "-1", "abc", "4294967296"} {
		h.wantError(h.do("GET", "/v1/sandboxes/"+sbID+"/processes/"+pid+"/events", nil), 400, "invalid", "pid")
	}

	// The sandbox stops while the stream runs: it ends with an error event.
	f.attach = func(_ context.Context, _ domain.Principal, id string, pid uint32, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
		_ = onEvent(domain.ExecEvent{PID: pid})
		return nil, domain.Errorf(domain.KindConflict, "sandbox %s was stopped (killed) while the command ran", id)
	}
	res = h.do("GET", "/v1/sandboxes/"+sbID+"/processes/42/events", nil)
	evs = parseSSE(t, res.Body)
	if len(evs) != 2 || evs[1].name != "error" || !strings.Contains(evs[1].data, `"code":"conflict"`) || !strings.Contains(evs[1].data, "was stopped (killed)") {
		t.Errorf("stopped sandbox: %s", res.Body)
	}
}

func TestProcessStdin(t *testing.T) {
	h, f := newProcHarness(t)
	var got []byte
	f.sendStdin = func(_ context.Context, p domain.Principal, id string, pid uint32, data []byte) error {
		if err := scoped(p, id, domain.ScopeSandboxesWrite); err != nil {
			return err
		}
		if err := noProcess(id, pid); err != nil {
			return err
		}
		got = data
		return nil
	}
	ok := []struct {
		body string
		want string
	}{
		{`{"data":"hello\n"}`, "hello\n"},
		{`{"data_base64":"AP8="}`, "\x00\xff"},
		{`{"data":""}`, ""},
	}
	for _, c := range ok {
		got = nil
		res := h.do("POST", "/v1/sandboxes/"+sbID+"/processes/42/stdin", c.body)
		if res.Status != 204 || len(res.Body) != 0 || string(got) != c.want {
			t.Errorf("%s: %d %s, sent %q", c.body, res.Status, res.Body, got)
		}
	}
	bad := []struct{ body, field, msg string }{
		{`{}`, "data", "one of data"},
		{`{"data":"a","data_base64":"YQ=="}`, "data", "not both"},
		{`{"data_base64":"%%"}`, "data_base64", "base64"},
		{`{"text":"a"}`, "text", "unknown field"},
	}
	for _, c := range bad {
		m := h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/processes/42/stdin", c.body), 400, "invalid", c.field)
		if !strings.Contains(m["message"].(string), c.msg) {
			t.Errorf("%s: message %q lacks %q", c.body, m["message"], c.msg)
		}
	}
	h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/processes/43/stdin", `{"data":"x"}`), 404, "not_found", "")

	f.sendStdin = func(context.Context, domain.Principal, string, uint32, []byte) error {
		return domain.Errorf(domain.KindConflict, "process 42: stdin is not enabled for this process")
	}
	h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/processes/42/stdin", `{"data":"x"}`), 409, "conflict", "")

	closed := uint32(0)
	f.closeStdin = func(_ context.Context, _ domain.Principal, id string, pid uint32) error {
		if err := noProcess(id, pid); err != nil {
			return err
		}
		closed = pid
		return nil
	}
	if res := h.do("POST", "/v1/sandboxes/"+sbID+"/processes/42/stdin/close", nil); res.Status != 204 || closed != 42 {
		t.Errorf("close stdin: %d %s (closed %d)", res.Status, res.Body, closed)
	}
	h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/processes/43/stdin/close", nil), 404, "not_found", "")
}

func TestProcessSignal(t *testing.T) {
	h, f := newProcHarness(t)
	var got string
	f.signal = func(_ context.Context, p domain.Principal, id string, pid uint32, sig string) error {
		if err := scoped(p, id, domain.ScopeSandboxesWrite); err != nil {
			return err
		}
		if err := noProcess(id, pid); err != nil {
			return err
		}
		if sig != "KILL" && sig != "TERM" {
			return domain.Invalid("signal", "signal %q is not supported: the sandbox agent can send TERM or KILL", sig)
		}
		got = sig
		return nil
	}
	for _, sig := range []string{"KILL", "TERM"} {
		body, _ := json.Marshal(signalRequest{Signal: sig})
		if res := h.do("POST", "/v1/sandboxes/"+sbID+"/processes/42/signal", body); res.Status != 204 || got != sig {
			t.Errorf("%s: %d %s (sent %q)", sig, res.Status, res.Body, got)
		}
	}
	m := h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/processes/42/signal", `{"signal":"INT"}`), 400, "invalid", "signal")
	if !strings.Contains(m["message"].(string), "TERM or KILL") {
		t.Errorf("INT: message %q does not name the supported signals", m["message"])
	}
	h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/processes/7/signal", `{"signal":"KILL"}`), 404, "not_found", "")

	// A viewer may list and follow processes but not signal them.
	h.keys.authenticate = func(context.Context, string) (domain.Principal, error) {
		return domain.Principal{TeamID: testPrincipal.TeamID, KeyID: "key_v", Scopes: []domain.Scope{domain.ScopeSandboxesRead}}, nil
	}
	h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/processes/42/signal", `{"signal":"KILL"}`), 403, "forbidden", "")
}

// TestRoutesNeedTheirService: a server given no process, file, log or terminal
// service answers their routes 503.
func TestRoutesNeedTheirService(t *testing.T) {
	h := newHarness(t)
	h.srv = New(h.svc, h.keys, nil)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/sandboxes/" + sbID + "/processes", ""},
		{"POST", "/v1/sandboxes/" + sbID + "/commands", `{"cmd":"x","background":true}`},
		{"POST", "/v1/sandboxes/" + sbID + "/commands", `{"cmd":"x"}`},
		{"GET", "/v1/sandboxes/" + sbID + "/files/stat?path=/x", ""},
		{"GET", "/v1/sandboxes/" + sbID + "/files?path=/x", ""},
		{"GET", "/v1/sandboxes/" + sbID + "/logs", ""},
		{"GET", "/v1/sandboxes/" + sbID + "/ports", ""},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		h.wantError(h.do(c.method, c.path, body), 503, "unavailable", "")
	}
}

func TestExecTimedOut(t *testing.T) {
	h := newHarness(t)
	h.svc.exec = func(_ context.Context, _ domain.Principal, _ string, _ domain.ExecRequest, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
		res := &domain.ExecResult{ExitCode: -1, TimedOut: true, Error: "command timed out after 1s and was killed", Stdout: []byte("started\n")}
		if onEvent != nil {
			_ = onEvent(domain.ExecEvent{PID: 5})
			_ = onEvent(domain.ExecEvent{Stdout: res.Stdout})
		}
		return res, nil
	}
	res := h.do("POST", "/v1/sandboxes/"+sbID+"/commands", `{"cmd":"sleep 9","timeout":1}`)
	want := `{"exit_code":-1,"stdout":"started\n","stderr":"","error":"command timed out after 1s and was killed","timed_out":true}`
	if res.Status != 200 || strings.TrimSpace(string(res.Body)) != want {
		t.Errorf("JSON: %d %s", res.Status, res.Body)
	}
	res = h.do("POST", "/v1/sandboxes/"+sbID+"/commands", `{"cmd":"sleep 9","timeout":1,"stream":true}`)
	evs := parseSSE(t, res.Body)
	if len(evs) != 3 || evs[2].name != "end" || evs[2].data != `{"exit_code":-1,"error":"command timed out after 1s and was killed","timed_out":true}` {
		t.Errorf("SSE: %s", res.Body)
	}
}
