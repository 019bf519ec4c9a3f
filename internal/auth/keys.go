package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/warren-sh/warren/internal/domain"
)

var _ domain.KeyService = (*KeyService)(nil)

// TouchInterval is how stale a key's LastUsedAt may get before Authenticate writes it
// again. Writing on every request would put a write on the hot path of every call.
const TouchInterval = time.Minute

// maxNameLen bounds key names, which are labels shown in listings.
const maxNameLen = 100

// Client-facing messages. Each says what to do about it.
const (
	msgMissing   = "missing API key: send 'Authorization: Bearer sk_...'"
	msgMalformed = "malformed API key: a key is 'sk_' followed by 40 letters and digits; copy the whole key, or create a new one"
	msgRejected  = "invalid or revoked API key: use a current key, or ask a team admin to create one"
)

// KeyService implements domain.KeyService on a domain.Store. It is safe for concurrent
// use.
type KeyService struct {
	store domain.Store
	now   func() time.Time
	log   *slog.Logger
}

// Option configures a KeyService.
type Option func(*KeyService)

// WithClock sets the clock for creation, revocation and last-use times (default
// time.Now).
func WithClock(now func() time.Time) Option { return func(s *KeyService) { s.now = now } }

// WithLogger sets the logger for failures that do not fail a request, such as not
// recording a key's last use (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *KeyService) { s.log = l } }

// NewKeyService returns a KeyService on store.
func NewKeyService(store domain.Store, opts ...Option) (*KeyService, error) {
	if store == nil {
		return nil, errors.New("auth: NewKeyService needs a store")
	}
	s := &KeyService{store: store}
	for _, o := range opts {
		o(s)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("subsystem", "auth")
	return s, nil
}

// Authenticate resolves a secret to its key's principal. An empty, malformed, unknown
// or revoked secret is a KindUnauthorized error; a store failure is returned as is, so
// that an outage is not reported to clients as a bad key.
func (s *KeyService) Authenticate(ctx context.Context, secret string) (domain.Principal, error) {
	k, err := s.lookup(ctx, secret)
	if err != nil {
		return domain.Principal{}, err
	}
	if now := s.now(); now.Sub(k.LastUsedAt) >= TouchInterval {
		// Best effort: failing to record the last use must not lock callers out.
		if err := s.store.TouchAPIKey(ctx, k.ID, now); err != nil {
			s.log.WarnContext(ctx, "recording API key use", "key_id", k.ID, "err", err)
		}
	}
	return domain.Principal{TeamID: k.TeamID, KeyID: k.ID, Admin: k.Admin}, nil
}

// lookup returns the live key whose secret this is.
func (s *KeyService) lookup(ctx context.Context, secret string) (*domain.APIKey, error) {
	secret = strings.TrimSpace(secret)
	switch {
	case secret == "":
		return nil, domain.Errorf(domain.KindUnauthorized, msgMissing)
	case !wellFormed(secret):
		return nil, domain.Errorf(domain.KindUnauthorized, msgMalformed)
	}
	k, err := s.store.GetAPIKeyByHash(ctx, Hash(secret))
	if domain.IsKind(err, domain.KindNotFound) {
		return nil, domain.Errorf(domain.KindUnauthorized, msgRejected)
	}
	if err != nil {
		return nil, fmt.Errorf("authenticating API key: %w", err)
	}
	if !k.RevokedAt.IsZero() {
		return nil, domain.Errorf(domain.KindUnauthorized, msgRejected)
	}
	return k, nil
}

// CreateKey makes a key for the principal's team and returns it with its secret, which
// exists only in this return value. New keys are never admin keys: those come only
// from Bootstrap. The returned key's Hash is cleared; it never leaves this package.
func (s *KeyService) CreateKey(ctx context.Context, p domain.Principal, name string) (*domain.APIKey, string, error) {
	if err := needTeam(p); err != nil {
		return nil, "", err
	}
	name = strings.TrimSpace(name)
	if err := validName(name); err != nil {
		return nil, "", err
	}
	secret, prefix := NewSecret()
	k := &domain.APIKey{
		ID:        domain.NewID(20),
		TeamID:    p.TeamID,
		Name:      name,
		Prefix:    prefix,
		Hash:      Hash(secret),
		CreatedAt: s.now().UTC(),
	}
	if err := s.store.CreateAPIKey(ctx, k); err != nil {
		return nil, "", fmt.Errorf("creating API key %q: %w", name, err)
	}
	k.Hash = ""
	return k, secret, nil
}

// ListKeys returns the principal's team's keys, revoked ones included, without hashes.
func (s *KeyService) ListKeys(ctx context.Context, p domain.Principal) ([]*domain.APIKey, error) {
	if err := needTeam(p); err != nil {
		return nil, err
	}
	keys, err := s.store.ListAPIKeys(ctx, p.TeamID)
	if err != nil {
		return nil, fmt.Errorf("listing API keys: %w", err)
	}
	for _, k := range keys {
		k.Hash = ""
	}
	return keys, nil
}

// RevokeKey revokes one of the principal's team's keys; another team's key is not
// found. A key may revoke itself.
func (s *KeyService) RevokeKey(ctx context.Context, p domain.Principal, id string) error {
	if err := needTeam(p); err != nil {
		return err
	}
	if err := s.store.RevokeAPIKey(ctx, p.TeamID, id, s.now().UTC()); err != nil {
		return fmt.Errorf("revoking API key %s: %w", id, err)
	}
	return nil
}

// needTeam rejects a principal that no authentication produced.
func needTeam(p domain.Principal) error {
	if p.TeamID == "" {
		return domain.Errorf(domain.KindUnauthorized, msgMissing)
	}
	return nil
}

func validName(name string) error {
	if name == "" {
		return domain.Invalid("name", "a key needs a name: give it a short label such as 'ci' or 'laptop'")
	}
	if len(name) > maxNameLen {
		return domain.Invalid("name", "key name is %d bytes long: keep it to %d", len(name), maxNameLen)
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return domain.Invalid("name", "key name contains control characters: use printable text")
	}
	return nil
}
