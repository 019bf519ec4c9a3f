package agent

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/warren-sh/warren/internal/logkey"
)

// The OOM watchdog gives sandboxes on runtimes without an OOM killer of their own
// (gVisor, google/gvisor#1967) what the kernel gives runc sandboxes: a process that
// allocates past the sandbox's memory limit is killed, and the sandbox lives on. The
// host cgroup of such a sandbox is set above the limit (see the gVisor driver), so the
// host never has to step in as long as the watchdog keeps up.
const (
	// The watchdog samples the sandbox's memory use as rarely as it safely can: a
	// wake-up costs a Go program in gVisor ~2 ms of CPU (sampling every 50 ms took 3-5%
	// of a core per idle sandbox). The next sample comes when the sandbox, filling
	// memory at oomMaxRate, could reach the threshold, within [oomMinInterval,
	// oomMaxInterval]: ~100 ms for an idle 256 MB sandbox, ~450 ms for 1 GB.
	//
	// oomMaxRate is the fastest a sandbox is assumed to fill memory, in bytes per
	// second: a guest faults memory in at ~1 GB/s per core on systrap.
	oomMaxRate     = 2 << 30
	oomMinInterval = 10 * time.Millisecond
	oomMaxInterval = 500 * time.Millisecond
	// oomThresholdPct is the share of the limit at which the largest process is
	// killed: a little below the limit, for what is allocated until the next sample.
	oomThresholdPct = 95
	// oomVictimWait bounds how long a killed process counts as about to free its
	// memory when it does not exit.
	oomVictimWait = 2 * time.Second
	// oomSettle is how long a killed process's memory still counts as about to be
	// freed after it has exited: gVisor returns the memory of an exited process in the
	// background, which takes tens of milliseconds when the sandbox is busy.
	oomSettle = 100 * time.Millisecond
)

// procMem is one process as the watchdog sees it.
type procMem struct {
	pid  int
	name string
	rss  int64 // resident bytes
	// start is the start time in clock ticks after boot: with pid it names one process,
	// so a recycled pid is never killed in its place.
	start  uint64
	zombie bool
}

// oomConfig configures an oomWatchdog. Zero fields get the defaults of a watchdog
// running as the sandbox's PID 1.
type oomConfig struct {
	// limit is the sandbox's memory limit in bytes (> 0).
	limit int64
	// minInterval, maxInterval and rate bound the sampling (default oomMinInterval,
	// oomMaxInterval and oomMaxRate).
	minInterval, maxInterval time.Duration
	rate                     int64
	// usage returns the bytes in use in the sandbox (default: MemTotal - MemAvailable of
	// /proc/meminfo, which inside gVisor is the sentry's accounting of all guest memory,
	// page cache and tmpfs included: what the host cgroup is charged for).
	usage func() (int64, error)
	// procs lists the processes that may be killed (default: every process in /proc).
	procs func() ([]procMem, error)
	// guard runs fn while no child of the agent can be reaped (reaper.whileUnreaped), so
	// that a pid found alive in fn is not recycled before fn kills it. Default: fn().
	guard func(fn func())
	// self is the agent's own pid, never killed (nor is pid 1). Default os.Getpid().
	self int
}

// oomWatchdog samples the sandbox's memory use and, when it reaches oomThresholdPct of
// the limit, SIGKILLs the process with the largest resident set (never the agent).
type oomWatchdog struct {
	cfg   oomConfig
	log   *slog.Logger
	kills atomic.Int64
	stop  chan struct{}
	done  chan struct{}

	// Only the watchdog's goroutine touches the fields below.
	victims  []victim // killed processes that have not exited yet
	lastUsed int64    // the previous sample, -1 before the first
	quiet    bool     // a failure to read or to find a process was logged already
}

// victim is a process the watchdog killed.
type victim struct {
	procMem
	killedAt time.Time
	goneAt   time.Time // zero while it runs
	used     int64     // the sandbox's memory use when it was killed
}

// startOOMWatchdog fills cfg's defaults and starts the watchdog's goroutine.
func startOOMWatchdog(cfg oomConfig, log *slog.Logger) *oomWatchdog {
	w := newOOMWatchdog(cfg, log)
	go w.run()
	return w
}

// newOOMWatchdog fills cfg's defaults and returns a watchdog that is not running.
func newOOMWatchdog(cfg oomConfig, log *slog.Logger) *oomWatchdog {
	if cfg.minInterval <= 0 {
		cfg.minInterval = oomMinInterval
	}
	if cfg.maxInterval <= 0 {
		cfg.maxInterval = max(oomMaxInterval, cfg.minInterval)
	}
	if cfg.rate <= 0 {
		cfg.rate = oomMaxRate
	}
	if cfg.usage == nil {
		cfg.usage = readMemUsed
	}
	if cfg.procs == nil {
		cfg.procs = listProcs
	}
	if cfg.guard == nil {
		cfg.guard = func(fn func()) { fn() }
	}
	if cfg.self == 0 {
		cfg.self = os.Getpid()
	}
	return &oomWatchdog{cfg: cfg, log: log, stop: make(chan struct{}), done: make(chan struct{}), lastUsed: -1}
}

// killCount is the number of processes the watchdog killed; 0 for a nil watchdog.
func (w *oomWatchdog) killCount() int64 {
	if w == nil {
		return 0
	}
	return w.kills.Load()
}

// close stops the watchdog and waits for its goroutine. It is safe on nil.
func (w *oomWatchdog) close() {
	if w == nil {
		return
	}
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *oomWatchdog) run() {
	defer close(w.done)
	t := time.NewTimer(w.cfg.minInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		t.Reset(w.check())
	}
}

// threshold is the use in bytes at which the watchdog kills.
func (w *oomWatchdog) threshold() int64 { return w.cfg.limit / 100 * oomThresholdPct }

// check takes one sample, kills if it must, and returns when to sample next.
func (w *oomWatchdog) check() time.Duration {
	freeing := w.pruneVictims(time.Now())
	used, growth, err := w.sample()
	if err != nil {
		w.logOnce("reading the sandbox's memory use", "err", err)
		return w.cfg.maxInterval
	}
	if !w.mustKill(used, freeing) {
		w.quiet = false
		if len(w.victims) > 0 {
			return w.cfg.minInterval
		}
		return w.next(w.threshold() - used)
	}
	procs, err := w.cfg.procs()
	if err != nil {
		w.logOnce("listing processes", "err", err)
		return w.cfg.minInterval
	}
	// Listing the processes takes long when the sandbox is starved for CPU, and the
	// picture may have changed (the host may even have killed some): decide afresh.
	if used, growth, err = w.sample(); err != nil || !w.mustKill(used, freeing) {
		return w.cfg.minInterval
	}
	// Largest first, kill until what the victims free keeps use under the threshold
	// even if it grows until the next sample as it did since the last one: several
	// processes allocating at once are stopped in one pass, not one per sample.
	for n := 0; n == 0 || used-freeing+growth >= w.threshold(); n++ {
		i, ok := w.pick(procs)
		if !ok {
			if len(w.victims) == 0 {
				w.logOnce("out of memory but no process to kill", "used", used, "limit", w.cfg.limit)
				return w.cfg.maxInterval
			}
			break // all that is left is exiting
		}
		w.kill(procs[i], used)
		procs[i].zombie = true // killed, or exited since the listing: its memory is freed
		freeing += procs[i].rss
	}
	return w.cfg.minInterval
}

// sample reads the sandbox's memory use and how much it grew since the last sample.
func (w *oomWatchdog) sample() (used, growth int64, err error) {
	if used, err = w.cfg.usage(); err != nil {
		return 0, 0, err
	}
	if w.lastUsed >= 0 {
		growth = max(0, used-w.lastUsed)
	}
	w.lastUsed = used
	return used, growth, nil
}

// mustKill reports whether a process must be killed at this use, with freeing bytes
// about to be returned by victims still exiting. That is when use stays over the
// threshold without the victims, or when it keeps growing while they exit (which
// takes gVisor up to a few hundred milliseconds when the sandbox is busy): then
// another process is allocating, and the victims' memory will come back too late.
func (w *oomWatchdog) mustKill(used, freeing int64) bool {
	if used-freeing >= w.threshold() {
		return true
	}
	return len(w.victims) > 0 && used >= w.threshold() && used > w.victimsUsed()+w.cfg.limit/50
}

// pruneVictims forgets the victims whose memory should be back by now and returns
// what the others are about to free. A victim's memory is freed only once it has
// exited and gVisor has reclaimed it: until then its resident set counts as about to
// be freed, so that one allocation does not cost a second (innocent) process.
func (w *oomWatchdog) pruneVictims(now time.Time) (freeing int64) {
	live := w.victims[:0]
	for _, v := range w.victims {
		if v.goneAt.IsZero() && !procAlive(v.procMem) {
			v.goneAt = now
		}
		if now.Sub(v.killedAt) < oomVictimWait && (v.goneAt.IsZero() || now.Sub(v.goneAt) < oomSettle) {
			live = append(live, v)
			freeing += v.rss
		}
	}
	w.victims = live
	return freeing
}

// victimsUsed is the highest memory use at which a victim still exiting was killed.
func (w *oomWatchdog) victimsUsed() int64 {
	var u int64
	for _, v := range w.victims {
		u = max(u, v.used)
	}
	return u
}

// kill sends SIGKILL to v unless it is gone, and records and logs it.
func (w *oomWatchdog) kill(v procMem, used int64) {
	var err error
	killed := false
	w.cfg.guard(func() {
		if !procAlive(v) {
			return // it exited (or its pid was recycled) since the listing
		}
		err = syscall.Kill(v.pid, syscall.SIGKILL)
		killed = err == nil
	})
	switch {
	case err != nil:
		w.logOnce("killing the largest process", "pid", v.pid, "err", err)
	case killed:
		w.kills.Add(1)
		w.victims = append(w.victims, victim{procMem: v, killedAt: time.Now(), used: used})
		w.quiet = false
		w.log.Warn("out of memory: killed process", logkey.PID, v.pid, "name", v.name, "rss", v.rss, "used", used, "limit", w.cfg.limit)
	}
}

// next is the time to the next sample when the sandbox is room bytes below the
// threshold: the time it takes to fill room at the assumed maximum rate.
func (w *oomWatchdog) next(room int64) time.Duration {
	d := time.Duration(float64(room) / float64(w.cfg.rate) * float64(time.Second))
	return min(max(d, w.cfg.minInterval), w.cfg.maxInterval)
}

// pick returns the index of the live process with the largest resident set, other
// than the agent, pid 1 and the victims still exiting.
func (w *oomWatchdog) pick(procs []procMem) (int, bool) {
	best := -1
next:
	for i, p := range procs {
		if p.pid == w.cfg.self || p.pid <= 1 || p.zombie || p.rss <= 0 {
			continue
		}
		for _, v := range w.victims {
			if v.pid == p.pid && v.start == p.start {
				continue next
			}
		}
		if best < 0 || p.rss > procs[best].rss {
			best = i
		}
	}
	return best, best >= 0
}

// logOnce logs an error once until the watchdog next succeeds, so that a sandbox stuck
// over its limit does not flood the log with a line per sample.
func (w *oomWatchdog) logOnce(msg string, args ...any) {
	if w.quiet {
		return
	}
	w.quiet = true
	w.log.Error("oom watchdog: "+msg, args...)
}

// readMemUsed returns MemTotal - MemAvailable from /proc/meminfo.
func readMemUsed() (int64, error) {
	mem, err := readMeminfo()
	if err != nil {
		return 0, err
	}
	total, ok := mem["MemTotal"]
	if !ok {
		return 0, errors.New("no MemTotal in /proc/meminfo")
	}
	avail, ok := mem["MemAvailable"]
	if !ok {
		avail = mem["MemFree"] + mem["Buffers"] + mem["Cached"]
	}
	if avail >= total {
		return 0, nil
	}
	return int64(total - avail), nil
}

// listProcs reads every process in /proc. Processes that exit meanwhile are skipped.
func listProcs() ([]procMem, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := make([]procMem, 0, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := readProcStat(pid); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// procAlive reports whether p still runs: same pid, same start time, not a zombie (a
// zombie has released its memory already).
func procAlive(p procMem) bool {
	cur, err := readProcStat(p.pid)
	return err == nil && cur.start == p.start && !cur.zombie
}

var pageSize = int64(os.Getpagesize())

// readProcStat reads /proc/<pid>/stat. Its rss field is VmRSS of /proc/<pid>/status in
// pages, on Linux and in gVisor alike.
func readProcStat(pid int) (procMem, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procMem{}, err
	}
	return parseProcStat(pid, b)
}

// parseProcStat parses a /proc/<pid>/stat line: "pid (comm) state ppid ...", where comm
// may hold spaces and parentheses, so fields are counted after the last ')'.
func parseProcStat(pid int, b []byte) (procMem, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procMem{}, fmt.Errorf("/proc/%d/stat: no command name in %q", pid, b)
	}
	f := bytes.Fields(b[end+1:])
	// f[0] is field 3 (state); starttime is field 22, rss field 24.
	if len(f) < 22 {
		return procMem{}, fmt.Errorf("/proc/%d/stat: %d fields, want at least 24", pid, len(f)+2)
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return procMem{}, fmt.Errorf("/proc/%d/stat: starttime: %w", pid, err)
	}
	rss, err := strconv.ParseInt(string(f[21]), 10, 64)
	if err != nil {
		return procMem{}, fmt.Errorf("/proc/%d/stat: rss: %w", pid, err)
	}
	state := f[0]
	return procMem{
		pid:    pid,
		name:   string(b[open+1 : end]),
		rss:    rss * pageSize,
		start:  start,
		zombie: len(state) > 0 && (state[0] == 'Z' || state[0] == 'X'),
	}, nil
}
