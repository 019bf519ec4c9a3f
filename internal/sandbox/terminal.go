package sandbox

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// Terminals opens pseudo-terminals in running sandboxes (the console's terminal),
// through their agents.
type Terminals struct {
	sandboxes *Service
	log       *slog.Logger
}

var _ domain.TerminalService = (*Terminals)(nil)

// NewTerminals returns the terminal service of s's sandboxes.
func NewTerminals(s *Service) *Terminals { return &Terminals{sandboxes: s, log: s.log} }

// maxTerminalSize bounds a terminal's columns and rows.
const maxTerminalSize = 1000

// OpenTerminal implements domain.TerminalService: a login shell (bash -l) on a
// pseudo-terminal, as the sandbox's user in its home directory.
func (ts *Terminals) OpenTerminal(ctx context.Context, p domain.Principal, id string, req domain.TerminalRequest) (_ domain.Terminal, err error) {
	ctx, span := startSpan(ctx, "sandbox.open_terminal", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	if req.Cols > maxTerminalSize {
		return nil, domain.Invalid("cols", "cols must be from 1 to %d, got %d", maxTerminalSize, req.Cols)
	}
	if req.Rows > maxTerminalSize {
		return nil, domain.Invalid("rows", "rows must be from 1 to %d, got %d", maxTerminalSize, req.Rows)
	}
	if req.User == "" {
		req.User = "user"
	}
	if req.User != "user" && req.User != "root" {
		return nil, domain.Invalid("user", "user must be \"user\" or \"root\", not %q", req.User)
	}
	if err := validateMap("env", req.Env, true); err != nil {
		return nil, err
	}
	ls, err := ts.sandboxes.lookup(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return nil, err
	}
	env := map[string]string{"TERM": "xterm-256color", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
	for k, v := range req.Env {
		env[k] = v
	}
	args := []string{"-i", "-l"}
	if req.Cmd != "" {
		args = []string{"-l", "-c", req.Cmd}
	}
	// ctx bounds the whole session (StartPTY): it ends when the sandbox is paused or
	// ended too, and stops watching the sandbox once the session is over.
	c := callIn(ctx, ls, 0)
	t, err := ls.agent.terms.StartPTY(c.ctx, agentclient.PTYRequest{
		Cmd: "/bin/bash", Args: args, Env: env, User: req.User, Cols: req.Cols, Rows: req.Rows,
	})
	if err != nil {
		return nil, c.end(fmt.Errorf("opening a terminal in sandbox %s: %w", id, err))
	}
	context.AfterFunc(c.ctx, c.done)
	ts.log.InfoContext(ctx, "terminal opened", logkey.SandboxID, id, logkey.PID, t.PID(), "user", req.User, logkey.TeamID, p.TeamID)
	return t, nil
}
