package sqlstore

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
)

// Teams is the domain.TeamStore.
type Teams struct{ db *db }

var _ domain.TeamStore = (*Teams)(nil)

const teamColumns = `id, name, created_at, max_sandboxes, max_cpu_cores, max_memory_mb, max_disk_mb,
	requests_per_minute, plan_id, spend_limit, allowed_runtimes, max_snapshots, max_templates, max_template_mb`

// CreateTeam inserts t; an existing id is a KindConflict error.
func (s *Teams) CreateTeam(ctx context.Context, t *domain.Team) error {
	e := encoder{d: s.db.d}
	q := t.Quota
	args := []any{t.ID, t.Name, e.time("created_at", t.CreatedAt), q.MaxSandboxes, q.MaxCPUCores, q.MaxMemoryMB,
		q.MaxDiskMB, q.RequestsPerMinute, t.PlanID, t.SpendLimit, e.names("allowed_runtimes", t.AllowedRuntimes),
		q.MaxSnapshots, q.MaxTemplates, q.MaxTemplateMB}
	if e.err != nil {
		return s.db.wrap(e.err, "creating team %s", t.ID)
	}
	_, err := s.db.exec(ctx, `INSERT INTO teams (`+teamColumns+`) VALUES (`+marks(14)+`)`, args...)
	if err != nil {
		return s.db.insertErr(err, t.ID, domain.Errorf(domain.KindConflict, "team %q already exists", t.ID),
			"creating team %s", t.ID)
	}
	return nil
}

// UpdateTeam writes t's Name, Quota, PlanID, SpendLimit and AllowedRuntimes; the id
// and creation time stay.
func (s *Teams) UpdateTeam(ctx context.Context, t *domain.Team) error {
	e := encoder{d: s.db.d}
	q := t.Quota
	runtimes := e.names("allowed_runtimes", t.AllowedRuntimes)
	if e.err != nil {
		return s.db.wrap(e.err, "updating team %s", t.ID)
	}
	return s.db.update(ctx, "team", t.ID, "updating", `UPDATE teams SET name = ?, max_sandboxes = ?,
		max_cpu_cores = ?, max_memory_mb = ?, max_disk_mb = ?, requests_per_minute = ?, plan_id = ?, spend_limit = ?,
		allowed_runtimes = ?, max_snapshots = ?, max_templates = ?, max_template_mb = ? WHERE id = ?`,
		t.Name, q.MaxSandboxes, q.MaxCPUCores, q.MaxMemoryMB, q.MaxDiskMB, q.RequestsPerMinute,
		t.PlanID, t.SpendLimit, runtimes, q.MaxSnapshots, q.MaxTemplates, q.MaxTemplateMB, t.ID)
}

func scanTeam(d Dialect, r rowScanner) (*domain.Team, error) {
	var t domain.Team
	q := &t.Quota
	if err := r.Scan(&t.ID, &t.Name, scanTime(d, &t.CreatedAt), &q.MaxSandboxes, &q.MaxCPUCores, &q.MaxMemoryMB,
		&q.MaxDiskMB, &q.RequestsPerMinute, &t.PlanID, &t.SpendLimit, scanJSON(&t.AllowedRuntimes),
		&q.MaxSnapshots, &q.MaxTemplates, &q.MaxTemplateMB); err != nil {
		return nil, err
	}
	return &t, nil
}

// GetTeam returns the team with that id.
func (s *Teams) GetTeam(ctx context.Context, id string) (*domain.Team, error) {
	return get(ctx, s.db, scanTeam, "team", id, `SELECT `+teamColumns+` FROM teams WHERE id = ?`, id)
}

// ListTeams returns every team, oldest first (a team without a creation time first).
func (s *Teams) ListTeams(ctx context.Context) ([]*domain.Team, error) {
	return list(ctx, s.db, scanTeam, "listing teams",
		`SELECT `+teamColumns+` FROM teams ORDER BY created_at NULLS FIRST, id`)
}
