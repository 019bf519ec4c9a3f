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
		sc.Buffer(make([]byte, 64<<10), 1<<20) // an output event holds up to 32 KiB twice (text and base64)
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
	sb := s.Create(map[string]any{"template": "base"})
	base := "/v1/sandboxes/" + sb.ID

	start := func(t *testing.T, body map[string]any) int {
		t.Helper()
		body["background"] = true
		var r struct {
			PID int `json:"pid"`
		}
		code, raw := s.API("POST", base+"/commands", body, &r)
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
		if code, raw := s.API("GET", base+"/processes", nil, &l); code != 200 {
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
		if code, raw := s.API("POST", fmt.Sprintf("%s/processes/%d/stdin", base, pid), map[string]any{"data": "hello\n"}, nil); code != 204 {
			t.Fatalf("stdin: %d %s", code, raw)
		}
		if code, raw := s.API("POST", fmt.Sprintf("%s/processes/%d/stdin", base, pid), map[string]any{"data_base64": "AGJ5dGVzCg=="}, nil); code != 204 {
			t.Fatalf("stdin base64: %d %s", code, raw)
		}
		if code, raw := s.API("POST", fmt.Sprintf("%s/processes/%d/stdin/close", base, pid), nil, nil); code != 204 {
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

	t.Run("reattach replays and signal", func(t *testing.T) {
		pid := start(t, map[string]any{"cmd": "i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.2; done"})
		events := fmt.Sprintf("%s/processes/%d/events", base, pid)
		first := openSSE(t, s, "GET", events, nil)
		_, out := first.until(t, "stdout", 10*time.Second)
		if !strings.HasPrefix(out, "tick1\n") {
			t.Errorf("first attach began with %q, want the replay from tick1", out)
		}
		first.cancel() // detach: the process runs on
		time.Sleep(time.Second)
		// A second attach replays everything from the start and then follows live.
		second := openSSE(t, s, "GET", events, nil)
		second.until(t, "start", 10*time.Second)
		var got strings.Builder
		for !strings.Contains(got.String(), "tick9\n") {
			_, o := second.until(t, "stdout", 10*time.Second)
			got.WriteString(o)
		}
		var want strings.Builder
		for i := 1; want.Len() < got.Len(); i++ {
			fmt.Fprintf(&want, "tick%d\n", i)
		}
		if got.String() != want.String() {
			t.Errorf("second attach saw %q, want every tick in order from tick1", got.String())
		}
		if code, raw := s.API("POST", fmt.Sprintf("%s/processes/%d/signal", base, pid), map[string]any{"signal": "INT"}, nil); code != 400 || !strings.Contains(string(raw), "TERM or KILL") {
			t.Errorf("INT: %d %s, want 400 naming TERM and KILL", code, raw)
		}
		if code, raw := s.API("POST", fmt.Sprintf("%s/processes/%d/signal", base, pid), map[string]any{"signal": "TERM"}, nil); code != 204 {
			t.Fatalf("TERM: %d %s", code, raw)
		}
		end, _ := second.until(t, "end", 10*time.Second)
		if end.data["exit_code"].(float64) != -1 {
			t.Errorf("end after TERM: %+v", end.data)
		}
	})

	t.Run("output before the attach is kept", func(t *testing.T) {
		pid := start(t, map[string]any{"cmd": "echo first; sleep 1; echo second"})
		time.Sleep(500 * time.Millisecond)
		st := openSSE(t, s, "GET", fmt.Sprintf("%s/processes/%d/events", base, pid), nil)
		if ev, _ := st.next(t, 10*time.Second); ev.name != "start" || int(ev.data["pid"].(float64)) != pid {
			t.Fatalf("first event %+v", ev)
		}
		end, out := st.until(t, "end", 10*time.Second)
		if out != "first\nsecond\n" || end.data["exit_code"].(float64) != 0 || end.data["timed_out"] != nil {
			t.Errorf("stdout %q, end %+v; want both lines in order and exit 0", out, end.data)
		}
		// After the end, an attach still gets the whole output and the end at once.
		again := openSSE(t, s, "GET", fmt.Sprintf("%s/processes/%d/events", base, pid), nil)
		if _, out := again.until(t, "end", 5*time.Second); out != "first\nsecond\n" {
			t.Errorf("attach after the end: stdout %q", out)
		}
	})

	t.Run("concurrent attachers see the whole output", func(t *testing.T) {
		pid := start(t, map[string]any{"cmd": "for i in $(seq 1 40); do echo line$i; sleep 0.02; done"})
		path := fmt.Sprintf("%s/processes/%d/events", base, pid)
		a, b := openSSE(t, s, "GET", path, nil), openSSE(t, s, "GET", path, nil)
		var want strings.Builder
		for i := 1; i <= 40; i++ {
			fmt.Fprintf(&want, "line%d\n", i)
		}
		for name, st := range map[string]*procSSE{"first": a, "second": b} {
			end, out := st.until(t, "end", 15*time.Second)
			if out != want.String() || end.data["exit_code"].(float64) != 0 {
				t.Errorf("%s attacher: stdout %q, end %+v", name, out, end.data)
			}
		}
	})

	t.Run("long output keeps its head and tail", func(t *testing.T) {
		const total = 2000000
		pid := start(t, map[string]any{"cmd": fmt.Sprintf("head -c %d /dev/zero | tr '\\0' a; echo; echo last", total)})
		// Attach once it ended: a follower that keeps up gets everything; the replay
		// has only what was kept.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			var l struct {
				Processes []struct {
					PID int `json:"pid"`
				} `json:"processes"`
			}
			s.API("GET", base+"/processes", nil, &l)
			running := false
			for _, p := range l.Processes {
				running = running || p.PID == pid
			}
			if !running {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the writer did not end within 20s")
			}
		}
		st := openSSE(t, s, "GET", fmt.Sprintf("%s/processes/%d/events", base, pid), nil)
		var stdout, notice strings.Builder
		for {
			ev, ok := st.next(t, 30*time.Second)
			if !ok {
				t.Fatal("the stream ended before the end event")
			}
			if ev.name == "stdout" {
				stdout.WriteString(ev.data["text"].(string))
			} else if ev.name == "stderr" {
				notice.WriteString(ev.data["text"].(string))
			} else if ev.name == "end" {
				break
			}
		}
		var dropped int
		fmt.Sscanf(notice.String(), "\n[warren: %d bytes of output dropped here", &dropped)
		got := stdout.String()
		if dropped <= 0 || stdout.Len()+dropped != total+len("\nlast\n") || !strings.HasPrefix(got, strings.Repeat("a", 200<<10)) || !strings.HasSuffix(got, "a\nlast\n") {
			t.Errorf("kept %d bytes, notice %q (%d dropped), of %d", stdout.Len(), notice.String(), dropped, total+6)
		}
		if stdout.Len() > 1<<20 || stdout.Len() < 900<<10 {
			t.Errorf("kept %d bytes of output, want about 1 MiB", stdout.Len())
		}
	})

	t.Run("background timeout is marked", func(t *testing.T) {
		t0 := time.Now()
		pid := start(t, map[string]any{"cmd": "sleep 30", "timeout": 1})
		st := openSSE(t, s, "GET", fmt.Sprintf("%s/processes/%d/events", base, pid), nil)
		end, _ := st.until(t, "end", 10*time.Second)
		if end.data["exit_code"].(float64) != -1 || end.data["timed_out"] != true || !strings.Contains(fmt.Sprint(end.data["error"]), "timed out after 1s") {
			t.Errorf("end %+v, want exit -1, timed_out true", end.data)
		}
		if took := time.Since(t0); took > 6*time.Second {
			t.Errorf("a 1 s timeout ended after %v", took)
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
			code, raw := s.API(c.method, c.path, c.body, nil)
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
		code, raw := s.API("POST", base+"/commands", map[string]any{"cmd": "echo started; sleep 30", "timeout": 1}, &r)
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
		if out := s.Exec(sb.ID, "pgrep -c -x sleep || true"); strings.TrimSpace(out.Stdout) != "0" {
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
		if code, raw := s.API("POST", base+"/files/dir?path=/home/user/p/q/r", nil, &fi); code != 201 || fi.Type != "dir" || fi.Path != "/home/user/p/q/r" || fi.Owner != "user" {
			t.Fatalf("mkdir -p: %d %s", code, raw)
		}
		if code, raw := s.API("POST", base+"/files/dir?path=/home/user/p/q/r", nil, &fi); code != 200 || fi.Type != "dir" {
			t.Errorf("mkdir of an existing directory: %d %s", code, raw)
		}
		req, _ := http.NewRequest("PUT", s.URL+base+"/files/content?path=/home/user/p/f.txt", strings.NewReader("12345"))
		req.Header.Set("Authorization", "Bearer "+s.Key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if code, raw := s.API("POST", base+"/files/dir?path=/home/user/p/f.txt", nil, nil); code != 409 {
			t.Errorf("mkdir over a file: %d %s", code, raw)
		}
		if code, raw := s.API("GET", base+"/files/stat?path=/home/user/p/f.txt", nil, &fi); code != 200 || fi.Type != "file" || fi.Size != 5 {
			t.Errorf("stat: %d %s", code, raw)
		}
		if code, raw := s.API("POST", base+"/files/move", map[string]any{"from": "/home/user/p/f.txt", "to": "/home/user/moved/g.txt"}, &fi); code != 200 || fi.Path != "/home/user/moved/g.txt" || fi.Size != 5 {
			t.Errorf("move: %d %s", code, raw)
		}
		if code, raw := s.API("GET", base+"/files/stat?path=/home/user/p/f.txt", nil, nil); code != 404 {
			t.Errorf("stat of the old path: %d %s", code, raw)
		}
		if code, raw := s.API("POST", base+"/files/move", map[string]any{"from": "/home/user/nope", "to": "/home/user/x"}, nil); code != 404 {
			t.Errorf("move of a missing path: %d %s", code, raw)
		}
		if code, raw := s.API("DELETE", base+"/files?path=/home/user/p", nil, nil); code != 204 {
			t.Errorf("delete a tree: %d %s", code, raw)
		}
		if code, raw := s.API("DELETE", base+"/files?path=/home/user/p", nil, nil); code != 404 {
			t.Errorf("delete a missing path: %d %s", code, raw)
		}
		if code, raw := s.API("GET", base+"/files/stat?path=/home/user/p/q", nil, nil); code != 404 {
			t.Errorf("stat inside the deleted tree: %d %s", code, raw)
		}
		// What the filesystem does not allow is a 409 that says what to do instead.
		hostname := s.Exec(sb.ID, "cat /etc/hostname").Stdout
		code, raw := s.API("POST", base+"/files/move", map[string]any{"from": "/etc/hostname", "to": "/tmp/hostname"}, nil)
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &e)
		if code != 409 || e.Code != "conflict" || !strings.Contains(e.Message, "copy it instead") {
			t.Errorf("move of /etc/hostname (a bind mount): %d %s, want 409 saying to copy it", code, raw)
		}
		if out := s.Exec(sb.ID, "cat /etc/hostname"); hostname == "" || out.Stdout != hostname {
			t.Errorf("/etc/hostname after the refused move: %q, before %q", out.Stdout, hostname)
		}
		// ?user= chooses who owns what is made.
		if code, raw := s.API("POST", base+"/files/dir?path=/tmp/made&user=root", nil, &fi); code != 201 || fi.Owner != "root" {
			t.Errorf("root making a directory under /root: %d %s", code, raw)
		}
	})

	t.Run("stream ends when the sandbox is killed", func(t *testing.T) {
		other := s.Create(map[string]any{"template": "base"})
		st := openSSE(t, s, "POST", "/v1/sandboxes/"+other.ID+"/commands", map[string]any{"cmd": "sleep 60", "stream": true})
		st.until(t, "start", 10*time.Second)
		s.Kill(other.ID)
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
		other := s.Create(map[string]any{"template": "base", "timeout": 4})
		var r struct {
			PID int `json:"pid"`
		}
		if code, raw := s.API("POST", "/v1/sandboxes/"+other.ID+"/commands", map[string]any{"cmd": "sleep 60", "background": true}, &r); code != 201 {
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
