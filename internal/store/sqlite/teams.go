package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
	_, err := s.exec(ctx, `INSERT INTO teams (id, name, created_at) VALUES (?, ?, ?)`, t.ID, t.Name, created)
	if isUniqueViolation(err) {
		return domain.Errorf(domain.KindConflict, "team %q already exists", t.ID)
	}
	if err != nil {
		return fmt.Errorf("creating team %s: %w", t.ID, err)
	}
	return nil
}

const teamColumns = `id, name, created_at`

func scanTeam(r rowScanner) (*domain.Team, error) {
	var t domain.Team
	var created sql.NullInt64
	if err := r.Scan(&t.ID, &t.Name, &created); err != nil {
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

// CreateAPIKey inserts k. A taken id or hash is KindConflict; an unknown team is
// KindNotFound.
func (s *Store) CreateAPIKey(ctx context.Context, k *domain.APIKey) error {
	var e encoder
	args := []any{k.ID, k.TeamID, k.Name, k.Prefix, k.Hash, boolInt(k.Admin),
		e.time("created_at", k.CreatedAt), e.time("last_used_at", k.LastUsedAt), e.time("revoked_at", k.RevokedAt)}
	if e.err != nil {
		return fmt.Errorf("creating API key %s: %w", k.ID, e.err)
	}
	_, err := s.exec(ctx, `INSERT INTO api_keys
		(id, team_id, name, prefix, hash, admin, created_at, last_used_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	switch {
	case isUniqueViolation(err):
		return domain.Errorf(domain.KindConflict, "API key %q (or its hash) already exists", k.ID)
	case isForeignKeyViolation(err):
		return domain.NotFound("team", k.TeamID)
	case err != nil:
		return fmt.Errorf("creating API key %s: %w", k.ID, err)
	}
	return nil
}

const keyColumns = `id, team_id, name, prefix, hash, admin, created_at, last_used_at, revoked_at`

func scanKey(r rowScanner) (*domain.APIKey, error) {
	var k domain.APIKey
	var created, used, revoked sql.NullInt64
	if err := r.Scan(&k.ID, &k.TeamID, &k.Name, &k.Prefix, &k.Hash, &k.Admin, &created, &used, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = decodeTime(created), decodeTime(used), decodeTime(revoked)
	return &k, nil
}

// GetAPIKeyByHash returns the key with that hash, revoked or not.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash string) (*domain.APIKey, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		// The hash is not secret, but it is not a useful thing to echo either.
		return nil, domain.Errorf(domain.KindNotFound, "API key not found")
	}
	if err != nil {
		return nil, fmt.Errorf("getting API key by hash: %w", err)
	}
	return k, nil
}

// ListAPIKeys returns the team's keys, revoked ones included, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, teamID string) ([]*domain.APIKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE team_id = ? ORDER BY created_at, id`, teamID)
	if err != nil {
		return nil, fmt.Errorf("listing API keys of team %s: %w", teamID, err)
	}
	keys, err := collect(rows, scanKey)
	if err != nil {
		return nil, fmt.Errorf("listing API keys of team %s: %w", teamID, err)
	}
	return keys, nil
}

// RevokeAPIKey marks the team's key revoked at `at`. Revoking a revoked key succeeds
// and keeps the first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, teamID, id string, at time.Time) error {
	var e encoder
	revoked := e.time("revoked_at", at)
	if e.err != nil {
		return fmt.Errorf("revoking API key %s: %w", id, e.err)
	}
	n, err := s.exec(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND team_id = ?`,
		revoked, id, teamID)
	if err != nil {
		return fmt.Errorf("revoking API key %s: %w", id, err)
	}
	if n == 0 {
		return domain.NotFound("API key", id)
	}
	return nil
}

// TouchAPIKey records that the key was used at `at`.
func (s *Store) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	var e encoder
	used := e.time("last_used_at", at)
	if e.err != nil {
		return fmt.Errorf("touching API key %s: %w", id, e.err)
	}
	n, err := s.exec(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, used, id)
	if err != nil {
		return fmt.Errorf("touching API key %s: %w", id, err)
	}
	if n == 0 {
		return domain.NotFound("API key", id)
	}
	return nil
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
