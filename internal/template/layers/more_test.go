package layers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/node"
)

// TestBuildApt installs a Debian package in a build step: the step sandbox reaches
// Debian's package mirror (the one outside host reachable here) through the node's
// egress, and the package is in the finished root filesystem.
func TestBuildApt(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, _, logs, err := e.run(ctx, domain.BuildSpec{Steps: []domain.BuildStep{
		{Kind: domain.StepRun, Args: []string{"apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tree && rm -rf /var/lib/apt/lists/*"}},
		{Kind: domain.StepRun, Args: []string{"tree --version"}},
	}}, nil)
	if err != nil {
		t.Fatalf("build: %v\nlog:\n%s", err, strings.Join(logs, "\n"))
	}
	if _, err := os.Stat(filepath.Join(res.RootFS, "usr/bin/tree")); err != nil {
		t.Errorf("tree is not installed: %v", err)
	}
	if !strings.Contains(strings.Join(logs, "\n"), "tree v") {
		t.Errorf("the second step's output is not in the log:\n%s", strings.Join(logs, "\n"))
	}
}

// TestBuildConcurrent runs the same build four times at once, two on one builder and
// two on a second builder, with a node of its own, over the same cache directory (as a
// second server process would): all succeed with the same, complete root filesystem.
func TestBuildConcurrent(t *testing.T) {
	e := newEnv(t)
	n2, netm2 := e.newNode(t, fmt.Sprintf("lz%d", os.Getpid()%100000), 1, t.TempDir())
	t.Cleanup(func() {
		if ids, _ := netm2.List(context.Background()); len(ids) > 0 {
			t.Errorf("network namespaces of the second node left: %v", ids)
		}
	})
	second, err := New(Config{Dir: e.dir, Node: n2, Limits: e.b.cfg.Limits})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	spec := domain.BuildSpec{Steps: []domain.BuildStep{
		{Kind: domain.StepRun, Args: []string{"seq 1 2000 > /numbers"}},
		{Kind: domain.StepEnv, Args: []string{"X", "1"}},
		{Kind: domain.StepRun, Args: []string{"wc -l < /numbers > /count"}},
	}}
	p, _ := ParentOf(e.base)
	var wg sync.WaitGroup
	results := make([]*Result, 4)
	errs := make([]error, 4)
	for i := range results {
		b := e.b
		if i%2 == 1 {
			b = second
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = b.BuildFrom(ctx, spec, p, nil, nil, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
		if results[i].RootFS != results[0].RootFS || results[i].Key != results[0].Key {
			t.Errorf("build %d: %s (%s), build 0: %s", i, results[i].RootFS, results[i].Key, results[0].RootFS)
		}
	}
	if got := readFile(t, results[0].RootFS, "count"); got != "2000" {
		t.Errorf("count %q", got)
	}
	ents, _ := os.ReadDir(filepath.Join(e.dir, "l"))
	if len(ents) != 3 {
		t.Errorf("layers %v, want 3", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.dir, "r")); len(ents) != 1 {
		t.Errorf("roots %v, want 1", ents)
	}
}

// TestRecover: a step sandbox and scratch that a crashed server left (a mounted view
// in work/ of a process that is gone, a half-made layer) are removed by New and
// Recover; the env's cleanup then finds nothing left.
func TestRecover(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id := idPrefix + domain.NewID(14)
	if _, _, err := e.node.StartLayered(ctx, node.LayeredSpec{ID: id, Slot: 3, RootFS: e.base, Internet: true,
		Agent: node.AgentConfig{AccessToken: "t"}}); err != nil {
		t.Fatal(err)
	}
	const deadPID = "999999999"
	view := filepath.Join(e.dir, "work", deadPID+"-x", "flat")
	if _, err := node.MountLayers([]string{e.base}, view, view); err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(e.dir, "l", ".tmp-"+deadPID+"-y")
	if err := os.MkdirAll(filepath.Join(half, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Dir: e.dir, Node: e.node})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := b.Recover(ctx); err != nil || n != 1 {
		t.Errorf("Recover: %d, %v; want 1 sandbox removed", n, err)
	}
	for _, p := range []string{filepath.Join(e.dir, "work", deadPID+"-x"), half} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left", p)
		}
	}
	if _, err := os.Stat(e.base); err != nil {
		t.Fatalf("the parent is gone: %v", err)
	}
}

// TestFlattenWays builds layers that delete, replace and change files of the parent
// and of each other, and checks that the two ways of flattening (links with the layers
// applied, and a copy of their overlay) give the same tree: names, types, modes,
// owners, link targets and contents.
func TestFlattenWays(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	spec := domain.BuildSpec{Steps: []domain.BuildStep{
		{Kind: domain.StepRun, Args: []string{"mkdir -p /a/b /c && echo 1 > /a/b/f && ln -s /a/b/f /a/l && echo x > /c/x && chmod 1777 /c && useradd -m u2"}},
		{Kind: domain.StepRun, Args: []string{"rm -rf /a && mkdir -p /a && echo 2 > /a/g && rm /c/x && chown u2 /c && rm -rf /usr/share/doc && chmod 700 /etc/apt && echo z >> /etc/hosts"}},
	}}
	linked, _, _, err := e.run(ctx, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := linkable
	linkable = func(string, string) bool { return false }
	defer func() { linkable = old }()
	if err := os.RemoveAll(filepath.Dir(linked.RootFS)); err != nil {
		t.Fatal(err)
	}
	copied, steps, _, err := e.run(ctx, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !steps[0].Cached || !steps[1].Cached {
		t.Fatalf("the layers were not reused: %+v", steps)
	}
	want := treeOf(t, copied.RootFS)
	linkable = old
	if err := os.RemoveAll(filepath.Dir(copied.RootFS)); err != nil {
		t.Fatal(err)
	}
	again, _, _, err := e.run(ctx, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := treeOf(t, again.RootFS)
	if len(got) != len(want) {
		t.Errorf("linked flattening: %d entries, copied: %d", len(got), len(want))
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: linked %q, copied %q", p, got[p], w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s only in the linked flattening", p)
		}
	}
	for _, p := range []string{"a/g", "c", "etc/hosts"} {
		if _, ok := got[p]; !ok {
			t.Errorf("%s missing", p)
		}
	}
	if _, ok := got["usr/share/doc"]; ok {
		t.Error("usr/share/doc is still there")
	}
}

// treeOf describes every entry below root.
func treeOf(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(sum[:8])
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBuildUser: USER takes a name or a uid of the image; one the image lacks fails
// the next RUN with a KindInvalid error that says what to do.
func TestBuildUser(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, _, logs, err := e.run(ctx, domain.BuildSpec{Steps: []domain.BuildStep{
		{Kind: domain.StepRun, Args: []string{"useradd -u 4242 -m builder"}},
		{Kind: domain.StepUser, Args: []string{"4242"}},
		{Kind: domain.StepRun, Args: []string{`echo "i am $(id -un) in $(pwd)"`}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(logs, "\n"), "i am builder in /") {
		t.Errorf("log:\n%s", strings.Join(logs, "\n"))
	}
	_, _, _, err = e.run(ctx, domain.BuildSpec{Steps: []domain.BuildStep{
		{Kind: domain.StepUser, Args: []string{"nobody-here"}},
		{Kind: domain.StepRun, Args: []string{"true"}},
	}}, nil)
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindInvalid || !strings.Contains(err.Error(), "useradd") {
		t.Errorf("unknown user: %v, want a KindInvalid error saying to add the user", err)
	}
}
