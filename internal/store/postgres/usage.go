package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warren-sh/warren/internal/domain"
)

// utcDay returns the UTC midnight that starts t's UTC day.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// RecordUsage adds each delta to its (sandbox, UTC day) bucket and saves m (when not
// nil), in one transaction. A delta's Day is booked on the UTC day it falls in.
func (s *Store) RecordUsage(ctx context.Context, m *domain.Meter, deltas []domain.UsageDelta) error {
	// Buckets are locked in one order whatever the caller's, so that two concurrent
	// calls cannot deadlock.
	ds := slices.Clone(deltas)
	for i, d := range ds {
		if d.Day.IsZero() {
			return domain.Invalid("day", "usage of sandbox %s has no day to book it on", d.SandboxID)
		}
		var e encoder
		ds[i].Day = e.at("day", utcDay(d.Day))
		if e.err != nil {
			return fmt.Errorf("recording usage of sandbox %s: %w", d.SandboxID, e.err)
		}
	}
	slices.SortStableFunc(ds, func(a, b domain.UsageDelta) int {
		return cmp.Or(strings.Compare(a.SandboxID, b.SandboxID), a.Day.Compare(b.Day))
	})
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, d := range ds {
			if _, err := tx.Exec(ctx, `INSERT INTO usage_buckets (sandbox_id, day, team_id, template_id,
					wall_ms, cpu_us, mem_mb_s, disk_mb_s, net_rx_bytes, net_tx_bytes)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
				ON CONFLICT (sandbox_id, day) DO UPDATE SET
					wall_ms = usage_buckets.wall_ms + excluded.wall_ms,
					cpu_us = usage_buckets.cpu_us + excluded.cpu_us,
					mem_mb_s = usage_buckets.mem_mb_s + excluded.mem_mb_s,
					disk_mb_s = usage_buckets.disk_mb_s + excluded.disk_mb_s,
					net_rx_bytes = usage_buckets.net_rx_bytes + excluded.net_rx_bytes,
					net_tx_bytes = usage_buckets.net_tx_bytes + excluded.net_tx_bytes`,
				d.SandboxID, d.Day, d.TeamID, d.TemplateID, d.WallMS, d.CPUMicros, d.MemMBSeconds, d.DiskMBSeconds,
				d.NetRxBytes, d.NetTxBytes); err != nil {
				return fmt.Errorf("recording usage of sandbox %s: %w", d.SandboxID, classify(err))
			}
		}
		if m != nil {
			return saveMeter(ctx, tx, m)
		}
		return nil
	})
	if err != nil && domain.KindOf(err) == domain.KindInternal {
		return fmt.Errorf("recording usage: %w", err)
	}
	return err
}

const meterColumns = `sandbox_id, team_id, started_at, sampled_at, cpu_us, net_rx_bytes, net_tx_bytes, closed_at`

func saveMeter(ctx context.Context, tx pgx.Tx, m *domain.Meter) error {
	var e encoder
	args := []any{m.SandboxID, m.TeamID, e.time("started_at", m.StartedAt), e.time("sampled_at", m.SampledAt),
		m.CPUMicros, m.NetRxBytes, m.NetTxBytes, e.time("closed_at", m.ClosedAt)}
	if e.err != nil {
		return fmt.Errorf("saving meter of sandbox %s: %w", m.SandboxID, e.err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO meters (`+meterColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (sandbox_id) DO UPDATE SET team_id = excluded.team_id, started_at = excluded.started_at,
			sampled_at = excluded.sampled_at, cpu_us = excluded.cpu_us, net_rx_bytes = excluded.net_rx_bytes,
			net_tx_bytes = excluded.net_tx_bytes, closed_at = excluded.closed_at`, args...); err != nil {
		return fmt.Errorf("saving meter of sandbox %s: %w", m.SandboxID, classify(err))
	}
	return nil
}

func scanMeter(r rowScanner) (*domain.Meter, error) {
	var m domain.Meter
	var started, sampled, closed *time.Time
	if err := r.Scan(&m.SandboxID, &m.TeamID, &started, &sampled, &m.CPUMicros, &m.NetRxBytes, &m.NetTxBytes, &closed); err != nil {
		return nil, err
	}
	m.StartedAt, m.SampledAt, m.ClosedAt = decodeTime(started), decodeTime(sampled), decodeTime(closed)
	return &m, nil
}

// GetMeter returns the sandbox's meter.
func (s *Store) GetMeter(ctx context.Context, sandboxID string) (*domain.Meter, error) {
	m, err := scanMeter(s.pool.QueryRow(ctx, `SELECT `+meterColumns+` FROM meters WHERE sandbox_id = $1`, sandboxID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domain.NotFound("meter of sandbox", sandboxID)
	}
	if err != nil {
		return nil, fmt.Errorf("getting meter of sandbox %s: %w", sandboxID, classify(err))
	}
	return m, nil
}

// OpenMeters returns the meters that are not closed, by sandbox id.
func (s *Store) OpenMeters(ctx context.Context) ([]*domain.Meter, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+meterColumns+` FROM meters WHERE closed_at IS NULL ORDER BY sandbox_id`)
	if err != nil {
		return nil, fmt.Errorf("listing open meters: %w", err)
	}
	ms, err := collect(rows, scanMeter)
	if err != nil {
		return nil, fmt.Errorf("listing open meters: %w", err)
	}
	return ms, nil
}

// ListUsage returns the buckets f selects, by day then sandbox id.
func (s *Store) ListUsage(ctx context.Context, f domain.UsageFilter) ([]domain.UsageRow, error) {
	var where []string
	var a args
	if f.TeamID != "" {
		where = append(where, `team_id = `+a.add(f.TeamID))
	}
	if f.SandboxID != "" {
		where = append(where, `sandbox_id = `+a.add(f.SandboxID))
	}
	if !f.From.IsZero() {
		where = append(where, `day >= `+a.add(clamp(f.From)))
	}
	if !f.To.IsZero() {
		where = append(where, `day < `+a.add(clamp(f.To)))
	}
	q := `SELECT sandbox_id, team_id, template_id, day, wall_ms, cpu_us, mem_mb_s, disk_mb_s, net_rx_bytes, net_tx_bytes
		FROM usage_buckets`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY day, sandbox_id`, a...)
	if err != nil {
		return nil, fmt.Errorf("listing usage: %w", classify(err))
	}
	defer rows.Close()
	out := []domain.UsageRow{}
	for rows.Next() {
		var u domain.UsageRow
		if err := rows.Scan(&u.SandboxID, &u.TeamID, &u.TemplateID, &u.Day, &u.WallMS, &u.CPUMicros,
			&u.MemMBSeconds, &u.DiskMBSeconds, &u.NetRxBytes, &u.NetTxBytes); err != nil {
			return nil, fmt.Errorf("listing usage: %w", err)
		}
		u.Day = u.Day.UTC()
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing usage: %w", classify(err))
	}
	return out, nil
}
