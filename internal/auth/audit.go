package auth

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// entry builds an audit entry for an action by p on target.
func (s *KeyService) entry(ctx context.Context, p domain.Principal, action, target string, details map[string]string) *domain.AuditEntry {
	return NewAuditEntry(ctx, p, action, target, 0, details)
}

// NewAuditEntry builds an audit entry for an action by p, with the request meta from ctx.
func NewAuditEntry(ctx context.Context, p domain.Principal, action, target string, status int, details map[string]string) *domain.AuditEntry {
	m := domain.RequestMetaFrom(ctx)
	e := &domain.AuditEntry{TeamID: p.TeamID, Action: action, Target: target, Status: status,
		RemoteAddr: m.RemoteAddr, RequestID: m.RequestID, Details: details}
	e.ActorType, e.ActorID = p.Actor()
	return e
}

// Record appends an audit entry. A failure is logged: the action already happened, and
// failing the request now would only hide that from the caller.
func (s *KeyService) Record(ctx context.Context, e *domain.AuditEntry) {
	if e.TeamID == "" {
		return
	}
	if e.At.IsZero() {
		e.At = s.now().UTC()
	}
	if err := s.store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log.ErrorContext(ctx, "writing audit entry", "action", e.Action, logkey.TeamID, e.TeamID, logkey.Err, err)
	}
}

// Audit lists the caller's team's audit log (a platform admin may name any team).
func (s *KeyService) Audit(ctx context.Context, p domain.Principal, f domain.AuditFilter) ([]*domain.AuditEntry, error) {
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
