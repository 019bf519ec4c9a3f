package agent

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/logkey"
)

// reaper owns every wait on the agent's children. Nothing else in the agent may call
// wait4/waitid or os/exec's Wait.
//
// Invariants that make it race-free:
//
//   - mu is held for reading across "fork the child + register its pid" (spawn) and
//     across "check the child is not reaped + kill(2) it" (whileUnreaped).
//   - A child is only ever reaped (wait4 without WNOWAIT) while mu is held for writing,
//     and its exit callback runs inside that same critical section.
//
// So in reapAll mode (PID 1), wait4(-1) can never collect a child before its pid is
// registered (the fork and the registration happen under the read lock the reaper
// waits for), and in both modes a signal is never sent to a pid that was reaped and
// possibly reused.
type reaper struct {
	log *slog.Logger
	all bool // reap every child with wait4(-1) (PID 1 / subreaper mode)

	mu sync.RWMutex

	wmu     sync.Mutex
	waiters map[int]func(syscall.WaitStatus) // guarded by wmu

	stop chan struct{}
	done chan struct{}
	sigs chan os.Signal
}

func newReaper(log *slog.Logger, all bool) *reaper {
	r := &reaper{
		log:     log,
		all:     all,
		waiters: map[int]func(syscall.WaitStatus){},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if !all {
		close(r.done)
		return r
	}
	r.sigs = make(chan os.Signal, 1)
	signal.Notify(r.sigs, syscall.SIGCHLD)
	go r.loop()
	return r
}

// loop reaps on every SIGCHLD, and every few seconds as a safety net.
func (r *reaper) loop() {
	defer close(r.done)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-r.sigs:
		case <-tick.C:
		}
		r.reapAll()
	}
}

// reapAll collects every exited child and dispatches the statuses of registered ones.
// Orphaned grandchildren (re-parented to PID 1) are collected and dropped.
func (r *reaper) reapAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.dispatch(pid, ws)
	}
}

// dispatch hands ws to the pid's waiter. Preconditions: mu held for writing.
func (r *reaper) dispatch(pid int, ws syscall.WaitStatus) {
	r.wmu.Lock()
	fn := r.waiters[pid]
	delete(r.waiters, pid)
	r.wmu.Unlock()
	if fn == nil {
		r.log.Debug("reaped orphan", logkey.PID, pid, "status", int(ws))
		return
	}
	fn(ws)
}

// spawn runs start, which must fork exactly one child and return its pid, and
// registers onExit for that child. onExit runs once, with the reaper lock held: it
// must not block or call back into the reaper.
func (r *reaper) spawn(start func() (int, error), onExit func(syscall.WaitStatus)) (int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	pid, err := start()
	if err != nil {
		return 0, err
	}
	r.wmu.Lock()
	r.waiters[pid] = onExit
	r.wmu.Unlock()
	if !r.all {
		go r.waitOne(pid)
	}
	return pid, nil
}

// waitOne waits for one child without reaping it (WNOWAIT), then reaps it under the
// write lock. Used when the agent is not PID 1 and must not touch other children.
func (r *reaper) waitOne(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			r.log.Error("waiting for child", logkey.PID, pid, logkey.Err, err)
		}
		break
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			// Someone else reaped it; report it as killed rather than hang forever.
			r.log.Error("reaping child", logkey.PID, pid, logkey.Err, err)
			ws = syscall.WaitStatus(syscall.SIGKILL)
		}
		break
	}
	r.dispatch(pid, ws)
}

// whileUnreaped runs fn with the guarantee that no child is reaped while it runs, so
// a pid checked as not yet reaped cannot be recycled under fn.
func (r *reaper) whileUnreaped(fn func()) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fn()
}

// close stops the reap loop. Children still running are no longer waited for in
// reapAll mode; callers kill and wait for their processes first.
func (r *reaper) close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
	if r.sigs != nil {
		signal.Stop(r.sigs)
	}
}
