package warren

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func out(name, data string) string {
	return ev(name, map[string]string{"data": base64.StdEncoding.EncodeToString([]byte(data)), "text": data})
}

// TestRunStreamsInOrder: events arrive at the callbacks in stream order, the result
// has the exact bytes, unknown events are skipped, and the request is as documented.
func TestRunStreamsInOrder(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		sse(w, ": keep-alive\n\n", ev("start", map[string]int{"pid": 9}), out("stdout", "one\n"),
			out("stderr", "warn\n"), ev("future", map[string]int{}), out("stdout", "\xff\x00two\n"),
			ev("end", map[string]any{"exit_code": 0}))
	})
	var got []string
	var mu sync.Mutex
	record := func(kind string) func([]byte) {
		return func(b []byte) { mu.Lock(); got = append(got, kind+":"+string(b)); mu.Unlock() }
	}
	res, err := f.client().Sandbox("abc").Commands().Run(context.Background(), "echo one", RunOptions{
		Env: map[string]string{"A": "1"}, Cwd: "/tmp", User: "root", Timeout: 1500 * time.Millisecond,
		OnStdout: record("out"), OnStderr: record("err"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"out:one\n", "err:warn\n", "out:\xff\x00two\n"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("callbacks %q, want %q", got, want)
	}
	if *res != (CommandResult{PID: 9, Stdout: "one\n\xff\x00two\n", Stderr: "warn\n"}) {
		t.Errorf("result %+v", res)
	}
	r := f.last()
	body := decodeBody(t, r.body)
	wantBody := map[string]any{"cmd": "echo one", "env": map[string]any{"A": "1"}, "cwd": "/tmp", "user": "root", "timeout": 2.0, "stream": true}
	if r.method != "POST" || r.path != "/v1/sandboxes/abc/commands" || r.header.Get("Accept") != "text/event-stream" || !reflect.DeepEqual(body, wantBody) {
		t.Errorf("request %s %s %v %v", r.method, r.path, r.header, body)
	}
}

// TestRunStreamsLive: a callback sees output while the command still runs.
func TestRunStreamsLive(t *testing.T) {
	seen := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		sse(w, ev("start", map[string]int{"pid": 1}), out("stdout", "step 1\n"))
		select {
		case <-seen:
		case <-time.After(5 * time.Second):
			t.Error("the callback did not get step 1 while the command ran")
		}
		sse(w, out("stdout", "step 2\n"), ev("end", map[string]any{"exit_code": 0}))
	})
	var once sync.Once
	res, err := f.client().Sandbox("abc").Commands().Run(context.Background(), "work", RunOptions{
		OnStdout: func([]byte) { once.Do(func() { close(seen) }) },
	})
	if err != nil || res.Stdout != "step 1\nstep 2\n" {
		t.Errorf("res %+v err %v", res, err)
	}
}

func TestRunExitCodes(t *testing.T) {
	cases := []struct {
		end   map[string]any
		allow bool
		want  string // "" for no error
	}{
		{map[string]any{"exit_code": 0}, false, ""},
		{map[string]any{"exit_code": 3, "error": "exit status 3"}, false, "command exited with code 3: boom"},
		{map[string]any{"exit_code": 3, "error": "exit status 3"}, true, ""},
		{map[string]any{"exit_code": -1, "error": "signal: killed"}, false, "command exited with code -1 (signal: killed): boom"},
	}
	for _, c := range cases {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			sse(w, ev("start", map[string]int{"pid": 1}), out("stderr", "boom\n"), ev("end", c.end))
		})
		res, err := f.client().Sandbox("abc").Commands().Run(context.Background(), "x", RunOptions{AllowNonZeroExit: c.allow})
		if c.want == "" {
			if err != nil || res.ExitCode != int(c.end["exit_code"].(int)) {
				t.Errorf("%v: res %+v err %v", c.end, res, err)
			}
			continue
		}
		var ce *CommandExitError
		if !errors.As(err, &ce) || err.Error() != c.want || res != ce.CommandResult || ce.Stderr != "boom\n" {
			t.Errorf("%v: res %+v err %v", c.end, res, err)
		}
	}
}

func TestRunStreamFailures(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		events []string
		check  func(error) bool
	}{
		{"error event", []string{ev("start", map[string]int{"pid": 1}), ev("error", map[string]string{"code": "unavailable", "message": "agent gone", "request_id": "req_e"})},
			func(err error) bool {
				var ae *APIError
				return errors.As(err, &ae) && ae.RequestID == "req_e" && ae.Status == 503 && errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrTimeout)
			}},
		{"timed out", []string{ev("start", map[string]int{"pid": 1}), ev("error", map[string]string{"code": "unavailable", "message": "command timed out after 1s", "request_id": "r"})},
			func(err error) bool { return errors.Is(err, ErrTimeout) && errors.Is(err, ErrUnavailable) }},
		{"no end", []string{ev("start", map[string]int{"pid": 1}), out("stdout", "x")},
			func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"bad data", []string{ev("start", map[string]int{"pid": 1}), "event: stdout\ndata: {\"data\":\"%%%\"}\n\n"},
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "bad stdout data") }},
	}
	for _, c := range cases {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) { sse(w, c.events...) })
		if _, err := f.client().Sandbox("abc").Commands().Run(ctx, "x", RunOptions{}); !c.check(err) {
			t.Errorf("%s: err %v", c.name, err)
		}
	}
	// Errors before the stream are ordinary error responses.
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		apiError(w, 404, "not_found", "sandbox \"abc\" not found")
	})
	if _, err := f.client().Sandbox("abc").Commands().Run(ctx, "x", RunOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("404: %v", err)
	}
	// A server that answers with JSON instead of a stream.
	f = newFake(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{"exit_code": 0}) })
	if _, err := f.client().Sandbox("abc").Commands().Run(ctx, "x", RunOptions{}); err == nil || !strings.Contains(err.Error(), "not an event stream") {
		t.Errorf("JSON answer: %v", err)
	}
}

func TestRunStdinAndArgs(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		sse(w, ev("start", map[string]int{"pid": 1}), ev("end", map[string]any{"exit_code": 0}))
	})
	cmds := f.client().Sandbox("abc").Commands()
	ctx := context.Background()
	if _, err := cmds.RunArgs(ctx, []string{"cat", "-n"}, RunOptions{Stdin: strings.NewReader("text\n")}); err != nil {
		t.Fatal(err)
	}
	if b := decodeBody(t, f.last().body); !reflect.DeepEqual(b["args"], []any{"cat", "-n"}) || b["stdin"] != "text\n" || b["stdin_base64"] != nil || b["cmd"] != nil {
		t.Errorf("text stdin: %v", b)
	}
	if _, err := cmds.Run(ctx, "cat", RunOptions{Stdin: bytes.NewReader([]byte{0xff, 0})}); err != nil {
		t.Fatal(err)
	}
	if b := decodeBody(t, f.last().body); b["stdin_base64"] != "/wA=" || b["stdin"] != nil {
		t.Errorf("binary stdin: %v", b)
	}
	n := len(f.requests())
	_, err := cmds.Run(ctx, "cat", RunOptions{Stdin: bytes.NewReader(make([]byte, MaxStdin+1))})
	if err == nil || !strings.Contains(err.Error(), "larger than 512 KiB") || len(f.requests()) != n {
		t.Errorf("oversized stdin: %v", err)
	}
	// Run bounds the command by ctx's deadline when no Timeout is given.
	dctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if _, err := cmds.Run(dctx, "true", RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if b := decodeBody(t, f.last().body); b["timeout"] != 90.0 {
		t.Errorf("timeout from the deadline: %v", b["timeout"])
	}
}

// commandFake serves commands: "sleep" streams until a kill command arrives, then ends
// killed; the kill command (bash -c killGroup ... PID) ends 0.
type commandFake struct {
	mu     sync.Mutex
	killed chan struct{}
	kills  []map[string]any
}

func (cf *commandFake) handle(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body := decodeBody(t, mustRead(r))
		if args, ok := body["args"].([]any); ok && len(args) == 5 && args[2] == killGroup {
			cf.mu.Lock()
			cf.kills = append(cf.kills, body)
			cf.mu.Unlock()
			close(cf.killed)
			sse(w, ev("start", map[string]int{"pid": 50}), ev("end", map[string]any{"exit_code": 0}))
			return
		}
		sse(w, ev("start", map[string]int{"pid": 42}), out("stdout", "started\n"))
		select {
		case <-cf.killed:
			sse(w, ev("end", map[string]any{"exit_code": -1, "error": "signal: killed"}))
		case <-r.Context().Done():
		}
	}
}

func mustRead(r *http.Request) []byte {
	b, _ := io.ReadAll(r.Body)
	return b
}

func TestStartWaitKill(t *testing.T) {
	cf := &commandFake{killed: make(chan struct{})}
	f := newFake(t, cf.handle(t))
	cmds := f.client().Sandbox("abc").Commands()
	startCtx, cancelStart := context.WithCancel(context.Background())
	var outMu sync.Mutex
	var outs []string
	h, err := cmds.Start(startCtx, "sleep infinity", RunOptions{OnStdout: func(b []byte) {
		outMu.Lock()
		outs = append(outs, string(b))
		outMu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	cancelStart() // the start context ending must not stop the handle
	if h.PID != 42 {
		t.Errorf("PID = %d", h.PID)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer wcancel()
	if _, err := h.Wait(wctx); !errors.Is(err, ErrTimeout) {
		t.Errorf("Wait before the end: %v", err)
	}
	if err := h.Kill(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := h.Wait(context.Background())
	var ce *CommandExitError
	if !errors.As(err, &ce) || ce.ExitCode != -1 || res == nil || res.Error != "signal: killed" || h.Stdout() != "started\n" {
		t.Errorf("after Kill: res %+v err %v stdout %q", res, err, h.Stdout())
	}
	outMu.Lock()
	if fmt.Sprint(outs) != "[started\n]" {
		t.Errorf("callback output %q", outs)
	}
	outMu.Unlock()
	if len(cf.kills) != 1 || cf.kills[0]["user"] != "root" || cf.kills[0]["args"].([]any)[4] != "42" {
		t.Errorf("kill requests %v", cf.kills)
	}
	// Killing again is a no-op.
	if err := h.Kill(context.Background()); err != nil || len(f.requests()) != 2 {
		t.Errorf("second Kill: %v, %d requests", err, len(f.requests()))
	}
}

func TestStartErrorsAndDisconnect(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		apiError(w, 400, "invalid", "user \"nobody\" does not exist")
	})
	cmds := f.client().Sandbox("abc").Commands()
	if _, err := cmds.Start(context.Background(), "x", RunOptions{User: "nobody"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("start error: %v", err)
	}
	cf := &commandFake{killed: make(chan struct{})}
	f.set(cf.handle(t))
	h, err := cmds.StartArgs(context.Background(), []string{"sleep", "9"}, RunOptions{AllowNonZeroExit: true})
	if err != nil {
		t.Fatal(err)
	}
	h.Disconnect()
	select {
	case <-h.Done():
	default:
		t.Error("Done not closed after Disconnect")
	}
	if _, err := h.Wait(context.Background()); err == nil {
		t.Error("Wait after Disconnect succeeded")
	}
	// A start context that ends before the start event aborts Start.
	f.set(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := cmds.Start(ctx, "x", RunOptions{}); !errors.Is(err, ErrTimeout) {
		t.Errorf("start deadline: %v", err)
	}
}

func TestTimeoutFromDeadline(t *testing.T) {
	bg := context.Background()
	near, c1 := context.WithTimeout(bg, 90*time.Second)
	defer c1()
	far, c2 := context.WithTimeout(bg, 48*time.Hour)
	defer c2()
	past, c3 := context.WithTimeout(bg, time.Millisecond)
	defer c3()
	time.Sleep(2 * time.Millisecond)
	for _, c := range []struct {
		ctx      context.Context
		d        time.Duration
		min, max time.Duration
	}{
		{bg, 0, 0, 0},
		{bg, 5 * time.Second, 5 * time.Second, 5 * time.Second},
		{near, 0, 89 * time.Second, 90 * time.Second},
		{near, 3 * time.Second, 3 * time.Second, 3 * time.Second},
		{far, 0, 0, 0},
		{past, 0, time.Second, time.Second},
	} {
		if got := timeoutFromDeadline(c.ctx, c.d); got < c.min || got > c.max {
			t.Errorf("timeoutFromDeadline(%v) = %v, want in [%v, %v]", c.d, got, c.min, c.max)
		}
	}
}
