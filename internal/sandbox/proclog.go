package sandbox

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// This file holds the output log of a background process started through the API:
// what /processes/{pid}/events replays before following the live output.

// chunkOverhead is what a retained chunk costs beyond its bytes, counted in the
// bounds so that a flood of tiny writes cannot hold more memory than a few large ones.
const chunkOverhead = 64

// logChunk is one piece of retained output.
type logChunk struct {
	seq    uint64 // 1, 2, ... in the order the output came
	off    int64  // output bytes that came before it
	stderr bool
	data   []byte // never changed once appended
}

func (c logChunk) cost() int { return len(c.data) + chunkOverhead }

// procLog records one process's events in bounded memory: the first headMax and the
// last tailMax of its output (sizes counted with chunkOverhead per chunk), with what
// lies between dropped, and its end. Any number of followers replay it from the start
// and then follow it live; a slow follower never holds up the recording.
type procLog struct {
	pid     uint32
	headMax int
	tailMax int

	mu         sync.Mutex
	head       []logChunk
	headCost   int
	headClosed bool // once output went to the tail, the head takes no more
	tail       []logChunk
	tailCost   int
	seq        uint64 // of the last chunk appended
	total      int64  // output bytes appended, retained or not
	done       bool
	end        *domain.ExecResult // how the process ended, when done without err
	err        error              // why the recording ended without the process's end
	endedAt    time.Time
	wake       chan struct{} // closed (and replaced) when a chunk is appended or the log ends
}

// newProcLog returns an empty log for process pid. tailMax is raised to hold at least
// one byte, so that the last output is always kept.
func newProcLog(pid uint32, headMax, tailMax int) *procLog {
	tailMax = max(tailMax, chunkOverhead+1)
	return &procLog{pid: pid, headMax: headMax, tailMax: tailMax, wake: make(chan struct{})}
}

// notifyLocked wakes the followers. Preconditions: mu held.
func (l *procLog) notifyLocked() {
	close(l.wake)
	l.wake = make(chan struct{})
}

// append records an output chunk. It keeps data; the caller must not change it.
func (l *procLog) append(stderr bool, data []byte) {
	if len(data) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	if !l.headClosed {
		room := l.headMax - l.headCost - chunkOverhead
		if len(data) <= room {
			l.pushLocked(&l.head, &l.headCost, stderr, data)
			l.notifyLocked()
			return
		}
		if room > 0 {
			// A copy: a slice of data would keep all of it (a chunk may be as large as
			// the agent's largest message), not just the head's share.
			l.pushLocked(&l.head, &l.headCost, stderr, append([]byte(nil), data[:room]...))
			data = data[room:]
		}
		l.headClosed = true
	}
	l.pushLocked(&l.tail, &l.tailCost, stderr, data)
	l.trimLocked()
	l.notifyLocked()
}

// pushLocked appends data as the next chunk to one part. Preconditions: mu held.
func (l *procLog) pushLocked(part *[]logChunk, cost *int, stderr bool, data []byte) {
	l.seq++
	c := logChunk{seq: l.seq, off: l.total, stderr: stderr, data: data}
	l.total += int64(len(data))
	*part = append(*part, c)
	*cost += c.cost()
}

// trimLocked drops the tail's oldest output until it fits tailMax: whole chunks, or
// the front of the only chunk left. Preconditions: mu held.
func (l *procLog) trimLocked() {
	for l.tailCost > l.tailMax && len(l.tail) > 1 {
		l.tailCost -= l.tail[0].cost()
		l.tail[0] = logChunk{} // let its bytes go
		l.tail = l.tail[1:]
	}
	if l.tailCost > l.tailMax && len(l.tail) == 1 {
		c := l.tail[0]
		keep := max(l.tailMax-chunkOverhead, 0)
		cut := len(c.data) - keep
		c.data = append([]byte(nil), c.data[cut:]...)
		c.off += int64(cut)
		l.tail[0] = c
		l.tailCost = c.cost()
	}
}

// finish records how the process ended (res, whose output is not kept), or that
// its end is unknown (err). Later chunks are ignored.
func (l *procLog) finish(res *domain.ExecResult, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	l.done, l.endedAt = true, time.Now()
	switch {
	case err != nil:
		l.err = err
	case res == nil:
		l.err = domain.Errorf(domain.KindUnavailable, "the output stream of process %d ended without its end", l.pid)
	default:
		l.end = &domain.ExecResult{ExitCode: res.ExitCode, Error: res.Error, TimedOut: res.TimedOut}
	}
	l.notifyLocked()
}

// ended reports whether the log is complete, and since when.
func (l *procLog) ended() (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done, l.endedAt
}

// after returns the retained chunks that came after chunk seq. Preconditions: mu held.
func (l *procLog) afterLocked(seq uint64) []logChunk {
	var out []logChunk
	for _, part := range [][]logChunk{l.head, l.tail} {
		i := sort.Search(len(part), func(i int) bool { return part[i].seq > seq })
		out = append(out, part[i:]...)
	}
	return out
}

// gapNotice is the stderr text that stands for n bytes of output a follower cannot
// be given: dropped from the middle of a long output, or dropped while the follower
// lagged behind.
func (l *procLog) gapNotice(n int64) []byte {
	return fmt.Appendf(nil, "\n[warren: %d bytes of output dropped here; the server keeps the first %s and the last %s of a background process's output]\n", n, sizeText(l.headMax), sizeText(l.tailMax))
}

// sizeText words a size in KiB when it is a whole number of them.
func sizeText(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// follow replays the log through onEvent (a PID event, the retained output, a
// stderr notice where output was dropped) and then follows it live until the
// process's end, which it returns (without output) after an End event. It returns
// ctx's cause when ctx ends first, and the recording's error when the end is unknown.
func (l *procLog) follow(ctx context.Context, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	if err := onEvent(domain.ExecEvent{PID: l.pid}); err != nil {
		return nil, err
	}
	var seq uint64 // the last chunk given
	var off int64  // output bytes given or passed over
	for {
		l.mu.Lock()
		batch := l.afterLocked(seq)
		done, end, rerr, wake, total := l.done, l.end, l.err, l.wake, l.total
		l.mu.Unlock()
		for _, c := range batch {
			if c.off > off {
				if err := onEvent(domain.ExecEvent{Stderr: l.gapNotice(c.off - off)}); err != nil {
					return nil, err
				}
			}
			ev := domain.ExecEvent{Stdout: c.data}
			if c.stderr {
				ev = domain.ExecEvent{Stderr: c.data}
			}
			if err := onEvent(ev); err != nil {
				return nil, err
			}
			seq, off = c.seq, c.off+int64(len(c.data))
		}
		if len(batch) > 0 {
			continue // more may have come meanwhile
		}
		if done {
			if total > off {
				if err := onEvent(domain.ExecEvent{Stderr: l.gapNotice(total - off)}); err != nil {
					return nil, err
				}
			}
			if rerr != nil {
				return nil, rerr
			}
			res := *end
			if err := onEvent(domain.ExecEvent{End: &res}); err != nil {
				return nil, err
			}
			return &res, nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}
