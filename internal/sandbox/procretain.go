package sandbox

import (
	"context"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
)

// This file holds which background processes' output the server keeps, per running
// sandbox, so that GET /processes/{pid}/events can replay it from the start.

// retention bounds what is kept of one sandbox's background processes.
type retention struct {
	// headBytes and tailBytes are the first and last output kept per process
	// (chunkOverhead counted per chunk); output between them is dropped.
	headBytes, tailBytes int
	// maxProcs caps the processes kept per sandbox: a new one displaces the one that
	// ended first; when all still run, the new one is not recorded.
	maxProcs int
	// keepAfterEnd is how long a process's log is kept after it ended.
	keepAfterEnd time.Duration
	// maxLifetimes caps the timeouts remembered for processes started without a log.
	maxLifetimes int
}

// defaultRetention keeps at most 64 × 1 MiB per sandbox.
var defaultRetention = retention{
	headBytes: 256 << 10, tailBytes: 768 << 10, maxProcs: 64,
	keepAfterEnd: 60 * time.Second, maxLifetimes: 256,
}

// procLogs are the logs of one running sandbox's background processes, by pid.
type procLogs struct {
	cfg retention

	mu     sync.Mutex
	logs   map[uint32]*procLog
	drops  map[*procLog]*time.Timer // logs of ended processes, due to be dropped
	lives  map[uint32]agentclient.Lifetime
	closed bool
}

func newProcLogs(cfg retention) *procLogs {
	return &procLogs{cfg: cfg, logs: map[uint32]*procLog{}, drops: map[*procLog]*time.Timer{}, lives: map[uint32]agentclient.Lifetime{}}
}

// add starts a log for process pid, displacing an older log of the same pid and, at
// the cap, the log of the process that ended first. It returns nil when every kept
// process still runs (or the sandbox ended): the process is then not recorded.
func (r *procLogs) add(pid uint32) *procLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	if old := r.logs[pid]; old != nil {
		r.dropLocked(old)
	}
	if len(r.logs) >= r.cfg.maxProcs {
		var first *procLog
		var firstEnd time.Time
		for _, l := range r.logs {
			if done, at := l.ended(); done && (first == nil || at.Before(firstEnd)) {
				first, firstEnd = l, at
			}
		}
		if first == nil {
			return nil
		}
		r.dropLocked(first)
	}
	l := newProcLog(pid, r.cfg.headBytes, r.cfg.tailBytes)
	r.logs[pid] = l
	return l
}

// get returns process pid's log, or nil.
func (r *procLogs) get(pid uint32) *procLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs[pid]
}

// ended schedules the drop of a finished log: at once when the recording failed (a
// later attach then follows the process through the agent), keepAfterEnd later
// otherwise.
func (r *procLogs) ended(l *procLog, failed bool) {
	if failed {
		r.remove(l)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.logs[l.pid] != l {
		return
	}
	r.drops[l] = time.AfterFunc(r.cfg.keepAfterEnd, func() { r.remove(l) })
}

// remove drops l if it is still kept.
func (r *procLogs) remove(l *procLog) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropLocked(l)
}

// dropLocked forgets l. Preconditions: mu held.
func (r *procLogs) dropLocked(l *procLog) {
	if r.logs[l.pid] == l {
		delete(r.logs, l.pid)
	}
	if t := r.drops[l]; t != nil {
		t.Stop()
		delete(r.drops, l)
	}
}

// remember keeps the lifetime of process pid, started through the API but not
// recorded, so that an attach can tell that it was killed at its timeout.
func (r *procLogs) remember(pid uint32, life agentclient.Lifetime) {
	if life.Timeout == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	now := time.Now()
	for p, l := range r.lives {
		if now.After(l.Deadline.Add(time.Minute)) {
			delete(r.lives, p) // long past: the process is gone
		}
	}
	if len(r.lives) < r.cfg.maxLifetimes {
		r.lives[pid] = life
	}
}

// lifetime returns what remember kept for pid (the zero Lifetime if nothing).
func (r *procLogs) lifetime(pid uint32) agentclient.Lifetime {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lives[pid]
}

// close drops every log; nothing is kept any more.
func (r *procLogs) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, t := range r.drops {
		t.Stop()
	}
	r.logs, r.drops, r.lives = map[uint32]*procLog{}, map[*procLog]*time.Timer{}, map[uint32]agentclient.Lifetime{}
}

// len returns the number of logs kept.
func (r *procLogs) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.logs)
}

// sandboxLogs holds the procLogs of each running sandbox that started a background
// process, keyed by its *liveSandbox; an entry goes when the sandbox's context ends
// (the sandbox ended or the server is shutting down).
var sandboxLogs sync.Map

// logsOf returns ls's procLogs, made on first use.
func logsOf(ls *liveSandbox) *procLogs {
	if v, ok := sandboxLogs.Load(ls); ok {
		return v.(*procLogs)
	}
	r := newProcLogs(defaultRetention)
	v, loaded := sandboxLogs.LoadOrStore(ls, r)
	if !loaded {
		context.AfterFunc(ls.ctx, func() {
			sandboxLogs.Delete(ls)
			r.close()
		})
	}
	return v.(*procLogs)
}

// existingLogs returns ls's procLogs, or nil when it never started a background
// process.
func existingLogs(ls *liveSandbox) *procLogs {
	if v, ok := sandboxLogs.Load(ls); ok {
		return v.(*procLogs)
	}
	return nil
}
