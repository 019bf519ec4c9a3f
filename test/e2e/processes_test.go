package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// procSSE is an open Server-Sent Events stream from the server, read in a goroutine.
type procSSE struct {
	events chan procEvent // closed when the stream ended
	cancel context.CancelFunc
}

type procEvent struct {
	name string
	data map[string]any
}

// openSSE starts a streaming request (body nil: GET) and fails the test unless it
// answers 200 with an event stream.
func openSSE(t *testing.T, s *server, method, path string, body any) *procSSE {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+s.Key)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	st := &procSSE{events: make(chan procEvent, 1024), cancel: cancel}
	go func() {
		defer close(st.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var name string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				name = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				var d map[string]any
				_ = json.Unmarshal([]byte(v), &d)
				st.events <- procEvent{name, d}
			}
		}
	}()
	t.Cleanup(cancel)
	return st
}

// next returns the next event; ok is false when the stream ended. It fails the test if
// nothing comes within d.
func (st *procSSE) next(t *testing.T, d time.Duration) (procEvent, bool) {
	t.Helper()
	select {
	case ev, ok := <-st.events:
		return ev, ok
	case <-time.After(d):
		t.Fatalf("no event within %v", d)
		return procEvent{}, false
	}
}

// until reads events until one named name arrives and returns it with the stdout
// text seen on the way.
func (st *procSSE) until(t *testing.T, name string, d time.Duration) (procEvent, string) {
	t.Helper()
	var out strings.Builder
	deadline := time.Now().Add(d)
	for {
		ev, ok := st.next(t, time.Until(deadline))
		if !ok {
			t.Fatalf("the stream ended before a %q event (stdout so far %q)", name, out.String())
		}
		if ev.name == "stdout" {
			out.WriteString(ev.data["text"].(string))
		}
		if ev.name == name {
			return ev, out.String()
		}
	}
}

func TestProcesses(t *testing.T) {
	s := startServer(t, serverOpts{})
	sb := s.create(map[string]any{"template": "base"})
	base := "/v1/sandboxes/" + sb.ID

	start := func(t *testing.T, body map[string]any) int {
		t.Helper()
		body["background"] = true
		var r struct {
			PID int `json:"pid"`
		}
		code, raw := s.api("POST", base+"/commands", body, &r)
		if code != 201 || r.PID <= 0 {
			t.Fatalf("background start: %d %s", code, raw)
		}
		return r.PID
	}

	t.Run("background with stdin", func(t *testing.T) {
		t0 := time.Now()
		pid := start(t, map[string]any{"cmd": "cat; echo done >&2", "stdin_open": true})
		if took := time.Since(t0); took > 5*time.Second {
			t.Errorf("the background start took %v", took)
		}
		var l struct {
			Processes []struct {
				PID  int      `json:"pid"`
				Cmd  string   `json:"cmd"`
				Args []string `json:"args"`
				Cwd  string   `json:"cwd"`
			} `json:"processes"`
		}
		if code, raw := s.api("GET", base+"/processes", nil, &l); code != 200 {
			t.Fatalf("list: %d %s", code, raw)
		}
		found := false
		for _, p := range l.Processes {
			if p.PID == pid {
				found = true
				if p.Cmd != "/bin/bash" || strings.Join(p.Args, " ") != "-c cat; echo done >&2" || p.Cwd != "/home/user" {
					t.Errorf("listed as %+v", p)
				}
			}
		}
		if !found {
			t.Fatalf("pid %d not listed: %+v", pid, l)
		}

		ev := openSSE(t, s, "GET", fmt.Sprintf("%s/processes/%d/events", base, pid), nil)
		if first, _ := ev.next(t, 10*time.Second); first.name != "start" || int(first.data["pid"].(float64)) != pid {
			t.Fatalf("first event %+v", first)
		}
		if code, raw := s.api("POST", fmt.Sprintf("%s/processes/%d/stdin", base, pid), map[string]any{"data": "hello\n"}, nil); code != 204 {
			t.Fatalf("stdin: %d %s", code, raw)
		}
		if code, raw := s.api("POST", fmt.Sprintf("%s/processes/%d/stdin", base, pid), map[string]any{"data_base64": "AGJ5dGVzCg=="}, nil); code != 204 {
			t.Fatalf("stdin base64: %d %s", code, raw)
		}
		if code, raw := s.api("POST", fmt.Sprintf("%s/processes/%d/stdin/close", base, pid), nil, nil); code != 204 {
			t.Fatalf("close stdin: %d %s", code, raw)
		}
		end, out := ev.until(t, "end", 15*time.Second)
		if out != "hello\n\x00bytes\n" || end.data["exit_code"].(float64) != 0 {
			t.Errorf("stdout %q, end %+v", out, end.data)
		}
		if _, ok := ev.next(t, 5*time.Second); ok {
			t.Error("events after end")
		}
	})

	t.Run("reattach and signal", func(t *testing.T) {
		pid := start(t, map[string]any{"cmd": "i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.2; done"})
		events := fmt.Sprintf("%s/processes/%d/events", base, pid)
		first := openSSE(t, s, "GET", events, nil)
		_, out := first.until(t, "stdout", 10*time.Second)
		first.cancel() // detach: the process runs on
		time.Sleep(time.Second)
		second := openSSE(t, s, "GET", events, nil)
		second.until(t, "start", 10*time.Second)
		_, out2 := second.until(t, "stdout", 10*time.Second)
		var n1, n2 int
		fmt.Sscanf(out, "tick%d", &n1)
		fmt.Sscanf(out2, "tick%d", &n2)
		if n1 == 0 || n2 <= n1+2 {
			t.Errorf("first attach saw %q, the second (a second later) %q: want only new output", out, out2)
		}
		if code, raw := s.api("POST", fmt.Sprintf("%s/processes/%d/signal", base, pid), map[string]any{"signal": "INT"}, nil); code != 400 || !strings.Contains(string(raw), "TERM or KILL") {
			t.Errorf("INT: %d %s, want 400 naming TERM and KILL", code, raw)
		}
		if code, raw := s.api("POST", fmt.Sprintf("%s/processes/%d/signal", base, pid), map[string]any{"signal": "TERM"}, nil); code != 204 {
			t.Fatalf("TERM: %d %s", code, raw)
		}
		end, _ := second.until(t, "end", 10*time.Second)
		if end.data["exit_code"].(float64) != -1 {
			t.Errorf("end after TERM: %+v", end.data)
		}
	})

	t.Run("unknown pid", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"GET", base + "/processes/999999/events", nil},
			{"POST", base + "/processes/999999/stdin", map[string]any{"data": "x"}},
			{"POST", base + "/processes/999999/stdin/close", nil},
			{"POST", base + "/processes/999999/signal", map[string]any{"signal": "KILL"}},
		} {
			code, raw := s.api(c.method, c.path, c.body, nil)
			if code != 404 || !strings.Contains(string(raw), "process 999999 is not running") {
				t.Errorf("%s %s: %d %s", c.method, c.path, code, raw)
			}
		}
	})

	t.Run("timeout is a result", func(t *testing.T) {
		var r struct {
			ExitCode int    `json:"exit_code"`
			Stdout   string `json:"stdout"`
			TimedOut bool   `json:"timed_out"`
		}
		t0 := time.Now()
		code, raw := s.api("POST", base+"/commands", map[string]any{"cmd": "echo started; sleep 30", "timeout": 1}, &r)
		if code != 200 || r.ExitCode != -1 || !r.TimedOut || r.Stdout != "started\n" {
			t.Errorf("JSON: %d %s", code, raw)
		}
		if took := time.Since(t0); took > 8*time.Second {
			t.Errorf("a 1 s timeout returned after %v", took)
		}
		st := openSSE(t, s, "POST", base+"/commands", map[string]any{"cmd": "sleep 30", "timeout": 1, "stream": true})
		end, _ := st.until(t, "end", 10*time.Second)
		if end.data["exit_code"].(float64) != -1 || end.data["timed_out"] != true {
			t.Errorf("SSE end %+v", end.data)
		}
		if out := s.exec(sb.ID, "pgrep -c -x sleep || true"); strings.TrimSpace(out.Stdout) != "0" {
			t.Errorf("sleeps still running after their timeouts: %s", out.Stdout)
		}
	})

	t.Run("files", func(t *testing.T) {
		type fileInfo struct {
			Path  string `json:"path"`
			Type  string `json:"type"`
			Owner string `json:"owner"`
			Size  int64  `json:"size"`
		}
		var fi fileInfo
		if code, raw := s.api("POST", base+"/files/dir?path=/home/user/p/q/r", nil, &fi); code != 201 || fi.Type != "dir" || fi.Path != "/home/user/p/q/r" || fi.Owner != "user" {
			t.Fatalf("mkdir -p: %d %s", code, raw)
		}
		if code, raw := s.api("POST", base+"/files/dir?path=/home/user/p/q/r", nil, &fi); code != 200 || fi.Type != "dir" {
			t.Errorf("mkdir of an existing directory: %d %s", code, raw)
		}
		req, _ := http.NewRequest("PUT", s.URL+base+"/files/content?path=/home/user/p/f.txt", strings.NewReader("12345"))
		req.Header.Set("Authorization", "Bearer "+s.Key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if code, raw := s.api("POST", base+"/files/dir?path=/home/user/p/f.txt", nil, nil); code != 409 {
			t.Errorf("mkdir over a file: %d %s", code, raw)
		}
		if code, raw := s.api("GET", base+"/files/stat?path=/home/user/p/f.txt", nil, &fi); code != 200 || fi.Type != "file" || fi.Size != 5 {
			t.Errorf("stat: %d %s", code, raw)
		}
		if code, raw := s.api("POST", base+"/files/move", map[string]any{"from": "/home/user/p/f.txt", "to": "/home/user/moved/g.txt"}, &fi); code != 200 || fi.Path != "/home/user/moved/g.txt" || fi.Size != 5 {
			t.Errorf("move: %d %s", code, raw)
		}
		if code, raw := s.api("GET", base+"/files/stat?path=/home/user/p/f.txt", nil, nil); code != 404 {
			t.Errorf("stat of the old path: %d %s", code, raw)
		}
		if code, raw := s.api("POST", base+"/files/move", map[string]any{"from": "/home/user/nope", "to": "/home/user/x"}, nil); code != 404 {
			t.Errorf("move of a missing path: %d %s", code, raw)
		}
		if code, raw := s.api("DELETE", base+"/files?path=/home/user/p", nil, nil); code != 204 {
			t.Errorf("delete a tree: %d %s", code, raw)
		}
		if code, raw := s.api("DELETE", base+"/files?path=/home/user/p", nil, nil); code != 404 {
			t.Errorf("delete a missing path: %d %s", code, raw)
		}
		if code, raw := s.api("GET", base+"/files/stat?path=/home/user/p/q", nil, nil); code != 404 {
			t.Errorf("stat inside the deleted tree: %d %s", code, raw)
		}
		// ?user= chooses who owns what is made.
		if code, raw := s.api("POST", base+"/files/dir?path=/tmp/made&user=root", nil, &fi); code != 201 || fi.Owner != "root" {
			t.Errorf("root making a directory under /root: %d %s", code, raw)
		}
	})

	t.Run("stream ends when the sandbox is killed", func(t *testing.T) {
		other := s.create(map[string]any{"template": "base"})
		st := openSSE(t, s, "POST", "/v1/sandboxes/"+other.ID+"/commands", map[string]any{"cmd": "sleep 60", "stream": true})
		st.until(t, "start", 10*time.Second)
		s.kill(other.ID)
		t0 := time.Now()
		ev, _ := st.until(t, "error", 10*time.Second)
		if took := time.Since(t0); took > 5*time.Second {
			t.Errorf("the stream ended %v after the kill", took)
		}
		want := "sandbox " + other.ID + " was stopped (killed) while the command ran"
		if ev.data["code"] != "conflict" || ev.data["message"] != want {
			t.Errorf("error event %+v, want conflict %q", ev.data, want)
		}
		if _, ok := st.next(t, 5*time.Second); ok {
			t.Error("events after the error")
		}
	})

	t.Run("attached stream ends when the sandbox times out", func(t *testing.T) {
		other := s.create(map[string]any{"template": "base", "timeout": 4})
		var r struct {
			PID int `json:"pid"`
		}
		if code, raw := s.api("POST", "/v1/sandboxes/"+other.ID+"/commands", map[string]any{"cmd": "sleep 60", "background": true}, &r); code != 201 {
			t.Fatalf("start: %d %s", code, raw)
		}
		st := openSSE(t, s, "GET", fmt.Sprintf("/v1/sandboxes/%s/processes/%d/events", other.ID, r.PID), nil)
		ev, _ := st.until(t, "error", 20*time.Second)
		want := "sandbox " + other.ID + " was stopped (timeout) while the command ran"
		if ev.data["code"] != "conflict" || ev.data["message"] != want {
			t.Errorf("error event %+v, want conflict %q", ev.data, want)
		}
	})
}
