package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

var _ domain.KeyService = (*Keys)(nil)

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

// Keys implements domain.KeyService: a team's API keys, and Authenticate, which every
// request passes through, for keys and (through Sessions) console sessions.
type Keys struct {
	*core
	sessions *Sessions
}

// Authenticate resolves a secret (an API key "sk_..." or a console session "ws_...") to
// its principal. An empty, malformed, unknown, expired or revoked secret is a
// KindUnauthorized error; a store failure is returned as is, so that an outage is not
// reported to clients as a bad key.
func (s *Keys) Authenticate(ctx context.Context, secret string) (domain.Principal, error) {
	secret = strings.TrimSpace(secret)
	if strings.HasPrefix(secret, SessionPrefix) {
		return s.sessions.authenticate(ctx, secret)
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
func (c *core) lookup(ctx context.Context, secret string) (*domain.APIKey, error) {
	switch {
	case secret == "":
		return nil, domain.Errorf(domain.KindUnauthorized, msgMissing)
	case !wellFormed(secret):
		return nil, domain.Errorf(domain.KindUnauthorized, msgMalformed)
	}
	k, err := c.store.GetAPIKeyByHash(ctx, Hash(secret))
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
func (s *Keys) CreateKey(ctx context.Context, p domain.Principal, spec domain.KeySpec) (*domain.APIKey, string, error) {
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
func (s *Keys) ListKeys(ctx context.Context, p domain.Principal) ([]*domain.APIKey, error) {
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
func (s *Keys) RevokeKey(ctx context.Context, p domain.Principal, id string) error {
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
