package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/sandbox"
)

// memoryServer is a Python HTTP server on port 8081 that keeps a value in memory: GET /
// answers "<counter> <value>" (the counter a thread increments every 50 ms), GET
// /set?v=X sets the value. A copy of a saved sandbox starts with the saved value and
// counter, and what one copy sets no other sees.
const memoryServer = `import http.server, threading, time, urllib.parse
n = 0
v = "unset"
def tick():
    global n
    while True:
        n += 1
        time.sleep(0.05)
threading.Thread(target=tick, daemon=True).start()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global v
        u = urllib.parse.urlparse(self.path)
        if u.path == "/set":
            v = urllib.parse.parse_qs(u.query)["v"][0]
        b = ("%d %s" % (n, v)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8081), H).serve_forever()
`

// memoryAt asks the memory server at addr (path "/" or "/set?v=X") and returns its
// counter and value; -1 when it does not answer.
func memoryAt(addr, path string) (int, string) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + net.JoinHostPort(addr, "8081") + path)
	if err != nil {
		return -1, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	count, value, _ := strings.Cut(string(b), " ")
	n, err := strconv.Atoi(count)
	if err != nil {
		return -1, ""
	}
	return n, value
}

// waitMemory waits until the memory server at addr answers and returns its counter and
// value.
func waitMemory(t *testing.T, addr string) (int, string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n, v := memoryAt(addr, "/"); n >= 0 {
			return n, v
		}
		if time.Now().After(deadline) {
			t.Fatalf("the memory server at %s does not answer", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// snapshotsDir is where the service of the run keeps snapshot files.
func (e *env) snapshotsDir() string { return filepath.Join(e.dataDir, "snapshots") }

// snapshotFiles lists the entries of the snapshot directory.
func (e *env) snapshotFiles(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(e.snapshotsDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, en := range ents {
		out = append(out, en.Name())
	}
	return out
}

// testForkAndSnapshots forks a running sandbox (a process holding a value and a counter
// in memory, a file, an env var) into 3 through the service, and checks each copy: its
// own id, address, token and hostname, the parent's memory, files and env as they were,
// and writes (files and memory) of its own that neither the parent nor its siblings
// see; the parent runs on. Then a named snapshot: a sandbox created from it has its
// state; deleting the snapshot leaves that sandbox working; quota and another team's
// access are refused. A runtime that cannot checkpoint refuses with a conflict.
func testForkAndSnapshots(t *testing.T, e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	snaps := sandbox.NewSnapshots(e.svc)
	parent := e.create(t, domain.CreateSandbox{Env: map[string]string{"FORK_ENV": "from-parent"}, Timeout: 5 * time.Minute})
	if _, ok := e.drv.(runtime.Checkpointer); !ok {
		if _, err := snaps.Fork(ctx, e.p, parent.ID, 1, 0); !domain.IsKind(err, domain.KindConflict) || !strings.Contains(err.Error(), "gvisor") {
			t.Fatalf("forking a %s sandbox: %v, want a conflict naming gvisor", e.caps.Name, err)
		}
		if _, err := snaps.CreateSnapshot(ctx, e.p, parent.ID, ""); !domain.IsKind(err, domain.KindConflict) {
			t.Fatalf("snapshotting a %s sandbox: %v, want a conflict", e.caps.Name, err)
		}
		if f := e.snapshotFiles(t); len(f) != 0 {
			t.Errorf("snapshot files left: %v", f)
		}
		e.sh(t, parent.ID, "true")
		return
	}
	if _, err := e.files().WriteFile(ctx, e.p, parent.ID, "/tmp/memory.py", "root", strings.NewReader(memoryServer)); err != nil {
		t.Fatal(err)
	}
	e.sh(t, parent.ID, "echo parent > /home/user/parent-file; setsid python3 /tmp/memory.py </dev/null >/dev/null 2>&1 &")
	waitMemory(t, parent.Address)
	if _, v := memoryAt(parent.Address, "/set?v=parent-value"); v != "parent-value" {
		t.Fatalf("setting the parent's value: %q", v)
	}
	before, _ := waitMemory(t, parent.Address)

	t0 := time.Now()
	res, err := snaps.Fork(ctx, e.p, parent.ID, 3, 2*time.Minute)
	if err != nil {
		t.Fatalf("fork: %v", err)
	}
	t.Logf("fork of 3 took %s", time.Since(t0).Round(time.Millisecond))
	var kids []*domain.Sandbox
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("fork %d: %v", i, r.Err)
		}
		kid := r.Sandbox
		kids = append(kids, kid)
		t.Cleanup(func() {
			if got, err := e.svc.Get(context.Background(), e.p, kid.ID); err == nil && !got.State.Terminal() {
				e.kill(t, kid)
			}
		})
	}
	seen := map[string]bool{parent.ID: true, parent.Address: true, parent.AccessToken: true}
	for i, kid := range kids {
		for _, v := range []string{kid.ID, kid.Address, kid.AccessToken} {
			if seen[v] {
				t.Errorf("fork %d shares %q with the parent or a sibling", i, v)
			}
			seen[v] = true
		}
		if got := e.sh(t, kid.ID, "hostname; cat /home/user/parent-file; echo $FORK_ENV"); got != kid.ID+"\nparent\nfrom-parent" {
			t.Errorf("fork %d: hostname, file and env: %q", i, got)
		}
		n, v := waitMemory(t, kid.Address)
		if n < before || v != "parent-value" {
			t.Errorf("fork %d's memory: counter %d (parent had %d at the fork), value %q", i, n, before, v)
		}
		// The parent's token does not open the copy's agent.
		c := agentclient.New(net.JoinHostPort(kid.Address, strconv.Itoa(runtime.AgentPort)), parent.AccessToken)
		if _, err := c.Metrics(ctx); err == nil {
			t.Errorf("fork %d's agent accepts the parent's access token", i)
		}
		c.Close()
		// Writes of its own: a file and a value in memory.
		name := fmt.Sprintf("child-%d", i)
		e.sh(t, kid.ID, "echo "+name+" > /home/user/mine")
		if _, v := memoryAt(kid.Address, "/set?v="+name); v != name {
			t.Errorf("fork %d: setting its value: %q", i, v)
		}
	}
	for i, kid := range kids {
		name := fmt.Sprintf("child-%d", i)
		if got := e.sh(t, kid.ID, "cat /home/user/mine"); got != name {
			t.Errorf("fork %d sees %q in its file, want its own %q", i, got, name)
		}
		if _, v := memoryAt(kid.Address, "/"); v != name {
			t.Errorf("fork %d holds %q in memory, want its own %q", i, v, name)
		}
	}
	if got := e.sh(t, parent.ID, "cat /home/user/mine 2>/dev/null || echo none"); got != "none" {
		t.Errorf("the parent sees a fork's file: %q", got)
	}
	if n, v := memoryAt(parent.Address, "/"); v != "parent-value" || n < before {
		t.Errorf("the parent's memory after the forks: counter %d, value %q", n, v)
	}
	if f := e.snapshotFiles(t); len(f) != 0 {
		t.Errorf("the fork's snapshot files stay: %v", f)
	}
	for _, kid := range kids {
		e.kill(t, kid)
	}

	testNamedSnapshot(ctx, t, e, snaps, parent)
}

// testNamedSnapshot: a snapshot of parent, a sandbox created from it with the state,
// the snapshot deleted under it, the quota and another team.
func testNamedSnapshot(ctx context.Context, t *testing.T, e *env, snaps *sandbox.Snapshots, parent *domain.Sandbox) {
	if _, v := memoryAt(parent.Address, "/set?v=at-snapshot"); v != "at-snapshot" {
		t.Fatalf("setting the parent's value: %q", v)
	}
	e.sh(t, parent.ID, "echo saved > /home/user/saved")
	atSnap, _ := waitMemory(t, parent.Address)
	t0 := time.Now()
	snap, err := snaps.CreateSnapshot(ctx, e.p, parent.ID, "stack-snap")
	if err != nil {
		t.Fatalf("create snapshot: %v", err)
	}
	t.Logf("snapshot took %s, %d bytes", time.Since(t0).Round(time.Millisecond), snap.SizeBytes)
	if snap.SizeBytes <= 0 || snap.Name != "stack-snap" {
		t.Errorf("snapshot: %+v", snap)
	}
	// The parent goes on, and its later writes are not in the snapshot.
	e.sh(t, parent.ID, "echo later > /home/user/later")
	memoryAt(parent.Address, "/set?v=after-snapshot")

	t0 = time.Now()
	sb, err := e.svc.Create(ctx, e.p, domain.CreateSandbox{Snapshot: "stack-snap"})
	if err != nil {
		t.Fatalf("create from the snapshot: %v", err)
	}
	t.Logf("create from the snapshot took %s", time.Since(t0).Round(time.Millisecond))
	t.Cleanup(func() {
		if got, err := e.svc.Get(context.Background(), e.p, sb.ID); err == nil && !got.State.Terminal() {
			e.kill(t, sb)
		}
	})
	if got := e.sh(t, sb.ID, "hostname; cat /home/user/saved; cat /home/user/later 2>/dev/null || echo no-later"); got != sb.ID+"\nsaved\nno-later" {
		t.Errorf("files of the sandbox from the snapshot: %q", got)
	}
	if n, v := waitMemory(t, sb.Address); n < atSnap || v != "at-snapshot" {
		t.Errorf("memory of the sandbox from the snapshot: counter %d (%d at the snapshot), value %q", n, atSnap, v)
	}

	// Deleted: its files go, the sandbox started from it works on.
	if err := snaps.DeleteSnapshot(ctx, e.p, snap.ID); err != nil {
		t.Fatalf("delete snapshot: %v", err)
	}
	if f := e.snapshotFiles(t); len(f) != 0 {
		t.Errorf("files of the deleted snapshot: %v", f)
	}
	n1, _ := waitMemory(t, sb.Address)
	e.sh(t, sb.ID, "echo still > /home/user/still && cat /home/user/still")
	time.Sleep(200 * time.Millisecond)
	if n2, _ := memoryAt(sb.Address, "/"); n2 <= n1 {
		t.Errorf("after the snapshot's delete the sandbox's counter stopped: %d then %d", n1, n2)
	}
	if _, err := e.svc.Create(ctx, e.p, domain.CreateSandbox{Snapshot: snap.ID}); !domain.IsKind(err, domain.KindInvalid) {
		t.Errorf("create from a deleted snapshot: %v, want invalid", err)
	}

	// Quota: a team that may keep one snapshot keeps one.
	team, err := e.store.GetTeam(ctx, e.p.TeamID)
	if err != nil {
		t.Fatal(err)
	}
	old := team.Quota
	team.Quota.MaxSnapshots = 1
	if err := e.store.UpdateTeam(ctx, team); err != nil {
		t.Fatal(err)
	}
	defer func() {
		team.Quota = old
		if err := e.store.UpdateTeam(context.Background(), team); err != nil {
			t.Error(err)
		}
	}()
	one, err := snaps.CreateSnapshot(ctx, e.p, sb.ID, "")
	if err != nil {
		t.Fatalf("a snapshot within the quota: %v", err)
	}
	var qe *domain.QuotaError
	if _, err := snaps.CreateSnapshot(ctx, e.p, sb.ID, ""); !errors.As(err, &qe) || qe.Quota != "max_snapshots" {
		t.Errorf("a snapshot over the quota: %v", err)
	}

	// Another team sees none of it.
	other := &domain.Team{ID: domain.NewID(20), Name: "other", CreatedAt: time.Now().UTC()}
	if err := e.store.CreateTeam(ctx, other); err != nil {
		t.Fatal(err)
	}
	op := domain.Principal{TeamID: other.ID, Scopes: []domain.Scope{domain.ScopeAdmin}}
	if _, err := snaps.GetSnapshot(ctx, op, one.ID); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("another team's get: %v", err)
	}
	if err := snaps.DeleteSnapshot(ctx, op, one.ID); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("another team's delete: %v", err)
	}
	if _, err := snaps.Fork(ctx, op, sb.ID, 1, 0); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("another team's fork: %v", err)
	}
	if _, err := e.svc.Create(ctx, op, domain.CreateSandbox{Snapshot: one.ID}); err == nil {
		t.Errorf("another team started a sandbox from this team's snapshot")
	}
	if err := snaps.DeleteSnapshot(ctx, e.p, one.ID); err != nil {
		t.Errorf("deleting: %v", err)
	}
	if f := e.snapshotFiles(t); len(f) != 0 {
		t.Errorf("snapshot files left: %v", f)
	}
	e.kill(t, sb)
}
