package template

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBuildBaseReal builds the real base template with debootstrap from deb.debian.org
// into the shared cache (WARREN_TEMPLATE_CACHE, default /var/cache/warren/templates),
// or finds it already built there, and checks its content. Needs root and the Debian
// mirror; takes one to two minutes when the cache is cold.
func TestBuildBaseReal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a real Debian root filesystem with debootstrap (1-2 min); skipped under -short")
	}
	b := sharedBuilder(t)
	cache := b.CacheDir
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	rootfs, err := b.Ensure(ctx, Base())
	if err != nil {
		t.Fatal(err)
	}
	m, err := b.Marker(Base())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rootfs %s ready after %v (built at %v in %.0fs, %d MB)", rootfs, time.Since(start).Round(time.Millisecond), m.BuiltAt, m.BuildSeconds, m.SizeBytes/1e6)

	for _, bin := range []string{"usr/bin/python3", "usr/bin/bash", "usr/bin/curl", "usr/bin/git", "usr/bin/ps", "usr/bin/ip", "usr/bin/getent"} {
		fi, err := os.Stat(filepath.Join(rootfs, bin))
		if err != nil {
			t.Errorf("%s missing: %v", bin, err)
		} else if fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable (%v)", bin, fi.Mode())
		}
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "etc/ssl/certs/ca-certificates.crt")); err != nil || fi.Size() == 0 {
		t.Errorf("CA bundle missing or empty: %v", err)
	}

	passwd := readLines(t, filepath.Join(rootfs, "etc/passwd"))
	found := false
	for _, l := range passwd {
		if strings.HasPrefix(l, "user:") {
			found = true
			if f := strings.Split(l, ":"); len(f) != 7 || f[2] != "1000" || f[3] != "1000" || f[5] != "/home/user" || f[6] != "/bin/bash" {
				t.Errorf("passwd entry %q, want uid/gid 1000, home /home/user, shell /bin/bash", l)
			}
		}
	}
	if !found {
		t.Error("user \"user\" missing from /etc/passwd")
	}
	wantOwner(t, filepath.Join(rootfs, "home/user"), 1000, true)
	wantOwner(t, filepath.Join(rootfs, ".warren"), 0, true)

	if fi, err := os.Lstat(filepath.Join(rootfs, "etc/resolv.conf")); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		t.Errorf("/etc/resolv.conf must be an empty regular file: %v %v", fi, err)
	}
	// A login shell's /etc/profile asks bash for its uid instead of running id.
	if b, _ := os.ReadFile(filepath.Join(rootfs, "etc/profile")); !strings.Contains(string(b), `"${EUID:-$(id -u)}"`) || strings.Contains(string(b), `[ "$(id -u)"`) {
		t.Errorf("/etc/profile still runs id for every login shell:\n%s", b)
	}
	if out, err := exec.Command("chroot", rootfs, "/bin/bash", "-l", "-c", `echo "$PATH"`).CombinedOutput(); err != nil || !strings.Contains(string(out), "/usr/local/sbin") {
		t.Errorf("root's login shell PATH = %q (%v), want the one with the sbin directories", out, err)
	}
	if out, err := exec.Command("chroot", "--userspec=1000:1000", rootfs, "/bin/sh", "-l", "-c", `echo "$PATH"`).CombinedOutput(); err != nil || strings.Contains(string(out), "sbin") {
		t.Errorf("a user's sh login PATH = %q (%v), want the one without sbin", out, err)
	}
	hosts, _ := os.ReadFile(filepath.Join(rootfs, "etc/hosts"))
	if h, _ := os.Hostname(); !strings.Contains(string(hosts), "localhost") || (h != "localhost" && strings.Contains(string(hosts), h)) {
		t.Errorf("/etc/hosts must list localhost and not the build host:\n%s", hosts)
	}
	if ents, _ := os.ReadDir(filepath.Join(rootfs, "var/lib/apt/lists")); len(ents) > 1 {
		t.Errorf("apt lists not cleaned: %d entries", len(ents))
	}
	if mounts, err := mountsUnder(filepath.Dir(rootfs)); err != nil || len(mounts) > 0 {
		t.Errorf("mounts left inside the template: %v %v", mounts, err)
	}
	if stale, _ := filepath.Glob(filepath.Join(cache, tempPrefix+Base().ID()+"-*")); len(stale) > 0 {
		t.Errorf("temporary build directories left: %v", stale)
	}

	// Once built, Ensure is a cache hit.
	start = time.Now()
	again, err := b.Ensure(ctx, Base())
	if err != nil || again != rootfs {
		t.Fatalf("second Ensure = %q, %v; want %q", again, err, rootfs)
	}
	if d := time.Since(start); d > 10*time.Millisecond {
		t.Errorf("cached Ensure took %v, want < 10ms", d)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func wantOwner(t *testing.T, path string, uid uint32, dir bool) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid {
		t.Errorf("%s owned by uid %d, want %d", path, st.Uid, uid)
	}
	if fi.IsDir() != dir {
		t.Errorf("%s: is dir = %v, want %v", path, fi.IsDir(), dir)
	}
}

// TestBuildFailureReal runs the real debootstrap against a mirror that refuses
// connections (loopback) and checks the error and the cleanup.
func TestBuildFailureReal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs debootstrap; skipped under -short")
	}
	r := Base()
	r.Name = "unreachable"
	r.Mirror = "http://127.0.0.1:9/debian" // discard port: nothing listens
	var out strings.Builder
	b := &Builder{CacheDir: t.TempDir(), Progress: &out}
	_, err := b.Ensure(context.Background(), r)
	if err == nil {
		t.Fatal("build from an unreachable mirror succeeded")
	}
	t.Log(err)
	for _, want := range []string{"debootstrap failed (exit 1)", "check that 127.0.0.1:9 is reachable", "apt-get install debootstrap", "last lines of output:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if !strings.Contains(out.String(), "[template unreachable] ") {
		t.Errorf("debootstrap output not streamed:\n%s", out.String())
	}
	assertCleanCache(t, b.CacheDir)
}

// TestBuildCancelReal cancels a real build while debootstrap configures packages (when
// it has /proc and /sys mounted in the target) and checks that no mount, process or
// temporary directory survives.
func TestBuildCancelReal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs debootstrap (~20 s); skipped under -short")
	}
	r := Base()
	r.Name = "cancelled"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := &Builder{CacheDir: t.TempDir(), DebCache: DefaultDebCache, Progress: cancelOn{"configuring", cancel}}
	start := time.Now()
	_, err := b.Ensure(ctx, r)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("Ensure = %v, want an interrupted error", err)
	}
	t.Logf("cancelled after %v: %v", time.Since(start).Round(time.Second), err)
	assertCleanCache(t, b.CacheDir)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if data, err := os.ReadFile(p); err == nil && strings.Contains(string(data), b.CacheDir) {
			t.Errorf("process left running: %s: %q", p, data)
		}
	}
}

// cancelOn cancels when a progress line contains the word.
type cancelOn struct {
	word   string
	cancel context.CancelFunc
}

func (c cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "] "+c.word) {
		c.cancel()
	}
	return len(p), nil
}

func assertCleanCache(t *testing.T, cache string) {
	t.Helper()
	ents, _ := os.ReadDir(cache)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".lock-") {
			t.Errorf("left behind %s", e.Name())
		}
	}
	if mounts, err := mountsUnder(cache); err != nil || len(mounts) > 0 {
		t.Errorf("mounts left: %v %v", mounts, err)
	}
}

// sharedBuilder builds into the host's shared caches (WARREN_TEMPLATE_CACHE, default
// DefaultCacheDir, and DefaultDebCache), so real tests build each template once per host.
func sharedBuilder(t *testing.T) *Builder {
	cache := os.Getenv("WARREN_TEMPLATE_CACHE")
	if cache == "" {
		cache = DefaultCacheDir
	}
	return &Builder{
		CacheDir: cache,
		DebCache: DefaultDebCache,
		Log:      slog.New(slog.NewTextHandler(t.Output(), nil)),
		Progress: t.Output(),
	}
}
