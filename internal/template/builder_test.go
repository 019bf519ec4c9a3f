package template

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeRunner stands in for debootstrap and chroot: "debootstrap" creates a small tree
// at its target argument.
type fakeRunner struct {
	mu    sync.Mutex
	calls []string
	// fail, when set, is returned for commands whose name it maps.
	fail  map[string]error
	delay time.Duration
	debs  atomic.Int32
}

func (f *fakeRunner) run(ctx context.Context, name string, args ...string) error {
	f.mu.Lock()
	f.calls = append(f.calls, name+" "+strings.Join(args, " "))
	f.mu.Unlock()
	if name == "debootstrap" {
		f.debs.Add(1)
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := f.fail[name]; err != nil {
		return err
	}
	if name == "debootstrap" {
		target := args[len(args)-2]
		if err := os.MkdirAll(filepath.Join(target, "usr/bin"), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(target, "usr/bin/true"), bytes.Repeat([]byte{1}, 10000), 0o755)
	}
	return nil
}

func (f *fakeRunner) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func newTestBuilder(t *testing.T, f *fakeRunner) (*Builder, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	return &Builder{
		CacheDir: t.TempDir(),
		DebCache: filepath.Join(t.TempDir(), "debs"),
		Progress: &syncWriter{w: &out},
		Run:      f.run,
	}, &out
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestEnsureBuildsThenCaches(t *testing.T) {
	f := &fakeRunner{}
	b, out := newTestBuilder(t, f)
	r := Base()
	rootfs, err := b.Ensure(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(b.CacheDir, r.ID(), "rootfs"); rootfs != want {
		t.Errorf("rootfs = %q, want %q", rootfs, want)
	}
	calls := f.callList()
	if len(calls) != 2 {
		t.Fatalf("calls = %q, want debootstrap then chroot", calls)
	}
	wantDeb := "debootstrap --variant=minbase --include=bash,ca-certificates,coreutils,curl,git,iproute2,iputils-ping,netcat-openbsd,procps,python3 --cache-dir=" +
		b.DebCache + " bookworm "
	if !strings.HasPrefix(calls[0], wantDeb) || !strings.HasSuffix(calls[0], "/rootfs "+DefaultMirror) {
		t.Errorf("debootstrap call = %q, want prefix %q", calls[0], wantDeb)
	}
	if !strings.HasPrefix(calls[1], "chroot ") || !strings.Contains(calls[1], "/rootfs /bin/sh -c set -eu") {
		t.Errorf("script call = %q", calls[1])
	}
	m, err := b.Marker(r)
	if err != nil {
		t.Fatal(err)
	}
	if m.Hash != r.Hash() || m.SizeBytes < 10000 || m.BuiltAt.IsZero() || m.Recipe.Name != "base" {
		t.Errorf("marker = %+v", m)
	}
	for _, want := range []string{"[template base] building base-", "[template base] running recipe script", "[template base] done in 0s, 0 MB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}
	assertOnlyEntry(t, b.CacheDir, r)

	// Cached: nothing runs, and it is fast.
	start := time.Now()
	again, err := b.Ensure(context.Background(), r)
	if err != nil || again != rootfs {
		t.Fatalf("second Ensure = %q, %v", again, err)
	}
	if d := time.Since(start); d > 10*time.Millisecond {
		t.Errorf("cached Ensure took %v", d)
	}
	if n := len(f.callList()); n != 2 {
		t.Errorf("cached Ensure ran commands: %q", f.callList()[2:])
	}
}

func TestEnsureUsesExistingMarkerWithoutRunning(t *testing.T) {
	f := &fakeRunner{}
	b, _ := newTestBuilder(t, f)
	r := Base()
	dir := b.Dir(r)
	if err := os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeMarker(dir, Marker{Name: r.Name, Hash: r.Hash(), BuiltAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got, err := b.Ensure(context.Background(), r)
	if err != nil || got != filepath.Join(dir, "rootfs") {
		t.Fatalf("Ensure = %q, %v", got, err)
	}
	if calls := f.callList(); len(calls) != 0 {
		t.Errorf("ran %q for a ready template", calls)
	}
	if _, err := os.Stat(filepath.Join(b.CacheDir, ".lock-"+r.ID())); !os.IsNotExist(err) {
		t.Errorf("fast path took the lock: %v", err)
	}
}

// TestEnsureRestrictsCache: the cache of root filesystems is root's alone (0700), also
// when an older version made it 0755 and the template is already built.
func TestEnsureRestrictsCache(t *testing.T) {
	f := &fakeRunner{}
	b, _ := newTestBuilder(t, f)
	r := Base()
	dir := b.Dir(r)
	if err := os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeMarker(dir, Marker{Name: r.Name, Hash: r.Hash(), BuiltAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(b.CacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Ensure(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(b.CacheDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("template cache mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
}

func TestEnsureRebuildsOnBadMarker(t *testing.T) {
	f := &fakeRunner{}
	b, _ := newTestBuilder(t, f)
	r := Base()
	dir := b.Dir(r)
	os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755)
	// A marker for another hash (or a missing one) means the entry is not complete.
	writeMarker(dir, Marker{Name: r.Name, Hash: "0000000000000000"})
	if _, ok := b.IsReady(r); ok {
		t.Fatal("IsReady accepted a marker with the wrong hash")
	}
	if _, err := b.Ensure(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if f.debs.Load() != 1 {
		t.Errorf("debootstrap ran %d times, want 1", f.debs.Load())
	}
	if _, ok := b.IsReady(r); !ok {
		t.Error("not ready after rebuild")
	}
}

func TestEnsureConcurrentBuildsOnce(t *testing.T) {
	f := &fakeRunner{delay: 150 * time.Millisecond}
	b, out := newTestBuilder(t, f)
	r := Base()
	const n = 4
	var wg sync.WaitGroup
	paths := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		// Separate Builders share only the directory, like separate processes.
		bi := *b
		wg.Go(func() { paths[i], errs[i] = bi.Ensure(context.Background(), r) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Errorf("Ensure %d = %q, %v; want %q", i, paths[i], errs[i], paths[0])
		}
	}
	if got := f.debs.Load(); got != 1 {
		t.Errorf("debootstrap ran %d times, want 1", got)
	}
	if !strings.Contains(out.String(), "waiting for another build") {
		t.Errorf("progress does not say it waited:\n%s", out)
	}
	assertOnlyEntry(t, b.CacheDir, r)
}

func TestEnsureWaitHonoursContext(t *testing.T) {
	f := &fakeRunner{}
	b, _ := newTestBuilder(t, f)
	r := Base()
	unlock, err := lockFile(context.Background(), filepath.Join(b.CacheDir, ".lock-"+r.ID()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := b.Ensure(ctx, r); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ensure while locked = %v, want deadline exceeded", err)
	}
	if f.debs.Load() != 0 {
		t.Error("built without the lock")
	}
}

func TestEnsureFailureCleansUp(t *testing.T) {
	exitErr := exec.Command("/bin/sh", "-c", "exit 1").Run()
	for _, tc := range []struct {
		name  string
		fail  map[string]error
		wants []string
	}{
		{"debootstrap exits", map[string]error{"debootstrap": exitErr}, []string{
			"debootstrap failed (exit 1)", "deb.debian.org is reachable", "apt-get install debootstrap"}},
		{"debootstrap missing", map[string]error{"debootstrap": &exec.Error{Name: "debootstrap", Err: exec.ErrNotFound}}, []string{
			"debootstrap is not installed: run apt-get install debootstrap"}},
		{"script fails", map[string]error{"chroot": exitErr}, []string{
			"the recipe script failed (exit 1)", "fix the recipe's Script"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRunner{fail: tc.fail}
			b, _ := newTestBuilder(t, f)
			_, err := b.Ensure(context.Background(), Base())
			if err == nil {
				t.Fatal("Ensure succeeded")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			ents, _ := os.ReadDir(b.CacheDir)
			for _, e := range ents {
				if !strings.HasPrefix(e.Name(), ".lock-") {
					t.Errorf("left behind %s", e.Name())
				}
			}
			if _, ok := b.IsReady(Base()); ok {
				t.Error("failed build is ready")
			}
		})
	}
}

func TestEnsureRemovesStaleTempDirs(t *testing.T) {
	f := &fakeRunner{}
	b, _ := newTestBuilder(t, f)
	r := Base()
	stale := filepath.Join(b.CacheDir, tempPrefix+r.ID()+"-123456")
	os.MkdirAll(filepath.Join(stale, "rootfs/etc"), 0o755)
	if _, err := b.Ensure(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale build dir survived: %v", err)
	}
}

func TestEnsureInvalidRecipe(t *testing.T) {
	f := &fakeRunner{}
	b, _ := newTestBuilder(t, f)
	r := Base()
	r.Packages = append(r.Packages, "evil,--foo")
	if _, err := b.Ensure(context.Background(), r); err == nil || !strings.Contains(err.Error(), "not a Debian package name") {
		t.Fatalf("Ensure = %v, want invalid package error", err)
	}
	if len(f.callList()) != 0 {
		t.Error("ran commands for an invalid recipe")
	}
}

func TestPrune(t *testing.T) {
	f := &fakeRunner{}
	b, _ := newTestBuilder(t, f)
	keep, drop := Base(), Base()
	drop.Version++
	for _, r := range []Recipe{keep, drop} {
		if _, err := b.Ensure(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	unrelated := filepath.Join(b.CacheDir, "not-a-template")
	os.Mkdir(unrelated, 0o755)
	removed, err := b.Prune(keep)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != b.Dir(drop) {
		t.Errorf("removed %q, want [%s]", removed, b.Dir(drop))
	}
	if _, ok := b.IsReady(keep); !ok {
		t.Error("kept template was pruned")
	}
	if _, err := os.Stat(unrelated); err != nil {
		t.Errorf("pruned a directory that is not a template: %v", err)
	}
}

func TestProgressPhases(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, "base")
	for _, l := range []string{
		"I: Retrieving InRelease", "I: Retrieving Packages", "I: Validating Packages",
		"I: Checking component main on http://deb.debian.org/debian...",
		"I: Retrieving bash 5.2", "I: Validating bash 5.2", "I: Validating curl 7.88",
		"I: Extracting bash...", "I: Extracting curl...",
		"I: Installing core packages...", "I: Configuring curl...",
	} {
		p.Write([]byte(l + "\n"))
	}
	p.Write([]byte("no newline"))
	got := out.String()
	for _, want := range []string{
		"[template base] I: Retrieving InRelease\n",
		"[template base] downloading packages\n",
		"[template base] downloading and unpacking 2 packages (1 downloaded, 1 from the cache)\n",
		"[template base] configuring\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "configuring\n") != 1 {
		t.Errorf("configuring printed more than once:\n%s", got)
	}
	tail := p.lastLines()
	if len(tail) != tailLines || tail[len(tail)-1] != "no newline" {
		t.Errorf("tail = %q", tail)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	if got := unescapeMountinfo(`/a\040b\134c`); got != `/a b\c` {
		t.Errorf("got %q", got)
	}
}

func assertOnlyEntry(t *testing.T, cache string, r Recipe) {
	t.Helper()
	ents, _ := os.ReadDir(cache)
	for _, e := range ents {
		if e.Name() != r.ID() && e.Name() != ".lock-"+r.ID() {
			t.Errorf("unexpected %s in cache dir", e.Name())
		}
	}
}
