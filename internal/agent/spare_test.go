package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/envdpb/process"
	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
)

// spareRun runs req and returns what it printed and its exit, and whether a spare
// shell ran it.
func spareRun(t *testing.T, pc processconnect.ProcessClient, req *connect.Request[process.StartRequest]) (out, errOut string, end *process.ProcessEvent_EndEvent, spared bool) {
	t.Helper()
	before := spareStarts.Load()
	ps := start(t, pc, req)
	end = ps.wait(20 * time.Second)
	return ps.stdout.String(), ps.stderr.String(), end, spareStarts.Load() > before
}

// waitSpares waits until the agent starts no spare shell and has n or more ready.
func waitSpares(t *testing.T, e *testEnv, n int) {
	t.Helper()
	s := e.a.procs.spares
	settled := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.pending) == 0 && len(s.idle) >= n && !slices.ContainsFunc(s.idle, func(sp *spare) bool { return !sp.isReady() })
	}
	deadline := time.Now().Add(10 * time.Second)
	for !settled() {
		if time.Now().After(deadline) {
			t.Fatalf("%d spare shells after 10 s, want %d", e.a.procs.spares.count(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func withEnv(req *connect.Request[process.StartRequest], kv ...string) *connect.Request[process.StartRequest] {
	req.Msg.Process.Envs = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Msg.Process.Envs[kv[i]] = kv[i+1]
	}
	return req
}

// TestSpareSameAsBash runs each line through a fresh bash (no spares) and then through
// a spare shell, and gets the same output and end either way.
func TestSpareSameAsBash(t *testing.T) {
	e := newTestEnv(t, Config{})
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".profile"), []byte("echo profile says hi\nexport FROM_PROFILE=yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lines := []struct {
		line       string
		sameStderr bool
	}{
		{"true", true},
		{"false", true},
		{"exit 7", true},
		{"echo $?", true},
		{"echo $LINENO\nf() { echo $LINENO; }; f", true},
		{`echo "$0|$-|$_|$SHLVL|$BASH_SUBSHELL|$#|$FROM_PROFILE"`, true},
		{`echo "$BASH_EXECUTION_STRING"`, true},
		{`echo $SECONDS; set | grep -c '^REPLY='`, true},
		{"ls -d /proc/self/fd/*; ls /proc/$$/fd; echo not the last command", true},
		{"echo out; echo err >&2; ls /no/such/file", true},
		{"trap 'echo bye' EXIT; echo hi", true},
		{"cd /tmp && pwd && export A=1 && echo $A", true},
		{"kill -9 $$", true},
		{"return 3", true},
		{"if", false}, // "bash: eval: line 2" rather than "bash: -c: line 2"
		{"cat; echo read-eof", true},
		{"printf '%s\\n' 'a\\b' \"tab\there\"", true},
	}
	for _, form := range [][]string{{"-c"}, {"-l", "-c"}} {
		for _, c := range lines {
			t.Run(strings.Join(form, "")+" "+c.line, func(t *testing.T) {
				req := func() *connect.Request[process.StartRequest] {
					return withEnv(startReq("/bin/bash", append(form, c.line)...), "HOME", home)
				}
				e.a.procs.spares.disabled.Store(true)
				wantOut, wantErr, wantEnd, _ := spareRun(t, e.proc, req())
				e.a.procs.spares.disabled.Store(false)
				spareRun(t, e.proc, req()) // leaves a spare for the next
				waitSpares(t, e, 1)
				out, errOut, end, spared := spareRun(t, e.proc, req())
				if !spared {
					t.Fatal("no spare shell ran the line")
				}
				if out != wantOut || (c.sameStderr && errOut != wantErr) || end.GetExitCode() != wantEnd.GetExitCode() || end.GetStatus() != wantEnd.GetStatus() {
					t.Errorf("spare: stdout %q stderr %q %s\nbash:  stdout %q stderr %q %s", out, errOut, end.GetStatus(), wantOut, wantErr, wantEnd.GetStatus())
				}
				if !c.sameStderr && (errOut == "") != (wantErr == "") {
					t.Errorf("spare stderr %q, bash stderr %q", errOut, wantErr)
				}
			})
		}
	}
}

// TestSpareReadsChangedProfile: a login line sees the profile as it is when the line
// is asked for, whether another line or the filesystem API changed it.
func TestSpareReadsChangedProfile(t *testing.T) {
	e := newTestEnv(t, Config{})
	home := t.TempDir()
	profile := filepath.Join(home, ".profile")
	write := func(v string) {
		if err := os.WriteFile(profile, []byte("export MARK="+v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mark := func() (string, bool) {
		out, _, _, spared := spareRun(t, e.proc, withEnv(startReq("/bin/bash", "-l", "-c", "echo $MARK"), "HOME", home))
		return strings.TrimSpace(out), spared
	}
	write("one")
	if got, _ := mark(); got != "one" {
		t.Fatalf("MARK %q, want one", got)
	}
	waitSpares(t, e, 1)
	write("two") // after the spare read the profile
	if got, spared := mark(); got != "two" || spared {
		t.Fatalf("after the profile changed: MARK %q (spare %v), want two from a new shell", got, spared)
	}
	waitSpares(t, e, 1)
	if got, spared := mark(); got != "two" || !spared {
		t.Fatalf("MARK %q (spare %v), want two from a spare", got, spared)
	}
	// A line that changes the profile: the next line reads it again.
	_, _, _, _ = spareRun(t, e.proc, withEnv(startReq("/bin/bash", "-l", "-c", "echo 'export MARK=three' >> ~/.bashrc; echo '. ~/.bashrc' >> ~/.profile"), "HOME", home))
	waitSpares(t, e, 1)
	if got, _ := mark(); got != "three" {
		t.Fatalf("after a line changed the profile: MARK %q, want three", got)
	}
}

// TestSpareKeyedByRequest: a line whose environment, directory or user differs from
// a waiting spare's gets a shell of its own, with what it asked for.
func TestSpareKeyedByRequest(t *testing.T) {
	e := newTestEnv(t, Config{})
	line := `echo "$V $(pwd) $(id -un)"`
	run := func(v, cwd, user string) (string, bool) {
		req := withEnv(startReq("/bin/bash", "-c", line), "V", v)
		req.Msg.Process.Cwd = &cwd
		if user != "" {
			req.Header().Set("Authorization", basicAuth(user))
		}
		out, _, _, spared := spareRun(t, e.proc, req)
		return strings.TrimSpace(out), spared
	}
	dir := t.TempDir()
	if got, _ := run("a", dir, ""); got != "a "+dir+" root" {
		t.Fatalf("got %q", got)
	}
	waitSpares(t, e, 1)
	for _, c := range []struct{ v, cwd, user, want string }{
		{"b", dir, "", "b " + dir + " root"},
		{"a", "/tmp", "", "a /tmp root"},
		{"a", "/", "nobody", "a / nobody"},
	} {
		if got, spared := run(c.v, c.cwd, c.user); got != c.want || spared {
			t.Errorf("got %q (spare %v), want %q from a new shell", got, spared, c.want)
		}
	}
	if n := e.a.procs.spares.count(); n > maxSpares {
		t.Errorf("%d spares kept, at most %d", n, maxSpares)
	}
}

// TestSpareStaleOrDead: a spare whose directory was replaced, or that died, is not
// used; the line still runs as asked; spares never show in List.
func TestSpareStaleOrDead(t *testing.T) {
	e := newTestEnv(t, Config{})
	dir := filepath.Join(t.TempDir(), "work")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func() (string, bool) {
		req := startReq("/bin/bash", "-c", "pwd && ls")
		req.Msg.Process.Cwd = &dir
		out, _, end, spared := spareRun(t, e.proc, req)
		if end.GetExitCode() != 0 {
			t.Fatalf("exit %s", end.GetStatus())
		}
		return out, spared
	}
	run()
	waitSpares(t, e, 1)
	list, err := e.proc.List(t.Context(), connect.NewRequest(&process.ListRequest{}))
	if err != nil || len(list.Msg.GetProcesses()) != 0 {
		t.Fatalf("List with a spare waiting: %v, %v", list.Msg.GetProcesses(), err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, spared := run(); spared || out != dir+"\nnew\n" {
		t.Fatalf("directory replaced: %q (spare %v)", out, spared)
	}
	waitSpares(t, e, 1)
	e.a.procs.spares.mu.Lock()
	pid := int(e.a.procs.spares.idle[0].p.pid)
	e.a.procs.spares.mu.Unlock()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if out, spared := run(); spared || out != dir+"\nnew\n" {
		t.Fatalf("spare killed: %q (spare %v)", out, spared)
	}
}

// TestSparePrimerHostname runs the primer by itself: a shell started under one host
// name that runs its line under another shows the new one in HOSTNAME, unless it was
// given a HOSTNAME or its profile set one.
func TestSparePrimerHostname(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, start, now, env, line, want string
	}{
		{"renamed", host, "renamed-box", "", "echo $HOSTNAME", "renamed-box"},
		{"same name", host, host, "", "echo $HOSTNAME; echo $?", host + "\n0"},
		{"given HOSTNAME", "\x01", "renamed-box", "HOSTNAME=mine", "echo $HOSTNAME", "mine"},
		{"changed by the shell", "other", "renamed-box", "", "echo $HOSTNAME", host},
	} {
		t.Run(c.name, func(t *testing.T) {
			line, err := os.CreateTemp(t.TempDir(), "line")
			if err != nil {
				t.Fatal(err)
			}
			defer line.Close()
			if _, err := line.WriteString(c.start + "\x00" + c.now + "\x00" + c.line + "\x00"); err != nil {
				t.Fatal(err)
			}
			if _, err := line.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
			gateR, gateW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer gateR.Close()
			_, _ = gateW.Write([]byte{'.'})
			_ = gateW.Close()
			cmd := exec.Command("/bin/bash", "-c", sparePrimer)
			cmd.Env = []string{"PATH=/usr/bin:/bin"}
			if c.env != "" {
				cmd.Env = append(cmd.Env, c.env)
			}
			cmd.ExtraFiles = []*os.File{line, gateR}
			out, err := cmd.CombinedOutput()
			if got := strings.TrimSpace(string(out)); err != nil || got != c.want {
				t.Errorf("got %q (%v), want %q", got, err, c.want)
			}
		})
	}
}

func TestSpareFits(t *testing.T) {
	u := &User{Name: "root", Home: "/root"}
	spec := func(path string, argv ...string) startSpec {
		return startSpec{path: path, argv: argv, env: []string{"PATH=/bin"}, user: u, dir: "/"}
	}
	s := newSpares(newManager(nil, nil))
	for _, c := range []struct {
		spec startSpec
		want string
		ok   bool
	}{
		{spec("/bin/bash", "/bin/bash", "-c", "echo hi"), "echo hi", true},
		{spec("/bin/bash", "/bin/bash", "-c", "true"), "true", true},
		{spec("/bin/bash", "/bin/bash", "-c", "ls -la"), "", false}, // the fast path's
		{spec("/bin/bash", "/bin/bash", "-l", "-c", "ls -la"), "ls -la", true},
		{spec("/usr/bin/bash", "/bin/bash", "-l", "-c", "x"), "x", true},
		{spec("/bin/sh", "/bin/sh", "-c", "echo hi"), "", false},
		{spec("/bin/bash", "/bin/bash", "-i", "-l"), "", false},
		{spec("/bin/bash", "/bin/bash", "-c", "echo", "arg0"), "", false},
		{startSpec{path: "/bin/bash", argv: []string{"bash", "-c", "echo"}, env: []string{"BASH_ENV=/x"}, user: u}, "", false},
		{startSpec{path: "/bin/bash", argv: []string{"bash", "-c", "echo"}, env: []string{"SECONDS=5"}, user: u}, "", false},
		{startSpec{path: "/bin/bash", argv: []string{"bash", "-c", "echo"}, pty: &process.PTY{}, user: u}, "", false},
	} {
		got, ok := s.fits(c.spec)
		if got != c.want || ok != c.ok {
			t.Errorf("fits(%q) = %q, %v; want %q, %v", c.spec.argv, got, ok, c.want, c.ok)
		}
	}
}

// TestSpareNotReady: `true` does not wait for a spare still starting (the fast path
// runs it for less) and leaves it waiting; any other line takes it.
func TestSpareNotReady(t *testing.T) {
	e := newTestEnv(t, Config{})
	run := func(line string) (string, bool) {
		out, _, _, spared := spareRun(t, e.proc, startReq("/bin/bash", "-c", line))
		return out, spared
	}
	run("echo warm")
	waitSpares(t, e, 1)
	// Make the waiting spare look as if it were still starting.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := e.a.procs.spares
	s.mu.Lock()
	_ = s.idle[0].ready.Close()
	s.idle[0].ready = r
	s.mu.Unlock()
	if _, spared := run("true"); spared || s.count() != 1 {
		t.Fatalf("true: spare %v, %d spares waiting; want no spare and 1 left waiting", spared, s.count())
	}
	if out, spared := run("echo hi"); !spared || out != "hi\n" {
		t.Fatalf("echo hi: %q (spare %v), want hi from the starting spare", out, spared)
	}
}
