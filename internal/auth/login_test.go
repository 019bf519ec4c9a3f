package auth

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// testPassword is the password addUser gives everyone.
const testPassword = "hunter2-but-longer"

// addUser creates a user through the service, as the platform admin.
func (f *fixture) addUser(t *testing.T, team, email string, role domain.Role) *domain.User {
	t.Helper()
	u, err := f.ks.Users.CreateUser(t.Context(), f.admin, domain.UserSpec{TeamID: team, Email: email, Name: string(role),
		Password: testPassword, Role: role})
	if err != nil {
		t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

// login logs in, failing the test on error.
func (f *fixture) login(t *testing.T, email, pw string) *domain.Session {
	t.Helper()
	s, err := f.ks.Sessions.Login(t.Context(), email, pw)
	if err != nil {
		t.Fatalf("Login(%s): %v", email, err)
	}
	return s
}

func TestLoginRoles(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.ks.Teams.UpdateTeam(ctx, f.admin, "team-a", domain.TeamSpec{Quota: domain.FullPatch(domain.Quota{RequestsPerMinute: 90})}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		role   domain.Role
		scopes []domain.Scope
	}{
		{domain.RoleViewer, viewerScopes},
		{domain.RoleMember, memberScopes},
		{domain.RoleAdmin, adminScopes},
		{domain.RoleOwner, adminScopes},
	}
	for _, tc := range tests {
		t.Run(string(tc.role), func(t *testing.T) {
			email := string(tc.role) + "@example.com"
			u := f.addUser(t, "team-a", email, tc.role)
			s := f.login(t, email, testPassword)
			if !strings.HasPrefix(s.Token, SessionPrefix) || !s.ExpiresAt.Equal(f.clock.now().Add(testSessionTTL)) {
				t.Errorf("session %q expiring %v; want a %s token expiring %v", s.Token, s.ExpiresAt, SessionPrefix, f.clock.now().Add(testSessionTTL))
			}
			if s.User == nil || s.User.ID != u.ID || s.User.Role != tc.role || s.User.PasswordHash != "" {
				t.Errorf("session user = %+v; want %s without a password hash", s.User, u.ID)
			}
			if s.Team == nil || s.Team.ID != "team-a" {
				t.Errorf("session team = %+v, want team-a", s.Team)
			}
			want := domain.Principal{TeamID: "team-a", UserID: u.ID, Scopes: tc.scopes, RequestsPerMinute: 90}
			if p := f.authenticate(t, s.Token); !samePrincipal(p, want) {
				t.Errorf("session authenticates as %+v, want %+v", p, want)
			}
		})
	}
}

func TestLoginRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.addUser(t, "team-a", "ann@example.com", domain.RoleMember)
	tests := []struct {
		name, email, pw string
		badLogin        bool // the one message for wrong email or password
	}{
		{"wrong password", "ann@example.com", "not-the-password", true},
		{"password in other case", "ann@example.com", strings.ToUpper(testPassword), true},
		{"unknown email", "bob@example.com", testPassword, true},
		{"empty password", "ann@example.com", "", false},
		{"empty email", "", testPassword, false},
		{"blank email", "   ", testPassword, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := f.ks.Sessions.Login(ctx, tc.email, tc.pw)
			if !domain.IsKind(err, domain.KindUnauthorized) || s != nil {
				t.Fatalf("Login = %+v, %v; want KindUnauthorized", s, err)
			}
			if tc.badLogin && domain.PublicMessage(err) != msgBadLogin {
				t.Errorf("message %q; want the same message for every wrong email or password", domain.PublicMessage(err))
			}
		})
	}
	// Emails are matched without regard to case or surrounding space.
	f.login(t, "  ANN@Example.com ", testPassword)
}

func TestLoginRecordsTimeAndAudit(t *testing.T) {
	f := newFixture(t)
	u := f.addUser(t, "team-a", "ann@example.com", domain.RoleMember)
	ctx := domain.WithRequestMeta(t.Context(), domain.RequestMeta{RemoteAddr: "192.0.2.7", RequestID: "req-1"})

	f.clock.add(time.Minute)
	failedAt := f.clock.now()
	if _, err := f.ks.Sessions.Login(ctx, "ann@example.com", "wrong-password"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := f.ks.Sessions.Login(ctx, "nobody@example.com", "wrong-password"); err == nil {
		t.Fatal("unknown user accepted")
	}
	stored, err := f.store.GetUser(ctx, u.ID)
	if err != nil || !stored.LastLoginAt.IsZero() {
		t.Errorf("after failed logins LastLoginAt = %v (%v), want zero", stored.LastLoginAt, err)
	}

	f.clock.add(time.Minute)
	okAt := f.clock.now()
	if _, err := f.ks.Sessions.Login(ctx, "ann@example.com", testPassword); err != nil {
		t.Fatal(err)
	}
	stored, err = f.store.GetUser(ctx, u.ID)
	if err != nil || !stored.LastLoginAt.Equal(okAt) {
		t.Errorf("LastLoginAt = %v (%v), want %v", stored.LastLoginAt, err, okAt)
	}
	if ok, err := CheckPassword(stored.PasswordHash, testPassword); !ok || err != nil {
		t.Errorf("the stored password hash no longer matches after login: %v, %v", ok, err)
	}

	entries, err := f.store.ListAudit(ctx, domain.AuditFilter{TeamID: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		action string
		at     time.Time
	}{{"user.login", okAt}, {"user.login_failed", failedAt}} // newest first
	if len(entries) != len(want) {
		t.Fatalf("audit log has %d entries, want %d: %+v", len(entries), len(want), entries)
	}
	for i, w := range want {
		e := entries[i]
		if e.Action != w.action || !e.At.Equal(w.at) || e.ActorType != "user" || e.ActorID != u.ID ||
			e.Target != u.ID || e.RemoteAddr != "192.0.2.7" || e.RequestID != "req-1" {
			t.Errorf("audit entry %d = %+v; want %s by user %s at %v from 192.0.2.7 (req-1)", i, e, w.action, u.ID, w.at)
		}
	}
	// Unknown emails have no team to log to; nothing went anywhere else either.
	if orphans, err := f.store.ListAudit(ctx, domain.AuditFilter{}); err != nil || len(orphans) != 0 {
		t.Errorf("audit entries without a team: %v, %v", orphans, err)
	}
}

func TestSessionFollowsUser(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	u := f.addUser(t, "team-a", "ann@example.com", domain.RoleMember)
	s := f.login(t, "ann@example.com", testPassword)

	// A role change ends the user's sessions; the next login has the new role's scopes.
	viewer := domain.RoleViewer
	if _, err := f.ks.Users.UpdateUser(ctx, f.a, u.ID, domain.UserPatch{Role: &viewer}); err != nil {
		t.Fatal(err)
	}
	_, err := f.ks.Keys.Authenticate(ctx, s.Token)
	wantUnauthorized(t, "session from before a demotion", err, "log in again")
	s = f.login(t, "ann@example.com", testPassword)
	if p := f.authenticate(t, s.Token); !slices.Equal(p.Scopes, viewerScopes) {
		t.Errorf("after demotion to viewer the session has %v, want %v", p.Scopes, viewerScopes)
	}
	admin := domain.RoleAdmin
	if _, err := f.ks.Users.UpdateUser(ctx, f.a, u.ID, domain.UserPatch{Role: &admin}); err != nil {
		t.Fatal(err)
	}
	_, err = f.ks.Keys.Authenticate(ctx, s.Token)
	wantUnauthorized(t, "session from before a promotion", err, "log in again")
	s = f.login(t, "ann@example.com", testPassword)
	if p := f.authenticate(t, s.Token); !slices.Equal(p.Scopes, adminScopes) {
		t.Errorf("after promotion to admin the session has %v, want %v", p.Scopes, adminScopes)
	}
	// A rename, or the same role again, changes nothing about sessions.
	name := "Ann"
	if _, err := f.ks.Users.UpdateUser(ctx, f.a, u.ID, domain.UserPatch{Name: &name, Role: &admin}); err != nil {
		t.Fatal(err)
	}
	f.authenticate(t, s.Token)

	// A disabled user is logged out and cannot log in.
	stored, err := f.store.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored.DisabledAt = f.clock.now()
	if err := f.store.UpdateUser(ctx, stored); err != nil {
		t.Fatal(err)
	}
	_, err = f.ks.Keys.Authenticate(ctx, s.Token)
	wantUnauthorized(t, "disabled user's session", err, "log in again")
	_, err = f.ks.Sessions.Login(ctx, "ann@example.com", testPassword)
	wantUnauthorized(t, "disabled user's login", err, msgBadLogin)
	stored.DisabledAt = time.Time{}
	if err := f.store.UpdateUser(ctx, stored); err != nil {
		t.Fatal(err)
	}
	f.authenticate(t, s.Token)

	// A deleted user's session stops working.
	if err := f.ks.Users.DeleteUser(ctx, f.a, u.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.ks.Keys.Authenticate(ctx, s.Token)
	wantUnauthorized(t, "deleted user's session", err, "log in again")
}

func TestSessionExpiryAndForgery(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	u := f.addUser(t, "team-a", "ann@example.com", domain.RoleMember)
	s := f.login(t, "ann@example.com", testPassword)

	// A token naming another team than the user's is refused even with a valid signature.
	forged := f.signer.Issue(u.ID, "team-b", 0, f.clock.now().Add(time.Hour))
	_, err := f.ks.Keys.Authenticate(ctx, forged)
	wantUnauthorized(t, "token for another team", err, "log in again")
	// So is one signed with another secret.
	other := newTestSigner(t, 'o')
	_, err = f.ks.Keys.Authenticate(ctx, other.Issue(u.ID, "team-a", 0, f.clock.now().Add(time.Hour)))
	wantUnauthorized(t, "token of another signer", err, "log in again")

	f.clock.add(testSessionTTL - time.Second)
	f.authenticate(t, s.Token)
	f.clock.add(time.Second)
	_, err = f.ks.Keys.Authenticate(ctx, s.Token)
	wantUnauthorized(t, "expired session", err, "log in again")
}

func TestSessionsDisabled(t *testing.T) {
	st := newStore(t)
	ks, err := New(st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, err = ks.Sessions.Login(ctx, "ann@example.com", testPassword)
	wantKind(t, "Login without sessions", err, domain.KindUnavailable, "")
	tok := newTestSigner(t, 's').Issue("u", "t", 0, time.Now().Add(time.Hour))
	_, err = ks.Keys.Authenticate(ctx, tok)
	wantUnauthorized(t, "session without sessions", err, "API key")
}

func TestDefaultSessionTTL(t *testing.T) {
	f := newFixture(t, WithSessions(newTestSigner(t, 'd'), 0))
	f.addUser(t, "team-a", "ann@example.com", domain.RoleViewer)
	s := f.login(t, "ann@example.com", testPassword)
	if want := f.clock.now().Add(DefaultSessionTTL); !s.ExpiresAt.Equal(want) {
		t.Errorf("session with ttl 0 expires %v, want %v (DefaultSessionTTL)", s.ExpiresAt, want)
	}
}
