package doctor

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/testenv"
)

// TestRunReal checks this machine, including real runsc and runc runs in a minimal root
// filesystem, and that nothing is left behind (mounts, cgroups, temporary directories,
// runsc and runc processes).
func TestRunReal(t *testing.T) {
	testenv.NeedsRoot(t, "the checks mount an overlay and run a gVisor sandbox")
	testenv.NeedsTool(t, "runsc")
	before := leakSnapshot(t)
	r := Run(context.Background(), Options{DataDir: t.TempDir(), MeasureRuntimes: true, RootFS: miniRootFS(t)})
	var text bytes.Buffer
	r.WriteText(&text)
	t.Log("\n" + text.String())

	if got, want := names(r), measuredChecks; !slices.Equal(got, want) {
		t.Errorf("checks = %v, want %v", got, want)
	}
	for _, c := range r.Checks {
		if c.Status != StatusOK && c.Fix == "" {
			t.Errorf("%s is %s without a fix", c.Name, c.Status)
		}
	}
	mustOK := []string{CheckRoot, CheckRunsc, CheckRunscRun, CheckRunscCheckpoint}
	if _, err := exec.LookPath("runc"); err == nil {
		mustOK = append(mustOK, CheckRunc, CheckRuncRun)
		if r.RuncRunMillis <= 0 || !slices.Contains(r.Runtimes, RuntimeRunc) {
			t.Errorf("runtimes %v, runc run %v ms", r.Runtimes, r.RuncRunMillis)
		}
	}
	if r.Recommended.Runtime != r.Runtimes[0] || r.Recommended.Env["WARREN_RUNTIME"] != r.Runtimes[0] {
		t.Errorf("recommended %+v for runtimes %v", r.Recommended, r.Runtimes)
	}
	for _, name := range mustOK {
		// A measured run rated slow is a warning about this machine's load at the time,
		// not a failure: performance is never asserted here (other suites share 2 cores).
		if c, _ := r.Check(name); c.Status != StatusOK && !(c.Status == StatusWarn && strings.HasSuffix(c.Detail, "(slow)")) {
			t.Errorf("%s: %s %s", name, c.Status, c.Detail)
		}
	}
	if !r.OK() || !slices.Contains(r.Runtimes, "gvisor") || r.RunscRunMillis <= 0 {
		t.Errorf("runtimes %v, runsc run %v ms", r.Runtimes, r.RunscRunMillis)
	}
	if after := leakSnapshot(t); !slices.Equal(before, after) {
		t.Errorf("left behind: before %v, after %v", before, after)
	}
}

// TestRuncRunReal times a real runc run of /bin/echo, as warren doctor does, and checks
// that the container, its state, its cgroups and its bundle are gone afterwards.
func TestRuncRunReal(t *testing.T) {
	testenv.NeedsRoot(t, "runc creates namespaces and cgroups")
	runc := testenv.NeedsTool(t, "runc")
	rootfs := miniRootFS(t)
	before := leakSnapshot(t)
	d, err := runContainer(context.Background(), runc, rootfs)
	if err != nil {
		t.Fatalf("runc run: %v", err)
	}
	t.Logf("runc run of /bin/echo: %v (%s)", d, rating(d))
	if d <= 0 || d >= sandboxTimeout {
		t.Errorf("measured %v", d)
	}
	if after := leakSnapshot(t); !slices.Equal(before, after) {
		t.Errorf("left behind: before %v, after %v", before, after)
	}
	// A rootfs without /bin/echo fails with a reason, and leaves nothing either.
	if _, err := runContainer(context.Background(), runc, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no /bin/echo") {
		t.Errorf("empty rootfs: %v", err)
	}
}

// TestTryCheckpointReal checkpoints and restores a real runsc sandbox, as warren doctor
// does, and checks that both sandboxes, their state, cgroups, the null network namespace
// mount and the temporary directory are gone afterwards.
func TestTryCheckpointReal(t *testing.T) {
	testenv.NeedsRoot(t, "runsc needs root")
	runsc := testenv.NeedsTool(t, "runsc")
	rootfs := miniRootFS(t)
	before := leakSnapshot(t)
	p, err := tryCheckpoint(context.Background(), runsc, rootfs)
	if err != nil {
		t.Fatalf("checkpoint and restore with %s: %v", runsc, err)
	}
	t.Logf("%s: %+v", runsc, p)
	if p.StartMillis <= 0 || p.CheckpointMillis <= 0 || p.RestoreMillis <= 0 || p.AnswerMillis <= 0 || p.ImageBytes <= 0 {
		t.Errorf("probe %+v", p)
	}
	if after := leakSnapshot(t); !slices.Equal(before, after) {
		t.Errorf("left behind: before %v, after %v", before, after)
	}
	// A rootfs without /bin/sleep fails with a reason, and leaves nothing either.
	if _, err := tryCheckpoint(context.Background(), runsc, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no /bin/") {
		t.Errorf("empty rootfs: %v", err)
	}
	if after := leakSnapshot(t); !slices.Equal(before, after) {
		t.Errorf("left behind: before %v, after %v", before, after)
	}
}

// leakSnapshot lists what a doctor run could leak.
func leakSnapshot(t *testing.T) []string {
	t.Helper()
	var out []string
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, "warren-doctor") {
			out = append(out, "mount: "+l)
		}
	}
	for _, pat := range []string{"/sys/fs/cgroup/*/warren-doctor-*", "/sys/fs/cgroup/warren-doctor-*", filepath.Join(os.TempDir(), "warren-doctor-*")} {
		m, _ := filepath.Glob(pat)
		out = append(out, m...)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte("warren-doctor-")) {
			out = append(out, "process: "+p)
		}
	}
	slices.Sort(out)
	return out
}

// miniRootFS builds a root filesystem holding only /bin/echo, /bin/sleep and their
// shared libraries.
func miniRootFS(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	var files []string
	for _, bin := range []string{"/bin/echo", "/bin/sleep"} {
		p, err := filepath.EvalSymlinks(bin)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, bin)
		ldd, err := exec.Command("ldd", p).Output()
		if err != nil {
			t.Fatalf("ldd %s: %v", p, err)
		}
		for _, m := range regexp.MustCompile(`(/\S+) \(0x`).FindAllSubmatch(ldd, -1) {
			files = append(files, string(m[1]))
		}
	}
	for _, f := range files {
		copyFile(t, f, filepath.Join(root, f))
	}
	for _, d := range []string{"proc", "dev", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src) // follows symlinks: we want the content
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
