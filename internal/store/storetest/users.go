package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func testTeamUpdate(t *testing.T, s domain.Store) {
	ctx := t.Context()
	full := &domain.Team{ID: "team-full", Name: "full", CreatedAt: at(1, 0),
		Quota: domain.Quota{MaxSandboxes: 10, MaxCPUCores: 2.5, MaxMemoryMB: 8192, MaxDiskMB: 1 << 40, RequestsPerMinute: 600,
			MaxSnapshots: 7, MaxTemplates: 4, MaxTemplateMB: 2048},
		PlanID: "pro", SpendLimit: "1234.56", AllowedRuntimes: []string{"gvisor", "runc"}}
	plain := &domain.Team{ID: "team-plain", Name: "plain", CreatedAt: at(2, 0)}
	for _, team := range []*domain.Team{full, plain} {
		must(t, "creating team", s.CreateTeam(ctx, team))
		got, err := s.GetTeam(ctx, team.ID)
		must(t, "getting team", err)
		same(t, "team "+team.ID, got, team, normTeam)
	}

	steps := []struct {
		name   string
		update domain.Team
	}{
		{"set everything", domain.Team{Name: "renamed ü", Quota: domain.Quota{MaxSandboxes: 3, MaxCPUCores: 0.5,
			MaxMemoryMB: 512, MaxDiskMB: 1024, RequestsPerMinute: 60, MaxSnapshots: 3, MaxTemplates: 2, MaxTemplateMB: 100}, PlanID: "hobby", SpendLimit: "0.01",
			AllowedRuntimes: []string{"gvisor"}}},
		{"only some quotas", domain.Team{Name: "renamed", Quota: domain.Quota{MaxCPUCores: 16}, PlanID: "pro"}},
		{"back to zero", domain.Team{}},
	}
	for _, st := range steps {
		u := st.update
		u.ID = plain.ID
		u.CreatedAt = at(99, 0) // ignored: the creation time is fixed
		must(t, "updating team ("+st.name+")", s.UpdateTeam(ctx, &u))
		want := u
		want.CreatedAt = plain.CreatedAt
		got, err := s.GetTeam(ctx, plain.ID)
		must(t, "getting updated team", err)
		same(t, "team after update "+st.name, got, &want, normTeam)
	}

	teams, err := s.ListTeams(ctx)
	must(t, "listing teams", err)
	if len(teams) != 2 {
		t.Fatalf("ListTeams returned %d teams, want 2", len(teams))
	}
	same(t, "listed team with quota", teams[0], full, normTeam)

	wantKind(t, "updating a missing team", s.UpdateTeam(ctx, &domain.Team{ID: "missing", Name: "x"}), domain.KindNotFound)
	if _, err := s.GetTeam(ctx, "missing"); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("UpdateTeam of a missing team created it (GetTeam err = %v)", err)
	}
}

// newUser returns a member of the team with a fresh id; it is not stored.
func newUser(teamID, email string, created int) *domain.User {
	return &domain.User{ID: domain.NewID(20), TeamID: teamID, Email: email, Name: "n " + email,
		Role: domain.RoleMember, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA", CreatedAt: at(created, 0)}
}

func testUsers(t *testing.T, s domain.Store) {
	ctx := t.Context()
	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")

	// Created out of order, listed oldest first; the zero time is the oldest.
	ana := newUser(a.ID, "Ana@Example.COM", 3)
	ana.Role, ana.LastLoginAt = domain.RoleOwner, at(4, 7)
	bob := newUser(a.ID, "bob@example.com", 1)
	zed := newUser(a.ID, "zed@example.com", 0)
	zed.CreatedAt = time.Time{}
	old := newUser(a.ID, "old@example.com", 0)
	old.CreatedAt = at(0, 0).AddDate(-1, 0, 0)
	other := newUser(b.ID, "other@example.com", 2)
	for _, u := range []*domain.User{ana, other, zed, bob, old} {
		must(t, "creating user "+u.Email, s.CreateUser(ctx, u))
	}
	ana.Email = "ana@example.com" // stored lower-cased

	for _, u := range []*domain.User{ana, bob, zed, old, other} {
		got, err := s.GetUser(ctx, u.ID)
		must(t, "getting user", err)
		same(t, "user "+u.Email, got, u, normUser)
	}
	for _, email := range []string{"ana@example.com", "ANA@EXAMPLE.COM", "Ana@Example.com"} {
		got, err := s.GetUserByEmail(ctx, email)
		must(t, "getting user by email "+email, err)
		same(t, "user by email "+email, got, ana, normUser)
	}

	list, err := s.ListUsers(ctx, a.ID)
	must(t, "listing users", err)
	if got, want := userIDs(list), userIDs([]*domain.User{zed, old, bob, ana}); !slices.Equal(got, want) {
		t.Errorf("ListUsers(a) = %v, want %v (oldest first)", got, want)
	}
	none, err := s.ListUsers(ctx, "no-such-team")
	must(t, "listing an unknown team's users", err)
	if len(none) != 0 {
		t.Errorf("an unknown team lists %d users", len(none))
	}

	// UpdateUser writes name, role, password hash, last login and disabled time; team,
	// email and creation time stay.
	upd := *bob
	upd.Name, upd.Role, upd.PasswordHash = "Robert", domain.RoleViewer, "$argon2id$new"
	upd.LastLoginAt, upd.DisabledAt = at(50, 1), at(60, 2)
	upd.TeamID, upd.Email, upd.CreatedAt = b.ID, "robert@example.com", at(70, 0)
	must(t, "updating user", s.UpdateUser(ctx, &upd))
	want := upd
	want.TeamID, want.Email, want.CreatedAt = bob.TeamID, bob.Email, bob.CreatedAt
	got, err := s.GetUser(ctx, bob.ID)
	must(t, "getting updated user", err)
	same(t, "updated user", got, &want, normUser)
	// And back to zero times.
	want.LastLoginAt, want.DisabledAt = time.Time{}, time.Time{}
	must(t, "clearing user times", s.UpdateUser(ctx, &want))
	got, err = s.GetUser(ctx, bob.ID)
	must(t, "getting user", err)
	same(t, "user with cleared times", got, &want, normUser)

	// Deleting is scoped to the team.
	wantKind(t, "deleting another team's user", s.DeleteUser(ctx, b.ID, ana.ID), domain.KindNotFound)
	if _, err := s.GetUser(ctx, ana.ID); err != nil {
		t.Fatalf("another team deleted the user: %v", err)
	}
	must(t, "deleting user", s.DeleteUser(ctx, a.ID, ana.ID))
	_, err = s.GetUser(ctx, ana.ID)
	wantKind(t, "getting a deleted user", err, domain.KindNotFound)
	_, err = s.GetUserByEmail(ctx, ana.Email)
	wantKind(t, "getting a deleted user by email", err, domain.KindNotFound)
	wantKind(t, "deleting a deleted user", s.DeleteUser(ctx, a.ID, ana.ID), domain.KindNotFound)
	list, err = s.ListUsers(ctx, a.ID)
	must(t, "listing users after delete", err)
	if got, want := userIDs(list), userIDs([]*domain.User{zed, old, bob}); !slices.Equal(got, want) {
		t.Errorf("ListUsers(a) after delete = %v, want %v", got, want)
	}
	// The email is free again.
	again := newUser(b.ID, "ANA@example.com", 9)
	must(t, "re-using a deleted user's email", s.CreateUser(ctx, again))
}

func userIDs(us []*domain.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

func testUserErrors(t *testing.T, s domain.Store) {
	ctx := t.Context()
	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")
	ana := newUser(a.ID, "ana@example.com", 0)
	must(t, "creating user", s.CreateUser(ctx, ana))

	dupID := newUser(b.ID, "fresh@example.com", 1)
	dupID.ID = ana.ID
	tests := []struct {
		name string
		err  error
		kind domain.Kind
	}{
		{"same email", s.CreateUser(ctx, newUser(a.ID, "ana@example.com", 1)), domain.KindConflict},
		{"same email, other case, other team", s.CreateUser(ctx, newUser(b.ID, "ANA@Example.Com", 1)), domain.KindConflict},
		{"same id", s.CreateUser(ctx, dupID), domain.KindConflict},
		{"unknown team", s.CreateUser(ctx, newUser("no-such-team", "x@example.com", 1)), domain.KindNotFound},
		{"get missing", get(s.GetUser(ctx, "missing")), domain.KindNotFound},
		{"get missing email", get(s.GetUserByEmail(ctx, "nobody@example.com")), domain.KindNotFound},
		{"update missing", s.UpdateUser(ctx, newUser(a.ID, "y@example.com", 1)), domain.KindNotFound},
		{"delete missing", s.DeleteUser(ctx, a.ID, "missing"), domain.KindNotFound},
	}
	for _, tc := range tests {
		wantKind(t, tc.name, tc.err, tc.kind)
	}
	for _, team := range []*domain.Team{a, b} {
		list, err := s.ListUsers(ctx, team.ID)
		must(t, "listing users", err)
		want := 0
		if team == a {
			want = 1
		}
		if len(list) != want {
			t.Errorf("team %s has %d users after failed creates, want %d", team.Name, len(list), want)
		}
	}
	got, err := s.GetUser(ctx, ana.ID)
	must(t, "getting user", err)
	same(t, "user after failed creates", got, ana, normUser)
}

func testAPIKeyScopes(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "scoped")
	tests := []struct {
		name string
		key  domain.APIKey
		want []domain.Scope // what Scopes reads back as
	}{
		{"several scopes", domain.APIKey{Scopes: []domain.Scope{domain.ScopeSandboxesRead, domain.ScopeUsageRead, domain.ScopeAuditRead}},
			[]domain.Scope{domain.ScopeSandboxesRead, domain.ScopeUsageRead, domain.ScopeAuditRead}},
		{"admin scope", domain.APIKey{Scopes: []domain.Scope{domain.ScopeAdmin}}, []domain.Scope{domain.ScopeAdmin}},
		{"nil scopes", domain.APIKey{}, nil},
		{"empty scopes", domain.APIKey{Scopes: []domain.Scope{}}, nil},
		{"user and expiry", domain.APIKey{Scopes: []domain.Scope{domain.ScopeKeysWrite}, UserID: "user-1",
			ExpiresAt: at(3600, 42)}, []domain.Scope{domain.ScopeKeysWrite}},
		{"platform admin with every time", domain.APIKey{Admin: true, Scopes: domain.AllScopes, UserID: "u",
			LastUsedAt: at(2, 0), RevokedAt: at(3, 0), ExpiresAt: at(4, 0)}, domain.AllScopes},
	}
	var made []*domain.APIKey
	for i, tc := range tests {
		k := tc.key
		k.ID, k.TeamID, k.Name, k.Prefix, k.Hash = domain.NewID(20), team.ID, tc.name, "sk_"+tc.name, domain.NewID(40)
		k.CreatedAt = at(i, 0)
		must(t, "creating key "+tc.name, s.CreateAPIKey(ctx, &k))
		want := k
		want.Scopes = tc.want
		made = append(made, &want)

		got, err := s.GetAPIKeyByHash(ctx, k.Hash)
		must(t, "getting key", err)
		same(t, "key "+tc.name, got, &want, normKey)
		if (got.Scopes == nil) != (tc.want == nil) {
			t.Errorf("key %s: Scopes = %#v, want %#v", tc.name, got.Scopes, tc.want)
		}
	}
	keys, err := s.ListAPIKeys(ctx, team.ID)
	must(t, "listing keys", err)
	if len(keys) != len(made) {
		t.Fatalf("ListAPIKeys returned %d keys, want %d", len(keys), len(made))
	}
	for i := range made {
		same(t, "listed key", keys[i], made[i], normKey)
	}
}
