package auth

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestCreateUser(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	u, err := f.ks.Users.CreateUser(ctx, f.a, domain.UserSpec{Email: "  Ann@Example.COM ", Name: " Ann ", Password: testPassword, Role: domain.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == "" || u.TeamID != "team-a" || u.Email != "ann@example.com" || u.Name != "Ann" || u.Role != domain.RoleAdmin ||
		u.PasswordHash != "" || !u.CreatedAt.Equal(f.clock.now()) {
		t.Errorf("CreateUser = %+v; want admin ann@example.com (Ann) of team-a, no hash, created now", u)
	}
	stored, err := f.store.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := CheckPassword(stored.PasswordHash, testPassword); !ok || err != nil {
		t.Errorf("stored hash %q does not match the password: %v, %v", stored.PasswordHash, ok, err)
	}
	// The platform admin names the team, and may make owners.
	if u, err := f.ks.Users.CreateUser(ctx, f.admin, domain.UserSpec{TeamID: "team-b", Email: "boss@example.com", Password: testPassword, Role: domain.RoleOwner}); err != nil || u.TeamID != "team-b" {
		t.Errorf("platform admin creating an owner of team-b = %+v, %v", u, err)
	}
	// A key holding team:write (and the role's scopes) may add users to its team...
	writer := domain.Principal{TeamID: "team-b", KeyID: "k", Scopes: append([]domain.Scope{domain.ScopeTeamWrite}, domain.RoleScopes(domain.RoleViewer)...)}
	if u, err := f.ks.Users.CreateUser(ctx, writer, domain.UserSpec{Email: "v@example.com", Password: testPassword, Role: domain.RoleViewer}); err != nil || u.TeamID != "team-b" {
		t.Errorf("team:write key creating a viewer = %+v, %v", u, err)
	}
	// ...but never with a role holding more than the key does.
	if _, err := f.ks.Users.CreateUser(ctx, writer, domain.UserSpec{Email: "a@example.com", Password: testPassword, Role: domain.RoleAdmin}); !domain.IsKind(err, domain.KindForbidden) {
		t.Errorf("team:write key creating an admin = %v; want KindForbidden", err)
	}
}

func TestCreateUserRefused(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.addUser(t, "team-b", "taken@example.com", domain.RoleMember)
	ok := domain.UserSpec{Email: "new@example.com", Password: testPassword, Role: domain.RoleMember}
	with := func(change func(*domain.UserSpec)) domain.UserSpec { s := ok; change(&s); return s }
	member := domain.Principal{TeamID: "team-a", UserID: "m", Scopes: memberScopes}
	viewer := domain.Principal{TeamID: "team-a", UserID: "v", Scopes: viewerScopes}

	tests := []struct {
		name  string
		p     domain.Principal
		spec  domain.UserSpec
		kind  domain.Kind
		field string
	}{
		{"empty email", f.a, with(func(s *domain.UserSpec) { s.Email = "" }), domain.KindInvalid, "email"},
		{"no at sign", f.a, with(func(s *domain.UserSpec) { s.Email = "ann" }), domain.KindInvalid, "email"},
		{"no domain", f.a, with(func(s *domain.UserSpec) { s.Email = "ann@" }), domain.KindInvalid, "email"},
		{"display name form", f.a, with(func(s *domain.UserSpec) { s.Email = "Ann <ann@example.com>" }), domain.KindInvalid, "email"},
		{"two addresses", f.a, with(func(s *domain.UserSpec) { s.Email = "a@example.com, b@example.com" }), domain.KindInvalid, "email"},
		{"too long", f.a, with(func(s *domain.UserSpec) { s.Email = strings.Repeat("a", 250) + "@example.com" }), domain.KindInvalid, "email"},
		{"no role", f.a, with(func(s *domain.UserSpec) { s.Role = "" }), domain.KindInvalid, "role"},
		{"unknown role", f.a, with(func(s *domain.UserSpec) { s.Role = "superuser" }), domain.KindInvalid, "role"},
		{"short password", f.a, with(func(s *domain.UserSpec) { s.Password = "short" }), domain.KindInvalid, "password"},
		{"no password", f.a, with(func(s *domain.UserSpec) { s.Password = "" }), domain.KindInvalid, "password"},
		{"long name", f.a, with(func(s *domain.UserSpec) { s.Name = strings.Repeat("n", 101) }), domain.KindInvalid, "name"},
		{"duplicate email", f.a, with(func(s *domain.UserSpec) { s.Email = "Taken@Example.com" }), domain.KindConflict, "email"},
		{"team admin makes an owner", f.a, with(func(s *domain.UserSpec) { s.Role = domain.RoleOwner }), domain.KindForbidden, ""},
		{"member", member, ok, domain.KindForbidden, ""},
		{"viewer", viewer, ok, domain.KindForbidden, ""},
		{"team admin names another team", f.a, with(func(s *domain.UserSpec) { s.TeamID = "team-b" }), domain.KindNotFound, ""},
		{"platform admin without a team", f.admin, ok, domain.KindInvalid, "team_id"},
		{"platform admin, missing team", f.admin, with(func(s *domain.UserSpec) { s.TeamID = "no-such-team" }), domain.KindNotFound, ""},
		{"nobody", domain.Principal{}, ok, domain.KindUnauthorized, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := f.ks.Users.CreateUser(ctx, tc.p, tc.spec)
			wantKind(t, "CreateUser", err, tc.kind, tc.field)
			if u != nil {
				t.Errorf("refused CreateUser returned %+v", u)
			}
		})
	}
	for _, team := range []string{"team-a", "team-b"} {
		if us, err := f.store.ListUsers(ctx, team); err != nil || len(us) != map[string]int{"team-a": 0, "team-b": 1}[team] {
			t.Errorf("%s has users %v (%v) after refusals", team, us, err)
		}
	}
}

func TestUsersOfOtherTeamsAreNotFound(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	ann := f.addUser(t, "team-a", "ann@example.com", domain.RoleMember)
	role := domain.RoleViewer
	name := "Mallory was here"

	// team-b's admin sees nothing of team-a's users.
	_, err := f.ks.Users.GetUser(ctx, f.b, ann.ID)
	wantKind(t, "GetUser of another team's user", err, domain.KindNotFound, "")
	_, err = f.ks.Users.UpdateUser(ctx, f.b, ann.ID, domain.UserPatch{Role: &role, Name: &name})
	wantKind(t, "UpdateUser of another team's user", err, domain.KindNotFound, "")
	err = f.ks.Users.DeleteUser(ctx, f.b, ann.ID)
	wantKind(t, "DeleteUser of another team's user", err, domain.KindNotFound, "")
	_, err = f.ks.Users.ListUsers(ctx, f.b, "team-a")
	wantKind(t, "ListUsers of another team", err, domain.KindNotFound, "")

	stored, err := f.store.GetUser(ctx, ann.ID)
	if err != nil || stored.Role != domain.RoleMember || stored.Name != "member" {
		t.Errorf("team-a's user after team-b's attempts: %+v, %v", stored, err)
	}
	// Missing users are not found either.
	_, err = f.ks.Users.GetUser(ctx, f.a, "no-such-user")
	wantKind(t, "GetUser of a missing user", err, domain.KindNotFound, "")
	err = f.ks.Users.DeleteUser(ctx, f.a, "no-such-user")
	wantKind(t, "DeleteUser of a missing user", err, domain.KindNotFound, "")
}

func TestGetAndListUsers(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	// Users list oldest first; ids break ties at random, so make the times differ.
	ann := f.addUser(t, "team-a", "ann@example.com", domain.RoleAdmin)
	f.clock.add(time.Second)
	bob := f.addUser(t, "team-a", "bob@example.com", domain.RoleViewer)
	cat := f.addUser(t, "team-b", "cat@example.com", domain.RoleMember)
	ids := func(us []*domain.User) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.ID)
			if u.PasswordHash != "" {
				t.Errorf("listed user %s carries a password hash", u.ID)
			}
		}
		return out
	}
	viewer := domain.Principal{TeamID: "team-a", UserID: bob.ID, Scopes: viewerScopes}
	tests := []struct {
		name string
		p    domain.Principal
		team string
		want []string
		kind domain.Kind
	}{
		{"team admin", f.a, "", []string{ann.ID, bob.ID}, 0},
		{"team admin naming own team", f.a, "team-a", []string{ann.ID, bob.ID}, 0},
		{"viewer", viewer, "", []string{ann.ID, bob.ID}, 0},
		{"platform admin names a team", f.admin, "team-b", []string{cat.ID}, 0},
		{"platform admin, own team", f.admin, "", nil, 0},
		{"without team:read", domain.Principal{TeamID: "team-a", Scopes: []domain.Scope{domain.ScopeSandboxesRead}}, "", nil, domain.KindForbidden},
		{"other team", viewer, "team-b", nil, domain.KindNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.ks.Users.ListUsers(ctx, tc.p, tc.team)
			if tc.kind != 0 {
				wantKind(t, "ListUsers", err, tc.kind, "")
				return
			}
			if err != nil || !slices.Equal(ids(got), tc.want) {
				t.Errorf("ListUsers = %v, %v; want %v", ids(got), err, tc.want)
			}
		})
	}
	for _, p := range []domain.Principal{f.a, viewer, f.admin} {
		u, err := f.ks.Users.GetUser(ctx, p, ann.ID)
		if err != nil || u.ID != ann.ID || u.Email != "ann@example.com" || u.PasswordHash != "" {
			t.Errorf("GetUser by %+v = %+v, %v; want ann without a hash", p, u, err)
		}
	}
	_, err := f.ks.Users.GetUser(ctx, domain.Principal{TeamID: "team-a", Scopes: []domain.Scope{domain.ScopeUsageRead}}, ann.ID)
	wantKind(t, "GetUser without team:read", err, domain.KindForbidden, "")
}

func TestUpdateUser(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	owner := f.addUser(t, "team-a", "owner@example.com", domain.RoleOwner)
	mem := f.addUser(t, "team-a", "mem@example.com", domain.RoleMember)
	viewerUser := f.addUser(t, "team-a", "view@example.com", domain.RoleViewer)
	self := domain.Principal{TeamID: "team-a", UserID: viewerUser.ID, Scopes: viewerScopes}
	ownerP := domain.Principal{TeamID: "team-a", UserID: owner.ID, Scopes: adminScopes}
	role := func(r domain.Role) *domain.Role { return &r }
	str := func(s string) *string { return &s }

	tests := []struct {
		name  string
		p     domain.Principal
		id    string
		patch domain.UserPatch
		kind  domain.Kind // 0: allowed
		field string
	}{
		{"team admin changes a role", f.a, mem.ID, domain.UserPatch{Role: role(domain.RoleAdmin)}, 0, ""},
		{"team admin renames", f.a, mem.ID, domain.UserPatch{Name: str("  Mem  ")}, 0, ""},
		{"viewer renames self", self, viewerUser.ID, domain.UserPatch{Name: str("Vee")}, 0, ""},
		{"viewer changes own password without the current one", self, viewerUser.ID, domain.UserPatch{Password: str("a-new-password")}, domain.KindInvalid, "current_password"},
		{"viewer changes own password with a wrong current one", self, viewerUser.ID, domain.UserPatch{Password: str("a-new-password"), CurrentPassword: str("not-the-password")}, domain.KindForbidden, "current_password"},
		{"viewer changes own password", self, viewerUser.ID, domain.UserPatch{Password: str("a-new-password"), CurrentPassword: str(testPassword)}, 0, ""},
		{"owner renames self", ownerP, owner.ID, domain.UserPatch{Name: str("Boss")}, 0, ""},
		{"platform admin changes an owner", f.admin, owner.ID, domain.UserPatch{Name: str("The Boss")}, 0, ""},
		{"viewer promotes self", self, viewerUser.ID, domain.UserPatch{Role: role(domain.RoleAdmin)}, domain.KindForbidden, ""},
		{"viewer renames another", self, mem.ID, domain.UserPatch{Name: str("x")}, domain.KindForbidden, ""},
		{"team admin makes an owner", f.a, mem.ID, domain.UserPatch{Role: role(domain.RoleOwner)}, domain.KindForbidden, ""},
		{"team admin changes an owner", f.a, owner.ID, domain.UserPatch{Name: str("x")}, domain.KindForbidden, ""},
		{"unknown role", f.a, mem.ID, domain.UserPatch{Role: role("root")}, domain.KindInvalid, "role"},
		{"short password", f.a, mem.ID, domain.UserPatch{Password: str("1234567")}, domain.KindInvalid, "password"},
		{"long name", self, viewerUser.ID, domain.UserPatch{Name: str(strings.Repeat("x", 101))}, domain.KindInvalid, "name"},
		{"missing user", f.a, "no-such-user", domain.UserPatch{Name: str("x")}, domain.KindNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, err := f.store.GetUser(ctx, tc.id)
			if err != nil && tc.kind != domain.KindNotFound {
				t.Fatal(err)
			}
			u, err := f.ks.Users.UpdateUser(ctx, tc.p, tc.id, tc.patch)
			if tc.kind != 0 {
				wantKind(t, "UpdateUser", err, tc.kind, tc.field)
				if after, _ := f.store.GetUser(ctx, tc.id); before != nil && *after != *before {
					t.Errorf("refused update changed the user: %+v, was %+v", after, before)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.PasswordHash != "" {
				t.Error("UpdateUser returned the password hash")
			}
			stored, _ := f.store.GetUser(ctx, tc.id)
			if tc.patch.Name != nil && (u.Name != strings.TrimSpace(*tc.patch.Name) || stored.Name != u.Name) {
				t.Errorf("name = %q, stored %q; want %q", u.Name, stored.Name, strings.TrimSpace(*tc.patch.Name))
			}
			if tc.patch.Role != nil && (u.Role != *tc.patch.Role || stored.Role != u.Role) {
				t.Errorf("role = %q, stored %q; want %q", u.Role, stored.Role, *tc.patch.Role)
			}
			if tc.patch.Password == nil && stored.PasswordHash != before.PasswordHash {
				t.Error("the password hash changed without a new password")
			}
		})
	}
	// The changed password is the one that logs in now.
	_, err := f.ks.Sessions.Login(ctx, "view@example.com", testPassword)
	wantUnauthorized(t, "old password after a change", err, msgBadLogin)
	f.login(t, "view@example.com", "a-new-password")
}

func TestDeleteUser(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	owner := f.addUser(t, "team-a", "owner@example.com", domain.RoleOwner)
	mem := f.addUser(t, "team-a", "mem@example.com", domain.RoleMember)
	memP := domain.Principal{TeamID: "team-a", UserID: mem.ID, Scopes: memberScopes}

	err := f.ks.Users.DeleteUser(ctx, memP, owner.ID)
	wantKind(t, "member deleting a user", err, domain.KindForbidden, "")
	err = f.ks.Users.DeleteUser(ctx, f.a, owner.ID)
	wantKind(t, "team admin deleting an owner", err, domain.KindForbidden, "")
	if _, err := f.store.GetUser(ctx, owner.ID); err != nil {
		t.Fatalf("owner gone after refused deletions: %v", err)
	}
	if err := f.ks.Users.DeleteUser(ctx, f.a, mem.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.ks.Users.GetUser(ctx, f.a, mem.ID)
	wantKind(t, "GetUser of a deleted user", err, domain.KindNotFound, "")
	if err := f.ks.Users.DeleteUser(ctx, f.admin, owner.ID); err != nil {
		t.Errorf("platform admin deleting an owner: %v", err)
	}
	if us, err := f.store.ListUsers(ctx, "team-a"); err != nil || len(us) != 0 {
		t.Errorf("team-a users after deletions: %v, %v", us, err)
	}
}

// TestKeyCannotActAsItsCreator: a key remembers the user who made it, but holding a
// narrow key must not let anyone change that user's password (and so log in with the
// user's full role).
func TestKeyCannotActAsItsCreator(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	ann := f.addUser(t, "team-a", "ann@example.com", domain.RoleMember)
	session := f.authenticate(t, f.login(t, "ann@example.com", testPassword).Token)
	k, secret := f.newKey(t, session, "ci", domain.ScopeSandboxesRead)
	if k.UserID != ann.ID {
		t.Fatalf("key made in ann's session has UserID %q, want %q", k.UserID, ann.ID)
	}
	keyP := f.authenticate(t, secret)
	pw := "taken-over-password"
	_, err := f.ks.Users.UpdateUser(ctx, keyP, ann.ID, domain.UserPatch{Password: &pw})
	wantKind(t, "a sandboxes:read key changing its creator's password", err, domain.KindForbidden, "")
	if _, err := f.ks.Sessions.Login(ctx, "ann@example.com", pw); err == nil {
		t.Fatal("the key holder took over its creator's account")
	}
	// Ann herself, logged in, still may, knowing her password.
	cur := testPassword
	if _, err := f.ks.Users.UpdateUser(ctx, session, ann.ID, domain.UserPatch{Password: &pw, CurrentPassword: &cur}); err != nil {
		t.Errorf("ann changing her own password: %v", err)
	}
}
