package sandbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
)

// This file holds the long-running processes (domain.ProcessService) and what every
// command needs to end with its sandbox.

var _ domain.ProcessService = (*Service)(nil)

// whileLive returns a context that ends with ctx or when the sandbox ends, whichever
// is first. Call done when the work is over.
func whileLive(ctx context.Context, ls *liveSandbox) (context.Context, func()) {
	mctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(ls.ctx, func() { cancel(context.Cause(ls.ctx)) })
	return mctx, func() {
		stop()
		cancel(nil)
	}
}

// stopped replaces err with the reason the sandbox ended, if it did: a command cut
// off by its sandbox's end failed because of that, not because of how the
// connection to the agent broke.
func (ls *liveSandbox) stopped(err error) error {
	if err != nil && ls.ctx.Err() != nil {
		return context.Cause(ls.ctx)
	}
	return err
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

// StartProcess implements domain.ProcessService.
func (s *Service) StartProcess(ctx context.Context, p domain.Principal, id string, req domain.BackgroundRequest) (uint32, error) {
	if err := checkExec(req.Exec); err != nil {
		return 0, err
	}
	ls, err := s.liveFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return 0, err
	}
	ctx, done := whileLive(ctx, ls)
	defer done()
	pid, err := ls.agent.StartBackground(ctx, req.Exec, req.StdinOpen)
	if err != nil {
		return pid, ls.stopped(fmt.Errorf("starting a process in sandbox %s: %w", id, err))
	}
	s.log.Info("background process started", "sandbox", id, "pid", pid, "team_id", p.TeamID)
	return pid, nil
}

// ListProcesses implements domain.ProcessService.
func (s *Service) ListProcesses(ctx context.Context, p domain.Principal, id string) ([]domain.ProcessInfo, error) {
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesRead)
	if err != nil {
		return nil, err
	}
	return agent.ListProcesses(ctx)
}

// AttachProcess implements domain.ProcessService. The stream ends when the sandbox
// does, with the reason.
func (s *Service) AttachProcess(ctx context.Context, p domain.Principal, id string, pid uint32, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	ls, err := s.liveFor(ctx, p, id, domain.ScopeSandboxesRead)
	if err != nil {
		return nil, err
	}
	ctx, done := whileLive(ctx, ls)
	defer done()
	res, err := ls.agent.Attach(ctx, pid, onEvent)
	return res, processNotFound(ls.stopped(err), id, pid)
}

// SendStdin implements domain.ProcessService.
func (s *Service) SendStdin(ctx context.Context, p domain.Principal, id string, pid uint32, data []byte) error {
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return err
	}
	return processNotFound(agent.SendStdin(ctx, pid, data), id, pid)
}

// CloseStdin implements domain.ProcessService.
func (s *Service) CloseStdin(ctx context.Context, p domain.Principal, id string, pid uint32) error {
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return err
	}
	return processNotFound(agent.CloseStdin(ctx, pid), id, pid)
}

// SignalProcess implements domain.ProcessService. The signal may be spelt in any case,
// with or without "SIG".
func (s *Service) SignalProcess(ctx context.Context, p domain.Principal, id string, pid uint32, signal string) error {
	sig := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(signal)), "SIG")
	switch sig {
	case domain.SignalTerm, domain.SignalKill:
	case "":
		return domain.Invalid("signal", "signal is required: %s or %s", domain.SignalTerm, domain.SignalKill)
	default:
		return domain.Invalid("signal", "signal %q is not supported: the sandbox agent can send %s or %s", signal, domain.SignalTerm, domain.SignalKill)
	}
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return err
	}
	if err := agent.Signal(ctx, pid, sig); err != nil {
		return processNotFound(err, id, pid)
	}
	s.log.Info("process signalled", "sandbox", id, "pid", pid, "signal", sig, "team_id", p.TeamID)
	return nil
}
