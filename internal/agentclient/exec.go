package agentclient

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/envdpb/process"
)

// Exec runs req and reports its output through onEvent as it arrives. A command that
// runs past req.Timeout is killed and ends normally, with exit code -1 and TimedOut
// set; an error means the command's end is unknown (the agent went away, ctx ended).
//
// The result holds the output only when onEvent is nil, and then at most
// MaxBufferedOutput of each stream (Truncated says some was dropped); streamed output
// goes to onEvent and is not kept.
func (ps Processes) Exec(ctx context.Context, req domain.ExecRequest, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	if req.User != "" {
		ctx = WithUser(ctx, req.User)
	}
	withStdin := len(req.Stdin) > 0
	sreq := connect.NewRequest(&process.StartRequest{Process: processConfig(req), Stdin: &withStdin})
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var deadline time.Time
	if req.Timeout > 0 {
		// envd treats the call's deadline as the process's lifetime.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
		deadline, _ = ctx.Deadline()
	}
	stream, err := ps.c.proc.Start(ctx, sreq)
	if err != nil {
		return nil, mapErr(err)
	}
	defer stream.Close()
	res := &domain.ExecResult{}
	var pid uint32
	emit := func(ev domain.ExecEvent) error {
		if onEvent == nil {
			return nil
		}
		return onEvent(ev)
	}
	for stream.Receive() {
		ev := stream.Msg().GetEvent()
		switch e := ev.GetEvent().(type) {
		case *process.ProcessEvent_Start:
			pid = e.Start.GetPid()
			if err := emit(domain.ExecEvent{PID: pid}); err != nil {
				return nil, err
			}
			if withStdin {
				if err := ps.sendStdin(ctx, pid, req.Stdin); err != nil {
					return nil, err
				}
			}
		case *process.ProcessEvent_Data:
			out := dataEvent(e.Data)
			if onEvent == nil {
				keep(&res.Stdout, out.Stdout, res)
				keep(&res.Stderr, out.Stderr, res)
				continue
			}
			if err := emit(out); err != nil {
				return nil, err
			}
		case *process.ProcessEvent_End:
			endResult(e.End, res)
			if !deadline.IsZero() && !e.End.GetExited() && time.Until(deadline) < timeoutSlack {
				markTimedOut(res, req.Timeout) // the agent killed it at the deadline
			}
			if err := emit(domain.ExecEvent{End: res}); err != nil {
				return nil, err
			}
			readEnd(stream, cancel)
			return res, nil
		}
	}
	if err := stream.Err(); err != nil {
		// The call's deadline (ours, or the agent's copy of it, which may answer first)
		// passed before the agent's end event arrived.
		late := errors.Is(ctx.Err(), context.DeadlineExceeded) || connect.CodeOf(err) == connect.CodeDeadlineExceeded
		if pid != 0 && parent.Err() == nil && !deadline.IsZero() && late {
			ps.killAfterTimeout(pid)
			markTimedOut(res, req.Timeout)
			if err := emit(domain.ExecEvent{End: res}); err != nil {
				return nil, err
			}
			return res, nil
		}
		if late && parent.Err() == nil && !deadline.IsZero() {
			return nil, domain.Errorf(domain.KindUnavailable, "the sandbox's agent did not start the command within its timeout of %s", req.Timeout)
		}
		return nil, mapErr(err)
	}
	return nil, domain.Errorf(domain.KindUnavailable, "the command's stream ended without a result; the sandbox may have stopped")
}

// streamEndWait bounds how long readEnd waits for a stream's end.
const streamEndWait = 100 * time.Millisecond

// readEnd reads the end of a stream whose last event (the process's end) has arrived:
// the agent sends the stream's end message right behind it. Only a response read to
// its end lets its connection go back to the keep-alive pool; one closed before is
// dropped, and the next call to the sandbox pays for a new connection (a TCP handshake
// with gVisor's netstack and a new connection in the agent: 2-3 ms on a loaded host,
// and 9 of 23 commands in a row paid it). An agent that does not end the stream within
// streamEndWait is cut: cancel must cancel the stream's context.
func readEnd[T any](stream *connect.ServerStreamForClient[T], cancel context.CancelFunc) {
	t := time.AfterFunc(streamEndWait, cancel)
	defer t.Stop()
	_ = stream.Receive()
}

// keep appends data to buf up to MaxBufferedOutput and marks res truncated when some
// of it does not fit.
func keep(buf *[]byte, data []byte, res *domain.ExecResult) {
	room := MaxBufferedOutput - len(*buf)
	if len(data) > room {
		data = data[:max(room, 0)]
		res.Truncated = true
	}
	if need := len(*buf) + len(data); need > cap(*buf) {
		// Grow as append would, but never past the bound.
		grown := make([]byte, len(*buf), min(max(2*cap(*buf), need, 4096), MaxBufferedOutput))
		copy(grown, *buf)
		*buf = grown
	}
	*buf = append(*buf, data...)
}

func (ps Processes) sendStdin(ctx context.Context, pid uint32, data []byte) error {
	sel := &process.ProcessSelector{Selector: &process.ProcessSelector_Pid{Pid: pid}}
	const chunk = 64 << 10
	for len(data) > 0 {
		n := min(len(data), chunk)
		_, err := ps.c.proc.SendInput(ctx, connect.NewRequest(&process.SendInputRequest{
			Process: sel,
			Input:   &process.ProcessInput{Input: &process.ProcessInput_Stdin{Stdin: data[:n]}},
		}))
		if err != nil {
			return mapErr(err)
		}
		data = data[n:]
	}
	_, err := ps.c.proc.CloseStdin(ctx, connect.NewRequest(&process.CloseStdinRequest{Process: sel}))
	return mapErr(err)
}
