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
// `/bin/bash -c LINE`, an argv directly.
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
func (c *Client) killAfterTimeout(pid uint32) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = c.proc.SendSignal(ctx, connect.NewRequest(&process.SendSignalRequest{
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

// StartBackground starts req, waits until the agent reports it running and detaches:
// the process keeps running after the call. req.Timeout is its lifetime (0 = none).
// req.Stdin is written once it runs; then stdin is closed unless stdinOpen.
func (c *Client) StartBackground(ctx context.Context, req domain.ExecRequest, stdinOpen bool) (uint32, error) {
	if req.User != "" {
		ctx = WithUser(ctx, req.User)
	}
	withStdin := stdinOpen || len(req.Stdin) > 0
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	if req.Timeout > 0 {
		// envd treats the Start call's deadline as the process's lifetime; ending the
		// call (stop) detaches without shortening it.
		sctx, stop = context.WithTimeout(sctx, req.Timeout)
		defer stop()
	}
	stream, err := c.proc.Start(sctx, connect.NewRequest(&process.StartRequest{Process: processConfig(req), Stdin: &withStdin}))
	if err != nil {
		return 0, mapErr(err)
	}
	defer stream.Close()
	var pid uint32
	for pid == 0 && stream.Receive() {
		if st := stream.Msg().GetEvent().GetStart(); st != nil {
			pid = st.GetPid()
		}
	}
	if pid == 0 {
		if err := stream.Err(); err != nil {
			return 0, mapErr(err)
		}
		return 0, domain.Errorf(domain.KindUnavailable, "the process's stream ended before it started; the sandbox may have stopped")
	}
	stop() // detach: the process runs on
	if len(req.Stdin) > 0 {
		if err := c.SendStdin(ctx, pid, req.Stdin); err != nil {
			return pid, fmt.Errorf("writing stdin to process %d: %w", pid, err)
		}
	}
	if withStdin && !stdinOpen {
		if err := c.CloseStdin(ctx, pid); err != nil {
			return pid, fmt.Errorf("closing stdin of process %d: %w", pid, err)
		}
	}
	return pid, nil
}

// ListProcesses lists the processes the agent started that still run, by pid.
func (c *Client) ListProcesses(ctx context.Context) ([]domain.ProcessInfo, error) {
	resp, err := c.proc.List(ctx, connect.NewRequest(&process.ListRequest{}))
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
func (c *Client) Attach(ctx context.Context, pid uint32, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	stream, err := c.proc.Connect(ctx, connect.NewRequest(&process.ConnectRequest{Process: pidSelector(pid)}))
	if err != nil {
		return nil, mapErr(err)
	}
	defer stream.Close()
	emit := func(ev domain.ExecEvent) error {
		if onEvent == nil {
			return nil
		}
		return onEvent(ev)
	}
	for stream.Receive() {
		switch e := stream.Msg().GetEvent().GetEvent().(type) {
		case *process.ProcessEvent_Start:
			if err := emit(domain.ExecEvent{PID: e.Start.GetPid()}); err != nil {
				return nil, err
			}
		case *process.ProcessEvent_Data:
			if err := emit(dataEvent(e.Data)); err != nil {
				return nil, err
			}
		case *process.ProcessEvent_End:
			res := &domain.ExecResult{}
			endResult(e.End, res)
			if err := emit(domain.ExecEvent{End: res}); err != nil {
				return nil, err
			}
			return res, nil
		}
	}
	if err := stream.Err(); err != nil {
		return nil, mapErr(err)
	}
	return nil, domain.Errorf(domain.KindUnavailable, "the stream of process %d ended without a result; the sandbox may have stopped", pid)
}

// SendStdin writes data to process pid's standard input, in pieces of at most 64 KiB.
func (c *Client) SendStdin(ctx context.Context, pid uint32, data []byte) error {
	const chunk = 64 << 10
	for len(data) > 0 {
		n := min(len(data), chunk)
		_, err := c.proc.SendInput(ctx, connect.NewRequest(&process.SendInputRequest{
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
func (c *Client) CloseStdin(ctx context.Context, pid uint32) error {
	_, err := c.proc.CloseStdin(ctx, connect.NewRequest(&process.CloseStdinRequest{Process: pidSelector(pid)}))
	return procErr(err, pid)
}

// Signal sends domain.SignalTerm or domain.SignalKill to process pid and its group.
func (c *Client) Signal(ctx context.Context, pid uint32, signal string) error {
	var sig process.Signal
	switch signal {
	case domain.SignalTerm:
		sig = process.Signal_SIGNAL_SIGTERM
	case domain.SignalKill:
		sig = process.Signal_SIGNAL_SIGKILL
	default:
		return domain.Invalid("signal", "signal %q is not supported: the sandbox agent can send %s or %s", signal, domain.SignalTerm, domain.SignalKill)
	}
	_, err := c.proc.SendSignal(ctx, connect.NewRequest(&process.SendSignalRequest{Process: pidSelector(pid), Signal: sig}))
	return procErr(err, pid)
}
