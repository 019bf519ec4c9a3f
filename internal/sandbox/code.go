package sandbox

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
)

var _ domain.CodeService = (*Service)(nil)

// RunCode implements domain.CodeService.
func (s *Service) RunCode(ctx context.Context, p domain.Principal, id string, req domain.RunCode, onEvent func(domain.CodeEvent) error) error {
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
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return err
	}
	return agent.RunCode(ctx, req, onEvent)
}

// CreateCodeContext implements domain.CodeService.
func (s *Service) CreateCodeContext(ctx context.Context, p domain.Principal, id, language, cwd string) (*domain.CodeContext, error) {
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return nil, err
	}
	return agent.CreateCodeContext(ctx, language, cwd)
}

// ListCodeContexts implements domain.CodeService.
func (s *Service) ListCodeContexts(ctx context.Context, p domain.Principal, id string) ([]domain.CodeContext, error) {
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return nil, err
	}
	return agent.ListCodeContexts(ctx)
}

// RestartCodeContext implements domain.CodeService.
func (s *Service) RestartCodeContext(ctx context.Context, p domain.Principal, id, contextID string) error {
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return err
	}
	return agent.RestartCodeContext(ctx, contextID)
}

// DeleteCodeContext implements domain.CodeService.
func (s *Service) DeleteCodeContext(ctx context.Context, p domain.Principal, id, contextID string) error {
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return err
	}
	return agent.DeleteCodeContext(ctx, contextID)
}
