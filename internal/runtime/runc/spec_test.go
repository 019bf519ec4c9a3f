package runc

import (
	"slices"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/oci"
)

// TestIDRanges checks that sandboxes at different slots get disjoint host id ranges, none
// of them the host's first subordinate range, and that a slot with no range below 2^32
// is refused rather than wrapped.
func TestIDRanges(t *testing.T) {
	m := DefaultIDMap
	seen := map[uint32]int{}
	var prevEnd uint32 = m.HostUID + m.Size
	for slot := 0; slot < 1000; slot++ {
		r, err := m.rangeOf(slot)
		if err != nil {
			t.Fatal(err)
		}
		if r.UID < prevEnd || r.GID != r.UID || r.Size != 65536 {
			t.Fatalf("slot %d: range %+v overlaps the one before (ending at %d)", slot, r, prevEnd)
		}
		if other, ok := seen[r.UID]; ok {
			t.Fatalf("slots %d and %d share base %d", other, slot, r.UID)
		}
		seen[r.UID] = slot
		prevEnd = r.UID + r.Size
	}
	if r, _ := m.rangeOf(0); r.UID != 165536 {
		t.Errorf("slot 0 starts at %d, want 165536", r.UID)
	}
	if _, err := m.rangeOf(65534); err == nil {
		t.Error("slot 65534 got a range past 2^32")
	}
	if _, err := m.rangeOf(-1); err == nil {
		t.Error("slot -1 got a range")
	}
}

func TestBuildSpec(t *testing.T) {
	d := &Driver{cfg: Config{CgroupParent: "/warren", IDMap: DefaultIDMap}}
	base := runtime.Spec{ID: "abc", RootFS: "/r", AgentPath: "/a", Limits: domain.Limits{CPUCores: 0.5, MemoryMB: 256, MaxProcesses: 64}}
	withNet := base
	withNet.NetNSPath = "/var/run/netns/x"
	nsTypes := func(sp *oci.Spec) map[string]string {
		m := map[string]string{}
		for _, ns := range sp.Linux.Namespaces {
			m[ns.Type] = ns.Path
		}
		return m
	}
	cases := []struct {
		name    string
		spec    runtime.Spec
		netPath string
	}{
		{"network namespace of the node", withNet, "/var/run/netns/x"},
		{"no network: a fresh empty namespace", base, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sp := d.buildSpec(c.spec, runtime.IDRange{UID: 231072, GID: 231072, Size: 65536})
			ns := nsTypes(sp)
			for _, want := range []string{"user", "pid", "ipc", "uts", "mount", "cgroup", "network"} {
				if _, ok := ns[want]; !ok {
					t.Errorf("no %s namespace", want)
				}
			}
			if ns["network"] != c.netPath {
				t.Errorf("network namespace path %q, want %q", ns["network"], c.netPath)
			}
			if len(sp.Linux.UIDMappings) != 1 || sp.Linux.UIDMappings[0] != (oci.IDMapping{ContainerID: 0, HostID: 231072, Size: 65536}) {
				t.Errorf("uid mappings %+v", sp.Linux.UIDMappings)
			}
			if !sp.Process.NoNewPrivileges {
				t.Error("no_new_privs not set")
			}
			if slices.Contains(sp.Process.Capabilities.Bounding, "CAP_NET_RAW") || slices.Contains(sp.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") {
				t.Errorf("capabilities %v", sp.Process.Capabilities.Bounding)
			}
			if sp.Linux.Seccomp == nil || sp.Linux.Seccomp.DefaultAction != "SCMP_ACT_ERRNO" {
				t.Errorf("seccomp %+v", sp.Linux.Seccomp)
			}
			for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/sys/firmware", "/proc/scsi", "/proc/acpi"} {
				if !slices.Contains(sp.Linux.MaskedPaths, p) {
					t.Errorf("%s not masked", p)
				}
			}
			for _, p := range []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"} {
				if !slices.Contains(sp.Linux.ReadonlyPaths, p) {
					t.Errorf("%s not read-only", p)
				}
			}
			r := sp.Linux.Resources
			if r == nil || len(r.Devices) != 1 || r.Devices[0].Allow || r.Memory.Limit != 256<<20 || r.CPU.Quota != 50000 || r.Pids.Limit != 64 {
				t.Errorf("resources %+v", r)
			}
			for _, m := range sp.Mounts {
				if m.Destination == "/sys" && m.Type != "tmpfs" {
					t.Errorf("/sys is %s; sysfs cannot be mounted from a user namespace that does not own the network namespace", m.Type)
				}
				if m.Destination == runtime.AgentMountPath && !slices.Contains(m.Options, "ro") {
					t.Errorf("agent mount %+v is not read-only", m)
				}
			}
		})
	}
}

func TestSeccompProfile(t *testing.T) {
	s := oci.DefaultSeccomp()
	allowed := map[string]bool{}
	for _, r := range s.Syscalls {
		if r.Action == "SCMP_ACT_ALLOW" && len(r.Args) == 0 {
			for _, n := range r.Names {
				allowed[n] = true
			}
		}
	}
	denied := []string{"keyctl", "add_key", "request_key", "bpf", "perf_event_open", "ptrace", "process_vm_readv",
		"mount", "umount2", "unshare", "setns", "kexec_load", "kexec_file_load", "init_module", "finit_module",
		"delete_module", "open_by_handle_at", "name_to_handle_at", "userfaultfd", "reboot", "swapon", "swapoff",
		"syslog", "pivot_root", "acct", "settimeofday", "clock_settime", "quotactl", "lookup_dcookie", "iopl",
		"ioperm", "vm86", "vm86old", "io_uring_setup", "fsopen", "open_tree", "move_mount", "clone", "clone3", "personality",
		"socketcall"}
	for _, n := range denied {
		if allowed[n] {
			t.Errorf("%s is allowed unconditionally", n)
		}
	}
	for _, n := range []string{"execve", "read", "write", "futex", "epoll_pwait", "wait4", "setresuid", "getdents64", "rt_sigreturn"} {
		if !allowed[n] {
			t.Errorf("%s is not allowed; ordinary programs need it", n)
		}
	}
	var cloneOK bool
	for _, r := range s.Syscalls {
		if len(r.Names) == 1 && r.Names[0] == "clone" && len(r.Args) == 1 && r.Args[0].Op == "SCMP_CMP_MASKED_EQ" && r.Args[0].Value&0x10000000 != 0 && r.Args[0].ValueTwo == 0 {
			cloneOK = true
		}
	}
	if !cloneOK {
		t.Error("clone is not limited to calls without namespace flags")
	}
	// Only the native ABI: a compat ABI (i386 int 0x80, x32, AArch32) would reach the
	// kernel's compat entry points and socketcall.
	if len(s.Architectures) != 1 || (s.Architectures[0] != "SCMP_ARCH_X86_64" && s.Architectures[0] != "SCMP_ARCH_AARCH64") {
		t.Errorf("architectures %v, want the native one only", s.Architectures)
	}
	if *s.DefaultErrnoRet != 1 {
		t.Errorf("default errno %d, want EPERM", *s.DefaultErrnoRet)
	}
}
