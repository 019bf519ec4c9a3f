package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/envdpb/process"
	"github.com/warren-sh/warren/internal/logkey"
)

// defaultPath is the PATH every process starts with (sandbox-wide or request envs may
// override it).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultRetain is how long a finished process's end event stays available to
// Connect (envd keeps it 30 s).
const defaultRetain = 30 * time.Second

// startSpec is a fully resolved request to start a process.
type startSpec struct {
	path    string   // executable, absolute or relative to dir
	argv    []string // argv[0] is the command as requested
	env     []string
	dir     string
	user    *User
	pty     *process.PTY // nil for pipes
	stdin   bool         // pipe processes: give the process a stdin pipe (else /dev/null)
	tag     *string
	config  *process.ProcessConfig
	timeout time.Duration // lifetime; 0 means none
}

// manager tracks the processes the agent started.
type manager struct {
	log    *slog.Logger
	reaper *reaper
	retain time.Duration
	// nproc, when positive, is the RLIMIT_NPROC every started process gets through
	// the exec helper at self (Config.ProcessLimit); see ExecHelperArg.
	nproc uint64
	self  string

	spares *spares      // shells waiting for a line (spare.go)
	starts atomic.Int64 // processes started, for spares' quiet period

	mu    sync.Mutex
	procs map[uint32]*proc // running, and finished ones for retain
	wg    sync.WaitGroup   // one per proc.wait goroutine
}

func newManager(log *slog.Logger, r *reaper) *manager {
	m := &manager{log: log, reaper: r, retain: defaultRetain, procs: map[uint32]*proc{}}
	m.spares = newSpares(m)
	return m
}

// start starts the process described by spec. first, when non-nil, is attached before
// the process can produce output, so the caller's stream misses nothing. A shell line
// that a spare shell can run (spare.go) goes to one when one is ready.
func (m *manager) start(spec startSpec, first *subscriber) (*proc, error) {
	m.starts.Add(1)
	line, spareable := m.spares.fits(spec)
	var p *proc
	if spareable {
		p = m.spares.claim(spec, line, first)
	}
	if p == nil {
		var err error
		if p, err = m.spawn(spec, nil); err != nil {
			return nil, err
		}
		m.activate(p, spec, first)
	}
	if spareable {
		m.spares.replenish(spec, p)
	}
	return p, nil
}

// spawn starts spec's process with its files: a pty, or stdin, stdout and stderr
// pipes, then extra as fds 3 and on. Nothing reads its output and nothing waits for it
// until activate; until then only the reaper knows it.
func (m *manager) spawn(spec startSpec, extra []*os.File) (*proc, error) {
	p := &proc{
		reaper: m.reaper,
		exitCh: make(chan syscall.WaitStatus, 1),
		subs:   map[*subscriber]struct{}{},
		done:   make(chan struct{}),
	}
	attr := &os.ProcAttr{Dir: spec.dir, Env: spec.env, Sys: &syscall.SysProcAttr{}}
	cred, err := credential(spec.user)
	if err != nil {
		return nil, err
	}
	attr.Sys.Credential = cred

	var childFiles []*os.File // closed in the agent once the child has them
	defer func() {
		for _, f := range childFiles {
			_ = f.Close()
		}
	}()
	if spec.pty != nil {
		master, tty, err := openPTY()
		if err != nil {
			return nil, fmt.Errorf("opening a pty: %w", err)
		}
		childFiles = append(childFiles, tty)
		cols, rows := spec.pty.GetSize().GetCols(), spec.pty.GetSize().GetRows()
		if cols == 0 || rows == 0 {
			cols, rows = 80, 24
		}
		if err := setWinsize(master, cols, rows); err != nil {
			_ = master.Close()
			return nil, fmt.Errorf("setting pty size: %w", err)
		}
		p.pty = master
		p.outputs = []*os.File{master}
		p.wraps = append(p.wraps, func(b []byte) *process.ProcessEvent_DataEvent {
			return &process.ProcessEvent_DataEvent{Output: &process.ProcessEvent_DataEvent_Pty{Pty: b}}
		})
		attr.Files = []*os.File{tty, tty, tty}
		attr.Sys.Setsid = true
		attr.Sys.Setctty = true
		attr.Sys.Ctty = 0
	} else {
		var stdin *os.File
		if spec.stdin {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			stdin, p.stdin, p.stdinEnabled = r, w, true
		} else if stdin, err = os.Open(os.DevNull); err != nil {
			return nil, err
		}
		childFiles = append(childFiles, stdin)
		outR, outW, err := os.Pipe()
		if err != nil {
			p.closeFiles()
			return nil, err
		}
		childFiles = append(childFiles, outW)
		p.outputs = append(p.outputs, outR)
		errR, errW, err := os.Pipe()
		if err != nil {
			p.closeFiles()
			return nil, err
		}
		childFiles = append(childFiles, errW)
		p.outputs = append(p.outputs, errR)
		p.wraps = append(p.wraps,
			func(b []byte) *process.ProcessEvent_DataEvent {
				return &process.ProcessEvent_DataEvent{Output: &process.ProcessEvent_DataEvent_Stdout{Stdout: b}}
			},
			func(b []byte) *process.ProcessEvent_DataEvent {
				return &process.ProcessEvent_DataEvent{Output: &process.ProcessEvent_DataEvent_Stderr{Stderr: b}}
			})
		attr.Files = []*os.File{stdin, outW, errW}
		attr.Sys.Setpgid = true
	}
	attr.Files = append(attr.Files, extra...)

	pid, err := m.reaper.spawn(func() (int, error) {
		if m.nproc > 0 {
			return startLimitedChild(m.self, m.nproc, spec, attr)
		}
		child, err := startChild(spec, attr)
		if err != nil {
			return 0, err
		}
		pid := child.Pid
		// The reaper waits by pid; drop the os.Process handle (and its pidfd).
		_ = child.Release()
		return pid, nil
	}, func(ws syscall.WaitStatus) {
		// Runs under the reaper's write lock: record and hand off, nothing more.
		p.reaped.Store(true)
		p.exitCh <- ws
	})
	if err != nil {
		p.closeFiles()
		return nil, err
	}
	p.pid = uint32(pid)
	return p, nil
}

// activate hands a spawned process to spec's request: first (when non-nil) is attached
// before any output is read, the process becomes visible to List and the other RPCs,
// and its lifetime limit starts.
func (m *manager) activate(p *proc, spec startSpec, first *subscriber) {
	p.tag, p.config = spec.tag, spec.config
	if first != nil {
		p.subs[first] = struct{}{}
	}
	m.mu.Lock()
	m.procs[p.pid] = p
	m.mu.Unlock()

	for i, f := range p.outputs {
		p.readers.Add(1)
		go p.readOutput(f, p.wraps[i])
	}
	if spec.timeout > 0 {
		p.timer = time.AfterFunc(spec.timeout, func() {
			if err := p.signal(syscall.SIGKILL); err == nil {
				m.log.Info("process reached its time limit; killed", logkey.PID, p.pid, "timeout", spec.timeout)
			}
		})
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		p.wait(func() { m.retire(p) })
	}()
	m.log.Info("process started", logkey.PID, p.pid, "cmd", spec.config.GetCmd(), "user", spec.user.Name, "pty", spec.pty != nil, "tag", p.tagName())
}

func (p *proc) tagName() string {
	if p.tag == nil {
		return ""
	}
	return *p.tag
}

// startChild starts spec's program with attr: by the shell fast path when it applies
// (shellfast.go), and through bash as asked when it does not or when the kernel
// refuses the program (bash then runs it, or reports why it cannot, its own way).
func startChild(spec startSpec, attr *os.ProcAttr) (*os.Process, error) {
	if d, ok := direct(spec); ok {
		a := *attr
		a.Env = d.env
		if child, err := os.StartProcess(d.path, d.argv, &a); err == nil {
			directStarts.Add(1)
			return child, nil
		}
	}
	return os.StartProcess(spec.path, spec.argv, attr)
}

// closeFiles closes the agent's ends of the process's files after a failed start.
func (p *proc) closeFiles() {
	for _, f := range p.outputs {
		_ = f.Close()
	}
	if p.stdin != nil {
		_ = p.stdin.Close()
	}
	if p.pty != nil && !slices.Contains(p.outputs, p.pty) {
		_ = p.pty.Close()
	}
}

// retire keeps a finished process around for m.retain so that a late Connect still
// gets its end event, then forgets it.
func (m *manager) retire(p *proc) {
	m.log.Info("process ended", logkey.PID, p.pid, "status", p.end.GetStatus())
	time.AfterFunc(m.retain, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.procs[p.pid] == p { // the pid may have been reused since
			delete(m.procs, p.pid)
		}
	})
}

// errProcessNotFound wraps lookups of unknown pids and tags.
var errProcessNotFound = errors.New("process not found")

// get finds the process a selector names. Finished processes are found only when
// includeFinished is set (Connect); every other RPC treats them as gone.
func (m *manager) get(sel *process.ProcessSelector, includeFinished bool) (*proc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch s := sel.GetSelector().(type) {
	case *process.ProcessSelector_Pid:
		if p, ok := m.procs[s.Pid]; ok && (includeFinished || !p.finished()) {
			return p, nil
		}
		return nil, fmt.Errorf("process with pid %d not found: %w", s.Pid, errProcessNotFound)
	case *process.ProcessSelector_Tag:
		var best *proc
		for _, p := range m.procs {
			if p.tag == nil || *p.tag != s.Tag || (!includeFinished && p.finished()) {
				continue
			}
			// Prefer a running process, then the lowest pid, for a stable answer.
			if best == nil || (best.finished() && !p.finished()) ||
				(best.finished() == p.finished() && p.pid < best.pid) {
				best = p
			}
		}
		if best == nil {
			return nil, fmt.Errorf("process with tag %q not found: %w", s.Tag, errProcessNotFound)
		}
		return best, nil
	default:
		return nil, errors.New("process selector needs a pid or a tag")
	}
}

// running lists the processes that have not finished, by pid.
func (m *manager) running() []*proc {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*proc
	for _, p := range m.procs {
		if !p.finished() {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *proc) int { return int(a.pid) - int(b.pid) })
	return out
}

// shutdown sends SIGTERM to every running process, SIGKILL to those still running
// after grace, and waits until all have been reaped or ctx ends.
func (m *manager) shutdown(ctx context.Context, grace time.Duration) error {
	m.spares.close()
	for _, p := range m.running() {
		_ = p.signal(syscall.SIGTERM)
	}
	allDone := make(chan struct{})
	go func() { m.wg.Wait(); close(allDone) }()
	select {
	case <-allDone:
		return nil
	case <-time.After(grace):
	case <-ctx.Done():
	}
	for _, p := range m.running() {
		_ = p.signal(syscall.SIGKILL)
	}
	select {
	case <-allDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for processes to exit: %w", ctx.Err())
	}
}

// credential returns the credential for running as u, or nil when the agent already
// runs as u (changing credentials needs root).
func credential(u *User) (*syscall.Credential, error) {
	if uint32(os.Geteuid()) == u.UID && uint32(os.Getegid()) == u.GID && os.Geteuid() != 0 {
		return nil, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("the agent runs as uid %d and cannot start processes as %s", os.Geteuid(), u.Name)
	}
	return &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups}, nil
}

// openPTY opens a pty pair. The master is re-opened as a non-blocking file so reads
// honour deadlines: creack/pty's Open calls File.Fd, which switches it to blocking.
func openPTY() (master, tty *os.File, err error) {
	m, t, err := pty.Open()
	if err != nil {
		return nil, nil, err
	}
	defer m.Close()
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		_ = t.Close()
		return nil, nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		_ = t.Close()
		return nil, nil, err
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), t, nil
}

// buildEnv returns the process environment: PATH, HOME, USER, LOGNAME, then the
// sandbox-wide env, then the request's env; a later value replaces an earlier one.
func buildEnv(u *User, sandbox, request map[string]string) []string {
	var keys []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	set("PATH", defaultPath)
	set("HOME", u.Home)
	set("USER", u.Name)
	set("LOGNAME", u.Name)
	for _, src := range []map[string]string{sandbox, request} {
		for _, k := range sortedKeys(src) {
			set(k, src[k])
		}
	}
	env := make([]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, k+"="+vals[k])
	}
	return env
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// lookPath finds cmd like a shell would, using the PATH of the process's env. A
// command containing a slash is used as is (relative to dir).
func lookPath(cmd string, env []string, dir string) (string, error) {
	if cmd == "" {
		return "", errors.New("cmd is empty")
	}
	if strings.Contains(cmd, "/") {
		return cmd, nil
	}
	path := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		cand := filepath.Join(d, cmd)
		if !filepath.IsAbs(cand) {
			cand = filepath.Join(dir, cand)
		}
		if fi, err := os.Stat(cand); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return cand, nil
		}
	}
	return "", fmt.Errorf("executable %q not found in PATH %q", cmd, path)
}
