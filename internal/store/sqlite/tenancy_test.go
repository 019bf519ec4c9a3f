package sqlite_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlite"
	"github.com/warren-sh/warren/internal/store/storetest"
)

// TestQuotaAcrossStores runs two Stores on one file, as two processes would.
func TestQuotaAcrossStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warren.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	storetest.QuotaAcrossStores(t, a, b)
}

// TestAuditLogAppendOnly checks that the database itself refuses to change or remove
// audit entries, whoever asks.
func TestAuditLogAppendOnly(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "warren.db")
	s := open(t, path)
	defer s.Close()
	e := &domain.AuditEntry{TeamID: "t", ActorType: "system", Action: "x"}
	if err := s.AppendAudit(ctx, e); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`UPDATE audit_log SET action = 'forged'`,
		`DELETE FROM audit_log`,
		`DELETE FROM audit_log WHERE id = 1`,
	} {
		_, err := db.ExecContext(ctx, q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: got %v, want the append-only refusal", q, err)
		}
	}
	got, err := s.ListAudit(ctx, domain.AuditFilter{TeamID: "t"})
	if err != nil || len(got) != 1 || got[0].Action != "x" {
		t.Fatalf("audit log after refused changes: %+v, %v", got, err)
	}
}

// TestMigrationKeepsOldKeysWorking builds a database at schema 4 (before scopes), then
// opens it: keys made before scopes existed could do everything in their team, and
// must keep that power as the admin scope.
func TestMigrationKeepsOldKeysWorking(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "warren.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("migrations/000[1-4]_*.sql")
	if err != nil || len(files) != 4 {
		t.Fatalf("migrations 1-4: %v, %v", files, err)
	}
	var stmts []string
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, string(body))
	}
	stmts = append(stmts,
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, 'init', 0), (2, 'e2b', 0), (3, 'template_start_cmd', 0), (4, 'template_ready_port', 0)`,
		`INSERT INTO teams (id, name) VALUES ('t', 'old team')`,
		`INSERT INTO api_keys (id, team_id, name, prefix, hash, admin) VALUES ('k', 't', 'old key', 'sk_old', 'h', 0)`)
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := open(t, path)
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v < 5 {
		t.Fatalf("SchemaVersion = %d, %v; want at least 5", v, err)
	}
	k, err := s.GetAPIKeyByHash(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	if !domain.HasScope(k.Scopes, domain.ScopeSandboxesWrite) || len(k.Scopes) != 1 || k.Scopes[0] != domain.ScopeAdmin {
		t.Errorf("old key has scopes %v after the migration, want [admin]", k.Scopes)
	}
	team, err := s.GetTeam(ctx, "t")
	if err != nil || team.Quota != (domain.Quota{}) || team.PlanID != "" || team.SpendLimit != "" {
		t.Errorf("old team after the migration: %+v, %v; want no quota, plan or spending limit", team, err)
	}
	// Keys made after the migration get exactly the scopes they are given.
	nk := &domain.APIKey{ID: "k2", TeamID: "t", Hash: "h2"}
	if err := s.CreateAPIKey(ctx, nk); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetAPIKeyByHash(ctx, "h2"); err != nil || got.Scopes != nil {
		t.Errorf("new key without scopes reads back %v, %v; want nil", got.Scopes, err)
	}
}

func TestQuotaRefusalIsDomainError(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "warren.db"))
	defer s.Close()
	ctx := t.Context()
	if err := s.CreateTeam(ctx, &domain.Team{ID: "t"}); err != nil {
		t.Fatal(err)
	}
	sb := &domain.Sandbox{ID: "sb", TeamID: "t", State: domain.StateRunning, Limits: domain.Limits{CPUCores: 3}}
	err := s.CreateSandboxWithinQuota(ctx, sb, domain.Quota{MaxCPUCores: 2})
	var de *domain.Error
	var qe *domain.QuotaError
	if !errors.As(err, &de) || !errors.As(err, &qe) {
		t.Fatalf("refusal %v (%T) is not a *domain.Error wrapping a *domain.QuotaError", err, err)
	}
	for _, want := range []string{"max_cpu_cores", "2", "0", "3", "raise the quota"} {
		if !strings.Contains(de.Message, want) {
			t.Errorf("message %q does not mention %q", de.Message, want)
		}
	}
}

var _ domain.Store = (*sqlite.Store)(nil)
