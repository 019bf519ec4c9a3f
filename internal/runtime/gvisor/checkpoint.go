package gvisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/runtime"
)

// Checkpoint implements runtime.Checkpointer with runsc checkpoint. The image is
// uncompressed: saving and restoring are faster (pages are written and read as they
// are), and a restore could load them lazily.
//
// runsc's own checkpoint without --leave-running kills the sandbox when saving fails
// (a full disk, say): the sentry exits either way. So a checkpoint that is to stop the
// sandbox freezes it, saves leaving it running (a failed save then leaves it frozen,
// and it is thawed: running as before), and only then kills the still frozen sandbox
// and removes its runsc state and cgroups, so that the id can be restored. Frozen, the
// sandbox changes no file between the save and the kill: its writable layer stays as
// it was at the checkpoint.
func (d *Driver) Checkpoint(ctx context.Context, h runtime.Handle, imageDir string, leaveRunning bool) error {
	if err := os.MkdirAll(imageDir, 0o700); err != nil {
		return fmt.Errorf("creating the checkpoint image directory: %w", err)
	}
	t0 := time.Now()
	defer func() {
		d.log.Debug("checkpoint", logkey.SandboxID, h.ID, "leave_running", leaveRunning, "took", time.Since(t0))
	}()
	if leaveRunning {
		return d.save(ctx, h, imageDir)
	}
	if err := d.Freeze(ctx, h); err != nil {
		return fmt.Errorf("freezing the sandbox to checkpoint it: %w", err)
	}
	if err := d.save(ctx, h, imageDir); err != nil {
		if terr := d.Thaw(context.WithoutCancel(ctx), h); terr != nil {
			return errors.Join(err, fmt.Errorf("thawing the sandbox after the failed checkpoint: %w", terr))
		}
		return err
	}
	if err := d.Destroy(context.WithoutCancel(ctx), h); err != nil {
		return fmt.Errorf("removing the checkpointed sandbox's runtime state: %w", err)
	}
	return nil
}

// save runs runsc checkpoint --leave-running: the sandbox is left as it was (running,
// or frozen), whether the save succeeds or not.
func (d *Driver) save(ctx context.Context, h runtime.Handle, imageDir string) error {
	_, err := d.runsc(ctx, "checkpoint", "--image-path", imageDir, "--compression=none", "--leave-running", h.ID)
	return err
}

// Restore implements runtime.Checkpointer with runsc restore: the same bundle as Start
// (built from spec), the sandbox's state from imageDir. gVisor's netstack takes the
// addresses of spec's network namespace, so a restored sandbox may get a new address.
func (d *Driver) Restore(ctx context.Context, spec runtime.Spec, imageDir string) (runtime.Handle, error) {
	if _, err := os.Stat(imageDir); err != nil {
		return runtime.Handle{ID: spec.ID, Driver: "gvisor"}, fmt.Errorf("checkpoint image: %w", err)
	}
	t0 := time.Now()
	h, err := d.launch(ctx, spec, "restore", "--image-path", imageDir)
	if err == nil {
		d.log.Debug("restored", logkey.SandboxID, spec.ID, "took", time.Since(t0))
	}
	return h, err
}

// Freeze implements runtime.Freezer with runsc pause: the sandbox's tasks stop where
// they are until Thaw.
func (d *Driver) Freeze(ctx context.Context, h runtime.Handle) error {
	_, err := d.runsc(ctx, "pause", h.ID)
	return err
}

// Thaw implements runtime.Freezer with runsc resume.
func (d *Driver) Thaw(ctx context.Context, h runtime.Handle) error {
	_, err := d.runsc(ctx, "resume", h.ID)
	return err
}
