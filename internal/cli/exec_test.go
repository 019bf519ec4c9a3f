package cli

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestExec(t *testing.T) {
	e := newTestEnv(t)
	id := e.createSandbox()

	r := e.ok("exec", id, "--", "echo hello world")
	if r.stdout != "hello world\n" || r.stderr != "" {
		t.Errorf("exec echo: %+v", r)
	}
	if e.svc.lastExec.Cmd != "echo hello world" || e.svc.lastExec.Args != nil {
		t.Errorf("one word after -- should be a shell line: %+v", e.svc.lastExec)
	}
	r = e.ok("exec", "--user", "root", "--cwd", "/tmp", "--env", "A=1", "--timeout", "30", id, "--", "echo", "x", "y")
	want := domain.ExecRequest{Args: []string{"echo", "x", "y"}, Env: map[string]string{"A": "1"}, Cwd: "/tmp", User: "root", Timeout: 30 * time.Second}
	if !reflect.DeepEqual(e.svc.lastExec, want) || r.stdout != "x y\n" {
		t.Errorf("exec argv: %+v, out %q", e.svc.lastExec, r.stdout)
	}
	// Flags may follow the id before "--", and "--" may be left out.
	e.ok("exec", id, "--user", "bob", "--", "echo", "a")
	if e.svc.lastExec.User != "bob" {
		t.Errorf("flag after id ignored: %+v", e.svc.lastExec)
	}
	if r := e.ok("exec", "--cwd", "/", id, "echo", "-n", "z"); r.stdout != "-n z\n" {
		t.Errorf("exec without --: %q", r.stdout)
	}

	r = e.run("exec", id, "--", "err oops")
	if r.code != 0 || r.stderr != "oops\n" || r.stdout != "" {
		t.Errorf("stderr goes to stderr: %+v", r)
	}
}

func TestExecExitCodes(t *testing.T) {
	e := newTestEnv(t)
	id := e.createSandbox()
	cases := []struct {
		cmd    string
		code   int
		stderr string
	}{
		{"exit 0", 0, ""},
		{"exit 3", 3, ""},
		{"exit 255", 255, ""},
		{"nosuchprogram", 127, "nosuchprogram: command not found\n"},
		{"killed", 1, "warren: command ended: signal: killed (exit code -1)\n"},
	}
	for _, c := range cases {
		r := e.run("exec", id, "--", c.cmd)
		if r.code != c.code || r.stderr != c.stderr {
			t.Errorf("exec %q: exit %d stderr %q; want %d %q", c.cmd, r.code, r.stderr, c.code, c.stderr)
		}
		r = e.run("exec", "-o", "json", id, "--", c.cmd)
		if r.code != c.code {
			t.Errorf("exec -o json %q: exit %d, want %d", c.cmd, r.code, c.code)
		}
		out := decode[map[string]any](t, r.stdout)
		if len(out) != 4 || out["exit_code"] == nil || out["stdout"] == nil || out["stderr"] == nil || out["timed_out"] != false {
			t.Errorf("exec -o json shape: %s", r.stdout)
		}
	}
	out := decode[map[string]any](t, e.run("exec", "-o", "json", id, "--", "echo hi").stdout)
	if out["exit_code"] != float64(0) || out["stdout"] != "hi\n" || out["stderr"] != "" {
		t.Errorf("exec -o json: %v", out)
	}

	// A command killed at its timeout exits 124, like timeout(1), and says so; its
	// output until then is printed.
	r := e.run("exec", "--timeout", "2", id, "--", "timeout")
	if r.code != 124 || r.stdout != "partial\n" || r.stderr != "warren: command timed out after 2s and was killed (exit code 124)\n" {
		t.Errorf("timeout: %+v", r)
	}
	if e.svc.lastExec.Timeout != 2*time.Second {
		t.Errorf("timeout sent as %v", e.svc.lastExec.Timeout)
	}
	r = e.run("exec", "-o", "json", "--timeout", "2", id, "--", "timeout")
	out = decode[map[string]any](t, r.stdout)
	if r.code != 124 || out["timed_out"] != true || out["exit_code"] != -1.0 || out["stdout"] != "partial\n" || !strings.Contains(r.stderr, "timed out after 2s") {
		t.Errorf("timeout -o json: %+v", r)
	}

	// A failure after output started: what arrived is printed, then the error.
	r = e.run("exec", id, "--", "break")
	if r.code != 1 || r.stdout != "partial\n" || !strings.Contains(r.stderr, "error: sandbox agent connection lost (request req_") {
		t.Errorf("mid-stream failure: %+v", r)
	}
}

func TestExecStdin(t *testing.T) {
	e := newTestEnv(t)
	id := e.createSandbox()
	r := e.runIn(strings.NewReader("piped text\n"), "exec", "-i", id, "--", "cat")
	if r.code != 0 || r.stdout != "piped text\n" {
		t.Errorf("exec -i: %+v", r)
	}
	binary := "\x00\xff\xfe binary"
	if r := e.runIn(strings.NewReader(binary), "exec", "-i", id, "--", "cat"); r.stdout != binary {
		t.Errorf("binary stdin came back as %q", r.stdout)
	}
	// Without -i, stdin is not read.
	if r := e.runIn(strings.NewReader("ignored"), "exec", id, "--", "cat"); r.stdout != "" {
		t.Errorf("stdin forwarded without -i: %q", r.stdout)
	}
	big := strings.NewReader(strings.Repeat("x", maxStdin+1))
	if r := e.runIn(big, "exec", "-i", id, "--", "cat"); r.code != 2 || !strings.Contains(r.stderr, "warren cp -") {
		t.Errorf("oversized stdin: %+v", r)
	}
}
