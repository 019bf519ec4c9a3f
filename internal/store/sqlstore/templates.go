package sqlstore

import (
	"context"
	"fmt"

	"github.com/warren-sh/warren/internal/domain"
)

// Templates is the domain.TemplateStore.
type Templates struct{ db *db }

var _ domain.TemplateStore = (*Templates)(nil)

const templateColumns = `team_id, id, description, hash, rootfs, ready, built_at, size_bytes, start_cmd, ready_port,
	private_ports, env, workdir, user_name, ready_check, created_at, cpu_cores, memory_mb`

func templateArgs(e *encoder, t *domain.Template) []any {
	return []any{t.TeamID, t.ID, t.Description, t.Hash, t.RootFS, t.Ready, e.time("built_at", t.BuiltAt), t.SizeBytes,
		t.StartCmd, t.ReadyPort, encodePorts(t.PrivatePorts), e.strMap("env", t.Env), t.Workdir, t.User,
		e.json("ready_check", t.ReadyCheck), e.time("created_at", t.CreatedAt), t.Limits.CPUCores, t.Limits.MemoryMB}
}

// UpsertTemplate inserts t or replaces every field of the template (t.TeamID, t.ID).
func (s *Templates) UpsertTemplate(ctx context.Context, t *domain.Template) error {
	e := encoder{d: s.db.d}
	args := templateArgs(&e, t)
	if e.err != nil {
		return s.db.wrap(e.err, "saving template %s", t.ID)
	}
	_, err := s.db.exec(ctx, `INSERT INTO templates (`+templateColumns+`) VALUES (`+marks(18)+`)
		ON CONFLICT (team_id, id) DO UPDATE SET
			description = excluded.description, hash = excluded.hash, rootfs = excluded.rootfs,
			ready = excluded.ready, built_at = excluded.built_at, size_bytes = excluded.size_bytes,
			start_cmd = excluded.start_cmd, ready_port = excluded.ready_port,
			private_ports = excluded.private_ports, env = excluded.env, workdir = excluded.workdir,
			user_name = excluded.user_name, ready_check = excluded.ready_check, created_at = excluded.created_at,
			cpu_cores = excluded.cpu_cores, memory_mb = excluded.memory_mb`, args...)
	if err != nil {
		return s.db.wrap(err, "saving template %s", t.ID)
	}
	return nil
}

func scanTemplate(d Dialect, r rowScanner) (*domain.Template, error) {
	var t domain.Template
	var ports string
	if err := r.Scan(&t.TeamID, &t.ID, &t.Description, &t.Hash, &t.RootFS, &t.Ready, scanTime(d, &t.BuiltAt), &t.SizeBytes,
		&t.StartCmd, &t.ReadyPort, &ports, scanJSON(&t.Env), &t.Workdir, &t.User, scanJSON(&t.ReadyCheck),
		scanTime(d, &t.CreatedAt), &t.Limits.CPUCores, &t.Limits.MemoryMB); err != nil {
		return nil, err
	}
	var err error
	if t.PrivatePorts, err = decodePorts(ports); err != nil {
		return nil, fmt.Errorf("template %s: %w", t.ID, err)
	}
	return &t, nil
}

// GetTemplate returns template id as team teamID sees it: its own, else the built-in
// ("" sees the built-ins alone).
func (s *Templates) GetTemplate(ctx context.Context, teamID, id string) (*domain.Template, error) {
	if teamID == domain.AnyTeam {
		return nil, domain.Invalid("team_id", "a template id is unique only within its team: name the team (or \"\" for the built-ins)")
	}
	// The team's own sorts after '' (team ids are never empty), so DESC puts it first.
	return get(ctx, s.db, scanTemplate, "template", id, `SELECT `+templateColumns+` FROM templates
		WHERE id = ? AND team_id IN ('', ?) ORDER BY team_id DESC LIMIT 1`, id, teamID)
}

// ListTemplates returns the built-ins and teamID's own templates ("" the built-ins
// alone, AnyTeam every template), ordered by id then team.
func (s *Templates) ListTemplates(ctx context.Context, teamID string) ([]*domain.Template, error) {
	if teamID == domain.AnyTeam {
		return list(ctx, s.db, scanTemplate, "listing templates", `SELECT `+templateColumns+` FROM templates
			WHERE id NOT LIKE '%:%' ORDER BY id, team_id`)
	}
	return list(ctx, s.db, scanTemplate, "listing templates",
		`SELECT `+templateColumns+` FROM templates WHERE team_id IN ('', ?) AND id NOT LIKE '%:%' ORDER BY id, team_id`, teamID)
}

// ListTemplateTags returns the team's rows of template id's tags (ids "id:tag"), by id.
func (s *Templates) ListTemplateTags(ctx context.Context, teamID, id string) ([]*domain.Template, error) {
	if teamID == "" || teamID == domain.AnyTeam {
		return nil, domain.Invalid("team_id", "only a team's own templates have tags: name the team")
	}
	prefix := id + domain.TagSeparator
	return list(ctx, s.db, scanTemplate, "listing template tags", `SELECT `+templateColumns+` FROM templates
		WHERE team_id = ? AND substr(id, 1, ?) = ? ORDER BY id`, teamID, len(prefix), prefix)
}

// teamTemplates returns the number and total size of the team's own templates,
// leaving out the template except ("" leaves none out).
func teamTemplates(ctx context.Context, r runner, teamID, except string) (n, bytes int64, err error) {
	err = r.queryRow(ctx, `SELECT COUNT(*), CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM templates
		WHERE team_id = ? AND id <> ? AND id NOT LIKE '%:%'`, teamID, except).Scan(&n, &bytes)
	return n, bytes, err
}

// CreateTemplateWithinQuota inserts the team's template t if its id is free among the
// built-ins and the team's templates and the team's quota allows one more. The
// dialect's LockTeam, the checks and the insert share one write transaction.
func (s *Templates) CreateTemplateWithinQuota(ctx context.Context, t *domain.Template, q domain.Quota) error {
	if t.TeamID == "" || t.TeamID == domain.AnyTeam {
		return domain.Invalid("team_id", "a team's template needs its team")
	}
	e := encoder{d: s.db.d}
	args := templateArgs(&e, t)
	if e.err != nil {
		return s.db.wrap(e.err, "creating template %s", t.ID)
	}
	return s.db.inTx(ctx, "creating template "+t.ID, func(tx *tx) error {
		if err := s.db.d.LockTeam(ctx, tx.raw, t.TeamID); err != nil {
			return err
		}
		var one int
		if err := tx.queryRow(ctx, `SELECT 1 FROM teams WHERE id = ?`, t.TeamID).Scan(&one); isNoRows(err) {
			return domain.NotFound("team", t.TeamID)
		} else if err != nil {
			return s.db.wrap(err, "looking up team %s", t.TeamID)
		}
		var owner string
		err := tx.queryRow(ctx, `SELECT team_id FROM templates WHERE id = ? AND team_id IN ('', ?) ORDER BY team_id LIMIT 1`,
			t.ID, t.TeamID).Scan(&owner)
		switch {
		case err == nil && owner == "":
			return domain.Errorf(domain.KindConflict, "%q is the name of a built-in template; choose another name", t.ID)
		case err == nil:
			return domain.Errorf(domain.KindConflict, "the team already has a template named %q", t.ID)
		case !isNoRows(err):
			return s.db.wrap(err, "looking up template %s", t.ID)
		}
		n, bytes, err := teamTemplates(ctx, tx, t.TeamID, "")
		if err != nil {
			return s.db.wrap(err, "counting templates of team %s", t.TeamID)
		}
		if err := domain.CheckTemplateQuota(q, n+1, bytes+t.SizeBytes); err != nil {
			return err
		}
		_, err = tx.exec(ctx, `INSERT INTO templates (`+templateColumns+`) VALUES (`+marks(18)+`)`, args...)
		if err != nil {
			return s.db.insertErr(err, t.TeamID, domain.Errorf(domain.KindConflict, "the team already has a template named %q", t.ID),
				"creating template %s", t.ID)
		}
		return nil
	})
}

// UpdateTemplateWithinQuota writes every field of the team's template t if the team's
// templates then stay within q.MaxTemplateMB.
func (s *Templates) UpdateTemplateWithinQuota(ctx context.Context, t *domain.Template, q domain.Quota) error {
	if t.TeamID == "" || t.TeamID == domain.AnyTeam {
		return domain.Invalid("team_id", "a team's template needs its team")
	}
	e := encoder{d: s.db.d}
	args := templateArgs(&e, t)
	if e.err != nil {
		return s.db.wrap(e.err, "updating template %s", t.ID)
	}
	return s.db.inTx(ctx, "updating template "+t.ID, func(tx *tx) error {
		if err := s.db.d.LockTeam(ctx, tx.raw, t.TeamID); err != nil {
			return err
		}
		n, bytes, err := teamTemplates(ctx, tx, t.TeamID, t.ID)
		if err != nil {
			return s.db.wrap(err, "counting templates of team %s", t.TeamID)
		}
		if err := domain.CheckTemplateQuota(domain.Quota{MaxTemplateMB: q.MaxTemplateMB}, n+1, bytes+t.SizeBytes); err != nil {
			return err
		}
		return s.db.updateWith(ctx, tx, "template", t.ID, "updating", `UPDATE templates SET description = ?, hash = ?,
			rootfs = ?, ready = ?, built_at = ?, size_bytes = ?, start_cmd = ?, ready_port = ?, private_ports = ?, env = ?,
			workdir = ?, user_name = ?, ready_check = ?, created_at = ?, cpu_cores = ?, memory_mb = ? WHERE team_id = ? AND id = ?`,
			append(args[2:], t.TeamID, t.ID)...)
	})
}

// DeleteTemplate removes the team's template id with its builds and their logs.
func (s *Templates) DeleteTemplate(ctx context.Context, teamID, id string) error {
	if teamID == "" || teamID == domain.AnyTeam {
		return domain.Invalid("team_id", "only a team's own template can be deleted: name the team")
	}
	return s.db.inTx(ctx, "deleting template "+id, func(tx *tx) error {
		if err := s.db.updateWith(ctx, tx, "template", id, "deleting",
			`DELETE FROM templates WHERE team_id = ? AND id = ?`, teamID, id); err != nil {
			return err
		}
		prefix := id + domain.TagSeparator
		if _, err := tx.exec(ctx, `DELETE FROM templates WHERE team_id = ? AND substr(id, 1, ?) = ?`, teamID, len(prefix), prefix); err != nil {
			return s.db.wrap(err, "deleting tags of template %s", id)
		}
		if _, err := tx.exec(ctx, `DELETE FROM template_build_logs WHERE build_id IN
			(SELECT id FROM template_builds WHERE team_id = ? AND template_id = ?)`, teamID, id); err != nil {
			return s.db.wrap(err, "deleting build logs of template %s", id)
		}
		if _, err := tx.exec(ctx, `DELETE FROM template_builds WHERE team_id = ? AND template_id = ?`, teamID, id); err != nil {
			return s.db.wrap(err, "deleting builds of template %s", id)
		}
		return nil
	})
}
