package oci

import (
	goruntime "runtime"
	"slices"
)

// Seccomp is the OCI seccomp configuration.
type Seccomp struct {
	DefaultAction   string           `json:"defaultAction"`
	DefaultErrnoRet *uint            `json:"defaultErrnoRet,omitempty"`
	Architectures   []string         `json:"architectures,omitempty"`
	Syscalls        []SeccompSyscall `json:"syscalls,omitempty"`
}

// SeccompSyscall is one rule: an action for the named syscalls, when Args match.
type SeccompSyscall struct {
	Names    []string     `json:"names"`
	Action   string       `json:"action"`
	ErrnoRet *uint        `json:"errnoRet,omitempty"`
	Args     []SeccompArg `json:"args,omitempty"`
}

// SeccompArg compares one syscall argument. For SCMP_CMP_MASKED_EQ, Value is the mask
// and ValueTwo the value the masked argument must equal.
type SeccompArg struct {
	Index    uint   `json:"index"`
	Value    uint64 `json:"value"`
	ValueTwo uint64 `json:"valueTwo"`
	Op       string `json:"op"`
}

// Errno values the profile returns.
const (
	errnoEPERM  = 1
	errnoENOSYS = 38
)

// cloneNamespaceFlags are the clone flags that create namespaces (CLONE_NEWNS, NEWUTS,
// NEWIPC, NEWUSER, NEWPID, NEWNET, NEWCGROUP): Docker's mask 0x7E020000.
const cloneNamespaceFlags = 0x7E020000

// allowedSyscalls is Docker's default allowlist (moby profiles/seccomp/default.json,
// the rules that need no capability), made stricter: io_uring_* (a large kernel attack
// surface, dropped by Docker later too) and name_to_handle_at (the first half of the
// open_by_handle_at container escape) are not allowed. Everything not listed fails
// with EPERM, among them: keyctl, add_key, request_key, bpf, perf_event_open, ptrace,
// process_vm_readv/writev, mount, umount2, pivot_root, unshare, setns, kexec_*,
// init_module, finit_module, delete_module, open_by_handle_at, userfaultfd, reboot,
// swapon, swapoff, syslog, acct, settimeofday, clock_settime, quotactl, lookup_dcookie,
// iopl, ioperm, vm86, sethostname, fanotify_init and the new mount API.
var allowedSyscalls = []string{
	"accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
	"capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
	"clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
	"clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
	"copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
	"epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
	"epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
	"faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark",
	"fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl",
	"fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
	"fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync",
	"ftruncate", "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait",
	"futex_waitv", "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64",
	"getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
	"getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
	"getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32",
	"getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt",
	"get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr",
	"getxattrat", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
	"io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents",
	"io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "ipc",
	"kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
	"lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr",
	"listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat",
	"lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret",
	"mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
	"mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
	"mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
	"mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall",
	"munmap", "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2",
	"pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
	"pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv",
	"preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64",
	"pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv",
	"recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages",
	"removexattr", "removexattrat", "rename", "renameat", "renameat2", "restart_syscall",
	"rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
	"rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
	"rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
	"sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
	"sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
	"sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
	"select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
	"sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
	"setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32",
	"setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid",
	"setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
	"set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address",
	"setuid", "setuid32", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget",
	"shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn",
	"socketpair", "splice", "stat", "stat64", "statfs", "statfs64", "statx",
	"symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill",
	"time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
	"timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
	"timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
	"times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink",
	"unlinkat", "uretprobe", "utime", "utimensat", "utimensat_time64", "utimes", "vfork",
	"vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
	// Granted through capabilities the sandbox holds (CAP_SYS_CHROOT).
	"chroot",
}

// archSyscalls are allowed on one architecture only.
var archSyscalls = map[string][]string{
	"amd64": {"arch_prctl", "modify_ldt"},
	"arm64": {"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"},
}

// seccompArches are the ABIs the filter covers: the native one only. A syscall made
// through a compat ABI (int 0x80 on x86-64, x32, AArch32) matches no rule for its
// architecture and is refused by the runtime's bad-architecture action, so the compat
// entry points — and socketcall, through which the 32-bit ABI multiplexes socket calls
// past the socket(2) argument rules — are out of reach.
var seccompArches = map[string][]string{
	"amd64": {"SCMP_ARCH_X86_64"},
	"arm64": {"SCMP_ARCH_AARCH64"},
}

// DefaultSeccomp returns the seccomp profile of container sandboxes: default action
// EPERM, Docker's allowlist made stricter (see allowedSyscalls), clone without
// namespace flags, clone3 answering ENOSYS (so libc falls back to clone, whose flags the
// filter can see), socket without AF_VSOCK, and personality limited to the values
// Docker allows.
func DefaultSeccomp() *Seccomp {
	eperm, enosys := uint(errnoEPERM), uint(errnoENOSYS)
	allow := slices.Clone(allowedSyscalls)
	allow = append(allow, archSyscalls[goruntime.GOARCH]...)
	s := &Seccomp{
		DefaultAction:   "SCMP_ACT_ERRNO",
		DefaultErrnoRet: &eperm,
		Architectures:   seccompArches[goruntime.GOARCH],
		Syscalls: []SeccompSyscall{
			{Names: allow, Action: "SCMP_ACT_ALLOW"},
			{Names: []string{"clone"}, Action: "SCMP_ACT_ALLOW", Args: []SeccompArg{{Index: 0, Value: cloneNamespaceFlags, ValueTwo: 0, Op: "SCMP_CMP_MASKED_EQ"}}},
			{Names: []string{"clone3"}, Action: "SCMP_ACT_ERRNO", ErrnoRet: &enosys},
			{Names: []string{"socket"}, Action: "SCMP_ACT_ALLOW", Args: []SeccompArg{{Index: 0, Value: 40, Op: "SCMP_CMP_NE"}}}, // AF_VSOCK
		},
	}
	// personality(2): only the execution domains Docker allows (PER_LINUX, PER_LINUX32,
	// UNAME26 variants, and the query 0xffffffff).
	for _, v := range []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff} {
		s.Syscalls = append(s.Syscalls, SeccompSyscall{Names: []string{"personality"}, Action: "SCMP_ACT_ALLOW",
			Args: []SeccompArg{{Index: 0, Value: v, Op: "SCMP_CMP_EQ"}}})
	}
	return s
}
