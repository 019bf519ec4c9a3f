package doctor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// sandboxTimeout bounds one measured run; a healthy one takes well under a second.
const sandboxTimeout = 30 * time.Second

// echoMarker is what the measured sandbox prints.
const echoMarker = "warren-doctor-ok"

// runSandbox runs /bin/echo in rootfs under runsc with no network and returns the time
// from starting runsc to its exit.
func runSandbox(ctx context.Context, runsc, rootfs string) (time.Duration, error) {
	return timedRun(ctx, runsc, rootfs, "runsc", minimalSpec,
		func(state, bundle, id string) []string {
			// --network=none: no network namespace setup needed; --overlay2=none: the
			// rootfs is read-only and must not get a filestore file written into it.
			return []string{"--root=" + state, "--network=none", "--platform=systrap",
				"--overlay2=none", "run", "--bundle=" + bundle, id}
		},
		func(state, id string) []string { return []string{"--root=" + state, "delete", "-force", id} })
}

// runContainer runs /bin/echo in rootfs under runc and returns the time from starting
// runc to its exit. The container has a read-only root, a new empty network namespace
// (no network) and no user namespace: Warren's runc driver adds one (over an id-mapped
// mount of the rootfs), which changes nothing in how long runc takes to start a process.
func runContainer(ctx context.Context, runc, rootfs string) (time.Duration, error) {
	return timedRun(ctx, runc, rootfs, "runc", containerSpec,
		func(state, bundle, id string) []string {
			return []string{"--root=" + state, "run", "--bundle=" + bundle, id}
		},
		func(state, id string) []string { return []string{"--root=" + state, "delete", "--force", id} })
}

// timedRun times one run of bin with the arguments run gives, in an OCI bundle made from
// spec in a temporary directory, with a private state directory (--root). Before it
// returns it deletes the container with the arguments del gives, and removes the
// temporary directory and any cgroup the runtime left behind.
func timedRun(ctx context.Context, bin, rootfs, prefix string, spec func(rootfs, id string) map[string]any,
	run func(state, bundle, id string) []string, del func(state, id string) []string) (d time.Duration, err error) {
	rootfs, err = filepath.Abs(rootfs)
	if err != nil {
		return 0, err
	}
	if _, err := os.Stat(filepath.Join(rootfs, "bin/echo")); err != nil {
		return 0, fmt.Errorf("the root filesystem has no /bin/echo: %w", err)
	}
	tmp, err := os.MkdirTemp("", "warren-doctor-"+prefix+"-")
	if err != nil {
		return 0, err
	}
	state, bundle := filepath.Join(tmp, "state"), filepath.Join(tmp, "bundle")
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	id := "warren-doctor-" + hex.EncodeToString(rnd[:])
	defer func() {
		cleanupSandbox(bin, del(state, id), id)
		unmountNullNetNS(state)
		err = errors.Join(err, os.RemoveAll(tmp))
	}()
	for _, dir := range []string{state, bundle} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return 0, err
		}
	}
	b, err := json.MarshalIndent(spec(rootfs, id), "", "  ")
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, sandboxTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, run(state, bundle, id)...)
	cmd.WaitDelay = time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d = time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	if !strings.Contains(string(out), echoMarker) {
		return 0, fmt.Errorf("the sandbox did not print %q; output: %q", echoMarker, out)
	}
	return d, nil
}

// cleanupSandbox deletes the container and removes cgroup directories the runtime may
// have left (a killed runsc or runc leaves them). Errors are ignored: the container may
// already be gone.
func cleanupSandbox(bin string, deleteArgs []string, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, bin, deleteArgs...).Run()
	leftovers, _ := filepath.Glob("/sys/fs/cgroup/*/" + id)
	if d := "/sys/fs/cgroup/" + id; dirExists(d) {
		leftovers = append(leftovers, d)
	}
	for _, d := range leftovers {
		_ = os.Remove(d) // rmdir: only ever removes an empty cgroup
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// minimalSpec is the smallest OCI runtime spec that runs /bin/echo read-only as root.
func minimalSpec(rootfs, _ string) map[string]any {
	return map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"terminal": false,
			"user":     map[string]any{"uid": 0, "gid": 0},
			"args":     []string{"/bin/echo", echoMarker},
			"env":      []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"cwd":      "/",
		},
		"root":     map[string]any{"path": rootfs, "readonly": true},
		"hostname": "warren-doctor",
		"mounts": []map[string]any{
			{"destination": "/proc", "type": "proc", "source": "proc"},
			{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		"linux": map[string]any{
			"namespaces": []map[string]any{{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}},
		},
	}
}

// containerSpec is minimalSpec for runc: a new, empty network namespace (runc has no
// --network=none) and a cgroup named after the container, so leftovers are findable.
func containerSpec(rootfs, id string) map[string]any {
	s := minimalSpec(rootfs, id)
	s["linux"] = map[string]any{
		"namespaces":  []map[string]any{{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}},
		"cgroupsPath": "/" + id,
	}
	return s
}
