// Package oci builds the OCI runtime spec shared by the container-style drivers (gVisor
// and runc): warren-agent as PID 1, the prepared root filesystem, the sandbox's network
// namespace and its resource limits.
package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/warren-sh/warren/internal/runtime"
)

// Spec is the subset of the OCI runtime spec Warren writes.
type Spec struct {
	OCIVersion string  `json:"ociVersion"`
	Process    Process `json:"process"`
	Root       Root    `json:"root"`
	Hostname   string  `json:"hostname,omitempty"`
	Mounts     []Mount `json:"mounts"`
	Linux      Linux   `json:"linux"`
}

// Process is the container's init process.
type Process struct {
	Terminal        bool          `json:"terminal"`
	User            User          `json:"user"`
	Args            []string      `json:"args"`
	Env             []string      `json:"env"`
	Cwd             string        `json:"cwd"`
	Capabilities    *Capabilities `json:"capabilities,omitempty"`
	Rlimits         []Rlimit      `json:"rlimits,omitempty"`
	NoNewPrivileges bool          `json:"noNewPrivileges,omitempty"`
}

// User is the uid/gid of the init process.
type User struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

// Capabilities are the init process's capability sets.
type Capabilities struct {
	Bounding  []string `json:"bounding"`
	Effective []string `json:"effective"`
	Permitted []string `json:"permitted"`
}

// Rlimit is one POSIX resource limit.
type Rlimit struct {
	Type string `json:"type"`
	Hard uint64 `json:"hard"`
	Soft uint64 `json:"soft"`
}

// Root is the root filesystem.
type Root struct {
	Path     string `json:"path"`
	Readonly bool   `json:"readonly"`
}

// Mount is one mount in the container.
type Mount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type,omitempty"`
	Source      string   `json:"source,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// Linux holds Linux-specific settings.
type Linux struct {
	Namespaces    []Namespace `json:"namespaces"`
	UIDMappings   []IDMapping `json:"uidMappings,omitempty"`
	GIDMappings   []IDMapping `json:"gidMappings,omitempty"`
	Resources     *Resources  `json:"resources,omitempty"`
	CgroupsPath   string      `json:"cgroupsPath,omitempty"`
	Seccomp       *Seccomp    `json:"seccomp,omitempty"`
	MaskedPaths   []string    `json:"maskedPaths,omitempty"`
	ReadonlyPaths []string    `json:"readonlyPaths,omitempty"`
}

// IDMapping maps Size ids from ContainerID in a user namespace to HostID on the host.
type IDMapping struct {
	ContainerID uint32 `json:"containerID"`
	HostID      uint32 `json:"hostID"`
	Size        uint32 `json:"size"`
}

// Namespace is a namespace to create or join (Path set).
type Namespace struct {
	Type string `json:"type"`
	Path string `json:"path,omitempty"`
}

// Resources are cgroup limits.
type Resources struct {
	Devices []DeviceRule `json:"devices,omitempty"`
	Memory  *Memory      `json:"memory,omitempty"`
	CPU     *CPU         `json:"cpu,omitempty"`
	Pids    *Pids        `json:"pids,omitempty"`
}

// DeviceRule allows or denies device access in the devices cgroup.
type DeviceRule struct {
	Allow  bool   `json:"allow"`
	Access string `json:"access,omitempty"`
}

// Memory limits in bytes.
type Memory struct {
	Limit int64 `json:"limit,omitempty"`
}

// CPU limits as a CFS quota over a period (microseconds).
type CPU struct {
	Quota  int64  `json:"quota,omitempty"`
	Period uint64 `json:"period,omitempty"`
}

// Pids limits the number of tasks.
type Pids struct {
	Limit int64 `json:"limit"`
}

// DefaultCaps is Docker's default capability set: what the agent needs to switch users,
// own files and signal its children, without administrative powers.
var DefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// ContainerCaps is DefaultCaps without CAP_NET_RAW, for sandboxes whose syscalls reach
// the host kernel: no raw or packet sockets (ping works through ICMP datagram sockets).
var ContainerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// AgentCap is the capability the drivers give PID 1 (warren-agent) on top of the
// sandbox's set. The agent drops it from its bounding and inheritable sets before it
// starts anything (agent.DropAgentCap), so it is the only process of the sandbox that
// holds it. That makes it untraceable by the sandbox's root: ptrace, /proc/1/mem,
// /proc/1/environ and /proc/1/fd need a caller whose capabilities cover the target's
// (on Linux and in gVisor alike). And it lifts RLIMIT_NPROC for the agent's own forks
// and threads, so a fork bomb that uses up the limit its processes get
// (runtime.ProcessLimiter) cannot stop the agent from making a thread.
const AgentCap = "CAP_SYS_RESOURCE"

// AgentCaps returns the capability sets of PID 1 for a sandbox whose processes get base.
func AgentCaps(base []string) *Capabilities {
	caps := append(append([]string(nil), base...), AgentCap)
	return &Capabilities{Bounding: caps, Effective: caps, Permitted: caps}
}

// MaskedPaths are hidden from container sandboxes (Docker's list): kernel memory, keys,
// timers and scheduler internals, firmware and hardware details.
var MaskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
}

// ReadonlyPaths are read-only in container sandboxes (Docker's list).
var ReadonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// CgroupPath is the sandbox's cgroup path relative to each controller's root; parent is
// the node's cgroup (default "/warren").
func CgroupPath(parent, id string) string { return parent + "/" + id }

// Build returns the spec for s, with its cgroup under parent.
func Build(s runtime.Spec, parent string) *Spec {
	env := append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, s.AgentEnv...)
	sp := &Spec{
		OCIVersion: "1.0.2",
		Process: Process{
			User:         User{UID: 0, GID: 0},
			Args:         append([]string{runtime.AgentMountPath}, s.AgentArgs...),
			Env:          env,
			Cwd:          "/",
			Capabilities: AgentCaps(DefaultCaps),
			Rlimits:      []Rlimit{{Type: "RLIMIT_NOFILE", Hard: 1 << 20, Soft: 1 << 20}},
		},
		Root:     Root{Path: s.RootFS},
		Hostname: s.Hostname,
		Mounts: []Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: runtime.AgentMountPath, Type: "bind", Source: s.AgentPath, Options: []string{"bind", "ro"}},
		},
		Linux: Linux{
			Namespaces: []Namespace{
				{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"},
			},
			CgroupsPath: CgroupPath(parent, s.ID),
		},
	}
	if s.ResolvConf != "" {
		sp.Mounts = append(sp.Mounts, Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: s.ResolvConf, Options: []string{"bind", "ro"}})
	}
	if s.NetNSPath != "" {
		sp.Linux.Namespaces = append(sp.Linux.Namespaces, Namespace{Type: "network", Path: s.NetNSPath})
	}
	res := &Resources{}
	if s.Limits.MemoryMB > 0 {
		res.Memory = &Memory{Limit: s.Limits.MemoryMB << 20}
	}
	if s.Limits.CPUCores > 0 {
		const period = 100000
		res.CPU = &CPU{Quota: int64(s.Limits.CPUCores * period), Period: period}
	}
	if s.Limits.MaxProcesses > 0 {
		res.Pids = &Pids{Limit: s.Limits.MaxProcesses}
	}
	sp.Linux.Resources = res
	return sp
}

// WriteBundle writes spec as <dir>/config.json and returns dir.
func WriteBundle(dir string, sp *Spec) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(sp, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("writing OCI bundle: %w", err)
	}
	return nil
}
