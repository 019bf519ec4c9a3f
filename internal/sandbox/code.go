package sandbox

import (
	"context"

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
func (c *Code) agent(ctx context.Context, p domain.Principal, id string) (codeAgent, error) {
	ls, err := c.sandboxes.lookup(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return nil, err
	}
	return ls.agent.code, nil
}

// RunCode implements domain.CodeService.
func (c *Code) RunCode(ctx context.Context, p domain.Principal, id string, req domain.RunCode, onEvent func(domain.CodeEvent) error) error {
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
	a, err := c.agent(ctx, p, id)
	if err != nil {
		return err
	}
	return a.RunCode(ctx, req, onEvent)
}

// CreateCodeContext implements domain.CodeService.
func (c *Code) CreateCodeContext(ctx context.Context, p domain.Principal, id, language, cwd string) (*domain.CodeContext, error) {
	a, err := c.agent(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return a.CreateCodeContext(ctx, language, cwd)
}

// ListCodeContexts implements domain.CodeService.
func (c *Code) ListCodeContexts(ctx context.Context, p domain.Principal, id string) ([]domain.CodeContext, error) {
	a, err := c.agent(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return a.ListCodeContexts(ctx)
}

// RestartCodeContext implements domain.CodeService.
func (c *Code) RestartCodeContext(ctx context.Context, p domain.Principal, id, contextID string) error {
	a, err := c.agent(ctx, p, id)
	if err != nil {
		return err
	}
	return a.RestartCodeContext(ctx, contextID)
}

// DeleteCodeContext implements domain.CodeService.
func (c *Code) DeleteCodeContext(ctx context.Context, p domain.Principal, id, contextID string) error {
	a, err := c.agent(ctx, p, id)
	if err != nil {
		return err
	}
	return a.DeleteCodeContext(ctx, contextID)
}
