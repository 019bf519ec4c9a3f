// Package runc is the runtime driver for runc (Debian's 1.1.5): every sandbox is a
// container on the host kernel, hardened — its own user namespace (root inside is an
// unprivileged host id), a seccomp allowlist stricter than Docker's default,
// no_new_privs, Docker's capabilities without CAP_NET_RAW, masked and read-only /proc
// paths, no host devices — in the network namespace the node prepared.
package runc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/oci"
)

// IDMap says where sandboxes' host id ranges lie: the sandbox at address slot s maps
// its ids 0..Size-1 to host ids HostUID+Size*(s+1) onward (HostGID+... for groups). The
// range at HostUID itself is left to the host (see DefaultIDMap).
type IDMap struct {
	HostUID uint32
	HostGID uint32
	Size    uint32
}

// DefaultIDMap starts at 100000, the range /etc/subuid gives the first user on Debian,
// which no sandbox uses: slot 0 maps to 165536..231071, slot 1 to 231072..296607, and so
// on; 65,000 slots fit below 2^32.
var DefaultIDMap = IDMap{HostUID: 100000, HostGID: 100000, Size: 65536}

// rangeOf returns the host id range of the sandbox at slot.
func (m IDMap) rangeOf(slot int) (runtime.IDRange, error) {
	if slot < 0 {
		return runtime.IDRange{}, fmt.Errorf("runc: address slot %d: a sandbox needs a slot to get its own id range", slot)
	}
	end := func(base uint32) uint64 { return uint64(base) + uint64(m.Size)*uint64(slot+2) }
	if end(m.HostUID) > 1<<32-1 || end(m.HostGID) > 1<<32-1 { // (uid_t)-1 is never valid
		return runtime.IDRange{}, fmt.Errorf("runc: address slot %d has no host id range below 2^32 (ranges of %d from %d); use a smaller address pool", slot, m.Size, m.HostUID)
	}
	off := m.Size * uint32(slot+1)
	return runtime.IDRange{UID: m.HostUID + off, GID: m.HostGID + off, Size: m.Size}, nil
}

// Config configures the driver.
type Config struct {
	// Runc is the runc binary (default: found on PATH).
	Runc string
	// Root is runc's state directory (--root); one per node. Required.
	Root string
	// CgroupParent is the cgroup every sandbox's cgroup is created under (default /warren).
	CgroupParent string
	// IDMap places the sandboxes' host id ranges, one per address slot (default
	// DefaultIDMap).
	IDMap IDMap
	Log   *slog.Logger
}

// Driver runs sandboxes with runc.
type Driver struct {
	cfg Config
	log *slog.Logger
}

var (
	_ runtime.Driver      = (*Driver)(nil)
	_ runtime.StatsReader = (*Driver)(nil)
	_ runtime.Killer      = (*Driver)(nil)
	_ runtime.IDShifter   = (*Driver)(nil)
)

// New checks that runc and user namespaces are usable and returns the driver.
func New(cfg Config) (*Driver, error) {
	if cfg.Runc == "" {
		p, err := exec.LookPath("runc")
		if err != nil {
			return nil, fmt.Errorf("%w: runc not found; install it: apt-get install runc", runtime.ErrNotAvailable)
		}
		cfg.Runc = p
	}
	if cfg.Root == "" {
		return nil, errors.New("runc: Config.Root is required")
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/warren"
	}
	if cfg.IDMap == (IDMap{}) {
		cfg.IDMap = DefaultIDMap
	}
	if cfg.IDMap.Size < 65536 {
		return nil, fmt.Errorf("runc: IDMap.Size %d: sandboxes need 65536 ids (nobody is 65534)", cfg.IDMap.Size)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		return nil, fmt.Errorf("%w: user namespaces are disabled (sysctl user.max_user_namespaces=0); runc sandboxes need them", runtime.ErrNotAvailable)
	}
	if out, err := exec.Command(cfg.Runc, "--version").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w: %s --version: %v: %s", runtime.ErrNotAvailable, cfg.Runc, err, bytes.TrimSpace(out))
	}
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, fmt.Errorf("runc: creating state dir: %w", err)
	}
	return &Driver{cfg: cfg, log: cfg.Log.With(logkey.Subsystem, "runc")}, nil
}

// Capabilities implements runtime.Driver.
func (d *Driver) Capabilities() runtime.Capabilities {
	return runtime.Capabilities{Name: "runc", Isolation: runtime.IsolationContainer, RootFS: runtime.RootFSDirectory,
		SharesHostKernel: true, UserNamespace: true, PerProcessOOM: true, JoinsCgroups: true}
}

// IDRange implements runtime.IDShifter: every slot has its own range, so no two live
// sandboxes of the node share a host id.
func (d *Driver) IDRange(slot int) (runtime.IDRange, error) { return d.cfg.IDMap.rangeOf(slot) }

func (d *Driver) runc(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, d.cfg.Runc, append([]string{"--root", d.cfg.Root}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("runc %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Start implements runtime.Driver: runc run --detach, with the sandbox's console (the
// agent's log) going to console.log in its state directory.
func (d *Driver) Start(ctx context.Context, spec runtime.Spec) (runtime.Handle, error) {
	h := runtime.Handle{ID: spec.ID, Driver: "runc", Data: map[string]string{"state_dir": spec.StateDir}}
	r, err := d.IDRange(spec.Slot)
	if err != nil {
		return h, err
	}
	// Recorded so that whoever re-attaches knows which host ids are this sandbox's.
	h.Data["host_uid"] = strconv.FormatUint(uint64(r.UID), 10)
	h.Data["host_gid"] = strconv.FormatUint(uint64(r.GID), 10)
	h.Data["id_range_size"] = strconv.FormatUint(uint64(r.Size), 10)
	if spec.NetNSPath != "" {
		if err := setNetnsSysctls(spec.NetNSPath); err != nil {
			return h, err
		}
	}
	bundle := filepath.Join(spec.StateDir, "bundle")
	if err := oci.WriteBundle(bundle, d.buildSpec(spec, r)); err != nil {
		return h, err
	}
	logPath := filepath.Join(spec.StateDir, "console.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return h, err
	}
	defer logf.Close()
	pidFile := filepath.Join(spec.StateDir, "runc.pid")
	// The sandbox must outlive ctx: runc run --detach returns once the agent runs, and
	// the sandbox is not our child after that.
	cmd := exec.Command(d.cfg.Runc, "--root", d.cfg.Root, "run", "--detach", "--bundle", bundle, "--pid-file", pidFile, spec.ID)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = logf, logf, nil
	if err := cmd.Start(); err != nil {
		return h, fmt.Errorf("starting runc: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		_ = d.Destroy(context.WithoutCancel(ctx), h)
		return h, ctx.Err()
	}
	if err != nil {
		tail := tailFile(logPath, 2048)
		_ = d.Destroy(context.WithoutCancel(ctx), h)
		return h, fmt.Errorf("runc run: %w: %s", err, tail)
	}
	if b, err := os.ReadFile(pidFile); err == nil {
		h.PID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	return h, nil
}

func tailFile(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return strings.TrimSpace(string(b))
}

type state struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Pid    int    `json:"pid"`
}

// notExist reports whether err is runc saying it has no such container.
func notExist(err error) bool {
	return err != nil && strings.Contains(err.Error(), "does not exist")
}

// Status implements runtime.Driver.
func (d *Driver) Status(ctx context.Context, h runtime.Handle) (runtime.Status, error) {
	out, err := d.runc(ctx, "state", h.ID)
	if notExist(err) {
		return runtime.StatusGone, nil
	}
	if err != nil {
		return runtime.StatusUnknown, err
	}
	var st state
	if err := json.Unmarshal(out, &st); err != nil {
		return runtime.StatusUnknown, fmt.Errorf("parsing runc state: %w", err)
	}
	switch st.Status {
	case "running", "created", "paused":
		return runtime.StatusRunning, nil
	default:
		return runtime.StatusStopped, nil
	}
}

// Kill implements runtime.Killer: SIGKILL to the sandbox's init (the agent). The
// kernel then kills every other process of its pid namespace.
func (d *Driver) Kill(ctx context.Context, h runtime.Handle) error {
	if h.PID > 0 && d.ownsPID(h) {
		if err := syscall.Kill(h.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		return nil
	}
	oci.KillCgroup(d.cfg.CgroupParent, h.ID)
	return nil
}

// ownsPID guards against pid reuse (after a host reboot, or once the sandbox is gone):
// the process must live in this sandbox's cgroup.
func (d *Driver) ownsPID(h runtime.Handle) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", h.PID))
	return err == nil && bytes.Contains(b, []byte(oci.CgroupPath(d.cfg.CgroupParent, h.ID)+"\n"))
}

// Destroy implements runtime.Driver.
func (d *Driver) Destroy(ctx context.Context, h runtime.Handle) error {
	t0 := time.Now()
	defer func() { d.log.Debug("destroyed", logkey.SandboxID, h.ID, "took", time.Since(t0)) }()
	var errs []error
	_ = d.Kill(ctx, h)
	if _, err := d.runc(ctx, "delete", "--force", h.ID); err != nil && !notExist(err) {
		// State runc cannot read (a runc killed mid-create): kill what the cgroup holds
		// and clear the state below.
		errs = append(errs, err)
		oci.KillCgroup(d.cfg.CgroupParent, h.ID)
	}
	if err := os.RemoveAll(filepath.Join(d.cfg.Root, h.ID)); err != nil {
		errs = append(errs, err)
	}
	if err := oci.RemoveCgroups(d.cfg.CgroupParent, h.ID); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		// Report failure only if something is really left behind.
		if _, err := os.Stat(filepath.Join(d.cfg.Root, h.ID)); os.IsNotExist(err) && oci.CgroupsGone(d.cfg.CgroupParent, h.ID) {
			return nil
		}
		return errors.Join(errs...)
	}
	return nil
}

// List implements runtime.Driver.
func (d *Driver) List(ctx context.Context) ([]string, error) {
	out, err := d.runc(ctx, "list", "--quiet")
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// Stats implements runtime.StatsReader from the sandbox's cgroups.
func (d *Driver) Stats(ctx context.Context, h runtime.Handle) (runtime.Stats, error) {
	return oci.ReadCgroupStats(d.cfg.CgroupParent, h.ID)
}

// Cleanup removes the node's (empty) parent cgroups. Call it when no sandbox is left.
func (d *Driver) Cleanup() { oci.RemoveParentCgroups(d.cfg.CgroupParent) }
