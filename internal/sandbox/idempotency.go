package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// idempotencyTTL is how long a create's Idempotency-Key is remembered.
const idempotencyTTL = 24 * time.Hour

// idempotencyPoll is how often a retry waiting for a create in progress looks again.
const idempotencyPoll = 100 * time.Millisecond

// idempotent is the Service's creates with an Idempotency-Key (its methods are the
// Service's).
type idempotent struct{ *Service }

// createLease is how long a create may keep its Idempotency-Key reserved without a
// sandbox: past it, its server is taken for dead and a retry creates in its place. It
// is also how long a retry waits for a create in progress.
func (s idempotent) createLease() time.Duration { return s.cfg.StartTimeout + time.Minute }

// create creates with req.IdempotencyKey: the first request with the team's key
// reserves it (atomically across replicas) and creates; a retry with the same request
// gets that sandbox as it is now, waiting up to createLease while it is being created;
// a request that differs is KindConflict. A create that fails releases the key, so that
// a retry creates.
func (s idempotent) create(ctx context.Context, p domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return nil, err
	}
	key := req.IdempotencyKey
	if err := domain.CheckIdempotencyKey(key); err != nil {
		return nil, err
	}
	req.IdempotencyKey = ""
	hash, err := requestHash(req)
	if err != nil {
		return nil, err
	}
	lease := s.createLease()
	deadline := s.cfg.Now().Add(lease)
	for {
		now := s.cfg.Now().UTC()
		mine := &domain.IdempotencyKey{TeamID: p.TeamID, Key: key, RequestHash: hash, Token: newIdempotencyToken(), CreatedAt: now}
		held, err := s.cfg.Store.ReserveIdempotencyKey(ctx, mine, now.Add(-lease), now.Add(-idempotencyTTL))
		if err != nil {
			return nil, fmt.Errorf("reserving Idempotency-Key: %w", err)
		}
		switch {
		case held == nil:
			return s.createReserved(ctx, p, req, mine)
		case held.RequestHash != hash:
			return nil, domain.Errorf(domain.KindConflict, "Idempotency-Key %q was already used with a different request; send a new key for a new request, or the same request to get its sandbox", key)
		case held.SandboxID != "":
			return s.get(ctx, p, held.SandboxID)
		case !s.cfg.Now().Before(deadline):
			return nil, domain.Errorf(domain.KindConflict, "the create with Idempotency-Key %q is still in progress; retry the same request in a few seconds", key)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(idempotencyPoll):
		}
	}
}

// createReserved creates under the reservation mine and records the sandbox on it, or
// releases it when the create fails.
func (s idempotent) createReserved(ctx context.Context, p domain.Principal, req domain.CreateSandbox, mine *domain.IdempotencyKey) (*domain.Sandbox, error) {
	sb, err := s.Create(ctx, p, req) // req has no key: the plain create
	bg := context.WithoutCancel(ctx)
	if err != nil {
		if rerr := s.cfg.Store.ReleaseIdempotencyKey(bg, mine); rerr != nil {
			s.log.Error("releasing Idempotency-Key of a failed create", logkey.TeamID, p.TeamID, logkey.Err, rerr)
		}
		return nil, err
	}
	mine.SandboxID = sb.ID
	if err := s.cfg.Store.CompleteIdempotencyKey(bg, mine); err != nil {
		// The sandbox exists; the caller gets it. A retry may create another.
		s.log.Error("recording the sandbox of an Idempotency-Key", logkey.SandboxID, sb.ID, logkey.Err, err)
	}
	return sb, nil
}

// requestHash identifies a create request (without its key): encoding/json writes
// struct fields in order and map keys sorted, so equal requests hash alike.
func requestHash(req domain.CreateSandbox) (string, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("hashing create request: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func newIdempotencyToken() string { return domain.NewID(16) }

// expireIdempotencyKeys removes the keys older than idempotencyTTL.
func (s idempotent) expireIdempotencyKeys(ctx context.Context) (int64, error) {
	return s.cfg.Store.DeleteIdempotencyKeys(ctx, s.cfg.Now().Add(-idempotencyTTL))
}
