package domain

import (
	"context"
	"time"
)

// MaxIdempotencyKeyLen is the longest Idempotency-Key a create accepts.
const MaxIdempotencyKeyLen = 255

// IdempotencyKey records a create made with an Idempotency-Key: the team's key, a hash
// of the request that first used it, the reservation's Token (which tells its holder
// apart from a later taker), and the sandbox it created ("" while the create is in
// progress).
type IdempotencyKey struct {
	TeamID      string
	Key         string
	RequestHash string
	Token       string
	SandboxID   string
	CreatedAt   time.Time
}

// IdempotencyStore remembers creates by their Idempotency-Key, so that a retry (to this
// server or another replica) gets the first create's sandbox instead of a second one.
type IdempotencyStore interface {
	// ReserveIdempotencyKey records k (its SandboxID "") unless the team already holds
	// k.Key, and returns nil; otherwise it returns the record that holds the key. A
	// record created before expiredBefore, or still without a sandbox and created before
	// pendingBefore (its creator died), does not hold the key: k replaces it. Two
	// callers racing on one key never both get nil.
	ReserveIdempotencyKey(ctx context.Context, k *IdempotencyKey, pendingBefore, expiredBefore time.Time) (*IdempotencyKey, error)
	// GetIdempotencyKey returns the team's record of key, KindNotFound when none.
	GetIdempotencyKey(ctx context.Context, teamID, key string) (*IdempotencyKey, error)
	// CompleteIdempotencyKey sets k.SandboxID on the record k reserved (same Token,
	// still without a sandbox); a record no longer k's is KindConflict.
	CompleteIdempotencyKey(ctx context.Context, k *IdempotencyKey) error
	// ReleaseIdempotencyKey removes the record k reserved if it has no sandbox yet (its
	// create failed: a retry may create).
	ReleaseIdempotencyKey(ctx context.Context, k *IdempotencyKey) error
	// DeleteIdempotencyKeys removes the records created before before and returns how
	// many it removed.
	DeleteIdempotencyKeys(ctx context.Context, before time.Time) (int64, error)
}

// CheckIdempotencyKey returns nil for a valid Idempotency-Key (1 to 255 printable
// ASCII characters), else a KindInvalid error naming the header.
func CheckIdempotencyKey(key string) error {
	if key == "" || len(key) > MaxIdempotencyKeyLen {
		return Invalid("Idempotency-Key", "the Idempotency-Key header must be 1 to %d characters, got %d; use a UUID or another unique string per logical request", MaxIdempotencyKeyLen, len(key))
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c > 0x7e {
			return Invalid("Idempotency-Key", "the Idempotency-Key header must be printable ASCII, got byte 0x%02x at position %d; use a UUID or another unique string per logical request", c, i)
		}
	}
	return nil
}
