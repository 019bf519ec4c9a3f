package stack

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/envdpb/process"
	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
	"github.com/warren-sh/warren/internal/runtime"
)

func testCreate(t *testing.T, e *env) {
	sb := e.create(t, domain.CreateSandbox{Metadata: map[string]string{"case": "create"}, Env: map[string]string{"GREETING": "hej"}})
	if sb.State != domain.StateRunning || sb.RuntimeName != e.caps.Name || sb.Address == "" {
		t.Fatalf("created sandbox: state %s runtime %q address %q", sb.State, sb.RuntimeName, sb.Address)
	}
	h := handle(t, sb)
	if h.ID != sb.ID || h.Driver != e.caps.Name {
		t.Errorf("handle %+v: want id %s and driver %s", h, sb.ID, e.caps.Name)
	}
	if st, err := e.drv.Status(context.Background(), h); err != nil || st != runtime.StatusRunning {
		t.Errorf("driver status: %v %v, want running", st, err)
	}
	if got := e.sh(t, sb.ID, "echo $GREETING; hostname"); got != "hej\n"+sb.ID {
		t.Errorf("env and hostname: %q", got)
	}
	e.kill(t, sb)
}

func testExec(t *testing.T, e *env) {
	sb := e.create(t, domain.CreateSandbox{})
	cases := []struct {
		req            domain.ExecRequest
		stdout, stderr string
		code           int
	}{
		{domain.ExecRequest{Cmd: "python3 -c 'print(6*7)'"}, "42\n", "", 0},
		{domain.ExecRequest{Cmd: "id -un; pwd"}, "user\n/home/user\n", "", 0},
		{domain.ExecRequest{Cmd: "echo out; echo err >&2; exit 3"}, "out\n", "err\n", 3},
		{domain.ExecRequest{Args: []string{"id", "-u"}, User: "root"}, "0\n", "", 0},
		{domain.ExecRequest{Cmd: "pwd; echo $X", Cwd: "/tmp", Env: map[string]string{"X": "y"}}, "/tmp\ny\n", "", 0},
		{domain.ExecRequest{Cmd: "exit 127"}, "", "", 127},
	}
	for _, c := range cases {
		r := e.exec(t, sb.ID, c.req)
		if r.ExitCode != c.code || string(r.Stdout) != c.stdout || string(r.Stderr) != c.stderr {
			t.Errorf("%q %v: exit %d stdout %q stderr %q; want exit %d stdout %q stderr %q",
				c.req.Cmd, c.req.Args, r.ExitCode, r.Stdout, r.Stderr, c.code, c.stdout, c.stderr)
		}
	}
}

func testStdin(t *testing.T, e *env) {
	sb := e.create(t, domain.CreateSandbox{})
	big := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB: several chunks
	cases := []struct {
		cmd   string
		stdin []byte
		want  string
	}{
		{"tr a-z A-Z", []byte("hello stdin"), "HELLO STDIN"},
		{"wc -c", big, strconv.Itoa(len(big)) + "\n"},
		{"cat >/tmp/in && sha256sum </tmp/in | cut -c1-8", []byte("x"), "2d711642\n"},
	}
	for _, c := range cases {
		r := e.exec(t, sb.ID, domain.ExecRequest{Cmd: c.cmd, Stdin: c.stdin})
		if r.ExitCode != 0 || string(r.Stdout) != c.want {
			t.Errorf("%q: exit %d stdout %q stderr %q, want %q", c.cmd, r.ExitCode, r.Stdout, r.Stderr, c.want)
		}
	}
}

// testSignals: a command that dies of a signal, and one killed at its timeout, are
// reported as ended, and the killed one is really gone.
func testSignals(t *testing.T, e *env) {
	sb := e.create(t, domain.CreateSandbox{})
	r := e.exec(t, sb.ID, domain.ExecRequest{Cmd: "kill -TERM $$; sleep 5"})
	if r.ExitCode == 0 || !strings.Contains(r.Error, "terminated") {
		t.Errorf("self-terminated command: exit %d error %q, want a non-zero exit and 'terminated'", r.ExitCode, r.Error)
	}
	t0 := time.Now()
	r, err := e.tryExec(sb.ID, domain.ExecRequest{Cmd: "echo started; exec sleep 3600", Timeout: 1500 * time.Millisecond})
	took := time.Since(t0)
	switch {
	case err != nil && !domain.IsKind(err, domain.KindUnavailable):
		t.Errorf("command past its timeout: %v", err)
	case err == nil && (r.ExitCode == 0 || !strings.Contains(r.Error, "killed")):
		t.Errorf("command past its timeout: exit %d error %q, want killed", r.ExitCode, r.Error)
	}
	if took > 8*time.Second {
		t.Errorf("a command with a 1.5 s timeout returned after %v", took)
	}
	// The process must be gone, not just the call.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if out := e.sh(t, sb.ID, "pgrep -c -x sleep || true"); out == "0" {
			break
		} else if time.Now().After(deadline) {
			t.Errorf("sleep still running 5 s after its timeout (pgrep -c: %s)", out)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// testPTY starts a terminal process through the agent's process API (agentclient has no
// PTY call; the server's PTY users speak envd directly), checking that the runtime gives
// the sandbox a working devpts.
func testPTY(t *testing.T, e *env) {
	sb := e.create(t, domain.CreateSandbox{})
	base := "http://" + net.JoinHostPort(sb.Address, strconv.Itoa(runtime.AgentPort))
	cl := processconnect.NewProcessClient(&http.Client{}, base)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := connect.NewRequest(&process.StartRequest{
		Process: &process.ProcessConfig{Cmd: "/bin/bash", Args: []string{"-c", "tty; stty size; test -t 0 && echo is-a-tty"}},
		Pty:     &process.PTY{Size: &process.PTY_Size{Cols: 100, Rows: 40}},
	})
	req.Header().Set("X-Access-Token", sb.AccessToken)
	req.Header().Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("user:")))
	stream, err := cl.Start(ctx, req)
	if err != nil {
		t.Fatalf("starting a PTY process: %v", err)
	}
	defer stream.Close()
	var out bytes.Buffer
	var end *process.ProcessEvent_EndEvent
	for end == nil && stream.Receive() {
		ev := stream.Msg().GetEvent()
		if d := ev.GetData(); d != nil {
			out.Write(d.GetPty())
		}
		end = ev.GetEnd()
	}
	if end == nil {
		t.Fatalf("PTY stream ended without an end event: %v (output %q)", stream.Err(), out.String())
	}
	got := out.String()
	if end.GetExitCode() != 0 || !strings.Contains(got, "/dev/pts/") || !strings.Contains(got, "40 100") || !strings.Contains(got, "is-a-tty") {
		t.Errorf("PTY process: exit %d output %q; want /dev/pts/N, size 40 100, is-a-tty", end.GetExitCode(), got)
	}
}

func testFiles(t *testing.T, e *env) {
	sb := e.create(t, domain.CreateSandbox{})
	ctx := context.Background()
	content := bytes.Repeat([]byte("warren\x00\xff"), 4096)
	fi, err := e.files().WriteFile(ctx, e.p, sb.ID, "/home/user/dir/a.bin", "user", bytes.NewReader(content))
	if err != nil {
		t.Fatalf("write as user: %v", err)
	}
	if fi.Owner != "user" || fi.Size != int64(len(content)) {
		t.Errorf("written file: owner %q size %d", fi.Owner, fi.Size)
	}
	var got bytes.Buffer
	if err := e.files().ReadFile(ctx, e.p, sb.ID, "/home/user/dir/a.bin", "user", &got); err != nil || !bytes.Equal(got.Bytes(), content) {
		t.Errorf("read back: %v, %d bytes (want %d)", err, got.Len(), len(content))
	}
	if fi, err := e.files().WriteFile(ctx, e.p, sb.ID, "/opt/root.txt", "root", strings.NewReader("r")); err != nil || fi.Owner != "root" {
		t.Errorf("write as root: %+v %v", fi, err)
	}
	list, err := e.files().ListFiles(ctx, e.p, sb.ID, "/home/user/dir", "user", 1)
	if err != nil || len(list) != 1 || list[0].Name != "a.bin" || list[0].Type != "file" {
		t.Errorf("list: %+v %v", list, err)
	}
	// Ownership as the sandbox sees it: numeric ids of the template's users.
	if out := e.sh(t, sb.ID, "stat -c '%U:%G %u' /home/user/dir/a.bin /opt/root.txt"); out != "user:user 1000\nroot:root 0" {
		t.Errorf("ownership inside: %q", out)
	}
	if err := e.files().ReadFile(ctx, e.p, sb.ID, "/nope", "user", &got); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("reading a missing file: %v, want not found", err)
	}
}

func testTimeoutExpiry(t *testing.T, e *env) {
	sb := e.create(t, domain.CreateSandbox{Timeout: 2 * time.Second})
	got := e.waitState(t, sb.ID, domain.StateStopped, 20*time.Second)
	if got.EndReason != "timeout" {
		t.Errorf("end reason %q, want timeout", got.EndReason)
	}
	e.checkGone(t, sb)
}

func testKill(t *testing.T, e *env) {
	sb := e.create(t, domain.CreateSandbox{})
	e.kill(t, sb)
	got, err := e.svc.Get(context.Background(), e.p, sb.ID)
	if err != nil || got.State != domain.StateStopped || got.EndReason != "killed" {
		t.Fatalf("after kill: %+v %v", got, err)
	}
	if _, err := e.tryExec(sb.ID, domain.ExecRequest{Cmd: "true"}); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("exec in a killed sandbox: %v, want a conflict", err)
	}
	if err := e.svc.Kill(context.Background(), e.p, sb.ID); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("killing twice: %v, want not found", err)
	}
}

// testRecovery restarts the service on the same store and node: a sandbox that kept
// running is re-attached and usable; one killed behind the service's back is reaped.
func testRecovery(t *testing.T, e *env) {
	live := e.create(t, domain.CreateSandbox{})
	dead := e.create(t, domain.CreateSandbox{})
	e.sh(t, live.ID, "echo before > /tmp/state")
	e.svc.Close() // a server going away: its sandboxes keep running

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := handle(t, dead)
	if k, ok := e.drv.(runtime.Killer); ok {
		if err := k.Kill(ctx, h); err != nil {
			t.Fatalf("killing behind the service's back: %v", err)
		}
	} else if err := syscall.Kill(h.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("killing pid %d behind the service's back: %v", h.PID, err)
	}
	for st, _ := e.drv.Status(ctx, h); st == runtime.StatusRunning; st, _ = e.drv.Status(ctx, h) {
		if ctx.Err() != nil {
			t.Fatal("the killed sandbox still runs")
		}
		time.Sleep(50 * time.Millisecond)
	}

	e.svc = e.newService(t)
	rep, err := e.sweeper().Recover(ctx)
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	if rep.Reattached != 1 || rep.Reaped != 1 {
		t.Errorf("recover report %+v, want 1 re-attached and 1 reaped", rep)
	}
	if got := e.sh(t, live.ID, "cat /tmp/state"); got != "before" {
		t.Errorf("re-attached sandbox lost its state: %q", got)
	}
	got, err := e.svc.Get(ctx, e.p, dead.ID)
	if err != nil || got.State != domain.StateStopped || !strings.HasPrefix(got.EndReason, "lost") {
		t.Errorf("reaped sandbox: %+v %v, want stopped and lost", got, err)
	}
	e.checkGone(t, dead)
	e.kill(t, live)
}
