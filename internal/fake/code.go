package fake

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
)

// Code is a domain.CodeService.
type Code struct {
	RunCodeFn            func(ctx context.Context, p domain.Principal, id string, req domain.RunCode, onEvent func(domain.CodeEvent) error) error
	CreateCodeContextFn  func(ctx context.Context, p domain.Principal, id, language, cwd string) (*domain.CodeContext, error)
	ListCodeContextsFn   func(ctx context.Context, p domain.Principal, id string) ([]domain.CodeContext, error)
	RestartCodeContextFn func(ctx context.Context, p domain.Principal, id, contextID string) error
	DeleteCodeContextFn  func(ctx context.Context, p domain.Principal, id, contextID string) error
}

var _ domain.CodeService = (*Code)(nil)

func (f *Code) RunCode(ctx context.Context, p domain.Principal, id string, req domain.RunCode, onEvent func(domain.CodeEvent) error) error {
	if f.RunCodeFn == nil {
		return ErrNotSet
	}
	return f.RunCodeFn(ctx, p, id, req, onEvent)
}

func (f *Code) CreateCodeContext(ctx context.Context, p domain.Principal, id, language, cwd string) (*domain.CodeContext, error) {
	if f.CreateCodeContextFn == nil {
		return nil, ErrNotSet
	}
	return f.CreateCodeContextFn(ctx, p, id, language, cwd)
}

func (f *Code) ListCodeContexts(ctx context.Context, p domain.Principal, id string) ([]domain.CodeContext, error) {
	if f.ListCodeContextsFn == nil {
		return nil, ErrNotSet
	}
	return f.ListCodeContextsFn(ctx, p, id)
}

func (f *Code) RestartCodeContext(ctx context.Context, p domain.Principal, id, contextID string) error {
	if f.RestartCodeContextFn == nil {
		return ErrNotSet
	}
	return f.RestartCodeContextFn(ctx, p, id, contextID)
}

func (f *Code) DeleteCodeContext(ctx context.Context, p domain.Principal, id, contextID string) error {
	if f.DeleteCodeContextFn == nil {
		return ErrNotSet
	}
	return f.DeleteCodeContextFn(ctx, p, id, contextID)
}
