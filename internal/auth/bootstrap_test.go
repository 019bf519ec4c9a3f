package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// bootstrap runs Bootstrap and checks what it claims: the file holds the returned
// secret, privately, and the secret is an admin key of the default team.
func bootstrap(t *testing.T, s domain.Store, path string, wantCreated bool) (string, domain.Principal) {
	t.Helper()
	ctx := t.Context()
	secret, created, err := Bootstrap(ctx, s, path)
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	if created != wantCreated {
		t.Fatalf("Bootstrap created = %v, want %v", created, wantCreated)
	}
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) != secret {
		t.Fatalf("key file holds %q (%v), want the returned secret", b, err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("key file mode %v, want 0600", m)
	}
	ks, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ks.Keys.Authenticate(ctx, secret)
	if err != nil || !p.Admin || !slices.Equal(p.Scopes, adminScopes) {
		t.Fatalf("bootstrap key authenticates as %+v, %v; want a platform admin with the admin scope", p, err)
	}
	team, err := s.GetTeam(ctx, p.TeamID)
	if err != nil || team.Name != DefaultTeam {
		t.Fatalf("bootstrap key's team = %+v, %v; want %q", team, err, DefaultTeam)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("Bootstrap left a temporary file %s", e.Name())
		}
	}
	return secret, p
}

func TestBootstrap(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	dir := filepath.Join(t.TempDir(), "etc", "warren")
	path := filepath.Join(dir, "admin.key")

	first, p := bootstrap(t, s, path, true)
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("created directory mode %v, want 0700", m)
	}
	if m := mode(t, filepath.Dir(dir)); m != 0o700 {
		t.Errorf("created parent mode %v, want 0700", m)
	}

	// A restart finds the working key and changes nothing.
	if again, _ := bootstrap(t, s, path, false); again != first {
		t.Fatalf("second Bootstrap returned a different secret")
	}

	// Each way of losing the key makes a new one for the same default team.
	lose := []struct {
		name string
		do   func(t *testing.T)
	}{
		{"revoked", func(t *testing.T) {
			if err := s.RevokeAPIKey(ctx, p.TeamID, p.KeyID, time.Now()); err != nil {
				t.Fatal(err)
			}
		}},
		{"file deleted", func(t *testing.T) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"file garbled", func(t *testing.T) {
			if err := os.WriteFile(path, []byte("not a key\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	prev := first
	for _, l := range lose {
		t.Run(l.name, func(t *testing.T) {
			l.do(t)
			next, np := bootstrap(t, s, path, true)
			if next == prev || np.TeamID != p.TeamID {
				t.Errorf("after the key was %s: new secret %v, team %s (want new secret, team %s)", l.name, next != prev, np.TeamID, p.TeamID)
			}
			prev, p = next, np
		})
	}
	teams, err := s.ListTeams(ctx)
	if err != nil || len(teams) != 1 {
		t.Errorf("teams after bootstraps: %d, %v; want just the default team", len(teams), err)
	}
}

func TestBootstrapStoreOutageKeepsFile(t *testing.T) {
	s := newStore(t)
	path := filepath.Join(t.TempDir(), "admin.key")
	first, _ := bootstrap(t, s, path, true)

	outage := errors.New("database unavailable")
	s.getKeyByHash = func(context.Context, string) (*domain.APIKey, error) { return nil, outage }
	if _, _, err := Bootstrap(t.Context(), s, path); !errors.Is(err, outage) {
		t.Fatalf("Bootstrap during an outage = %v, want the store error", err)
	}
	s.getKeyByHash = nil
	if again, _ := bootstrap(t, s, path, false); again != first {
		t.Error("an outage replaced the admin key")
	}
}

func TestBootstrapUnwritablePath(t *testing.T) {
	s := newStore(t)
	file := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A path under a regular file cannot be created.
	if _, _, err := Bootstrap(t.Context(), s, filepath.Join(file, "sub", "admin.key")); err == nil {
		t.Fatal("Bootstrap under a regular file succeeded")
	}
	teams, err := s.ListTeams(t.Context())
	if err != nil || len(teams) != 0 {
		t.Errorf("a failed Bootstrap left %d teams (%v); want the store untouched", len(teams), err)
	}
}

func TestBootstrapListTeamsFailure(t *testing.T) {
	s := newStore(t)
	s.listTeams = func(context.Context) ([]*domain.Team, error) { return nil, errors.New("boom") }
	path := filepath.Join(t.TempDir(), "admin.key")
	if _, _, err := Bootstrap(t.Context(), s, path); err == nil {
		t.Fatal("Bootstrap succeeded although the store failed")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed Bootstrap left a key file (stat: %v)", err)
	}
}

// TestEnsureAdminKey: the servers of a cluster given one admin key share it: the first
// creates it (for the default team, an admin's), the others find it; a malformed,
// revoked or team key is refused with what to do.
func TestEnsureAdminKey(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	secret, _ := NewSecret()
	for i, want := range []bool{true, false, false} {
		created, err := EnsureAdminKey(ctx, s, secret)
		if err != nil || created != want {
			t.Fatalf("server %d: EnsureAdminKey = %v, %v; want created %v", i, created, err, want)
		}
	}
	ks, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ks.Keys.Authenticate(ctx, secret)
	if err != nil || !p.Admin {
		t.Fatalf("the ensured key authenticates as %+v, %v; want a platform admin", p, err)
	}
	keys, err := s.ListAPIKeys(ctx, p.TeamID)
	if err != nil || len(keys) != 1 {
		t.Errorf("keys of the default team: %d (%v), want the one", len(keys), err)
	}
	// A bootstrap on top of it (a server without WARREN_ADMIN_KEY) reuses the team.
	if _, _, err := Bootstrap(ctx, s, filepath.Join(t.TempDir(), "admin.key")); err != nil {
		t.Fatal(err)
	}
	if teams, _ := s.ListTeams(ctx); len(teams) != 1 {
		t.Errorf("%d teams, want the one default team", len(teams))
	}
	_, teamSecret, err := ks.Keys.CreateKey(ctx, p, domain.KeySpec{Name: "team"})
	if err != nil {
		t.Fatal(err)
	}
	revoked, _ := NewSecret()
	if _, err := EnsureAdminKey(ctx, s, revoked); err != nil {
		t.Fatal(err)
	}
	rp, _ := ks.Keys.Authenticate(ctx, revoked)
	if err := s.RevokeAPIKey(ctx, rp.TeamID, rp.KeyID, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, secret, want string }{
		{"malformed", "sk_short", "openssl rand"},
		{"not a key at all", "hunter2-hunter2-hunter2-hunter2-hunter2-hunter2", "must be"},
		{"revoked", revoked, "was revoked"},
		{"a team's key", teamSecret, "not a platform admin's"},
	} {
		if _, err := EnsureAdminKey(ctx, s, tc.secret); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// TestDefaultTeamOnce: servers starting at once on an empty database make one default
// team: one that did not see the other's team (a read before its insert) fails on the
// shared id and takes that team.
func TestDefaultTeamOnce(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	first, _ := NewSecret()
	if _, err := EnsureAdminKey(ctx, s, first); err != nil {
		t.Fatal(err)
	}
	s.listTeams = func(context.Context) ([]*domain.Team, error) { return nil, nil } // the stale read
	second, _ := NewSecret()
	if _, err := EnsureAdminKey(ctx, s, second); err != nil {
		t.Fatalf("the second server: %v", err)
	}
	s.listTeams = nil
	teams, err := s.ListTeams(ctx)
	if err != nil || len(teams) != 1 {
		t.Fatalf("%d teams (%v), want one default team", len(teams), err)
	}
	keys, _ := s.ListAPIKeys(ctx, teams[0].ID)
	if len(keys) != 2 {
		t.Errorf("the default team has %d keys, want both servers' admin keys", len(keys))
	}
}
