package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/envdpb/filesystem/filesystemconnect"
	"github.com/warren-sh/warren/internal/envdpb/process"
	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
)

func TestConnectReattach(t *testing.T) {
	e := newTestEnv(t, Config{})
	e.a.procs.retain = 500 * time.Millisecond
	e.codecs(t, func(t *testing.T, pc processconnect.ProcessClient, _ filesystemconnect.FilesystemClient) {
		ps := start(t, pc, shReq("i=0; while [ $i -lt 15 ]; do i=$((i+1)); echo $i; sleep 0.1; done"))
		ps.until("first line", 5*time.Second, func() bool { return strings.Contains(ps.stdout.String(), "\n") })
		first, _ := strconv.Atoi(strings.Fields(ps.stdout.String())[0])
		ps.cancel() // the client goes away; the process must live on

		time.Sleep(300 * time.Millisecond)
		list, err := pc.List(context.Background(), connect.NewRequest(&process.ListRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(list.Msg.GetProcesses(), func(p *process.ProcessInfo) bool { return p.GetPid() == ps.pid }) {
			t.Fatalf("process %d gone after the stream closed: %v", ps.pid, list.Msg)
		}

		re, err := connectTo(t, pc, sel(ps.pid))
		if err != nil {
			t.Fatal(err)
		}
		if re.pid != ps.pid {
			t.Fatalf("Connect start pid %d, want %d", re.pid, ps.pid)
		}
		end := re.wait(10 * time.Second)
		if end.GetExitCode() != 0 {
			t.Fatalf("end %v", end)
		}
		lines := strings.Fields(re.stdout.String())
		if len(lines) == 0 || !strings.HasSuffix(re.stdout.String(), "15\n") {
			t.Fatalf("re-attached output %q, want new lines up to 15", re.stdout.String())
		}
		if n, _ := strconv.Atoi(lines[0]); n <= first+1 {
			t.Fatalf("re-attached output starts at %d: old output (first seen %d) was replayed", n, first)
		}

		// Within the retention time a late Connect gets start and end at once.
		late, err := connectTo(t, pc, sel(ps.pid))
		if err != nil {
			t.Fatal(err)
		}
		if end := late.wait(2 * time.Second); end.GetStatus() != "exit status 0" || late.stdout.Len() != 0 {
			t.Fatalf("late Connect: end %v stdout %q", end, late.stdout.String())
		}
		// Finished processes are not listed, and vanish after the retention time.
		list, _ = pc.List(context.Background(), connect.NewRequest(&process.ListRequest{}))
		if len(list.Msg.GetProcesses()) != 0 {
			t.Fatalf("List after exit: %v", list.Msg)
		}
		time.Sleep(700 * time.Millisecond)
		_, err = connectTo(t, pc, sel(ps.pid))
		wantCode(t, err, connect.CodeNotFound)
	})
}

func TestTimeoutIsLifetime(t *testing.T) {
	e := newTestEnv(t, Config{})
	e.codecs(t, func(t *testing.T, pc processconnect.ProcessClient, _ filesystemconnect.FilesystemClient) {
		req := shReq("sleep 30")
		req.Header().Set("Connect-Timeout-Ms", "800")
		began := time.Now()
		ps := start(t, pc, req)
		ps.cancel() // disconnect at once: the limit must still apply

		re, err := connectTo(t, pc, sel(ps.pid))
		if err != nil {
			t.Fatal(err)
		}
		end := re.wait(10 * time.Second)
		took := time.Since(began)
		if end.GetStatus() != "signal: killed" {
			t.Fatalf("end %v, want the process killed at its time limit", end)
		}
		if took < 700*time.Millisecond || took > 5*time.Second {
			t.Fatalf("killed after %v, want about 800ms", took)
		}
	})
	t.Run("client deadline", func(t *testing.T) {
		// The connect-go client turns a context deadline into Connect-Timeout-Ms.
		ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
		defer cancel()
		s, err := e.proc.Start(ctx, shReq("sleep 30"))
		if err != nil {
			t.Fatal(err)
		}
		for s.Receive() {
		}
		wantCode(t, s.Err(), connect.CodeDeadlineExceeded)
		deadline := time.Now().Add(5 * time.Second)
		for len(e.a.procs.running()) > 0 {
			if time.Now().After(deadline) {
				t.Fatal("process still running after its time limit")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func TestKeepalive(t *testing.T) {
	e := newTestEnv(t, Config{})
	e.codecs(t, func(t *testing.T, pc processconnect.ProcessClient, _ filesystemconnect.FilesystemClient) {
		req := shReq("sleep 2.5; echo done")
		req.Header().Set("Keepalive-Ping-Interval", "1")
		ps := start(t, pc, req)
		ps.wait(10 * time.Second)
		if ps.keepalives < 1 || ps.stdout.String() != "done\n" {
			t.Fatalf("keepalives %d stdout %q, want ≥1 keepalive during 2.5s of silence", ps.keepalives, ps.stdout.String())
		}
	})
}

func TestPTY(t *testing.T) {
	e := newTestEnv(t, Config{})
	ctx := context.Background()
	e.codecs(t, func(t *testing.T, pc processconnect.ProcessClient, _ filesystemconnect.FilesystemClient) {
		req := startReq("/bin/sh", "-c", `stty size; read a; stty size; read b; echo "got:$b"; tty >/dev/null && echo is-a-tty`)
		req.Msg.Pty = &process.PTY{Size: &process.PTY_Size{Cols: 80, Rows: 24}}
		req.Msg.Process.Envs = map[string]string{"TERM": "xterm-256color"}
		ps := start(t, pc, req)
		ps.until("initial size", 5*time.Second, func() bool { return strings.Contains(ps.pty.String(), "24 80") })

		if _, err := pc.Update(ctx, connect.NewRequest(&process.UpdateRequest{
			Process: sel(ps.pid), Pty: &process.PTY{Size: &process.PTY_Size{Cols: 100, Rows: 40}},
		})); err != nil {
			t.Fatal(err)
		}
		send := func(s string) {
			t.Helper()
			if _, err := pc.SendInput(ctx, connect.NewRequest(&process.SendInputRequest{
				Process: sel(ps.pid), Input: &process.ProcessInput{Input: &process.ProcessInput_Pty{Pty: []byte(s)}},
			})); err != nil {
				t.Fatal(err)
			}
		}
		send("x\n")
		ps.until("new size", 5*time.Second, func() bool { return strings.Contains(ps.pty.String(), "40 100") })
		send("hello\n")
		end := ps.wait(5 * time.Second)
		if end.GetExitCode() != 0 || !strings.Contains(ps.pty.String(), "got:hello") || !strings.Contains(ps.pty.String(), "is-a-tty") {
			t.Fatalf("end %v pty output %q", end, ps.pty.String())
		}
		if ps.stdout.Len() != 0 || ps.stderr.Len() != 0 {
			t.Fatalf("pty process produced stdout/stderr events")
		}
	})
	t.Run("Update on a pipe process", func(t *testing.T) {
		ps := start(t, e.proc, shReq("sleep 30"))
		_, err := e.proc.Update(ctx, connect.NewRequest(&process.UpdateRequest{
			Process: sel(ps.pid), Pty: &process.PTY{Size: &process.PTY_Size{Cols: 10, Rows: 10}},
		}))
		wantCode(t, err, connect.CodeFailedPrecondition)
		_, _ = e.proc.SendSignal(ctx, connect.NewRequest(&process.SendSignalRequest{Process: sel(ps.pid), Signal: process.Signal_SIGNAL_SIGKILL}))
		ps.wait(5 * time.Second)
	})
}

func TestListAndTags(t *testing.T) {
	e := newTestEnv(t, Config{})
	ctx := context.Background()
	e.codecs(t, func(t *testing.T, pc processconnect.ProcessClient, _ filesystemconnect.FilesystemClient) {
		tagged := func(tag, script string) *procStream {
			req := shReq(script)
			req.Msg.Tag = &tag
			req.Msg.Process.Envs = map[string]string{"K": "V"}
			return start(t, pc, req)
		}
		a := tagged("server", "sleep 30")
		b := tagged("worker", "sleep 30")
		list, err := pc.List(ctx, connect.NewRequest(&process.ListRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*process.ProcessInfo{}
		for _, p := range list.Msg.GetProcesses() {
			got[p.GetTag()] = p
		}
		if got["server"].GetPid() != a.pid || got["worker"].GetPid() != b.pid || len(got) != 2 {
			t.Fatalf("List %v, want server=%d worker=%d", list.Msg, a.pid, b.pid)
		}
		if c := got["server"].GetConfig(); c.GetCmd() != "/bin/sh" || !slices.Equal(c.GetArgs(), []string{"-c", "sleep 30"}) || c.GetEnvs()["K"] != "V" || c.GetCwd() == "" {
			t.Fatalf("List config %v", c)
		}

		re, err := connectTo(t, pc, tagSel("worker"))
		if err != nil || re.pid != b.pid {
			t.Fatalf("Connect by tag: pid %d err %v, want %d", re.pid, err, b.pid)
		}
		re.cancel()
		for _, tag := range []string{"server", "worker"} {
			if _, err := pc.SendSignal(ctx, connect.NewRequest(&process.SendSignalRequest{Process: tagSel(tag), Signal: process.Signal_SIGNAL_SIGKILL})); err != nil {
				t.Fatal(err)
			}
		}
		a.wait(5 * time.Second)
		b.wait(5 * time.Second)
		_, err = pc.SendSignal(ctx, connect.NewRequest(&process.SendSignalRequest{Process: tagSel("nope"), Signal: process.Signal_SIGNAL_SIGKILL}))
		wantCode(t, err, connect.CodeNotFound)
	})
}

func TestEnvPrecedence(t *testing.T) {
	e := newTestEnv(t, Config{Env: map[string]string{"A": "config", "B": "config", "USER": "config-user"}})
	resp, body := e.httpDo(t, "POST", "/init", []byte(`{"envVars":{"B":"init","C":"init"}}`), nil)
	if resp.StatusCode != 204 {
		t.Fatalf("/init: %d %s", resp.StatusCode, body)
	}
	req := startReq("/usr/bin/env")
	req.Msg.Process.Envs = map[string]string{"C": "request", "D": "request"}
	ps := start(t, e.procJSON, req)
	ps.wait(5 * time.Second)
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(ps.stdout.String()), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	want := map[string]string{
		"PATH": defaultPath, "HOME": "/root", "LOGNAME": "root",
		"USER": "config-user", // sandbox env comes after the user's variables
		"A":    "config", "B": "init", "C": "request", "D": "request",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q (env %v)", k, env[k], v, env)
		}
	}
	if _, ok := env["WARREN_AGENT_CONFIG"]; ok {
		t.Error("agent config leaked into the process env")
	}
}

func TestCwd(t *testing.T) {
	e := newTestEnv(t, Config{})
	sub := filepath.Join(e.dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, workdir, cwd, want string
	}{
		{"default is home", "", "", "/root"},
		{"tilde", "", "~", "/root"},
		{"tilde slash", "", "~/..", "/"},
		{"absolute", "", sub, sub},
		{"relative to home", "", "..", "/"},
		{"default is the default workdir", e.dir, "", e.dir},
		{"relative to the default workdir", e.dir, "sub", sub},
		{"tilde ignores the workdir", e.dir, "~", "/root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.a.settings.mu.Lock()
			e.a.settings.defaultWorkdir = tc.workdir
			e.a.settings.mu.Unlock()
			req := startReq("/bin/pwd")
			if tc.cwd != "" {
				req.Msg.Process.Cwd = &tc.cwd
			}
			ps := start(t, e.proc, req)
			ps.wait(5 * time.Second)
			if got := strings.TrimSpace(ps.stdout.String()); got != tc.want {
				t.Fatalf("pwd %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUsers(t *testing.T) {
	e := newTestEnv(t, Config{})
	tests := []struct {
		name string
		auth string
		want string // "uid user groups"
		code connect.Code
	}{
		{"no header: default user", "", "0 root", 0},
		{"root", basicAuth("root"), "0 root", 0},
		{"nobody", basicAuth("nobody"), "65534 nobody", 0},
		{"unknown user", basicAuth("no-such-user-xyz"), "", connect.CodeUnauthenticated},
		{"not basic auth", "Bearer abc", "", connect.CodeUnauthenticated},
	}
	e.codecs(t, func(t *testing.T, pc processconnect.ProcessClient, _ filesystemconnect.FilesystemClient) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req := shReq(`echo "$(id -u) $(id -un)"; echo "$HOME $USER"`)
				if tc.auth != "" {
					req.Header().Set("Authorization", tc.auth)
				}
				ps, err := tryStart(t, pc, req)
				if tc.code != 0 {
					wantCode(t, err, tc.code)
					lreq := connect.NewRequest(&process.ListRequest{})
					lreq.Header().Set("Authorization", tc.auth)
					_, err := pc.List(context.Background(), lreq)
					wantCode(t, err, tc.code)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				ps.wait(5 * time.Second)
				if got := strings.Split(ps.stdout.String(), "\n")[0]; got != tc.want {
					t.Fatalf("ran as %q, want %q", got, tc.want)
				}
			})
		}
	})
	t.Run("supplementary groups", func(t *testing.T) {
		u, err := e.a.users.lookup("root")
		if err != nil {
			t.Fatal(err)
		}
		req := shReq("id -G")
		ps := start(t, e.proc, req)
		ps.wait(5 * time.Second)
		got := strings.Fields(ps.stdout.String())
		for _, g := range u.Groups {
			if !slices.Contains(got, strconv.Itoa(int(g))) {
				t.Fatalf("groups %v lack %d (want %v)", got, g, u.Groups)
			}
		}
	})
}

func TestDefaultUser(t *testing.T) {
	requireRoot(t)
	_, hasUser := systemUsers().lookup("user")
	tests := []struct {
		cfg, want string
	}{
		{"", map[bool]string{true: "user", false: "root"}[hasUser == nil]},
		{"nobody", "nobody"},
		{"no-such-user-xyz", "root"},
	}
	for _, tc := range tests {
		a, err := New(Config{DefaultUser: tc.cfg}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := a.settings.defaults(); got != tc.want {
			t.Errorf("DefaultUser %q → %q, want %q", tc.cfg, got, tc.want)
		}
		if err := a.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
