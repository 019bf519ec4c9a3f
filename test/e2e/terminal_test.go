package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/warren-sh/warren/test/internal/harness"
)

// consoleClient is a browser-like client of the console: a cookie jar, and the CSRF
// header on state changes when asked.
type consoleClient struct {
	t    *testing.T
	s    *server
	http *http.Client
}

func newConsoleClient(t *testing.T, s *server) *consoleClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &consoleClient{t: t, s: s, http: &http.Client{Jar: jar}}
}

func (c *consoleClient) cookie(name string) string {
	u, _ := url.Parse(c.s.URL)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// do sends a JSON request with the jar's cookies; withCSRF adds X-CSRF-Token.
func (c *consoleClient) do(method, path string, body any, withCSRF bool) (*http.Response, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.s.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if withCSRF {
		req.Header.Set("X-CSRF-Token", c.cookie("warren_csrf"))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// termConn is a terminal WebSocket with everything it has received so far.
type termConn struct {
	t    *testing.T
	conn *websocket.Conn

	mu       sync.Mutex
	out      bytes.Buffer
	controls []map[string]any
	closeErr error
	closed   chan struct{}
}

func dialTerm(t *testing.T, s *server, id, query string, hdr http.Header) (*termConn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(s.URL, "http") + "/v1/sandboxes/" + id + "/terminal" + query
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		return nil, resp, err
	}
	tc := &termConn{t: t, conn: conn, closed: make(chan struct{})}
	go tc.readLoop()
	t.Cleanup(func() { conn.CloseNow() })
	return tc, resp, nil
}

func (tc *termConn) readLoop() {
	defer close(tc.closed)
	for {
		typ, b, err := tc.conn.Read(context.Background())
		tc.mu.Lock()
		if err != nil {
			tc.closeErr = err
			tc.mu.Unlock()
			return
		}
		if typ == websocket.MessageBinary {
			tc.out.Write(b)
		} else {
			var m map[string]any
			if json.Unmarshal(b, &m) == nil {
				tc.controls = append(tc.controls, m)
			}
		}
		tc.mu.Unlock()
	}
}

func (tc *termConn) output() string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.out.String()
}

func (tc *termConn) typeText(s string) {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tc.conn.Write(ctx, websocket.MessageBinary, []byte(s)); err != nil {
		tc.t.Fatalf("typing %q: %v", s, err)
	}
}

func (tc *termConn) control(m map[string]any) {
	tc.t.Helper()
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tc.conn.Write(ctx, websocket.MessageText, b); err != nil {
		tc.t.Fatalf("control %s: %v", b, err)
	}
}

// waitOutput waits until the output after offset `from` contains want; it returns the
// output's length, to look for the next answer after it.
func (tc *termConn) waitOutput(from int, want string) int {
	tc.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := tc.output()
		if i := strings.Index(out[from:], want); i >= 0 {
			return from + i + len(want)
		}
		if time.Now().After(deadline) {
			tc.t.Fatalf("%q did not appear in the terminal within 30s; output:\n%q", want, out[from:])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTerminal drives the console's server side on a real server: cookie login and
// CSRF, the terminal WebSocket on a real PTY in a gVisor sandbox, metrics, logs that
// follow, logout, and the console's pages.
func TestTerminal(t *testing.T) {
	s := startServer(t, serverOpts{})
	team, teamKey := s.newTeam(map[string]any{"name": "console team"})
	_, otherKey := s.newTeam(map[string]any{"name": "other team"})
	readKey := s.newKey(team.ID, []string{"sandboxes:read"})
	const email, password = "dev@console.example", "correct horse"
	if code, raw := s.API("POST", "/v1/users", map[string]any{"team_id": team.ID, "email": email, "password": password, "role": "member"}, nil); code != 201 {
		t.Fatalf("create user: %d %s", code, raw)
	}
	c := newConsoleClient(t, s)

	t.Run("login", func(t *testing.T) {
		resp, raw := c.do("POST", "/console/login", map[string]any{"email": email, "password": "wrong"}, false)
		if e := decodeErr(t, raw); resp.StatusCode != 401 || e.Code != "unauthorized" || e.Message == "" {
			t.Fatalf("wrong password: %d %s", resp.StatusCode, raw)
		}
		resp, raw = c.do("POST", "/console/login", map[string]any{"email": email, "password": password}, false)
		if resp.StatusCode != 200 {
			t.Fatalf("login: %d %s", resp.StatusCode, raw)
		}
		var body struct {
			User      struct{ Email string }
			Team      struct{ ID string }
			ExpiresAt time.Time `json:"expires_at"`
			Token     string
		}
		json.Unmarshal(raw, &body)
		if body.User.Email != email || body.Team.ID != team.ID || body.ExpiresAt.Before(time.Now()) || body.Token != "" {
			t.Errorf("login body %s", raw)
		}
		var sawSession, sawCSRF bool
		for _, line := range resp.Header.Values("Set-Cookie") {
			switch {
			case strings.HasPrefix(line, "warren_session=ws_"):
				sawSession = strings.Contains(line, "HttpOnly") && strings.Contains(line, "SameSite=Strict") && strings.Contains(line, "Path=/")
			case strings.HasPrefix(line, "warren_csrf="):
				sawCSRF = !strings.Contains(line, "HttpOnly") && strings.Contains(line, "SameSite=Strict")
			}
		}
		if !sawSession || !sawCSRF {
			t.Errorf("cookies %q", resp.Header.Values("Set-Cookie"))
		}
	})

	var sbID string
	t.Run("CSRF", func(t *testing.T) {
		resp, raw := c.do("GET", "/v1/me", nil, false)
		if resp.StatusCode != 200 || !strings.Contains(string(raw), email) {
			t.Fatalf("GET /v1/me with the cookie: %d %s", resp.StatusCode, raw)
		}
		resp, raw = c.do("POST", "/v1/sandboxes", map[string]any{"timeout": 300}, false)
		if e := decodeErr(t, raw); resp.StatusCode != 403 || e.Code != "forbidden" || e.Message != "missing or wrong CSRF token: reload the console" {
			t.Fatalf("create without the CSRF header: %d %s", resp.StatusCode, raw)
		}
		var sb sandboxJSON
		resp, raw = c.do("POST", "/v1/sandboxes", map[string]any{"timeout": 300}, true)
		if resp.StatusCode != 201 || json.Unmarshal(raw, &sb) != nil || sb.State != "running" {
			t.Fatalf("create with the CSRF header: %d %s", resp.StatusCode, raw)
		}
		sbID = sb.ID
	})
	if sbID == "" {
		t.FailNow()
	}
	// run runs a command in the sandbox with the team's key.
	run := func(cmd string) execJSON {
		t.Helper()
		var r execJSON
		if code, raw := s.APIKey(teamKey, "POST", "/v1/sandboxes/"+sbID+"/commands", map[string]any{"cmd": cmd}, &r); code != 200 {
			t.Fatalf("exec %q: %d %s", cmd, code, raw)
		}
		return r
	}
	cookieHeader := func(origin string) http.Header {
		return http.Header{"Cookie": {"warren_session=" + c.cookie("warren_session")}, "Origin": {origin}}
	}

	t.Run("terminal", func(t *testing.T) {
		tc, resp, err := dialTerm(t, s, sbID, "?cols=100&rows=30", cookieHeader(s.URL))
		if err != nil {
			t.Fatalf("dial: %v %v", err, resp)
		}
		// The quotes keep the echoed input line from containing what the command prints.
		tc.typeText("echo hel''lo; echo \"$(id -un):$PWD:$TERM\"; stty size\r")
		at := tc.waitOutput(0, "hello")
		at = tc.waitOutput(at, "user:/home/user:xterm-256color")
		at = tc.waitOutput(at, "30 100")
		tc.control(map[string]any{"type": "resize", "cols": 132, "rows": 43})
		tc.typeText("stty size\r")
		at = tc.waitOutput(at, "43 132")
		tc.typeText("exit 7\r")
		select {
		case <-tc.closed:
		case <-time.After(30 * time.Second):
			t.Fatal("the WebSocket was not closed after the shell exited")
		}
		tc.mu.Lock()
		defer tc.mu.Unlock()
		if len(tc.controls) != 1 || tc.controls[0]["type"] != "exit" || tc.controls[0]["code"] != 7.0 {
			t.Errorf("control frames %v; want one exit frame with code 7", tc.controls)
		}
		if websocket.CloseStatus(tc.closeErr) != websocket.StatusNormalClosure {
			t.Errorf("close: %v; want 1000", tc.closeErr)
		}
	})

	t.Run("terminal refused", func(t *testing.T) {
		cases := []struct {
			name   string
			hdr    http.Header
			status int
		}{
			{"cookie from another site", cookieHeader("http://evil.example"), 403},
			{"another team's key", http.Header{"Authorization": {"Bearer " + otherKey}}, 404},
			{"a read-only key", http.Header{"Authorization": {"Bearer " + readKey}}, 403},
		}
		for _, cs := range cases {
			_, resp, err := dialTerm(t, s, sbID, "", cs.hdr)
			if err == nil || resp == nil || resp.StatusCode != cs.status {
				t.Errorf("%s: %v %v; want %d", cs.name, err, resp, cs.status)
			}
		}
	})

	t.Run("terminal closed by the client kills the shell", func(t *testing.T) {
		tc, _, err := dialTerm(t, s, sbID, "", cookieHeader(s.URL))
		if err != nil {
			t.Fatal(err)
		}
		// A foreground job has a process group of its own: it must end too (SIGHUP
		// from the terminal going away), not only the shell.
		tc.typeText("sleep 3600\r")
		tc.waitOutput(0, "sleep 3600")
		// The bracket keeps this command's own command line from matching.
		const running = "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -o 'slee[p] 3600' || true"
		deadline := time.Now().Add(20 * time.Second)
		for strings.TrimSpace(run(running).Stdout) == "" {
			if time.Now().After(deadline) {
				t.Fatal("sleep did not start in the terminal")
			}
			time.Sleep(100 * time.Millisecond)
		}
		tc.conn.Close(websocket.StatusNormalClosure, "bye")
		deadline = time.Now().Add(20 * time.Second)
		for {
			r := run(running)
			if strings.TrimSpace(r.Stdout) == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the shell's sleep still runs after the WebSocket closed: %q", r.Stdout)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		var m struct {
			Timestamp  time.Time `json:"timestamp"`
			CPUCount   int       `json:"cpu_count"`
			CPUUsedPct float64   `json:"cpu_used_pct"`
			MemUsed    int64     `json:"mem_used"`
			MemTotal   int64     `json:"mem_total"`
			DiskUsed   int64     `json:"disk_used"`
			DiskTotal  int64     `json:"disk_total"`
		}
		resp, raw := c.do("GET", "/v1/sandboxes/"+sbID+"/metrics", nil, false)
		if resp.StatusCode != 200 || json.Unmarshal(raw, &m) != nil {
			t.Fatalf("metrics: %d %s", resp.StatusCode, raw)
		}
		if m.CPUCount < 1 || m.MemTotal <= 0 || m.MemUsed <= 0 || m.MemUsed > m.MemTotal || m.DiskTotal <= 0 ||
			m.CPUUsedPct < 0 || m.CPUUsedPct > 100 || time.Since(m.Timestamp) > time.Minute {
			t.Errorf("metrics %s", raw)
		}
		if code, raw := s.APIKey(otherKey, "GET", "/v1/sandboxes/"+sbID+"/metrics", nil, nil); code != 404 {
			t.Errorf("another team's metrics: %d %s", code, raw)
		}
	})

	t.Run("logs follow", func(t *testing.T) {
		// A program with a name of its own, so that its "process started" line is ours.
		marker := fmt.Sprintf("/tmp/warren-log-marker-%d", time.Now().UnixNano())
		if r := run("cp /bin/true " + marker); r.ExitCode != 0 {
			t.Fatalf("cp: %+v", r)
		}
		req, _ := http.NewRequest("GET", s.URL+"/v1/sandboxes/"+sbID+"/logs?follow=true", nil)
		req.Header.Set("Accept", "text/event-stream")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		resp, err := c.http.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("follow: %d %s", resp.StatusCode, b)
		}
		type event struct{ name, data string }
		events := make(chan event, 1024)
		go func() {
			defer close(events)
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			var ev event
			for sc.Scan() {
				line := sc.Text()
				switch {
				case strings.HasPrefix(line, "event: "):
					ev.name = strings.TrimPrefix(line, "event: ")
				case strings.HasPrefix(line, "data: "):
					ev.data = strings.TrimPrefix(line, "data: ")
				case line == "" && ev.name != "":
					events <- ev
					ev = event{}
				}
			}
		}()
		// Lines written while we follow arrive as they are written.
		var r execJSON
		if code, raw := s.APIKey(teamKey, "POST", "/v1/sandboxes/"+sbID+"/commands", map[string]any{"args": []string{marker}}, &r); code != 200 || r.ExitCode != 0 {
			t.Fatalf("running the marker: %d %s", code, raw)
		}
		found := false
		for !found {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatal("the stream ended before the marker's log line")
				}
				var line struct {
					Timestamp time.Time         `json:"timestamp"`
					Level     string            `json:"level"`
					Message   string            `json:"message"`
					Fields    map[string]string `json:"fields"`
				}
				if ev.name != "log" || json.Unmarshal([]byte(ev.data), &line) != nil {
					t.Fatalf("event %+v", ev)
				}
				found = line.Message == "process started" && line.Fields["cmd"] == marker && line.Level == "info" && !line.Timestamp.IsZero()
			case <-time.After(30 * time.Second):
				t.Fatal("the marker's log line did not arrive within 30s")
			}
		}
		// The same lines are there without follow.
		resp2, raw := c.do("GET", "/v1/sandboxes/"+sbID+"/logs", nil, false)
		if resp2.StatusCode != 200 || !strings.Contains(string(raw), marker) {
			t.Errorf("logs without follow: %d, marker missing", resp2.StatusCode)
		}
		// When the sandbox ends, so does the stream.
		if resp, raw := c.do("DELETE", "/v1/sandboxes/"+sbID, nil, true); resp.StatusCode != 204 {
			t.Fatalf("kill: %d %s", resp.StatusCode, raw)
		}
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatal("the stream ended without an end event")
				}
				if ev.name == "log" {
					continue
				}
				if ev.name != "end" || !strings.Contains(ev.data, `"state":"stopped"`) {
					t.Fatalf("last event %+v; want end with state stopped", ev)
				}
				return
			case <-time.After(30 * time.Second):
				t.Fatal("no end event within 30s of the kill")
			}
		}
	})

	t.Run("logout", func(t *testing.T) {
		if resp, raw := c.do("POST", "/console/logout", nil, false); resp.StatusCode != 403 {
			t.Errorf("logout without the CSRF header: %d %s", resp.StatusCode, raw)
		}
		if resp, raw := c.do("POST", "/console/logout", nil, true); resp.StatusCode != 204 {
			t.Fatalf("logout: %d %s", resp.StatusCode, raw)
		}
		if c.cookie("warren_session") != "" || c.cookie("warren_csrf") != "" {
			t.Error("cookies not cleared")
		}
		if resp, raw := c.do("GET", "/v1/me", nil, false); resp.StatusCode != 401 {
			t.Errorf("GET /v1/me after logout: %d %s", resp.StatusCode, raw)
		}
	})

	t.Run("console pages", func(t *testing.T) {
		index, err := os.ReadFile(filepath.Join(repoRoot(), "web", "dist", "index.html"))
		checkConsolePages(t, s, err == nil, index)
	})
}

// TestTerminalConsoleBuild checks the console's other build state with a second binary:
// built from the same source with web/dist/index.html added (when the tree has none)
// or removed (when it has one), through `go build -overlay`.
func TestTerminalConsoleBuild(t *testing.T) {
	root := repoRoot()
	distIndex := filepath.Join(root, "web", "dist", "index.html")
	_, err := os.Stat(distIndex)
	built := err != nil // the variant is the opposite of the tree
	dir := t.TempDir()
	const page = `<!doctype html><title>Warren test console</title>`
	replace := map[string]string{distIndex: ""}
	if built {
		os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644)
		replace[distIndex] = filepath.Join(dir, "index.html")
	}
	ov, _ := json.Marshal(map[string]any{"Replace": replace})
	os.WriteFile(filepath.Join(dir, "overlay.json"), ov, 0o644)
	cmd := exec.Command("go", "build", "-overlay", filepath.Join(dir, "overlay.json"), "-o", filepath.Join(dir, "warren"), "./cmd/warren")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the variant: %v\n%s", err, out)
	}
	// startServer runs harness.BinDir/warren; the agent stays the one the suite built.
	orig := harness.BinDir
	harness.BinDir = dir
	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_AGENT_PATH=" + filepath.Join(orig, "warren-agent")}})
	harness.BinDir = orig
	checkConsolePages(t, s, built, []byte(page))
}

// checkConsolePages checks / and an app path: the index (built) or 503 (not built),
// with the security headers either way; the API and E2B routes are not the console's.
func checkConsolePages(t *testing.T, s *server, built bool, index []byte) {
	t.Helper()
	for _, path := range []string{"/", "/some/app/page"} {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: security headers %v", path, resp.Header)
		}
		switch {
		case path != "/" && resp.StatusCode != 404:
			// The app routes on #/... fragments: no other path is a page.
			t.Errorf("GET %s: %d; want 404", path, resp.StatusCode)
		case path != "/":
		case built && (resp.StatusCode != 200 || !bytes.Equal(body, index) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Cache-Control") != "no-cache"):
			t.Errorf("GET %s (built): %d %v\n%.200s", path, resp.StatusCode, resp.Header, body)
		case !built && (resp.StatusCode != 503 || strings.TrimSpace(string(body)) != "console assets are not built: run make"):
			t.Errorf("GET %s (not built): %d %q", path, resp.StatusCode, body)
		}
	}
	// The API's own paths still answer as the API.
	for _, c := range []struct {
		path string
		code int
	}{{"/healthz", 200}, {"/v1/nope", 404}, {"/sandboxes", 401}} {
		resp, err := http.Get(s.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: %d %s; want %d JSON", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.code)
		}
	}
}
