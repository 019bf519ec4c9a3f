package auth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

const msgBadLogin = "wrong email or password: check both, or ask a team admin to reset the password"

// dummyHash is checked against when the email is unknown, so that a login for a missing
// user takes as long as one with a wrong password and does not reveal who has an account.
// It is made on first use: hashing costs tens of milliseconds and 19 MiB, which programs
// that import this package but never log anyone in (the CLI) should not pay.
var dummyHash = sync.OnceValue(func() string { h, _ := HashPassword("warren-dummy-password"); return h })

var _ domain.SessionService = (*Sessions)(nil)

// Sessions implements domain.SessionService: console logins, which issue session tokens
// (see Signer), and logouts, which end them. Keys.Authenticate hands session tokens to
// it.
type Sessions struct {
	*core
	ttl       time.Duration // how long a login lasts
	ownerFile string        // see WithOwnerFile
}

// Login checks an email and password and issues a console session token. Every attempt
// on an account spends from its throttle budget first (see WithLoginThrottle).
func (s *Sessions) Login(ctx context.Context, email, password string) (*domain.Session, error) {
	if s.signer == nil {
		return nil, domain.Errorf(domain.KindUnavailable, "console logins are not enabled on this server: use an API key")
	}
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || password == "" {
		return nil, domain.Errorf(domain.KindUnauthorized, "email and password are required")
	}
	if err := s.throttleAccount(ctx, email); err != nil {
		return nil, err
	}
	u, err := s.store.GetUserByEmail(ctx, email)
	if domain.IsKind(err, domain.KindNotFound) {
		_, _ = CheckPassword(dummyHash(), password)
		return nil, domain.Errorf(domain.KindUnauthorized, msgBadLogin)
	}
	if err != nil {
		return nil, fmt.Errorf("logging in: %w", err)
	}
	ok, err := CheckPassword(u.PasswordHash, password)
	if err != nil {
		return nil, fmt.Errorf("checking password of user %s: %w", u.ID, err)
	}
	actor := domain.Principal{TeamID: u.TeamID, UserID: u.ID}
	if !ok || !u.DisabledAt.IsZero() {
		s.audit(ctx, actor, "user.login_failed", u.ID)
		return nil, domain.Errorf(domain.KindUnauthorized, msgBadLogin)
	}
	now := s.now().UTC()
	u.LastLoginAt = now
	if err := s.store.RecordLogin(ctx, u.ID, now); err != nil {
		s.log.WarnContext(ctx, "recording login time", logkey.UserID, u.ID, logkey.Err, err)
	}
	team, err := s.store.GetTeam(ctx, u.TeamID)
	if err != nil {
		return nil, fmt.Errorf("logging in: %w", err)
	}
	exp := now.Add(s.ttl)
	s.audit(ctx, actor, "user.login", u.ID)
	if s.ownerFile != "" {
		if removed, err := forgetOwnerLogin(s.ownerFile, u.Email); err != nil {
			s.log.WarnContext(ctx, "removing the first console login's file", "path", s.ownerFile, logkey.Err, err)
		} else if removed {
			s.log.InfoContext(ctx, "the first console login was used; its file is removed", "path", s.ownerFile)
		}
	}
	u.PasswordHash = ""
	return &domain.Session{Token: s.signer.Issue(u.ID, u.TeamID, u.SessionEpoch, exp), ExpiresAt: exp, User: u, Team: team}, nil
}

// Logout ends every console session of p's user (the session epoch moves on). Only a
// session logs out: an API key is revoked instead.
func (s *Sessions) Logout(ctx context.Context, p domain.Principal) error {
	if err := needTeam(p); err != nil {
		return err
	}
	if p.UserID == "" || p.KeyID != "" {
		return domain.Errorf(domain.KindInvalid, "logging out ends console sessions, and this request used an API key: revoke the key instead (DELETE /v1/keys/{id})")
	}
	if _, err := s.store.EndSessions(ctx, p.UserID); err != nil {
		if domain.IsKind(err, domain.KindNotFound) {
			return nil // the user is gone, and with it every session
		}
		return fmt.Errorf("logging out user %s: %w", p.UserID, err)
	}
	s.audit(ctx, p, "user.logout", p.UserID)
	return nil
}

// authenticate resolves a console session token. The user is read on every
// request, so that a deleted or disabled user applies at once; a token from before the
// user's last password or role change or logout carries an old epoch and is refused.
func (s *Sessions) authenticate(ctx context.Context, token string) (domain.Principal, error) {
	if s.signer == nil {
		return domain.Principal{}, domain.Errorf(domain.KindUnauthorized, "console sessions are not enabled on this server: use an API key")
	}
	now := s.now()
	c, err := s.signer.Verify(token, now)
	if err != nil {
		return domain.Principal{}, domain.Errorf(domain.KindUnauthorized, "session expired or invalid: log in again")
	}
	u, err := s.store.GetUser(ctx, c.UserID)
	if domain.IsKind(err, domain.KindNotFound) {
		return domain.Principal{}, domain.Errorf(domain.KindUnauthorized, "session's user no longer exists: log in again")
	}
	if err != nil {
		return domain.Principal{}, fmt.Errorf("authenticating session: %w", err)
	}
	if u.TeamID != c.TeamID || !u.DisabledAt.IsZero() {
		return domain.Principal{}, domain.Errorf(domain.KindUnauthorized, "session expired or invalid: log in again")
	}
	if *c.Epoch != u.SessionEpoch {
		return domain.Principal{}, domain.Errorf(domain.KindUnauthorized,
			"session ended: its user logged out, or their password or role changed since; log in again")
	}
	team, err := s.teams.get(ctx, s.store, u.TeamID, now)
	if err != nil {
		return domain.Principal{}, fmt.Errorf("authenticating session: %w", err)
	}
	return domain.Principal{TeamID: u.TeamID, UserID: u.ID, Scopes: domain.RoleScopes(u.Role),
		RequestsPerMinute: team.Quota.RequestsPerMinute}, nil
}
