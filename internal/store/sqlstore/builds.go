package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/warren-sh/warren/internal/domain"
)

// Builds is the domain.TemplateBuildStore.
type Builds struct{ db *db }

var _ domain.TemplateBuildStore = (*Builds)(nil)

const buildColumns = `id, team_id, template_id, state, reason, steps, created_at, finished_at, limits, tags`

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

func scanBuild(d Dialect, r rowScanner) (*domain.Build, error) {
	var b domain.Build
	if err := r.Scan(&b.ID, &b.TeamID, &b.TemplateID, &b.State, &b.Reason, scanJSON(&b.Steps),
		scanTime(d, &b.CreatedAt), scanTime(d, &b.FinishedAt), scanJSON(&b.Limits), scanJSON(&b.Tags)); err != nil {
		return nil, err
	}
	return &b, nil
}

// steps encodes a build's step results; none is NULL (and reads back as nil).
func (e *encoder) steps(s []domain.StepResult) any {
	if len(s) == 0 {
		return nil
	}
	return e.json("steps", s)
}

// limits encodes a build's limits; none is NULL (and reads back as zero).
func (e *encoder) limits(l domain.Limits) any {
	if l == (domain.Limits{}) {
		return nil
	}
	return e.json("limits", l)
}

// tags encodes a build's tags; none is NULL (and reads back as nil).
func (e *encoder) tags(t []string) any {
	if len(t) == 0 {
		return nil
	}
	return e.json("tags", t)
}

// CreateBuild inserts b; an unknown team is KindNotFound.
func (s *Builds) CreateBuild(ctx context.Context, b *domain.Build) error {
	if b.TeamID == "" || b.TeamID == domain.AnyTeam {
		return domain.Invalid("team_id", "a build needs its team")
	}
	e := encoder{d: s.db.d}
	args := []any{b.ID, b.TeamID, b.TemplateID, string(b.State), b.Reason, e.steps(b.Steps),
		e.sortTime("created_at", b.CreatedAt), e.time("finished_at", b.FinishedAt), e.limits(b.Limits), e.tags(b.Tags)}
	if e.err != nil {
		return s.db.wrap(e.err, "creating build %s", b.ID)
	}
	_, err := s.db.exec(ctx, `INSERT INTO template_builds (`+buildColumns+`) VALUES (`+marks(10)+`)`, args...)
	if err != nil {
		return s.db.insertErr(err, b.TeamID, domain.Errorf(domain.KindConflict, "build %q already exists", b.ID),
			"creating build %s", b.ID)
	}
	return nil
}

// GetBuild returns the team's build id of template templateID ("" any template).
func (s *Builds) GetBuild(ctx context.Context, teamID, templateID, id string) (*domain.Build, error) {
	if err := needTeam(teamID); err != nil {
		return nil, err
	}
	var w where
	w.add(`id = ?`, id)
	if teamID != domain.AnyTeam {
		w.add(`team_id = ?`, teamID)
	}
	if templateID != "" {
		w.add(`template_id = ?`, templateID)
	}
	return get(ctx, s.db, scanBuild, "build", id, `SELECT `+buildColumns+` FROM template_builds`+w.String(), w.args...)
}

// BeginBuild moves the team's waiting build to b.State, recording spec.
func (s *Builds) BeginBuild(ctx context.Context, b *domain.Build, spec domain.BuildSpec) error {
	e := encoder{d: s.db.d}
	js := e.json("spec", spec)
	if e.err != nil {
		return s.db.wrap(e.err, "starting build %s", b.ID)
	}
	n, err := s.db.exec(ctx, `UPDATE template_builds SET state = ?, spec = ? WHERE id = ? AND team_id = ? AND state = ?`,
		string(b.State), js, b.ID, b.TeamID, string(domain.BuildWaiting))
	if err != nil {
		return s.db.wrap(err, "starting build %s", b.ID)
	}
	if n == 0 {
		cur, err := s.GetBuild(ctx, b.TeamID, "", b.ID)
		if err != nil {
			return err
		}
		return domain.Errorf(domain.KindConflict, "build %s is %s, not waiting: it was started already; create a new build to build again",
			b.ID, cur.State)
	}
	return nil
}

// UpdateBuild writes State, Reason, Steps and FinishedAt of the build b.ID.
func (s *Builds) UpdateBuild(ctx context.Context, b *domain.Build) error {
	e := encoder{d: s.db.d}
	args := []any{string(b.State), b.Reason, e.steps(b.Steps), e.time("finished_at", b.FinishedAt), b.ID}
	if e.err != nil {
		return s.db.wrap(e.err, "updating build %s", b.ID)
	}
	return s.db.update(ctx, "build", b.ID, "updating",
		`UPDATE template_builds SET state = ?, reason = ?, steps = ?, finished_at = ? WHERE id = ?`, args...)
}

// ListBuilds returns the builds of the team's template (any template for ""), in the
// given states (any without), newest first.
func (s *Builds) ListBuilds(ctx context.Context, teamID, templateID string, states ...domain.BuildState) ([]*domain.Build, error) {
	if err := needTeam(teamID); err != nil {
		return nil, err
	}
	var w where
	if teamID != domain.AnyTeam {
		w.add(`team_id = ?`, teamID)
	}
	if templateID != "" {
		w.add(`template_id = ?`, templateID)
	}
	if len(states) > 0 {
		args := make([]any, len(states))
		for i, st := range states {
			args[i] = string(st)
		}
		w.add(`state IN (`+marks(len(states))+`)`, args...)
	}
	return list(ctx, s.db, scanBuild, "listing builds",
		`SELECT `+buildColumns+` FROM template_builds`+w.String()+` ORDER BY created_at DESC, id DESC`, w.args...)
}

// DeleteBuild removes the team's build and its log lines.
func (s *Builds) DeleteBuild(ctx context.Context, teamID, id string) error {
	if err := needTeam(teamID); err != nil {
		return err
	}
	return s.db.inTx(ctx, "deleting build "+id, func(tx *tx) error {
		q, args := `DELETE FROM template_builds WHERE id = ?`, []any{id}
		if teamID != domain.AnyTeam {
			q += ` AND team_id = ?`
			args = append(args, teamID)
		}
		if err := s.db.updateWith(ctx, tx, "build", id, "deleting", q, args...); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM template_build_logs WHERE build_id = ?`, id); err != nil {
			return s.db.wrap(err, "deleting logs of build %s", id)
		}
		return nil
	})
}

// AppendBuildLogs stores lines as the build's lines first, first+1, ... in one
// transaction; a line number taken already is KindConflict.
func (s *Builds) AppendBuildLogs(ctx context.Context, buildID string, first int, lines []domain.BuildLogLine) error {
	if len(lines) == 0 {
		return nil
	}
	e := encoder{d: s.db.d}
	rows := make([][]any, len(lines))
	for i, l := range lines {
		rows[i] = []any{buildID, first + i, e.at("at", l.Time), l.Level, l.Message}
	}
	if e.err != nil {
		return s.db.wrap(e.err, "appending logs of build %s", buildID)
	}
	return s.db.inTx(ctx, "appending logs of build "+buildID, func(tx *tx) error {
		for _, r := range rows {
			if _, err := tx.exec(ctx, `INSERT INTO template_build_logs (build_id, seq, at, level, message)
				VALUES (?, ?, ?, ?, ?)`, r...); err != nil {
				if s.db.d.IsUniqueViolation(err) {
					return domain.Errorf(domain.KindConflict, "line %d of build %s is written already", r[1], buildID)
				}
				return s.db.wrap(err, "appending logs of build %s", buildID)
			}
		}
		return nil
	})
}

// ListBuildLogs returns up to limit lines of the build from line offset on.
func (s *Builds) ListBuildLogs(ctx context.Context, buildID string, offset, limit int) ([]domain.BuildLogLine, error) {
	if offset < 0 || limit <= 0 {
		return nil, domain.Invalid("offset", "offset must not be negative and limit must be positive")
	}
	rows, err := s.db.query(ctx, `SELECT at, level, message FROM template_build_logs WHERE build_id = ? AND seq >= ?
		ORDER BY seq LIMIT ?`, buildID, offset, limit)
	if err != nil {
		return nil, s.db.wrap(err, "reading logs of build %s", buildID)
	}
	defer rows.Close()
	out := []domain.BuildLogLine{}
	for rows.Next() {
		var l domain.BuildLogLine
		if err := rows.Scan(scanTime(s.db.d, &l.Time), &l.Level, &l.Message); err != nil {
			return nil, s.db.wrap(err, "reading logs of build %s", buildID)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, s.db.wrap(err, "reading logs of build %s", buildID)
	}
	return out, nil
}
