package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/logkey"
)

// Spare shells. Starting bash costs one exec(2), 11-15 ms under gVisor on our
// machines, and a login shell reads its profile as well: more than the rest of a
// command's round trip. So after running a shell line (`bash -c LINE` or
// `bash -l -c LINE`), the agent starts another bash just like it (same shell, flags,
// user, directory and environment) that waits before running anything. The next line
// with the same shape is handed to that shell, which runs it with eval: a builtin-only
// line (`true`, `echo $X`, `cd d && export A=b`) then starts no program at all, and
// any other line saves the shell's start.
//
// What the line sees is what `bash -c LINE` shows: the same $0, $-, $_, $SHLVL,
// $BASH_EXECUTION_STRING, exit status and output, fds 0-2 only, a fresh $SECONDS,
// and the profile's own output first. Two things differ: a syntax error is reported
// as "bash: eval: line N" rather than "bash: -c: line N", and a lone program is
// started by fork and exec rather than exec alone. A non-login line that is one plain
// program keeps the shell fast path (shellfast.go), which starts no shell at all.
//
// A spare starts only once the line before it ended and the agent started no process
// for spareQuiet; the next line takes it even while it is still starting (it would
// start the same bash), except `true` and `false`, which the fast path runs for less
// than the rest of a start. A tight loop of lines thus runs as it would without spares; a line after a pause (an agent's
// usual rhythm) finds its shell waiting.
//
// Since it starts after the line before it, a spare sees what that line changed. It
// is then only used while nothing it was started from has changed since (a process
// still running, or the filesystem API, may change things): its directory (same
// inode) and, for a login shell, the startup files bash reads (same
// inode, size and modification time, or still absent). A spare that died is thrown
// away. The agent keeps at most
// maxSpares, evicting the one used least recently; none run while process_limit
// uses the exec step (nproc.go), which needs fd 3 for itself.

// spareQuiet is how long no process may start, after a line ended, before a spare
// for the next line starts.
const spareQuiet = 100 * time.Millisecond

// maxSpares bounds the spare shells kept (each is one idle bash, ~1 MB).
const maxSpares = 2

// sparePrimer is what a spare runs: keep $_ as the start left it; close fd 5 (the
// agent reads EOF there: the shell is ready); wait for one byte on fd 4 (EOF: the
// agent dropped it); read three NUL-ended fields from fd 3 (a
// memfd: bash reads a regular file in blocks, a pipe a byte at a time): the host name
// when the shell started, the host name now, and the line; close both fds; take the
// new host name into HOSTNAME if the shell still has the old one (bash sets it at
// start; a sandbox forked or restored from a snapshot has been renamed since); put
// back what `bash -c LINE` would show (BASH_EXECUTION_STRING, SECONDS, $_ and $? as
// at start, no REPLY or helper variables) and eval the line.
const sparePrimer = `_w=$_; exec 5>&-; read -r -n1 -u 4 REPLY || exit 0; IFS= read -r -d '' -u 3 _o; IFS= read -r -d '' -u 3 _n; ` +
	`IFS= read -r -d '' -u 3 REPLY; exec 3<&- 4<&-; [ "${HOSTNAME-}" != "$_o" ] || HOSTNAME=$_n; ` +
	`eval "BASH_EXECUTION_STRING=\$REPLY; unset REPLY _w _o _n; SECONDS=0; : ${_w@Q}; $REPLY"`

// spareStarts counts the lines run by a spare; tests read it.
var spareStarts atomic.Int64

// spare is one waiting shell.
type spare struct {
	spec  startSpec // the shape it was started for
	key   string
	stamp string // what it was started from (spareStamp)
	host  string // the host name when it started
	p     *proc
	line  *os.File // the agent's end of the memfd at the shell's fd 3
	gate  *os.File // the write end of the pipe at the shell's fd 4
	ready *os.File // the read end of the pipe whose write end is the shell's fd 5
}

// isReady reports whether the shell has started and waits for its line.
func (sp *spare) isReady() bool {
	rc, err := sp.ready.SyscallConn()
	if err != nil {
		return false
	}
	n := -1
	// One non-blocking read (os.Pipe's ends are non-blocking): 0 is EOF, EAGAIN
	// means the shell still holds fd 5. A read deadline in the past would not read.
	_ = rc.Read(func(fd uintptr) bool {
		n, _ = unix.Read(int(fd), make([]byte, 1))
		return true
	})
	return n == 0
}

// spares keeps the waiting shells of one manager.
type spares struct {
	m        *manager
	disabled atomic.Bool // tests compare both ways

	stop chan struct{} // closed by close

	mu      sync.Mutex
	idle    []*spare        // least recently used first
	pending map[string]bool // keys being started
	closed  bool
}

func newSpares(m *manager) *spares {
	return &spares{m: m, pending: map[string]bool{}, stop: make(chan struct{})}
}

// fits reports whether spec is a shell line a spare can run, and the line.
func (s *spares) fits(spec startSpec) (string, bool) {
	if s.disabled.Load() || s.m.nproc > 0 || spec.pty != nil || filepath.Base(spec.path) != "bash" || bashReads(spec.env) {
		return "", false
	}
	for _, kv := range spec.env {
		if strings.HasPrefix(kv, "SECONDS=") {
			return "", false
		}
	}
	var line string
	switch a := spec.argv; {
	case len(a) == 3 && a[1] == "-c":
		line = a[2]
		// One plain program: the fast path starts it without a shell.
		if words, ok := plainCommand(line); ok && !(len(words) == 1 && (words[0] == "true" || words[0] == "false")) {
			return "", false
		}
	case len(a) == 4 && a[1] == "-l" && a[2] == "-c":
		line = a[3]
	default:
		return "", false
	}
	return line, !strings.ContainsRune(line, 0)
}

func isLogin(spec startSpec) bool { return len(spec.argv) == 4 }

// spareKey is what a line's request and a spare must share.
func spareKey(spec startSpec) string {
	u := spec.user
	return fmt.Sprint(spec.path, "\x00", spec.argv[0], "\x00", isLogin(spec), "\x00", spec.dir, "\x00", u.UID, u.GID, u.Groups, "\x00",
		spec.stdin, "\x00", strings.Join(spec.env, "\x00"))
}

// claim runs line in a waiting spare of spec's shape (ready, or still starting unless
// the fast path would run the line) and returns its process, or nil when there is
// none or it cannot be used (the caller starts the line itself).
func (s *spares) claim(spec startSpec, line string, first *subscriber) *proc {
	key := spareKey(spec)
	s.mu.Lock()
	i := slices.IndexFunc(s.idle, func(sp *spare) bool { return sp.key == key })
	if i < 0 {
		s.mu.Unlock()
		return nil
	}
	sp := s.idle[i]
	if _, direct := plainCommand(line); direct && !isLogin(spec) && !sp.isReady() {
		// true or false, which the fast path runs as /usr/bin/true: that costs less
		// than waiting for a bash still starting, which stays for the next line. Any
		// other line would start the same bash.
		s.mu.Unlock()
		return nil
	}
	s.idle = slices.Delete(s.idle, i, i+1)
	s.mu.Unlock()

	if sp.p.reaped.Load() || spareStamp(sp.spec) != sp.stamp {
		s.drop(sp)
		return nil
	}
	host, _ := os.Hostname()
	_, err := sp.line.WriteAt([]byte(sp.host+"\x00"+host+"\x00"+line+"\x00"), 0)
	if err == nil {
		_, err = sp.gate.Write([]byte{'.'})
	}
	if err != nil {
		s.drop(sp)
		return nil
	}
	_ = sp.line.Close()
	_ = sp.gate.Close()
	_ = sp.ready.Close()
	s.m.activate(sp.p, spec, first)
	spareStarts.Add(1)
	return sp.p
}

// replenish starts a spare like spec for the next line, once p (the process that
// runs this line) has ended and no process has started for spareQuiet after it:
// the spare then reads what that line may have changed in the profile, and its start
// (a few tens of ms of the sandbox's CPU) neither slows the lines of a busy sandbox
// nor makes each line of a tight loop wait for a spare still starting, which made
// back-to-back `true` 2x slower than no spare at all.
func (s *spares) replenish(spec startSpec, p *proc) {
	key := spareKey(spec)
	s.mu.Lock()
	if s.closed || s.pending[key] || slices.ContainsFunc(s.idle, func(sp *spare) bool { return sp.key == key }) {
		s.mu.Unlock()
		return
	}
	s.pending[key] = true
	s.mu.Unlock()
	go func() {
		select {
		case <-p.done:
		case <-s.stop:
			return
		}
		t := time.NewTimer(spareQuiet)
		defer t.Stop()
		for n := s.m.starts.Load(); ; n = s.m.starts.Load() {
			select {
			case <-t.C:
			case <-s.stop:
				return
			}
			if s.m.starts.Load() == n {
				break
			}
			t.Reset(spareQuiet)
		}
		s.start(spec, key)
	}()
}

// start starts a spare for spec and keeps it.
func (s *spares) start(spec startSpec, key string) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return
	}
	sp, err := s.spawn(spec, key)
	s.mu.Lock()
	delete(s.pending, key)
	if err != nil || s.closed {
		s.mu.Unlock()
		if err != nil {
			s.m.log.Debug("no spare shell", logkey.Err, err)
		} else {
			s.drop(sp)
		}
		return
	}
	s.idle = append(s.idle, sp)
	var evicted []*spare
	if n := len(s.idle) - maxSpares; n > 0 {
		evicted = slices.Clone(s.idle[:n])
		s.idle = slices.Delete(s.idle, 0, n)
	}
	s.mu.Unlock()
	for _, e := range evicted {
		s.drop(e)
	}
}

func (s *spares) spawn(spec startSpec, key string) (*spare, error) {
	stamp := spareStamp(spec) // before the start: a change during it makes the spare stale
	host, _ := os.Hostname()
	for _, kv := range spec.env {
		if strings.HasPrefix(kv, "HOSTNAME=") {
			host = "\x01" // bash keeps the HOSTNAME it is given: match no host name
		}
	}
	fd, err := unix.MemfdCreate("warren-line", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	lineF := os.NewFile(uintptr(fd), "warren-line")
	gateR, gateW, err := os.Pipe()
	if err != nil {
		_ = lineF.Close()
		return nil, err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		_ = lineF.Close()
		_ = gateR.Close()
		_ = gateW.Close()
		return nil, err
	}
	ss := spec
	ss.argv = append(slices.Clone(spec.argv[:len(spec.argv)-1]), sparePrimer)
	ss.tag, ss.config, ss.timeout = nil, nil, 0
	p, err := s.m.spawn(ss, []*os.File{lineF, gateR, readyW})
	_ = gateR.Close()
	_ = readyW.Close()
	if err != nil {
		_ = lineF.Close()
		_ = gateW.Close()
		_ = readyR.Close()
		return nil, err
	}
	return &spare{spec: spec, key: key, stamp: stamp, host: host, p: p, line: lineF, gate: gateW, ready: readyR}, nil
}

// drop kills a spare that will not run a line and releases its files; the reaper
// reaps it.
func (s *spares) drop(sp *spare) {
	_ = sp.p.signal(syscall.SIGKILL)
	_ = sp.line.Close()
	_ = sp.gate.Close()
	_ = sp.ready.Close()
	sp.p.closeFiles()
}

// close drops every spare; none is started after it.
func (s *spares) close() {
	s.mu.Lock()
	if !s.closed {
		close(s.stop)
	}
	s.closed = true
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, sp := range idle {
		s.drop(sp)
	}
}

// count is the number of spares waiting.
func (s *spares) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.idle)
}

// spareStamp describes what a shell started for spec depends on besides its request
// and the host name (see sparePrimer): the directory's identity, and for a login shell the files bash reads
// at start (bash(1), INVOCATION: /etc/profile, which on Debian sources
// /etc/profile.d/*.sh and /etc/bash.bashrc, then the first of ~/.bash_profile,
// ~/.bash_login and ~/.profile, which commonly sources ~/.bashrc).
func spareStamp(spec startSpec) string {
	var b strings.Builder
	stat := func(path string) {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			fmt.Fprintf(&b, "\x00%s -", path)
			return
		}
		fmt.Fprintf(&b, "\x00%s %d %d %d %d.%d", path, st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	}
	stat(spec.dir)
	if !isLogin(spec) {
		return b.String()
	}
	home := spec.user.Home
	for _, kv := range spec.env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			home = v
		}
	}
	for _, f := range []string{"/etc/profile", "/etc/bash.bashrc", "/etc/profile.d"} {
		stat(f)
	}
	if entries, err := os.ReadDir("/etc/profile.d"); err == nil {
		for _, e := range entries {
			stat(filepath.Join("/etc/profile.d", e.Name()))
		}
	}
	for _, f := range []string{".bash_profile", ".bash_login", ".profile", ".bashrc"} {
		stat(filepath.Join(home, f))
	}
	return b.String()
}
