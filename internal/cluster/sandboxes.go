package cluster

import (
	"context"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Sandboxes is a control replica's sandbox service: it reads sandboxes from the
// database; everything that acts on one is served by its node (the control forwards
// those requests), so reaching those methods here is refused with a clear 503.
type Sandboxes struct {
	store SandboxesStore
}

// SandboxesStore is what a control replica reads sandboxes and templates from.
type SandboxesStore interface {
	GetSandbox(ctx context.Context, teamID, id string) (*domain.Sandbox, error)
	ListSandboxes(ctx context.Context, f domain.SandboxFilter) ([]*domain.Sandbox, string, error)
	ListTemplates(ctx context.Context, teamID string) ([]*domain.Template, error)
}

var (
	_ domain.SandboxService = (*Sandboxes)(nil)
	_ domain.Router         = (*Sandboxes)(nil)
)

// NewSandboxes returns the control replica's sandbox service.
func NewSandboxes(s SandboxesStore) *Sandboxes { return &Sandboxes{store: s} }

// Get implements domain.SandboxService.
func (s *Sandboxes) Get(ctx context.Context, p domain.Principal, id string) (*domain.Sandbox, error) {
	if err := p.Need(domain.ScopeSandboxesRead); err != nil {
		return nil, err
	}
	if !domain.ValidSandboxID(id) {
		return nil, domain.NotFound("sandbox", id)
	}
	return s.store.GetSandbox(ctx, p.TeamID, id)
}

// List implements domain.SandboxService.
func (s *Sandboxes) List(ctx context.Context, p domain.Principal, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
	if err := p.Need(domain.ScopeSandboxesRead); err != nil {
		return nil, "", err
	}
	f.TeamID = p.TeamID
	return s.store.ListSandboxes(ctx, f)
}

// Templates implements domain.SandboxService: the built-in templates.
func (s *Sandboxes) Templates(ctx context.Context) ([]*domain.Template, error) {
	return s.store.ListTemplates(ctx, "")
}

// Route implements domain.Router: a control runs no sandbox, so every sandbox it is
// asked to route (one the forwarder left here: unknown or ended) is not running.
func (s *Sandboxes) Route(ctx context.Context, id string) (*domain.Route, error) {
	if !domain.ValidSandboxID(id) {
		return nil, domain.NotFound("sandbox", id)
	}
	return &domain.Route{SandboxID: id}, nil
}

// onNode is the answer of the methods a node serves: the sandbox id of p's team is not
// found, has ended, or (a request that should have been forwarded) is unavailable here.
func (s *Sandboxes) onNode(ctx context.Context, p domain.Principal, id string, scope domain.Scope) error {
	if err := p.Need(scope); err != nil {
		return err
	}
	if !domain.ValidSandboxID(id) {
		return domain.NotFound("sandbox", id)
	}
	sb, err := s.store.GetSandbox(ctx, p.TeamID, id)
	if err != nil {
		return err
	}
	if sb.State.Terminal() {
		return domain.Errorf(domain.KindNotFound, "sandbox %q is not running (it is %s)", id, sb.State)
	}
	return domain.Errorf(domain.KindUnavailable, "sandbox %q has no node to serve it from this control replica (node %q); try again shortly", id, sb.Node)
}

// Create implements domain.SandboxService: creates are placed on nodes.
func (s *Sandboxes) Create(ctx context.Context, p domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
	return nil, domain.Errorf(domain.KindUnavailable, "this control replica runs no sandboxes and no node took the create; start a node (warren serve --role node)")
}

// Kill implements domain.SandboxService.
func (s *Sandboxes) Kill(ctx context.Context, p domain.Principal, id string) error {
	return s.onNode(ctx, p, id, domain.ScopeSandboxesWrite)
}

// SetTimeout implements domain.SandboxService.
func (s *Sandboxes) SetTimeout(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	return nil, s.onNode(ctx, p, id, domain.ScopeSandboxesWrite)
}

// SetNetwork implements domain.SandboxService.
func (s *Sandboxes) SetNetwork(ctx context.Context, p domain.Principal, id string, np domain.NetworkPolicy) (*domain.Sandbox, error) {
	return nil, s.onNode(ctx, p, id, domain.ScopeSandboxesWrite)
}

// Connect implements domain.SandboxService.
func (s *Sandboxes) Connect(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	return nil, s.onNode(ctx, p, id, domain.ScopeSandboxesWrite)
}

// Metrics implements domain.SandboxService.
func (s *Sandboxes) Metrics(ctx context.Context, p domain.Principal, id string) (*domain.SandboxMetrics, error) {
	return nil, s.onNode(ctx, p, id, domain.ScopeSandboxesRead)
}

// Pause implements domain.SandboxService.
func (s *Sandboxes) Pause(ctx context.Context, p domain.Principal, id string) (*domain.Sandbox, error) {
	return nil, s.onNode(ctx, p, id, domain.ScopeSandboxesWrite)
}

// Resume implements domain.SandboxService.
func (s *Sandboxes) Resume(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	return nil, s.onNode(ctx, p, id, domain.ScopeSandboxesWrite)
}
