package storetest

import (
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func testTeams(t *testing.T, s domain.Store) {
	ctx := t.Context()
	teams, err := s.ListTeams(ctx)
	must(t, "listing teams of an empty store", err)
	if len(teams) != 0 {
		t.Fatalf("empty store lists %d teams", len(teams))
	}

	// Listed oldest first; created out of order on purpose.
	want := []*domain.Team{
		{ID: "team-zero-time", Name: "zero created_at"},
		{ID: "team-a", Name: "ünïcødé 'quoted' \"name\"", CreatedAt: at(1, 1)},
		{ID: "team-b", Name: "", CreatedAt: at(2, 0)},
		{ID: "team-c", Name: "default", CreatedAt: at(3, 999999)},
	}
	for _, i := range []int{2, 0, 3, 1} {
		must(t, "creating team", s.CreateTeam(ctx, want[i]))
	}
	for _, w := range want {
		got, err := s.GetTeam(ctx, w.ID)
		must(t, "getting team", err)
		same(t, "team "+w.ID, got, w, normTeam)
	}
	teams, err = s.ListTeams(ctx)
	must(t, "listing teams", err)
	if len(teams) != len(want) {
		t.Fatalf("ListTeams returned %d teams, want %d", len(teams), len(want))
	}
	for i := range want {
		same(t, "listed team", teams[i], want[i], normTeam)
	}
}

func testTeamErrors(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "one")
	_, err := s.GetTeam(ctx, "missing")
	wantKind(t, "GetTeam of a missing id", err, domain.KindNotFound)
	err = s.CreateTeam(ctx, &domain.Team{ID: team.ID, Name: "again", CreatedAt: at(5, 0)})
	wantKind(t, "CreateTeam with a taken id", err, domain.KindConflict)
	got, err := s.GetTeam(ctx, team.ID)
	must(t, "getting team", err)
	same(t, "team after a conflicting create", got, team, normTeam)
}

func testAPIKeyRoundTrip(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "keys")
	tests := []struct {
		name string
		key  domain.APIKey
	}{
		{"minimal", domain.APIKey{Name: "ci", Prefix: "sk_abcd1234", CreatedAt: at(0, 0)}},
		{"admin with all times", domain.APIKey{Name: "admin", Prefix: "sk_ADMIN000", Admin: true,
			CreatedAt: at(1, 0), LastUsedAt: at(2, 5), RevokedAt: at(3, 7)}},
		{"zero times", domain.APIKey{Name: ""}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := tc.key
			k.ID = domain.NewID(20)
			k.TeamID = team.ID
			k.Hash = "hash-" + tc.name + string(rune('a'+i))
			must(t, "creating key", s.CreateAPIKey(ctx, &k))
			got, err := s.GetAPIKeyByHash(ctx, k.Hash)
			must(t, "getting key by hash", err)
			same(t, "API key", got, &k, normKey)
		})
	}
}

func testAPIKeyErrors(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "keys")
	key := &domain.APIKey{ID: "key-1", TeamID: team.ID, Name: "one", Prefix: "sk_1", Hash: "h1", CreatedAt: at(0, 0)}
	must(t, "creating key", s.CreateAPIKey(ctx, key))

	tests := []struct {
		name string
		err  error
		kind domain.Kind
	}{
		{"duplicate id", s.CreateAPIKey(ctx, &domain.APIKey{ID: "key-1", TeamID: team.ID, Hash: "h2"}), domain.KindConflict},
		{"duplicate hash", s.CreateAPIKey(ctx, &domain.APIKey{ID: "key-2", TeamID: team.ID, Hash: "h1"}), domain.KindConflict},
		{"unknown team", s.CreateAPIKey(ctx, &domain.APIKey{ID: "key-3", TeamID: "no-such-team", Hash: "h3"}), domain.KindNotFound},
		{"get unknown hash", get(s.GetAPIKeyByHash(ctx, "nope")), domain.KindNotFound},
		{"touch unknown id", s.TouchAPIKey(ctx, "nope", at(1, 0)), domain.KindNotFound},
		{"revoke unknown id", s.RevokeAPIKey(ctx, team.ID, "nope", at(1, 0)), domain.KindNotFound},
	}
	for _, tc := range tests {
		wantKind(t, tc.name, tc.err, tc.kind)
	}
	keys, err := s.ListAPIKeys(ctx, team.ID)
	must(t, "listing keys", err)
	if len(keys) != 1 {
		t.Fatalf("failed creates left %d keys, want 1", len(keys))
	}
	same(t, "key after failed creates", keys[0], key, normKey)
}

// get drops the value of a (value, error) pair.
func get[T any](_ T, err error) error { return err }

func testAPIKeyTeamScoping(t *testing.T, s domain.Store) {
	ctx := t.Context()
	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")
	var aKeys []*domain.APIKey
	for i, team := range []*domain.Team{a, b, a, b, a} {
		k := &domain.APIKey{ID: domain.NewID(20), TeamID: team.ID, Name: "k", Prefix: "sk_x",
			Hash: domain.NewID(40), CreatedAt: at(10-i, 0)}
		must(t, "creating key", s.CreateAPIKey(ctx, k))
		if team == a {
			aKeys = append(aKeys, k)
		}
	}
	// Oldest first: aKeys were created with falling times.
	aKeys[0], aKeys[2] = aKeys[2], aKeys[0]

	listA := func() []*domain.APIKey {
		t.Helper()
		keys, err := s.ListAPIKeys(ctx, a.ID)
		must(t, "listing team a's keys", err)
		if len(keys) != len(aKeys) {
			t.Fatalf("team a lists %d keys, want %d", len(keys), len(aKeys))
		}
		return keys
	}
	for i, k := range listA() {
		same(t, "listed key", k, aKeys[i], normKey)
	}
	none, err := s.ListAPIKeys(ctx, "no-such-team")
	must(t, "listing an unknown team's keys", err)
	if len(none) != 0 {
		t.Errorf("an unknown team lists %d keys", len(none))
	}

	victim := aKeys[1]
	wantKind(t, "revoking another team's key", s.RevokeAPIKey(ctx, b.ID, victim.ID, at(20, 0)), domain.KindNotFound)
	got, err := s.GetAPIKeyByHash(ctx, victim.Hash)
	must(t, "getting key", err)
	if !got.RevokedAt.IsZero() {
		t.Fatalf("another team revoked the key: RevokedAt = %v", got.RevokedAt)
	}

	must(t, "revoking key", s.RevokeAPIKey(ctx, a.ID, victim.ID, at(21, 0)))
	must(t, "revoking key again", s.RevokeAPIKey(ctx, a.ID, victim.ID, at(22, 0)))
	must(t, "touching key", s.TouchAPIKey(ctx, victim.ID, at(23, 42)))
	want := *victim
	want.RevokedAt, want.LastUsedAt = at(21, 0), at(23, 42)
	got, err = s.GetAPIKeyByHash(ctx, victim.Hash)
	must(t, "getting revoked key", err)
	same(t, "revoked key (first revocation time kept)", got, &want, normKey)
	if listed := listA(); !listed[1].RevokedAt.Equal(at(21, 0)) {
		t.Errorf("listing after revoke: RevokedAt = %v, want %v (revoked keys are listed)", listed[1].RevokedAt, at(21, 0))
	}
}

func testTemplates(t *testing.T, s domain.Store) {
	ctx := t.Context()
	_, err := s.GetTemplate(ctx, "", "missing")
	wantKind(t, "GetTemplate of a missing id", err, domain.KindNotFound)

	py := &domain.Template{ID: "python", Description: "Python 3", Hash: "h1", RootFS: "/var/lib/warren/py",
		Ready: true, BuiltAt: at(1, 3), SizeBytes: 1 << 33, StartCmd: "/usr/local/bin/server --port 49999", ReadyPort: 49999,
		PrivatePorts: []int{49999, 8888}, Env: map[string]string{"A": "1"}, Workdir: "/app", User: "user",
		ReadyCheck: domain.ReadyCheck{URL: "http://localhost:8080/", Timeout: 3 * time.Second}, CreatedAt: at(1, 1),
		Limits: domain.Limits{CPUCores: 1.5, MemoryMB: 2048}}
	base := &domain.Template{ID: "base"}
	for _, tpl := range []*domain.Template{py, base} {
		must(t, "inserting template", s.UpsertTemplate(ctx, tpl))
		got, err := s.GetTemplate(ctx, "", tpl.ID)
		must(t, "getting template", err)
		same(t, "template "+tpl.ID, got, tpl, normTemplate)
	}

	// Replacing overwrites every field, including back to zero values.
	py2 := &domain.Template{ID: "python", Description: "rebuilding", Hash: "h2"}
	must(t, "replacing template", s.UpsertTemplate(ctx, py2))
	got, err := s.GetTemplate(ctx, "", "python")
	must(t, "getting replaced template", err)
	same(t, "replaced template", got, py2, normTemplate)

	list, err := s.ListTemplates(ctx, "")
	must(t, "listing templates", err)
	if len(list) != 2 {
		t.Fatalf("ListTemplates returned %d templates, want 2", len(list))
	}
	same(t, "first listed template", list[0], base, normTemplate)
	same(t, "second listed template", list[1], py2, normTemplate)
}
