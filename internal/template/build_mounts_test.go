package template

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/testenv"
)

// A build step runs in a private copy of the host's mounts; the ones below HideMounts
// (a node's sandbox directories, spaces in their names included) are gone from it
// before the step starts, so that the step does not keep a sandbox's disk mounted, and
// the host keeps them. Without HideMounts the step holds them: the test can fail.
func TestBuildStepHidesSandboxMounts(t *testing.T) {
	testenv.NeedsRoot(t, "mounting a tmpfs and running a step in a mount namespace")
	dir := t.TempDir()
	sandboxes := filepath.Join(dir, "sand boxes")
	var mounted []string
	for _, sub := range []string{"a/disk", "b/disk", "b/disk/inner"} {
		m := filepath.Join(sandboxes, sub)
		if err := os.MkdirAll(m, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", m, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatalf("mounting a tmpfs on %s: %v", m, err)
		}
		mounted = append(mounted, m)
	}
	keep := filepath.Join(dir, "keep")
	if err := os.MkdirAll(keep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", keep, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	mounted = append(mounted, keep)
	t.Cleanup(func() {
		for i := len(mounted) - 1; i >= 0; i-- {
			_ = syscall.Unmount(mounted[i], syscall.MNT_DETACH)
		}
	})

	seen := func(hide []string) string {
		var out bytes.Buffer
		p := newProgress(&out, "mounts")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := execRun(ctx, p, hide, "cat", "/proc/self/mountinfo"); err != nil {
			t.Fatalf("a step with HideMounts %q: %v\n%s", hide, err, out.String())
		}
		p.flush()
		return out.String()
	}
	escaped := strings.ReplaceAll(sandboxes, " ", `\040`)
	if got := seen(nil); strings.Count(got, escaped+"/") != 3 {
		t.Errorf("without HideMounts the step sees %d sandbox mounts, want 3 (its copy of the host's):\n%s", strings.Count(got, escaped+"/"), got)
	}
	got := seen([]string{sandboxes + "/"})
	if n := strings.Count(got, escaped+"/"); n != 0 {
		t.Errorf("with HideMounts the step still holds %d sandbox mounts:\n%s", n, got)
	}
	if !strings.Contains(got, " "+keep+" ") {
		t.Errorf("with HideMounts the step lost a mount outside the hidden directory (%s):\n%s", keep, got)
	}
	host, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(host), escaped+"/"); n != 3 {
		t.Errorf("after the step the host has %d of its 3 sandbox mounts", n)
	}
}
