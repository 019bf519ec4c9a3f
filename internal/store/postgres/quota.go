package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/warren-sh/warren/internal/domain"
)

// CreateSandboxWithinQuota inserts sb if the team's non-terminal sandboxes plus sb fit
// in q. It locks the team's row first, so that concurrent calls for the team, from any
// server, sum and insert one after the other. The lock is FOR NO KEY UPDATE, which
// leaves inserts that merely reference the team (keys, plain CreateSandbox) unblocked.
func (s *Store) CreateSandboxWithinQuota(ctx context.Context, sb *domain.Sandbox, q domain.Quota) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM teams WHERE id = $1 FOR NO KEY UPDATE`, sb.TeamID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.NotFound("team", sb.TeamID)
		}
		if err != nil {
			return fmt.Errorf("locking team %s: %w", sb.TeamID, classify(err))
		}
		used, err := teamUsage(ctx, tx, sb.TeamID)
		if err != nil {
			return err
		}
		if err := domain.CheckSandboxQuota(q, used, sb.Limits); err != nil {
			return err
		}
		return insertSandbox(ctx, tx, sb)
	})
	if err != nil && domain.KindOf(err) == domain.KindInternal {
		return fmt.Errorf("creating sandbox %s: %w", sb.ID, err)
	}
	return err
}

// TeamUsage sums the limits of the team's sandboxes that are not terminal.
func (s *Store) TeamUsage(ctx context.Context, teamID string) (domain.QuotaUsage, error) {
	u, err := teamUsage(ctx, s.pool, teamID)
	if err != nil {
		return domain.QuotaUsage{}, fmt.Errorf("summing usage of team %s: %w", teamID, err)
	}
	return u, nil
}

// querier is the pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func teamUsage(ctx context.Context, db querier, teamID string) (domain.QuotaUsage, error) {
	var u domain.QuotaUsage
	// limits is the JSON of domain.Limits, whose names are fixed by its JSON tags.
	err := db.QueryRow(ctx, `SELECT COUNT(*),
			COALESCE(SUM((limits->>'cpu_cores')::double precision), 0),
			COALESCE(SUM((limits->>'memory_mb')::bigint), 0)::bigint,
			COALESCE(SUM((limits->>'disk_mb')::bigint), 0)::bigint
		FROM sandboxes WHERE team_id = $1 AND state <> ALL($2)`,
		teamID, []string{string(domain.StateStopped), string(domain.StateError)}).
		Scan(&u.Sandboxes, &u.CPUCores, &u.MemoryMB, &u.DiskMB)
	return u, classify(err)
}
