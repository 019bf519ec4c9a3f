package agentclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/envdpb/process"
)

// This file holds the calls for long-running processes: start in the background,
// list, re-attach, stdin, signals.

// processConfig is the agent's description of req's command: a shell line runs as
// `/bin/bash -c LINE` (the agent runs it with /bin/sh in an image without bash), an
// argv directly.
func processConfig(req domain.ExecRequest) *process.ProcessConfig {
	cfg := &process.ProcessConfig{Envs: req.Env}
	if len(req.Args) > 0 {
		cfg.Cmd, cfg.Args = req.Args[0], req.Args[1:]
	} else {
		cfg.Cmd, cfg.Args = "/bin/bash", []string{"-c", req.Cmd}
	}
	if req.Cwd != "" {
		cfg.Cwd = &req.Cwd
	}
	return cfg
}

func pidSelector(pid uint32) *process.ProcessSelector {
	return &process.ProcessSelector{Selector: &process.ProcessSelector_Pid{Pid: pid}}
}

// dataEvent turns an output chunk into an ExecEvent; pty output counts as stdout.
func dataEvent(d *process.ProcessEvent_DataEvent) domain.ExecEvent {
	var out domain.ExecEvent
	if b := d.GetStdout(); b != nil {
		out.Stdout = b
	} else if b := d.GetStderr(); b != nil {
		out.Stderr = b
	} else if b := d.GetPty(); b != nil {
		out.Stdout = b
	}
	return out
}

// endResult reads how a process ended. A process killed by a signal has exit code -1.
func endResult(e *process.ProcessEvent_EndEvent, res *domain.ExecResult) {
	res.ExitCode = int(e.GetExitCode())
	res.Error = e.GetError()
	if res.ExitCode == 0 && !e.GetExited() && res.Error == "" {
		res.Error = e.GetStatus()
	}
	if res.ExitCode == 0 && !e.GetExited() {
		res.ExitCode = -1 // killed by a signal
	}
}

// markTimedOut records that the command was killed at its timeout d.
func markTimedOut(res *domain.ExecResult, d time.Duration) {
	res.ExitCode = -1
	res.TimedOut = true
	res.Error = fmt.Sprintf("command timed out after %s and was killed", d)
}

// timeoutSlack is how close to its deadline a command killed by a signal must have
// ended to count as killed at its timeout: the agent kills it at the deadline it was
// given, which the client's own deadline may beat by a little or not at all.
const timeoutSlack = 500 * time.Millisecond

// killAfterTimeout makes sure a command whose call ran out of time is gone. The agent
// kills it at the same deadline, so this usually finds nothing to kill.
func (ps Processes) killAfterTimeout(pid uint32) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = ps.c.proc.SendSignal(ctx, connect.NewRequest(&process.SendSignalRequest{
		Process: pidSelector(pid), Signal: process.Signal_SIGNAL_SIGKILL,
	}))
}

// procErr maps an agent error about process pid; a refused stdin operation is a
// conflict with the process's state.
func procErr(err error, pid uint32) error {
	if err == nil {
		return nil
	}
	if connect.CodeOf(err) == connect.CodeFailedPrecondition {
		var ce *connect.Error
		errors.As(err, &ce)
		return domain.Errorf(domain.KindConflict, "process %d: %s", pid, ce.Message())
	}
	return mapErr(err)
}

// Processes runs commands in the sandbox: to their end (Exec), in the background
// (StartBackground, StartFollowed), re-attached (Attach), with their standard input
// and signals, and on pseudo-terminals (StartPTY). Make it with Client.Processes.
type Processes struct{ c *Client }

// StartBackground starts req, waits until the agent reports it running and detaches:
// the process keeps running after the call. req.Timeout is its lifetime (0 = none).
// req.Stdin is written once it runs; then stdin is closed unless stdinOpen.
func (ps Processes) StartBackground(ctx context.Context, req domain.ExecRequest, stdinOpen bool) (uint32, error) {
	st, err := ps.StartFollowed(ctx, ctx, req, stdinOpen)
	if err != nil {
		return 0, err
	}
	st.Detach()
	return st.PID, st.FeedStdin(ctx)
}

// ListProcesses lists the processes the agent started that still run, by pid.
func (ps Processes) ListProcesses(ctx context.Context) ([]domain.ProcessInfo, error) {
	resp, err := ps.c.proc.List(ctx, connect.NewRequest(&process.ListRequest{}))
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]domain.ProcessInfo, 0, len(resp.Msg.GetProcesses()))
	for _, p := range resp.Msg.GetProcesses() {
		cfg := p.GetConfig()
		out = append(out, domain.ProcessInfo{
			PID: p.GetPid(), Cmd: cfg.GetCmd(), Args: cfg.GetArgs(), Cwd: cfg.GetCwd(), Tag: p.GetTag(),
		})
	}
	return out, nil
}

// Attach re-attaches to process pid: onEvent sees a PID event, then the output from
// now on; the result is how it ended (without output). It returns when the process
// ended, ctx ended or the stream broke.
func (ps Processes) Attach(ctx context.Context, pid uint32, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	return ps.AttachLifetime(ctx, pid, Lifetime{}, onEvent)
}

// AttachLifetime is Attach to a process known to have been started with life: an end
// by a signal at its deadline is reported as killed at its timeout (TimedOut).
func (ps Processes) AttachLifetime(ctx context.Context, pid uint32, life Lifetime, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	return ps.attach(ctx, pid, life, true, onEvent)
}

// attach follows process pid through the agent's Connect stream; withStart false
// drops the start event (a re-attach of a stream already begun).
func (ps Processes) attach(ctx context.Context, pid uint32, life Lifetime, withStart bool, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := ps.c.proc.Connect(ctx, connect.NewRequest(&process.ConnectRequest{Process: pidSelector(pid)}))
	if err != nil {
		return nil, mapErr(err)
	}
	defer func() {
		cancel() // before Close, which would otherwise drain a live stream
		_ = stream.Close()
	}()
	next := func() (*process.ProcessEvent, bool) {
		if !stream.Receive() {
			return nil, false
		}
		return stream.Msg().GetEvent(), true
	}
	res, err := relay(next, life, withStart, onEvent)
	if res != nil {
		readEnd(stream, cancel)
	}
	if res != nil || err != nil {
		return res, err
	}
	if err := stream.Err(); err != nil {
		return nil, mapErr(err)
	}
	return nil, domain.Errorf(domain.KindUnavailable, "the stream of process %d ended without a result; the sandbox may have stopped", pid)
}

// SendStdin writes data to process pid's standard input, in pieces of at most 64 KiB.
func (ps Processes) SendStdin(ctx context.Context, pid uint32, data []byte) error {
	const chunk = 64 << 10
	for len(data) > 0 {
		n := min(len(data), chunk)
		_, err := ps.c.proc.SendInput(ctx, connect.NewRequest(&process.SendInputRequest{
			Process: pidSelector(pid),
			Input:   &process.ProcessInput{Input: &process.ProcessInput_Stdin{Stdin: data[:n]}},
		}))
		if err != nil {
			return procErr(err, pid)
		}
		data = data[n:]
	}
	return nil
}

// CloseStdin closes process pid's standard input.
func (ps Processes) CloseStdin(ctx context.Context, pid uint32) error {
	_, err := ps.c.proc.CloseStdin(ctx, connect.NewRequest(&process.CloseStdinRequest{Process: pidSelector(pid)}))
	return procErr(err, pid)
}

// Signal sends domain.SignalTerm or domain.SignalKill to process pid and its group.
func (ps Processes) Signal(ctx context.Context, pid uint32, signal string) error {
	var sig process.Signal
	switch signal {
	case domain.SignalTerm:
		sig = process.Signal_SIGNAL_SIGTERM
	case domain.SignalKill:
		sig = process.Signal_SIGNAL_SIGKILL
	default:
		return domain.Invalid("signal", "signal %q is not supported: the sandbox agent can send %s or %s", signal, domain.SignalTerm, domain.SignalKill)
	}
	_, err := ps.c.proc.SendSignal(ctx, connect.NewRequest(&process.SendSignalRequest{Process: pidSelector(pid), Signal: sig}))
	return procErr(err, pid)
}

// Lifetime is the timeout a process was started with and when it runs out; the zero
// value is a process without one.
type Lifetime struct {
	Timeout  time.Duration
	Deadline time.Time
}

// expired reports whether the lifetime has (all but) run out at now.
func (l Lifetime) expired(now time.Time) bool {
	return !l.Deadline.IsZero() && l.Deadline.Sub(now) < timeoutSlack
}

// killedAtTimeout reports whether e, seen at now, is the end of a process the agent
// killed at its deadline: ended by a signal, at (or after) the deadline.
func (l Lifetime) killedAtTimeout(e *process.ProcessEvent_EndEvent, now time.Time) bool {
	return !e.GetExited() && l.expired(now)
}

// relay forwards the events next yields to onEvent until the end event and returns
// how the process ended (without output). withStart false drops start events. A nil
// result and error mean the events ran out before the end.
func relay(next func() (*process.ProcessEvent, bool), life Lifetime, withStart bool, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	emit := func(ev domain.ExecEvent) error {
		if onEvent == nil {
			return nil
		}
		return onEvent(ev)
	}
	for ev, ok := next(); ok; ev, ok = next() {
		switch e := ev.GetEvent().(type) {
		case *process.ProcessEvent_Start:
			if withStart {
				if err := emit(domain.ExecEvent{PID: e.Start.GetPid()}); err != nil {
					return nil, err
				}
			}
		case *process.ProcessEvent_Data:
			if err := emit(dataEvent(e.Data)); err != nil {
				return nil, err
			}
		case *process.ProcessEvent_End:
			res := &domain.ExecResult{}
			endResult(e.End, res)
			if life.killedAtTimeout(e.End, time.Now()) {
				markTimedOut(res, life.Timeout)
			}
			if err := emit(domain.ExecEvent{End: res}); err != nil {
				return nil, err
			}
			return res, nil
		}
	}
	return nil, nil
}

// Started is a process started by StartFollowed whose event stream is still open.
// Call Follow (which reads the stream to the process's end) or Detach, once.
type Started struct {
	// PID is the process's id in the sandbox.
	PID uint32
	// Life is its timeout; the zero Lifetime when it has none.
	Life Lifetime

	ps     Processes
	life   context.Context // what the stream lives under, without the deadline
	stop   context.CancelFunc
	stream *connect.ServerStreamForClient[process.StartResponse]

	stdin     []byte
	withStdin bool
	stdinOpen bool
}

// StartFollowed starts req and waits until the agent reports it running, like
// StartBackground, but keeps the agent's event stream open under life (ctx only
// bounds the wait for the start): the caller reads it with Follow. req.Timeout is
// the process's lifetime (0 = none). Write req.Stdin with FeedStdin once a reader of
// the stream is running, so that a process echoing its input cannot stall.
func (ps Processes) StartFollowed(ctx, life context.Context, req domain.ExecRequest, stdinOpen bool) (*Started, error) {
	st := &Started{ps: ps, life: life, stdin: req.Stdin, stdinOpen: stdinOpen}
	st.withStdin = stdinOpen || len(req.Stdin) > 0
	sctx, cancel := context.WithCancel(life)
	st.stop = cancel
	if req.Timeout > 0 {
		// envd treats the Start call's deadline as the process's lifetime; ending the
		// call detaches without shortening it.
		var cancelT context.CancelFunc
		sctx, cancelT = context.WithTimeout(sctx, req.Timeout)
		st.stop = func() { cancelT(); cancel() }
		st.Life.Timeout = req.Timeout
		st.Life.Deadline, _ = sctx.Deadline()
	}
	if req.User != "" {
		sctx = WithUser(sctx, req.User)
	}
	// Until the process runs, the caller may give up on starting it.
	unbind := context.AfterFunc(ctx, st.stop)
	stream, err := ps.c.proc.Start(sctx, connect.NewRequest(&process.StartRequest{Process: processConfig(req), Stdin: &st.withStdin}))
	if err != nil {
		unbind()
		st.stop()
		return nil, mapErr(err)
	}
	st.stream = stream
	for st.PID == 0 && stream.Receive() {
		if s := stream.Msg().GetEvent().GetStart(); s != nil {
			st.PID = s.GetPid()
		}
	}
	if !unbind() && ctx.Err() != nil {
		st.Detach()
		return nil, domain.Errorf(domain.KindUnavailable, "the request ended before the process was reported running: %v", context.Cause(ctx))
	}
	if st.PID == 0 {
		serr := stream.Err()
		st.Detach()
		if serr != nil {
			if connect.CodeOf(serr) == connect.CodeDeadlineExceeded && life.Err() == nil {
				return nil, domain.Errorf(domain.KindUnavailable, "the sandbox's agent did not start the command within its timeout of %s", req.Timeout)
			}
			return nil, mapErr(serr)
		}
		return nil, domain.Errorf(domain.KindUnavailable, "the process's stream ended before it started; the sandbox may have stopped")
	}
	return st, nil
}

// FeedStdin writes the request's stdin to the process and then closes it, unless it
// was started with stdinOpen.
func (s *Started) FeedStdin(ctx context.Context) error {
	if len(s.stdin) > 0 {
		if err := s.ps.SendStdin(ctx, s.PID, s.stdin); err != nil {
			return fmt.Errorf("writing stdin to process %d: %w", s.PID, err)
		}
	}
	if s.withStdin && !s.stdinOpen {
		if err := s.ps.CloseStdin(ctx, s.PID); err != nil {
			return fmt.Errorf("closing stdin of process %d: %w", s.PID, err)
		}
	}
	return nil
}

// Detach closes the event stream; the process runs on.
func (s *Started) Detach() {
	s.stop() // before Close, which would otherwise drain a live stream
	_ = s.stream.Close()
}

// ranOut reports whether a stream that ended with err ended because life's deadline
// passed (ours, or the agent's copy of it, which may answer first).
func ranOut(err error, life Lifetime) bool {
	if life.Deadline.IsZero() {
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || connect.CodeOf(err) == connect.CodeDeadlineExceeded || !time.Now().Before(life.Deadline)
}

// reattachTries bounds how often Follow re-attaches after its stream broke.
const reattachTries = 3

// Follow reports the process's events through onEvent, a PID event first, until it
// ends, and returns how it ended (without output). If the stream breaks before the
// end, Follow re-attaches to the process (output in between is lost); a process
// whose stream ran out at its lifetime is killed if still running and ends TimedOut.
// It returns an error when the life context ended, onEvent failed, or the process
// cannot be followed any more.
func (s *Started) Follow(onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	var cbErr error
	emit := func(ev domain.ExecEvent) error {
		if onEvent == nil {
			return nil
		}
		cbErr = onEvent(ev)
		return cbErr
	}
	if err := emit(domain.ExecEvent{PID: s.PID}); err != nil {
		s.Detach()
		return nil, err
	}
	next := func() (*process.ProcessEvent, bool) {
		if !s.stream.Receive() {
			return nil, false
		}
		return s.stream.Msg().GetEvent(), true
	}
	res, err := relay(next, s.Life, false, emit)
	if res != nil {
		readEnd(s.stream, s.stop)
	}
	streamErr := s.stream.Err()
	s.Detach()
	if res != nil || err != nil {
		return res, err
	}
	if streamErr == nil {
		streamErr = errors.New("the stream ended without the process's end")
	}
	for try := 1; ; try++ {
		if s.life.Err() != nil {
			return nil, mapErr(streamErr)
		}
		if ranOut(streamErr, s.Life) {
			// The stream ran out with the lifetime; the agent kills the process at the
			// same deadline, so this usually finds nothing to kill.
			s.ps.killAfterTimeout(s.PID)
		}
		res, err := s.ps.attach(s.life, s.PID, s.Life, false, emit)
		if err == nil || cbErr != nil {
			return res, err
		}
		if domain.IsKind(err, domain.KindNotFound) || try == reattachTries {
			return nil, fmt.Errorf("following process %d after its stream broke (%v): %w", s.PID, mapErr(streamErr), err)
		}
		select {
		case <-s.life.Done():
		case <-time.After(time.Duration(try) * 200 * time.Millisecond):
		}
	}
}
