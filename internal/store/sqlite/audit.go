package sqlite

import (
	"context"
	"database/sql"
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
// truncated to microseconds so that every store keeps it exactly. Triggers refuse any
// UPDATE or DELETE of the table, so the log is append-only below the API as well.
func (s *Store) AppendAudit(ctx context.Context, e *domain.AuditEntry) error {
	at := e.At
	if at.IsZero() {
		at = time.Now().UTC().Truncate(time.Microsecond)
	}
	var enc encoder
	args := []any{e.TeamID, enc.nanos("at", at), e.ActorType, e.ActorID, e.Action, e.Target, e.Status,
		e.RemoteAddr, e.RequestID, enc.strMap("details", e.Details)}
	if enc.err != nil {
		return fmt.Errorf("appending audit entry %s: %w", e.Action, enc.err)
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO audit_log
		(team_id, at, actor_type, actor_id, action, target, status, remote_addr, request_id, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	if err != nil {
		return fmt.Errorf("appending audit entry %s: %w", e.Action, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("appending audit entry %s: %w", e.Action, err)
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
	where := []string{`team_id = ?`}
	args := []any{f.TeamID}
	if f.Action != "" {
		where = append(where, `action = ?`)
		args = append(args, f.Action)
	}
	if !f.Since.IsZero() {
		where = append(where, `at >= ?`)
		args = append(args, clampNanos(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, `at < ?`)
		args = append(args, clampNanos(f.Until))
	}
	if f.BeforeID > 0 {
		where = append(where, `id < ?`)
		args = append(args, f.BeforeID)
	}
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_log WHERE `+strings.Join(where, ` AND `)+
		` ORDER BY id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("listing audit log of team %s: %w", f.TeamID, err)
	}
	entries, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("listing audit log of team %s: %w", f.TeamID, err)
	}
	return entries, nil
}

func scanAudit(r rowScanner) (*domain.AuditEntry, error) {
	var e domain.AuditEntry
	var at int64
	var details sql.NullString
	if err := r.Scan(&e.ID, &e.TeamID, &at, &e.ActorType, &e.ActorID, &e.Action, &e.Target, &e.Status,
		&e.RemoteAddr, &e.RequestID, &details); err != nil {
		return nil, err
	}
	e.At = time.Unix(0, at).UTC()
	var err error
	if e.Details, err = decodeMap("details", details); err != nil {
		return nil, err
	}
	return &e, nil
}
