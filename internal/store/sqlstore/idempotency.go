package sqlstore

import (
	"context"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Idempotency is the domain.IdempotencyStore.
type Idempotency struct{ db *db }

var _ domain.IdempotencyStore = (*Idempotency)(nil)

const idempotencyColumns = `team_id, idem_key, request_hash, token, sandbox_id, created_at`

// ReserveIdempotencyKey is one upsert: the INSERT, or the UPDATE of a record that no
// longer holds its key (expired, or pending past pendingBefore). The row is locked by
// the statement, so of two racing callers exactly one changes it (one row affected).
// A caller that changed nothing reads the holder; if the holder was released between
// the two statements, it tries again.
func (s *Idempotency) ReserveIdempotencyKey(ctx context.Context, k *domain.IdempotencyKey, pendingBefore, expiredBefore time.Time) (*domain.IdempotencyKey, error) {
	if err := needTeam(k.TeamID); err != nil {
		return nil, err
	}
	e := encoder{d: s.db.d}
	created := e.sortTime("created_at", k.CreatedAt)
	pending, expired := s.db.d.ClampTime(pendingBefore), s.db.d.ClampTime(expiredBefore)
	if e.err != nil {
		return nil, s.db.wrap(e.err, "reserving idempotency key")
	}
	for range 3 {
		n, err := s.db.exec(ctx, `INSERT INTO idempotency_keys (`+idempotencyColumns+`) VALUES (?, ?, ?, ?, '', ?)
			ON CONFLICT (team_id, idem_key) DO UPDATE SET request_hash = excluded.request_hash, token = excluded.token,
				sandbox_id = '', created_at = excluded.created_at
			WHERE idempotency_keys.created_at < ? OR (idempotency_keys.sandbox_id = '' AND idempotency_keys.created_at < ?)`,
			k.TeamID, k.Key, k.RequestHash, k.Token, created, expired, pending)
		if err != nil {
			return nil, s.db.insertErr(err, k.TeamID, domain.Errorf(domain.KindConflict, "idempotency key taken"), "reserving idempotency key")
		}
		if n == 1 {
			return nil, nil
		}
		held, err := s.GetIdempotencyKey(ctx, k.TeamID, k.Key)
		if domain.IsKind(err, domain.KindNotFound) {
			continue
		}
		return held, err
	}
	return nil, domain.Errorf(domain.KindConflict, "the Idempotency-Key is being reserved and released by concurrent requests; retry")
}

// GetIdempotencyKey implements domain.IdempotencyStore.
func (s *Idempotency) GetIdempotencyKey(ctx context.Context, teamID, key string) (*domain.IdempotencyKey, error) {
	if err := needTeam(teamID); err != nil {
		return nil, err
	}
	return get(ctx, s.db, scanIdempotencyKey, "idempotency key", key,
		`SELECT `+idempotencyColumns+` FROM idempotency_keys WHERE team_id = ? AND idem_key = ?`, teamID, key)
}

// CompleteIdempotencyKey implements domain.IdempotencyStore.
func (s *Idempotency) CompleteIdempotencyKey(ctx context.Context, k *domain.IdempotencyKey) error {
	n, err := s.db.exec(ctx, `UPDATE idempotency_keys SET sandbox_id = ? WHERE team_id = ? AND idem_key = ? AND token = ? AND sandbox_id = ''`,
		k.SandboxID, k.TeamID, k.Key, k.Token)
	if err != nil {
		return s.db.wrap(err, "completing idempotency key")
	}
	if n == 0 {
		return domain.Errorf(domain.KindConflict, "the Idempotency-Key reservation was taken over before sandbox %s was recorded", k.SandboxID)
	}
	return nil
}

// ReleaseIdempotencyKey implements domain.IdempotencyStore.
func (s *Idempotency) ReleaseIdempotencyKey(ctx context.Context, k *domain.IdempotencyKey) error {
	_, err := s.db.exec(ctx, `DELETE FROM idempotency_keys WHERE team_id = ? AND idem_key = ? AND token = ? AND sandbox_id = ''`,
		k.TeamID, k.Key, k.Token)
	if err != nil {
		return s.db.wrap(err, "releasing idempotency key")
	}
	return nil
}

// DeleteIdempotencyKeys implements domain.IdempotencyStore.
func (s *Idempotency) DeleteIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.db.exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < ?`, s.db.d.ClampTime(before))
	if err != nil {
		return 0, s.db.wrap(err, "deleting expired idempotency keys")
	}
	return n, nil
}

func scanIdempotencyKey(d Dialect, r rowScanner) (*domain.IdempotencyKey, error) {
	var k domain.IdempotencyKey
	if err := r.Scan(&k.TeamID, &k.Key, &k.RequestHash, &k.Token, &k.SandboxID, scanTime(d, &k.CreatedAt)); err != nil {
		return nil, err
	}
	return &k, nil
}
