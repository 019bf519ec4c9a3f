package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

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
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("recording usage: %w", err)
	}
	defer tx.Rollback()
	for _, d := range deltas {
		if d.Day.IsZero() {
			return domain.Invalid("day", "usage of sandbox %s has no day to book it on", d.SandboxID)
		}
		var e encoder
		day := e.nanos("day", utcDay(d.Day))
		if e.err != nil {
			return fmt.Errorf("recording usage of sandbox %s: %w", d.SandboxID, e.err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO usage_buckets (sandbox_id, day, team_id, template_id,
				wall_ms, cpu_us, mem_mb_s, disk_mb_s, net_rx_bytes, net_tx_bytes)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (sandbox_id, day) DO UPDATE SET
				wall_ms = wall_ms + excluded.wall_ms, cpu_us = cpu_us + excluded.cpu_us,
				mem_mb_s = mem_mb_s + excluded.mem_mb_s, disk_mb_s = disk_mb_s + excluded.disk_mb_s,
				net_rx_bytes = net_rx_bytes + excluded.net_rx_bytes, net_tx_bytes = net_tx_bytes + excluded.net_tx_bytes`,
			d.SandboxID, day, d.TeamID, d.TemplateID, d.WallMS, d.CPUMicros, d.MemMBSeconds, d.DiskMBSeconds,
			d.NetRxBytes, d.NetTxBytes); err != nil {
			return fmt.Errorf("recording usage of sandbox %s: %w", d.SandboxID, err)
		}
	}
	if m != nil {
		if err := saveMeter(ctx, tx, m); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recording usage: %w", err)
	}
	return nil
}

const meterColumns = `sandbox_id, team_id, started_at, sampled_at, cpu_us, net_rx_bytes, net_tx_bytes, closed_at`

func saveMeter(ctx context.Context, tx *sql.Tx, m *domain.Meter) error {
	var e encoder
	args := []any{m.SandboxID, m.TeamID, e.time("started_at", m.StartedAt), e.time("sampled_at", m.SampledAt),
		m.CPUMicros, m.NetRxBytes, m.NetTxBytes, e.time("closed_at", m.ClosedAt)}
	if e.err != nil {
		return fmt.Errorf("saving meter of sandbox %s: %w", m.SandboxID, e.err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meters (`+meterColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (sandbox_id) DO UPDATE SET team_id = excluded.team_id, started_at = excluded.started_at,
			sampled_at = excluded.sampled_at, cpu_us = excluded.cpu_us, net_rx_bytes = excluded.net_rx_bytes,
			net_tx_bytes = excluded.net_tx_bytes, closed_at = excluded.closed_at`, args...); err != nil {
		return fmt.Errorf("saving meter of sandbox %s: %w", m.SandboxID, err)
	}
	return nil
}

func scanMeter(r rowScanner) (*domain.Meter, error) {
	var m domain.Meter
	var started, sampled, closed sql.NullInt64
	if err := r.Scan(&m.SandboxID, &m.TeamID, &started, &sampled, &m.CPUMicros, &m.NetRxBytes, &m.NetTxBytes, &closed); err != nil {
		return nil, err
	}
	m.StartedAt, m.SampledAt, m.ClosedAt = decodeTime(started), decodeTime(sampled), decodeTime(closed)
	return &m, nil
}

// GetMeter returns the sandbox's meter.
func (s *Store) GetMeter(ctx context.Context, sandboxID string) (*domain.Meter, error) {
	m, err := scanMeter(s.r.QueryRowContext(ctx, `SELECT `+meterColumns+` FROM meters WHERE sandbox_id = ?`, sandboxID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("meter of sandbox", sandboxID)
	}
	if err != nil {
		return nil, fmt.Errorf("getting meter of sandbox %s: %w", sandboxID, err)
	}
	return m, nil
}

// OpenMeters returns the meters that are not closed, by sandbox id.
func (s *Store) OpenMeters(ctx context.Context) ([]*domain.Meter, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+meterColumns+` FROM meters WHERE closed_at IS NULL ORDER BY sandbox_id`)
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
	var args []any
	if f.TeamID != "" {
		where = append(where, `team_id = ?`)
		args = append(args, f.TeamID)
	}
	if f.SandboxID != "" {
		where = append(where, `sandbox_id = ?`)
		args = append(args, f.SandboxID)
	}
	if !f.From.IsZero() {
		where = append(where, `day >= ?`)
		args = append(args, clampNanos(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, `day < ?`)
		args = append(args, clampNanos(f.To))
	}
	q := `SELECT sandbox_id, team_id, template_id, day, wall_ms, cpu_us, mem_mb_s, disk_mb_s, net_rx_bytes, net_tx_bytes
		FROM usage_buckets`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY day, sandbox_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("listing usage: %w", err)
	}
	defer rows.Close()
	out := []domain.UsageRow{}
	for rows.Next() {
		var u domain.UsageRow
		var day int64
		if err := rows.Scan(&u.SandboxID, &u.TeamID, &u.TemplateID, &day, &u.WallMS, &u.CPUMicros,
			&u.MemMBSeconds, &u.DiskMBSeconds, &u.NetRxBytes, &u.NetTxBytes); err != nil {
			return nil, fmt.Errorf("listing usage: %w", err)
		}
		u.Day = time.Unix(0, day).UTC()
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing usage: %w", err)
	}
	return out, nil
}
