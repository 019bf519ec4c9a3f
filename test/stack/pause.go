package stack

import (
	"context"
	"encoding/json"
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
	"github.com/warren-sh/warren/internal/runtime/runtimetest"
)

// counterServer is a Python HTTP server on port 8080 that answers with a counter a
// thread of it increments in memory every 50 ms: after a pause or a restore, a count
// that goes on (not one starting again at 0) proves the memory came back.
const counterServer = `import http.server, threading, time
n = 0
def tick():
    global n
    while True:
        n += 1
        time.sleep(0.05)
threading.Thread(target=tick, daemon=True).start()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = str(n).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
`

// startCounterServer writes the counter server into the sandbox through its agent,
// starts it in the background and waits until it answers.
func startCounterServer(t *testing.T, c *agentclient.Client, addr string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Files().WriteFile(ctx, "/tmp/counter.py", "root", strings.NewReader(counterServer)); err != nil {
		t.Fatalf("writing the counter server: %v", err)
	}
	r, err := c.Processes().Exec(ctx, domain.ExecRequest{Cmd: "setsid python3 /tmp/counter.py </dev/null >/dev/null 2>&1 &", Timeout: 30 * time.Second}, nil)
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("starting the counter server: %+v %v", r, err)
	}
	return waitCounter(t, addr, 1)
}

// counterAt reads the counter served at addr (-1 when it does not answer).
func counterAt(addr string) int {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + net.JoinHostPort(addr, "8080") + "/")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return -1
	}
	return n
}

// waitCounter waits until the counter at addr reaches at least n and returns it.
func waitCounter(t *testing.T, addr string, n int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c := counterAt(addr); c >= n {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("the counter at %s did not reach %d in 30 s (it is %d)", addr, n, counterAt(addr))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shOn runs a shell line through the agent and returns its trimmed stdout.
func shOn(t *testing.T, c *agentclient.Client, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := c.Processes().Exec(ctx, domain.ExecRequest{Cmd: cmd, Timeout: 30 * time.Second}, nil)
	if err != nil {
		t.Fatalf("%q: %v", cmd, err)
	}
	return strings.TrimSpace(string(r.Stdout))
}

// nodeSandbox is a sandbox the test runs on the node directly, without the service.
type nodeSandbox struct {
	sb     *domain.Sandbox
	client *agentclient.Client
}

// connect dials the agent of ns at its current address and waits until it answers.
func (ns *nodeSandbox) connect(t *testing.T) {
	t.Helper()
	if ns.client != nil {
		ns.client.Close()
	}
	ns.client = agentclient.New(net.JoinHostPort(ns.sb.Address, strconv.Itoa(runtime.AgentPort)), ns.sb.AccessToken)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ns.client.WaitReady(ctx); err != nil {
		t.Fatalf("agent of %s at %s: %v", ns.sb.ID, ns.sb.Address, err)
	}
}

// nodeStart starts a sandbox on the node at slot with the run's default limits (a
// disk limit too, so the disk image path is covered) and removes it when t ends.
func (e *env) nodeStart(t *testing.T, slot int) (*nodeSandbox, *domain.Template) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tpl, err := e.store.GetTemplate(ctx, "", "base")
	if err != nil {
		t.Fatal(err)
	}
	sb := &domain.Sandbox{ID: domain.NewID(20), Slot: slot, AccessToken: "node-test-token", Limits: defaultLimits, RuntimeName: e.caps.Name}
	h, addr, err := e.node.Start(ctx, sb, tpl)
	if err != nil {
		t.Fatalf("node start: %v", err)
	}
	sb.RuntimeHandle, _ = json.Marshal(h)
	sb.Address = addr
	ns := &nodeSandbox{sb: sb}
	t.Cleanup(func() { e.nodeStop(t, ns) })
	ns.connect(t)
	return ns, tpl
}

// nodeStop removes a node-run sandbox and checks that nothing of it is left.
func (e *env) nodeStop(t *testing.T, ns *nodeSandbox) {
	t.Helper()
	if ns.client != nil {
		ns.client.Close()
	}
	var h *runtime.Handle
	if len(ns.sb.RuntimeHandle) > 0 {
		hh := handle(t, ns.sb)
		h = &hh
	}
	if err := e.node.Stop(context.Background(), ns.sb.ID, ns.sb.Slot, h); err != nil {
		t.Errorf("stopping %s: %v", ns.sb.ID, err)
	}
	e.checkGone(t, ns.sb)
}

// testNodeCheckpoint covers the node's checkpoint primitives on a real sandbox with a
// process serving a counter from memory and a file: Pause leaves nothing but the
// sandbox's directory (no process, mount, loop device or network), Resume at another
// address continues the same process with its files; Snapshot keeps the sandbox
// running, and StartFrom makes a new sandbox (own id, address and files) that goes on
// from the snapshot's memory and files, its writes apart from the parent's. On a
// runtime that cannot checkpoint, Pause is a conflict that leaves the sandbox running.
func testNodeCheckpoint(t *testing.T, e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	top := e.node.Slots() - 1
	ns, tpl := e.nodeStart(t, top)
	if _, ok := e.drv.(runtime.Checkpointer); !ok {
		if err := e.node.Pause(ctx, ns.sb); !domain.IsKind(err, domain.KindConflict) {
			t.Fatalf("pausing a %s sandbox: %v, want a conflict", e.caps.Name, err)
		}
		shOn(t, ns.client, "true")
		return
	}
	shOn(t, ns.client, "echo kept > /tmp/kept; echo home > /home/user/kept")
	before := startCounterServer(t, ns.client, ns.sb.Address)

	t0 := time.Now()
	if err := e.node.Pause(ctx, ns.sb); err != nil {
		t.Fatalf("pause: %v", err)
	}
	t.Logf("pause took %s; the paused sandbox holds %d KiB on disk", time.Since(t0).Round(time.Millisecond), e.node.PausedBytes(ns.sb.ID)>>10)
	ns.client.Close()
	ns.client = nil
	// Nothing but the directory is left.
	var left []string
	for _, tr := range e.traces(ns.sb) {
		if !strings.HasPrefix(tr, "sandbox directory") && !strings.HasPrefix(tr, "file ") {
			left = append(left, tr)
		}
	}
	if len(left) > 0 {
		t.Errorf("a paused sandbox left more than its directory: %v", left)
	}
	if len(runtimetest.ProcessTraces(ns.sb.ID)) > 0 {
		t.Error("a process of the paused sandbox is still running")
	}
	if _, err := os.Stat(filepath.Join(e.nodeDir(), ns.sb.ID, "image")); err != nil {
		t.Errorf("the paused sandbox has no image: %v", err)
	}

	// Resume at another slot: the same process goes on, files kept.
	oldAddr := ns.sb.Address
	ns.sb.Slot = top - 1
	t0 = time.Now()
	h, addr, err := e.node.Resume(ctx, ns.sb, tpl)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	t.Logf("resume took %s", time.Since(t0).Round(time.Millisecond))
	ns.sb.RuntimeHandle, _ = json.Marshal(h)
	ns.sb.Address = addr
	if addr == oldAddr {
		t.Errorf("resumed at slot %d with the old address %s", ns.sb.Slot, addr)
	}
	ns.connect(t)
	if got := waitCounter(t, addr, before); got < before {
		t.Fatalf("after resume the counter is %d, below %d before the pause", got, before)
	}
	if got := shOn(t, ns.client, "cat /tmp/kept /home/user/kept"); got != "kept\nhome" {
		t.Errorf("files after resume: %q", got)
	}

	// Snapshot: the parent keeps running.
	snap := filepath.Join(t.TempDir(), "snap")
	atSnap := counterAt(addr)
	if err := e.node.Snapshot(ctx, ns.sb, snap); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	waitCounter(t, addr, atSnap+5)
	shOn(t, ns.client, "echo parent > /tmp/after")

	// StartFrom: a new sandbox from the snapshot.
	child := &nodeSandbox{sb: &domain.Sandbox{ID: domain.NewID(20), Slot: top - 2, AccessToken: ns.sb.AccessToken, Limits: defaultLimits, RuntimeName: e.caps.Name}}
	t.Cleanup(func() { e.nodeStop(t, child) })
	t0 = time.Now()
	ch, caddr, err := e.node.StartFrom(ctx, child.sb, tpl, snap)
	if err != nil {
		t.Fatalf("start from the snapshot: %v", err)
	}
	t.Logf("start from the snapshot took %s", time.Since(t0).Round(time.Millisecond))
	child.sb.RuntimeHandle, _ = json.Marshal(ch)
	child.sb.Address = caddr
	child.connect(t)
	if got := waitCounter(t, caddr, atSnap); got < atSnap {
		t.Fatalf("the copy's counter is %d, below %d at the snapshot", got, atSnap)
	}
	if got := shOn(t, child.client, "cat /tmp/kept; test -e /tmp/after && echo leaked; echo child > /tmp/child"); got != "kept" {
		t.Errorf("the copy's files: %q, want the snapshot's only", got)
	}
	if got := shOn(t, ns.client, "test -e /tmp/child && echo leaked; cat /tmp/after"); got != "parent" {
		t.Errorf("the parent's files: %q, want its own only", got)
	}

	// Start from a snapshot that is not there: nothing is left.
	bad := &domain.Sandbox{ID: domain.NewID(20), Slot: top - 3, AccessToken: "x", Limits: defaultLimits, RuntimeName: e.caps.Name}
	if _, _, err := e.node.StartFrom(ctx, bad, tpl, filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("start from a missing snapshot succeeded")
	}
	e.checkGone(t, bad)
}

// testPauseResume pauses and resumes a sandbox through the service, with a server
// restart (a new service on the same store and node) while it is paused: paused, no
// process of it runs and work in it is refused; resumed, the same process serves the
// counter from where it was, at the sandbox's new address, and its files are kept. On
// a runtime that cannot checkpoint, pause is a conflict naming gvisor.
func testPauseResume(t *testing.T, e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sb := e.create(t, domain.CreateSandbox{})
	if _, ok := e.drv.(runtime.Checkpointer); !ok {
		if _, err := e.svc.Pause(ctx, e.p, sb.ID); !domain.IsKind(err, domain.KindConflict) || !strings.Contains(err.Error(), "gvisor") {
			t.Fatalf("pausing a %s sandbox: %v, want a conflict naming gvisor", e.caps.Name, err)
		}
		e.sh(t, sb.ID, "true")
		return
	}
	if _, err := e.files().WriteFile(ctx, e.p, sb.ID, "/tmp/counter.py", "root", strings.NewReader(counterServer)); err != nil {
		t.Fatal(err)
	}
	e.sh(t, sb.ID, "echo kept > /home/user/kept; setsid python3 /tmp/counter.py </dev/null >/dev/null 2>&1 &")
	before := waitCounter(t, sb.Address, 1)

	t0 := time.Now()
	p, err := e.svc.Pause(ctx, e.p, sb.ID)
	if err != nil {
		t.Fatalf("pause: %v", err)
	}
	t.Logf("pause took %s", time.Since(t0).Round(time.Millisecond))
	if p.State != domain.StatePaused {
		t.Fatalf("paused sandbox is %s", p.State)
	}
	if tr := runtimetest.ProcessTraces(sb.ID); len(tr) > 0 {
		t.Errorf("processes of the paused sandbox: %v", tr)
	}
	if _, err := e.tryExec(sb.ID, domain.ExecRequest{Cmd: "true"}); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("exec in a paused sandbox: %v, want a conflict", err)
	}
	if _, err := e.svc.Pause(ctx, e.p, sb.ID); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("pausing twice: %v, want a conflict", err)
	}

	// A restart while it is paused: the sweep keeps its directory.
	e.svc.Close()
	e.svc = e.newService(t)
	rep, err := e.sweeper().Recover(ctx)
	if err != nil || rep.Paused != 1 || rep.Orphans != 0 {
		t.Fatalf("recover: %+v %v, want 1 paused, no orphans", rep, err)
	}

	t0 = time.Now()
	r, err := e.svc.Resume(ctx, e.p, sb.ID, time.Minute)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	t.Logf("resume took %s", time.Since(t0).Round(time.Millisecond))
	if r.State != domain.StateRunning {
		t.Fatalf("resumed sandbox is %s", r.State)
	}
	if got := waitCounter(t, r.Address, before); got < before {
		t.Fatalf("after resume the counter is %d, below %d before the pause", got, before)
	}
	if got := e.sh(t, sb.ID, "cat /home/user/kept"); got != "kept" {
		t.Errorf("file after resume: %q", got)
	}
	if _, err := e.svc.Resume(ctx, e.p, sb.ID, 0); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("resuming a running sandbox: %v, want a conflict", err)
	}
	// Paused again, then killed while paused: nothing is left.
	if _, err := e.svc.Pause(ctx, e.p, sb.ID); err != nil {
		t.Fatalf("second pause: %v", err)
	}
	e.kill(t, r)
}

// testCutPause: a restart that cuts a pause off leaves nothing half-paused. Frozen
// before its checkpoint, the sandbox is thawed and taken back running; checkpointed
// but not yet recorded, it is recorded paused and resumes.
func testCutPause(t *testing.T, e *env) {
	cp, ok := e.drv.(runtime.Checkpointer)
	fr, ok2 := e.drv.(runtime.Freezer)
	if !ok || !ok2 {
		t.Skip("the driver cannot checkpoint")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	frozen := e.create(t, domain.CreateSandbox{})
	saved := e.create(t, domain.CreateSandbox{})
	e.sh(t, saved.ID, "echo kept > /home/user/kept")
	e.svc.Close() // the server goes away mid-pause
	if err := fr.Freeze(ctx, handle(t, frozen)); err != nil {
		t.Fatal(err)
	}
	if err := cp.Checkpoint(ctx, handle(t, saved), filepath.Join(e.nodeDir(), saved.ID, "image"), false); err != nil {
		t.Fatal(err)
	}
	e.svc = e.newService(t)
	rep, err := e.sweeper().Recover(ctx)
	if err != nil || rep.Reattached != 1 || rep.Paused != 1 || rep.Reaped != 0 {
		t.Fatalf("recover: %+v %v, want 1 re-attached (thawed) and 1 paused", rep, err)
	}
	e.sh(t, frozen.ID, "true")
	got, err := e.svc.Get(ctx, e.p, saved.ID)
	if err != nil || got.State != domain.StatePaused {
		t.Fatalf("the checkpointed sandbox after the restart: %+v %v, want paused", got, err)
	}
	if _, err := e.svc.Resume(ctx, e.p, saved.ID, 0); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if out := e.sh(t, saved.ID, "cat /home/user/kept"); out != "kept" {
		t.Errorf("file after resume: %q", out)
	}
}

// testFailedResume: a sandbox whose checkpoint image is damaged cannot be resumed: it
// is marked lost (error) with its image kept aside for inspection, and nothing else of
// it is left.
func testFailedResume(t *testing.T, e *env) {
	if _, ok := e.drv.(runtime.Checkpointer); !ok {
		t.Skip("the driver cannot checkpoint")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sb := e.create(t, domain.CreateSandbox{})
	if _, err := e.svc.Pause(ctx, e.p, sb.ID); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(e.nodeDir(), sb.ID, "image", "checkpoint.img")
	if err := os.Truncate(img, 100); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Resume(ctx, e.p, sb.ID, 0)
	if err == nil || domain.KindOf(err) != domain.KindInternal {
		t.Fatalf("resume of a damaged image: %v, want an internal error", err)
	}
	got, gerr := e.svc.Get(ctx, e.p, sb.ID)
	if gerr != nil || got.State != domain.StateError || !strings.HasPrefix(got.EndReason, "lost") {
		t.Errorf("after the failed resume: %+v %v, want error, lost", got, gerr)
	}
	kept := filepath.Join(e.nodeDir(), ".lost", sb.ID, "checkpoint.img")
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("the image was not kept for inspection: %v", err)
	}
	if err := os.RemoveAll(filepath.Join(e.nodeDir(), ".lost", sb.ID)); err != nil { // inspected
		t.Fatal(err)
	}
	e.checkGone(t, got)
}

// testCallsDuringPause: calls to the agent in flight when a sandbox is paused end
// with a conflict saying so once the pause is done, instead of waiting on a
// connection to a frozen sandbox that never answers: 10 commands still running, and
// 10 callers reading metrics and listing processes in a loop across the pause.
func testCallsDuringPause(t *testing.T, e *env) {
	if _, ok := e.drv.(runtime.Checkpointer); !ok {
		t.Skip("the driver cannot checkpoint")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sb := e.create(t, domain.CreateSandbox{})
	const n = 10
	type ended struct {
		err  error
		took time.Duration
	}
	execs := make(chan ended, n)
	for range n {
		go func() {
			t0 := time.Now()
			_, err := e.tryExec(sb.ID, domain.ExecRequest{Cmd: "sleep 120"})
			execs <- ended{err, time.Since(t0)}
		}()
	}
	for i := 0; ; i++ {
		if ps, err := e.processes().ListProcesses(ctx, e.p, sb.ID); err == nil && len(ps) >= n {
			break
		}
		if i == 100 {
			t.Fatalf("the %d commands did not all start", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop := make(chan struct{})
	loops := make(chan []ended, n)
	for i := range n {
		go func() {
			var got []ended
			for {
				select {
				case <-stop:
					loops <- got
					return
				default:
				}
				t0 := time.Now()
				var err error
				if i%2 == 0 {
					_, err = e.svc.Metrics(ctx, e.p, sb.ID)
				} else {
					_, err = e.processes().ListProcesses(ctx, e.p, sb.ID)
				}
				got = append(got, ended{err, time.Since(t0)})
				if err != nil && time.Since(t0) < 10*time.Millisecond {
					time.Sleep(10 * time.Millisecond) // refused at once: paused
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	if _, err := e.svc.Pause(ctx, e.p, sb.ID); err != nil {
		t.Fatalf("pause: %v", err)
	}
	pause := time.Since(t0)
	bound := pause + 5*time.Second
	for range n {
		select {
		case x := <-execs:
			if !domain.IsKind(x.err, domain.KindConflict) || !strings.Contains(x.err.Error(), "paused while the request ran") {
				t.Errorf("a command running across the pause: %v, want a conflict saying it was paused", x.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the commands in flight did not all end within 5 s after the pause (it took %s)", pause)
		}
	}
	close(stop)
	var calls, failed int
	var longest time.Duration
	for range n {
		for _, x := range <-loops {
			calls++
			longest = max(longest, x.took)
			if x.err != nil {
				failed++
				if !domain.IsKind(x.err, domain.KindConflict) {
					t.Errorf("a call across the pause: %v, want success or a conflict", x.err)
				}
			}
		}
	}
	t.Logf("pause took %s; %d metrics and process listings, %d refused or cut off, the longest %s",
		pause.Round(time.Millisecond), calls, failed, longest.Round(time.Millisecond))
	if longest > bound {
		t.Errorf("a call took %s, more than the pause (%s) and 5 s", longest, pause)
	}
	r, err := e.svc.Resume(ctx, e.p, sb.ID, time.Minute)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if _, err := e.svc.Metrics(ctx, e.p, sb.ID); err != nil {
		t.Errorf("metrics after the resume: %v", err)
	}
	e.kill(t, r)
}
