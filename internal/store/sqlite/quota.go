package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/warren-sh/warren/internal/domain"
)

// CreateSandboxWithinQuota inserts sb if the team's non-terminal sandboxes plus sb fit
// in q. The sum and the insert share one IMMEDIATE transaction on the single writer
// connection, so they are atomic against writers in this process and, through SQLite's
// write lock, in every other.
func (s *Store) CreateSandboxWithinQuota(ctx context.Context, sb *domain.Sandbox, q domain.Quota) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("creating sandbox %s: %w", sb.ID, err)
	}
	defer tx.Rollback()
	used, err := teamUsage(ctx, tx, sb.TeamID)
	if err != nil {
		return fmt.Errorf("creating sandbox %s: %w", sb.ID, err)
	}
	if err := domain.CheckSandboxQuota(q, used, sb.Limits); err != nil {
		return err
	}
	if err := insertSandbox(ctx, tx, sb); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("creating sandbox %s: %w", sb.ID, err)
	}
	return nil
}

// TeamUsage sums the limits of the team's sandboxes that are not terminal.
func (s *Store) TeamUsage(ctx context.Context, teamID string) (domain.QuotaUsage, error) {
	u, err := teamUsage(ctx, s.r, teamID)
	if err != nil {
		return domain.QuotaUsage{}, fmt.Errorf("summing usage of team %s: %w", teamID, err)
	}
	return u, nil
}

// querier is *sql.DB or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func teamUsage(ctx context.Context, db querier, teamID string) (domain.QuotaUsage, error) {
	var u domain.QuotaUsage
	// limits is the JSON of domain.Limits, whose names are fixed by its JSON tags. TOTAL
	// is a floating-point SUM that is 0.0 over no rows.
	err := db.QueryRowContext(ctx, `SELECT COUNT(*),
			TOTAL(json_extract(limits, '$.cpu_cores')),
			COALESCE(SUM(json_extract(limits, '$.memory_mb')), 0),
			COALESCE(SUM(json_extract(limits, '$.disk_mb')), 0)
		FROM sandboxes WHERE team_id = ? AND state NOT IN (?, ?)`,
		teamID, string(domain.StateStopped), string(domain.StateError)).
		Scan(&u.Sandboxes, &u.CPUCores, &u.MemoryMB, &u.DiskMB)
	return u, err
}
