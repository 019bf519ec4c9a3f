package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/domain"
)

// mountOverlay mounts an overlay of lower (read-only, shared by every sandbox of the
// template) with its upper and work directories in layer, at dir/rootfs. layer is dir
// itself, or the sandbox's size-limited disk mounted in dir; either way the upper layer
// is the sandbox's own and disappears with dir. rootUID and rootGID own the upper
// directory (they are the owners of the merged "/"): the host ids of the sandbox's root.
func mountOverlay(lower, layer, dir string, rootUID, rootGID int) (string, error) {
	return mountOverlayStack([]string{lower}, layer, dir, rootUID, rootGID, false)
}

// maxOverlayOptions bounds the overlay's mount options: mount(2) takes one page.
const maxOverlayOptions = 4000

// mountOverlayStack is mountOverlay on a stack of read-only layers, topmost first (the
// last is the template's root filesystem, whose "/" the upper directory copies). With
// layered, the upper directory is kept as a layer of its own: overlayfs must then
// write it self-contained, in the plain format (whiteouts and opaque directories, no
// redirects to or metadata-only copies of lower files), whatever the host's defaults.
func mountOverlayStack(lowers []string, layer, dir string, rootUID, rootGID int, layered bool) (string, error) {
	for _, l := range lowers {
		if l == "" || strings.ContainsAny(l, ":,\\") {
			return "", fmt.Errorf("overlay layer %q: a layer's path must not be empty or hold ':', ',' or '\\'", l)
		}
	}
	upper, work, merged := filepath.Join(layer, "upper"), filepath.Join(layer, "work"), filepath.Join(dir, "rootfs")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lowers, ":"), upper, work)
	if layered {
		opts += ",redirect_dir=off,metacopy=off"
	}
	if len(opts) > maxOverlayOptions {
		return "", domain.Errorf(domain.KindInvalid, "%d layers do not fit in one overlay mount (%d bytes of options, at most %d): merge steps (fewer RUN and COPY steps)", len(lowers), len(opts), maxOverlayOptions)
	}
	for _, d := range []string{upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	if fi, err := os.Stat(lowers[len(lowers)-1]); err == nil {
		_ = os.Chmod(upper, fi.Mode().Perm())
	}
	if err := os.Lchown(upper, rootUID, rootGID); err != nil {
		return "", err
	}
	// nosuid, nodev: a set-uid file or device node a tenant writes into its layer means
	// nothing to the host (the sandbox's own /dev is the runtime's).
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return "", fmt.Errorf("mounting overlay root filesystem (is overlayfs available? modprobe overlay): %w", err)
	}
	return merged, nil
}

// unmountAll unmounts everything mounted at or below dir, deepest first. A mount still
// busy after a short wait (a runtime process not yet reaped) is detached lazily: it goes
// when its last user does.
func unmountAll(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := unmount(mounts[i]); err != nil {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", mounts[i], err))
		}
	}
	return errors.Join(errs...)
}

func unmount(path string) error {
	for try := 0; try < 20; try++ {
		err := unix.Unmount(path, 0)
		if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// mountsUnder lists mount points at or below dir from /proc/self/mountinfo, in mount order.
func mountsUnder(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, nil
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
