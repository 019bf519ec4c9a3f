package sqlstore

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Usage is the domain.UsageStore: usage buckets and meters.
type Usage struct{ db *db }

var _ domain.UsageStore = (*Usage)(nil)

// utcDay returns the UTC midnight that starts t's UTC day.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// RecordUsage adds each delta to its (sandbox, UTC day) bucket and saves m (when not
// nil), in one transaction. A delta's Day is booked on the UTC day it falls in.
func (s *Usage) RecordUsage(ctx context.Context, m *domain.Meter, deltas []domain.UsageDelta) error {
	type bucket struct {
		d   domain.UsageDelta
		day any
	}
	bs := make([]bucket, len(deltas))
	for i, d := range deltas {
		if d.Day.IsZero() {
			return domain.Invalid("day", "usage of sandbox %s has no day to book it on", d.SandboxID)
		}
		e := encoder{d: s.db.d}
		d.Day = utcDay(d.Day)
		bs[i] = bucket{d, e.at("day", d.Day)}
		if e.err != nil {
			return s.db.wrap(e.err, "recording usage of sandbox %s", d.SandboxID)
		}
	}
	// Buckets are written in one order whatever the caller's, so that two concurrent
	// calls cannot deadlock on PostgreSQL's row locks.
	slices.SortStableFunc(bs, func(a, b bucket) int {
		return cmp.Or(strings.Compare(a.d.SandboxID, b.d.SandboxID), a.d.Day.Compare(b.d.Day))
	})
	return s.db.inTx(ctx, "recording usage", func(tx *tx) error {
		for _, b := range bs {
			d := b.d
			if _, err := tx.exec(ctx, `INSERT INTO usage_buckets (sandbox_id, day, team_id, template_id,
					wall_ms, cpu_us, mem_mb_s, disk_mb_s, net_rx_bytes, net_tx_bytes)
				VALUES (`+marks(10)+`)
				ON CONFLICT (sandbox_id, day) DO UPDATE SET
					wall_ms = usage_buckets.wall_ms + excluded.wall_ms,
					cpu_us = usage_buckets.cpu_us + excluded.cpu_us,
					mem_mb_s = usage_buckets.mem_mb_s + excluded.mem_mb_s,
					disk_mb_s = usage_buckets.disk_mb_s + excluded.disk_mb_s,
					net_rx_bytes = usage_buckets.net_rx_bytes + excluded.net_rx_bytes,
					net_tx_bytes = usage_buckets.net_tx_bytes + excluded.net_tx_bytes`,
				d.SandboxID, b.day, d.TeamID, d.TemplateID, d.WallMS, d.CPUMicros, d.MemMBSeconds, d.DiskMBSeconds,
				d.NetRxBytes, d.NetTxBytes); err != nil {
				return s.db.wrap(err, "recording usage of sandbox %s", d.SandboxID)
			}
		}
		if m != nil {
			return s.saveMeter(ctx, tx, m)
		}
		return nil
	})
}

const meterColumns = `sandbox_id, team_id, started_at, sampled_at, cpu_us, net_rx_bytes, net_tx_bytes, closed_at`

func (s *Usage) saveMeter(ctx context.Context, tx *tx, m *domain.Meter) error {
	e := encoder{d: s.db.d}
	args := []any{m.SandboxID, m.TeamID, e.time("started_at", m.StartedAt), e.time("sampled_at", m.SampledAt),
		m.CPUMicros, m.NetRxBytes, m.NetTxBytes, e.time("closed_at", m.ClosedAt)}
	if e.err != nil {
		return s.db.wrap(e.err, "saving meter of sandbox %s", m.SandboxID)
	}
	if _, err := tx.exec(ctx, `INSERT INTO meters (`+meterColumns+`) VALUES (`+marks(8)+`)
		ON CONFLICT (sandbox_id) DO UPDATE SET team_id = excluded.team_id, started_at = excluded.started_at,
			sampled_at = excluded.sampled_at, cpu_us = excluded.cpu_us, net_rx_bytes = excluded.net_rx_bytes,
			net_tx_bytes = excluded.net_tx_bytes, closed_at = excluded.closed_at`, args...); err != nil {
		return s.db.wrap(err, "saving meter of sandbox %s", m.SandboxID)
	}
	return nil
}

func scanMeter(d Dialect, r rowScanner) (*domain.Meter, error) {
	var m domain.Meter
	if err := r.Scan(&m.SandboxID, &m.TeamID, scanTime(d, &m.StartedAt), scanTime(d, &m.SampledAt), &m.CPUMicros,
		&m.NetRxBytes, &m.NetTxBytes, scanTime(d, &m.ClosedAt)); err != nil {
		return nil, err
	}
	return &m, nil
}

// GetMeter returns the sandbox's meter.
func (s *Usage) GetMeter(ctx context.Context, sandboxID string) (*domain.Meter, error) {
	return get(ctx, s.db, scanMeter, "meter of sandbox", sandboxID,
		`SELECT `+meterColumns+` FROM meters WHERE sandbox_id = ?`, sandboxID)
}

// OpenMeters returns the meters that are not closed, by sandbox id.
func (s *Usage) OpenMeters(ctx context.Context) ([]*domain.Meter, error) {
	return list(ctx, s.db, scanMeter, "listing open meters",
		`SELECT `+meterColumns+` FROM meters WHERE closed_at IS NULL ORDER BY sandbox_id`)
}

// ListUsage returns the buckets f selects, by day then sandbox id.
func (s *Usage) ListUsage(ctx context.Context, f domain.UsageFilter) ([]domain.UsageRow, error) {
	if err := needTeam(f.TeamID); err != nil {
		return nil, err
	}
	var w where
	if f.TeamID != domain.AnyTeam {
		w.add(`team_id = ?`, f.TeamID)
	}
	if f.SandboxID != "" {
		w.add(`sandbox_id = ?`, f.SandboxID)
	}
	if !f.From.IsZero() {
		w.add(`day >= ?`, s.db.d.ClampTime(f.From))
	}
	if !f.To.IsZero() {
		w.add(`day < ?`, s.db.d.ClampTime(f.To))
	}
	rows, err := list(ctx, s.db, scanUsage, "listing usage", `SELECT sandbox_id, team_id, template_id, day,
		wall_ms, cpu_us, mem_mb_s, disk_mb_s, net_rx_bytes, net_tx_bytes
		FROM usage_buckets`+w.String()+` ORDER BY day, sandbox_id`, w.args...)
	if err != nil {
		return nil, err
	}
	out := make([]domain.UsageRow, len(rows))
	for i, r := range rows {
		out[i] = *r
	}
	return out, nil
}

func scanUsage(d Dialect, r rowScanner) (*domain.UsageRow, error) {
	var u domain.UsageRow
	if err := r.Scan(&u.SandboxID, &u.TeamID, &u.TemplateID, scanTime(d, &u.Day), &u.WallMS, &u.CPUMicros,
		&u.MemMBSeconds, &u.DiskMBSeconds, &u.NetRxBytes, &u.NetTxBytes); err != nil {
		return nil, err
	}
	return &u, nil
}
