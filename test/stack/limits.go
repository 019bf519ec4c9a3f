package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/node"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/runtimetest"
)

// stats reads the sandbox's resource use through the driver, if it can.
func (e *env) stats(t *testing.T, sb *domain.Sandbox) (runtime.Stats, bool) {
	t.Helper()
	sr, ok := e.drv.(runtime.StatsReader)
	if !ok {
		return runtime.Stats{}, false
	}
	st, err := sr.Stats(context.Background(), handle(t, sb))
	if err != nil {
		t.Fatalf("stats of %s: %v", sb.ID, err)
	}
	return st, true
}

// busyCores runs two busy loops for two seconds in the sandbox and returns the cores
// it used: from the driver's cgroup accounting, or from /proc/stat inside the sandbox
// when the driver reads no stats.
func (e *env) busyCores(t *testing.T, sb *domain.Sandbox) float64 {
	t.Helper()
	const busy = "for i in 1 2; do timeout 2 sh -c 'while :; do :; done' & done; wait"
	if s0, ok := e.stats(t, sb); ok {
		t0 := time.Now()
		e.exec(t, sb.ID, domain.ExecRequest{Cmd: busy})
		s1, _ := e.stats(t, sb)
		return (s1.CPUSeconds - s0.CPUSeconds) / time.Since(t0).Seconds()
	}
	// user+nice+system jiffies (USER_HZ 100) of the whole sandbox as it sees them.
	out := e.sh(t, sb.ID, `j() { awk '/^cpu /{print $2+$3+$4}' /proc/stat; }; a=$(j); s=$(date +%s.%N); `+busy+`; b=$(j); e=$(date +%s.%N); echo "($b-$a)/100/($e-$s)" | python3 -c 'print(eval(input()))'`)
	var v float64
	if _, err := fmt.Sscan(out, &v); err != nil {
		t.Fatalf("cpu use from /proc/stat: %q", out)
	}
	return v
}

func testCPULimit(t *testing.T, e *env) {
	limited := e.create(t, domain.CreateSandbox{Limits: domain.Limits{CPUCores: 0.5}})
	wide := e.create(t, domain.CreateSandbox{Limits: domain.Limits{CPUCores: 2}})
	l := e.busyCores(t, limited)
	w := e.busyCores(t, wide)
	t.Logf("two busy threads for 2 s used %.2f cores with cpu_cores 0.5, %.2f with cpu_cores 2", l, w)
	if l > 0.6 {
		t.Errorf("a 0.5-core sandbox used %.2f cores", l)
	}
	if w < 0.9 || w < 1.5*l {
		// A busy host may not give even the wide sandbox a core: then the kernel's
		// throttling counters must show the quota at work instead.
		thr := throttled(limited.ID)
		t.Logf("the host was too busy for a contrast; CFS throttled the 0.5-core sandbox in %d periods", thr)
		if thr <= 0 {
			t.Errorf("a 2-core sandbox used only %.2f cores (0.5-core one: %.2f) and the limited one was never throttled: no limit seen at work", w, l)
		}
	}
	e.kill(t, limited)
	e.kill(t, wide)
}

// throttled returns nr_throttled from the cpu.stat of the cgroup named id (-1 if none).
func throttled(id string) int64 {
	var n int64 = -1
	for _, p := range runtimetest.CgroupTraces(id) {
		dir := strings.TrimPrefix(p, "cgroup ")
		b, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "nr_throttled" {
				fmt.Sscan(f[1], &n)
			}
		}
	}
	return n
}

// memoryHog allocates 600 MB in 50 MB steps, as a program building up data does (a
// step is ~0.1 s of page faults), and prints what it holds if it gets that far.
const memoryHog = `python3 -c '
import time
b = []
for i in range(12):
    b.append(b"x" * (50 << 20))
    time.sleep(0.02)
print(sum(map(len, b)))
'`

// testMemoryLimit: a process that allocates past memory_mb is killed inside the
// sandbox; the sandbox (its agent) survives, says so, and runs the next command; the
// host is untouched. runc gets this from the kernel's OOM killer in the sandbox's
// cgroup. A driver without per-process OOM kills (gVisor) gets it from warren-agent's
// OOM watchdog, which the node enables with the limit, while the driver gives the
// host cgroup headroom above memory_mb: the host's OOM killer must never have to act.
func testMemoryLimit(t *testing.T, e *env) {
	sb := e.create(t, domain.CreateSandbox{Limits: domain.Limits{MemoryMB: 256}})
	if st, ok := e.stats(t, sb); ok && st.MemoryLimit != 256<<20 {
		t.Errorf("memory limit read back: %d, want %d", st.MemoryLimit, 256<<20)
	}
	h := handle(t, sb)
	// Whether the case passes or fails, tell what the host and the agent saw before the
	// sandbox and its log are gone.
	defer func() {
		t.Logf("host cgroup: peak %d MB of limit %d MB, %d OOM kills by the host",
			hostCgroupInt(sb.ID, "memory.max_usage_in_bytes")>>20, hostCgroupInt(sb.ID, "memory.limit_in_bytes")>>20, hostOOMKills(sb.ID))
		console, _ := os.ReadFile(e.node.LogPath(sb.ID))
		for _, line := range strings.Split(string(console), "\n") {
			if strings.Contains(line, "out of memory") {
				t.Logf("agent: %s", line)
			}
		}
		e.kill(t, sb)
	}()
	for round := 1; round <= 2; round++ { // the second proves the first left no damage
		t0 := time.Now()
		r, err := e.tryExec(sb.ID, domain.ExecRequest{Cmd: memoryHog, Timeout: 30 * time.Second})
		if err != nil {
			st, _ := e.drv.Status(context.Background(), h)
			t.Fatalf("round %d: allocating past the limit: the command's call failed (%v), sandbox %s: the sandbox did not survive; console:\n%s",
				round, err, st, tail(e.node.LogPath(sb.ID), 2048))
		}
		t.Logf("round %d: allocating 600 MB with memory_mb 256 ended after %v: exit %d error %q stderr %q",
			round, time.Since(t0).Round(time.Millisecond), r.ExitCode, r.Error, lastLine(r.Stderr))
		if r.ExitCode == 0 || strings.Contains(string(r.Stdout), "629145600") {
			t.Fatalf("round %d: allocating 600 MB in a 256 MB sandbox succeeded: exit %d stdout %q", round, r.ExitCode, r.Stdout)
		}
		if !strings.Contains(r.Error, "killed") && r.ExitCode != 137 {
			t.Errorf("round %d: allocation past the limit: exit %d error %q, want killed (signal: killed or 137)", round, r.ExitCode, r.Error)
		}
		if out := e.sh(t, sb.ID, "echo ok"); out != "ok" {
			t.Errorf("round %d: after the OOM kill: %q", round, out)
		}
	}
	if st, err := e.drv.Status(context.Background(), h); err != nil || st != runtime.StatusRunning {
		t.Errorf("driver status after the OOM kills: %s %v, want running", st, err)
	}
	if !e.caps.PerProcessOOM {
		console, _ := os.ReadFile(e.node.LogPath(sb.ID))
		if n := strings.Count(string(console), "out of memory: killed process"); n < 2 {
			t.Errorf("the agent's log tells of %d OOM kills, want 2 or more; console:\n%s", n, tail(e.node.LogPath(sb.ID), 2048))
		}
		// The host's OOM killer would pick a sentry, gofer or stub task of the sandbox:
		// the watchdog must have acted first, within the host cgroup's headroom.
		if n := hostOOMKills(sb.ID); n > 0 {
			t.Errorf("the host's OOM killer acted %d times in the sandbox's cgroup: the watchdog was too slow for its headroom", n)
		}
	}
}

// hostOOMKills is the oom_kill count of the sandbox's memory cgroup (cgroup v1), -1 if
// unknown.
func hostOOMKills(id string) int64 {
	var n int64 = -1
	for _, p := range runtimetest.CgroupTraces(id) {
		dir := strings.TrimPrefix(p, "cgroup ")
		b, err := os.ReadFile(filepath.Join(dir, "memory.oom_control"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "oom_kill" {
				fmt.Sscan(f[1], &n)
			}
		}
	}
	return n
}

// hostCgroupInt reads an integer file of the sandbox's memory cgroup (-1 if none).
func hostCgroupInt(id, name string) int64 {
	for _, p := range runtimetest.CgroupTraces(id) {
		dir := strings.TrimPrefix(p, "cgroup ")
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			var v int64
			if _, err := fmt.Sscan(string(b), &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// tail returns the last n bytes of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// lastLine returns the last line of a command's output.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// testPidsLimit: a fork bomb is contained by max_processes; the host keeps forking; the
// sandbox is then killed cleanly.
func testPidsLimit(t *testing.T, e *env) {
	const limit = 64
	sb := e.create(t, domain.CreateSandbox{Limits: domain.Limits{MaxProcesses: limit}})
	stop := make(chan struct{})
	var hostForks, hostFails atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the host must keep forking while the bomb goes off
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if err := exec.Command("true").Run(); err != nil {
				hostFails.Add(1)
			} else {
				hostForks.Add(1)
			}
		}
	}()
	r, err := e.tryExec(sb.ID, domain.ExecRequest{Cmd: "timeout 4 bash -c ':(){ :|:& };:'; echo bomb-over", Timeout: 15 * time.Second})
	var peak int64
	if st, ok := e.stats(t, sb); ok {
		peak = st.PIDs
		if st.PIDs > limit {
			t.Errorf("%d tasks in a sandbox limited to %d", st.PIDs, limit)
		}
	}
	close(stop)
	wg.Wait()
	if hostFails.Load() > 0 || hostForks.Load() == 0 {
		t.Errorf("host forks during the bomb: %d ok, %d failed", hostForks.Load(), hostFails.Load())
	}
	alive := "the agent survived"
	if _, aerr := e.tryExec(sb.ID, domain.ExecRequest{Cmd: "true", Timeout: 5 * time.Second}); aerr != nil {
		alive = "the agent no longer answers: " + aerr.Error()
	}
	if err != nil {
		t.Logf("fork bomb (limit %d, %d tasks after): call ended with %v; %s", limit, peak, err, alive)
	} else {
		t.Logf("fork bomb (limit %d, %d tasks after): exit %d; %s", limit, peak, r.ExitCode, alive)
	}
	e.kill(t, sb)
}

// testDiskLimit: writing past disk_mb fails inside with "No space left on device" and
// the host's disk gives up no more than the limit.
func testDiskLimit(t *testing.T, e *env) {
	const limitMB = 64
	sb := e.create(t, domain.CreateSandbox{Limits: domain.Limits{DiskMB: limitMB}})
	free0 := hostFree(t, e.dataDir)
	r := e.exec(t, sb.ID, domain.ExecRequest{Cmd: "dd if=/dev/zero of=/home/user/big bs=1M count=200 conv=fsync"})
	free1 := hostFree(t, e.dataDir)
	if r.ExitCode == 0 || !strings.Contains(string(r.Stderr), "No space left on device") {
		t.Errorf("writing 200 MB on a %d MB disk: exit %d stderr %q", limitMB, r.ExitCode, r.Stderr)
	}
	if used := (free0 - free1) >> 20; used > limitMB+32 {
		t.Errorf("the host's disk lost %d MB to a sandbox limited to %d MB", used, limitMB)
	}
	size := e.sh(t, sb.ID, "df -m / | awk 'NR==2{print $2}'")
	t.Logf("df inside shows a %s MB root filesystem", size)
	if out := e.sh(t, sb.ID, "rm /home/user/big && echo again > /home/user/small && cat /home/user/small"); out != "again" {
		t.Errorf("after freeing space: %q", out)
	}
	e.kill(t, sb)
}

func hostFree(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// testCleanup kills a sandbox that used everything (network with internet, a disk
// limit, files, processes) and checks every trace is gone — and that nothing at all is
// left under the node's directory but its formatted disk images.
func testCleanup(t *testing.T, e *env) {
	sb := e.create(t, domain.CreateSandbox{Limits: domain.Limits{DiskMB: 128}})
	e.sh(t, sb.ID, "head -c 1000000 /dev/urandom > /home/user/f; nohup sleep 600 >/dev/null 2>&1 & echo started")
	h := handle(t, sb)
	e.kill(t, sb)
	if st, err := e.drv.Status(context.Background(), h); err != nil || st != runtime.StatusGone {
		t.Errorf("driver status after kill: %v %v, want gone", st, err)
	}
	if devs := node.LoopDevicesUnder(e.nodeDir()); len(devs) > 0 {
		t.Errorf("loop devices left under the node: %v", devs)
	}
}
