package auth

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
)

// NewAuditEntry builds an audit entry for an action by p, with the request meta from ctx.
func NewAuditEntry(ctx context.Context, p domain.Principal, action, target string, status int, details map[string]string) *domain.AuditEntry {
	m := domain.RequestMetaFrom(ctx)
	e := &domain.AuditEntry{TeamID: p.TeamID, Action: action, Target: target, Status: status,
		RemoteAddr: m.RemoteAddr, RequestID: m.RequestID, Details: details}
	e.ActorType, e.ActorID = p.Actor()
	return e
}

var _ domain.AuditLog = (*AuditLog)(nil)

// AuditLog implements domain.AuditLog: the edges record what callers did, and teams
// read it back.
type AuditLog struct {
	*core
}

// Record appends an audit entry. A failure is logged: the action already happened, and
// failing the request now would only hide that from the caller.
func (s *AuditLog) Record(ctx context.Context, e *domain.AuditEntry) { s.record(ctx, e) }

// Audit lists the caller's team's audit log (a platform admin may name any team).
func (s *AuditLog) Audit(ctx context.Context, p domain.Principal, f domain.AuditFilter) ([]*domain.AuditEntry, error) {
	if err := needTeam(p); err != nil {
		return nil, err
	}
	if err := p.Need(domain.ScopeAuditRead); err != nil {
		return nil, err
	}
	if f.TeamID == "" || !p.Admin {
		f.TeamID = p.TeamID
	}
	return s.store.ListAudit(ctx, f)
}
