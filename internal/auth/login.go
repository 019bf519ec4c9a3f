package auth

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

const msgBadLogin = "wrong email or password: check both, or ask a team admin to reset the password"

// dummyHash is checked against when the email is unknown, so that a login for a missing
// user takes as long as one with a wrong password and does not reveal who has an account.
// It is made on first use: hashing costs tens of milliseconds and 19 MiB, which programs
// that import this package but never log anyone in (the CLI) should not pay.
var dummyHash = sync.OnceValue(func() string { h, _ := HashPassword("warren-dummy-password"); return h })

// Login checks an email and password and issues a console session token.
func (s *KeyService) Login(ctx context.Context, email, password string) (*domain.Session, error) {
	if s.signer == nil {
		return nil, domain.Errorf(domain.KindUnavailable, "console logins are not enabled on this server: use an API key")
	}
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || password == "" {
		return nil, domain.Errorf(domain.KindUnauthorized, "email and password are required")
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
		s.Record(ctx, s.entry(ctx, actor, "user.login_failed", u.ID, nil))
		return nil, domain.Errorf(domain.KindUnauthorized, msgBadLogin)
	}
	now := s.now().UTC()
	u.LastLoginAt = now
	if err := s.store.UpdateUser(ctx, u); err != nil {
		s.log.WarnContext(ctx, "recording login time", logkey.UserID, u.ID, logkey.Err, err)
	}
	team, err := s.store.GetTeam(ctx, u.TeamID)
	if err != nil {
		return nil, fmt.Errorf("logging in: %w", err)
	}
	exp := now.Add(s.sessionTTL)
	s.Record(ctx, s.entry(ctx, actor, "user.login", u.ID, nil))
	u.PasswordHash = ""
	return &domain.Session{Token: s.signer.Issue(u.ID, u.TeamID, exp), ExpiresAt: exp, User: u, Team: team}, nil
}

// authenticateSession resolves a console session token. The user is read on every
// request, so that a deleted or disabled user, or a changed role, applies at once.
func (s *KeyService) authenticateSession(ctx context.Context, token string) (domain.Principal, error) {
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
	team, err := s.teams.get(ctx, s.store, u.TeamID, now)
	if err != nil {
		return domain.Principal{}, fmt.Errorf("authenticating session: %w", err)
	}
	return domain.Principal{TeamID: u.TeamID, UserID: u.ID, Scopes: domain.RoleScopes(u.Role),
		RequestsPerMinute: team.Quota.RequestsPerMinute}, nil
}
