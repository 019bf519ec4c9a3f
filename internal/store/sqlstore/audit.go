package sqlstore

import (
	"context"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Page sizes of ListAudit.
const (
	DefaultAuditPage = 100
	MaxAuditPage     = 1000
)

// Audit is the domain.AuditStore.
type Audit struct{ db *db }

var _ domain.AuditStore = (*Audit)(nil)

const auditColumns = `id, team_id, at, actor_type, actor_id, action, target, status, remote_addr, request_id, details`

// AppendAudit adds e to the log and sets e.ID; a zero e.At becomes the current time,
// truncated to microseconds so that every store keeps it exactly. The migrations add
// triggers that refuse any UPDATE or DELETE of the table, so the log is append-only
// below the API as well.
func (s *Audit) AppendAudit(ctx context.Context, e *domain.AuditEntry) error {
	at := e.At
	if at.IsZero() {
		at = time.Now().UTC().Truncate(time.Microsecond)
	}
	enc := encoder{d: s.db.d}
	args := []any{e.TeamID, enc.at("at", at), e.ActorType, e.ActorID, e.Action, e.Target, e.Status,
		e.RemoteAddr, e.RequestID, enc.strMap("details", e.Details)}
	if enc.err != nil {
		return s.db.wrap(enc.err, "appending audit entry %s", e.Action)
	}
	var id int64
	err := s.db.writeRow(ctx, `INSERT INTO audit_log
		(team_id, at, actor_type, actor_id, action, target, status, remote_addr, request_id, details)
		VALUES (`+marks(10)+`) RETURNING id`, args...).Scan(&id)
	if err != nil {
		return s.db.wrap(err, "appending audit entry %s", e.Action)
	}
	e.ID, e.At = id, at
	return nil
}

// auditLimit applies the page size rules of AuditFilter.Limit.
func auditLimit(n int) (int, error) {
	switch {
	case n < 0:
		return 0, domain.Invalid("limit", "limit must not be negative: omit it for %d entries per page", DefaultAuditPage)
	case n == 0:
		return DefaultAuditPage, nil
	case n > MaxAuditPage:
		return MaxAuditPage, nil
	}
	return n, nil
}

// ListAudit returns the entries of team f.TeamID (entries without a team when it is "")
// that f selects, newest (highest id) first.
func (s *Audit) ListAudit(ctx context.Context, f domain.AuditFilter) ([]*domain.AuditEntry, error) {
	limit, err := auditLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	var w where
	w.add(`team_id = ?`, f.TeamID)
	if f.Action != "" {
		w.add(`action = ?`, f.Action)
	}
	if !f.Since.IsZero() {
		w.add(`at >= ?`, s.db.d.ClampTime(f.Since))
	}
	if !f.Until.IsZero() {
		w.add(`at < ?`, s.db.d.ClampTime(f.Until))
	}
	if f.BeforeID > 0 {
		w.add(`id < ?`, f.BeforeID)
	}
	return list(ctx, s.db, scanAudit, "listing audit log of team "+f.TeamID,
		`SELECT `+auditColumns+` FROM audit_log`+w.String()+` ORDER BY id DESC LIMIT ?`, append(w.args, limit)...)
}

func scanAudit(d Dialect, r rowScanner) (*domain.AuditEntry, error) {
	var e domain.AuditEntry
	if err := r.Scan(&e.ID, &e.TeamID, scanTime(d, &e.At), &e.ActorType, &e.ActorID, &e.Action, &e.Target,
		&e.Status, &e.RemoteAddr, &e.RequestID, scanJSON(&e.Details)); err != nil {
		return nil, err
	}
	return &e, nil
}
