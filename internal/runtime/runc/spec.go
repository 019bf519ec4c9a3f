package runc

import (
	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/oci"
)

// maxNoFile is the open-files limit sandboxes get, capped by the driver's own hard limit:
// raising a hard limit needs CAP_SYS_RESOURCE on the host, which a sandbox in a user
// namespace does not have.
const maxNoFile = 1 << 20

// buildSpec is the shared OCI spec hardened for a sandbox on the host kernel:
//   - a user namespace mapping sandbox ids 0..Size-1 to the driver's host range, so root
//     inside is an unprivileged id outside;
//   - a cgroup namespace, so the sandbox sees its own cgroup as "/";
//   - the seccomp profile of oci.DefaultSeccomp, no_new_privs, Docker's capabilities
//     without CAP_NET_RAW, Docker's masked and read-only paths;
//   - the devices cgroup denying every device but runc's default set (null, zero, full,
//     random, urandom, tty, ptmx and the sandbox's own pts);
//   - an empty read-only tmpfs at /sys: sysfs cannot be mounted by a user namespace that
//     does not own the network namespace (the node's, deliberately not the sandbox's:
//     root inside must not reconfigure its address or routes), and a bind of the host's
//     /sys would show other sandboxes' cgroups and interfaces;
//   - a fresh, empty network namespace when the sandbox has no network.
func (d *Driver) buildSpec(s runtime.Spec, r runtime.IDRange) *oci.Spec {
	sp := oci.Build(s, d.cfg.CgroupParent)
	sp.Process.Capabilities = oci.AgentCaps(oci.ContainerCaps)
	sp.Process.NoNewPrivileges = true
	nofile := uint64(maxNoFile)
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && rl.Max < nofile {
		nofile = rl.Max
	}
	sp.Process.Rlimits = []oci.Rlimit{{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile}}

	for i, m := range sp.Mounts {
		if m.Destination == "/sys" {
			sp.Mounts[i] = oci.Mount{Destination: "/sys", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "noexec", "nodev", "ro", "size=16k"}}
		}
	}
	sp.Mounts = append(sp.Mounts, oci.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}})

	sp.Linux.Namespaces = append(sp.Linux.Namespaces, oci.Namespace{Type: "user"}, oci.Namespace{Type: "cgroup"})
	if s.NetNSPath == "" {
		sp.Linux.Namespaces = append(sp.Linux.Namespaces, oci.Namespace{Type: "network"})
	}
	sp.Linux.UIDMappings = []oci.IDMapping{{ContainerID: 0, HostID: r.UID, Size: r.Size}}
	sp.Linux.GIDMappings = []oci.IDMapping{{ContainerID: 0, HostID: r.GID, Size: r.Size}}
	sp.Linux.Seccomp = oci.DefaultSeccomp()
	sp.Linux.MaskedPaths = oci.MaskedPaths
	sp.Linux.ReadonlyPaths = oci.ReadonlyPaths
	if sp.Linux.Resources == nil {
		sp.Linux.Resources = &oci.Resources{}
	}
	sp.Linux.Resources.Devices = []oci.DeviceRule{{Allow: false, Access: "rwm"}}
	return sp
}
