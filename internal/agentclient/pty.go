package agentclient

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/envdpb/process"
)

// PTYRequest starts a process on a pseudo-terminal.
type PTYRequest struct {
	// Cmd and Args are the program and its arguments.
	Cmd  string
	Args []string
	Env  map[string]string
	// User runs the process as this sandbox user ("" = the agent's default user).
	User       string
	Cols, Rows uint32
}

// ptyCallTimeout bounds each input, resize and kill call to the agent.
const ptyCallTimeout = 10 * time.Second

// PTY is a process running on a pseudo-terminal in the sandbox. It implements
// domain.Terminal. The agent keeps the process running when the output stream is
// closed, so Close kills it explicitly.
type PTY struct {
	c    *Client
	user string
	pid  uint32
	sel  *process.ProcessSelector

	stop    context.CancelFunc // ends the output stream
	out     chan []byte        // output chunks; closed when the stream ended
	pending []byte             // the unread rest of the last chunk (Read only)

	done     chan struct{} // closed when the stream ended; then code and err are set
	code     int
	err      error
	exited   bool // the end event arrived
	closeMu  sync.Mutex
	closed   bool
	closeErr error
}

var _ domain.Terminal = (*PTY)(nil)

// StartPTY starts req's process on a pseudo-terminal and returns once the agent reported
// it started. ctx bounds the whole session: when it ends, the output stream ends (the
// process is not killed until Close).
func (ps Processes) StartPTY(ctx context.Context, req PTYRequest) (*PTY, error) {
	if req.User != "" {
		ctx = WithUser(ctx, req.User)
	}
	cols, rows := req.Cols, req.Rows
	if cols == 0 || rows == 0 {
		cols, rows = 80, 24
	}
	sctx, stop := context.WithCancel(ctx)
	stream, err := ps.c.proc.Start(sctx, connect.NewRequest(&process.StartRequest{
		Process: &process.ProcessConfig{Cmd: req.Cmd, Args: req.Args, Envs: req.Env},
		Pty:     &process.PTY{Size: &process.PTY_Size{Cols: cols, Rows: rows}},
	}))
	if err != nil {
		stop()
		return nil, mapErr(err)
	}
	if !stream.Receive() {
		err := stream.Err()
		stream.Close()
		stop()
		if err == nil {
			return nil, domain.Errorf(domain.KindUnavailable, "the terminal's process stream ended before it started; the sandbox may have stopped")
		}
		return nil, mapErr(err)
	}
	start := stream.Msg().GetEvent().GetStart()
	if start == nil {
		stream.Close()
		stop()
		return nil, fmt.Errorf("agent sent %T before the start event", stream.Msg().GetEvent().GetEvent())
	}
	p := &PTY{
		c: ps.c, user: req.User, pid: start.GetPid(),
		sel:  &process.ProcessSelector{Selector: &process.ProcessSelector_Pid{Pid: start.GetPid()}},
		stop: stop, out: make(chan []byte, 16), done: make(chan struct{}),
	}
	go p.pump(sctx, stream)
	return p, nil
}

// pump moves the stream's output into p.out until the end event or the stream breaks.
func (p *PTY) pump(ctx context.Context, stream *connect.ServerStreamForClient[process.StartResponse]) {
	defer close(p.done)
	defer close(p.out)
	defer stream.Close()
	for stream.Receive() {
		switch e := stream.Msg().GetEvent().GetEvent().(type) {
		case *process.ProcessEvent_Data:
			b := e.Data.GetPty()
			if b == nil {
				b = e.Data.GetStdout()
			}
			if len(b) == 0 {
				continue
			}
			select {
			case p.out <- b:
			case <-ctx.Done():
				p.err = ctx.Err()
				return
			}
		case *process.ProcessEvent_End:
			p.code = int(e.End.GetExitCode())
			if !e.End.GetExited() && p.code == 0 {
				p.code = -1
			}
			p.exited = true
			return
		}
	}
	if err := stream.Err(); err != nil {
		p.err = mapErr(err)
		return
	}
	p.err = domain.Errorf(domain.KindUnavailable, "the terminal's stream ended without an exit status; the sandbox may have stopped")
}

// PID is the process's id inside the sandbox.
func (p *PTY) PID() uint32 { return p.pid }

// Read implements domain.Terminal.
func (p *PTY) Read(b []byte) (int, error) {
	if len(p.pending) == 0 {
		chunk, ok := <-p.out
		if !ok {
			return 0, io.EOF
		}
		p.pending = chunk
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

func (p *PTY) callCtx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), ptyCallTimeout)
	if p.user != "" {
		ctx = WithUser(ctx, p.user)
	}
	return ctx, cancel
}

// Write implements domain.Terminal: b is sent as terminal input, in pieces of at most
// 64 KiB.
func (p *PTY) Write(b []byte) (int, error) {
	const chunk = 64 << 10
	written := 0
	for written < len(b) {
		n := min(len(b)-written, chunk)
		ctx, cancel := p.callCtx()
		_, err := p.c.proc.SendInput(ctx, connect.NewRequest(&process.SendInputRequest{
			Process: p.sel,
			Input:   &process.ProcessInput{Input: &process.ProcessInput_Pty{Pty: b[written : written+n]}},
		}))
		cancel()
		if err != nil {
			return written, mapErr(err)
		}
		written += n
	}
	return written, nil
}

// Resize implements domain.Terminal.
func (p *PTY) Resize(ctx context.Context, cols, rows uint32) error {
	if p.user != "" {
		ctx = WithUser(ctx, p.user)
	}
	_, err := p.c.proc.Update(ctx, connect.NewRequest(&process.UpdateRequest{
		Process: p.sel, Pty: &process.PTY{Size: &process.PTY_Size{Cols: cols, Rows: rows}},
	}))
	return mapErr(err)
}

// Wait implements domain.Terminal.
func (p *PTY) Wait(ctx context.Context) (int, error) {
	select {
	case <-p.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if !p.exited {
		return 0, p.err
	}
	return p.code, nil
}

// hangupGrace is how long Close waits for a hung-up shell to end before killing it.
const hangupGrace = 2 * time.Second

// Close implements domain.Terminal. A process that still runs is hung up as when a
// terminal goes away: SIGHUP to the shell, which passes it on to its jobs (a
// foreground job has a process group of its own, which killing the shell's group
// would miss); then, if it is still there after a grace period, SIGKILL to its process
// group. Later calls return the first's result.
func (p *PTY) Close() error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closed {
		return p.closeErr
	}
	p.closed = true
	if !p.ended() {
		p.closeErr = p.hangup()
	}
	p.stop()
	// Drain so that pump is never stuck sending, then wait for it.
	for range p.out {
	}
	<-p.done
	return p.closeErr
}

func (p *PTY) ended() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// hangup ends the running process; see Close.
func (p *PTY) hangup() error {
	ctx, cancel := context.WithTimeout(context.Background(), ptyCallTimeout)
	defer cancel()
	// The agent's SendSignal knows SIGTERM and SIGKILL only, so the hangup is sent by a
	// command in the sandbox. It fails harmlessly when the process ended meanwhile.
	_, herr := p.c.Processes().Exec(ctx, domain.ExecRequest{
		Args: []string{"/bin/sh", "-c", "kill -s HUP " + strconv.FormatUint(uint64(p.pid), 10) + " 2>/dev/null"},
		User: "root", Timeout: ptyCallTimeout,
	}, nil)
	grace := time.NewTimer(hangupGrace)
	defer grace.Stop()
	for waiting := herr == nil; waiting; {
		select {
		case _, ok := <-p.out:
			if !ok {
				return nil // it ended
			}
		case <-grace.C:
			waiting = false
		}
	}
	sctx, scancel := p.callCtx()
	defer scancel()
	_, err := p.c.proc.SendSignal(sctx, connect.NewRequest(&process.SendSignalRequest{
		Process: p.sel, Signal: process.Signal_SIGNAL_SIGKILL,
	}))
	if err != nil && connect.CodeOf(err) != connect.CodeNotFound {
		return fmt.Errorf("killing terminal process %d: %w", p.pid, mapErr(err))
	}
	return nil
}
