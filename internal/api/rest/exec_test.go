package rest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// scriptedExec emits start, stdout, stderr (with a non-UTF-8 byte) and end, then
// returns exit code 3.
func scriptedExec(_ context.Context, _ domain.Principal, id string, req domain.ExecRequest, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	if err := notFoundUnless(id); err != nil {
		return nil, err
	}
	res := &domain.ExecResult{ExitCode: 3, Error: "exit status 3", Stdout: []byte("hello\n"), Stderr: []byte("oops\xff\n")}
	if onEvent != nil {
		for _, ev := range []domain.ExecEvent{
			{PID: 42}, {Stdout: []byte("hello\n")}, {Stderr: []byte("oops\xff\n")}, {End: res},
		} {
			if err := onEvent(ev); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

func TestExec(t *testing.T) {
	h := newHarness(t)
	var got domain.ExecRequest
	h.svc.exec = func(ctx context.Context, p domain.Principal, id string, req domain.ExecRequest, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
		got = req
		if onEvent != nil {
			t.Error("non-streamed exec passed an onEvent callback")
		}
		return scriptedExec(ctx, p, id, req, nil)
	}
	body := `{"args":["python3","-c","print(1)"],"env":{"X":"1"},"cwd":"/tmp","user":"root","stdin":"in","timeout":30}`
	res := h.do("POST", "/v1/sandboxes/"+sbID+"/commands", body)
	if res.Status != 200 {
		t.Fatalf("exec: %d %s", res.Status, res.Body)
	}
	want := domain.ExecRequest{Args: []string{"python3", "-c", "print(1)"}, Env: map[string]string{"X": "1"},
		Cwd: "/tmp", User: "root", Stdin: []byte("in"), Timeout: 30 * time.Second}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("request = %+v, want %+v", got, want)
	}
	var out execResponse
	if err := json.Unmarshal(res.Body, &out); err != nil {
		t.Fatal(err)
	}
	if out.ExitCode != 3 || out.Stdout != "hello\n" || out.Stderr != "oops\uFFFD\n" || out.Error != "exit status 3" {
		t.Errorf("result = %+v", out)
	}

	res = h.do("POST", "/v1/sandboxes/"+sbID+"/commands", `{"cmd":"echo hi","stdin_base64":"`+base64.StdEncoding.EncodeToString([]byte{0, 0xff})+`"}`)
	if res.Status != 200 || got.Cmd != "echo hi" || string(got.Stdin) != "\x00\xff" {
		t.Errorf("cmd with binary stdin: %d, request %+v", res.Status, got)
	}
	h.wantError(h.do("POST", "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz/commands", `{"cmd":"true"}`), 404, "not_found", "")
}

func TestExecBadBodies(t *testing.T) {
	h := newHarness(t)
	cases := []struct{ body, field, msg string }{
		{`{}`, "cmd", "one of cmd"},
		{`{"cmd":"ls","args":["ls"]}`, "cmd", "not both"},
		{`{"args":[""]}`, "args", "args[0]"},
		{`{"args":"ls"}`, "args", `field "args": expected array, got string`},
		{`{"cmd":"ls","timeout":-1}`, "timeout", "negative"},
		{`{"cmd":"ls","timeout":100000}`, "timeout", "at most"},
		{`{"cmd":"ls","stdin":"a","stdin_base64":"YQ=="}`, "stdin", "not both"},
		{`{"cmd":"ls","stdin_base64":"%%%"}`, "stdin_base64", "base64"},
		{`{"cmd":"ls","shell":true}`, "shell", `unknown field "shell"`},
	}
	for _, c := range cases {
		m := h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/commands", c.body), 400, "invalid", c.field)
		if !strings.Contains(m["message"].(string), c.msg) {
			t.Errorf("%s: message %q lacks %q", c.body, m["message"], c.msg)
		}
	}
}

func TestExecStream(t *testing.T) {
	for _, how := range []string{"body", "accept"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t)
			h.svc.exec = scriptedExec
			r := h.req("POST", "/v1/sandboxes/"+sbID+"/commands", `{"cmd":"x","stream":true}`)
			if how == "accept" {
				r = h.req("POST", "/v1/sandboxes/"+sbID+"/commands", `{"cmd":"x"}`)
				r.Header.Set("Accept", "text/event-stream")
			}
			res := h.serve(r)
			if res.Status != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("stream: %d %v", res.Status, res.Header)
			}
			evs := parseSSE(t, res.Body)
			var names []string
			for _, ev := range evs {
				names = append(names, ev.name)
			}
			if strings.Join(names, ",") != "start,stdout,stderr,end" {
				t.Fatalf("events = %v\n%s", names, res.Body)
			}
			var start startEvent
			var stderr outputEvent
			var end endEvent
			_ = json.Unmarshal([]byte(evs[0].data), &start)
			_ = json.Unmarshal([]byte(evs[2].data), &stderr)
			_ = json.Unmarshal([]byte(evs[3].data), &end)
			raw, _ := base64.StdEncoding.DecodeString(stderr.Data)
			if start.PID != 42 || string(raw) != "oops\xff\n" || stderr.Text != "oops\uFFFD\n" || end.ExitCode != 3 || end.Error != "exit status 3" {
				t.Errorf("events: %s", res.Body)
			}
		})
	}
}

func TestExecStreamErrors(t *testing.T) {
	h := newHarness(t)
	h.svc.exec = scriptedExec
	// Fails before the stream starts: an ordinary JSON error with its status.
	res := h.do("POST", "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz/commands", `{"cmd":"x","stream":true}`)
	h.wantError(res, 404, "not_found", "")

	// Fails mid-way: the stream ends with an error event.
	h.svc.exec = func(_ context.Context, _ domain.Principal, _ string, _ domain.ExecRequest, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
		_ = onEvent(domain.ExecEvent{PID: 7})
		_ = onEvent(domain.ExecEvent{Stdout: []byte("partial")})
		return nil, domain.Errorf(domain.KindUnavailable, "sandbox agent went away")
	}
	res = h.do("POST", "/v1/sandboxes/"+sbID+"/commands", `{"cmd":"x","stream":true}`)
	evs := parseSSE(t, res.Body)
	if res.Status != 200 || len(evs) != 3 || evs[2].name != "error" {
		t.Fatalf("events: %d %s", res.Status, res.Body)
	}
	var eb errorBody
	_ = json.Unmarshal([]byte(evs[2].data), &eb)
	if eb.Code != "unavailable" || eb.Message != "sandbox agent went away" || eb.RequestID != res.Header.Get("X-Request-Id") {
		t.Errorf("error event = %+v", eb)
	}
}

// A quiet streamed command gets keep-alive comments, and its events stay whole around
// them. The command ends only once the client has read a keep-alive, so the test waits
// for the ticker instead of betting on it firing within a sleep (it once did not, under
// load).
func TestExecStreamKeepAlive(t *testing.T) {
	h := newHarness(t, WithKeepAlive(5*time.Millisecond))
	release := make(chan struct{})
	h.svc.exec = func(ctx context.Context, _ domain.Principal, _ string, _ domain.ExecRequest, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
		select { // a quiet command
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &domain.ExecResult{}, nil
	}
	srv := newHTTPServer(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/sandboxes/"+sbID+"/commands", strings.NewReader(`{"cmd":"sleep 1","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	buf := make([]byte, 256)
	for !strings.Contains(body.String(), ": keep-alive\n\n") {
		n, err := resp.Body.Read(buf)
		body.Write(buf[:n])
		if err != nil {
			t.Fatalf("no keep-alive comment in %q within 10 s of a quiet command (keep-alive every 5 ms): %v", body.String(), err)
		}
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body.Write(rest)
	if evs := parseSSE(t, body.Bytes()); len(evs) != 1 || evs[0].name != "end" {
		t.Errorf("events = %+v, want one end (body %q)", evs, body.String())
	}
}

func TestExecStreamOverHTTP(t *testing.T) {
	// Through a real server, to check that events are flushed as they happen.
	h := newHarness(t)
	release := make(chan struct{})
	h.svc.exec = func(ctx context.Context, _ domain.Principal, _ string, _ domain.ExecRequest, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
		_ = onEvent(domain.ExecEvent{PID: 1})
		<-release
		return &domain.ExecResult{}, nil
	}
	srv := newHTTPServer(t, h)
	req, _ := http.NewRequest("POST", srv.URL+"/v1/sandboxes/"+sbID+"/commands", strings.NewReader(`{"cmd":"x","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 256)
	n, err := resp.Body.Read(buf) // must not block: "start" was flushed
	if err != nil || !strings.Contains(string(buf[:n]), "event: start") {
		t.Errorf("first read: %q, %v", buf[:n], err)
	}
	close(release)
}

func TestExecTruncated(t *testing.T) {
	h := newHarness(t)
	h.svc.exec = func(ctx context.Context, p domain.Principal, id string, req domain.ExecRequest, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
		return &domain.ExecResult{Stdout: []byte("start of it"), Truncated: true}, nil
	}
	res := h.do("POST", "/v1/sandboxes/"+sbID+"/commands", `{"cmd":"head -c 64G /dev/zero"}`)
	var out map[string]any
	if err := json.Unmarshal(res.Body, &out); err != nil || res.Status != 200 {
		t.Fatalf("exec: %d %s", res.Status, res.Body)
	}
	if out["truncated"] != true || out["stdout"] != "start of it" {
		t.Errorf("a truncated result answered %s, want truncated true", res.Body)
	}
}
