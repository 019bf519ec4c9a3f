package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/testenv"
)

func needRoot(t testing.TB) {
	t.Helper()
	testenv.NeedsRoot(t, "attach loop devices and mount file systems")
}

// teardownDir does what Node.Stop does to a sandbox directory's file systems.
func teardownDir(t testing.TB, dir string) {
	t.Helper()
	if err := unmountAll(dir); err != nil {
		t.Error(err)
	}
	if err := detachLoops(dir); err != nil {
		t.Error(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Error(err)
	}
}

// TestDiskLimit mounts a real size-limited writable layer under an overlay: writing
// past the size fails with ENOSPC, the lower layer is untouched, and the teardown
// leaves no mount, loop device or file.
func TestDiskLimit(t *testing.T) {
	needRoot(t)
	lower, nodeDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(lower, "shared"), []byte("template"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &diskImages{dir: filepath.Join(nodeDir, ".disks")}
	dir := filepath.Join(nodeDir, "sbx")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mnt, err := d.mountDisk(context.Background(), dir, 32, false)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := mountOverlay(lower, mnt, dir, 100000, 100000)
	if err != nil {
		teardownDir(t, dir)
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(merged, &st); err != nil || st.Uid != 100000 {
		t.Errorf("merged root owner %d (%v), want the mapped root 100000", st.Uid, err)
	}
	f, err := os.Create(filepath.Join(merged, "big"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{1}, 1<<20)
	var written int
	for ; written < 64; written++ {
		if _, err = f.Write(chunk); err != nil {
			break
		}
	}
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if !errors.Is(err, unix.ENOSPC) {
		t.Errorf("writing 64 MB on a 32 MB disk: %v after %d MB, want ENOSPC", err, written)
	}
	if b, _ := os.ReadFile(filepath.Join(lower, "shared")); string(b) != "template" {
		t.Errorf("lower layer changed: %q", b)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(merged, &sfs); err != nil || int64(sfs.Blocks)*sfs.Bsize > 32<<20 {
		t.Errorf("the sandbox sees %d bytes of disk (%v), want at most 32 MB", int64(sfs.Blocks)*sfs.Bsize, err)
	}
	teardownDir(t, dir)
	if m, _ := mountsUnder(dir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(LoopDevicesUnder(nodeDir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if devs := LoopDevicesUnder(nodeDir); len(devs) > 0 {
		t.Errorf("loop devices left: %v", devs)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("sandbox directory left: %v", err)
	}
}

func TestSparseCopy(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	// data, a 8 MB hole, data, and a trailing hole.
	f.WriteAt([]byte("head"), 0)
	f.WriteAt([]byte("middle"), 8<<20)
	f.Truncate(32 << 20)
	f.Close()
	if err := sparseCopy(src, dst); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(dst)
	if !bytes.Equal(a, b) {
		t.Fatal("copy differs from the source")
	}
	var st unix.Stat_t
	if err := unix.Stat(dst, &st); err != nil || st.Blocks*512 > 1<<20 {
		t.Errorf("copy uses %d bytes on disk; holes were filled", st.Blocks*512)
	}
}

// BenchmarkRootFS measures what a sandbox's root filesystem costs to set up and tear
// down, with and without a disk limit (the formatted image is made once, before the
// timer starts, as a running node has it).
func BenchmarkRootFS(b *testing.B) {
	needRoot(b)
	lower := b.TempDir()
	for _, size := range []int64{0, 2048} {
		name := "plain"
		if size > 0 {
			name = "disk-2048MB"
		}
		b.Run(name, func(b *testing.B) {
			nodeDir := b.TempDir()
			d := &diskImages{dir: filepath.Join(nodeDir, ".disks")}
			if size > 0 {
				if _, err := d.formatted(context.Background(), size); err != nil {
					b.Fatal(err)
				}
			}
			var setup time.Duration
			for i := 0; i < b.N; i++ {
				dir := filepath.Join(nodeDir, "sbx")
				t0 := time.Now()
				if err := os.Mkdir(dir, 0o700); err != nil {
					b.Fatal(err)
				}
				layer := dir
				if size > 0 {
					mnt, err := d.mountDisk(context.Background(), dir, size, false)
					if err != nil {
						b.Fatal(err)
					}
					layer = mnt
				}
				if _, err := mountOverlay(lower, layer, dir, 0, 0); err != nil {
					b.Fatal(err)
				}
				setup += time.Since(t0)
				teardownDir(b, dir)
			}
			b.ReportMetric(float64(setup.Microseconds())/float64(b.N)/1000, "setup-ms/op")
		})
	}
}

// mountHolders names a process whose mount namespace, copied while a sandbox's disk was
// mounted, still holds it after the node unmounted it: the reason a paused sandbox's loop
// device can stay attached.
func TestMountHolders(t *testing.T) {
	testenv.NeedsRoot(t, "mounting a tmpfs and copying the mount namespace")
	unshare := testenv.NeedsTool(t, "unshare")
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk")
	if err := os.MkdirAll(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", disk, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	mounted := true
	defer func() {
		if mounted {
			_ = syscall.Unmount(disk, syscall.MNT_DETACH)
		}
	}()
	if got := mountHolders(dir); len(got) != 0 {
		t.Fatalf("before any copy: holders %v, want none", got)
	}
	// A private copy of the namespace, as a build step gets: it keeps the mount.
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	want := fmt.Sprintf("pid %d (sleep)", cmd.Process.Pid)
	var got []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = mountHolders(dir); slices.Contains(got, want) {
			break
		}
	}
	if err := syscall.Unmount(disk, 0); err != nil {
		t.Fatal(err)
	}
	mounted = false
	if !slices.Contains(got, want) {
		t.Errorf("holders %v, want %q among them", got, want)
	}
	if got := mountHolders(dir); !slices.Contains(got, want) {
		t.Errorf("after the node's unmount: holders %v, want %q still", got, want)
	}
}
