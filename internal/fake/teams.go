package fake

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
)

// Teams fakes the account services: it is a domain.TeamService, UserService,
// SessionService and AuditLog at once, so that a test sets up one value and wires it
// into each place that takes one of them. An unset RecordFn drops the entry, since
// Record cannot report ErrNotSet and most tests do not look at the audit log.
type Teams struct {
	LoginFn      func(ctx context.Context, email, password string) (*domain.Session, error)
	LogoutFn     func(ctx context.Context, p domain.Principal) error
	CreateTeamFn func(ctx context.Context, p domain.Principal, spec domain.TeamSpec) (*domain.Team, error)
	ListTeamsFn  func(ctx context.Context, p domain.Principal) ([]*domain.Team, error)
	GetTeamFn    func(ctx context.Context, p domain.Principal, id string) (*domain.Team, domain.QuotaUsage, error)
	UpdateTeamFn func(ctx context.Context, p domain.Principal, id string, patch domain.TeamSpec) (*domain.Team, error)
	CreateUserFn func(ctx context.Context, p domain.Principal, spec domain.UserSpec) (*domain.User, error)
	GetUserFn    func(ctx context.Context, p domain.Principal, id string) (*domain.User, error)
	ListUsersFn  func(ctx context.Context, p domain.Principal, teamID string) ([]*domain.User, error)
	UpdateUserFn func(ctx context.Context, p domain.Principal, id string, patch domain.UserPatch) (*domain.User, error)
	DeleteUserFn func(ctx context.Context, p domain.Principal, id string) error
	AuditFn      func(ctx context.Context, p domain.Principal, f domain.AuditFilter) ([]*domain.AuditEntry, error)
	RecordFn     func(ctx context.Context, e *domain.AuditEntry)
}

var (
	_ domain.TeamService    = (*Teams)(nil)
	_ domain.UserService    = (*Teams)(nil)
	_ domain.SessionService = (*Teams)(nil)
	_ domain.AuditLog       = (*Teams)(nil)
)

func (f *Teams) Login(ctx context.Context, email, password string) (*domain.Session, error) {
	if f.LoginFn == nil {
		return nil, ErrNotSet
	}
	return f.LoginFn(ctx, email, password)
}

func (f *Teams) Logout(ctx context.Context, p domain.Principal) error {
	if f.LogoutFn == nil {
		return ErrNotSet
	}
	return f.LogoutFn(ctx, p)
}

func (f *Teams) CreateTeam(ctx context.Context, p domain.Principal, spec domain.TeamSpec) (*domain.Team, error) {
	if f.CreateTeamFn == nil {
		return nil, ErrNotSet
	}
	return f.CreateTeamFn(ctx, p, spec)
}

func (f *Teams) ListTeams(ctx context.Context, p domain.Principal) ([]*domain.Team, error) {
	if f.ListTeamsFn == nil {
		return nil, ErrNotSet
	}
	return f.ListTeamsFn(ctx, p)
}

func (f *Teams) GetTeam(ctx context.Context, p domain.Principal, id string) (*domain.Team, domain.QuotaUsage, error) {
	if f.GetTeamFn == nil {
		return nil, domain.QuotaUsage{}, ErrNotSet
	}
	return f.GetTeamFn(ctx, p, id)
}

func (f *Teams) UpdateTeam(ctx context.Context, p domain.Principal, id string, patch domain.TeamSpec) (*domain.Team, error) {
	if f.UpdateTeamFn == nil {
		return nil, ErrNotSet
	}
	return f.UpdateTeamFn(ctx, p, id, patch)
}

func (f *Teams) CreateUser(ctx context.Context, p domain.Principal, spec domain.UserSpec) (*domain.User, error) {
	if f.CreateUserFn == nil {
		return nil, ErrNotSet
	}
	return f.CreateUserFn(ctx, p, spec)
}

func (f *Teams) GetUser(ctx context.Context, p domain.Principal, id string) (*domain.User, error) {
	if f.GetUserFn == nil {
		return nil, ErrNotSet
	}
	return f.GetUserFn(ctx, p, id)
}

func (f *Teams) ListUsers(ctx context.Context, p domain.Principal, teamID string) ([]*domain.User, error) {
	if f.ListUsersFn == nil {
		return nil, ErrNotSet
	}
	return f.ListUsersFn(ctx, p, teamID)
}

func (f *Teams) UpdateUser(ctx context.Context, p domain.Principal, id string, patch domain.UserPatch) (*domain.User, error) {
	if f.UpdateUserFn == nil {
		return nil, ErrNotSet
	}
	return f.UpdateUserFn(ctx, p, id, patch)
}

func (f *Teams) DeleteUser(ctx context.Context, p domain.Principal, id string) error {
	if f.DeleteUserFn == nil {
		return ErrNotSet
	}
	return f.DeleteUserFn(ctx, p, id)
}

func (f *Teams) Audit(ctx context.Context, p domain.Principal, fl domain.AuditFilter) ([]*domain.AuditEntry, error) {
	if f.AuditFn == nil {
		return nil, ErrNotSet
	}
	return f.AuditFn(ctx, p, fl)
}

func (f *Teams) Record(ctx context.Context, e *domain.AuditEntry) {
	if f.RecordFn != nil {
		f.RecordFn(ctx, e)
	}
}
