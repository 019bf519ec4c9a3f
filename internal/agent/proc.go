package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/envdpb/process"
)

const (
	// readChunk is the largest data event the agent sends.
	readChunk = 32 << 10
	// outputGrace is how long output is still read after the process exited, for
	// grandchildren that keep its stdout/stderr/pty open.
	outputGrace = 200 * time.Millisecond
	// subscriberBuffer is the number of events buffered per attached stream before
	// the process's output blocks (back-pressure, as in envd).
	subscriberBuffer = 64
)

var (
	errStdinDisabled = errors.New("stdin is not enabled for this process (start it with stdin: true)")
	errStdinClosed   = errors.New("stdin of this process was closed")
	errNotPTY        = errors.New("process has no pty")
	errExited        = errors.New("process already exited")
)

// proc is one process started by the agent.
type proc struct {
	pid    uint32
	tag    *string
	config *process.ProcessConfig
	reaper *reaper

	// exitCh receives the wait status once, from the reaper.
	exitCh chan syscall.WaitStatus
	// reaped is set by the reaper's exit callback, under the reaper's write lock.
	reaped atomic.Bool

	// inMu serialises input and guards stdin.
	inMu         sync.Mutex
	stdin        *os.File // write end of the stdin pipe; nil when disabled or closed
	stdinEnabled bool
	pty          *os.File // pty master; nil for pipe processes

	outputs []*os.File                                     // read ends of stdout/stderr, or the pty master
	wraps   []func([]byte) *process.ProcessEvent_DataEvent // one per output: its kind of data event
	readers sync.WaitGroup

	timer *time.Timer // lifetime limit from Connect-Timeout-Ms; nil for none

	mu   sync.Mutex
	subs map[*subscriber]struct{}       // attached streams; nil once ended
	end  *process.ProcessEvent_EndEvent // set once, when the process is finished
	done chan struct{}                  // closed when end is set
}

// subscriber is one attached Start/Connect stream.
type subscriber struct {
	ch   chan *process.ProcessEvent
	gone chan struct{} // closed when the stream detaches
	once sync.Once
}

func newSubscriber() *subscriber {
	return &subscriber{ch: make(chan *process.ProcessEvent, subscriberBuffer), gone: make(chan struct{})}
}

// subscribe attaches a new stream. If the process already ended it returns the end
// event instead.
func (p *proc) subscribe() (*subscriber, *process.ProcessEvent_EndEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.end != nil {
		return nil, p.end
	}
	s := newSubscriber()
	p.subs[s] = struct{}{}
	return s, nil
}

// unsubscribe detaches s; output the stream did not read is dropped for it.
func (p *proc) unsubscribe(s *subscriber) {
	if s == nil {
		return
	}
	p.mu.Lock()
	delete(p.subs, s)
	p.mu.Unlock()
	s.once.Do(func() { close(s.gone) })
}

// broadcast delivers ev to every attached stream, waiting for room in each
// (back-pressure) unless the stream detaches.
func (p *proc) broadcast(ev *process.ProcessEvent) {
	p.mu.Lock()
	subs := make([]*subscriber, 0, len(p.subs))
	for s := range p.subs {
		subs = append(subs, s)
	}
	p.mu.Unlock()
	for _, s := range subs {
		select {
		case s.ch <- ev:
		case <-s.gone:
		}
	}
}

// readOutput turns what f yields into data events until EOF, an error or the
// post-exit read deadline.
func (p *proc) readOutput(f *os.File, wrap func([]byte) *process.ProcessEvent_DataEvent) {
	defer p.readers.Done()
	buf := make([]byte, readChunk)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			data := make([]byte, n)
			copy(data, buf[:n])
			p.broadcast(&process.ProcessEvent{Event: &process.ProcessEvent_Data{Data: wrap(data)}})
		}
		if err != nil {
			// io.EOF for pipes, EIO for a pty whose slave side is closed,
			// os.ErrDeadlineExceeded after the grace period.
			return
		}
	}
}

// wait runs for the process's whole life: it waits for the exit status, drains the
// remaining output, and publishes the end event. retire is called afterwards.
func (p *proc) wait(retire func()) {
	ws := <-p.exitCh
	if p.timer != nil {
		p.timer.Stop()
	}
	deadline := time.Now().Add(outputGrace)
	for _, f := range p.outputs {
		_ = f.SetReadDeadline(deadline)
	}
	p.readers.Wait()
	for _, f := range p.outputs {
		_ = f.Close()
	}
	p.inMu.Lock()
	if p.stdin != nil {
		_ = p.stdin.Close()
		p.stdin = nil
	}
	p.inMu.Unlock()

	end := endEvent(ws)
	p.mu.Lock()
	p.end = end
	subs := p.subs
	p.subs = nil
	close(p.done)
	p.mu.Unlock()
	ev := &process.ProcessEvent{Event: &process.ProcessEvent_End{End: end}}
	for s := range subs {
		select {
		case s.ch <- ev:
		case <-s.gone:
		}
	}
	retire()
}

// endEvent describes ws the way Go's os.ProcessState does, which is what envd sends.
func endEvent(ws syscall.WaitStatus) *process.ProcessEvent_EndEvent {
	ev := &process.ProcessEvent_EndEvent{ExitCode: -1, Exited: ws.Exited()}
	switch {
	case ws.Exited():
		ev.ExitCode = int32(ws.ExitStatus())
		ev.Status = "exit status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		ev.Status = "signal: " + ws.Signal().String()
		if ws.CoreDump() {
			ev.Status += " (core dumped)"
		}
	default:
		ev.Status = fmt.Sprintf("unknown wait status %#x", int(ws))
	}
	if ev.ExitCode != 0 {
		msg := ev.Status
		ev.Error = &msg
	}
	return ev
}

// finished reports whether the end event was published.
func (p *proc) finished() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process's process group (it is always a group leader: the
// agent starts it with setpgid or setsid), so that what a shell command started dies
// with it; if the process moved itself to another group, to the process as well.
func (p *proc) signal(sig syscall.Signal) error {
	var err error
	p.reaper.whileUnreaped(func() {
		if p.reaped.Load() {
			err = errExited
			return
		}
		pid := int(p.pid)
		if pgid, gerr := syscall.Getpgid(pid); gerr == nil && pgid == pid {
			err = syscall.Kill(-pid, sig)
			return
		}
		err = syscall.Kill(pid, sig)
		_ = syscall.Kill(-pid, sig) // whatever is left in its original group
	})
	return err
}

// writeInput writes data to the pty master, or to stdin for pipe processes. It gives
// up when ctx ends, so a process that does not read cannot hang the call forever.
func (p *proc) writeInput(ctx context.Context, data []byte) error {
	p.inMu.Lock()
	defer p.inMu.Unlock()
	w := p.pty
	if w == nil {
		switch {
		case !p.stdinEnabled:
			return errStdinDisabled
		case p.stdin == nil:
			return errStdinClosed
		}
		w = p.stdin
	}
	if p.finished() {
		return errExited
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = w.SetWriteDeadline(time.Now())
		close(fired)
	})
	_, err := w.Write(data)
	if !stop() {
		<-fired
	}
	_ = w.SetWriteDeadline(time.Time{})
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// closeStdin closes the stdin pipe so the process reads EOF.
func (p *proc) closeStdin() error {
	p.inMu.Lock()
	defer p.inMu.Unlock()
	if p.pty != nil {
		return errors.New("process has a pty, not a stdin pipe: send Ctrl-D (0x04) as pty input instead")
	}
	if !p.stdinEnabled {
		return errStdinDisabled
	}
	if p.stdin == nil {
		return nil
	}
	err := p.stdin.Close()
	p.stdin = nil
	return err
}

// resize sets the pty window size.
func (p *proc) resize(cols, rows uint32) error {
	p.inMu.Lock()
	defer p.inMu.Unlock()
	if p.pty == nil {
		return errNotPTY
	}
	if p.finished() {
		return errExited
	}
	return setWinsize(p.pty, cols, rows)
}

// setWinsize applies TIOCSWINSZ through SyscallConn, so the master stays in
// non-blocking mode (File.Fd would switch it to blocking and disable deadlines).
func setWinsize(f *os.File, cols, rows uint32) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	ws := &unix.Winsize{Col: uint16(cols), Row: uint16(rows)}
	var ioErr error
	if err := rc.Control(func(fd uintptr) { ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) }); err != nil {
		return err
	}
	return ioErr
}
