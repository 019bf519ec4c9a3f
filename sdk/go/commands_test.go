package warren

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
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
		{"sandbox stopped", []string{ev("start", map[string]int{"pid": 1}), ev("error", map[string]string{"code": "conflict", "message": "sandbox abc was stopped", "request_id": "r"})},
			func(err error) bool {
				var ae *APIError
				return errors.As(err, &ae) && ae.Status == 409 && errors.Is(err, ErrConflict) && !errors.Is(err, ErrTimeout)
			}},
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

// TestRunTimeout: a command killed at its timeout is a *CommandTimeoutError that
// carries the output until then and matches ErrTimeout, even with AllowNonZeroExit.
func TestRunTimeout(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		sse(w, ev("start", map[string]int{"pid": 5}), out("stdout", "partial\n"), out("stderr", "working\n"),
			ev("end", map[string]any{"exit_code": -1, "error": "command timed out after 1s and was killed", "timed_out": true}))
	})
	cmds := f.client().Sandbox("abc").Commands()
	for _, allow := range []bool{false, true} {
		res, err := cmds.Run(context.Background(), "sleep 30", RunOptions{Timeout: time.Second, AllowNonZeroExit: allow})
		var te *CommandTimeoutError
		var ce *CommandExitError
		if !errors.As(err, &te) || !errors.Is(err, ErrTimeout) || errors.As(err, &ce) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("allow=%v: err %#v", allow, err)
		}
		want := CommandResult{PID: 5, ExitCode: -1, Stdout: "partial\n", Stderr: "working\n", Error: "command timed out after 1s and was killed", TimedOut: true}
		if res == nil || *res != want || te.CommandResult != res {
			t.Errorf("allow=%v: result %+v", allow, res)
		}
		if got := err.Error(); got != "command timed out after 1s and was killed: working" {
			t.Errorf("Error() = %q", got)
		}
	}
	if b := decodeBody(t, f.last().body); b["timeout"] != 1.0 || b["background"] != nil {
		t.Errorf("request %v", b)
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
	if _, err := cmds.Run(ctx, "cat", RunOptions{StdinOpen: true}); err == nil || !strings.Contains(err.Error(), "Start only") || len(f.requests()) != n {
		t.Errorf("StdinOpen with Run: %v", err)
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
