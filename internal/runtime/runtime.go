// Package runtime is the seam between the node and the sandbox runtimes (gVisor, runc,
// and a microVM driver where the host has hardware virtualization). A driver starts a
// sandbox whose PID 1 is warren-agent, in a network namespace and on a root filesystem
// that the node has prepared, and returns a handle the node persists so that a restarted
// server can re-attach to the sandbox or reap it.
package runtime

import (
	"context"
	"errors"

	"github.com/warren-sh/warren/internal/domain"
)

// Isolation orders runtimes by the strength of the boundary they put between a sandbox
// and the host kernel.
type Isolation int

// Isolation levels, weakest first.
const (
	IsolationContainer Isolation = 1 // namespaces + seccomp on the host kernel (runc)
	IsolationSandbox   Isolation = 2 // user-space kernel (gVisor)
	IsolationMicroVM   Isolation = 3 // hardware virtualization (Firecracker, Cloud Hypervisor)
)

func (i Isolation) String() string {
	switch i {
	case IsolationContainer:
		return "container"
	case IsolationSandbox:
		return "sandbox"
	case IsolationMicroVM:
		return "microvm"
	}
	return "unknown"
}

// RootFSKind says how a driver consumes the root filesystem.
type RootFSKind int

// Root filesystem kinds. Container-style drivers take a directory; a microVM driver
// would take a block device image.
const (
	RootFSDirectory RootFSKind = iota
	RootFSBlockDevice
)

// Capabilities describe what a driver can do. Optional abilities are also expressed as
// small interfaces (Checkpointer, StatsReader) found by type assertion.
type Capabilities struct {
	Name      string
	Isolation Isolation
	RootFS    RootFSKind
	// SharesHostKernel is true when sandbox syscalls reach the host kernel directly.
	SharesHostKernel bool
	// UserNamespace is true when root in a sandbox is an unprivileged id on the host: the
	// driver runs every sandbox in a user namespace that maps its ids to a host range.
	// Such a driver implements IDShifter.
	UserNamespace bool
	// PerProcessOOM is true when a sandbox going past its memory limit loses only the
	// offending process (the host's memory-cgroup OOM killer picks it among the
	// sandbox's processes) and keeps running. It is false for gVisor: the sentry holds
	// all of the sandbox's memory and gVisor has no OOM killer of its own
	// (google/gvisor#1967), so the node turns on warren-agent's OOM watchdog for such
	// drivers (it kills the largest process at 95% of memory_mb) and the driver gives
	// the host cgroup headroom above the limit.
	PerProcessOOM bool
	// Build names the runtime binary's build (runsc's version). A checkpoint image
	// restores only on the build that wrote it (runsc refuses another version), so the
	// keys of template snapshots include it.
	Build string
	// JoinsCgroups is true when starting a sandbox moves host processes into its cgroups
	// (runsc and runc write themselves into cgroup.procs). The node then primes cgroup
	// migrations while it prepares the start (oci.PrimeMigration).
	JoinsCgroups bool
}

// Spec is everything a driver needs to start one sandbox.
type Spec struct {
	ID string
	// RootFS is the prepared, writable root filesystem directory (an overlay whose upper
	// layer belongs to this sandbox).
	RootFS string
	// StateDir is a host directory owned by this sandbox; the driver may keep its bundle
	// and logs there. The node removes it after Destroy.
	StateDir string
	// NetNSPath is the sandbox's network namespace ("" = no network at all).
	NetNSPath string
	Hostname  string
	// AgentPath is the host path of the warren-agent binary, mounted read-only at
	// AgentMountPath and run as PID 1 with AgentArgs and AgentEnv. The node passes the
	// agent's config as a file in the root filesystem (AgentConfigPath), never in
	// AgentEnv: every process of the sandbox could read PID 1's environment.
	AgentPath string
	AgentArgs []string
	AgentEnv  []string
	// ResolvConf is a host file mounted read-only at /etc/resolv.conf ("" = leave as is).
	ResolvConf string
	Limits     domain.Limits
	// Slot is the sandbox's address slot, unique among the node's live sandboxes; a
	// user-namespaced driver (IDShifter) maps the sandbox onto IDRange(Slot).
	Slot int
}

// AgentMountPath is where every driver places warren-agent inside the sandbox.
const AgentMountPath = "/.warren/warren-agent"

// AgentConfigPath is where, inside the sandbox, the node leaves warren-agent's JSON
// config (it holds the access token) before the start: a root-only file in the sandbox's
// own writable layer, which the agent reads and removes before anything else runs. A
// restored sandbox does not read it again: it takes its new identity through /init.
const AgentConfigPath = "/.warren/agent.json"

// AgentPort is the port warren-agent listens on inside every sandbox (envd's port).
const AgentPort = 49983

// Status is what a driver knows about a sandbox.
type Status int

// Sandbox statuses as seen by a driver.
const (
	StatusUnknown Status = iota
	StatusRunning
	StatusStopped
	StatusGone // the driver has no trace of it
)

func (s Status) String() string {
	switch s {
	case StatusRunning:
		return "running"
	case StatusStopped:
		return "stopped"
	case StatusGone:
		return "gone"
	}
	return "unknown"
}

// Driver runs sandboxes. A sandbox's lifetime is never tied to the ctx of Start: ctx
// bounds only the call itself.
type Driver interface {
	Capabilities() Capabilities
	// Start creates and starts the sandbox and returns its persisted handle.
	Start(ctx context.Context, spec Spec) (Handle, error)
	// Status reports whether the sandbox behind h is still running.
	Status(ctx context.Context, h Handle) (Status, error)
	// Destroy kills every process of the sandbox and removes every trace the driver left
	// (runtime state, cgroups). It succeeds on an already destroyed sandbox.
	Destroy(ctx context.Context, h Handle) error
	// List returns the ids of every sandbox the driver knows on this host, for the
	// node's orphan sweep after a restart.
	List(ctx context.Context) ([]string, error)
}

// Handle is a driver's persisted reference to a sandbox (stored as JSON).
type Handle struct {
	ID     string `json:"id"`
	Driver string `json:"driver"`
	// PID of the sandbox's root process on the host, when the driver has one.
	PID int `json:"pid,omitempty"`
	// Data is driver-specific.
	Data map[string]string `json:"data,omitempty"`
}

// Stats is a point-in-time resource reading of one sandbox.
type Stats struct {
	CPUSeconds  float64
	MemoryBytes int64
	MemoryLimit int64
	PIDs        int64
}

// StatsReader is implemented by drivers that can read a sandbox's resource use.
type StatsReader interface {
	Stats(ctx context.Context, h Handle) (Stats, error)
}

// Killer is implemented by drivers that can make a sandbox's processes die at once,
// without waiting for the host to reclaim them (which can take a second for a large
// sandbox). Destroy must still be called to remove what is left.
type Killer interface {
	Kill(ctx context.Context, h Handle) error
}

// IDShifter is implemented by drivers whose sandboxes run in a user namespace. Each
// sandbox gets its own host id range, derived from its address slot (unique among the
// node's live sandboxes), so root escaping one sandbox owns nothing of another. The
// template's root filesystem is owned by host root: the node mounts it id-mapped into
// the sandbox's range as the overlay's lower layer, and gives the sandbox's writable
// layer to the range's root. The driver maps the sandbox's user namespace onto the same
// range (Spec.Slot).
type IDShifter interface {
	// IDRange returns the host id range of the sandbox at address slot slot: root in
	// it is host UID:GID, and ids 0..Size-1 map to UID..UID+Size-1.
	IDRange(slot int) (IDRange, error)
}

// IDRange is a sandbox's host id range.
type IDRange struct {
	UID, GID, Size uint32
}

// ProcessLimiter is implemented by drivers whose sandboxes need warren-agent to give
// the processes it starts an RLIMIT_NPROC, because reaching the sandbox's own pids
// limit would end the whole sandbox (gVisor: the host pids cgroup counts the sentry's
// tasks). The limit never binds the agent itself (see oci.AgentCap), so a fork bomb,
// even as root, cannot leave it without threads.
type ProcessLimiter interface {
	// ProcessLimit returns the RLIMIT_NPROC for the processes of a sandbox with
	// limits l (0: none).
	ProcessLimit(l domain.Limits) uint64
}

// Checkpointer is implemented by drivers that can save a running sandbox's memory and
// kernel state to a directory and start sandboxes from it (pause/resume, fork,
// snapshots). The image holds no files: a restored sandbox's root filesystem must hold
// them exactly as they were at the checkpoint (the node keeps or copies the sandbox's
// writable layer for that).
type Checkpointer interface {
	// Checkpoint saves the sandbox's memory and kernel state into imageDir (created if
	// missing). With leaveRunning the sandbox goes on running afterwards (it stays
	// frozen if it was frozen); otherwise it exits once saved and the driver removes its
	// runtime state, so that Restore can reuse its id. When Checkpoint fails the sandbox
	// is left as it was (running, or frozen).
	Checkpoint(ctx context.Context, h Handle, imageDir string, leaveRunning bool) error
	// Restore starts spec's sandbox from the image in imageDir. spec.RootFS must hold
	// the files exactly as they were at the checkpoint. The restored sandbox takes the
	// address of spec's network namespace. On error nothing of it is left.
	Restore(ctx context.Context, spec Spec, imageDir string) (Handle, error)
}

// Freezer is implemented by drivers that can stop every process of a sandbox in place
// and let them go on later (used around a checkpoint that leaves the sandbox running,
// so that the files copied next match its memory).
type Freezer interface {
	Freeze(ctx context.Context, h Handle) error
	Thaw(ctx context.Context, h Handle) error
}

// ErrNotAvailable is returned by a driver constructor when its runtime cannot work on
// this host; the message says what is missing.
var ErrNotAvailable = errors.New("runtime not available on this host")
