package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/ratelimit"
)

// TestManagingUsersNeedsTheirRolesScopes: changing another user's password or role, or
// removing them, needs every scope of their role (issue 13: a team:write key reset an
// admin's password and logged in as them); owners only by platform admins; a new role
// never above the caller.
func TestManagingUsersNeedsTheirRolesScopes(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	role := func(r domain.Role) *domain.Role { return &r }
	pw := "taken-over-password"
	with := func(sc ...domain.Scope) []domain.Scope { return append([]domain.Scope{domain.ScopeTeamWrite}, sc...) }

	teamWrite := domain.Principal{TeamID: "team-a", KeyID: "k1", Scopes: with()}
	writeMember := domain.Principal{TeamID: "team-a", KeyID: "k2", Scopes: with(memberScopes...)}
	adminSession := domain.Principal{TeamID: "team-a", UserID: "someone", Scopes: adminScopes}

	ops := map[string]func(p domain.Principal, id string) error{
		"reset password": func(p domain.Principal, id string) error {
			_, err := f.ks.Users.UpdateUser(ctx, p, id, domain.UserPatch{Password: &pw})
			return err
		},
		"demote to viewer": func(p domain.Principal, id string) error {
			_, err := f.ks.Users.UpdateUser(ctx, p, id, domain.UserPatch{Role: role(domain.RoleViewer)})
			return err
		},
		"remove": func(p domain.Principal, id string) error { return f.ks.Users.DeleteUser(ctx, p, id) },
	}
	tests := []struct {
		name   string
		p      domain.Principal
		target domain.Role
		ok     bool
	}{
		{"team:write key, admin", teamWrite, domain.RoleAdmin, false},
		{"team:write key, owner", teamWrite, domain.RoleOwner, false},
		{"team:write key, member", teamWrite, domain.RoleMember, false},
		{"team:write key, viewer", teamWrite, domain.RoleViewer, false},
		{"team:write+member key, member", writeMember, domain.RoleMember, true},
		{"team:write+member key, viewer", writeMember, domain.RoleViewer, true},
		{"team:write+member key, admin", writeMember, domain.RoleAdmin, false},
		{"admin session, admin", adminSession, domain.RoleAdmin, true},
		{"admin session, owner", adminSession, domain.RoleOwner, false},
		{"admin key, owner", f.a, domain.RoleOwner, false},
		{"platform admin, owner", f.admin, domain.RoleOwner, true},
	}
	n := 0
	for _, tc := range tests {
		for name, op := range ops {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				n++
				email := fmt.Sprintf("user%d@example.com", n)
				u := f.addUser(t, "team-a", email, tc.target)
				before, _ := f.store.GetUser(ctx, u.ID)
				err := op(tc.p, u.ID)
				if tc.ok {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				wantKind(t, name, err, domain.KindForbidden, "")
				after, err := f.store.GetUser(ctx, u.ID)
				if err != nil || *after != *before {
					t.Errorf("a refused %s changed the user: %+v (%v), was %+v", name, after, err, before)
				}
				if _, err := f.ks.Sessions.Login(ctx, email, pw); err == nil {
					t.Error("the new password logs in after a refused reset")
				}
			})
		}
	}

	// Nobody raises anyone above their own scopes, themselves included.
	mem := f.addUser(t, "team-a", "climber@example.com", domain.RoleMember)
	_, err := f.ks.Users.UpdateUser(ctx, writeMember, mem.ID, domain.UserPatch{Role: role(domain.RoleAdmin)})
	wantKind(t, "team:write+member key promoting to admin", err, domain.KindForbidden, "")
	_, err = f.ks.Users.UpdateUser(ctx, f.a, mem.ID, domain.UserPatch{Role: role(domain.RoleOwner)})
	wantKind(t, "team admin making an owner", err, domain.KindForbidden, "")
	if _, err := f.ks.Users.UpdateUser(ctx, f.a, mem.ID, domain.UserPatch{Role: role(domain.RoleAdmin)}); err != nil {
		t.Errorf("team admin promoting a member to admin: %v", err)
	}
}

// TestOwnPasswordNeedsTheCurrentOne: users change their own password (from a session,
// or with a key they made that may manage users) only with the current password.
func TestOwnPasswordNeedsTheCurrentOne(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	ann := f.addUser(t, "team-a", "ann@example.com", domain.RoleAdmin)
	session := f.authenticate(t, f.login(t, "ann@example.com", testPassword).Token)
	_, secret := f.newKey(t, session, "ann's key")
	key := f.authenticate(t, secret)
	str := func(s string) *string { return &s }

	for _, p := range []domain.Principal{session, key} {
		_, err := f.ks.Users.UpdateUser(ctx, p, ann.ID, domain.UserPatch{Password: str("new-password-1")})
		wantKind(t, "own password without current_password", err, domain.KindInvalid, "current_password")
		_, err = f.ks.Users.UpdateUser(ctx, p, ann.ID, domain.UserPatch{Password: str("new-password-1"), CurrentPassword: str("")})
		wantKind(t, "own password with an empty current_password", err, domain.KindInvalid, "current_password")
		_, err = f.ks.Users.UpdateUser(ctx, p, ann.ID, domain.UserPatch{Password: str("new-password-1"), CurrentPassword: str("wrong-password")})
		wantKind(t, "own password with a wrong current_password", err, domain.KindForbidden, "current_password")
	}
	f.login(t, "ann@example.com", testPassword)
	if _, err := f.ks.Users.UpdateUser(ctx, key, ann.ID, domain.UserPatch{Password: str("new-password-1"), CurrentPassword: str(testPassword)}); err != nil {
		t.Fatalf("own password with the right current_password, by key: %v", err)
	}
	f.login(t, "ann@example.com", "new-password-1")
	// Another admin resetting ann's password needs no current password.
	if _, err := f.ks.Users.UpdateUser(ctx, f.a, ann.ID, domain.UserPatch{Password: str("reset-by-admin")}); err != nil {
		t.Fatalf("admin resetting another admin's password: %v", err)
	}
	f.login(t, "ann@example.com", "reset-by-admin")
	// A wrong current password is audited on ann's team.
	entries, err := f.store.ListAudit(ctx, domain.AuditFilter{TeamID: "team-a", Action: "user.password_check_failed"})
	if err != nil || len(entries) != 2 || entries[0].Target != ann.ID {
		t.Errorf("audit of wrong current passwords = %v, %v; want 2 entries on ann", entries, err)
	}
}

// TestPasswordChangeAndLogoutEndSessions: a password change (by anyone) and a logout end
// every session of that user, and only of that user.
func TestPasswordChangeAndLogoutEndSessions(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	ann := f.addUser(t, "team-a", "ann@example.com", domain.RoleMember)
	f.addUser(t, "team-a", "bob@example.com", domain.RoleMember)
	laptop, phone := f.login(t, "ann@example.com", testPassword), f.login(t, "ann@example.com", testPassword)
	bob := f.login(t, "bob@example.com", testPassword)
	refused := func(what string, tokens ...string) {
		t.Helper()
		for _, tok := range tokens {
			_, err := f.ks.Keys.Authenticate(ctx, tok)
			wantUnauthorized(t, what, err, "log in again")
		}
	}

	// Ann changes her password from her laptop: the phone's session ends too, and so
	// does the laptop's own.
	pw, cur := "second-password", testPassword
	if _, err := f.ks.Users.UpdateUser(ctx, f.authenticate(t, laptop.Token), ann.ID, domain.UserPatch{Password: &pw, CurrentPassword: &cur}); err != nil {
		t.Fatal(err)
	}
	refused("session after its user's password change", laptop.Token, phone.Token)
	f.authenticate(t, bob.Token)

	// A team admin resets it: same.
	again := f.login(t, "ann@example.com", pw)
	pw2 := "third-password"
	if _, err := f.ks.Users.UpdateUser(ctx, f.a, ann.ID, domain.UserPatch{Password: &pw2}); err != nil {
		t.Fatal(err)
	}
	refused("session after an admin reset the password", again.Token)

	// Logout ends every session of the user.
	one, two := f.login(t, "ann@example.com", pw2), f.login(t, "ann@example.com", pw2)
	if err := f.ks.Sessions.Logout(ctx, f.authenticate(t, one.Token)); err != nil {
		t.Fatal(err)
	}
	refused("session after logout", one.Token, two.Token)
	f.authenticate(t, bob.Token)
	if entries, err := f.store.ListAudit(ctx, domain.AuditFilter{TeamID: "team-a", Action: "user.logout"}); err != nil || len(entries) != 1 {
		t.Errorf("logout audit entries = %v, %v; want 1", entries, err)
	}
	// A fresh login works again.
	f.authenticate(t, f.login(t, "ann@example.com", pw2).Token)

	// Keys do not log out; a principal without a user has nothing to end.
	err := f.ks.Sessions.Logout(ctx, f.authenticate(t, f.aSecret))
	wantKind(t, "Logout with an API key", err, domain.KindInvalid, "")
	err = f.ks.Sessions.Logout(ctx, domain.Principal{})
	wantKind(t, "Logout without a principal", err, domain.KindUnauthorized, "")
}

// TestKeyFollowsItsCreator: a key made by a user works only while the user exists and
// is enabled, and only within the user's current role; keys without a user (made by
// the platform admin's key) are unaffected.
func TestKeyFollowsItsCreator(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	owner := f.addUser(t, "team-a", "owner@example.com", domain.RoleOwner)
	session := f.authenticate(t, f.login(t, "owner@example.com", testPassword).Token)
	k, secret := f.newKey(t, session, "owner's key")
	if k.UserID != owner.ID {
		t.Fatalf("key made in a session has UserID %q, want %q", k.UserID, owner.ID)
	}
	// A key made with that key belongs to the same user.
	_, childSecret := f.newKey(t, f.authenticate(t, secret), "child", domain.ScopeSandboxesRead, domain.ScopeAuditRead)
	if p := f.authenticate(t, secret); !slices.Equal(p.Scopes, adminScopes) {
		t.Fatalf("owner's key has %v, want %v", p.Scopes, adminScopes)
	}

	// Demoted to member: the keys keep only what a member has.
	member := domain.RoleMember
	if _, err := f.ks.Users.UpdateUser(ctx, f.admin, owner.ID, domain.UserPatch{Role: &member}); err != nil {
		t.Fatal(err)
	}
	p := f.authenticate(t, secret)
	if !slices.Equal(p.Scopes, memberScopes) || p.Can(domain.ScopeTeamWrite) || p.Can(domain.ScopeAuditRead) {
		t.Errorf("demoted owner's key has %v, want %v", p.Scopes, memberScopes)
	}
	if p := f.authenticate(t, childSecret); !slices.Equal(p.Scopes, []domain.Scope{domain.ScopeSandboxesRead}) {
		t.Errorf("demoted owner's narrow key has %v, want only sandboxes:read", p.Scopes)
	}
	_, err := f.ks.Audit.Audit(ctx, p, domain.AuditFilter{})
	wantKind(t, "demoted owner's key reading the audit log", err, domain.KindForbidden, "")
	// Promoted back, the key regains its scopes (never more than it was given).
	admin := domain.RoleAdmin
	if _, err := f.ks.Users.UpdateUser(ctx, f.admin, owner.ID, domain.UserPatch{Role: &admin}); err != nil {
		t.Fatal(err)
	}
	if p := f.authenticate(t, childSecret); !slices.Equal(p.Scopes, []domain.Scope{domain.ScopeSandboxesRead, domain.ScopeAuditRead}) {
		t.Errorf("re-promoted user's narrow key has %v", p.Scopes)
	}

	// Disabled: the keys stop working; enabled again, they work.
	stored, _ := f.store.GetUser(ctx, owner.ID)
	stored.DisabledAt = f.clock.now()
	if err := f.store.UpdateUser(ctx, stored); err != nil {
		t.Fatal(err)
	}
	_, err = f.ks.Keys.Authenticate(ctx, secret)
	wantUnauthorized(t, "disabled user's key", err, "new key")
	stored.DisabledAt = time.Time{}
	if err := f.store.UpdateUser(ctx, stored); err != nil {
		t.Fatal(err)
	}
	f.authenticate(t, secret)

	// Deleted: every key the user made is refused.
	if err := f.ks.Users.DeleteUser(ctx, f.admin, owner.ID); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{secret, childSecret} {
		_, err = f.ks.Keys.Authenticate(ctx, s)
		wantUnauthorized(t, "deleted user's key", err, "new key")
	}
	// Keys of the bootstrap key's line (no user) are unaffected.
	if p := f.authenticate(t, f.aSecret); !slices.Equal(p.Scopes, adminScopes) {
		t.Errorf("team key without a user has %v, want %v", p.Scopes, adminScopes)
	}
}

// TestKeyAuthenticationIsOneQuery: the creator's state comes with the key, so that
// authenticating a user's key reads nothing but the key (the team is cached).
func TestKeyAuthenticationIsOneQuery(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.addUser(t, "team-a", "ann@example.com", domain.RoleMember)
	_, secret := f.newKey(t, f.authenticate(t, f.login(t, "ann@example.com", testPassword).Token), "ann's")
	counting := &countingStore{fakeStore: f.store}
	ks, err := New(counting, WithClock(f.clock.now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Keys.Authenticate(ctx, secret); err != nil { // warms the team cache
		t.Fatal(err)
	}
	counting.keys, counting.users = 0, 0
	if _, err := ks.Keys.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if counting.users != 0 || counting.keys != 1 {
		t.Errorf("authenticating a user's key read %d keys and %d users; want 1 key and no user", counting.keys, counting.users)
	}
}

// countingStore counts the reads authentication makes.
type countingStore struct {
	*fakeStore
	keys, users int
}

func (c *countingStore) GetAPIKeyByHash(ctx context.Context, hash string) (*domain.APIKey, error) {
	c.keys++
	return c.fakeStore.GetAPIKeyByHash(ctx, hash)
}

func (c *countingStore) GetUser(ctx context.Context, id string) (*domain.User, error) {
	c.users++
	return c.fakeStore.GetUser(ctx, id)
}

// TestLoginThrottlePerAccount: attempts on one account are limited whatever the
// client's address; the throttled answer does not depend on the account existing or
// on the password being right; other accounts keep their budgets.
func TestLoginThrottlePerAccount(t *testing.T) {
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	lim, err := ratelimit.NewMemory(ratelimit.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	const attempts, window = 3, 15 * time.Minute
	f := newFixture(t, WithLoginThrottle(lim, attempts, window))
	ctx := t.Context()
	f.addUser(t, "team-a", "ann@example.com", domain.RoleMember)
	f.addUser(t, "team-a", "bob@example.com", domain.RoleMember)

	throttled := func(what string, err error) {
		t.Helper()
		wantKind(t, what, err, domain.KindQuotaExceeded, "")
		var qe *domain.QuotaError
		if !errors.As(err, &qe) || qe.Quota != "login_attempts" || qe.RetryAfter <= 0 || qe.Limit != attempts {
			t.Errorf("%s: quota detail %+v; want login_attempts with a RetryAfter", what, qe)
		}
	}
	for i := range attempts {
		_, err := f.ks.Sessions.Login(ctx, "ann@example.com", "wrong-guess")
		wantUnauthorized(t, "wrong password "+string(rune('1'+i)), err, "password")
	}
	// Spent: even the right password is refused now (no oracle), in any case spelling.
	_, err = f.ks.Sessions.Login(ctx, "ANN@example.com ", testPassword)
	throttled("right password on a throttled account", err)
	// An unknown account answers the same once spent.
	for range attempts {
		_, err := f.ks.Sessions.Login(ctx, "nobody@example.com", "wrong-guess")
		wantUnauthorized(t, "unknown account", err, "password")
	}
	_, err = f.ks.Sessions.Login(ctx, "nobody@example.com", "wrong-guess")
	throttled("throttled unknown account", err)
	if domain.PublicMessage(err) != domain.PublicMessage(func() error { _, e := f.ks.Sessions.Login(ctx, "ann@example.com", "x"); return e }()) {
		t.Error("throttled answers differ between a known and an unknown account")
	}
	// Bob's budget is his own, and his successful login resets nobody's.
	f.login(t, "bob@example.com", testPassword)
	_, err = f.ks.Sessions.Login(ctx, "ann@example.com", testPassword)
	throttled("ann after bob logged in", err)
	// Changing one's own password draws on the same budget.
	annUser, _ := f.store.GetUserByEmail(ctx, "ann@example.com")
	pw, cur := "new-password-9", testPassword
	_, err = f.ks.Users.UpdateUser(ctx, domain.Principal{TeamID: "team-a", UserID: annUser.ID, Scopes: memberScopes}, annUser.ID,
		domain.UserPatch{Password: &pw, CurrentPassword: &cur})
	throttled("own password change on a throttled account", err)

	// One attempt comes back every window/attempts.
	clk.add(window / attempts)
	f.login(t, "ann@example.com", testPassword)
	_, err = f.ks.Sessions.Login(ctx, "ann@example.com", testPassword)
	throttled("ann right after the one regained attempt", err)
}

// TestLoginThrottleFailsOpen: a limiter that errors (Redis away) lets logins through.
func TestLoginThrottleFailsOpen(t *testing.T) {
	f := newFixture(t, WithLoginThrottle(failingLimiter{}, 1, time.Minute))
	f.addUser(t, "team-a", "ann@example.com", domain.RoleMember)
	for range 3 {
		f.login(t, "ann@example.com", testPassword)
	}
}

type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, string, int64, time.Duration) (ratelimit.Decision, error) {
	return ratelimit.Decision{}, domain.Errorf(domain.KindUnavailable, "redis is away")
}
