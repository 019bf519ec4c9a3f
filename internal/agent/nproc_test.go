package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"
)

// TestMain lets the test binary be its own exec helper, as warren-agent is: an agent
// with a ProcessLimit starts processes through os.Executable().
func TestMain(m *testing.M) {
	RunExecHelper(os.Args)
	os.Exit(m.Run())
}

// TestProcessLimit checks that, with Config.ProcessLimit, every started process has
// that RLIMIT_NPROC (soft and hard) from its first instruction, as root and as another
// user, cannot raise it, sees the environment, argv and directory it asked for, that
// a failed exec is still an error of Start, and that the agent keeps no limit itself.
func TestProcessLimit(t *testing.T) {
	e := newTestEnv(t, Config{ProcessLimit: 77})
	e.a.procs.self = reachableCopy(t)
	var before unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &before); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"root", "nobody"} {
		t.Run(user, func(t *testing.T) {
			r := shReq(`grep 'Max processes' /proc/self/limits; ulimit -u 1000 2>/dev/null && echo raised; echo "argv0=$0 pwd=$(pwd) marker=$` + markerEnv + `"`)
			r.Msg.Process.Args = append(r.Msg.Process.Args, "named-arg0")
			cwd := "/tmp"
			r.Msg.Process.Cwd = &cwd
			r.Header().Set("Authorization", basicAuth(user))
			ps := start(t, e.proc, r)
			if end := ps.wait(10 * time.Second); end.GetExitCode() != 0 {
				t.Fatalf("end %v, stderr %q", end, ps.stderr.String())
			}
			out := ps.stdout.String()
			if f := strings.Fields(out); len(f) < 4 || f[2] != "77" || f[3] != "77" {
				t.Errorf("limits %q, want 77 77", out)
			}
			if strings.Contains(out, "raised") {
				t.Errorf("the process raised its limit: %q", out)
			}
			if want := "argv0=named-arg0 pwd=/tmp marker=" + e.marker; !strings.Contains(out, want) {
				t.Errorf("output %q, want %q", out, want)
			}
		})
	}
	t.Run("failed exec", func(t *testing.T) {
		dir := t.TempDir()
		noexec := dir + "/not-executable"
		if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := startReq(noexec)
		r.Header().Set("Authorization", basicAuth("nobody"))
		_, err := tryStart(t, e.proc, r)
		wantCode(t, err, connect.CodeInvalidArgument)
		if err == nil || !strings.Contains(err.Error(), "fork/exec "+noexec+": permission denied") {
			t.Errorf("error %v, want the exec's permission denied", err)
		}
	})
	var after unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("the agent's own RLIMIT_NPROC changed from %v to %v", before, after)
	}
}

// reachableCopy copies the test binary (the exec helper) where every user may run it:
// go test builds it in a directory only root can enter. In a sandbox the agent is at
// /.warren/warren-agent, mode 0755.
func reachableCopy(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "agent-exec-helper-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "agent.test")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// BenchmarkStartLimited compares starting /bin/true directly and through the exec
// helper (ProcessLimit), start to end.
func BenchmarkStartLimited(b *testing.B) {
	for _, limit := range []uint64{0, 1000} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			a, err := New(Config{ProcessLimit: limit}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer a.Shutdown(b.Context())
			root, _ := a.userNamed("root")
			for b.Loop() {
				spec, err := (&processService{a: a}).spec(root, startReq("/bin/true").Msg, 0)
				if err != nil {
					b.Fatal(err)
				}
				sub := newSubscriber()
				p, err := a.procs.start(spec, sub)
				if err != nil {
					b.Fatal(err)
				}
				for ev := range sub.ch {
					if ev.GetEnd() != nil {
						break
					}
				}
				p.unsubscribe(sub)
			}
		})
	}
}

// TestDropAgentCapOnce checks that DropAgentCap, once it has succeeded, returns at
// once without touching the capabilities again (New's limitProcesses calls it a second
// time, on the critical path of every cold create): this test process, which has not
// dropped anything, keeps CAP_SYS_RESOURCE in its bounding set.
func TestDropAgentCapOnce(t *testing.T) {
	had, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, unix.CAP_SYS_RESOURCE, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	capDropped.Store(true)
	defer capDropped.Store(false)
	if err := DropAgentCap(); err != nil {
		t.Fatalf("DropAgentCap after a successful one: %v", err)
	}
	still, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, unix.CAP_SYS_RESOURCE, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if still != had {
		t.Fatalf("CAP_SYS_RESOURCE in the bounding set: %d before, %d after a repeated DropAgentCap (it must not drop again)", had, still)
	}
}
