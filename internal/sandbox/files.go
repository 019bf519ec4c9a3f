package sandbox

import (
	"context"
	"io"

	"github.com/warren-sh/warren/internal/domain"
)

// Files reads and changes files in running sandboxes, through their agents.
type Files struct {
	sandboxes *Service
}

var _ domain.FileService = (*Files)(nil)

// NewFiles returns the file service of s's sandboxes.
func NewFiles(s *Service) *Files { return &Files{sandboxes: s} }

// agent returns the agent of a running sandbox of the principal's team.
func (f *Files) agent(ctx context.Context, p domain.Principal, id string, scope domain.Scope) (fileAgent, error) {
	ls, err := f.sandboxes.lookup(ctx, p, id, scope)
	if err != nil {
		return nil, err
	}
	return ls.agent.files, nil
}

func needPath(field, path string) error {
	if path == "" {
		return domain.Invalid(field, "%s is required", field)
	}
	return nil
}

// WriteFile implements domain.FileService.
func (f *Files) WriteFile(ctx context.Context, p domain.Principal, id, path, user string, r io.Reader) (*domain.FileInfo, error) {
	if err := needPath("path", path); err != nil {
		return nil, err
	}
	a, err := f.agent(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return nil, err
	}
	return a.WriteFile(ctx, path, user, r)
}

// ReadFile implements domain.FileService.
func (f *Files) ReadFile(ctx context.Context, p domain.Principal, id, path, user string, w io.Writer) error {
	if err := needPath("path", path); err != nil {
		return err
	}
	a, err := f.agent(ctx, p, id, domain.ScopeSandboxesRead)
	if err != nil {
		return err
	}
	return a.ReadFile(ctx, path, user, w)
}

// ListFiles implements domain.FileService.
func (f *Files) ListFiles(ctx context.Context, p domain.Principal, id, path, user string, depth int) ([]domain.FileInfo, error) {
	if err := needPath("path", path); err != nil {
		return nil, err
	}
	if depth < 0 || depth > 32 {
		return nil, domain.Invalid("depth", "depth must be between 1 and 32")
	}
	a, err := f.agent(ctx, p, id, domain.ScopeSandboxesRead)
	if err != nil {
		return nil, err
	}
	return a.ListDir(ctx, path, user, depth)
}

// StatFile implements domain.FileOps.
func (f *Files) StatFile(ctx context.Context, p domain.Principal, id, path, user string) (*domain.FileInfo, error) {
	if err := needPath("path", path); err != nil {
		return nil, err
	}
	a, err := f.agent(ctx, p, id, domain.ScopeSandboxesRead)
	if err != nil {
		return nil, err
	}
	return a.Stat(ctx, path, user)
}

// MakeDir implements domain.FileOps.
func (f *Files) MakeDir(ctx context.Context, p domain.Principal, id, path, user string) (*domain.FileInfo, bool, error) {
	if err := needPath("path", path); err != nil {
		return nil, false, err
	}
	a, err := f.agent(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return nil, false, err
	}
	return a.MakeDir(ctx, path, user)
}

// MovePath implements domain.FileOps.
func (f *Files) MovePath(ctx context.Context, p domain.Principal, id, from, to, user string) (*domain.FileInfo, error) {
	if err := needPath("from", from); err != nil {
		return nil, err
	}
	if err := needPath("to", to); err != nil {
		return nil, err
	}
	a, err := f.agent(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return nil, err
	}
	return a.Move(ctx, from, to, user)
}

// RemovePath implements domain.FileOps.
func (f *Files) RemovePath(ctx context.Context, p domain.Principal, id, path, user string) error {
	if err := needPath("path", path); err != nil {
		return err
	}
	a, err := f.agent(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return err
	}
	return a.Remove(ctx, path, user)
}
