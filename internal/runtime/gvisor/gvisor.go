// Package gvisor is the runtime driver for gVisor's runsc: every sandbox runs on a
// user-space kernel (systrap platform) with gVisor's own network stack inside the
// sandbox's network namespace.
package gvisor

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

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/oci"
)

// Config configures the driver.
type Config struct {
	// Runsc is the runsc binary (default: found on PATH).
	Runsc string
	// Root is runsc's state directory (--root); one per node.
	Root string
	// Platform is the gVisor platform: systrap (default) or ptrace. Never kvm on a PVM host.
	Platform string
	// CgroupParent is the cgroup every sandbox's cgroup is created under (default /warren).
	CgroupParent string
	Log          *slog.Logger
}

// Driver runs sandboxes with runsc.
type Driver struct {
	cfg Config
	log *slog.Logger
	// version is cfg.Runsc's; netnsWorkaround is true when it needs the gVisor #10704
	// workaround (see command).
	version         Version
	netnsWorkaround bool
	// goferNetNS is "--gofer-network-namespace=new" where runsc has that flag, else "".
	goferNetNS string
}

var (
	_ runtime.Driver         = (*Driver)(nil)
	_ runtime.StatsReader    = (*Driver)(nil)
	_ runtime.Killer         = (*Driver)(nil)
	_ runtime.Checkpointer   = (*Driver)(nil)
	_ runtime.Freezer        = (*Driver)(nil)
	_ runtime.ProcessLimiter = (*Driver)(nil)
)

// New checks that runsc is usable and returns the driver.
func New(cfg Config) (*Driver, error) {
	if cfg.Runsc == "" {
		p, err := exec.LookPath("runsc")
		if err != nil {
			return nil, fmt.Errorf("%w: runsc not found; run scripts/install-deps.sh, which builds gVisor's runsc and installs it as /usr/local/bin/runsc", runtime.ErrNotAvailable)
		}
		cfg.Runsc = p
	}
	if cfg.Platform == "" {
		cfg.Platform = "systrap"
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/warren"
	}
	if cfg.Root == "" {
		return nil, errors.New("gvisor: Config.Root is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, fmt.Errorf("gvisor: creating state dir: %w", err)
	}
	flags, _ := exec.Command(cfg.Runsc, "flags").CombinedOutput()
	if cfg.Platform == "systrap" {
		if !bytes.Contains(flags, []byte("systrap")) {
			return nil, fmt.Errorf("%w: %s has no systrap platform (it is too old); run scripts/install-deps.sh, which builds gVisor's runsc and installs it as /usr/local/bin/runsc", runtime.ErrNotAvailable, cfg.Runsc)
		}
	}
	v, err := ReadVersion(context.Background(), cfg.Runsc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", runtime.ErrNotAvailable, err)
	}
	d := &Driver{cfg: cfg, log: cfg.Log.With(logkey.Subsystem, "gvisor"), version: v, netnsWorkaround: v.NeedsNetnsWorkaround()}
	// A current runsc puts every gofer in one shared empty network namespace, pinned by a
	// bind mount at <root>/null-netns that outlives every sandbox (and a data directory
	// holding it cannot be removed). A new empty namespace per gofer, as Debian's build
	// does, measured no slower to start (p50 124 vs 126 ms, 15 runs each) and leaves
	// nothing on the host.
	if bytes.Contains(flags, []byte("gofer-network-namespace")) {
		d.goferNetNS = "--gofer-network-namespace=new"
	}
	d.log.Info("runsc", "path", cfg.Runsc, "version", v.String(), "netns_workaround", d.netnsWorkaround)
	return d, nil
}

// Capabilities implements runtime.Driver.
func (d *Driver) Capabilities() runtime.Capabilities {
	return runtime.Capabilities{Name: "gvisor", Isolation: runtime.IsolationSandbox, RootFS: runtime.RootFSDirectory, Build: d.version.String(),
		JoinsCgroups: true}
}

func (d *Driver) global(network bool) []string {
	net := "none"
	if network {
		net = "sandbox"
	}
	// overlay2=none: writes go to the node's per-sandbox overlay upper layer on the host
	// (so disk limits and cleanup are the node's), not to a gVisor memory-backed file.
	g := []string{"--root=" + d.cfg.Root, "--platform=" + d.cfg.Platform, "--network=" + net, "--overlay2=none"}
	if d.goferNetNS != "" {
		g = append(g, d.goferNetNS)
	}
	return g
}

// command returns the runsc invocation. With a network namespace, a runsc older than
// the fix of gVisor #10704 (Debian's 20240729 build) must start in a private mount
// namespace with an empty tmpfs over /proc/sys/net: it decides it is in the root network
// namespace by looking at /proc/sys/net/core/rmem_default, which kernel 6.x shows in
// every namespace. The pinned build needs none of it.
func (d *Driver) command(ctx context.Context, network bool, args ...string) *exec.Cmd {
	full := append(d.global(network), args...)
	if !network || !d.netnsWorkaround {
		return exec.CommandContext(ctx, d.cfg.Runsc, full...)
	}
	script := `mount -t tmpfs none /proc/sys/net && exec "$0" "$@"`
	uargs := append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, d.cfg.Runsc}, full...)
	return exec.CommandContext(ctx, "unshare", uargs...)
}

func (d *Driver) runsc(ctx context.Context, args ...string) ([]byte, error) {
	cmd := d.command(ctx, false, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("runsc %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Start implements runtime.Driver.
func (d *Driver) Start(ctx context.Context, spec runtime.Spec) (runtime.Handle, error) {
	return d.launch(ctx, spec, "run")
}

// launch writes spec's bundle and runs runsc's verb (run, or restore with its image
// flags) detached, returning the handle of the sandbox it started. On error nothing of
// the sandbox is left.
func (d *Driver) launch(ctx context.Context, spec runtime.Spec, verb ...string) (runtime.Handle, error) {
	h := runtime.Handle{ID: spec.ID, Driver: "gvisor", Data: map[string]string{"state_dir": spec.StateDir}}
	bundle := filepath.Join(spec.StateDir, "bundle")
	// This runsc has no OOM killer of its own (google/gvisor#1967): at the host cgroup's
	// limit the host kills a sentry, gofer or systrap stub task, which can end the whole
	// sandbox. So the guest limit (memory_mb) is enforced inside, by warren-agent's OOM
	// watchdog (the node passes it the limit, see runtime.Capabilities.PerProcessOOM),
	// and the host cgroup gets headroom above it (hostMemoryMB).
	if spec.Limits.MemoryMB > 0 {
		h.Data[dataMemoryLimit] = strconv.FormatInt(spec.Limits.MemoryMB<<20, 10)
		spec.Limits.MemoryMB = hostMemoryMB(spec.Limits.MemoryMB)
	}
	// The pids cgroup counts host tasks; reaching it would end the whole sandbox, so
	// the processes the agent starts get an RLIMIT_NPROC below it (ProcessLimit). PID 1
	// gets no RLIMIT_NPROC here, and its oci.AgentCap lifts the one it sets on itself
	// for its children: the agent can always make a thread.
	sp := oci.Build(spec, d.cfg.CgroupParent)
	sp.Mounts = append(sp.Mounts, diskTmp(spec.RootFS)...)
	limit := sp.Linux.Resources.CPU
	boot := bootCPU(limit)
	if boot != nil {
		sp.Linux.Resources.CPU = boot
	}
	if err := oci.WriteBundle(bundle, sp); err != nil {
		return h, err
	}
	logf, err := os.OpenFile(filepath.Join(spec.StateDir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return h, err
	}
	defer logf.Close()
	pidFile := filepath.Join(spec.StateDir, "runsc.pid")
	_ = os.Remove(pidFile) // a restore after a checkpoint must not read the old pid
	// The sandbox must outlive ctx: runsc run --detach returns once it has started, and
	// the sandbox processes are not our children after that.
	args := append(append([]string{}, verb...), "--detach", "--bundle", bundle, "--pid-file", pidFile, spec.ID)
	cmd := d.command(context.WithoutCancel(ctx), spec.NetNSPath != "", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Stdin = nil
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return h, fmt.Errorf("starting runsc: %w", err)
	}
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
		tail := tailFile(filepath.Join(spec.StateDir, "console.log"), 2048)
		_ = d.Destroy(context.WithoutCancel(ctx), h)
		return h, fmt.Errorf("runsc %s: %w: %s", verb[0], err, tail)
	}
	if b, err := os.ReadFile(pidFile); err == nil {
		h.PID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if boot != nil {
		// Booted: the sandbox's own limit from here on, before anything of the
		// tenant's runs. A sandbox whose limit cannot be set does not run.
		if err := oci.SetCPUQuota(d.cfg.CgroupParent, spec.ID, *limit); err != nil {
			_ = d.Destroy(context.WithoutCancel(ctx), h)
			return h, err
		}
	}
	return h, nil
}

// bootCPU returns the CPU quota a sandbox with the CPU limit limit boots under, or nil
// when that is limit itself. runsc's boot (and a restore's loading of memory) runs
// several threads at once: under a quota of one core, throttling made a start ~60 ms
// slower (~30%) than the same start without. So the sandbox boots with at least two
// cores' quota and gets its own limit once runsc returns, before its agent answers
// anyone. The CPU count the sandbox sees stays the same: runsc derives it from the
// quota at boot as max(2, ceil(quota)) (--cpu-num-from-quota), which the boot quota,
// max(2, ceil(limit)) cores, leaves unchanged.
func bootCPU(limit *oci.CPU) *oci.CPU {
	if limit == nil || limit.Quota <= 0 || limit.Period == 0 {
		return nil
	}
	cores := max(2, (uint64(limit.Quota)+limit.Period-1)/limit.Period)
	quota := int64(cores * limit.Period)
	if quota <= limit.Quota {
		return nil
	}
	return &oci.CPU{Quota: quota, Period: limit.Period}
}

// diskTmp keeps /tmp on the sandbox's disk, as on runc. Left alone, runsc mounts a
// tmpfs of its own at /tmp, sized by the host's memory and not by memory_mb: filling it
// held the memory inside the sentry where the agent's OOM watchdog cannot free it, and
// a 256 MiB sandbox writing 1 GiB there stopped answering while still "running". A
// bind mount of the root file system's own /tmp puts those bytes under disk_mb instead
// (ENOSPC when full). Nothing is mounted when the root file system has no /tmp.
func diskTmp(rootfs string) []oci.Mount {
	fi, err := os.Stat(filepath.Join(rootfs, "tmp"))
	if err != nil || !fi.IsDir() {
		return nil
	}
	return []oci.Mount{{Destination: "/tmp", Type: "bind", Source: filepath.Join(rootfs, "tmp"),
		Options: []string{"rbind", "rw", "nosuid", "nodev"}}}
}

// ProcessLimit implements runtime.ProcessLimiter. The pids cgroup counts host tasks:
// a gVisor sandbox is ~25 host tasks when idle and ~2-3 more per guest process, so
// max_processes bounds host tasks, which is what protects the host. Reaching it would
// end the whole sandbox (the sentry cannot make a task), so warren-agent gives every
// process it starts an RLIMIT_NPROC below it, which gVisor enforces inside (for root
// too): a fork bomb's fork fails with EAGAIN and the sandbox lives on.
func (d *Driver) ProcessLimit(l domain.Limits) uint64 { return guestProcesses(l.MaxProcesses) }

// guestProcesses is the RLIMIT_NPROC a sandbox with a host pids limit of maxProcesses
// gets (0: no limit). Measured with runsc 20240729 on systrap: 25 host tasks idle, +114
// for 50 sleeping guest processes, +308 for 150 more, and the stubs are not given back
// when the processes exit; threads share their process's stub. So (max - 40) / 3 guest
// processes per user stay well under the host limit. RLIMIT_NPROC counts per user (and
// counts threads): a bomb spread over several uids by the sandbox's root can still reach
// the host limit and end its own sandbox, never more. The agent's own threads (~10-20),
// which the limit does not bind (oci.AgentCap), fit in the 40 tasks left over. Under a
// bomb of the full limit the host pids peak was 204-236 of 256 (runsc 20260905, one
// bomb per sandbox at max_processes 256). The limit is never under
// 32: below max_processes ~136 a bomb may still reach the host limit first and end the
// sandbox, as it did without this.
func guestProcesses(maxProcesses int64) uint64 {
	if maxProcesses <= 0 {
		return 0
	}
	n := (maxProcesses - 40) / 3
	if n < 32 {
		n = 32
	}
	return uint64(n)
}

// dataMemoryLimit is the handle's Data key holding the guest memory limit in bytes.
const dataMemoryLimit = "memory_limit"

// hostMemoryMB is the host cgroup memory limit for a guest limit of mb MiB: a quarter
// more, plus 64 MiB. The headroom holds the sentry's and gofer's own memory (~20 MiB
// idle), what the guest allocates between the watchdog's last sample and its kill, and
// the memory of killed processes that gVisor has not handed back yet. Measured with
// memory_mb 256 (host limit 384 MiB) and one core: one process allocating as fast as
// it can peaks the host cgroup at 250-265 MiB; four at once at 290-380 MiB. With only
// 64 MiB of headroom, two or more processes allocating at once regularly reached the
// host limit: the host's OOM killer then takes systrap stub tasks (whose guest
// processes die), and, when that frees nothing fast enough, the sentry.
func hostMemoryMB(mb int64) int64 { return mb + mb/4 + 64 }

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

// Status implements runtime.Driver.
func (d *Driver) Status(ctx context.Context, h runtime.Handle) (runtime.Status, error) {
	out, err := d.runsc(ctx, "state", h.ID)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "not exist") {
			return runtime.StatusGone, nil
		}
		return runtime.StatusUnknown, err
	}
	var st state
	if err := json.Unmarshal(out, &st); err != nil {
		return runtime.StatusUnknown, fmt.Errorf("parsing runsc state: %w", err)
	}
	switch st.Status {
	case "running", "created", "paused":
		// runsc reports "running" from its saved state; make sure the sandbox process is
		// really alive (after a host crash the state file can outlive it).
		if st.Pid > 0 && !runtime.ProcessRunning(st.Pid) {
			return runtime.StatusStopped, nil
		}
		return runtime.StatusRunning, nil
	default:
		return runtime.StatusStopped, nil
	}
}

// Destroy implements runtime.Driver.
func (d *Driver) Destroy(ctx context.Context, h runtime.Handle) error {
	var errs []error
	t0 := time.Now()
	defer func() { d.log.Debug("destroyed", logkey.SandboxID, h.ID, "took", time.Since(t0)) }()
	_ = d.Kill(ctx, h)
	if _, err := d.runsc(ctx, "delete", "-force", h.ID); err != nil && !strings.Contains(err.Error(), "not exist") {
		// A runsc that was killed mid-create leaves state runsc itself cannot delete;
		// kill what we know of and clear the state files below.
		errs = append(errs, err)
		if runtime.ProcessRunning(h.PID) {
			_ = syscall.Kill(h.PID, syscall.SIGKILL)
		}
	}
	d.log.Debug("runsc delete done", logkey.SandboxID, h.ID, "took", time.Since(t0))
	// runsc's state and lock files for this id.
	matches, _ := filepath.Glob(filepath.Join(d.cfg.Root, h.ID+"*"))
	for _, m := range matches {
		_ = os.RemoveAll(m)
	}
	if err := oci.RemoveCgroups(d.cfg.CgroupParent, h.ID); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		// Report failure only if something is really left behind.
		if st, err := d.Status(ctx, h); err == nil && st == runtime.StatusGone && oci.CgroupsGone(d.cfg.CgroupParent, h.ID) {
			return nil
		}
		return errors.Join(errs...)
	}
	return nil
}

// Kill implements runtime.Killer: SIGKILL to the sandbox process (the sentry); every
// process of the sandbox lives inside it, and the gofer exits with it.
func (d *Driver) Kill(ctx context.Context, h runtime.Handle) error {
	if runtime.ProcessRunning(h.PID) && d.ownsPID(h) {
		return syscall.Kill(h.PID, syscall.SIGKILL)
	}
	return nil
}

// ownsPID guards against pid reuse after a host reboot: the process must be the runsc
// sandbox of this id.
func (d *Driver) ownsPID(h runtime.Handle) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", h.PID))
	return err == nil && bytes.Contains(b, []byte(h.ID))
}

// List implements runtime.Driver.
func (d *Driver) List(ctx context.Context) ([]string, error) {
	out, err := d.runsc(ctx, "list", "-quiet")
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// Stats implements runtime.StatsReader from the sandbox's cgroups. MemoryLimit is the
// guest limit (memory_mb), not the host cgroup's, which has headroom above it.
func (d *Driver) Stats(ctx context.Context, h runtime.Handle) (runtime.Stats, error) {
	st, err := oci.ReadCgroupStats(d.cfg.CgroupParent, h.ID)
	if v, perr := strconv.ParseInt(h.Data[dataMemoryLimit], 10, 64); perr == nil && v > 0 {
		st.MemoryLimit = v
	}
	return st, err
}

// Cleanup removes the node's (empty) parent cgroups, and the empty network namespace
// a current runsc keeps mounted at <root>/null-netns for sandboxes without a network.
// Call it when no sandbox is left.
func (d *Driver) Cleanup() {
	oci.RemoveParentCgroups(d.cfg.CgroupParent)
	nullNS := filepath.Join(d.cfg.Root, "null-netns")
	if err := syscall.Unmount(nullNS, syscall.MNT_DETACH); err == nil || errors.Is(err, syscall.EINVAL) {
		_ = os.Remove(nullNS)
	}
}
