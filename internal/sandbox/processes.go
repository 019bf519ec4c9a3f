package sandbox

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// Processes runs commands and long-running processes in running sandboxes, through
// their agents. The output of background processes started through it is recorded
// (see procLog) so that attaching replays it from the start.
type Processes struct {
	sandboxes *Service
	log       *slog.Logger
}

var (
	_ domain.ProcessService = (*Processes)(nil)
	_ domain.PortLister     = (*Processes)(nil)
)

// NewProcesses returns the process service of s's sandboxes.
func NewProcesses(s *Service) *Processes { return &Processes{sandboxes: s, log: s.log} }

// agent returns the agent of a running sandbox of the principal's team and a call to
// it, which ends after limit (0 = none) or when the sandbox is paused or ended.
func (ps *Processes) agent(ctx context.Context, p domain.Principal, id string, scope domain.Scope, limit time.Duration) (processAgent, agentCall, error) {
	ls, err := ps.sandboxes.lookup(ctx, p, id, scope)
	if err != nil {
		return nil, agentCall{}, err
	}
	return ls.agent.procs, callIn(ctx, ls, limit), nil
}

// checkExec validates the parts of a command the agent would reject less clearly.
func checkExec(req domain.ExecRequest) error {
	if req.Cmd == "" && len(req.Args) == 0 {
		return domain.Invalid("cmd", "give the command to run in cmd (a shell line) or args")
	}
	if err := validateMap("env", req.Env, true); err != nil {
		return err
	}
	if req.User != "" && req.User != "user" && req.User != "root" {
		return domain.Invalid("user", "user must be \"user\" or \"root\", not %q", req.User)
	}
	if req.Timeout < 0 {
		return domain.Invalid("timeout", "timeout must not be negative")
	}
	return nil
}

// processNotFound words the agent's "no such process" for API clients.
func processNotFound(err error, id string, pid uint32) error {
	if domain.IsKind(err, domain.KindNotFound) {
		return domain.Errorf(domain.KindNotFound, "process %d is not running in sandbox %s (it may have ended); list the running ones with GET /v1/sandboxes/%s/processes", pid, id, id)
	}
	return err
}

// Exec implements domain.ProcessService.
func (ps *Processes) Exec(ctx context.Context, p domain.Principal, id string, req domain.ExecRequest, onEvent func(domain.ExecEvent) error) (_ *domain.ExecResult, err error) {
	ctx, span := startSpan(ctx, "sandbox.exec", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	if err := checkExec(req); err != nil {
		return nil, err
	}
	if req.Timeout == 0 {
		req.Timeout = ps.sandboxes.cfg.ExecTimeout
	}
	ls, err := ps.sandboxes.lookup(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return nil, err
	}
	ctx, done := whileLive(ctx, ls)
	defer done()
	res, err := ls.agent.procs.Exec(ctx, req, onEvent)
	return res, ls.stopped(err)
}

// StartProcess implements domain.ProcessService. The server keeps the process's
// event stream and records its output (see procLog), so that AttachProcess can
// replay it from the start.
func (ps *Processes) StartProcess(ctx context.Context, p domain.Principal, id string, req domain.BackgroundRequest) (_ uint32, err error) {
	ctx, span := startSpan(ctx, "sandbox.start_process", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	if err := checkExec(req.Exec); err != nil {
		return 0, err
	}
	ls, err := ps.sandboxes.lookup(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return 0, err
	}
	ctx, done := whileLive(ctx, ls)
	defer done()
	st, err := ls.agent.procs.StartFollowed(ctx, ls.ctx, req.Exec, req.StdinOpen)
	if err != nil {
		return 0, ls.stopped(fmt.Errorf("starting a process in sandbox %s: %w", id, err))
	}
	ps.retain(ls, id, st)
	// Stdin goes once the output is being read: a process that echoes it cannot stall.
	if err := st.FeedStdin(ctx); err != nil {
		return st.PID, ls.stopped(err)
	}
	ps.log.InfoContext(ctx, "background process started", logkey.SandboxID, id, logkey.PID, st.PID, logkey.TeamID, p.TeamID)
	return st.PID, nil
}

// retain records st's events in a log of its sandbox until it ends, or detaches from
// it when the sandbox keeps as many running processes' logs as it may.
func (ps *Processes) retain(ls *liveSandbox, id string, st *agentclient.Started) {
	logs := logsOf(ls)
	l := logs.add(st.PID)
	// Close waits for the recorder, which ends with ls.ctx.
	if l == nil || !ps.sandboxes.reg.spawn(func() { ps.record(ls, id, logs, l, st) }) {
		if l != nil {
			logs.remove(l)
		} else {
			ps.log.Warn("background process not recorded: the sandbox's other recorded processes all still run", logkey.SandboxID, id, logkey.PID, st.PID)
		}
		st.Detach()
		logs.remember(st.PID, st.Life)
	}
}

// record reads st's events into l until the process ends or the sandbox does.
func (ps *Processes) record(ls *liveSandbox, id string, logs *procLogs, l *procLog, st *agentclient.Started) {
	res, err := st.Follow(func(ev domain.ExecEvent) error {
		switch {
		case ev.Stdout != nil:
			l.append(false, ev.Stdout)
		case ev.Stderr != nil:
			l.append(true, ev.Stderr)
		}
		return nil
	})
	if err != nil {
		if ls.ctx.Err() != nil {
			err = context.Cause(ls.ctx)
		} else {
			ps.log.Warn("lost the output stream of a background process", logkey.SandboxID, id, logkey.PID, st.PID, logkey.Err, err)
			err = domain.Errorf(domain.KindUnavailable, "the server lost the output stream of process %d; attach again to follow its output from now on", st.PID)
		}
	}
	l.finish(res, err)
	logs.ended(l, err != nil)
}

// ListProcesses implements domain.ProcessService.
func (ps *Processes) ListProcesses(ctx context.Context, p domain.Principal, id string) ([]domain.ProcessInfo, error) {
	a, c, err := ps.agent(ctx, p, id, domain.ScopeSandboxesRead, agentCallTimeout)
	if err != nil {
		return nil, err
	}
	list, err := a.ListProcesses(c.ctx)
	return list, c.end(err)
}

// AttachProcess implements domain.ProcessService. A process the server recorded
// (started through the API, since the server started, and ended less than
// keepAfterEnd ago) is replayed from its start and then followed live; any other is
// followed from now on. The stream ends when the sandbox does, with the reason.
func (ps *Processes) AttachProcess(ctx context.Context, p domain.Principal, id string, pid uint32, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	ls, err := ps.sandboxes.lookup(ctx, p, id, domain.ScopeSandboxesRead)
	if err != nil {
		return nil, err
	}
	ctx, done := whileLive(ctx, ls)
	defer done()
	var life agentclient.Lifetime
	if logs := existingLogs(ls); logs != nil {
		if l := logs.get(pid); l != nil {
			res, err := l.follow(ctx, onEvent)
			return res, ls.stopped(err)
		}
		life = logs.lifetime(pid)
	}
	res, err := ls.agent.procs.AttachLifetime(ctx, pid, life, onEvent)
	return res, processNotFound(ls.stopped(err), id, pid)
}

// SendStdin implements domain.ProcessService.
func (ps *Processes) SendStdin(ctx context.Context, p domain.Principal, id string, pid uint32, data []byte) error {
	a, c, err := ps.agent(ctx, p, id, domain.ScopeSandboxesWrite, agentCallTimeout)
	if err != nil {
		return err
	}
	return processNotFound(c.end(a.SendStdin(c.ctx, pid, data)), id, pid)
}

// CloseStdin implements domain.ProcessService.
func (ps *Processes) CloseStdin(ctx context.Context, p domain.Principal, id string, pid uint32) error {
	a, c, err := ps.agent(ctx, p, id, domain.ScopeSandboxesWrite, agentCallTimeout)
	if err != nil {
		return err
	}
	return processNotFound(c.end(a.CloseStdin(c.ctx, pid)), id, pid)
}

// SignalProcess implements domain.ProcessService. The signal may be spelt in any case,
// with or without "SIG".
func (ps *Processes) SignalProcess(ctx context.Context, p domain.Principal, id string, pid uint32, signal string) (err error) {
	ctx, span := startSpan(ctx, "sandbox.signal_process", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	sig := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(signal)), "SIG")
	switch sig {
	case domain.SignalTerm, domain.SignalKill:
	case "":
		return domain.Invalid("signal", "signal is required: %s or %s", domain.SignalTerm, domain.SignalKill)
	default:
		return domain.Invalid("signal", "signal %q is not supported: the sandbox agent can send %s or %s", signal, domain.SignalTerm, domain.SignalKill)
	}
	a, c, err := ps.agent(ctx, p, id, domain.ScopeSandboxesWrite, agentCallTimeout)
	if err != nil {
		return err
	}
	if err := c.end(a.Signal(c.ctx, pid, sig)); err != nil {
		return processNotFound(err, id, pid)
	}
	ps.log.InfoContext(ctx, "process signalled", logkey.SandboxID, id, logkey.PID, pid, "signal", sig, logkey.TeamID, p.TeamID)
	return nil
}
