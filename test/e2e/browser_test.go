package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/testenv"
)

// TestBrowserTemplate: a sandbox of the browser template serves the Chrome DevTools
// Protocol on its private port 9222 through the proxy, only with the sandbox's token; its
// /json/version names the WebSocket URL as the client reached it; playwright-core's
// connectOverCDP (test/browser/cdp.mjs) then drives the sandbox's Chromium to a page
// served inside the same sandbox, reads its DOM and takes a screenshot, kept in
// test-artifacts/browser.
func TestBrowserTemplate(t *testing.T) {
	node := testenv.NeedsTool(t, "node")
	dir := filepath.Join(repoRoot(), "test", "browser")
	ensureNodeModules(t, dir)
	// Template snapshots on, as in production: the sandbox is restored from the
	// template's snapshot (Chromium already running), which must be made first.
	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_TEMPLATE_SNAPSHOTS=1"}})
	s.WaitTemplate("browser", 30*time.Minute)
	waitLog(t, s, `msg="template snapshot ready" subsystem=sandbox template=browser`, 5*time.Minute)

	t0 := time.Now()
	var sb struct {
		ID           string `json:"id"`
		Domain       string `json:"domain"`
		TrafficToken string `json:"traffic_token"`
	}
	if code, raw := s.API("POST", "/v1/sandboxes", map[string]any{"template": "browser", "timeout": 300}, &sb); code != 201 {
		t.Fatalf("creating a browser sandbox: %d %s", code, raw)
	}
	defer s.Kill(sb.ID)
	created := time.Since(t0)
	if sb.TrafficToken == "" || sb.Domain == "" {
		t.Fatalf("sandbox JSON lacks traffic_token or domain: %+v", sb)
	}
	host := "9222-" + sb.ID + "." + sb.Domain
	get := func(path, token string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.ProxyURL+path, nil)
		req.Host = host
		if token != "" {
			req.Header.Set("E2B-Traffic-Access-Token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s through the proxy: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, b
	}
	// Create returns once the template's ready port answers /health: Chromium is up.
	code, raw := get("/json/version", sb.TrafficToken)
	t.Logf("create answered in %v; CDP answered %v after the create was sent", created.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	if code != 200 {
		t.Fatalf("GET /json/version with the token = %d %s", code, raw)
	}
	var version struct {
		Browser string `json:"Browser"`
		WS      string `json:"webSocketDebuggerUrl"`
	}
	if err := json.Unmarshal(raw, &version); err != nil {
		t.Fatalf("/json/version: %v: %s", err, raw)
	}
	wantPrefix := "ws://" + host + "/devtools/browser/"
	if !strings.HasPrefix(version.WS, wantPrefix) || !strings.HasPrefix(version.Browser, "HeadlessChrome/") && !strings.HasPrefix(version.Browser, "Chrome/") {
		t.Fatalf("/json/version = %s; want Chrome and a webSocketDebuggerUrl starting %s", raw, wantPrefix)
	}
	for _, token := range []string{"", "not-the-token"} {
		if code, raw := get("/json/version", token); code != 401 && code != 403 {
			t.Errorf("GET /json/version with token %q = %d %s; want 401 or 403", token, code, raw)
		}
	}

	// A page served inside the sandbox, written with the files API.
	const message = "Hello from a Warren browser sandbox"
	page := "<!doctype html><html><head><title>warren browser test</title></head>" +
		"<body style=\"background:#fff;font:32px sans-serif\"><h1 id=\"message\">" + message + "</h1>" +
		"<div style=\"width:300px;height:120px;background:linear-gradient(90deg,#e33,#33e)\"></div></body></html>"
	req, _ := http.NewRequest("PUT", s.URL+"/v1/sandboxes/"+sb.ID+"/files/content?path=/home/user/site/index.html", strings.NewReader(page))
	req.Header.Set("Authorization", "Bearer "+s.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("writing index.html: %d", resp.StatusCode)
	}
	if r := s.Exec(sb.ID, "cd /home/user/site && setsid -f python3 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1; "+
		"for i in $(seq 100); do curl -fs -o /dev/null http://127.0.0.1:8000/ && echo up && break; sleep 0.1; done"); !strings.Contains(r.Stdout, "up") {
		t.Fatalf("starting the page's server: %+v", r)
	}

	artifacts := filepath.Join(repoRoot(), "test-artifacts", "browser")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifacts, "page.png")
	os.Remove(shot)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "cdp.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		// The proxy routes on the Host header; *.localhost names need not resolve.
		"WARREN_CDP_WS=ws://"+strings.TrimPrefix(s.ProxyURL, "http://")+strings.TrimPrefix(version.WS, "ws://"+host),
		"WARREN_CDP_HOST="+host,
		"WARREN_TRAFFIC_TOKEN="+sb.TrafficToken,
		"WARREN_PAGE_URL=http://localhost:8000/",
		"WARREN_SCREENSHOT="+shot,
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t1 := time.Now()
	out, err := cmd.Output()
	if err != nil {
		ps := s.Exec(sb.ID, "ps -eo pid,user,rss,args | cut -c1-160")
		_, logs := s.API("GET", "/v1/sandboxes/"+sb.ID+"/logs", nil, nil)
		t.Fatalf("cdp.mjs: %v\nstdout: %s\nstderr: %s\nsandbox processes:\n%s\nsandbox logs: %.20000s", err, out, stderr.Bytes(), ps.Stdout, logs)
	}
	t.Logf("cdp.mjs took %v: %s", time.Since(t1).Round(time.Millisecond), bytes.TrimSpace(out))
	var got struct {
		Version string `json:"version"`
		Title   string `json:"title"`
		Text    string `json:"text"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &got); err != nil {
		t.Fatalf("cdp.mjs printed %q: %v", out, err)
	}
	if got.Title != "warren browser test" || got.Text != message {
		t.Errorf("page title %q, #message %q; want %q and %q", got.Title, got.Text, "warren browser test", message)
	}
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if len(png) < 24 || !bytes.Equal(png[:8], []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("%s is not a PNG (%d bytes)", shot, len(png))
	}
	w, h := binary.BigEndian.Uint32(png[16:20]), binary.BigEndian.Uint32(png[20:24])
	t.Logf("screenshot %s: %dx%d, %d bytes", shot, w, h, len(png))
	if w < 300 || h < 120 || len(png) < 2000 {
		t.Errorf("screenshot is %dx%d, %d bytes; want at least the page's 300x120 box and 2 KB", w, h, len(png))
	}

	// A Chromium that exits (a client's Browser.close, a crash) is started again, also in
	// a sandbox restored from the template's snapshot under another hostname, where the
	// profile lock the old one left would make Chromium refuse its profile.
	var kill struct {
		ExitCode int    `json:"exit_code"`
		Stdout   string `json:"stdout"`
		Stderr   string `json:"stderr"`
	}
	if code, raw := s.API("POST", "/v1/sandboxes/"+sb.ID+"/commands", map[string]any{"user": "root",
		"cmd": "readlink /tmp/warren-chromium/SingletonLock; hostname; n=0; for p in $(pgrep -x chromium); do " +
			"tr '\\0' ' ' </proc/$p/cmdline | grep -q -- --type= || { kill -9 $p && n=$((n+1)); }; done; echo killed $n"}, &kill); code != 200 || !strings.Contains(kill.Stdout, "killed 1") {
		t.Fatalf("killing the browser process: %d %s", code, raw)
	}
	t.Logf("profile lock, hostname and kill: %q", kill.Stdout)
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		code, raw := get("/json/version", sb.TrafficToken)
		var again struct {
			WS string `json:"webSocketDebuggerUrl"`
		}
		if code == 200 && json.Unmarshal(raw, &again) == nil && strings.HasPrefix(again.WS, wantPrefix) && again.WS != version.WS {
			t.Logf("a new Chromium answered %v after the old one was killed", time.Since(deadline.Add(-90*time.Second)).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			_, logs := s.API("GET", "/v1/sandboxes/"+sb.ID+"/logs", nil, nil)
			t.Fatalf("no new Chromium within 90s: last /json/version %d %s\nsandbox logs: %.20000s", code, raw, logs)
		}
	}
}
