package doctor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// CheckpointProbe is what trying runsc checkpoint and restore on this host measured.
type CheckpointProbe struct {
	// Works is true when the restored sandbox answered.
	Works bool `json:"works"`
	// StartMillis is runsc run --detach of the sandbox; CheckpointMillis runsc
	// checkpoint of it (the sandbox stops); RestoreMillis runsc restore --detach of the
	// image as a new sandbox; AnswerMillis a runsc exec of /bin/echo in the restored one.
	StartMillis      float64 `json:"start_ms"`
	CheckpointMillis float64 `json:"checkpoint_ms"`
	RestoreMillis    float64 `json:"restore_ms"`
	AnswerMillis     float64 `json:"answer_ms"`
	// ImageBytes is the size of the checkpoint image.
	ImageBytes int64 `json:"image_bytes"`
	// Error says what failed; empty when it works.
	Error string `json:"error,omitempty"`
}

// checkpointTimeout bounds the whole probe; a healthy one takes about a second.
const checkpointTimeout = time.Minute

// checkRunscCheckpoint tries checkpoint and restore of a runsc sandbox. Without them
// gVisor still runs sandboxes, but pause, resume, fork and snapshots cannot work, so a
// failure is a warning.
func (s *state) checkRunscCheckpoint(ctx context.Context) (Check, *CheckpointProbe) {
	const fix = "run scripts/install-deps.sh for the pinned runsc; to see why, run runsc checkpoint and restore by hand with --debug --debug-log=/tmp/runsc/"
	switch {
	case s.opts.RootFS == "":
		return warn(CheckRunscCheckpoint, "not tried: no root filesystem given", "pass a root filesystem with /bin/echo and /bin/sleep (e.g. a built template's rootfs)"), nil
	case !s.runscUsable:
		return warn(CheckRunscCheckpoint, "not tried: runsc is not usable (see the runsc check)", "fix the runsc check first"), nil
	}
	p, err := s.h.TryCheckpoint(ctx, s.runscPath, s.opts.RootFS)
	if err != nil {
		p.Works, p.Error = false, err.Error()
		return warn(CheckRunscCheckpoint, "checkpoint and restore do not work here (pause, resume, fork and snapshots need them): "+err.Error(), fix), &p
	}
	p.Works = true
	return ok(CheckRunscCheckpoint, fmt.Sprintf("checkpoint and restore work: start %.0f ms, checkpoint %.0f ms (image %.1f MB), restore %.0f ms, answered %.0f ms later",
		p.StartMillis, p.CheckpointMillis, float64(p.ImageBytes)/1e6, p.RestoreMillis, p.AnswerMillis)), &p
}

// tryCheckpoint starts /bin/sleep in rootfs under runsc (no network, read-only root),
// checkpoints it into an image, restores the image as a second sandbox and runs
// /bin/echo in that one. Before it returns it deletes both sandboxes and removes their
// cgroups, the null network namespace mount a current runsc leaves in its --root, and
// the temporary directory.
func tryCheckpoint(ctx context.Context, runsc, rootfs string) (p CheckpointProbe, err error) {
	rootfs, err = filepath.Abs(rootfs)
	if err != nil {
		return p, err
	}
	for _, f := range []string{"bin/echo", "bin/sleep"} {
		if _, err := os.Stat(filepath.Join(rootfs, f)); err != nil {
			return p, fmt.Errorf("the root filesystem has no /%s: %w", f, err)
		}
	}
	tmp, err := os.MkdirTemp("", "warren-doctor-checkpoint-")
	if err != nil {
		return p, err
	}
	state, bundle, image := filepath.Join(tmp, "state"), filepath.Join(tmp, "bundle"), filepath.Join(tmp, "image")
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	id := "warren-doctor-" + hex.EncodeToString(rnd[:])
	restored := id + "-r"
	global := []string{"--root=" + state, "--network=none", "--platform=systrap", "--overlay2=none"}
	defer func() {
		for _, c := range []string{id, restored} {
			cleanupSandbox(runsc, append(append([]string{}, global...), "delete", "-force", c), c)
		}
		unmountNullNetNS(state)
		err = errors.Join(err, os.RemoveAll(tmp))
	}()
	for _, dir := range []string{state, bundle, image} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return p, err
		}
	}
	spec := minimalSpec(rootfs, id)
	spec["process"].(map[string]any)["args"] = []string{"/bin/sleep", "3600"}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return p, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return p, err
	}
	// The sandboxes outlive the runsc that starts them: their output goes to a file, so
	// that no pipe is left open for the probe to wait on.
	log, err := os.Create(filepath.Join(tmp, "console.log"))
	if err != nil {
		return p, err
	}
	defer log.Close()
	ctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
	defer cancel()
	step := func(what string, ms *float64, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, runsc, append(append([]string{}, global...), args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if args[0] == "run" || args[0] == "restore" {
			cmd.Stdout, cmd.Stderr = log, log
		}
		cmd.WaitDelay = time.Second
		start := time.Now()
		err := cmd.Run()
		*ms = millis(time.Since(start))
		if err != nil {
			detail := strings.TrimSpace(out.String())
			if detail == "" {
				detail = tail(filepath.Join(tmp, "console.log"), 400)
			}
			return nil, fmt.Errorf("%s: %v: %s", what, err, detail)
		}
		return out.Bytes(), nil
	}
	if _, err := step("runsc run", &p.StartMillis, "run", "--detach", "--bundle="+bundle, id); err != nil {
		return p, err
	}
	if _, err := step("runsc checkpoint", &p.CheckpointMillis, "checkpoint", "--image-path="+image, id); err != nil {
		return p, err
	}
	p.ImageBytes = dirSize(image)
	if _, err := step("runsc restore", &p.RestoreMillis, "restore", "--detach", "--image-path="+image, "--bundle="+bundle, restored); err != nil {
		return p, err
	}
	out, err := step("runsc exec in the restored sandbox", &p.AnswerMillis, "exec", restored, "/bin/echo", echoMarker)
	if err != nil {
		return p, err
	}
	if !strings.Contains(string(out), echoMarker) {
		return p, fmt.Errorf("the restored sandbox did not answer %q; output: %q", echoMarker, out)
	}
	p.Works = true
	return p, nil
}

// unmountNullNetNS removes the bind mounts a current runsc keeps at <root>/null-netns
// (the empty network namespace its gofers share); several can be stacked.
func unmountNullNetNS(root string) {
	p := filepath.Join(root, "null-netns")
	for i := 0; i < 16 && syscall.Unmount(p, syscall.MNT_DETACH) == nil; i++ {
	}
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
