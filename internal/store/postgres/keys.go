package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warren-sh/warren/internal/domain"
)

const keyColumns = `id, team_id, name, prefix, hash, admin, created_at, last_used_at, revoked_at,
	scopes, user_id, expires_at`

// CreateAPIKey inserts k. A taken id or hash is KindConflict; an unknown team is
// KindNotFound.
func (s *Store) CreateAPIKey(ctx context.Context, k *domain.APIKey) error {
	var e encoder
	args := []any{k.ID, k.TeamID, k.Name, k.Prefix, k.Hash, k.Admin,
		e.time("created_at", k.CreatedAt), e.time("last_used_at", k.LastUsedAt), e.time("revoked_at", k.RevokedAt),
		e.scopes(k.Scopes), k.UserID, e.time("expires_at", k.ExpiresAt)}
	if e.err != nil {
		return fmt.Errorf("creating API key %s: %w", k.ID, e.err)
	}
	_, err := s.exec(ctx, `INSERT INTO api_keys (`+keyColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, args...)
	switch {
	case isUniqueViolation(err):
		return domain.Errorf(domain.KindConflict, "API key %q (or its hash) already exists", k.ID)
	case isForeignKeyViolation(err):
		return domain.NotFound("team", k.TeamID)
	case err != nil:
		return fmt.Errorf("creating API key %s: %w", k.ID, classify(err))
	}
	return nil
}

func scanKey(r rowScanner) (*domain.APIKey, error) {
	var k domain.APIKey
	var created, used, revoked, expires *time.Time
	var scopes []byte
	if err := r.Scan(&k.ID, &k.TeamID, &k.Name, &k.Prefix, &k.Hash, &k.Admin, &created, &used, &revoked,
		&scopes, &k.UserID, &expires); err != nil {
		return nil, err
	}
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = decodeTime(created), decodeTime(used), decodeTime(revoked)
	k.ExpiresAt = decodeTime(expires)
	var err error
	if k.Scopes, err = decodeScopes(scopes); err != nil {
		return nil, fmt.Errorf("key %s: %w", k.ID, err)
	}
	return &k, nil
}

// GetAPIKeyByHash returns the key with that hash, revoked or not.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash string) (*domain.APIKey, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		// The hash is not secret, but it is not a useful thing to echo either.
		return nil, domain.Errorf(domain.KindNotFound, "API key not found")
	}
	if err != nil {
		return nil, fmt.Errorf("getting API key by hash: %w", classify(err))
	}
	return k, nil
}

// ListAPIKeys returns the team's keys, revoked ones included, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, teamID string) ([]*domain.APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE team_id = $1
		ORDER BY created_at NULLS FIRST, id`, teamID)
	if err != nil {
		return nil, fmt.Errorf("listing API keys of team %s: %w", teamID, classify(err))
	}
	keys, err := collect(rows, scanKey)
	if err != nil {
		return nil, fmt.Errorf("listing API keys of team %s: %w", teamID, classify(err))
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
	n, err := s.exec(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND team_id = $3`,
		revoked, id, teamID)
	if err != nil {
		return fmt.Errorf("revoking API key %s: %w", id, classify(err))
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
	n, err := s.exec(ctx, `UPDATE api_keys SET last_used_at = $1 WHERE id = $2`, used, id)
	if err != nil {
		return fmt.Errorf("touching API key %s: %w", id, classify(err))
	}
	if n == 0 {
		return domain.NotFound("API key", id)
	}
	return nil
}
