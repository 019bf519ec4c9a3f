package gvisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/testenv"
)

// TestPinnedVersionAgrees: scripts/install-deps.sh builds the version in
// scripts/runsc.version into DefaultBuildCache and holds BuildLockName while it builds;
// the Go side must name the same.
func TestPinnedVersionAgrees(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	b, err := os.ReadFile(filepath.Join(root, "scripts", "runsc.version"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != PinnedVersion {
		t.Errorf("scripts/runsc.version says %q, gvisor.PinnedVersion %q: change both", got, PinnedVersion)
	}
	script, err := os.ReadFile(filepath.Join(root, "scripts", "install-deps.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"runsc.version", "WARREN_RUNSC_CACHE:-" + DefaultBuildCache + "}", "/" + BuildLockName,
		Module + "@$runsc_version", "-X " + Module + "/runsc/version.version=$runsc_version", "runsc-seccomp.go"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("scripts/install-deps.sh does not contain %q", want)
		}
	}
	if dateOf(PinnedVersion) == "" {
		t.Errorf("no date in the pinned version %q", PinnedVersion)
	}
}

func TestVersionDates(t *testing.T) {
	for _, c := range []struct {
		v          Version
		date       string
		workaround bool
		older      bool
	}{
		{Version{Module: PinnedVersion}, "20260905", false, false},
		{Version{Module: "v0.0.0-20240801000000-0123456789ab"}, "20240801", true, true},
		{Version{Release: "0.0~20240729.0"}, "20240729", true, true},
		{Version{Release: "release-20250106.0"}, "20250106", false, true},
		{Version{Release: "VERSION_MISSING"}, "", true, true},
		{Version{}, "", true, true},
	} {
		v := c.v
		if v.Module != "" {
			v.Date = dateOf(v.Module)
		} else if m := releaseDateRE.FindStringSubmatch(v.Release); m != nil {
			v.Date = m[1]
		}
		if v.Date != c.date || v.NeedsNetnsWorkaround() != c.workaround || v.Older() != c.older {
			t.Errorf("%s: date %q workaround %v older %v, want %q %v %v", v, v.Date, v.NeedsNetnsWorkaround(), v.Older(), c.date, c.workaround, c.older)
		}
	}
}

// TestReadVersionStamped: a runsc built from a copy of the module (build information
// "(devel)") with the module version stamped in, as scripts/install-deps.sh builds it, is
// the pinned build; other --version answers keep their release date or none.
func TestReadVersionStamped(t *testing.T) {
	for _, c := range []struct {
		says   string
		want   Version
		pinned bool
	}{
		{"runsc version " + PinnedVersion + "\nspec: 1.2.0\n", Version{Module: PinnedVersion, Date: dateOf(PinnedVersion)}, true},
		{"runsc version 0.0~20240729.0\nspec: 1.0.2-dev\n", Version{Release: "0.0~20240729.0", Date: "20240729"}, false},
		{"runsc version VERSION_MISSING\nspec: 1.2.0\n", Version{Release: "VERSION_MISSING"}, false},
	} {
		fake := filepath.Join(t.TempDir(), "runsc")
		if err := os.WriteFile(fake, []byte("#!/bin/sh\nprintf '"+strings.ReplaceAll(c.says, "\n", "\\n")+"'\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		v, err := ReadVersion(context.Background(), fake)
		v.Path = ""
		if err != nil || v != c.want || v.Pinned() != c.pinned {
			t.Errorf("%q: %+v (pinned %v), %v; want %+v (pinned %v)", c.says, v, v.Pinned(), err, c.want, c.pinned)
		}
	}
}

// runscBuilds are the builds the netns test runs: the pinned one on PATH and Debian's,
// where installed.
var runscBuilds = []struct {
	path       string
	pinned     bool
	workaround bool
}{
	{"/usr/local/bin/runsc", true, false},
	{"/usr/bin/runsc", false, true},
}

// TestNetnsWorkaroundByVersion: the driver reads each build's version and uses the gVisor
// #10704 workaround only with a build that needs it, and a run with --network=sandbox in
// a network namespace of its own works with each. For Debian's build it also checks that
// the workaround is still needed there (without it, runsc refuses the namespace).
func TestNetnsWorkaroundByVersion(t *testing.T) {
	testenv.NeedsRoot(t, "runsc run and ip netns need root")
	ran := 0
	for _, b := range runscBuilds {
		if _, err := os.Stat(b.path); err != nil {
			if b.pinned {
				testenv.Missing(t, b.path+" is not installed: run scripts/install-deps.sh")
			}
			continue
		}
		t.Run(filepath.Base(filepath.Dir(filepath.Dir(b.path)))+"-runsc", func(t *testing.T) {
			d, err := New(Config{Runsc: b.path, Root: t.TempDir(), CgroupParent: "/warren-test-gvisor"})
			if err != nil {
				t.Fatal(err)
			}
			if d.version.Pinned() != b.pinned || d.netnsWorkaround != b.workaround {
				t.Fatalf("%s: version %s (pinned %v), workaround %v; want pinned %v, workaround %v",
					b.path, d.version, d.version.Pinned(), d.netnsWorkaround, b.pinned, b.workaround)
			}
			if out, err := echoInNetns(t, d); err != nil || !strings.Contains(out, "netns-ok") {
				t.Fatalf("run in a network namespace: %v: %s", err, out)
			}
			if m, _ := os.ReadFile("/proc/mounts"); strings.Contains(string(m), d.cfg.Root+"/") {
				t.Errorf("a mount is left under runsc's root %s (the gofers' shared network namespace?)", d.cfg.Root)
			}
			if b.workaround {
				d.netnsWorkaround = false
				if out, err := echoInNetns(t, d); err == nil || !strings.Contains(out, "root network namespace") {
					t.Errorf("without the workaround %s ran (or failed otherwise): %v: %s", b.path, err, out)
				}
			}
		})
		ran++
	}
	t.Logf("%d runsc builds checked", ran)
}

// echoInNetns runs /bin/echo under d with --network=sandbox in a new network namespace
// (loopback only) and removes everything again.
func echoInNetns(t *testing.T, d *Driver) (string, error) {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	id := "warren-test-netns-" + hex.EncodeToString(rnd[:])
	ns := "wt" + hex.EncodeToString(rnd[:])
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer func() {
		_, _ = d.runsc(context.Background(), "delete", "-force", id)
		_ = exec.Command("ip", "netns", "delete", ns).Run()
		if left, _ := filepath.Glob("/sys/fs/cgroup/*/" + id); len(left) > 0 {
			for _, c := range left {
				_ = os.Remove(c)
			}
		}
	}()
	bundle := t.TempDir()
	spec := map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{"user": map[string]any{"uid": 0, "gid": 0}, "args": []string{"/bin/echo", "netns-ok"},
			"env": []string{"PATH=/bin"}, "cwd": "/"},
		"root": map[string]any{"path": miniRootFS(t), "readonly": true},
		"mounts": []map[string]any{
			{"destination": "/proc", "type": "proc", "source": "proc"},
		},
		"linux": map[string]any{"namespaces": []map[string]any{{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
			{"type": "network", "path": "/var/run/netns/" + ns}}},
	}
	js, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), js, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := d.command(ctx, true, "run", "--bundle", bundle, id).CombinedOutput()
	return string(out), err
}

// miniRootFS is a root file system with /bin/echo and its libraries.
func miniRootFS(t *testing.T) string {
	t.Helper()
	echo, err := filepath.EvalSymlinks("/bin/echo")
	if err != nil {
		t.Fatal(err)
	}
	ldd, err := exec.Command("ldd", echo).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", echo, err)
	}
	root := t.TempDir()
	files := []string{"/bin/echo"}
	for _, m := range regexp.MustCompile(`(/\S+) \(0x`).FindAllSubmatch(ldd, -1) {
		files = append(files, string(m[1]))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"proc", "dev", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestWaitForBuild: no lock file or a free lock returns at once; a held lock (what
// scripts/install-deps.sh holds while it builds runsc) waits, says so once, and returns
// when it is released or the context ends.
func TestWaitForBuild(t *testing.T) {
	dir := t.TempDir()
	called := 0
	waiting := func() { called++ }
	if err := WaitForBuild(context.Background(), dir, waiting); err != nil || called != 0 {
		t.Fatalf("no lock file: %v, waiting called %d times", err, called)
	}
	f, err := os.Create(filepath.Join(dir, BuildLockName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := WaitForBuild(context.Background(), dir, waiting); err != nil || called != 0 {
		t.Fatalf("free lock: %v, waiting called %d times", err, called)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if err := WaitForBuild(ctx, dir, waiting); err != context.DeadlineExceeded || called != 1 {
		t.Fatalf("held lock, context ends: %v, waiting called %d times", err, called)
	}
	time.AfterFunc(600*time.Millisecond, func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) })
	start := time.Now()
	if err := WaitForBuild(context.Background(), dir, waiting); err != nil || called != 2 || time.Since(start) < 500*time.Millisecond {
		t.Fatalf("held lock, released: %v after %v, waiting called %d times", err, time.Since(start), called)
	}
	// A failed background build is reported with what its marker says to do.
	if err := os.WriteFile(filepath.Join(dir, BuildFailedName), []byte("see build.log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WaitForBuild(context.Background(), dir, nil); !errors.Is(err, ErrBuildFailed) || !strings.HasSuffix(err.Error(), ": see build.log") {
		t.Fatalf("failed build: %v", err)
	}
}
