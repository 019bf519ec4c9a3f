package auth

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlite"
)

// fakeStore is a real store whose methods can be replaced one at a time.
type fakeStore struct {
	domain.Store
	getKeyByHash func(ctx context.Context, hash string) (*domain.APIKey, error)
	touchKey     func(ctx context.Context, id string, at time.Time) error
	listTeams    func(ctx context.Context) ([]*domain.Team, error)
}

func (f *fakeStore) GetAPIKeyByHash(ctx context.Context, hash string) (*domain.APIKey, error) {
	if f.getKeyByHash != nil {
		return f.getKeyByHash(ctx, hash)
	}
	return f.Store.GetAPIKeyByHash(ctx, hash)
}

func (f *fakeStore) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	if f.touchKey != nil {
		return f.touchKey(ctx, id, at)
	}
	return f.Store.TouchAPIKey(ctx, id, at)
}

func (f *fakeStore) ListTeams(ctx context.Context) ([]*domain.Team, error) {
	if f.listTeams != nil {
		return f.listTeams(ctx)
	}
	return f.Store.ListTeams(ctx)
}

func newStore(t *testing.T) *fakeStore {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "warren.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &fakeStore{Store: s}
}

// clock is a settable fake time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// fixture is a key service with two teams, each with one key.
type fixture struct {
	store      *fakeStore
	clock      *clock
	ks         *KeyService
	a, b       domain.Principal
	aSecret    string
	bSecret    string
	aKey, bKey *domain.APIKey
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{store: newStore(t), clock: &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}}
	var err error
	f.ks, err = NewKeyService(f.store, WithClock(f.clock.now))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"team-a", "team-b"} {
		if err := f.store.CreateTeam(ctx, &domain.Team{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	f.a, f.b = domain.Principal{TeamID: "team-a"}, domain.Principal{TeamID: "team-b"}
	if f.aKey, f.aSecret, err = f.ks.CreateKey(ctx, f.a, "a's key"); err != nil {
		t.Fatal(err)
	}
	if f.bKey, f.bSecret, err = f.ks.CreateKey(ctx, f.b, "b's key"); err != nil {
		t.Fatal(err)
	}
	return f
}

func wantUnauthorized(t *testing.T, what string, err error, hint string) {
	t.Helper()
	if !domain.IsKind(err, domain.KindUnauthorized) {
		t.Fatalf("%s: got %v, want KindUnauthorized", what, err)
	}
	if msg := domain.PublicMessage(err); !strings.Contains(msg, hint) {
		t.Errorf("%s: message %q does not tell what to do (want it to mention %q)", what, msg, hint)
	}
}

func TestNewKeyServiceNeedsStore(t *testing.T) {
	if _, err := NewKeyService(nil); err == nil {
		t.Error("NewKeyService(nil) succeeded")
	}
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	revoked, revokedSecret, err := f.ks.CreateKey(ctx, f.a, "old")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ks.RevokeKey(ctx, f.a, revoked.ID); err != nil {
		t.Fatal(err)
	}
	unknown, _ := NewSecret()

	tests := []struct {
		name   string
		secret string
		want   domain.Principal // zero: must be rejected with hint
		hint   string
	}{
		{"team a", f.aSecret, domain.Principal{TeamID: "team-a", KeyID: f.aKey.ID}, ""},
		{"team b", f.bSecret, domain.Principal{TeamID: "team-b", KeyID: f.bKey.ID}, ""},
		{"surrounding space", " " + f.aSecret + "\n", domain.Principal{TeamID: "team-a", KeyID: f.aKey.ID}, ""},
		{"empty", "", domain.Principal{}, "Authorization: Bearer sk_"},
		{"blank", "  ", domain.Principal{}, "Authorization: Bearer sk_"},
		{"wrong prefix", "pk_" + f.aSecret[3:], domain.Principal{}, "copy the whole key"},
		{"truncated", f.aSecret[:30], domain.Principal{}, "copy the whole key"},
		{"bearer included", "Bearer " + f.aSecret, domain.Principal{}, "copy the whole key"},
		{"unknown", unknown, domain.Principal{}, "use a current key"},
		{"revoked", revokedSecret, domain.Principal{}, "use a current key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.ks.Authenticate(ctx, tc.secret)
			if tc.want == (domain.Principal{}) {
				wantUnauthorized(t, "Authenticate", err, tc.hint)
				return
			}
			if err != nil || p != tc.want {
				t.Fatalf("Authenticate = %+v, %v; want %+v", p, err, tc.want)
			}
		})
	}
}

func TestAuthenticateStoreFailureIsNotUnauthorized(t *testing.T) {
	f := newFixture(t)
	outage := errors.New("disk on fire")
	f.store.getKeyByHash = func(context.Context, string) (*domain.APIKey, error) { return nil, outage }
	_, err := f.ks.Authenticate(t.Context(), f.aSecret)
	if !errors.Is(err, outage) || domain.IsKind(err, domain.KindUnauthorized) {
		t.Errorf("Authenticate during an outage = %v; want the store error, not KindUnauthorized", err)
	}
}

func TestAuthenticateTouchesAtMostOncePerMinute(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	var touches []time.Time
	f.store.touchKey = func(ctx context.Context, id string, at time.Time) error {
		touches = append(touches, at)
		return f.store.Store.TouchAPIKey(ctx, id, at)
	}
	auth := func() {
		t.Helper()
		if _, err := f.ks.Authenticate(ctx, f.aSecret); err != nil {
			t.Fatal(err)
		}
	}
	start := f.clock.now()
	auth() // never used: touched
	auth()
	f.clock.add(59 * time.Second)
	auth() // 59s since the last touch: not yet
	f.clock.add(time.Second)
	auth() // a minute: touched
	auth()
	f.clock.add(time.Hour)
	auth() // touched

	want := []time.Time{start, start.Add(time.Minute), start.Add(time.Minute + time.Hour)}
	if len(touches) != len(want) {
		t.Fatalf("touched at %v, want %v", touches, want)
	}
	for i := range want {
		if !touches[i].Equal(want[i]) {
			t.Errorf("touch %d at %v, want %v", i, touches[i], want[i])
		}
	}
	keys, err := f.ks.ListKeys(ctx, f.a)
	if err != nil {
		t.Fatal(err)
	}
	if !keys[0].LastUsedAt.Equal(want[2]) {
		t.Errorf("LastUsedAt = %v, want %v", keys[0].LastUsedAt, want[2])
	}
}

func TestAuthenticateSurvivesTouchFailure(t *testing.T) {
	f := newFixture(t)
	f.store.touchKey = func(context.Context, string, time.Time) error { return errors.New("read-only disk") }
	if p, err := f.ks.Authenticate(t.Context(), f.aSecret); err != nil || p.TeamID != "team-a" {
		t.Errorf("Authenticate with a failing touch = %+v, %v; want team-a", p, err)
	}
}

func TestCreateKey(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	k, secret, err := f.ks.CreateKey(ctx, f.a, "  laptop  ")
	if err != nil {
		t.Fatal(err)
	}
	if k.Name != "laptop" || k.TeamID != "team-a" || k.Admin || k.Hash != "" ||
		!strings.HasPrefix(secret, k.Prefix) || !k.CreatedAt.Equal(f.clock.now()) {
		t.Errorf("CreateKey = %+v (secret %q): want a non-admin team-a key named laptop, prefix of the secret, no hash", k, secret)
	}
	// An admin principal still makes ordinary keys.
	if k, _, err := f.ks.CreateKey(ctx, domain.Principal{TeamID: "team-a", Admin: true}, "ci"); err != nil || k.Admin {
		t.Errorf("CreateKey by an admin = %+v, %v; want a non-admin key", k, err)
	}

	for _, name := range []string{"", "   ", strings.Repeat("x", 101), "a\x00b", "new\nline"} {
		_, _, err := f.ks.CreateKey(ctx, f.a, name)
		if !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != "name" {
			t.Errorf("CreateKey(%q) = %v; want KindInvalid on field name", name, err)
		}
	}
	_, _, err = f.ks.CreateKey(ctx, domain.Principal{}, "x")
	wantUnauthorized(t, "CreateKey without a principal", err, "Authorization")
	_, _, err = f.ks.CreateKey(ctx, domain.Principal{TeamID: "no-such-team"}, "x")
	if !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("CreateKey for an unknown team = %v; want KindNotFound", err)
	}
}

func TestListKeys(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.clock.add(time.Second)
	second, _, err := f.ks.CreateKey(ctx, f.a, "second")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := f.ks.ListKeys(ctx, f.a)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != f.aKey.ID || keys[1].ID != second.ID {
		t.Fatalf("ListKeys(team a) = %v, want [%s %s]", keys, f.aKey.ID, second.ID)
	}
	for _, k := range keys {
		if k.TeamID != "team-a" || k.Hash != "" {
			t.Errorf("listed key %+v: want team-a's, without hash", k)
		}
	}
	_, err = f.ks.ListKeys(ctx, domain.Principal{})
	wantUnauthorized(t, "ListKeys without a principal", err, "Authorization")
}

func TestRevokeKey(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	err := f.ks.RevokeKey(ctx, f.b, f.aKey.ID)
	if !domain.IsKind(err, domain.KindNotFound) {
		t.Fatalf("team b revoking team a's key = %v, want KindNotFound", err)
	}
	if _, err := f.ks.Authenticate(ctx, f.aSecret); err != nil {
		t.Fatalf("key revoked by another team: %v", err)
	}
	if err := f.ks.RevokeKey(ctx, f.a, f.aKey.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.ks.Authenticate(ctx, f.aSecret)
	wantUnauthorized(t, "revoked key", err, "current key")
	if err := f.ks.RevokeKey(ctx, f.a, "no-such-key"); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("revoking a missing key = %v, want KindNotFound", err)
	}
	err = f.ks.RevokeKey(ctx, domain.Principal{}, f.bKey.ID)
	wantUnauthorized(t, "RevokeKey without a principal", err, "Authorization")
	if _, err := f.ks.Authenticate(ctx, f.bSecret); err != nil {
		t.Errorf("team b's key after unrelated revocations: %v", err)
	}
}
