package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Page sizes of ListAudit.
const (
	DefaultAuditPage = 100
	MaxAuditPage     = 1000
)

const auditColumns = `id, team_id, at, actor_type, actor_id, action, target, status, remote_addr, request_id, details`

// AppendAudit adds e to the log and sets e.ID; a zero e.At becomes the current time,
// truncated to microseconds (what TIMESTAMPTZ keeps). Triggers refuse any UPDATE,
// DELETE or TRUNCATE of the table, so the log is append-only below the API as well.
func (s *Store) AppendAudit(ctx context.Context, e *domain.AuditEntry) error {
	at := e.At
	if at.IsZero() {
		at = time.Now().UTC().Truncate(time.Microsecond)
	}
	var enc encoder
	args := []any{e.TeamID, enc.at("at", at), e.ActorType, e.ActorID, e.Action, e.Target, e.Status,
		e.RemoteAddr, e.RequestID, enc.strMap("details", e.Details)}
	if enc.err != nil {
		return fmt.Errorf("appending audit entry %s: %w", e.Action, enc.err)
	}
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO audit_log
		(team_id, at, actor_type, actor_id, action, target, status, remote_addr, request_id, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`, args...).Scan(&id)
	if err != nil {
		return fmt.Errorf("appending audit entry %s: %w", e.Action, classify(err))
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
func (s *Store) ListAudit(ctx context.Context, f domain.AuditFilter) ([]*domain.AuditEntry, error) {
	limit, err := auditLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	var a args
	where := []string{`team_id = ` + a.add(f.TeamID)}
	if f.Action != "" {
		where = append(where, `action = `+a.add(f.Action))
	}
	if !f.Since.IsZero() {
		where = append(where, `at >= `+a.add(clamp(f.Since)))
	}
	if !f.Until.IsZero() {
		where = append(where, `at < `+a.add(clamp(f.Until)))
	}
	if f.BeforeID > 0 {
		where = append(where, `id < `+a.add(f.BeforeID))
	}
	q := `SELECT ` + auditColumns + ` FROM audit_log WHERE ` + strings.Join(where, ` AND `) +
		` ORDER BY id DESC LIMIT ` + a.add(limit)
	rows, err := s.pool.Query(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("listing audit log of team %s: %w", f.TeamID, classify(err))
	}
	entries, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("listing audit log of team %s: %w", f.TeamID, classify(err))
	}
	return entries, nil
}

func scanAudit(r rowScanner) (*domain.AuditEntry, error) {
	var e domain.AuditEntry
	var details []byte
	if err := r.Scan(&e.ID, &e.TeamID, &e.At, &e.ActorType, &e.ActorID, &e.Action, &e.Target, &e.Status,
		&e.RemoteAddr, &e.RequestID, &details); err != nil {
		return nil, err
	}
	e.At = e.At.UTC()
	var err error
	if e.Details, err = decodeMap("details", details); err != nil {
		return nil, err
	}
	return &e, nil
}
