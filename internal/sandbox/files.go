package sandbox

import (
	"context"
	"io"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Files reads and changes files in running sandboxes, through their agents.
type Files struct {
	sandboxes *Service
}

var _ domain.FileService = (*Files)(nil)

// NewFiles returns the file service of s's sandboxes.
func NewFiles(s *Service) *Files { return &Files{sandboxes: s} }

// agent returns the agent of a running sandbox of the principal's team and a call to
// it, which ends after limit (0 = none) or when the sandbox is paused or ended.
func (f *Files) agent(ctx context.Context, p domain.Principal, id string, scope domain.Scope, limit time.Duration) (fileAgent, agentCall, error) {
	ls, err := f.sandboxes.lookup(ctx, p, id, scope)
	if err != nil {
		return nil, agentCall{}, err
	}
	return ls.agent.files, callIn(ctx, ls, limit), nil
}

func needPath(field, path string) error {
	if path == "" {
		return domain.Invalid(field, "%s is required", field)
	}
	return nil
}

// WriteFile implements domain.FileService.
func (f *Files) WriteFile(ctx context.Context, p domain.Principal, id, path, user string, r io.Reader) (_ *domain.FileInfo, err error) {
	ctx, span := startSpan(ctx, "sandbox.files.write", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	if err := needPath("path", path); err != nil {
		return nil, err
	}
	a, c, err := f.agent(ctx, p, id, domain.ScopeSandboxesWrite, 0)
	if err != nil {
		return nil, err
	}
	fi, err := a.WriteFile(c.ctx, path, user, r)
	return fi, c.end(err)
}

// ReadFile implements domain.FileService.
func (f *Files) ReadFile(ctx context.Context, p domain.Principal, id, path, user string, w io.Writer) (err error) {
	ctx, span := startSpan(ctx, "sandbox.files.read", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	if err := needPath("path", path); err != nil {
		return err
	}
	a, c, err := f.agent(ctx, p, id, domain.ScopeSandboxesRead, 0)
	if err != nil {
		return err
	}
	return c.end(a.ReadFile(c.ctx, path, user, w))
}

// ListFiles implements domain.FileService.
func (f *Files) ListFiles(ctx context.Context, p domain.Principal, id, path, user string, depth int) (_ []domain.FileInfo, err error) {
	ctx, span := startSpan(ctx, "sandbox.files.list", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	if err := needPath("path", path); err != nil {
		return nil, err
	}
	if depth < 0 || depth > 32 {
		return nil, domain.Invalid("depth", "depth must be between 1 and 32")
	}
	a, c, err := f.agent(ctx, p, id, domain.ScopeSandboxesRead, agentCallTimeout)
	if err != nil {
		return nil, err
	}
	fis, err := a.ListDir(c.ctx, path, user, depth)
	return fis, c.end(err)
}

// StatFile implements domain.FileOps.
func (f *Files) StatFile(ctx context.Context, p domain.Principal, id, path, user string) (_ *domain.FileInfo, err error) {
	ctx, span := startSpan(ctx, "sandbox.files.stat", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	if err := needPath("path", path); err != nil {
		return nil, err
	}
	a, c, err := f.agent(ctx, p, id, domain.ScopeSandboxesRead, agentCallTimeout)
	if err != nil {
		return nil, err
	}
	fi, err := a.Stat(c.ctx, path, user)
	return fi, c.end(err)
}

// MakeDir implements domain.FileOps.
func (f *Files) MakeDir(ctx context.Context, p domain.Principal, id, path, user string) (_ *domain.FileInfo, _ bool, err error) {
	ctx, span := startSpan(ctx, "sandbox.files.mkdir", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	if err := needPath("path", path); err != nil {
		return nil, false, err
	}
	a, c, err := f.agent(ctx, p, id, domain.ScopeSandboxesWrite, agentCallTimeout)
	if err != nil {
		return nil, false, err
	}
	fi, made, err := a.MakeDir(c.ctx, path, user)
	return fi, made, c.end(err)
}

// MovePath implements domain.FileOps.
func (f *Files) MovePath(ctx context.Context, p domain.Principal, id, from, to, user string) (_ *domain.FileInfo, err error) {
	ctx, span := startSpan(ctx, "sandbox.files.move", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	if err := needPath("from", from); err != nil {
		return nil, err
	}
	if err := needPath("to", to); err != nil {
		return nil, err
	}
	a, c, err := f.agent(ctx, p, id, domain.ScopeSandboxesWrite, agentCallTimeout)
	if err != nil {
		return nil, err
	}
	fi, err := a.Move(c.ctx, from, to, user)
	return fi, c.end(err)
}

// RemovePath implements domain.FileOps.
func (f *Files) RemovePath(ctx context.Context, p domain.Principal, id, path, user string) (err error) {
	ctx, span := startSpan(ctx, "sandbox.files.remove", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	if err := needPath("path", path); err != nil {
		return err
	}
	a, c, err := f.agent(ctx, p, id, domain.ScopeSandboxesWrite, agentCallTimeout)
	if err != nil {
		return err
	}
	return c.end(a.Remove(c.ctx, path, user))
}
