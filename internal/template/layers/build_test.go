package layers

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func readFile(t *testing.T, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Errorf("%s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}

func ownerOf(t *testing.T, p string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

func cachedFlags(steps []domain.StepResult) []bool {
	out := make([]bool, len(steps))
	for i, s := range steps {
		out[i] = s.Cached
	}
	return out
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBuildReal runs a build of every step kind on the base template in real gVisor
// sandboxes, then rebuilds it: unchanged (everything cached, no sandbox), with its last
// step changed (only that step runs) and with a Force step (it and every later one
// run).
func TestBuildReal(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	files := memFiles{}
	hash := files.add(t, file("a.txt", "alpha"), dir("tree"), file("tree/b.txt", "bravo"), dir("tree/sub"),
		file("tree/sub/c.txt", "charlie"), &tar.Header{Typeflag: tar.TypeSymlink, Name: "tree/link", Linkname: "sub/c.txt"},
		file("other.txt", "not copied"))
	steps := []domain.BuildStep{
		{Kind: domain.StepRun, Args: []string{"echo hello > /hello.txt && mkdir -p /gone/sub /op/keep && echo x > /gone/sub/f && echo y > /etc/later-removed && echo o > /op/old && mkdir /todir && echo f > /tofile"}},
		{Kind: domain.StepEnv, Args: []string{"GREETING", "hi there"}},
		{Kind: domain.StepWorkdir, Args: []string{"/srv/app"}},
		{Kind: domain.StepRun, Args: []string{`echo "$GREETING" > greeting; pwd > where; rm -rf /gone /etc/later-removed /etc/issue; rm -rf /op && mkdir /op && echo n > /op/new; rmdir /todir && echo now-a-file > /todir; rm /tofile && mkdir /tofile; chmod 600 /etc/debian_version`}},
		{Kind: domain.StepCopy, Args: []string{"a.txt", "."}, FilesHash: hash},
		{Kind: domain.StepCopy, Args: []string{"tree", "/opt/tree", "user:user"}, FilesHash: hash},
		{Kind: domain.StepUser, Args: []string{"user"}},
		{Kind: domain.StepRun, Args: []string{`id -un > $HOME/who; echo "greeting=$GREETING"; echo to-stderr >&2`}},
	}
	spec := domain.BuildSpec{Name: "t", Steps: steps}
	t0 := time.Now()
	res, got, logs, err := e.run(ctx, spec, files)
	if err != nil {
		t.Fatalf("build: %v\nlog:\n%s", err, strings.Join(logs, "\n"))
	}
	t.Logf("cold build: %s, %d sandboxes, root filesystem %d bytes", time.Since(t0), e.node.starts.Load(), res.Size)
	if n := e.node.starts.Load(); n != 4 {
		t.Errorf("%d step sandboxes, want 4 (three RUN and a WORKDIR)", n)
	}
	if c := cachedFlags(got); !equalBools(c, make([]bool, len(steps))) {
		t.Errorf("cached %v on a cold build", c)
	}
	root := res.RootFS
	for name, want := range map[string]string{"hello.txt": "hello", "srv/app/greeting": "hi there", "srv/app/where": "/srv/app",
		"srv/app/a.txt": "alpha", "opt/tree/b.txt": "bravo", "opt/tree/sub/c.txt": "charlie", "opt/tree/link": "charlie", "home/user/who": "user"} {
		if got := readFile(t, root, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if readFile(t, root, "op/new") != "n" || readFile(t, root, "todir") != "now-a-file" {
		t.Error("the opaque directory's or the replaced directory's new content is missing")
	}
	if fi, err := os.Lstat(filepath.Join(root, "tofile")); err != nil || !fi.IsDir() {
		t.Errorf("tofile: %v %v, want a directory", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(root, "etc/debian_version")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("etc/debian_version after chmod 600: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(e.base, "etc/debian_version")); err != nil || fi.Mode().Perm() == 0o600 {
		t.Errorf("the parent's etc/debian_version changed with the build's: %v %v", fi, err)
	}
	for _, gone := range []string{"gone", "etc/later-removed", "etc/issue", "srv/app/other.txt", "opt/tree/other.txt", "op/old", "op/keep"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is in the finished root filesystem (%v)", gone, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, ".warren/warren-agent")); err == nil {
		t.Error("the agent's mount point is in the finished root filesystem")
	}
	if _, err := os.Stat(filepath.Join(e.base, "etc/issue")); err != nil {
		t.Errorf("the parent lost etc/issue: %v", err)
	}
	if uid, _ := ownerOf(t, filepath.Join(root, "srv/app/a.txt")); uid != 0 {
		t.Errorf("COPY without owner: uid %d, want root", uid)
	}
	uid, gid := ownerOf(t, filepath.Join(root, "opt/tree/sub/c.txt"))
	if wuid, _ := ownerOf(t, filepath.Join(root, "home/user")); uid != wuid || uid == 0 || gid == 0 {
		t.Errorf("COPY with owner user: %d:%d, want user's %d", uid, gid, wuid)
	}
	joined := strings.Join(logs, "\n")
	for _, want := range []string{"greeting=hi there", "to-stderr", "step 8/8: RUN"} {
		if !strings.Contains(joined, want) {
			t.Errorf("log lacks %q:\n%s", want, joined)
		}
	}
	if res.Config.User != "user" || res.Config.Workdir != "/srv/app" || res.Config.Env["GREETING"] != "hi there" {
		t.Errorf("config %+v", res.Config)
	}

	// Unchanged: every step cached, no sandbox, the same root filesystem.
	e.node.starts.Store(0)
	t0 = time.Now()
	res2, got, logs, err := e.run(ctx, spec, files)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cached build: %s", time.Since(t0))
	all := make([]bool, len(steps))
	for i := range all {
		all[i] = true
	}
	if c := cachedFlags(got); !equalBools(c, all) || e.node.starts.Load() != 0 || res2.RootFS != res.RootFS {
		t.Errorf("rebuild: cached %v, %d sandboxes, root %s (first %s)", c, e.node.starts.Load(), res2.RootFS, res.RootFS)
	}
	if !strings.HasPrefix(logs[0], "step 1/8: RUN echo hello > /hello.txt") || !strings.HasSuffix(logs[0], ": cached") {
		t.Errorf("log of a cached step:\n%s", strings.Join(logs, "\n"))
	}

	// The last step changed: only it runs.
	e.node.starts.Store(0)
	changed := append([]domain.BuildStep{}, steps...)
	changed[7] = domain.BuildStep{Kind: domain.StepRun, Args: []string{"echo changed > $HOME/changed"}}
	t0 = time.Now()
	res3, got, _, err := e.run(ctx, domain.BuildSpec{Steps: changed}, files)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("last step changed: %s", time.Since(t0))
	want := append(all[:7:7], false)
	if c := cachedFlags(got); !equalBools(c, want) || e.node.starts.Load() != 1 {
		t.Errorf("last step changed: cached %v, %d sandboxes; want %v and 1", c, e.node.starts.Load(), want)
	}
	if readFile(t, res3.RootFS, "home/user/changed") != "changed" {
		t.Error("the changed step's file is missing")
	}
	if _, err := os.Stat(filepath.Join(res3.RootFS, "home/user/who")); err == nil {
		t.Error("the old last step's file is in the new root filesystem")
	}

	// Force on step 4: it and every later step run (RUN 4 and RUN 8 in sandboxes).
	e.node.starts.Store(0)
	forced := append([]domain.BuildStep{}, steps...)
	forced[3].Force = true
	_, got, _, err = e.run(ctx, domain.BuildSpec{Steps: forced}, files)
	if err != nil {
		t.Fatal(err)
	}
	want = []bool{true, true, true, false, false, false, false, false}
	if c := cachedFlags(got); !equalBools(c, want) || e.node.starts.Load() != 2 {
		t.Errorf("force: cached %v, %d sandboxes; want %v and 2", c, e.node.starts.Load(), want)
	}
}

// TestBuildFailure: a failing RUN is a KindInvalid error naming the step, the command,
// the exit code and the last lines of output, and leaves no root filesystem and no
// layer of the failed step.
func TestBuildFailure(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	spec := domain.BuildSpec{Steps: []domain.BuildStep{
		{Kind: domain.StepEnv, Args: []string{"A", "1"}},
		{Kind: domain.StepRun, Args: []string{"echo first line; echo second line >&2; touch /half; exit 7"}},
		{Kind: domain.StepRun, Args: []string{"echo never"}},
	}}
	_, got, _, err := e.run(ctx, spec, nil)
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindInvalid {
		t.Fatalf("error %v, want a KindInvalid domain error", err)
	}
	for _, want := range []string{"step 2", "exit code 7", "echo first line", "first line\nsecond line"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if len(got) != 1 {
		t.Errorf("step results %+v, want only the ENV step's", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.dir, "r")); len(ents) != 0 {
		t.Errorf("a root filesystem was left: %v", ents)
	}
	ents, _ := os.ReadDir(filepath.Join(e.dir, "l"))
	if len(ents) != 1 {
		t.Errorf("layers %v, want only the ENV step's", ents)
	}
}

// TestBuildCancel: a build cancelled while its RUN runs, and one past its Timeout,
// stop the step and leave nothing of the sandbox (checked by the env's cleanup:
// runsc state and processes, mounts, namespaces, veths, cgroups).
func TestBuildCancel(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, _ := ParentOf(e.base)
	spec := domain.BuildSpec{Steps: []domain.BuildStep{{Kind: domain.StepRun, Args: []string{"echo started; sleep 600"}}}}
	done := make(chan error, 1)
	go func() {
		_, err := e.b.BuildFrom(ctx, spec, p, nil, func(l domain.BuildLogLine) {
			if l.Message == "started" {
				cancel()
			}
		}, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled build: %v, want context.Canceled", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("the cancelled build did not return")
	}
	e.checkClean(t)

	spec.Timeout = 3 * time.Second
	t0 := time.Now()
	_, err := e.b.BuildFrom(context.Background(), spec, p, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "timeout of 3s") {
		t.Errorf("build past its timeout: %v", err)
	}
	if time.Since(t0) > 2*time.Minute {
		t.Errorf("the timed-out build took %s", time.Since(t0))
	}
}
