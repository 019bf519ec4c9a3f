package sandbox

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
)

// This file holds the file operations beyond reading, writing and listing.

var _ domain.FileOps = (*Service)(nil)

func needPath(field, path string) error {
	if path == "" {
		return domain.Invalid(field, "%s is required", field)
	}
	return nil
}

// StatFile implements domain.FileOps.
func (s *Service) StatFile(ctx context.Context, p domain.Principal, id, path, user string) (*domain.FileInfo, error) {
	if err := needPath("path", path); err != nil {
		return nil, err
	}
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesRead)
	if err != nil {
		return nil, err
	}
	return agent.Stat(ctx, path, user)
}

// MakeDir implements domain.FileOps.
func (s *Service) MakeDir(ctx context.Context, p domain.Principal, id, path, user string) (*domain.FileInfo, bool, error) {
	if err := needPath("path", path); err != nil {
		return nil, false, err
	}
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return nil, false, err
	}
	return agent.MakeDir(ctx, path, user)
}

// MovePath implements domain.FileOps.
func (s *Service) MovePath(ctx context.Context, p domain.Principal, id, from, to, user string) (*domain.FileInfo, error) {
	if err := needPath("from", from); err != nil {
		return nil, err
	}
	if err := needPath("to", to); err != nil {
		return nil, err
	}
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return nil, err
	}
	return agent.Move(ctx, from, to, user)
}

// RemovePath implements domain.FileOps.
func (s *Service) RemovePath(ctx context.Context, p domain.Principal, id, path, user string) error {
	if err := needPath("path", path); err != nil {
		return err
	}
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return err
	}
	return agent.Remove(ctx, path, user)
}
