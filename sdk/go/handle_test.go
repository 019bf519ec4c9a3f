package warren

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// processFake serves the background-process routes of sandbox abc. A started process
// gets pid 42: its event stream sends start and "started\n", echoes each stdin write as
// "got:<data>", and ends with exit 0 when stdin is closed or -1 when signalled. Process
// 7 ended moments ago with exit 3; process 13's stream breaks because the sandbox
// stops. Other pids are not running.
type processFake struct {
	t       *testing.T
	mu      sync.Mutex
	starts  []map[string]any
	signals []string
	stdin   []map[string]any
	input   chan string
	end     chan map[string]any // ends the process last started
	attach  time.Duration       // delay before answering an attach
}

func newProcessFake(t *testing.T) *processFake {
	return &processFake{t: t, input: make(chan string, 16), end: make(chan map[string]any, 1)}
}

func (pf *processFake) handle(w http.ResponseWriter, r *http.Request) {
	const base = "/v1/sandboxes/abc/"
	path := strings.TrimPrefix(r.URL.Path, base)
	pf.mu.Lock()
	defer pf.mu.Unlock()
	switch {
	case r.Method == "POST" && path == "commands":
		body := decodeBody(pf.t, mustRead(r))
		pf.starts = append(pf.starts, body)
		pf.end = make(chan map[string]any, 1)
		if body["user"] == "nobody" {
			apiError(w, 400, "invalid", "user \"nobody\" does not exist")
			return
		}
		writeJSON(w, 201, map[string]int{"pid": 42})
	case r.Method == "GET" && path == "processes":
		writeJSON(w, 200, map[string]any{"processes": []any{
			map[string]any{"pid": 1, "cmd": "/usr/bin/envd", "args": []string{}, "cwd": "/", "tag": "agent"},
			map[string]any{"pid": 42, "cmd": "/bin/bash", "args": []string{"-c", "cat"}, "cwd": "/home/user"},
		}})
	case r.Method == "GET" && path == "processes/42/events":
		delay, input, end := pf.attach, pf.input, pf.end
		pf.mu.Unlock()
		defer pf.mu.Lock()
		time.Sleep(delay)
		follow(w, r, input, end)
	case r.Method == "GET" && path == "processes/7/events":
		sse(w, ev("start", map[string]int{"pid": 7}), ev("end", map[string]any{"exit_code": 3, "error": "exit status 3"}))
	case r.Method == "GET" && path == "processes/13/events":
		sse(w, ev("start", map[string]int{"pid": 13}), out("stdout", "tick\n"),
			ev("error", map[string]string{"code": "conflict", "message": "sandbox abc was stopped", "request_id": "req_s"}))
	case r.Method == "POST" && path == "processes/42/signal":
		body := decodeBody(pf.t, mustRead(r))
		sig, _ := body["signal"].(string)
		pf.signals = append(pf.signals, sig)
		if sig != "TERM" && sig != "KILL" {
			apiError(w, 400, "invalid", "signal not supported")
			return
		}
		pf.finish(map[string]any{"exit_code": -1, "error": "signal: killed"})
		w.WriteHeader(204)
	case r.Method == "POST" && path == "processes/42/stdin":
		body := decodeBody(pf.t, mustRead(r))
		pf.stdin = append(pf.stdin, body)
		data, _ := body["data"].(string)
		if b64, ok := body["data_base64"].(string); ok {
			raw, _ := base64.StdEncoding.DecodeString(b64)
			data = string(raw)
		}
		pf.input <- data
		w.WriteHeader(204)
	case r.Method == "POST" && path == "processes/42/stdin/close":
		pf.finish(map[string]any{"exit_code": 0})
		w.WriteHeader(204)
	default:
		apiError(w, 404, "not_found", "process is not running in sandbox abc")
	}
}

// finish ends process 42 once. Preconditions: mu held.
func (pf *processFake) finish(end map[string]any) {
	select {
	case pf.end <- end:
	default:
	}
}

// follow streams the events of process 42.
func follow(w http.ResponseWriter, r *http.Request, input chan string, ends chan map[string]any) {
	sse(w, ev("start", map[string]int{"pid": 42}), out("stdout", "started\n"))
	for {
		select {
		case data := <-input:
			sse(w, out("stdout", "got:"+data))
		case end := <-ends:
			sse(w, ev("end", end))
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (pf *processFake) recorded() (starts []map[string]any, signals []string, stdin []map[string]any) {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	return pf.starts, pf.signals, pf.stdin
}

// TestStartStdinKill: Start sends a background command and follows its events; stdin
// goes to the process, Kill signals it and waits for the end, a second Kill does
// nothing, and the start context ending does not stop the handle.
func TestStartStdinKill(t *testing.T) {
	pf := newProcessFake(t)
	f := newFake(t, pf.handle)
	cmds := f.client().Sandbox("abc").Commands()
	startCtx, cancelStart := context.WithCancel(context.Background())
	var mu sync.Mutex
	var seen []string
	h, err := cmds.Start(startCtx, "cat", RunOptions{StdinOpen: true, Stdin: strings.NewReader("first\n"), Env: map[string]string{"A": "1"},
		OnStdout: func(b []byte) { mu.Lock(); seen = append(seen, string(b)); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	cancelStart()
	if h.PID != 42 {
		t.Errorf("PID = %d", h.PID)
	}
	starts, _, _ := pf.recorded()
	want := map[string]any{"cmd": "cat", "env": map[string]any{"A": "1"}, "stdin": "first\n", "background": true, "stdin_open": true}
	if len(starts) != 1 || fmt.Sprint(starts[0]) != fmt.Sprint(want) {
		t.Errorf("start request %v, want %v (no timeout: no limit; no stream)", starts, want)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer wcancel()
	if _, err := h.Wait(wctx); !errors.Is(err, ErrTimeout) {
		t.Errorf("Wait before the end: %v", err)
	}
	ctx := context.Background()
	if err := h.SendStdin(ctx, []byte("text\n")); err != nil {
		t.Fatal(err)
	}
	if err := h.SendStdin(ctx, []byte{0xff, '\n'}); err != nil {
		t.Fatal(err)
	}
	if err := h.SendStdin(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(h.Stdout(), "\xff") && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if err := h.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := h.Wait(ctx)
	var ce *CommandExitError
	wantOut := "started\ngot:text\ngot:\xff\n"
	if !errors.As(err, &ce) || res == nil || res.ExitCode != -1 || res.Error != "signal: killed" || res.PID != 42 || res.Stdout != wantOut || h.Stdout() != wantOut {
		t.Errorf("after Kill: res %+v err %v", res, err)
	}
	mu.Lock()
	if strings.Join(seen, "") != wantOut {
		t.Errorf("callbacks saw %q", seen)
	}
	mu.Unlock()
	_, signals, stdin := pf.recorded()
	if fmt.Sprint(signals) != "[KILL]" || len(stdin) != 2 || stdin[0]["data"] != "text\n" || stdin[1]["data_base64"] != "/wo=" || stdin[1]["data"] != nil {
		t.Errorf("signals %v, stdin %v", signals, stdin)
	}
	n := len(f.requests())
	if err := h.Kill(ctx); err != nil || len(f.requests()) != n {
		t.Errorf("second Kill: %v, %d requests more", err, len(f.requests())-n)
	}
	if !strings.HasSuffix(f.last().path, "/processes/42/signal") {
		t.Errorf("last request %s", f.last().path)
	}
}

// TestStartCloseStdinAndTimeout: closing stdin lets the command end cleanly; a Start
// timeout is sent as the process's lifetime.
func TestStartCloseStdinAndTimeout(t *testing.T) {
	pf := newProcessFake(t)
	f := newFake(t, pf.handle)
	ctx := context.Background()
	h, err := f.client().Sandbox("abc").Commands().StartArgs(ctx, []string{"cat"}, RunOptions{StdinOpen: true, Timeout: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.CloseStdin(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := h.Wait(ctx); err != nil || res.ExitCode != 0 || res.Stdout != "started\n" {
		t.Errorf("after CloseStdin: %+v %v", res, err)
	}
	starts, _, _ := pf.recorded()
	if fmt.Sprint(starts[0]["args"]) != "[cat]" || starts[0]["timeout"] != 90.0 {
		t.Errorf("start request %v", starts[0])
	}
	if err := h.Signal(ctx, SignalTerm); err != nil {
		t.Errorf("Signal after the end (the fake still answers): %v", err)
	}
	if err := h.Signal(ctx, Signal("INT")); !errors.Is(err, ErrInvalid) {
		t.Errorf("Signal INT: %v", err)
	}
	if _, sigs, _ := pf.recorded(); fmt.Sprint(sigs) != "[TERM INT]" {
		t.Errorf("signals %v", sigs)
	}
}

// TestConnectListAndEnds: List, Connect to a process that just ended, to an unknown
// pid, and to one whose sandbox stops under it.
func TestConnectListAndEnds(t *testing.T) {
	pf := newProcessFake(t)
	f := newFake(t, pf.handle)
	cmds := f.client().Sandbox("abc").Commands()
	ctx := context.Background()
	list, err := cmds.List(ctx)
	if err != nil || len(list) != 2 || list[0].Tag != "agent" || list[1].PID != 42 || fmt.Sprint(list[1].Args) != "[-c cat]" || list[1].Cwd != "/home/user" {
		t.Errorf("List: %+v %v", list, err)
	}
	h, err := cmds.Connect(ctx, 7, ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Wait(ctx)
	var ce *CommandExitError
	if !errors.As(err, &ce) || res.ExitCode != 3 || res.PID != 7 {
		t.Errorf("ended process: %+v %v", res, err)
	}
	if h, err := cmds.Connect(ctx, 7, ConnectOptions{AllowNonZeroExit: true}); err != nil {
		t.Fatal(err)
	} else if res, err := h.Wait(ctx); err != nil || res.ExitCode != 3 {
		t.Errorf("allowed exit: %+v %v", res, err)
	}
	if _, err := cmds.Connect(ctx, 99, ConnectOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown pid: %v", err)
	}
	if err := cmds.Kill(ctx, 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("Kill of an unknown pid: %v", err)
	}
	var ticks []string
	h, err = cmds.Connect(ctx, 13, ConnectOptions{OnStdout: func(b []byte) { ticks = append(ticks, string(b)) }})
	if err != nil {
		t.Fatal(err)
	}
	<-h.Done()
	var ae *APIError
	if _, err := h.Wait(ctx); !errors.Is(err, ErrConflict) || !errors.As(err, &ae) || ae.RequestID != "req_s" || fmt.Sprint(ticks) != "[tick\n]" {
		t.Errorf("sandbox stopped: %v (output %q)", err, ticks)
	}
	// Kill of a handle that stopped following still signals (the process may run on);
	// this one is gone, which is no error.
	if err := h.Kill(ctx); err != nil {
		t.Errorf("Kill after a broken stream: %v", err)
	}
	if r := f.last(); r.path != "/v1/sandboxes/abc/processes/13/signal" || decodeBody(t, r.body)["signal"] != "KILL" {
		t.Errorf("Kill after a broken stream sent %s %s", r.path, r.body)
	}
}

// TestStartFailures: an error before the command runs; a start context that ends
// while attaching kills the command; Disconnect leaves it running.
func TestStartFailures(t *testing.T) {
	pf := newProcessFake(t)
	f := newFake(t, pf.handle)
	cmds := f.client().Sandbox("abc").Commands()
	if _, err := cmds.Start(context.Background(), "x", RunOptions{User: "nobody"}); !errors.Is(err, ErrInvalid) || len(f.requests()) != 1 {
		t.Errorf("start error: %v, %d requests", err, len(f.requests()))
	}
	pf.mu.Lock()
	pf.attach = 300 * time.Millisecond
	pf.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := cmds.Start(ctx, "sleep 9", RunOptions{}); !errors.Is(err, ErrTimeout) {
		t.Errorf("start deadline: %v", err)
	}
	if _, sigs, _ := pf.recorded(); fmt.Sprint(sigs) != "[KILL]" {
		t.Errorf("a command whose handle failed to attach was not killed: signals %v", sigs)
	}
	pf.mu.Lock()
	pf.attach = 0
	pf.mu.Unlock()
	h, err := cmds.Start(context.Background(), "sleep 9", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.Disconnect()
	select {
	case <-h.Done():
	default:
		t.Error("Done not closed after Disconnect")
	}
	if _, err := h.Wait(context.Background()); err == nil || !strings.Contains(err.Error(), "disconnected") {
		t.Errorf("Wait after Disconnect: %v", err)
	}
	if _, sigs, _ := pf.recorded(); len(sigs) != 1 {
		t.Errorf("Disconnect signalled the process: %v", sigs)
	}
	// Kill after Disconnect still kills.
	if err := h.Kill(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, sigs, _ := pf.recorded(); fmt.Sprint(sigs) != "[KILL KILL]" {
		t.Errorf("Kill after Disconnect: signals %v", sigs)
	}
}

// TestSendStdinLarge: input beyond one request's worth goes in MaxStdin pieces, in order.
func TestSendStdinLarge(t *testing.T) {
	var mu sync.Mutex
	var got []byte
	var sizes []int
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		var body stdinWire
		if err := jsonDecode(r.Body, &body); err != nil || body.Data == nil {
			t.Errorf("stdin body %v", err)
		}
		mu.Lock()
		got = append(got, *body.Data...)
		sizes = append(sizes, len(*body.Data))
		mu.Unlock()
		w.WriteHeader(204)
	})
	data := strings.Repeat("abcdefgh", (2*MaxStdin+100)/8)
	if err := f.client().Sandbox("abc").Commands().SendStdin(context.Background(), 42, []byte(data)); err != nil {
		t.Fatal(err)
	}
	if string(got) != data || fmt.Sprint(sizes) != fmt.Sprint([]int{MaxStdin, MaxStdin, len(data) - 2*MaxStdin}) {
		t.Errorf("sizes %v, %d bytes", sizes, len(got))
	}
	if r := f.last(); r.method != "POST" || r.path != "/v1/sandboxes/abc/processes/42/stdin" {
		t.Errorf("request %s %s", r.method, r.path)
	}
}
