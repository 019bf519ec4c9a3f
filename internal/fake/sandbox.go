// Package fake holds test doubles of the domain interfaces: structs whose methods call
// function fields, so a test sets only what it exercises. An unset field answers with
// ErrNotSet.
package fake

import (
	"context"
	"errors"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// ErrNotSet is returned by a fake method whose function field the test did not set.
var ErrNotSet = errors.New("fake: method not set by the test")

// Sandboxes is a domain.SandboxService, domain.LogService and domain.Router.
type Sandboxes struct {
	CreateFn     func(ctx context.Context, p domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error)
	GetFn        func(ctx context.Context, p domain.Principal, id string) (*domain.Sandbox, error)
	ListFn       func(ctx context.Context, p domain.Principal, f domain.SandboxFilter) ([]*domain.Sandbox, string, error)
	KillFn       func(ctx context.Context, p domain.Principal, id string) error
	SetTimeoutFn func(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error)
	SetNetworkFn func(ctx context.Context, p domain.Principal, id string, np domain.NetworkPolicy) (*domain.Sandbox, error)
	ConnectFn    func(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error)
	MetricsFn    func(ctx context.Context, p domain.Principal, id string) (*domain.SandboxMetrics, error)
	PauseFn      func(ctx context.Context, p domain.Principal, id string) (*domain.Sandbox, error)
	ResumeFn     func(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error)
	TemplatesFn  func(ctx context.Context) ([]*domain.Template, error)
	LogsFn       func(ctx context.Context, p domain.Principal, id string, q domain.LogQuery) ([]domain.LogEntry, error)
	FollowLogsFn func(ctx context.Context, p domain.Principal, id string, q domain.LogQuery, onEntry func(domain.LogEntry) error) error
	RouteFn      func(ctx context.Context, id string) (*domain.Route, error)
}

var (
	_ domain.SandboxService = (*Sandboxes)(nil)
	_ domain.LogService     = (*Sandboxes)(nil)
	_ domain.Router         = (*Sandboxes)(nil)
)

func (f *Sandboxes) Create(ctx context.Context, p domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
	if f.CreateFn == nil {
		return nil, ErrNotSet
	}
	return f.CreateFn(ctx, p, req)
}

func (f *Sandboxes) Get(ctx context.Context, p domain.Principal, id string) (*domain.Sandbox, error) {
	if f.GetFn == nil {
		return nil, ErrNotSet
	}
	return f.GetFn(ctx, p, id)
}

func (f *Sandboxes) List(ctx context.Context, p domain.Principal, fl domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
	if f.ListFn == nil {
		return nil, "", ErrNotSet
	}
	return f.ListFn(ctx, p, fl)
}

func (f *Sandboxes) Kill(ctx context.Context, p domain.Principal, id string) error {
	if f.KillFn == nil {
		return ErrNotSet
	}
	return f.KillFn(ctx, p, id)
}

func (f *Sandboxes) SetTimeout(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	if f.SetTimeoutFn == nil {
		return nil, ErrNotSet
	}
	return f.SetTimeoutFn(ctx, p, id, d)
}

func (f *Sandboxes) SetNetwork(ctx context.Context, p domain.Principal, id string, np domain.NetworkPolicy) (*domain.Sandbox, error) {
	if f.SetNetworkFn == nil {
		return nil, ErrNotSet
	}
	return f.SetNetworkFn(ctx, p, id, np)
}

func (f *Sandboxes) Connect(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	if f.ConnectFn == nil {
		return nil, ErrNotSet
	}
	return f.ConnectFn(ctx, p, id, d)
}

func (f *Sandboxes) Metrics(ctx context.Context, p domain.Principal, id string) (*domain.SandboxMetrics, error) {
	if f.MetricsFn == nil {
		return nil, ErrNotSet
	}
	return f.MetricsFn(ctx, p, id)
}

func (f *Sandboxes) Pause(ctx context.Context, p domain.Principal, id string) (*domain.Sandbox, error) {
	if f.PauseFn == nil {
		return nil, ErrNotSet
	}
	return f.PauseFn(ctx, p, id)
}

func (f *Sandboxes) Resume(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	if f.ResumeFn == nil {
		return nil, ErrNotSet
	}
	return f.ResumeFn(ctx, p, id, d)
}

func (f *Sandboxes) Logs(ctx context.Context, p domain.Principal, id string, q domain.LogQuery) ([]domain.LogEntry, error) {
	if f.LogsFn == nil {
		return nil, ErrNotSet
	}
	return f.LogsFn(ctx, p, id, q)
}

func (f *Sandboxes) FollowLogs(ctx context.Context, p domain.Principal, id string, q domain.LogQuery, onEntry func(domain.LogEntry) error) error {
	if f.FollowLogsFn == nil {
		return ErrNotSet
	}
	return f.FollowLogsFn(ctx, p, id, q, onEntry)
}

func (f *Sandboxes) Templates(ctx context.Context) ([]*domain.Template, error) {
	if f.TemplatesFn == nil {
		return nil, ErrNotSet
	}
	return f.TemplatesFn(ctx)
}

func (f *Sandboxes) Route(ctx context.Context, id string) (*domain.Route, error) {
	if f.RouteFn == nil {
		return nil, ErrNotSet
	}
	return f.RouteFn(ctx, id)
}

// Keys is a domain.KeyService.
type Keys struct {
	AuthenticateFn func(ctx context.Context, secret string) (domain.Principal, error)
	CreateKeyFn    func(ctx context.Context, p domain.Principal, spec domain.KeySpec) (*domain.APIKey, string, error)
	ListKeysFn     func(ctx context.Context, p domain.Principal) ([]*domain.APIKey, error)
	RevokeKeyFn    func(ctx context.Context, p domain.Principal, id string) error
}

var _ domain.KeyService = (*Keys)(nil)

func (f *Keys) Authenticate(ctx context.Context, secret string) (domain.Principal, error) {
	if f.AuthenticateFn == nil {
		return domain.Principal{}, ErrNotSet
	}
	return f.AuthenticateFn(ctx, secret)
}

func (f *Keys) CreateKey(ctx context.Context, p domain.Principal, spec domain.KeySpec) (*domain.APIKey, string, error) {
	if f.CreateKeyFn == nil {
		return nil, "", ErrNotSet
	}
	return f.CreateKeyFn(ctx, p, spec)
}

func (f *Keys) ListKeys(ctx context.Context, p domain.Principal) ([]*domain.APIKey, error) {
	if f.ListKeysFn == nil {
		return nil, ErrNotSet
	}
	return f.ListKeysFn(ctx, p)
}

func (f *Keys) RevokeKey(ctx context.Context, p domain.Principal, id string) error {
	if f.RevokeKeyFn == nil {
		return ErrNotSet
	}
	return f.RevokeKeyFn(ctx, p, id)
}
