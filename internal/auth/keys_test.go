package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
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
	appendAudit  func(ctx context.Context, e *domain.AuditEntry) error
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

func (f *fakeStore) AppendAudit(ctx context.Context, e *domain.AuditEntry) error {
	if f.appendAudit != nil {
		return f.appendAudit(ctx, e)
	}
	return f.Store.AppendAudit(ctx, e)
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

// Scope sets used throughout the tests, written out rather than taken from
// domain.RoleScopes so that a change there shows up here.
var (
	adminScopes  = []domain.Scope{domain.ScopeAdmin}
	memberScopes = []domain.Scope{domain.ScopeSandboxesRead, domain.ScopeSandboxesWrite,
		domain.ScopeKeysRead, domain.ScopeKeysWrite, domain.ScopeUsageRead, domain.ScopeTeamRead}
	viewerScopes = []domain.Scope{domain.ScopeSandboxesRead, domain.ScopeUsageRead, domain.ScopeTeamRead}
)

// testSessionTTL is how long fixture logins last.
const testSessionTTL = 2 * time.Hour

// fixture is a key service with three teams: "ops", home of the platform admin, and
// team-a and team-b, each with one full-access key.
type fixture struct {
	store      *fakeStore
	clock      *clock
	ks         *Services
	signer     *Signer
	logs       *bytes.Buffer
	admin      domain.Principal // platform admin (the bootstrap key's principal)
	a, b       domain.Principal // team admins of team-a and team-b
	aSecret    string
	bSecret    string
	aKey, bKey *domain.APIKey
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{store: newStore(t), clock: &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		logs: &bytes.Buffer{}}
	var err error
	if f.signer, err = NewSigner(bytes.Repeat([]byte("s"), 32)); err != nil {
		t.Fatal(err)
	}
	opts = append([]Option{WithClock(f.clock.now), WithSessions(f.signer, testSessionTTL),
		WithLogger(slog.New(slog.NewTextHandler(f.logs, nil)))}, opts...)
	if f.ks, err = New(f.store, opts...); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ops", "team-a", "team-b"} {
		if err := f.store.CreateTeam(ctx, &domain.Team{ID: id, Name: id, CreatedAt: f.clock.now()}); err != nil {
			t.Fatal(err)
		}
		f.clock.add(time.Second)
	}
	f.admin = domain.Principal{TeamID: "ops", KeyID: "bootstrap", Admin: true, Scopes: adminScopes}
	f.a = domain.Principal{TeamID: "team-a", Scopes: adminScopes}
	f.b = domain.Principal{TeamID: "team-b", Scopes: adminScopes}
	if f.aKey, f.aSecret, err = f.ks.Keys.CreateKey(ctx, f.a, domain.KeySpec{Name: "a's key"}); err != nil {
		t.Fatal(err)
	}
	if f.bKey, f.bSecret, err = f.ks.Keys.CreateKey(ctx, f.b, domain.KeySpec{Name: "b's key"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// newKey creates a key for p with the given scopes, failing the test on error.
func (f *fixture) newKey(t *testing.T, p domain.Principal, name string, scopes ...domain.Scope) (*domain.APIKey, string) {
	t.Helper()
	k, secret, err := f.ks.Keys.CreateKey(t.Context(), p, domain.KeySpec{Name: name, Scopes: scopes})
	if err != nil {
		t.Fatalf("CreateKey(%s, %v): %v", name, scopes, err)
	}
	return k, secret
}

// authenticate returns the principal of secret, failing the test on error.
func (f *fixture) authenticate(t *testing.T, secret string) domain.Principal {
	t.Helper()
	p, err := f.ks.Keys.Authenticate(t.Context(), secret)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return p
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

// wantKind checks err's kind and, for a non-empty field, the field it names.
func wantKind(t *testing.T, what string, err error, kind domain.Kind, field string) {
	t.Helper()
	if !domain.IsKind(err, kind) {
		t.Errorf("%s: got %v (kind %v), want %v", what, err, domain.KindOf(err), kind)
		return
	}
	if field != "" && domain.FieldOf(err) != field {
		t.Errorf("%s: error %v names field %q, want %q", what, err, domain.FieldOf(err), field)
	}
	if domain.PublicMessage(err) == "" {
		t.Errorf("%s: error %v has no client message", what, err)
	}
}

func samePrincipal(a, b domain.Principal) bool {
	return a.TeamID == b.TeamID && a.KeyID == b.KeyID && a.UserID == b.UserID && a.Admin == b.Admin &&
		slices.Equal(a.Scopes, b.Scopes) && a.RequestsPerMinute == b.RequestsPerMinute
}

func TestNewNeedsStore(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	revoked, revokedSecret := f.newKey(t, f.a, "old")
	if err := f.ks.Keys.RevokeKey(ctx, f.a, revoked.ID); err != nil {
		t.Fatal(err)
	}
	narrow, narrowSecret := f.newKey(t, f.a, "read only", domain.ScopeSandboxesRead)
	// A key made before scopes existed has none stored.
	legacySecret, legacyPrefix := NewSecret()
	legacy := &domain.APIKey{ID: "legacy", TeamID: "team-b", Name: "legacy", Prefix: legacyPrefix,
		Hash: Hash(legacySecret), CreatedAt: f.clock.now()}
	if err := f.store.CreateAPIKey(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	if err := f.store.UpdateTeam(ctx, &domain.Team{ID: "team-b", Name: "team-b",
		Quota: domain.Quota{RequestsPerMinute: 600}}); err != nil {
		t.Fatal(err)
	}
	unknown, _ := NewSecret()

	tests := []struct {
		name   string
		secret string
		want   *domain.Principal // nil: must be rejected with hint
		hint   string
	}{
		{"team a", f.aSecret, &domain.Principal{TeamID: "team-a", KeyID: f.aKey.ID, Scopes: adminScopes}, ""},
		{"team b with a rate quota", f.bSecret, &domain.Principal{TeamID: "team-b", KeyID: f.bKey.ID, Scopes: adminScopes, RequestsPerMinute: 600}, ""},
		{"surrounding space", " " + f.aSecret + "\n", &domain.Principal{TeamID: "team-a", KeyID: f.aKey.ID, Scopes: adminScopes}, ""},
		{"scoped key", narrowSecret, &domain.Principal{TeamID: "team-a", KeyID: narrow.ID, Scopes: []domain.Scope{domain.ScopeSandboxesRead}}, ""},
		{"legacy key without scopes", legacySecret, &domain.Principal{TeamID: "team-b", KeyID: "legacy", Scopes: adminScopes, RequestsPerMinute: 600}, ""},
		{"empty", "", nil, "Authorization: Bearer sk_"},
		{"blank", "  ", nil, "Authorization: Bearer sk_"},
		{"wrong prefix", "pk_" + f.aSecret[3:], nil, "copy the whole key"},
		{"truncated", f.aSecret[:30], nil, "copy the whole key"},
		{"bearer included", "Bearer " + f.aSecret, nil, "copy the whole key"},
		{"unknown", unknown, nil, "use a current key"},
		{"revoked", revokedSecret, nil, "use a current key"},
		{"session prefix, garbage", "ws_garbage", nil, "log in again"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.ks.Keys.Authenticate(ctx, tc.secret)
			if tc.want == nil {
				wantUnauthorized(t, "Authenticate", err, tc.hint)
				return
			}
			if err != nil || !samePrincipal(p, *tc.want) {
				t.Fatalf("Authenticate = %+v, %v; want %+v", p, err, *tc.want)
			}
		})
	}
}

func TestAuthenticateStoreFailureIsNotUnauthorized(t *testing.T) {
	f := newFixture(t)
	outage := errors.New("disk on fire")
	f.store.getKeyByHash = func(context.Context, string) (*domain.APIKey, error) { return nil, outage }
	_, err := f.ks.Keys.Authenticate(t.Context(), f.aSecret)
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
		f.authenticate(t, f.aSecret)
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
	keys, err := f.ks.Keys.ListKeys(ctx, f.a)
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
	if p, err := f.ks.Keys.Authenticate(t.Context(), f.aSecret); err != nil || p.TeamID != "team-a" {
		t.Errorf("Authenticate with a failing touch = %+v, %v; want team-a", p, err)
	}
	if !strings.Contains(f.logs.String(), "read-only disk") {
		t.Errorf("the touch failure was not logged; logs: %s", f.logs)
	}
}

func TestCreateKey(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	k, secret, err := f.ks.Keys.CreateKey(ctx, f.a, domain.KeySpec{Name: "  laptop  "})
	if err != nil {
		t.Fatal(err)
	}
	if k.Name != "laptop" || k.TeamID != "team-a" || k.Admin || k.Hash != "" || !k.ExpiresAt.IsZero() ||
		!strings.HasPrefix(secret, k.Prefix) || !k.CreatedAt.Equal(f.clock.now()) {
		t.Errorf("CreateKey = %+v (secret %q): want a non-admin team-a key named laptop, prefix of the secret, no hash, no expiry", k, secret)
	}
	// A platform admin still makes ordinary keys.
	if k, _, err := f.ks.Keys.CreateKey(ctx, f.admin, domain.KeySpec{Name: "ci"}); err != nil || k.Admin || k.TeamID != "ops" {
		t.Errorf("CreateKey by a platform admin = %+v, %v; want a non-admin ops key", k, err)
	}
	// The creating user is remembered.
	user := domain.Principal{TeamID: "team-a", UserID: "u1", Scopes: memberScopes}
	if k, _, err := f.ks.Keys.CreateKey(ctx, user, domain.KeySpec{Name: "mine"}); err != nil || k.UserID != "u1" {
		t.Errorf("CreateKey by a user = %+v, %v; want UserID u1", k, err)
	}

	for _, name := range []string{"", "   ", strings.Repeat("x", 101), "a\x00b", "new\nline"} {
		_, _, err := f.ks.Keys.CreateKey(ctx, f.a, domain.KeySpec{Name: name})
		wantKind(t, "CreateKey(name "+name+")", err, domain.KindInvalid, "name")
	}
	_, _, err = f.ks.Keys.CreateKey(ctx, domain.Principal{}, domain.KeySpec{Name: "x"})
	wantUnauthorized(t, "CreateKey without a principal", err, "Authorization")
	_, _, err = f.ks.Keys.CreateKey(ctx, domain.Principal{TeamID: "no-such-team", Scopes: adminScopes}, domain.KeySpec{Name: "x"})
	if !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("CreateKey for an unknown team = %v; want KindNotFound", err)
	}
}

func TestCreateKeyScopes(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	// A user's key works only while the user exists (TestKeyFollowsItsCreator).
	member := domain.Principal{TeamID: "team-a", UserID: f.addUser(t, "team-a", "m@example.com", domain.RoleMember).ID, Scopes: memberScopes}
	viewer := domain.Principal{TeamID: "team-a", UserID: "v", Scopes: viewerScopes}
	keysOnly := domain.Principal{TeamID: "team-a", KeyID: "k", Scopes: []domain.Scope{domain.ScopeKeysWrite}}
	s := func(sc ...domain.Scope) []domain.Scope { return sc }

	tests := []struct {
		name    string
		creator domain.Principal
		ask     []domain.Scope
		want    []domain.Scope // when the call succeeds
		kind    domain.Kind    // when it fails
		field   string
	}{
		{"admin default", f.a, nil, adminScopes, 0, ""},
		{"member default is member's scopes", member, nil, memberScopes, 0, ""},
		{"keys:write only default", keysOnly, nil, s(domain.ScopeKeysWrite), 0, ""},
		{"platform admin default", f.admin, nil, adminScopes, 0, ""},
		{"member narrows", member, s(domain.ScopeSandboxesRead), s(domain.ScopeSandboxesRead), 0, ""},
		{"duplicates collapse", member, s(domain.ScopeUsageRead, domain.ScopeUsageRead, domain.ScopeTeamRead),
			s(domain.ScopeUsageRead, domain.ScopeTeamRead), 0, ""},
		{"admin gives any team scope", f.a, s(domain.ScopeAuditRead, domain.ScopeTeamWrite),
			s(domain.ScopeAuditRead, domain.ScopeTeamWrite), 0, ""},
		{"platform admin narrows", f.admin, s(domain.ScopeSandboxesWrite), s(domain.ScopeSandboxesWrite), 0, ""},
		{"member cannot give admin", member, s(domain.ScopeAdmin), nil, domain.KindForbidden, ""},
		{"member cannot give audit:read", member, s(domain.ScopeSandboxesRead, domain.ScopeAuditRead), nil, domain.KindForbidden, ""},
		{"keys:write cannot give sandboxes:read", keysOnly, s(domain.ScopeSandboxesRead), nil, domain.KindForbidden, ""},
		{"unknown scope", f.a, s("sandboxes:destroy"), nil, domain.KindInvalid, "scopes"},
		{"empty scope name", member, s(""), nil, domain.KindInvalid, "scopes"},
		{"viewer lacks keys:write", viewer, nil, nil, domain.KindForbidden, ""},
		{"viewer lacks keys:write even for its own scopes", viewer, s(domain.ScopeSandboxesRead), nil, domain.KindForbidden, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, secret, err := f.ks.Keys.CreateKey(ctx, tc.creator, domain.KeySpec{Name: "k", Scopes: tc.ask})
			if tc.want == nil {
				wantKind(t, "CreateKey", err, tc.kind, tc.field)
				if k != nil || secret != "" {
					t.Errorf("a refused CreateKey returned key %+v, secret %q", k, secret)
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			if !slices.Equal(k.Scopes, tc.want) {
				t.Errorf("key scopes = %v, want %v", k.Scopes, tc.want)
			}
			if p := f.authenticate(t, secret); !slices.Equal(p.Scopes, tc.want) || p.Admin {
				t.Errorf("key authenticates with scopes %v admin %v, want %v and not admin", p.Scopes, p.Admin, tc.want)
			}
		})
	}
	// The refusal says which scope.
	_, _, err := f.ks.Keys.CreateKey(ctx, member, domain.KeySpec{Name: "k", Scopes: s(domain.ScopeAuditRead)})
	if msg := domain.PublicMessage(err); !strings.Contains(msg, "audit:read") {
		t.Errorf("refusal %q does not name the scope", msg)
	}
}

func TestCreateKeyExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	now := f.clock.now()
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"past", now.Add(-time.Second)},
		{"now", now},
		{"long ago", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		_, _, err := f.ks.Keys.CreateKey(ctx, f.a, domain.KeySpec{Name: "x", ExpiresAt: tc.at})
		wantKind(t, "CreateKey expiring "+tc.name, err, domain.KindInvalid, "expires_at")
	}

	// A time in another zone is kept as the same instant, in UTC.
	exp := now.Add(time.Hour).In(time.FixedZone("UTC+5", 5*3600))
	k, secret, err := f.ks.Keys.CreateKey(ctx, f.a, domain.KeySpec{Name: "short-lived", ExpiresAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	if !k.ExpiresAt.Equal(exp) || k.ExpiresAt.Location() != time.UTC {
		t.Errorf("ExpiresAt = %v, want %v in UTC", k.ExpiresAt, exp)
	}
	keys, err := f.ks.Keys.ListKeys(ctx, f.a)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(keys, func(l *domain.APIKey) bool { return l.ID == k.ID }); i < 0 || !keys[i].ExpiresAt.Equal(exp) {
		t.Errorf("listed keys %v: want %s expiring at %v", keys, k.ID, exp)
	}

	steps := []struct {
		after time.Duration
		ok    bool
	}{
		{0, true},
		{time.Hour - time.Nanosecond, true},
		{time.Hour, false},
		{2 * time.Hour, false},
	}
	for _, st := range steps {
		f.clock.t = now.Add(st.after)
		_, err := f.ks.Keys.Authenticate(ctx, secret)
		if st.ok && err != nil {
			t.Errorf("key %v after creation: %v, want accepted", st.after, err)
		}
		if !st.ok {
			wantUnauthorized(t, "expired key", err, "expired")
		}
	}
	// Keys without expiry go on working.
	f.authenticate(t, f.aSecret)
}

func TestCreateKeyForAnotherTeam(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()

	k, secret, err := f.ks.Keys.CreateKey(ctx, f.admin, domain.KeySpec{Name: "for b", TeamID: "team-b"})
	if err != nil {
		t.Fatal(err)
	}
	if k.TeamID != "team-b" || k.Admin {
		t.Errorf("platform admin's key for team-b = %+v; want a non-admin team-b key", k)
	}
	want := domain.Principal{TeamID: "team-b", KeyID: k.ID, Scopes: adminScopes}
	if p := f.authenticate(t, secret); !samePrincipal(p, want) {
		t.Errorf("key for team-b authenticates as %+v, want %+v", p, want)
	}
	k, secret, err = f.ks.Keys.CreateKey(ctx, f.admin, domain.KeySpec{Name: "b reader", TeamID: "team-b",
		Scopes: []domain.Scope{domain.ScopeUsageRead}})
	if err != nil {
		t.Fatal(err)
	}
	want = domain.Principal{TeamID: "team-b", KeyID: k.ID, Scopes: []domain.Scope{domain.ScopeUsageRead}}
	if p := f.authenticate(t, secret); !samePrincipal(p, want) {
		t.Errorf("scoped key for team-b authenticates as %+v, want %+v", p, want)
	}

	// A team admin naming its own team is fine.
	if k, _, err := f.ks.Keys.CreateKey(ctx, f.a, domain.KeySpec{Name: "own", TeamID: "team-a"}); err != nil || k.TeamID != "team-a" {
		t.Errorf("team admin naming its own team = %+v, %v", k, err)
	}

	before, err := f.ks.Keys.ListKeys(ctx, f.b)
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name string
		p    domain.Principal
		team string
	}{
		{"team admin names another team", f.a, "team-b"},
		{"team admin names a missing team", f.a, "no-such-team"},
		{"platform admin names a missing team", f.admin, "no-such-team"},
	}
	for _, tc := range refused {
		_, _, err := f.ks.Keys.CreateKey(ctx, tc.p, domain.KeySpec{Name: "x", TeamID: tc.team})
		wantKind(t, tc.name, err, domain.KindNotFound, "")
	}
	after, err := f.ks.Keys.ListKeys(ctx, f.b)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("team-b has %d keys after refused creations, had %d", len(after), len(before))
	}
}

func TestListKeys(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.clock.add(time.Second)
	second, _ := f.newKey(t, f.a, "second")
	keys, err := f.ks.Keys.ListKeys(ctx, f.a)
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
	_, err = f.ks.Keys.ListKeys(ctx, domain.Principal{})
	wantUnauthorized(t, "ListKeys without a principal", err, "Authorization")
	_, err = f.ks.Keys.ListKeys(ctx, domain.Principal{TeamID: "team-a", Scopes: viewerScopes})
	wantKind(t, "ListKeys without keys:read", err, domain.KindForbidden, "")
	reader := domain.Principal{TeamID: "team-a", Scopes: []domain.Scope{domain.ScopeKeysRead}}
	if keys, err := f.ks.Keys.ListKeys(ctx, reader); err != nil || len(keys) != 2 {
		t.Errorf("ListKeys with keys:read = %d keys, %v; want 2", len(keys), err)
	}
}

func TestRevokeKey(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	err := f.ks.Keys.RevokeKey(ctx, f.b, f.aKey.ID)
	if !domain.IsKind(err, domain.KindNotFound) {
		t.Fatalf("team b revoking team a's key = %v, want KindNotFound", err)
	}
	if _, err := f.ks.Keys.Authenticate(ctx, f.aSecret); err != nil {
		t.Fatalf("key revoked by another team: %v", err)
	}
	if err := f.ks.Keys.RevokeKey(ctx, f.a, f.aKey.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.ks.Keys.Authenticate(ctx, f.aSecret)
	wantUnauthorized(t, "revoked key", err, "current key")
	keys, err := f.ks.Keys.ListKeys(ctx, f.a)
	if err != nil || len(keys) != 1 || !keys[0].RevokedAt.Equal(f.clock.now()) {
		t.Errorf("after revoking: keys %v, %v; want the key listed with RevokedAt %v", keys, err, f.clock.now())
	}
	if err := f.ks.Keys.RevokeKey(ctx, f.a, "no-such-key"); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("revoking a missing key = %v, want KindNotFound", err)
	}
	err = f.ks.Keys.RevokeKey(ctx, domain.Principal{}, f.bKey.ID)
	wantUnauthorized(t, "RevokeKey without a principal", err, "Authorization")
	if _, err := f.ks.Keys.Authenticate(ctx, f.bSecret); err != nil {
		t.Errorf("team b's key after unrelated revocations: %v", err)
	}
}

func TestRevokeKeyScopes(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	_, readerSecret := f.newKey(t, f.a, "reader", domain.ScopeSandboxesRead)
	other, otherSecret := f.newKey(t, f.a, "other")
	reader := f.authenticate(t, readerSecret)

	// Without keys:write a key may not revoke another key...
	err := f.ks.Keys.RevokeKey(ctx, reader, other.ID)
	wantKind(t, "revoking another key without keys:write", err, domain.KindForbidden, "")
	f.authenticate(t, otherSecret)
	// ...but may revoke itself.
	if err := f.ks.Keys.RevokeKey(ctx, reader, reader.KeyID); err != nil {
		t.Fatalf("a key revoking itself: %v", err)
	}
	_, err = f.ks.Keys.Authenticate(ctx, readerSecret)
	wantUnauthorized(t, "self-revoked key", err, "current key")
}
