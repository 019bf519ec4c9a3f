package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/warren-sh/warren/internal/domain"
)

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// CreateTeam inserts t; an existing id is a KindConflict error.
func (s *Store) CreateTeam(ctx context.Context, t *domain.Team) error {
	var e encoder
	created := e.time("created_at", t.CreatedAt)
	if e.err != nil {
		return fmt.Errorf("creating team %s: %w", t.ID, e.err)
	}
	q := t.Quota
	_, err := s.exec(ctx, `INSERT INTO teams (`+teamColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, created, q.MaxSandboxes, q.MaxCPUCores, q.MaxMemoryMB, q.MaxDiskMB, q.RequestsPerMinute,
		t.PlanID, t.SpendLimit)
	if isUniqueViolation(err) {
		return domain.Errorf(domain.KindConflict, "team %q already exists", t.ID)
	}
	if err != nil {
		return fmt.Errorf("creating team %s: %w", t.ID, err)
	}
	return nil
}

// UpdateTeam writes t's Name, Quota, PlanID and SpendLimit; the id and creation time
// stay.
func (s *Store) UpdateTeam(ctx context.Context, t *domain.Team) error {
	q := t.Quota
	n, err := s.exec(ctx, `UPDATE teams SET name = ?, max_sandboxes = ?, max_cpu_cores = ?, max_memory_mb = ?,
		max_disk_mb = ?, requests_per_minute = ?, plan_id = ?, spend_limit = ? WHERE id = ?`,
		t.Name, q.MaxSandboxes, q.MaxCPUCores, q.MaxMemoryMB, q.MaxDiskMB, q.RequestsPerMinute,
		t.PlanID, t.SpendLimit, t.ID)
	if err != nil {
		return fmt.Errorf("updating team %s: %w", t.ID, err)
	}
	if n == 0 {
		return domain.NotFound("team", t.ID)
	}
	return nil
}

const teamColumns = `id, name, created_at, max_sandboxes, max_cpu_cores, max_memory_mb, max_disk_mb,
	requests_per_minute, plan_id, spend_limit`

func scanTeam(r rowScanner) (*domain.Team, error) {
	var t domain.Team
	var created sql.NullInt64
	q := &t.Quota
	if err := r.Scan(&t.ID, &t.Name, &created, &q.MaxSandboxes, &q.MaxCPUCores, &q.MaxMemoryMB, &q.MaxDiskMB,
		&q.RequestsPerMinute, &t.PlanID, &t.SpendLimit); err != nil {
		return nil, err
	}
	t.CreatedAt = decodeTime(created)
	return &t, nil
}

// GetTeam returns the team with that id.
func (s *Store) GetTeam(ctx context.Context, id string) (*domain.Team, error) {
	t, err := scanTeam(s.r.QueryRowContext(ctx, `SELECT `+teamColumns+` FROM teams WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("team", id)
	}
	if err != nil {
		return nil, fmt.Errorf("getting team %s: %w", id, err)
	}
	return t, nil
}

// ListTeams returns every team, oldest first.
func (s *Store) ListTeams(ctx context.Context) ([]*domain.Team, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+teamColumns+` FROM teams ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("listing teams: %w", err)
	}
	teams, err := collect(rows, scanTeam)
	if err != nil {
		return nil, fmt.Errorf("listing teams: %w", err)
	}
	return teams, nil
}

// UpsertTemplate inserts t or replaces every field of the template with t's id.
func (s *Store) UpsertTemplate(ctx context.Context, t *domain.Template) error {
	var e encoder
	built := e.time("built_at", t.BuiltAt)
	if e.err != nil {
		return fmt.Errorf("saving template %s: %w", t.ID, e.err)
	}
	_, err := s.exec(ctx, `INSERT INTO templates (id, description, hash, rootfs, ready, built_at, size_bytes, start_cmd, ready_port)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			description = excluded.description, hash = excluded.hash, rootfs = excluded.rootfs,
			ready = excluded.ready, built_at = excluded.built_at, size_bytes = excluded.size_bytes,
			start_cmd = excluded.start_cmd, ready_port = excluded.ready_port`,
		t.ID, t.Description, t.Hash, t.RootFS, boolInt(t.Ready), built, t.SizeBytes, t.StartCmd, t.ReadyPort)
	if err != nil {
		return fmt.Errorf("saving template %s: %w", t.ID, err)
	}
	return nil
}

const templateColumns = `id, description, hash, rootfs, ready, built_at, size_bytes, start_cmd, ready_port`

func scanTemplate(r rowScanner) (*domain.Template, error) {
	var t domain.Template
	var built sql.NullInt64
	if err := r.Scan(&t.ID, &t.Description, &t.Hash, &t.RootFS, &t.Ready, &built, &t.SizeBytes, &t.StartCmd, &t.ReadyPort); err != nil {
		return nil, err
	}
	t.BuiltAt = decodeTime(built)
	return &t, nil
}

// GetTemplate returns the template with that id.
func (s *Store) GetTemplate(ctx context.Context, id string) (*domain.Template, error) {
	t, err := scanTemplate(s.r.QueryRowContext(ctx, `SELECT `+templateColumns+` FROM templates WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("template", id)
	}
	if err != nil {
		return nil, fmt.Errorf("getting template %s: %w", id, err)
	}
	return t, nil
}

// ListTemplates returns every template ordered by id.
func (s *Store) ListTemplates(ctx context.Context) ([]*domain.Template, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+templateColumns+` FROM templates ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing templates: %w", err)
	}
	ts, err := collect(rows, scanTemplate)
	if err != nil {
		return nil, fmt.Errorf("listing templates: %w", err)
	}
	return ts, nil
}

// collect scans every row and closes rows.
func collect[T any](rows *sql.Rows, scan func(rowScanner) (*T, error)) ([]*T, error) {
	defer rows.Close()
	out := []*T{} // empty, not nil: edges encode it as [] rather than null
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
