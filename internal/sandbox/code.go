package sandbox

import (
	"context"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Code runs code on the code interpreter of running sandboxes (the code-interpreter
// template's server), through their agents.
type Code struct {
	sandboxes *Service
}

var _ domain.CodeService = (*Code)(nil)

// NewCode returns the code service of s's sandboxes.
func NewCode(s *Service) *Code { return &Code{sandboxes: s} }

// agent returns the agent of a running sandbox of the principal's team. Everything
// here runs code, so everything needs sandboxes:write.
// The call to it ends after limit (0 = none) or when the sandbox is paused or ended.
func (c *Code) agent(ctx context.Context, p domain.Principal, id string, limit time.Duration) (codeAgent, agentCall, error) {
	ls, err := c.sandboxes.lookup(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return nil, agentCall{}, err
	}
	return ls.agent.code, callIn(ctx, ls, limit), nil
}

// RunCode implements domain.CodeService.
func (c *Code) RunCode(ctx context.Context, p domain.Principal, id string, req domain.RunCode, onEvent func(domain.CodeEvent) error) (err error) {
	ctx, span := startSpan(ctx, "sandbox.run_code", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	if req.Code == "" {
		return domain.Invalid("code", "code is required")
	}
	if req.Language != "" && req.ContextID != "" {
		return domain.Invalid("context_id", "give either language or context_id, not both")
	}
	if req.Timeout < 0 {
		return domain.Invalid("timeout", "timeout must not be negative")
	}
	if err := validateMap("env", req.Env, true); err != nil {
		return err
	}
	a, call, err := c.agent(ctx, p, id, 0)
	if err != nil {
		return err
	}
	return call.end(a.RunCode(call.ctx, req, onEvent))
}

// CreateCodeContext implements domain.CodeService.
func (c *Code) CreateCodeContext(ctx context.Context, p domain.Principal, id, language, cwd string) (*domain.CodeContext, error) {
	a, call, err := c.agent(ctx, p, id, agentCallTimeout)
	if err != nil {
		return nil, err
	}
	cc, err := a.CreateCodeContext(call.ctx, language, cwd)
	return cc, call.end(err)
}

// ListCodeContexts implements domain.CodeService.
func (c *Code) ListCodeContexts(ctx context.Context, p domain.Principal, id string) ([]domain.CodeContext, error) {
	a, call, err := c.agent(ctx, p, id, agentCallTimeout)
	if err != nil {
		return nil, err
	}
	ccs, err := a.ListCodeContexts(call.ctx)
	return ccs, call.end(err)
}

// RestartCodeContext implements domain.CodeService.
func (c *Code) RestartCodeContext(ctx context.Context, p domain.Principal, id, contextID string) error {
	a, call, err := c.agent(ctx, p, id, agentCallTimeout)
	if err != nil {
		return err
	}
	return call.end(a.RestartCodeContext(call.ctx, contextID))
}

// DeleteCodeContext implements domain.CodeService.
func (c *Code) DeleteCodeContext(ctx context.Context, p domain.Principal, id, contextID string) error {
	a, call, err := c.agent(ctx, p, id, agentCallTimeout)
	if err != nil {
		return err
	}
	return call.end(a.DeleteCodeContext(call.ctx, contextID))
}
