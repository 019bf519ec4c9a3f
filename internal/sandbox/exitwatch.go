package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// A sandbox whose root process exits while it starts (an agent that cannot run, a
// runtime that gave up after `run --detach` returned) would otherwise be waited for
// until StartTimeout, 60 s, and then reported only as an agent that never answered.
// So while the agent is waited for, the root process (the handle's PID) is looked at
// every exitWatchEvery, a read of /proc; once it has exited the wait ends at once,
// with the end of the sandbox's console log in the error (for the server's log).

// exitWatchEvery is how often a starting sandbox's root process is looked at.
const exitWatchEvery = 50 * time.Millisecond

// maxExitTail bounds the console log quoted when a sandbox exited while starting.
const maxExitTail = 2 << 10

// errExitedWhileStarting is the cause of a start wait ended by the root process's exit.
var errExitedWhileStarting = errors.New("the sandbox's root process exited while it was starting")

// watchExit returns a ctx that ends, with cause errExitedWhileStarting, once running
// says pid no longer runs; and the func that ends the watch (and returns once it has
// ended). A pid of 0 or less (a driver that gave none) is not watched.
func watchExit(ctx context.Context, pid int, running func(int) bool) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	if pid <= 0 {
		return ctx, func() { cancel(nil) }
	}
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(exitWatchEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if !running(pid) {
					cancel(errExitedWhileStarting)
					return
				}
			}
		}
	}()
	return ctx, func() { close(done); <-ended; cancel(nil) }
}

// exitedErr is the error for sandbox id's start on node n when ctx (from watchExit)
// ended because its root process exited, else err as it is.
func exitedErr(ctx context.Context, n Node, id string, err error) error {
	if err == nil || !errors.Is(context.Cause(ctx), errExitedWhileStarting) {
		return err
	}
	return fmt.Errorf("%w; its console log ends: %q", errExitedWhileStarting, consoleTail(n, id, maxExitTail))
}

// consoleTail returns at most the last n bytes of sandbox id's console log on node,
// from a line's start when it can; "" when there is none.
func consoleTail(node Node, id string, n int64) string {
	r, err := node.OpenLog(id)
	if err != nil {
		return ""
	}
	defer r.Close()
	// The log may be large (a template's start command writes to it): read through it
	// keeping the last 2n bytes, never more than that in memory.
	buf := make([]byte, 0, 2*n)
	chunk := make([]byte, 32<<10)
	for {
		k, err := r.Read(chunk)
		buf = append(buf, chunk[:k]...)
		if int64(len(buf)) > 2*n {
			buf = append(buf[:0], buf[int64(len(buf))-n:]...)
		}
		if err != nil {
			if err != io.EOF {
				return ""
			}
			break
		}
	}
	if int64(len(buf)) > n {
		buf = buf[int64(len(buf))-n:]
		if i := strings.IndexByte(string(buf), '\n'); i >= 0 && i < len(buf)-1 {
			buf = buf[i+1:]
		}
	}
	return strings.TrimSpace(string(buf))
}
