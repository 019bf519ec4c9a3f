package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/ratelimit"
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

// Store is the part of domain.Store that auth reads and writes: teams, users, keys and
// the audit log, and the quota usage a team report shows.
type Store interface {
	domain.TeamStore
	domain.UserStore
	domain.KeyStore
	domain.AuditStore
	TeamUsage(ctx context.Context, teamID string) (domain.QuotaUsage, error)
}

// KeyService implements domain.KeyService and domain.TeamService on a Store: API keys,
// console sessions, teams, users and the audit log. It is safe for concurrent use.
type KeyService struct {
	store        Store
	now          func() time.Time
	log          *slog.Logger
	signer       *Signer
	sessionTTL   time.Duration
	defaultQuota domain.Quota
	defaultPlan  string
	checkPlan    func(id string) error
	runtimes     []string // what a team's allowed_runtimes may name; nil: any name
	teams        teamCache
	// throttle, when set, limits login attempts per account (loginAttempts per
	// loginWindow).
	throttle      ratelimit.Limiter
	loginAttempts int64
	loginWindow   time.Duration
}

// Login throttle defaults: each account (email) may try this many logins per window,
// after an idle window; then one more every window/attempts (GCRA).
const (
	DefaultLoginAttempts = 10
	DefaultLoginWindow   = 15 * time.Minute
)

// Option configures a KeyService.
type Option func(*KeyService)

// WithClock sets the clock for creation, revocation and last-use times (default
// time.Now).
func WithClock(now func() time.Time) Option { return func(s *KeyService) { s.now = now } }

// WithLogger sets the logger for failures that do not fail a request, such as not
// recording a key's last use (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *KeyService) { s.log = l } }

// WithSessions enables console logins: tokens signed by signer, valid for ttl (<= 0:
// DefaultSessionTTL). Without it Login answers that logins are off.
func WithSessions(signer *Signer, ttl time.Duration) Option {
	return func(s *KeyService) { s.signer, s.sessionTTL = signer, ttl }
}

// WithTeamDefaults sets the quota and plan new teams get when the request leaves them
// out, and the check a plan id must pass (nil: any id).
func WithTeamDefaults(q domain.Quota, plan string, checkPlan func(id string) error) Option {
	return func(s *KeyService) { s.defaultQuota, s.defaultPlan, s.checkPlan = q, plan, checkPlan }
}

// WithLoginThrottle limits login attempts per account with l, shared by every replica
// when l is: attempts per window (<= 0: DefaultLoginAttempts, DefaultLoginWindow),
// counted by lower-cased email whether or not the account exists and whatever the
// client's address. A nil l leaves logins unthrottled here (the API still limits per
// address).
func WithLoginThrottle(l ratelimit.Limiter, attempts int64, window time.Duration) Option {
	return func(s *KeyService) { s.throttle, s.loginAttempts, s.loginWindow = l, attempts, window }
}

// NewKeyService returns a KeyService on store.
func NewKeyService(store Store, opts ...Option) (*KeyService, error) {
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
	if s.sessionTTL <= 0 {
		s.sessionTTL = DefaultSessionTTL
	}
	if s.loginAttempts <= 0 {
		s.loginAttempts = DefaultLoginAttempts
	}
	if s.loginWindow <= 0 {
		s.loginWindow = DefaultLoginWindow
	}
	s.log = s.log.With(logkey.Subsystem, "auth")
	s.teams.ttl = teamCacheTTL
	return s, nil
}

// Authenticate resolves a secret (an API key "sk_..." or a console session "ws_...") to
// its principal. An empty, malformed, unknown, expired or revoked secret is a
// KindUnauthorized error; a store failure is returned as is, so that an outage is not
// reported to clients as a bad key.
func (s *KeyService) Authenticate(ctx context.Context, secret string) (domain.Principal, error) {
	secret = strings.TrimSpace(secret)
	if strings.HasPrefix(secret, SessionPrefix) {
		return s.authenticateSession(ctx, secret)
	}
	k, err := s.lookup(ctx, secret)
	if err != nil {
		return domain.Principal{}, err
	}
	now := s.now()
	if !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
		return domain.Principal{}, domain.Errorf(domain.KindUnauthorized,
			"API key expired at %s: create a new key", k.ExpiresAt.UTC().Format(time.RFC3339))
	}
	scopes := k.Scopes
	if len(scopes) == 0 {
		// Keys made before scopes existed had full access to their team.
		scopes = []domain.Scope{domain.ScopeAdmin}
	}
	if k.UserID != "" {
		// A user's key is worth no more than the user is now: nothing once the user is
		// deleted or disabled, and only what the user's current role allows.
		if k.Creator == nil || !k.Creator.DisabledAt.IsZero() {
			return domain.Principal{}, domain.Errorf(domain.KindUnauthorized,
				"API key's creator no longer exists or is disabled: ask a team admin for a new key")
		}
		scopes = domain.Intersect(scopes, domain.RoleScopes(k.Creator.Role))
	}
	if now.Sub(k.LastUsedAt) >= TouchInterval {
		// Best effort: failing to record the last use must not lock callers out.
		if err := s.store.TouchAPIKey(ctx, k.ID, now); err != nil {
			s.log.WarnContext(ctx, "recording API key use", logkey.KeyID, k.ID, logkey.Err, err)
		}
	}
	team, err := s.teams.get(ctx, s.store, k.TeamID, now)
	if err != nil {
		return domain.Principal{}, fmt.Errorf("authenticating API key: %w", err)
	}
	return domain.Principal{TeamID: k.TeamID, KeyID: k.ID, UserID: k.UserID, Admin: k.Admin,
		Scopes: scopes, RequestsPerMinute: team.Quota.RequestsPerMinute}, nil
}

// lookup returns the live key whose secret this is.
func (s *KeyService) lookup(ctx context.Context, secret string) (*domain.APIKey, error) {
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

// CreateKey makes a key and returns it with its secret, which exists only in this return
// value. Keys get the creator's scopes unless fewer are asked for, and never more; a
// platform admin may create keys for any team. New keys are never platform admin keys:
// those come only from Bootstrap. The returned key's Hash is cleared.
func (s *KeyService) CreateKey(ctx context.Context, p domain.Principal, spec domain.KeySpec) (*domain.APIKey, string, error) {
	if err := needTeam(p); err != nil {
		return nil, "", err
	}
	if err := p.Need(domain.ScopeKeysWrite); err != nil {
		return nil, "", err
	}
	name := strings.TrimSpace(spec.Name)
	if err := validName(name); err != nil {
		return nil, "", err
	}
	teamID := p.TeamID
	if spec.TeamID != "" && spec.TeamID != p.TeamID {
		if !p.Admin {
			return nil, "", domain.NotFound("team", spec.TeamID)
		}
		if _, err := s.store.GetTeam(ctx, spec.TeamID); err != nil {
			return nil, "", fmt.Errorf("creating API key: %w", err)
		}
		teamID = spec.TeamID
	}
	scopes, err := keyScopes(p, spec.Scopes, teamID)
	if err != nil {
		return nil, "", err
	}
	now := s.now().UTC()
	if !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(now) {
		return nil, "", domain.Invalid("expires_at", "expiry %s is not in the future: give a later time or a positive duration",
			spec.ExpiresAt.UTC().Format(time.RFC3339))
	}
	secret, prefix := NewSecret()
	k := &domain.APIKey{
		ID:        domain.NewID(20),
		TeamID:    teamID,
		Name:      name,
		Prefix:    prefix,
		Hash:      Hash(secret),
		Scopes:    scopes,
		UserID:    p.UserID,
		CreatedAt: now,
		ExpiresAt: spec.ExpiresAt.UTC(),
	}
	if spec.ExpiresAt.IsZero() {
		k.ExpiresAt = time.Time{}
	}
	if err := s.store.CreateAPIKey(ctx, k); err != nil {
		return nil, "", fmt.Errorf("creating API key %q: %w", name, err)
	}
	k.Hash = ""
	return k, secret, nil
}

// keyScopes validates the scopes asked for a new key: known, and none beyond what the
// creator holds. No scopes means the creator's own.
func keyScopes(p domain.Principal, asked []domain.Scope, teamID string) ([]domain.Scope, error) {
	if len(asked) == 0 {
		if p.Admin || teamID != p.TeamID {
			return []domain.Scope{domain.ScopeAdmin}, nil
		}
		return append([]domain.Scope(nil), p.Scopes...), nil
	}
	var out []domain.Scope
	for _, sc := range asked {
		if !sc.Valid() {
			return nil, domain.Invalid("scopes", "unknown scope %q: use one of %s", sc, scopeList())
		}
		if !p.Admin && !domain.HasScope(p.Scopes, sc) {
			return nil, domain.Errorf(domain.KindForbidden, "cannot give a key the %q scope: your own credential lacks it", sc)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

func scopeList() string {
	names := make([]string, len(domain.AllScopes))
	for i, s := range domain.AllScopes {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// ListKeys returns the principal's team's keys, revoked ones included, without hashes.
func (s *KeyService) ListKeys(ctx context.Context, p domain.Principal) ([]*domain.APIKey, error) {
	if err := needTeam(p); err != nil {
		return nil, err
	}
	if err := p.Need(domain.ScopeKeysRead); err != nil {
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
	if p.KeyID == "" || id != p.KeyID {
		if err := p.Need(domain.ScopeKeysWrite); err != nil {
			return err
		}
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

var _ domain.TeamService = (*KeyService)(nil)
