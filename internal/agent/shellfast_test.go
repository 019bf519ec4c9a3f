package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
)

func TestPlainCommand(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string
	}{
		{"true", []string{"true"}},
		{"false", []string{"false"}},
		{"ls -la /tmp", []string{"ls", "-la", "/tmp"}},
		{"  python3\tscript.py  a=b x,y:z@1%2+3 ", []string{"python3", "script.py", "a=b", "x,y:z@1%2+3"}},
		{"/usr/bin/env", []string{"/usr/bin/env"}},
		{"", nil},
		{"   ", nil},
		{"true x", nil}, // builtin true ignores arguments; /usr/bin/true --help does not
		{"echo hi", nil},
		{"cd /tmp", nil},
		{"time ls", nil},
		{"FOO=1 env", nil},
		{"ls *.go", nil},
		{"ls ~", nil},
		{"echo $HOME", nil},
		{"ls > out", nil},
		{"ls; ls", nil},
		{"ls && ls", nil},
		{"ls | cat", nil},
		{"ls 'a b'", nil},
		{`ls a\ b`, nil},
		{"ls # comment", nil},
		{"ls {a,b}", nil},
		{"ls\nls", nil},
		{"ls &", nil},
		{"ls $(pwd)", nil},
	} {
		got, ok := plainCommand(c.line)
		if ok != (c.want != nil) || !slices.Equal(got, c.want) {
			t.Errorf("plainCommand(%q) = %q, %v; want %q", c.line, got, ok, c.want)
		}
	}
}

func TestBashReads(t *testing.T) {
	for _, env := range [][]string{{"BASH_ENV=/x"}, {"BASH_FUNC_ls%%=() { :; }"}, {"ENV=/x"}, {"SHELLOPTS=xtrace"}, {"PWD=/"}, {"SHLVL=3"}, {"_=x"}} {
		if !bashReads(append([]string{"PATH=/bin", "HOME=/root"}, env...)) {
			t.Errorf("bashReads(%q) = false", env)
		}
	}
	if bashReads([]string{"PATH=/bin", "HOME=/root", "MY_BASH=1"}) {
		t.Error("bashReads of an ordinary environment")
	}
}

// TestShellFastPathSameAsBash runs command lines through the agent as `bash -c LINE`
// with the fast path and without it (and no spare shells), and gets the same output, environment and exit
// status either way; the lines it must leave to bash still work.
func TestShellFastPathSameAsBash(t *testing.T) {
	e := newTestEnv(t, Config{})
	e.a.procs.spares.disabled.Store(true) // spare.go's own test covers lines with a spare
	dir := t.TempDir()
	script := filepath.Join(dir, "noshebang")
	if err := os.WriteFile(script, []byte("echo run by bash \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lines := []struct {
		line   string
		direct bool // the fast path starts it (or tries: a script without #! falls back)
	}{
		{"env", true},
		{"true", true},
		{"false", true},
		{"ls -d / /tmp", true},
		{"/usr/bin/env", true},
		{"id -un", true},
		{"no-such-command-here", false},
		{script + " a b", true},
		{"echo $SHLVL", false},
	}
	run := func(t *testing.T, pc processconnect.ProcessClient, line string) (string, string, int32) {
		ps := start(t, pc, startReq("/bin/bash", "-c", line))
		end := ps.wait(20 * time.Second)
		return ps.stdout.String(), ps.stderr.String(), end.GetExitCode()
	}
	sorted := func(s string) string {
		l := strings.Split(strings.TrimSpace(s), "\n")
		slices.Sort(l)
		return strings.Join(l, "\n")
	}
	for _, c := range lines {
		t.Run(c.line, func(t *testing.T) {
			defer func() { shellFastPath = true }()
			shellFastPath = false
			wantOut, wantErr, wantCode := run(t, e.proc, c.line)
			shellFastPath = true
			before := directStarts.Load()
			out, errOut, code := run(t, e.proc, c.line)
			if started := directStarts.Load() > before; started != (c.direct && !strings.HasPrefix(c.line, script)) {
				t.Errorf("started directly: %v", started)
			}
			if sorted(out) != sorted(wantOut) || errOut != wantErr || code != wantCode {
				t.Errorf("fast path: stdout %q stderr %q exit %d\nbash:      stdout %q stderr %q exit %d", out, errOut, code, wantOut, wantErr, wantCode)
			}
		})
	}
}
