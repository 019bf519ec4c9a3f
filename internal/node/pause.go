package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/runtime"
)

// Pause, resume and snapshots. A paused sandbox is its directory alone: the checkpoint
// image (memory and kernel state) in dir/image, its writable layer (dir/upper, or
// dir/disk.img with limits.disk_mb) and its console log. No process, mount, loop
// device or network namespace of it is left, so it costs disk only and survives a
// restart of the server (or the host). A snapshot is a directory holding an image
// and a copy of the writable layer as it was at the checkpoint; any number of new
// sandboxes start from it (StartFrom), each on its own copy of that layer.

// Checkpoints is the node's job of pausing, resuming and snapshotting sandboxes (a
// part of Node: its methods are the Node's).
type Checkpoints struct{ n *Node }

// imageDir is where a paused sandbox's checkpoint image lives in its directory, and
// lowerFile the file naming the template root filesystem it ran on.
const (
	imageDir  = "image"
	lowerFile = "lower.path"
)

// lowerOf is the lower directory of the overlay mounted at merged ("" if none).
func lowerOf(merged string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || unescapeMount(f[4]) != merged {
			continue
		}
		for _, opt := range strings.Split(f[len(f)-1], ",") {
			if v, ok := strings.CutPrefix(opt, "lowerdir="); ok {
				return unescapeMount(v)
			}
		}
	}
	return ""
}

// Layout of a snapshot directory.
const (
	snapshotImage = "image"
	snapshotUpper = "upper"
)

// cannotCheckpoint is the error for a sandbox whose runtime cannot checkpoint.
func cannotCheckpoint(drv runtime.Driver) error {
	return domain.Errorf(domain.KindConflict, "the %s runtime cannot pause, fork or snapshot a sandbox; create the sandbox with runtime gvisor for that", drv.Capabilities().Name)
}

// handleOf is sb's persisted runtime handle.
func handleOf(sb *domain.Sandbox) (runtime.Handle, error) {
	var h runtime.Handle
	if err := json.Unmarshal(sb.RuntimeHandle, &h); err != nil || h.ID == "" {
		return h, fmt.Errorf("sandbox %s has no runtime handle", sb.ID)
	}
	return h, nil
}

// checkpointer is the driver that runs sandbox sb, as a Checkpointer.
func (c *Checkpoints) checkpointer(sb *domain.Sandbox) (runtime.Handle, runtime.Checkpointer, error) {
	h, err := handleOf(sb)
	if err != nil {
		return h, nil, err
	}
	drv := c.n.driverOf(&h)
	cp, ok := drv.(runtime.Checkpointer)
	if !ok {
		return h, nil, cannotCheckpoint(drv)
	}
	return h, cp, nil
}

// Pause checkpoints the running sandbox sb into its directory and takes everything but
// that directory down: its processes exit, its network is removed (its address slot
// is free once Pause returns), its overlay and disk are unmounted. When the checkpoint
// fails the sandbox keeps running as before, and the error says why.
func (c *Checkpoints) Pause(ctx context.Context, sb *domain.Sandbox) error {
	h, cp, err := c.checkpointer(sb)
	if err != nil {
		return err
	}
	dir := c.n.sandboxDir(sb.ID)
	img := filepath.Join(dir, imageDir)
	// A previous pause's image was restored from already; this one replaces it.
	if err := os.RemoveAll(img); err != nil {
		return fmt.Errorf("removing the previous checkpoint image: %w", err)
	}
	t0 := time.Now()
	if err := cp.Checkpoint(ctx, h, img, false); err != nil {
		_ = os.RemoveAll(img)
		return fmt.Errorf("checkpointing sandbox %s: %w", sb.ID, err)
	}
	tSave := time.Since(t0)
	// The template may be rebuilt while the sandbox is paused: it resumes on the root
	// filesystem it ran on (its overlay's lower layer), which the node records here.
	if lower := lowerOf(filepath.Join(dir, "rootfs")); lower != "" {
		if err := os.WriteFile(filepath.Join(dir, lowerFile), []byte(lower), 0o600); err != nil {
			c.n.log.Error("recording the paused sandbox's template root filesystem", logkey.SandboxID, sb.ID, logkey.Err, err)
		}
	}
	// The sandbox is saved and gone: whatever of the rest cannot be taken down now is
	// logged, and Resume (or Stop) takes it down first.
	if err := c.release(ctx, sb.ID, sb.Slot, nil); err != nil {
		c.n.log.Error("releasing a paused sandbox", logkey.SandboxID, sb.ID, logkey.Err, err)
	}
	// The disk image's loop device clears itself when its last mount is gone, which the
	// kernel may finish a moment after the unmount (under load, after the test of ci14
	// had looked): wait for that, detaching what auto-clear leaves, so that a paused
	// sandbox holds nothing but its directory once Pause returns.
	if err := waitLoopsGone(ctx, dir, 5*time.Second); err != nil {
		c.n.log.Warn("a paused sandbox's disk image is still attached", logkey.SandboxID, sb.ID, logkey.Err, err)
	}
	c.n.log.Debug("sandbox paused", logkey.SandboxID, sb.ID, "checkpoint", tSave, "total", time.Since(t0))
	return nil
}

// Release takes down what a sandbox has on the node besides its directory: its
// runtime (every driver is asked by id when h is nil), network (slot -1: found by
// name) and mounts; a paused sandbox is left as Pause leaves it. It is for a resume
// that a server crash cut off.
func (c *Checkpoints) Release(ctx context.Context, id string, slot int, h *runtime.Handle) error {
	// A runsc restore the crashed server started outlives it: let it finish, or it
	// would bring the sandbox up again after it was taken down here.
	waitProcessesGone(ctx, id, "restore", 15*time.Second)
	var errs []error
	handle := runtime.Handle{ID: id}
	if h != nil {
		handle = *h
	}
	for _, d := range c.n.Drivers() {
		if h == nil || d == c.n.driverOf(h) {
			if err := d.Destroy(ctx, handle); err != nil {
				errs = append(errs, fmt.Errorf("destroying %s runtime: %w", d.Capabilities().Name, err))
			}
		}
	}
	return errors.Join(append(errs, c.release(ctx, id, slot, nil))...)
}

// release takes down a sandbox's network, mounts and loop devices, and keeps its
// directory. h, when given, is destroyed first.
func (c *Checkpoints) release(ctx context.Context, id string, slot int, h *runtime.Handle) error {
	var errs []error
	if h != nil {
		if err := c.n.driverOf(h).Destroy(ctx, *h); err != nil {
			errs = append(errs, fmt.Errorf("destroying runtime: %w", err))
		}
	}
	if err := detachNetwork(ctx, &c.n.cfg, id, slot); err != nil {
		errs = append(errs, fmt.Errorf("removing network: %w", err))
	}
	dir := c.n.sandboxDir(id)
	if err := unmountAll(dir); err != nil {
		errs = append(errs, err)
	}
	if err := detachLoops(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Resume restores the paused sandbox sb from its directory at address slot sb.Slot
// (the caller reserves a fresh one): its network is attached anew, its overlay
// mounted again on the same writable layer, and it is restored from its image. It
// returns the new handle and the sandbox's address. On error the sandbox's network
// and mounts are taken down again and its directory stays, image included: the caller
// keeps the image for inspection (KeepLost) and removes the rest (Stop).
func (c *Checkpoints) Resume(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template) (runtime.Handle, string, error) {
	img := filepath.Join(c.n.sandboxDir(sb.ID), imageDir)
	if _, err := os.Stat(filepath.Join(img, "checkpoint.img")); err != nil {
		return runtime.Handle{}, "", fmt.Errorf("sandbox %s has no checkpoint image to resume from: %w", sb.ID, err)
	}
	s := specOf(sb, tpl)
	s.Image, s.Layer = img, layerKeep
	if b, err := os.ReadFile(filepath.Join(c.n.sandboxDir(sb.ID), lowerFile)); err == nil {
		s.RootFS = string(b)
	}
	if _, err := os.Stat(s.RootFS); err != nil {
		return runtime.Handle{}, "", fmt.Errorf("the root filesystem sandbox %s ran on is gone (was its template removed?): %w", sb.ID, err)
	}
	// Whatever a failed pause or resume left goes first: mounts, network, and a
	// runtime a resume cut off by a server crash may still have brought up (its runsc
	// restore outlives the server).
	if err := c.Release(ctx, sb.ID, -1, nil); err != nil {
		return runtime.Handle{}, "", fmt.Errorf("clearing what is left of sandbox %s: %w", sb.ID, err)
	}
	// A mount a killed sandbox still used was detached lazily and holds the disk image
	// on its loop device until the last of its processes is gone: mounting the image
	// again before that would put two file systems on one image.
	if err := waitLoopsGone(ctx, c.n.sandboxDir(sb.ID), 15*time.Second); err != nil {
		return runtime.Handle{}, "", err
	}
	st, err := c.n.start(ctx, s)
	if err != nil {
		return runtime.Handle{}, "", err
	}
	return st.Handle, st.Address, nil
}

// waitProcessesGone waits up to timeout for the host processes whose command line
// holds both id and word to exit.
func waitProcessesGone(ctx context.Context, id, word string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		found := false
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, err := os.ReadFile(p)
			if err == nil && bytes.Contains(b, []byte(id)) && bytes.Contains(b, []byte("\x00"+word+"\x00")) {
				found = true
				break
			}
		}
		if !found {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLoopsGone waits up to timeout until no loop device is backed by a file in dir.
func waitLoopsGone(ctx context.Context, dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		devs := LoopDevicesUnder(dir)
		if len(devs) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if held := mountHolders(dir); len(held) > 0 {
				return fmt.Errorf("the sandbox's disk image is still attached to %v: the mount namespace of %s still holds its mount; try again once that ends", devs, strings.Join(held, ", "))
			}
			return fmt.Errorf("the sandbox's disk image is still attached to %v (a process of its previous run still uses it); try again shortly", devs)
		}
		_ = detachLoops(dir)
		time.Sleep(50 * time.Millisecond)
	}
}

// KeepLost moves the checkpoint image of sandbox id, which failed to resume, to
// <dir>/.lost/<id> for inspection (RemoveLost deletes it after the paused retention)
// and returns where it is now ("" when it had none).
func (c *Checkpoints) KeepLost(id string) (string, error) {
	img := filepath.Join(c.n.sandboxDir(id), imageDir)
	if _, err := os.Stat(img); err != nil {
		return "", nil
	}
	lost := filepath.Join(c.lostDir(), id)
	if err := os.MkdirAll(c.lostDir(), 0o700); err != nil {
		return "", err
	}
	_ = os.RemoveAll(lost)
	if err := os.Rename(img, lost); err != nil {
		return "", err
	}
	now := time.Now()
	_ = os.Chtimes(lost, now, now) // kept from now on, for the paused retention
	return lost, nil
}

// RemoveLost removes the kept images of sandboxes that failed to resume (lostDir)
// that were kept since before t, and returns how many it removed.
func (c *Checkpoints) RemoveLost(t time.Time) (int, error) {
	ents, err := os.ReadDir(c.lostDir())
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(t) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(c.lostDir(), e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// lostDir holds the checkpoint images of sandboxes that failed to resume, one
// directory per sandbox id, kept for inspection until the paused retention ends.
func (c *Checkpoints) lostDir() string { return filepath.Join(c.n.cfg.Dir, ".lost") }

// Snapshot saves the running sandbox sb into dst (created; it must not exist): its
// memory and kernel state in dst/image and a copy of its writable layer as it was at
// that instant in dst/upper. The sandbox is frozen from the checkpoint until the copy
// is made, then goes on running. On error dst is removed and the sandbox runs on.
func (c *Checkpoints) Snapshot(ctx context.Context, sb *domain.Sandbox, dst string) (err error) {
	h, cp, err := c.checkpointer(sb)
	if err != nil {
		return err
	}
	fr, ok := cp.(runtime.Freezer)
	if !ok {
		return cannotCheckpoint(c.n.driverOf(&h))
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return fmt.Errorf("creating the snapshot directory: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dst)
		}
	}()
	t0 := time.Now()
	if err := fr.Freeze(ctx, h); err != nil {
		return fmt.Errorf("freezing sandbox %s: %w", sb.ID, err)
	}
	defer func() {
		if terr := fr.Thaw(context.WithoutCancel(ctx), h); terr != nil {
			err = errors.Join(err, fmt.Errorf("thawing sandbox %s: %w", sb.ID, terr))
		}
	}()
	if err := cp.Checkpoint(ctx, h, filepath.Join(dst, snapshotImage), true); err != nil {
		return fmt.Errorf("checkpointing sandbox %s: %w", sb.ID, err)
	}
	tSave := time.Since(t0)
	if err := copyLayer(ctx, c.upperDir(sb), filepath.Join(dst, snapshotUpper)); err != nil {
		return fmt.Errorf("copying the files of sandbox %s: %w", sb.ID, err)
	}
	c.n.log.Debug("sandbox snapshotted", logkey.SandboxID, sb.ID, "checkpoint", tSave, "frozen", time.Since(t0))
	return nil
}

// StartFrom starts the new sandbox sb (its id, slot, limits, token...) from the
// snapshot in src: its own copy of src/upper as its writable layer, its own network
// namespace and address, its memory and processes restored from src/image. It returns
// the handle and the address. The restored agent still has the identity it had at the
// snapshot: the caller gives it sb's (envd's /init). On error nothing of sb is left.
func (c *Checkpoints) StartFrom(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template, src string) (runtime.Handle, string, error) {
	for _, p := range []string{filepath.Join(src, snapshotImage, "checkpoint.img"), filepath.Join(src, snapshotUpper)} {
		if _, err := os.Stat(p); err != nil {
			return runtime.Handle{}, "", fmt.Errorf("snapshot %s is incomplete: %w", src, err)
		}
	}
	s := specOf(sb, tpl)
	s.Image, s.Layer, s.LayerFrom = filepath.Join(src, snapshotImage), layerCopy, filepath.Join(src, snapshotUpper)
	st, err := c.n.start(ctx, s)
	if err != nil {
		return runtime.Handle{}, "", err
	}
	return st.Handle, st.Address, nil
}

// upperDir is the running sandbox sb's overlay upper directory.
func (c *Checkpoints) upperDir(sb *domain.Sandbox) string {
	if sb.Limits.DiskMB > 0 {
		return filepath.Join(c.n.sandboxDir(sb.ID), "disk", "upper")
	}
	return filepath.Join(c.n.sandboxDir(sb.ID), "upper")
}

// ImageTime is when the checkpoint image of sandbox id's last pause was written (zero
// when it has none).
func (c *Checkpoints) ImageTime(id string) time.Time {
	fi, err := os.Stat(filepath.Join(c.n.sandboxDir(id), imageDir, "checkpoint.img"))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// PausedBytes is the disk a paused sandbox id holds: its checkpoint image and its
// writable layer (the disk image's allocated blocks with limits.disk_mb).
func (c *Checkpoints) PausedBytes(id string) int64 { return diskUsage(c.n.sandboxDir(id)) }

// diskUsage sums the allocated blocks of the files below dir.
func diskUsage(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			total += allocated(fi)
		}
		return nil
	})
	return total
}
