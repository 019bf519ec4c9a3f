package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Keys is the domain.KeyStore.
type Keys struct{ db *db }

var _ domain.KeyStore = (*Keys)(nil)

const keyColumns = `id, team_id, name, prefix, hash, admin, created_at, last_used_at, revoked_at,
	scopes, user_id, expires_at`

// keyWithCreator selects a key (k) with its creating user's role and disabled time (u),
// both NULL when the key has no creator or the creator is gone.
const keyWithCreator = `SELECT k.id, k.team_id, k.name, k.prefix, k.hash, k.admin, k.created_at, k.last_used_at,
	k.revoked_at, k.scopes, k.user_id, k.expires_at, u.role, u.disabled_at
	FROM api_keys k LEFT JOIN users u ON u.id = k.user_id AND u.team_id = k.team_id`

// CreateAPIKey inserts k. A taken id or hash is KindConflict; an unknown team is
// KindNotFound.
func (s *Keys) CreateAPIKey(ctx context.Context, k *domain.APIKey) error {
	e := encoder{d: s.db.d}
	args := []any{k.ID, k.TeamID, k.Name, k.Prefix, k.Hash, k.Admin,
		e.time("created_at", k.CreatedAt), e.time("last_used_at", k.LastUsedAt), e.time("revoked_at", k.RevokedAt),
		e.scopes(k.Scopes), k.UserID, e.time("expires_at", k.ExpiresAt)}
	if e.err != nil {
		return s.db.wrap(e.err, "creating API key %s", k.ID)
	}
	_, err := s.db.exec(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES (`+marks(12)+`)`, args...)
	if err != nil {
		return s.db.insertErr(err, k.TeamID, domain.Errorf(domain.KindConflict, "API key %q (or its hash) already exists", k.ID),
			"creating API key %s", k.ID)
	}
	return nil
}

func scanKey(d Dialect, r rowScanner) (*domain.APIKey, error) {
	var k domain.APIKey
	var role sql.NullString
	var c domain.KeyCreator
	if err := r.Scan(&k.ID, &k.TeamID, &k.Name, &k.Prefix, &k.Hash, &k.Admin, scanTime(d, &k.CreatedAt),
		scanTime(d, &k.LastUsedAt), scanTime(d, &k.RevokedAt), scanJSON(&k.Scopes), &k.UserID,
		scanTime(d, &k.ExpiresAt), &role, scanTime(d, &c.DisabledAt)); err != nil {
		return nil, err
	}
	if len(k.Scopes) == 0 {
		k.Scopes = nil // an empty list grants nothing, like none
	}
	if role.Valid {
		c.Role = domain.Role(role.String)
		k.Creator = &c
	}
	return &k, nil
}

// GetAPIKeyByHash returns the key with that hash, revoked or not.
func (s *Keys) GetAPIKeyByHash(ctx context.Context, hash string) (*domain.APIKey, error) {
	k, err := scanKey(s.db.d, s.db.queryRow(ctx, keyWithCreator+` WHERE k.hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		// The hash is not secret, but it is not a useful thing to echo either.
		return nil, domain.Errorf(domain.KindNotFound, "API key not found")
	}
	if err != nil {
		return nil, s.db.wrap(err, "getting API key by hash")
	}
	return k, nil
}

// ListAPIKeys returns the team's keys, revoked ones included, oldest first, each with
// its Creator.
func (s *Keys) ListAPIKeys(ctx context.Context, teamID string) ([]*domain.APIKey, error) {
	return list(ctx, s.db, scanKey, "listing API keys of team "+teamID,
		keyWithCreator+` WHERE k.team_id = ? ORDER BY k.created_at NULLS FIRST, k.id`, teamID)
}

// RevokeAPIKey marks the team's key revoked at `at`. Revoking a revoked key succeeds
// and keeps the first revocation time.
func (s *Keys) RevokeAPIKey(ctx context.Context, teamID, id string, at time.Time) error {
	e := encoder{d: s.db.d}
	revoked := e.time("revoked_at", at)
	if e.err != nil {
		return s.db.wrap(e.err, "revoking API key %s", id)
	}
	return s.db.update(ctx, "API key", id, "revoking",
		`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND team_id = ?`, revoked, id, teamID)
}

// TouchAPIKey records that the key was used at `at`.
func (s *Keys) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	e := encoder{d: s.db.d}
	used := e.time("last_used_at", at)
	if e.err != nil {
		return s.db.wrap(e.err, "touching API key %s", id)
	}
	return s.db.update(ctx, "API key", id, "touching", `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, used, id)
}
