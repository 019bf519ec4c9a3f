package doctor

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/warren-sh/warren/internal/runtime/gvisor"
)

// Host is how the checks see the system. Every field may be nil, meaning the real
// implementation; tests set the fields they fake.
type Host struct {
	// Geteuid returns the effective user ID.
	Geteuid func() int
	// ReadFile reads a file such as /proc/cpuinfo.
	ReadFile func(name string) ([]byte, error)
	// Stat stats a path, following symlinks.
	Stat func(name string) (fs.FileInfo, error)
	// LookPath finds an executable in PATH.
	LookPath func(file string) (string, error)
	// Command runs a command and returns its combined output.
	Command func(ctx context.Context, name string, args ...string) ([]byte, error)
	// OpenDevice opens a device read-write and closes it again.
	OpenDevice func(name string) error
	// DiskFree returns the bytes available on the file system holding path.
	DiskFree func(path string) (uint64, error)
	// TryOverlay mounts an overlay file system in a temporary directory below dir,
	// writes through it, and unmounts and removes everything again.
	TryOverlay func(ctx context.Context, dir string) error
	// RunSandbox runs /bin/echo with runsc in rootfs and returns how long the run took.
	RunSandbox func(ctx context.Context, runsc, rootfs string) (time.Duration, error)
	// RunContainer runs /bin/echo with runc in rootfs and returns how long the run took.
	RunContainer func(ctx context.Context, runc, rootfs string) (time.Duration, error)
	// RunscVersion reads a runsc binary's version (Go build information, else --version).
	RunscVersion func(ctx context.Context, runsc string) (gvisor.Version, error)
	// TryCheckpoint starts a sandbox with runsc in rootfs, checkpoints it, restores it
	// and checks that it answers, removing everything again.
	TryCheckpoint func(ctx context.Context, runsc, rootfs string) (CheckpointProbe, error)
}

func (h Host) withDefaults() Host {
	if h.Geteuid == nil {
		h.Geteuid = os.Geteuid
	}
	if h.ReadFile == nil {
		h.ReadFile = os.ReadFile
	}
	if h.Stat == nil {
		h.Stat = os.Stat
	}
	if h.LookPath == nil {
		h.LookPath = exec.LookPath
	}
	if h.Command == nil {
		h.Command = runCommand
	}
	if h.OpenDevice == nil {
		h.OpenDevice = openDevice
	}
	if h.DiskFree == nil {
		h.DiskFree = diskFree
	}
	if h.TryOverlay == nil {
		h.TryOverlay = tryOverlay
	}
	if h.RunSandbox == nil {
		h.RunSandbox = runSandbox
	}
	if h.RunContainer == nil {
		h.RunContainer = runContainer
	}
	if h.RunscVersion == nil {
		h.RunscVersion = gvisor.ReadVersion
	}
	if h.TryCheckpoint == nil {
		h.TryCheckpoint = tryCheckpoint
	}
	return h
}

// commandTimeout bounds every probe command, so a hung tool cannot hang the report.
const commandTimeout = 15 * time.Second

func runCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	return cmd.CombinedOutput()
}

func openDevice(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

func diskFree(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// tryOverlay proves that overlayfs mounts work where Warren will use them.
func tryOverlay(_ context.Context, dir string) (err error) {
	tmp, err := os.MkdirTemp(dir, ".warren-doctor-overlay-")
	if err != nil {
		return err
	}
	defer func() {
		if rmErr := os.RemoveAll(tmp); rmErr != nil && err == nil {
			err = rmErr
		}
	}()
	lower, upper, work, merged := filepath.Join(tmp, "lower"), filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"), filepath.Join(tmp, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "lower"), []byte("x"), 0o644); err != nil {
		return err
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := syscall.Mount("overlay", merged, "overlay", 0, data); err != nil {
		return fmt.Errorf("mount -t overlay: %w", err)
	}
	// Unmount before the deferred RemoveAll runs: never delete through a mount.
	defer func() {
		if uErr := syscall.Unmount(merged, 0); uErr != nil {
			uErr = syscall.Unmount(merged, syscall.MNT_DETACH)
			if err == nil && uErr != nil {
				err = fmt.Errorf("umount %s: %w", merged, uErr)
			}
		}
	}()
	if _, err := os.Stat(filepath.Join(merged, "lower")); err != nil {
		return fmt.Errorf("lower layer not visible through the overlay: %w", err)
	}
	if err := os.WriteFile(filepath.Join(merged, "upper"), []byte("y"), 0o644); err != nil {
		return fmt.Errorf("writing through the overlay: %w", err)
	}
	if _, err := os.Stat(filepath.Join(upper, "upper")); err != nil {
		return fmt.Errorf("write did not reach the upper layer: %w", err)
	}
	return nil
}

// existingDir returns dir or its nearest existing ancestor.
func existingDir(stat func(string) (fs.FileInfo, error), dir string) string {
	dir = filepath.Clean(dir)
	for {
		if fi, err := stat(dir); err == nil && fi.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}
