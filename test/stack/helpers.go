package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/node"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/runtimetest"
)

// create starts a sandbox and makes sure it is gone, leak-checked, when t ends.
func (e *env) create(t *testing.T, req domain.CreateSandbox) *domain.Sandbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	sb, err := e.svc.Create(ctx, e.p, req)
	if err != nil {
		t.Fatalf("creating a sandbox: %v", err)
	}
	t.Logf("sandbox %s running after %v", sb.ID, time.Since(t0).Round(time.Millisecond))
	t.Cleanup(func() {
		if got, err := e.svc.Get(context.Background(), e.p, sb.ID); err == nil && !got.State.Terminal() {
			e.kill(t, sb)
		}
	})
	return sb
}

// exec runs a command in the sandbox and fails t if the call itself fails.
func (e *env) exec(t *testing.T, id string, req domain.ExecRequest) *domain.ExecResult {
	t.Helper()
	r, err := e.tryExec(id, req)
	if err != nil {
		t.Fatalf("exec %q: %v", req.Cmd, err)
	}
	return r
}

func (e *env) tryExec(id string, req domain.ExecRequest) (*domain.ExecResult, error) {
	if req.Timeout == 0 {
		req.Timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), req.Timeout+30*time.Second)
	defer cancel()
	return e.processes().Exec(ctx, e.p, id, req, nil)
}

// sh runs a shell line as the default user and returns its trimmed stdout; it fails t
// unless the command exits 0.
func (e *env) sh(t *testing.T, id, cmd string) string {
	t.Helper()
	r := e.exec(t, id, domain.ExecRequest{Cmd: cmd})
	if r.ExitCode != 0 {
		t.Fatalf("%q: exit %d, stdout %q, stderr %q", cmd, r.ExitCode, r.Stdout, r.Stderr)
	}
	return strings.TrimSpace(string(r.Stdout))
}

// kill ends the sandbox through the service and checks that nothing of it is left.
func (e *env) kill(t *testing.T, sb *domain.Sandbox) {
	t.Helper()
	if err := e.svc.Kill(context.Background(), e.p, sb.ID); err != nil {
		t.Errorf("killing %s: %v", sb.ID, err)
	}
	e.checkGone(t, sb)
}

// handle is the driver's persisted handle of sb.
func handle(t *testing.T, sb *domain.Sandbox) runtime.Handle {
	t.Helper()
	var h runtime.Handle
	if err := json.Unmarshal(sb.RuntimeHandle, &h); err != nil {
		t.Fatalf("runtime handle of %s: %v", sb.ID, err)
	}
	return h
}

// checkGone waits for the background teardown of sb and reports every trace of it that
// is still on the host.
func (e *env) checkGone(t *testing.T, sb *domain.Sandbox) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var left []string
	for {
		left = e.traces(sb)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, l := range left {
		t.Errorf("leak of sandbox %s: %s", sb.ID, l)
	}
}

// traces lists what of sb is on the host: its directory, mounts, loop devices, network
// namespace, veth, internet-set entry, runtime state, cgroups, processes and any file
// under the run's directories named after it.
func (e *env) traces(sb *domain.Sandbox) []string {
	var out []string
	id := sb.ID
	dir := filepath.Join(e.nodeDir(), id)
	if _, err := os.Stat(dir); err == nil {
		out = append(out, "sandbox directory "+dir)
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(mi), "\n") {
			if strings.Contains(line, id) {
				out = append(out, "mount: "+line)
			}
		}
	}
	for _, dev := range node.LoopDevicesUnder(dir) {
		out = append(out, "loop device "+dev)
	}
	if _, err := os.Stat("/var/run/netns/" + e.netm.NetNSName(id)); err == nil {
		out = append(out, "network namespace "+e.netm.NetNSName(id))
	}
	if _, err := os.Stat("/sys/class/net/" + hostIf(e.netName, id)); err == nil {
		out = append(out, "veth "+hostIf(e.netName, id))
	}
	if sb.Address != "" {
		if b, _ := exec.Command("nft", "list", "set", "inet", e.netName, "internet").CombinedOutput(); strings.Contains(string(b), sb.Address+" ") || strings.Contains(string(b), sb.Address+"\n") || strings.Contains(string(b), sb.Address+",") {
			out = append(out, "internet set entry "+sb.Address)
		}
	}
	if ids, err := e.drv.List(context.Background()); err != nil {
		out = append(out, "driver List failed: "+err.Error())
	} else {
		for _, x := range ids {
			if x == id {
				out = append(out, "runtime state (driver List)")
			}
		}
	}
	out = append(out, runtimetest.CgroupTraces(id)...)
	out = append(out, runtimetest.ProcessTraces(id)...)
	_ = filepath.WalkDir(e.base, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), id) {
			out = append(out, "file "+p)
		}
		return nil
	})
	return out
}

func (e *env) nodeDir() string { return filepath.Join(e.dataDir, "sandboxes") }

// hostIf is the network package's host-side veth name (fnv-32a of "<name>/<id>").
func hostIf(name, id string) string {
	h := fnv.New32a()
	h.Write([]byte(name + "/" + id))
	return fmt.Sprintf("wv%08x", h.Sum32())
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// waitState polls the sandbox until it is in state or the timeout passes.
func (e *env) waitState(t *testing.T, id string, state domain.SandboxState, timeout time.Duration) *domain.Sandbox {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sb, err := e.svc.Get(context.Background(), e.p, id)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		if sb.State == state {
			return sb
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandbox %s is %s after %v, want %s", id, sb.State, timeout, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
