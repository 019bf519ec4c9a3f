package agent

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// limitProcesses makes every process the agent starts from now on run with
// RLIMIT_NPROC n, while the agent itself stays free of it (a fork bomb that uses up its
// user's budget, root's included, must not stop the agent from making a thread). Two
// ways, chosen once:
//
//   - inherit: when the agent holds CAP_SYS_RESOURCE (the drivers give it to PID 1,
//     see DropAgentCap), which lifts RLIMIT_NPROC for the agent's own forks and
//     threads, and no child can get it or CAP_SYS_ADMIN (the other cap that lifts it),
//     the agent sets the limit on itself: children inherit it at fork, so it is in
//     place before their first instruction, at no cost.
//   - exec step: otherwise every process is started through the agent's own binary as a
//     helper that sets the limit and execs the program (ExecHelperArg; a few ms more).
//
// Preconditions: called by New before any process is started.
func (m *manager) limitProcesses(n uint64) (mode string, err error) {
	if canInheritLimit() {
		if err := DropAgentCap(); err != nil {
			return "", fmt.Errorf("dropping CAP_SYS_RESOURCE for the processes the agent starts: %w", err)
		}
		if err := unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: n, Max: n}); err != nil {
			return "", fmt.Errorf("setting RLIMIT_NPROC %d: %w", n, err)
		}
		return "inherit", nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the agent's own binary for the exec step of process_limit: %w", err)
	}
	m.nproc, m.self = n, self
	return "exec step", nil
}

// canInheritLimit reports whether the agent may set RLIMIT_NPROC on itself: it holds
// CAP_SYS_RESOURCE (so the limit does not bind it) and CAP_SYS_ADMIN is not in its
// bounding set (so no child can escape the limit through it).
func canInheritLimit() bool {
	c, err := capabilities()
	if err != nil || c[0].Effective&(1<<unix.CAP_SYS_RESOURCE) == 0 {
		return false
	}
	admin, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, unix.CAP_SYS_ADMIN, 0, 0, 0)
	return err == nil && admin == 0
}

func capabilities() ([2]unix.CapUserData, error) {
	var data [2]unix.CapUserData
	err := unix.Capget(&unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}, &data[0])
	return data, err
}

// DropAgentCap removes CAP_SYS_RESOURCE from the bounding, inheritable and ambient
// sets, keeping it in the agent's own permitted and effective sets, so that no process
// the agent starts (root included) can hold it. The drivers give it to PID 1 alone
// (oci.AgentCap): holding a capability that no other process of the sandbox has keeps
// the sandbox's root from tracing the agent or reading its memory, environment and
// fds, and it lifts RLIMIT_NPROC for the agent (limitProcesses). warren-agent calls it
// first thing as PID 1; New's limitProcesses calls it again, which then returns at
// once: the drop cannot be undone, and each call costs several milliseconds of the
// agent's start-up under gVisor (stop-the-world syscalls on every thread), which is on
// the critical path of every cold create.
func DropAgentCap() error {
	if capDropped.Load() {
		return nil
	}
	// Capability sets belong to each thread, and Go forks children from any of its
	// threads: every thread must drop it (AllThreadsSyscall; the agent is built without
	// cgo), else a child forked from a thread that kept it would still hold it.
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, unix.CAP_SYS_RESOURCE, 0); e != 0 {
		return fmt.Errorf("PR_CAPBSET_DROP on every thread: %w", e)
	}
	c, err := capabilities()
	if err != nil {
		return err
	}
	// An ambient capability must also be inheritable (capabilities(7)): with none
	// inheritable (the drivers give PID 1 none) the ambient set is empty, and clearing
	// it would cost one more stop-the-world syscall on the start-up path. The threads
	// all hold what the process was started with (nothing changed them yet).
	if c[0].Inheritable != 0 || c[1].Inheritable != 0 {
		if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); e != 0 && e != syscall.EINVAL {
			return fmt.Errorf("clearing ambient capabilities on every thread: %w", e)
		}
	}
	if c[0].Inheritable&(1<<unix.CAP_SYS_RESOURCE) != 0 {
		c[0].Inheritable &^= 1 << unix.CAP_SYS_RESOURCE
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&c[0])), 0); e != 0 {
			return fmt.Errorf("capset on every thread: %w", e)
		}
	}
	// No walk of /proc/self/task to check (it took 10-20 ms of a cold create under
	// gVisor): AllThreadsSyscall ran each call on every thread and ends the agent if any
	// thread's result differs from the first's, so the drops above hold on all of them.
	// test/abuse reads every thread's sets from inside a sandbox.
	capDropped.Store(true)
	return nil
}

// capDropped records that DropAgentCap succeeded (every thread was checked).
var capDropped atomic.Bool

// ExecHelperArg, as the first argument of warren-agent, makes it the exec step that
// gives a started process its RLIMIT_NPROC (Config.ProcessLimit): the agent starts
// "<agent> ExecHelperArg <limit> <path> <argv...>" with the process's credentials,
// files and directory; the helper lowers RLIMIT_NPROC to <limit> (soft and hard, so the
// process cannot raise it back) and execs path with argv. The limit is thus in place
// before the first instruction of the user's program, and the agent itself (PID 1)
// keeps no limit: a fork bomb that uses up its user's budget (root's too) cannot stop
// the agent from making the threads it needs. Any binary that runs an [Agent] with a
// ProcessLimit must call [RunExecHelper] first thing in main.
const ExecHelperArg = "--warren-exec-nproc"

// execHelperErrFD is the helper's fd on which it reports a failed exec (an errno in
// decimal); it is close-on-exec, so a successful exec leaves it empty.
const execHelperErrFD = 3

// execHelperTimeout bounds how long the agent waits for the helper to exec.
const execHelperTimeout = 30 * time.Second

// RunExecHelper runs the exec step when args (os.Args) ask for it, and does not return
// then; otherwise it returns at once.
func RunExecHelper(args []string) {
	if len(args) < 2 || args[1] != ExecHelperArg {
		return
	}
	os.Exit(execHelper(args[2:]))
}

func execHelper(args []string) int {
	errf := os.NewFile(execHelperErrFD, "exec-helper-errors")
	fail := func(errno syscall.Errno) int {
		_, _ = fmt.Fprint(errf, int(errno))
		return 127
	}
	if len(args) < 3 {
		return fail(syscall.EINVAL)
	}
	n, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil {
		return fail(syscall.EINVAL)
	}
	if _, err := unix.FcntlInt(execHelperErrFD, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return fail(errnoOf(err))
	}
	if err := unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: n, Max: n}); err != nil {
		return fail(errnoOf(err))
	}
	return fail(errnoOf(syscall.Exec(args[1], args[2:], os.Environ())))
}

func errnoOf(err error) syscall.Errno {
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EINVAL
}

// startLimitedChild is startChild through the exec step: the shell's fast path first
// when it applies, else spec as asked.
func startLimitedChild(self string, limit uint64, spec startSpec, attr *os.ProcAttr) (int, error) {
	if d, ok := direct(spec); ok {
		a := *attr
		a.Env = d.env
		if pid, err := startLimited(self, limit, d, &a); err == nil {
			directStarts.Add(1)
			return pid, nil
		}
	}
	return startLimited(self, limit, spec, attr)
}

// startLimited starts spec's program through the exec helper with RLIMIT_NPROC limit
// and returns its pid once the program runs (or the exec's error, as os.StartProcess
// would report it). Preconditions: called inside reaper.spawn (the read lock held), so
// no wait4(-1) can reap the helper before this returns.
func startLimited(self string, limit uint64, spec startSpec, attr *os.ProcAttr) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	a := *attr
	a.Files = append(slices.Clip(attr.Files), w)
	argv := append([]string{self, ExecHelperArg, strconv.FormatUint(limit, 10), spec.path}, spec.argv...)
	child, err := os.StartProcess(self, argv, &a)
	_ = w.Close()
	if err != nil {
		return 0, fmt.Errorf("starting the exec step (%s): %w", self, err)
	}
	pid := child.Pid
	_ = child.Release()
	_ = r.SetReadDeadline(time.Now().Add(execHelperTimeout))
	msg, rerr := io.ReadAll(io.LimitReader(r, 64))
	if len(msg) == 0 && rerr == nil {
		return pid, nil // EOF: the exec closed the pipe
	}
	// The helper failed (or hangs): make sure it is gone and reap it here.
	_ = syscall.Kill(pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	if len(msg) == 0 {
		return 0, fmt.Errorf("the exec step for %s did not finish: %w", spec.path, rerr)
	}
	errno, perr := strconv.Atoi(string(msg))
	if perr != nil {
		return 0, fmt.Errorf("the exec step for %s failed: %q", spec.path, msg)
	}
	return 0, &os.PathError{Op: "fork/exec", Path: spec.path, Err: syscall.Errno(errno)}
}
