package warren

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// counterServer is a Python HTTP server answering each GET with a counter it keeps in
// memory: after a pause and resume, or in a fork, it goes on from where it was.
const counterServer = `import http.server
n = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global n
        n += 1
        b = str(n).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("0.0.0.0", 8000), H).serve_forever()
`

// startCounter starts counterServer in the background in sbx and waits until it answers.
func startCounter(ctx context.Context, t *testing.T, sbx *Sandbox) {
	t.Helper()
	if _, err := sbx.Files().WriteBytes(ctx, "/tmp/counter.py", []byte(counterServer)); err != nil {
		t.Fatal(err)
	}
	h, err := sbx.Commands().Start(ctx, "python3 /tmp/counter.py", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.Disconnect() // the server lives on in the sandbox; a pause ends the handle's stream
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ports, err := sbx.Ports(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ports) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the counter server did not listen on port 8000 within 20s")
		}
	}
}

// count asks the sandbox's counter server for its next value, from inside the sandbox.
func count(ctx context.Context, t *testing.T, sbx *Sandbox) string {
	t.Helper()
	res, err := sbx.Commands().Run(ctx, `python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/').read().decode())"`, RunOptions{})
	if err != nil {
		t.Fatalf("asking %s's counter: %v", sbx.ID, err)
	}
	return strings.TrimSpace(res.Stdout)
}

// countThroughProxy asks the counter through the server's proxy at the sandbox's host.
func countThroughProxy(ctx context.Context, t *testing.T, sbx *Sandbox) string {
	t.Helper()
	proxy := os.Getenv("WARREN_PROXY_URL")
	if proxy == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI: WARREN_PROXY_URL is unset (TestMain sets it when it starts the server)")
		}
		return ""
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", proxy+"/", nil)
	req.Host = sbx.GetHost(8000)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s through the proxy: %d %q", req.Host, resp.StatusCode, b)
	}
	return string(b)
}

// killAll kills sandboxes at the end of a test.
func killAll(t *testing.T, sbxs ...*Sandbox) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, s := range sbxs {
			if err := s.Kill(ctx); err != nil && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
				t.Errorf("killing %s: %v", s.ID, err)
			}
		}
	})
}

// TestIntegrationPauseResume: a paused sandbox is listed paused, refuses a second pause
// and commands, and after resume keeps its file and its background server, which goes
// on counting from memory and answers through the proxy at the same host.
func TestIntegrationPauseResume(t *testing.T) {
	c := integrationClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sbx := newSandbox(t, c, "base")
	if _, err := sbx.Files().WriteBytes(ctx, "/home/user/kept.txt", []byte("kept\n")); err != nil {
		t.Fatal(err)
	}
	startCounter(ctx, t, sbx)
	if got := count(ctx, t, sbx); got != "1" {
		t.Fatalf("first count %q", got)
	}
	if got := countThroughProxy(ctx, t, sbx); got != "" && got != "2" {
		t.Fatalf("count through the proxy %q, want 2", got)
	}
	next := 2
	if os.Getenv("WARREN_PROXY_URL") != "" {
		next = 3
	}

	info, err := sbx.Pause(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "paused" || sbx.Info().State != "paused" {
		t.Fatalf("after pause: %+v", info)
	}
	page, err := c.ListSandboxes(ctx, ListOptions{States: []string{"paused"}, Metadata: map[string]string{"test": t.Name()}})
	if err != nil || len(page.Sandboxes) != 1 || page.Sandboxes[0].ID != sbx.ID {
		t.Errorf("list of paused: %+v %v", page, err)
	}
	if _, err := sbx.Pause(ctx); !errors.Is(err, ErrConflict) {
		t.Errorf("second pause: %v, want ErrConflict", err)
	}
	if _, err := sbx.Commands().Run(ctx, "true", RunOptions{}); !errors.Is(err, ErrConflict) {
		t.Errorf("a command in a paused sandbox: %v, want ErrConflict", err)
	}

	info, err = sbx.Resume(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "running" || info.ID != sbx.ID {
		t.Fatalf("after resume: %+v", info)
	}
	if _, err := sbx.Resume(ctx, 0); !errors.Is(err, ErrConflict) {
		t.Errorf("resuming a running sandbox: %v, want ErrConflict", err)
	}
	if b, err := sbx.Files().ReadBytes(ctx, "/home/user/kept.txt"); err != nil || string(b) != "kept\n" {
		t.Errorf("file after resume: %q %v", b, err)
	}
	if got := count(ctx, t, sbx); got != fmt.Sprint(next) {
		t.Errorf("count after resume %q, want %d (the server's memory kept)", got, next)
	}
	if got := countThroughProxy(ctx, t, sbx); got != "" && got != fmt.Sprint(next+1) {
		t.Errorf("count through the proxy after resume %q, want %d", got, next+1)
	}
}

// TestIntegrationFork: a fork of 3 gives three running sandboxes with the parent's
// files and memory at the fork, each its own id and host; what each writes the parent
// and the others do not see; the parent keeps running.
func TestIntegrationFork(t *testing.T) {
	c := integrationClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	parent := newSandbox(t, c, "base")
	if _, err := parent.Files().WriteBytes(ctx, "/home/user/who.txt", []byte("parent\n")); err != nil {
		t.Fatal(err)
	}
	startCounter(ctx, t, parent)
	if got := count(ctx, t, parent); got != "1" {
		t.Fatalf("first count %q", got)
	}
	forks, err := parent.Fork(ctx, ForkOptions{Count: 3, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	killAll(t, forks...)
	if len(forks) != 3 {
		t.Fatalf("fork of 3 gave %d sandboxes", len(forks))
	}
	seen := map[string]bool{parent.ID: true}
	for _, f := range forks {
		if seen[f.ID] || f.Info().State != "running" {
			t.Fatalf("fork %+v: a repeated id or not running", f.Info())
		}
		seen[f.ID] = true
		if _, err := f.Files().WriteBytes(ctx, "/home/user/who.txt", []byte(f.ID+"\n")); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range forks {
		if b, err := f.Files().ReadBytes(ctx, "/home/user/who.txt"); err != nil || string(b) != f.ID+"\n" {
			t.Errorf("fork %s reads %q %v: a sibling's write leaked", f.ID, b, err)
		}
		if got := count(ctx, t, f); got != "2" {
			t.Errorf("fork %s counts %q, want 2 (the parent's memory at the fork)", f.ID, got)
		}
		if host := f.GetHost(8000); host == parent.GetHost(8000) || !strings.HasPrefix(host, "8000-"+f.ID+".") {
			t.Errorf("fork host %q", host)
		}
	}
	if b, err := parent.Files().ReadBytes(ctx, "/home/user/who.txt"); err != nil || string(b) != "parent\n" {
		t.Errorf("the parent reads %q %v after its forks wrote", b, err)
	}
	if got := count(ctx, t, parent); got != "2" {
		t.Errorf("the parent counts %q, want 2 (the forks' requests are not its own)", got)
	}
	if _, err := parent.Fork(ctx, ForkOptions{Count: 21}); !errors.Is(err, ErrInvalid) {
		t.Errorf("fork of 21: %v, want ErrInvalid", err)
	}
	if _, err := parent.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := parent.Fork(ctx, ForkOptions{Count: 1}); !errors.Is(err, ErrConflict) {
		t.Errorf("fork of a paused sandbox: %v, want ErrConflict", err)
	}
}

// TestIntegrationSnapshots: a named snapshot of a sandbox starts a new sandbox with its
// files and memory; it is listed (by sandbox too), found by name, deleted, and the
// sandbox started from it lives on.
func TestIntegrationSnapshots(t *testing.T) {
	c := integrationClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	src := newSandbox(t, c, "base")
	if _, err := src.Files().WriteBytes(ctx, "/home/user/state.txt", []byte("saved state\n")); err != nil {
		t.Fatal(err)
	}
	startCounter(ctx, t, src)
	count(ctx, t, src)
	name := fmt.Sprintf("sdk-go-%d", time.Now().UnixNano())
	snap, err := src.CreateSnapshot(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	deleted := false
	t.Cleanup(func() {
		if !deleted {
			c.DeleteSnapshot(context.Background(), snap.ID)
		}
	})
	if !strings.HasPrefix(snap.ID, "snap_") || snap.Name != name || snap.SandboxID != src.ID || snap.Template != "base" || snap.CreatedAt.IsZero() {
		t.Errorf("snapshot %+v", snap)
	}
	if _, err := src.CreateSnapshot(ctx, name); !errors.Is(err, ErrConflict) {
		t.Errorf("a second snapshot named %q: %v, want ErrConflict", name, err)
	}

	from, err := c.CreateSandbox(ctx, SandboxOptions{Snapshot: name, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	killAll(t, from)
	if info := from.Info(); info.State != "running" || info.ID == src.ID || info.Template != "base" {
		t.Errorf("sandbox from the snapshot: %+v", info)
	}
	if b, err := from.Files().ReadBytes(ctx, "/home/user/state.txt"); err != nil || string(b) != "saved state\n" {
		t.Errorf("file in the sandbox from the snapshot: %q %v", b, err)
	}
	if got := count(ctx, t, from); got != "2" {
		t.Errorf("count in the sandbox from the snapshot %q, want 2", got)
	}

	page, err := c.ListSnapshots(ctx, SnapshotListOptions{SandboxID: src.ID})
	if err != nil || len(page.Snapshots) != 1 || page.Snapshots[0].ID != snap.ID {
		t.Errorf("list by sandbox: %+v %v", page, err)
	}
	found := false
	for s, err := range c.AllSnapshots(ctx, SnapshotListOptions{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		found = found || s.ID == snap.ID
	}
	if !found {
		t.Error("AllSnapshots did not yield the snapshot")
	}
	if got, err := c.GetSnapshot(ctx, name); err != nil || got.ID != snap.ID {
		t.Errorf("get by name: %+v %v", got, err)
	}
	if err := c.DeleteSnapshot(ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	deleted = true
	if err := c.DeleteSnapshot(ctx, snap.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	if page, err := c.ListSnapshots(ctx, SnapshotListOptions{SandboxID: src.ID}); err != nil || len(page.Snapshots) != 0 {
		t.Errorf("list after delete: %+v %v", page, err)
	}
	if _, err := c.CreateSandbox(ctx, SandboxOptions{Snapshot: name}); !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalid) {
		t.Errorf("create from a deleted snapshot: %v, want not found", err)
	}
	if got := count(ctx, t, from); got != "3" {
		t.Errorf("the sandbox started from the deleted snapshot counts %q, want 3", got)
	}
}

// TestIntegrationLifecycle: a sandbox created with Lifecycle{OnTimeout: "pause",
// AutoResume: true} is paused, not killed, at its timeout; a request through the proxy
// then resumes it and is served by the same process, which counts on from memory.
func TestIntegrationLifecycle(t *testing.T) {
	c := integrationClient(t)
	if os.Getenv("WARREN_PROXY_URL") == "" && os.Getenv("CI") == "" {
		t.Skip("set WARREN_PROXY_URL to reach the sandbox through the proxy")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sbx, err := c.CreateSandbox(ctx, SandboxOptions{Template: "base", Timeout: 10 * time.Minute,
		Lifecycle: &Lifecycle{OnTimeout: "pause", AutoResume: true}, Metadata: map[string]string{"test": t.Name()}})
	if err != nil {
		t.Fatal(err)
	}
	killAll(t, sbx)
	if l := sbx.Info().Lifecycle; l == nil || l.OnTimeout != "pause" || !l.AutoResume {
		t.Fatalf("lifecycle %+v", l)
	}
	startCounter(ctx, t, sbx)
	if got := countThroughProxy(ctx, t, sbx); got != "1" {
		t.Fatalf("first count %q", got)
	}
	if _, err := sbx.SetTimeout(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	var info *SandboxInfo
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		if info, err = sbx.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if info.State != "running" || time.Now().After(deadline) {
			break
		}
	}
	if info.State != "paused" {
		t.Fatalf("at its timeout the sandbox is %s (%s), want paused", info.State, info.EndReason)
	}
	if got := countThroughProxy(ctx, t, sbx); got != "2" {
		t.Errorf("count through the proxy of the paused sandbox %q, want 2 (resumed, memory kept)", got)
	}
	if info, err := sbx.Refresh(ctx); err != nil || info.State != "running" {
		t.Errorf("after the request: %+v %v", info, err)
	}
}
