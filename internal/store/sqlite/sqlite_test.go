package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlite"
	"github.com/warren-sh/warren/internal/store/storetest"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) domain.Store {
		return open(t, filepath.Join(t.TempDir(), "warren.db"))
	})
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sub", "dir", "warren.db")
	s := open(t, path)
	v1, err := s.SchemaVersion(ctx)
	if err != nil || v1 < 1 {
		t.Fatalf("SchemaVersion = %d, %v; want >= 1", v1, err)
	}
	team := &domain.Team{ID: "t1", Name: "kept", CreatedAt: time.Unix(1700000000, 5).UTC()}
	sb := &domain.Sandbox{ID: "sb1", TeamID: "t1", State: domain.StateRunning, Slot: 3,
		Metadata: map[string]string{"a": "b"}, CreatedAt: time.Unix(1700000001, 7).UTC()}
	if err := s.CreateTeam(ctx, team); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	for i := range 3 { // migrations are idempotent: every reopen is a no-op
		s = open(t, path)
		if v, err := s.SchemaVersion(ctx); err != nil || v != v1 {
			t.Fatalf("reopen %d: SchemaVersion = %d, %v; want %d", i, v, err, v1)
		}
		got, err := s.GetSandbox(ctx, "t1", "sb1")
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		// Nanosecond precision survives in SQLite.
		if !got.CreatedAt.Equal(sb.CreatedAt) || got.Metadata["a"] != "b" || got.Slot != 3 {
			t.Fatalf("reopen %d: got %+v, want %+v", i, got, sb)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("database file mode %v, want 0600", perm)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "warren.db")
	s := open(t, path)
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Pretend a newer binary migrated the file.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)`, v+1)
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path)
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a database migrated by a newer binary")
	}
	if !strings.Contains(err.Error(), "newer warren") {
		t.Errorf("error does not say what to do: %v", err)
	}
}

func TestOpenRejectsNonFilePaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if s, err := sqlite.Open(t.Context(), p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
	}
}

func TestOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a?b#c d%20", "warren.db")
	s := open(t, path)
	defer s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the literal path: %v", err)
	}
}

// TestTwoStoresOneFile runs two Stores (as two processes would) writing the same file
// at once: the busy timeout and IMMEDIATE transactions must keep SQLITE_BUSY away.
func TestTwoStoresOneFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "warren.db")
	s1, s2 := open(t, path), open(t, path)
	defer s1.Close()
	defer s2.Close()
	if err := s1.CreateTeam(ctx, &domain.Team{ID: "t"}); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := []*sqlite.Store{s1, s2}[i%2]
			sb := &domain.Sandbox{ID: fmt.Sprintf("sb%03d", i), TeamID: "t", State: domain.StateRunning, CreatedAt: time.Unix(int64(i), 0)}
			if err := s.CreateSandbox(ctx, sb); err != nil {
				errs <- err
				return
			}
			sb.State = domain.StateStopped
			if err := s.UpdateSandbox(ctx, sb); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	items, _, err := s2.ListSandboxes(ctx, domain.SandboxFilter{TeamID: domain.AnyTeam, States: []domain.SandboxState{domain.StateStopped}, Limit: 1000})
	if err != nil || len(items) != 100 {
		t.Fatalf("listing: %d items, %v; want 100", len(items), err)
	}
}

func TestTimesOutOfRange(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "warren.db"))
	defer s.Close()
	err := s.CreateTeam(ctx, &domain.Team{ID: "t", CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)})
	if !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != "created_at" {
		t.Errorf("year-1 time: got %v, want KindInvalid on created_at", err)
	}
}

func TestCanceledContext(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "warren.db"))
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.CreateTeam(ctx, &domain.Team{ID: "t"}); err == nil {
		t.Error("CreateTeam with a canceled context succeeded")
	}
}
