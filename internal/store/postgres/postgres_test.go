package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/postgres"
	"github.com/warren-sh/warren/internal/store/storetest"
)

// databaseURL returns the test database from WARREN_TEST_DATABASE_URL. Without it the
// test skips, except under CI (CI non-empty), where the database is required.
func databaseURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("WARREN_TEST_DATABASE_URL")
	if u != "" {
		return u
	}
	const how = "WARREN_TEST_DATABASE_URL is not set: run scripts/test-services.sh (as root) and source the " +
		".test-services.env it writes, or point WARREN_TEST_DATABASE_URL at a PostgreSQL database whose user may create schemas"
	if os.Getenv("CI") != "" {
		t.Fatal(how + " (CI must not skip the PostgreSQL store tests)")
	}
	t.Skip(how)
	return ""
}

// newSchema creates an empty schema with a random name, dropped when the test ends, and
// returns a URL whose connections use it. The URL also sets a time zone far from UTC,
// so that anything that depends on the session's zone shows.
func newSchema(t *testing.T) string {
	t.Helper()
	base := databaseURL(t)
	ctx := context.Background() // cleanup runs after t.Context() is canceled
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to the test database: %v", err)
	}
	defer conn.Close(ctx)
	schema := "wt_" + domain.NewID(16)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("connecting to drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parsing WARREN_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("timezone", "Pacific/Chatham") // UTC+12:45 or +13:45
	u.RawQuery = q.Encode()
	return u.String()
}

func open(t *testing.T, u string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	databaseURL(t) // skip (or fail under CI) once, not in every subtest
	storetest.Run(t, func(t *testing.T) domain.Store {
		return open(t, newSchema(t))
	})
}

// TestConcurrentOpen starts several stores at once on an empty schema, as servers
// starting together would: the advisory lock lets one migrate while the others wait,
// and every one of them ends up on the same, complete schema.
func TestConcurrentOpen(t *testing.T) {
	u := newSchema(t)
	const n = 4
	var wg sync.WaitGroup
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(t.Context(), u)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	want, err := stores[0].SchemaVersion(t.Context())
	if err != nil || want < 5 {
		t.Fatalf("SchemaVersion = %d, %v; want at least 5", want, err)
	}
	for i, s := range stores {
		if v, err := s.SchemaVersion(t.Context()); err != nil || v != want {
			t.Errorf("store %d: SchemaVersion = %d, %v; want %d", i, v, err, want)
		}
	}
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows int
	if err := conn.QueryRow(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != want {
		t.Errorf("schema_migrations has %d rows (%v), want %d: a migration ran twice or not at all", rows, err, want)
	}
}

// TestQuotaAcrossStores runs two stores on one schema, as two servers would.
func TestQuotaAcrossStores(t *testing.T) {
	u := newSchema(t)
	storetest.QuotaAcrossStores(t, open(t, u), open(t, u))
}

// TestLockAcrossStores takes one advisory lock through two stores on one schema, as
// two servers would: one holds it at a time, and a release hands it over.
func TestLockAcrossStores(t *testing.T) {
	u := newSchema(t)
	storetest.LockAcrossStores(t, open(t, u), open(t, u))
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	ctx := t.Context()
	u := newSchema(t)
	s, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := s.SchemaVersion(ctx)
	if err != nil || v1 < 5 {
		t.Fatalf("SchemaVersion = %d, %v", v1, err)
	}
	team := &domain.Team{ID: "t1", Name: "kept", CreatedAt: time.Unix(1700000000, 5000).UTC()}
	if err := s.CreateTeam(ctx, team); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // twice is fine

	for i := range 2 {
		s := open(t, u)
		if v, err := s.SchemaVersion(ctx); err != nil || v != v1 {
			t.Fatalf("reopen %d: SchemaVersion = %d, %v; want %d", i, v, err, v1)
		}
		got, err := s.GetTeam(ctx, "t1")
		if err != nil || !got.CreatedAt.Equal(team.CreatedAt) || got.Name != "kept" {
			t.Fatalf("reopen %d: team %+v, %v; want %+v", i, got, err, team)
		}
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := t.Context()
	u := newSchema(t)
	s := open(t, u)
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, 'future')`, v+1); err != nil {
		t.Fatal(err)
	}
	s2, err := postgres.Open(ctx, u)
	if err == nil {
		s2.Close()
		t.Fatal("Open accepted a database migrated by a newer binary")
	}
	if !strings.Contains(err.Error(), "newer warren") {
		t.Errorf("error does not say what to do: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	base := databaseURL(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", "wt_no_such_schema_"+domain.NewID(8))
	u.RawQuery = q.Encode()
	tests := []struct {
		name, url, want string
	}{
		{"not a URL", "postgres://%zz", "not a valid PostgreSQL connection string"},
		{"missing schema", u.String(), "create the schema first"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := postgres.Open(t.Context(), tc.url)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", tc.name)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestAuditLogAppendOnly checks that the database itself refuses to change or remove
// audit entries, whoever asks.
func TestAuditLogAppendOnly(t *testing.T) {
	ctx := t.Context()
	u := newSchema(t)
	s := open(t, u)
	if err := s.AppendAudit(ctx, &domain.AuditEntry{TeamID: "t", ActorType: "system", Action: "x"}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range []string{
		`UPDATE audit_log SET action = 'forged'`,
		`DELETE FROM audit_log`,
		`TRUNCATE audit_log`,
	} {
		_, err := conn.Exec(ctx, q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: got %v, want the append-only refusal", q, err)
		}
	}
	got, err := s.ListAudit(ctx, domain.AuditFilter{TeamID: "t"})
	if err != nil || len(got) != 1 || got[0].Action != "x" {
		t.Fatalf("audit log after refused changes: %+v, %v", got, err)
	}
}

// TestTextPostgresCannotStore checks that text PostgreSQL refuses (NUL characters)
// is a client error, not an internal one.
func TestTextPostgresCannotStore(t *testing.T) {
	ctx := t.Context()
	s := open(t, newSchema(t))
	if err := s.CreateTeam(ctx, &domain.Team{ID: "t"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
	}{
		{"NUL in a name", s.CreateTeam(ctx, &domain.Team{ID: "t2", Name: "a\x00b"})},
		{"NUL in metadata", s.CreateSandbox(ctx, &domain.Sandbox{ID: "sb", TeamID: "t", State: domain.StateRunning,
			Metadata: map[string]string{"k": "a\x00b"}})},
		{"invalid UTF-8", s.CreateTeam(ctx, &domain.Team{ID: "t3", Name: "\xff\xfe"})},
	}
	for _, tc := range tests {
		if !domain.IsKind(tc.err, domain.KindInvalid) {
			t.Errorf("%s: got %v (kind %v), want KindInvalid", tc.name, tc.err, domain.KindOf(tc.err))
		}
	}
}

func TestTimesOutOfRange(t *testing.T) {
	s := open(t, newSchema(t))
	for _, at := range []time.Time{time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		err := s.CreateTeam(t.Context(), &domain.Team{ID: "t", CreatedAt: at})
		if !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != "created_at" {
			t.Errorf("time %v: got %v, want KindInvalid on created_at", at, err)
		}
	}
}

func TestCanceledContext(t *testing.T) {
	s := open(t, newSchema(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.CreateTeam(ctx, &domain.Team{ID: "t"}); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("CreateTeam with a canceled context: %v, want context.Canceled", err)
	}
}
