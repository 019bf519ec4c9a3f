package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Disk limits. A sandbox with limits.disk_mb gets its writable layer on a filesystem of
// exactly that size: writing past it fails inside the sandbox with ENOSPC ("No space
// left on device"), df inside shows the limit, and the host's disk holds at most that
// much of it. The filesystem is an ext4 image (sparse file) on a loop device, mounted at
// <sandbox>/disk; the overlay's upper and work directories live on it.
//
// Cost: formatting an image (mkfs.ext4, ~10-25 ms) is paid once per size per node: the
// node keeps one freshly formatted image per size in <dir>/.disks and gives each
// sandbox a sparse copy of it (~1-4 MB of metadata: well under a millisecond), so a
// start pays only the copy, the loop attach and the mount.

// diskImages hands out formatted images.
type diskImages struct {
	dir string
	mu  sync.Mutex // serialises formatting
}

// formatted returns the node's formatted empty image of sizeMB, making it on first use.
func (d *diskImages) formatted(ctx context.Context, sizeMB int64) (string, error) {
	path := filepath.Join(d.dir, fmt.Sprintf("ext4-%dm.img", sizeMB))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		return "", err
	}
	if err := os.Truncate(tmp, sizeMB<<20); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	// No journal (the layer dies with the sandbox; nothing to recover), no reserved
	// blocks (root in the sandbox gets exactly the limit), lazy inode tables (formatting
	// writes only a few MB; see noinit_itable at mount).
	cmd := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-m", "0",
		"-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", "-L", "warren-upper", tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("formatting the sandbox disk image (is e2fsprogs installed? apt-get install e2fsprogs): %w: %s", err, bytes.TrimSpace(out))
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return path, nil
}

// mountDisk gives the sandbox in dir a filesystem of sizeMB at dir/disk and returns the
// mount point. The image is dir/disk.img, a copy of the formatted one, or with keep the
// one already there (a paused sandbox's); Stop's unmount detaches the loop device
// (auto-clear) and removing dir deletes the image.
func (d *diskImages) mountDisk(ctx context.Context, dir string, sizeMB int64, keep bool) (string, error) {
	img, mnt := filepath.Join(dir, "disk.img"), filepath.Join(dir, "disk")
	if !keep {
		golden, err := d.formatted(ctx, sizeMB)
		if err != nil {
			return "", err
		}
		if err := sparseCopy(golden, img); err != nil {
			return "", fmt.Errorf("copying the sandbox disk image: %w", err)
		}
	}
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return "", err
	}
	dev, loopf, err := attachLoop(img)
	if err != nil {
		return "", err
	}
	defer loopf.Close() // the mount holds the device from here on
	// noinit_itable: never zero the lazily formatted inode tables in the background.
	if err := unix.Mount(dev, mnt, "ext4", unix.MS_NODEV|unix.MS_NOSUID, "noinit_itable"); err != nil {
		_ = unix.IoctlSetInt(int(loopf.Fd()), unix.LOOP_CLR_FD, 0)
		return "", fmt.Errorf("mounting the sandbox disk image: %w", err)
	}
	return mnt, nil
}

// sparseCopy copies src to dst (created) without filling the holes.
func sparseCopy(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := out.Truncate(fi.Size()); err != nil {
		return err
	}
	sfd, dfd := int(in.Fd()), int(out.Fd())
	var pos int64
	for pos < fi.Size() {
		start, err := unix.Seek(sfd, pos, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return err
		}
		end, err := unix.Seek(sfd, start, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		for off := start; off < end; {
			roff, woff := off, off
			n, err := unix.CopyFileRange(sfd, &roff, dfd, &woff, int(end-off), 0)
			if err != nil {
				return err
			}
			if n == 0 {
				return io.ErrUnexpectedEOF
			}
			off += int64(n)
		}
		pos = end
	}
	return out.Close()
}

// attachLoop attaches image to a free loop device with auto-clear (the device detaches
// itself when its last user, the mount, goes) and returns its path and an open file
// that keeps it attached until the caller has mounted it.
func attachLoop(image string) (string, *os.File, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", nil, fmt.Errorf("opening /dev/loop-control (is the loop module loaded? modprobe loop): %w", err)
	}
	defer ctl.Close()
	imgf, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		return "", nil, err
	}
	defer imgf.Close()
	cfg := unix.LoopConfig{Fd: uint32(imgf.Fd())}
	cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
	copy(cfg.Info.File_name[:], image)
	// Another process may take the free device between the two calls: retry.
	for try := 0; try < 32; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("finding a free loop device: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		lf, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			return "", nil, fmt.Errorf("opening %s: %w", dev, err)
		}
		err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
		if err == nil {
			return dev, lf, nil
		}
		lf.Close()
		if !errors.Is(err, unix.EBUSY) {
			return "", nil, fmt.Errorf("attaching %s to %s: %w", image, dev, err)
		}
	}
	return "", nil, errors.New("attaching the sandbox disk image: no loop device stayed free")
}

// LoopDevicesUnder returns the loop devices whose backing file is at or below dir,
// including backing files already deleted.
func LoopDevicesUnder(dir string) []string {
	var out []string
	blocks, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, b := range blocks {
		raw, err := os.ReadFile(b)
		if err != nil {
			continue
		}
		f := strings.TrimSuffix(strings.TrimSpace(string(raw)), " (deleted)")
		if f == dir || strings.HasPrefix(f, dir+"/") {
			out = append(out, "/dev/"+filepath.Base(filepath.Dir(filepath.Dir(b))))
		}
	}
	return out
}

// mountHolders names up to four processes (pid and command) of other mount namespaces
// that still have a mount below dir: what keeps a sandbox's disk image attached after
// the node unmounted it (a namespace copied while it was mounted, such as a build
// step's).
func mountHolders(dir string) []string {
	own, _ := os.Readlink("/proc/self/ns/mnt")
	seen := map[string]bool{own: true}
	var out []string
	pids, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range pids {
		ns, err := os.Readlink(p + "/ns/mnt")
		if err != nil || seen[ns] {
			continue
		}
		seen[ns] = true
		info, err := os.ReadFile(p + "/mountinfo")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
				comm, _ := os.ReadFile(p + "/comm")
				out = append(out, fmt.Sprintf("pid %s (%s)", filepath.Base(p), strings.TrimSpace(string(comm))))
				break
			}
		}
		if len(out) == 4 {
			break
		}
	}
	return out
}

// detachLoops detaches the loop devices backed by files in dir that auto-clear has not
// released yet. A device still mounted somewhere only gets auto-clear (set again), and
// goes when that mount does.
func detachLoops(dir string) error {
	var errs []error
	for _, dev := range LoopDevicesUnder(dir) {
		f, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			continue // gone meanwhile
		}
		if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil && !errors.Is(err, unix.ENXIO) && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Errorf("detaching %s: %w", dev, err))
		}
		f.Close()
	}
	return errors.Join(errs...)
}

// allocated is the disk space fi's file holds (its blocks, not its apparent size).
func allocated(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
