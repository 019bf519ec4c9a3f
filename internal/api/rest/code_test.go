package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

func newCodeHarness(t *testing.T, opts ...Option) (*harness, *fake.Code) {
	t.Helper()
	code := &fake.Code{}
	return newHarness(t, append(opts, WithCode(code))...), code
}

// cellLines is what an interpreter sends for a cell that prints, shows a plot, returns
// a value and then raises.
var cellLines = []string{
	`{"type":"number_of_executions","execution_count":3}`,
	`{"type":"stdout","text":"a\n","timestamp":"2025-01-01T00:00:00Z"}`,
	`{"type":"keepalive"}`,
	`{"type":"stderr","text":"warn\n","timestamp":"2025-01-01T00:00:01Z"}`,
	`{"type":"result","is_main_result":false,"png":"iVBORw0KGgo=","text":"<Figure>","extra":{"image/gif":"R0lG"}}`,
	`{"type":"stdout","text":"b\n","timestamp":"2025-01-01T00:00:02Z"}`,
	`{"type":"result","is_main_result":true,"text":"2","json":[1,2],"data":{"x":[1]},"chart":{"type":"line"},"html":"<b>2</b>","markdown":"**2**","latex":"$2$","javascript":"f()","svg":"<svg/>","jpeg":"/9j/","pdf":"JVBE","future":1}`,
	`{"type":"error","name":"ZeroDivisionError","value":"division by zero","traceback":"Traceback...\nZeroDivisionError: division by zero"}`,
	`{"type":"end_of_execution"}`,
}

// scriptedCell sends lines (for the sandbox sbID only) and records the request.
func scriptedCell(got *domain.RunCode, lines ...string) func(context.Context, domain.Principal, string, domain.RunCode, func(domain.CodeEvent) error) error {
	return func(_ context.Context, p domain.Principal, id string, req domain.RunCode, onEvent func(domain.CodeEvent) error) error {
		if err := notFoundUnless(id); err != nil {
			return err
		}
		if got != nil {
			*got = req
		}
		for _, l := range lines {
			var head struct{ Type string }
			_ = json.Unmarshal([]byte(l), &head)
			if err := onEvent(domain.CodeEvent{Type: head.Type, Raw: json.RawMessage(l)}); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestRunCode(t *testing.T) {
	h, code := newCodeHarness(t)
	var got domain.RunCode
	code.RunCodeFn = scriptedCell(&got, cellLines...)
	res := h.do("POST", "/v1/sandboxes/"+sbID+"/execute", `{"code":"1/0","language":"python","env":{"A":"1"},"timeout":30}`)
	if res.Status != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("execute: %d %s", res.Status, res.Body)
	}
	want := domain.RunCode{Code: "1/0", Language: "python", Env: map[string]string{"A": "1"}, Timeout: 30 * time.Second}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("request = %+v, want %+v", got, want)
	}
	var ex map[string]any
	if err := json.Unmarshal(res.Body, &ex); err != nil {
		t.Fatal(err)
	}
	logs := ex["logs"].(map[string]any)
	if ex["execution_count"] != float64(3) || !reflect.DeepEqual(logs["stdout"], []any{"a\n", "b\n"}) || !reflect.DeepEqual(logs["stderr"], []any{"warn\n"}) {
		t.Errorf("count and logs: %s", res.Body)
	}
	results := ex["results"].([]any)
	if len(results) != 2 {
		t.Fatalf("results: %s", res.Body)
	}
	display, main := results[0].(map[string]any), results[1].(map[string]any)
	if display["is_main_result"] != false || display["png"] != "iVBORw0KGgo=" || display["text"] != "<Figure>" ||
		!reflect.DeepEqual(display["extra"], map[string]any{"image/gif": "R0lG"}) || len(display) != 4 {
		t.Errorf("display result = %v", display)
	}
	wantMain := map[string]any{
		"is_main_result": true, "text": "2", "json": []any{1.0, 2.0}, "data": map[string]any{"x": []any{1.0}},
		"chart": map[string]any{"type": "line"}, "html": "<b>2</b>", "markdown": "**2**", "latex": "$2$",
		"javascript": "f()", "svg": "<svg/>", "jpeg": "/9j/", "pdf": "JVBE",
		"extra": map[string]any{"future": 1.0}, // unknown keys are kept in extra
	}
	if !reflect.DeepEqual(main, wantMain) {
		t.Errorf("main result = %v\nwant %v", main, wantMain)
	}
	wantErr := map[string]any{"name": "ZeroDivisionError", "value": "division by zero", "traceback": "Traceback...\nZeroDivisionError: division by zero"}
	if !reflect.DeepEqual(ex["error"], wantErr) {
		t.Errorf("error = %v", ex["error"])
	}

	// A context instead of a language; no output at all.
	code.RunCodeFn = scriptedCell(&got)
	res = h.do("POST", "/v1/sandboxes/"+sbID+"/execute", `{"code":"x = 1","context_id":"ctx-1"}`)
	if res.Status != 200 || got.ContextID != "ctx-1" || got.Language != "" || got.Timeout != 0 {
		t.Fatalf("context run: %d %+v", res.Status, got)
	}
	if body := strings.TrimSpace(string(res.Body)); body != `{"results":[],"logs":{"stdout":[],"stderr":[]},"error":null,"execution_count":0}` {
		t.Errorf("empty execution = %s", body)
	}
}

func TestRunCodeUnexpectedEnd(t *testing.T) {
	h, code := newCodeHarness(t)
	code.RunCodeFn = scriptedCell(nil,
		`{"type":"number_of_executions","execution_count":1}`,
		`{"type":"error","name":"KeyboardInterrupt","value":"","traceback":["line 1","line 2"]}`,
		`{"type":"unexpected_end_of_execution"}`)
	res := h.do("POST", "/v1/sandboxes/"+sbID+"/execute", `{"code":"import os; os._exit(1)"}`)
	e, _ := res.Obj(t)["error"].(map[string]any)
	if res.Status != 200 || e["name"] != "UnexpectedEndOfExecution" || !strings.Contains(e["value"].(string), "unexpectedly") {
		t.Errorf("unexpected end: %d %s", res.Status, res.Body)
	}

	// Jupyter's list traceback is joined when it is the last error.
	code.RunCodeFn = scriptedCell(nil, `{"type":"error","name":"E","value":"v","traceback":["line 1","line 2"]}`)
	res = h.do("POST", "/v1/sandboxes/"+sbID+"/execute", `{"code":"raise E"}`)
	if e, _ := res.Obj(t)["error"].(map[string]any); e["traceback"] != "line 1\nline 2" {
		t.Errorf("list traceback: %s", res.Body)
	}
}

func TestRunCodeBadRequests(t *testing.T) {
	h, code := newCodeHarness(t)
	code.RunCodeFn = func(context.Context, domain.Principal, string, domain.RunCode, func(domain.CodeEvent) error) error {
		t.Error("the service was called for a bad request")
		return nil
	}
	cases := []struct{ body, field, msg string }{
		{`{}`, "code", `"code" is required`},
		{`{"code":""}`, "code", `"code" is required`},
		{`{"code":"1","language":"python","context_id":"c"}`, "context_id", "not both"},
		{`{"code":"1","timeout":-1}`, "timeout", "negative"},
		{`{"code":"1","timeout":100000}`, "timeout", "at most"},
		{`{"code":"1","timeout":1.5}`, "timeout", "expected integer"},
		{`{"code":1}`, "code", "expected string"},
		{`{"code":"1","env_vars":{}}`, "env_vars", `unknown field "env_vars"`},
	}
	for _, c := range cases {
		m := h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/execute", c.body), 400, "invalid", c.field)
		if !strings.Contains(m["message"].(string), c.msg) {
			t.Errorf("%s: message %q lacks %q", c.body, m["message"], c.msg)
		}
	}
	h.wantError(h.do("POST", "/v1/sandboxes/NOT-AN-ID/execute", `{"code":"1"}`), 404, "not_found", "")
	h.wantError(h.do("GET", "/v1/sandboxes/"+sbID+"/execute", nil), 405, "method_not_allowed", "")
}

func TestRunCodeServiceErrors(t *testing.T) {
	h, code := newCodeHarness(t)
	code.RunCodeFn = scriptedCell(nil, cellLines...)
	h.wantError(h.do("POST", "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz/execute", `{"code":"1"}`), 404, "not_found", "")
	code.RunCodeFn = func(context.Context, domain.Principal, string, domain.RunCode, func(domain.CodeEvent) error) error {
		return domain.Errorf(domain.KindConflict, "this sandbox has no code interpreter; create the sandbox from the code-interpreter template")
	}
	h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/execute", `{"code":"1"}`), 409, "conflict", "")
	// Not streamed, a failure after some lines is still a plain JSON error.
	code.RunCodeFn = func(_ context.Context, _ domain.Principal, _ string, _ domain.RunCode, onEvent func(domain.CodeEvent) error) error {
		_ = onEvent(domain.CodeEvent{Type: "stdout", Raw: json.RawMessage(`{"type":"stdout","text":"x"}`)})
		return domain.Errorf(domain.KindUnavailable, "the code interpreter's stream broke off")
	}
	h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/execute", `{"code":"1"}`), 503, "unavailable", "")
}

func TestRunCodeStream(t *testing.T) {
	for _, how := range []string{"body", "accept"} {
		t.Run(how, func(t *testing.T) {
			h, code := newCodeHarness(t)
			code.RunCodeFn = scriptedCell(nil, cellLines...)
			r := h.req("POST", "/v1/sandboxes/"+sbID+"/execute", `{"code":"1/0","stream":true}`)
			if how == "accept" {
				r = h.req("POST", "/v1/sandboxes/"+sbID+"/execute", `{"code":"1/0"}`)
				r.Header.Set("Accept", "application/json, text/event-stream")
			}
			res := h.serve(r)
			if res.Status != 200 || res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get("Cache-Control") != "no-cache" {
				t.Fatalf("stream: %d %v\n%s", res.Status, res.Header, res.Body)
			}
			evs := parseSSE(t, res.Body)
			var want []sseEvent
			for _, l := range cellLines {
				var head struct{ Type string }
				_ = json.Unmarshal([]byte(l), &head)
				if head.Type != "keepalive" { // the interpreter's keep-alive becomes a comment
					want = append(want, sseEvent{name: head.Type, data: l})
				}
			}
			if !reflect.DeepEqual(evs, want) {
				t.Errorf("events:\n got %v\nwant %v", evs, want)
			}
			if !strings.Contains(string(res.Body), "\n\n: keepalive\n\n") {
				t.Errorf("interpreter keep-alive not relayed as a comment:\n%s", res.Body)
			}
		})
	}
}

func TestRunCodeStreamOddLines(t *testing.T) {
	h, code := newCodeHarness(t)
	code.RunCodeFn = func(_ context.Context, _ domain.Principal, _ string, _ domain.RunCode, onEvent func(domain.CodeEvent) error) error {
		_ = onEvent(domain.CodeEvent{Type: "stdout", Raw: json.RawMessage("{\n  \"type\": \"stdout\",\n  \"text\": \"a\\nb\"\n}")})
		_ = onEvent(domain.CodeEvent{Type: "bad\nname", Raw: json.RawMessage(`{"type":"bad\nname"}`)})
		return onEvent(domain.CodeEvent{Type: "end_of_execution", Raw: json.RawMessage(`{"type":"end_of_execution"}`)})
	}
	res := h.do("POST", "/v1/sandboxes/"+sbID+"/execute", `{"code":"1","stream":true}`)
	evs := parseSSE(t, res.Body)
	want := []sseEvent{{"stdout", `{"type":"stdout","text":"a\nb"}`}, {"end_of_execution", `{"type":"end_of_execution"}`}}
	if !reflect.DeepEqual(evs, want) {
		t.Errorf("events = %v\n%s", evs, res.Body)
	}
	if !strings.Contains(h.logs.String(), "unusable type") {
		t.Error("dropped line not logged")
	}
}

func TestRunCodeStreamEmpty(t *testing.T) {
	h, code := newCodeHarness(t)
	code.RunCodeFn = scriptedCell(nil)
	res := h.do("POST", "/v1/sandboxes/"+sbID+"/execute", `{"code":"pass","stream":true}`)
	if res.Status != 200 || res.Header.Get("Content-Type") != "text/event-stream" || len(res.Body) != 0 {
		t.Errorf("empty stream: %d %v %q", res.Status, res.Header, res.Body)
	}
}

func TestRunCodeStreamErrors(t *testing.T) {
	h, code := newCodeHarness(t)
	code.RunCodeFn = scriptedCell(nil, cellLines...)
	// Fails before the first line: an ordinary JSON error with its status.
	h.wantError(h.do("POST", "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz/execute", `{"code":"1","stream":true}`), 404, "not_found", "")
	h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/execute", `{"stream":true}`), 400, "invalid", "code")

	// Fails mid-way: the stream ends with an error event carrying an Error body, which
	// the client tells from the interpreter's error line by its missing type.
	code.RunCodeFn = func(_ context.Context, _ domain.Principal, _ string, _ domain.RunCode, onEvent func(domain.CodeEvent) error) error {
		_ = onEvent(domain.CodeEvent{Type: "number_of_executions", Raw: json.RawMessage(`{"type":"number_of_executions","execution_count":1}`)})
		_ = onEvent(domain.CodeEvent{Type: "error", Raw: json.RawMessage(`{"type":"error","name":"E","value":"v","traceback":"t"}`)})
		return domain.Errorf(domain.KindUnavailable, "the code interpreter's stream broke off")
	}
	res := h.do("POST", "/v1/sandboxes/"+sbID+"/execute", `{"code":"1","stream":true}`)
	evs := parseSSE(t, res.Body)
	if res.Status != 200 || len(evs) != 3 || evs[1].name != "error" || evs[2].name != "error" {
		t.Fatalf("events: %d %s", res.Status, res.Body)
	}
	var eb map[string]any
	_ = json.Unmarshal([]byte(evs[2].data), &eb)
	if eb["code"] != "unavailable" || eb["message"] != "the code interpreter's stream broke off" || eb["request_id"] != res.Header.Get("X-Request-Id") || eb["type"] != nil {
		t.Errorf("error event = %v", eb)
	}
}

func TestRunCodeStreamKeepAlive(t *testing.T) {
	h, code := newCodeHarness(t, WithKeepAlive(5*time.Millisecond))
	code.RunCodeFn = func(_ context.Context, _ domain.Principal, _ string, _ domain.RunCode, onEvent func(domain.CodeEvent) error) error {
		time.Sleep(30 * time.Millisecond) // a quiet cell
		return onEvent(domain.CodeEvent{Type: "end_of_execution", Raw: json.RawMessage(`{"type":"end_of_execution"}`)})
	}
	res := h.do("POST", "/v1/sandboxes/"+sbID+"/execute", `{"code":"sleep","stream":true}`)
	if !strings.Contains(string(res.Body), ": keep-alive\n\n") {
		t.Errorf("no keep-alive comment in %q", res.Body)
	}
	if evs := parseSSE(t, res.Body); len(evs) != 1 || evs[0].name != "end_of_execution" {
		t.Errorf("events = %+v", evs)
	}
}

func TestRunCodeStreamOverHTTP(t *testing.T) {
	// Through a real server, to check that each line is flushed as it comes.
	h, code := newCodeHarness(t)
	release := make(chan struct{})
	code.RunCodeFn = func(_ context.Context, _ domain.Principal, _ string, _ domain.RunCode, onEvent func(domain.CodeEvent) error) error {
		_ = onEvent(domain.CodeEvent{Type: "stdout", Raw: json.RawMessage(`{"type":"stdout","text":"first"}`)})
		<-release
		return nil
	}
	srv := newHTTPServer(t, h)
	req, _ := http.NewRequest("POST", srv.URL+"/v1/sandboxes/"+sbID+"/execute", strings.NewReader(`{"code":"x","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 256)
	n, err := resp.Body.Read(buf) // must not block: the first line was flushed
	if err != nil || !strings.Contains(string(buf[:n]), "event: stdout") {
		t.Errorf("first read: %q, %v", buf[:n], err)
	}
	close(release)
}

func TestCodeContexts(t *testing.T) {
	h, code := newCodeHarness(t)
	var calls []string
	code.CreateCodeContextFn = func(_ context.Context, p domain.Principal, id, language, cwd string) (*domain.CodeContext, error) {
		if !reflect.DeepEqual(p, testPrincipal) {
			t.Errorf("principal = %+v", p)
		}
		calls = append(calls, "create "+id+" "+language+" "+cwd)
		if language == "" {
			language = "python"
		}
		return &domain.CodeContext{ID: "ctx-1", Language: language, Cwd: "/home/user"}, nil
	}
	code.ListCodeContextsFn = func(_ context.Context, _ domain.Principal, id string) ([]domain.CodeContext, error) {
		if err := notFoundUnless(id); err != nil {
			return nil, err
		}
		return []domain.CodeContext{{ID: "py", Language: "python", Cwd: "/home/user"}, {ID: "ctx-1", Language: "r", Cwd: "/tmp"}}, nil
	}
	code.RestartCodeContextFn = func(_ context.Context, _ domain.Principal, id, ctxID string) error {
		calls = append(calls, "restart "+id+" "+ctxID)
		return nil
	}
	code.DeleteCodeContextFn = func(_ context.Context, _ domain.Principal, id, ctxID string) error {
		calls = append(calls, "delete "+id+" "+ctxID)
		if ctxID == "gone" {
			return domain.Errorf(domain.KindNotFound, "code interpreter: context gone not found")
		}
		return nil
	}
	base := "/v1/sandboxes/" + sbID + "/contexts"

	res := h.do("POST", base, `{"language":"r","cwd":"/tmp"}`)
	if res.Status != 201 || res.Obj(t)["id"] != "ctx-1" || res.Obj(t)["language"] != "r" {
		t.Errorf("create: %d %s", res.Status, res.Body)
	}
	if res := h.do("POST", base, nil); res.Status != 201 || res.Obj(t)["language"] != "python" {
		t.Errorf("create with no body: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("POST", base, `{"lang":"r"}`), 400, "invalid", "lang")

	res = h.do("GET", base, nil)
	if res.Status != 200 || !strings.Contains(string(res.Body), `{"contexts":[{"id":"py","language":"python","cwd":"/home/user"},{"id":"ctx-1","language":"r","cwd":"/tmp"}]}`) {
		t.Errorf("list: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("GET", "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz/contexts", nil), 404, "not_found", "")

	if res := h.do("POST", base+"/ctx-1/restart", nil); res.Status != 204 || len(res.Body) != 0 {
		t.Errorf("restart: %d %s", res.Status, res.Body)
	}
	if res := h.do("DELETE", base+"/ctx%2F1", nil); res.Status != 204 {
		t.Errorf("delete: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("DELETE", base+"/gone", nil), 404, "not_found", "")
	want := []string{"create " + sbID + " r /tmp", "create " + sbID + "  ", "restart " + sbID + " ctx-1", "delete " + sbID + " ctx/1", "delete " + sbID + " gone"}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("calls:\n got %q\nwant %q", calls, want)
	}
	h.wantError(h.do("GET", base+"/ctx-1", nil), 405, "method_not_allowed", "")
}

func TestCodeNotConfigured(t *testing.T) {
	h := newHarness(t)
	base := "/v1/sandboxes/" + sbID
	for _, c := range []struct{ method, path, body string }{
		{"POST", base + "/execute", `{"code":"1"}`},
		{"POST", base + "/execute", `{"code":"1","stream":true}`},
		{"POST", base + "/contexts", `{}`},
		{"GET", base + "/contexts", ""},
		{"DELETE", base + "/contexts/c", ""},
		{"POST", base + "/contexts/c/restart", ""},
	} {
		m := h.wantError(h.do(c.method, c.path, c.body), 501, "not_implemented", "")
		if !strings.Contains(m["message"].(string), "code execution is not configured") {
			t.Errorf("%s %s: message %q", c.method, c.path, m["message"])
		}
	}
	// Authentication still comes first.
	r := h.req("GET", base+"/contexts", nil)
	r.Header.Del("Authorization")
	h.wantError(h.serve(r), 401, "unauthorized", "")
}

func TestRunCodeKeepsAtMostMaxExecutionPart(t *testing.T) {
	h, code := newCodeHarness(t)
	line := `{"type":"stdout","text":"` + strings.Repeat("x", 1<<20) + `"}`
	lines := []string{`{"type":"stderr","text":"kept\n"}`}
	for range 3 * maxExecutionPart / len(line) {
		lines = append(lines, line)
	}
	code.RunCodeFn = scriptedCell(nil, lines...)
	res := h.do("POST", "/v1/sandboxes/"+sbID+"/execute", `{"code":"print('x' * 2**20) in a loop"}`)
	if res.Status != 200 {
		t.Fatalf("execute: %d %.200s", res.Status, res.Body)
	}
	var ex struct {
		Logs      executionLogs `json:"logs"`
		Truncated bool          `json:"truncated"`
	}
	if err := json.Unmarshal(res.Body, &ex); err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, s := range ex.Logs.Stdout {
		kept += len(s)
	}
	if !ex.Truncated || kept > maxExecutionPart || kept < maxExecutionPart/2 || len(ex.Logs.Stderr) != 1 {
		t.Errorf("kept %d bytes of stdout in %d lines, stderr %q, truncated %v; want at most %d bytes and truncated",
			kept, len(ex.Logs.Stdout), ex.Logs.Stderr, ex.Truncated, maxExecutionPart)
	}
}
