// Package sqlite implements domain.Store on a single SQLite file (modernc.org/sqlite,
// pure Go, no cgo). The queries are store/sqlstore's, shared with store/postgres; this
// package owns the driver, the file, the migrations and the SQLite dialect (times as unix
// nanoseconds, JSON through json_extract and json_each, error codes).
//
// Concurrency: the database runs in WAL mode. All writes go through one pooled
// connection (SetMaxOpenConns(1)) whose transactions begin IMMEDIATE, so writers in
// this process queue in database/sql instead of racing for SQLite's lock, and never see
// SQLITE_BUSY. Reads use a separate pool of query-only connections that WAL lets run
// alongside the writer. A busy timeout covers the remaining case of another process
// holding the lock (for example a CLI verb run next to the server).
//
// The schema lives in embedded, numbered migrations (migrations/NNNN_name.sql) recorded
// in schema_migrations; a PostgreSQL store uses the same numbers for the same changes.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlstore"
)

var _ domain.Store = (*Store)(nil)

// busyTimeout is how long a connection waits for another process's lock before
// failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store is a domain.Store backed by one SQLite database file: the shared queries of
// sqlstore, run on this file, plus Close. It is safe for concurrent use.
type Store struct {
	sqlstore.Stores

	path string
	w    *sql.DB // the single writer connection
	r    *sql.DB // read-only connections

	closeOnce sync.Once
	closeErr  error

	locks locks
}

// Open opens (creating if needed) the database at path and brings its schema up to
// date. The file and its parent directory are created private to the user, since the
// database holds sandbox environments and access tokens.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("opening sqlite store: want a file path, got %q", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("opening sqlite store %s: %w", path, err)
	}
	if err := createPrivate(abs); err != nil {
		return nil, fmt.Errorf("opening sqlite store %s: %w", abs, err)
	}

	s := &Store{path: abs}
	s.w, err = sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		return nil, fmt.Errorf("opening sqlite store %s: %w", abs, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxIdleTime(0)
	s.w.SetConnMaxLifetime(0)

	// The writer connects first, so WAL mode is set before any reader opens the file.
	if err := s.w.PingContext(ctx); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("opening sqlite store %s: %w", abs, err)
	}
	s.r, err = sql.Open("sqlite", dsn(abs, true))
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("opening sqlite store %s: %w", abs, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)

	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrating sqlite store %s: %w", abs, err)
	}
	s.Stores = sqlstore.New(sqlstore.FromDB(s.w), sqlstore.FromDB(s.r), dialect{})
	return s, nil
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close closes both pools. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.r != nil {
			errs = append(errs, s.r.Close())
		}
		errs = append(errs, s.w.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// createPrivate makes the parent directory (0700) and the database file (0600) if they
// do not exist. SQLite gives the -wal and -shm files the main file's permissions.
func createPrivate(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// dsn builds the driver's connection string. The path is a percent-encoded file: URI
// so that '?' or '#' in a path cannot be read as parameters.
func dsn(path string, readOnly bool) string {
	u := url.URL{Path: path}
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10))
	q.Set("_foreign_keys", "1")
	// NORMAL is durable against process crashes and never corrupts in WAL mode; a power
	// loss may roll back the last transactions, which a sandbox control plane (whose
	// sandboxes die with the power too) can afford.
	q.Set("_synchronous", "NORMAL")
	if readOnly {
		q.Set("_query_only", "1")
	} else {
		// WAL is a property of the file; the writer sets it before any reader connects.
		q.Set("_journal_mode", "WAL")
		q.Set("_txlock", "immediate")
	}
	return "file://" + u.EscapedPath() + "?" + q.Encode()
}

// migrate applies every migration newer than the database's version, each in its own
// transaction together with its schema_migrations row, so a crash never leaves a half
// applied migration recorded as done.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := sqlstore.Migrations(migrationFS, "migrations")
	if err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	var current int
	if err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return err
	}
	if current > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d): run a newer warren", current, len(ms))
	}
	for _, m := range ms[current:] {
		if err := s.apply(ctx, m); err != nil {
			return fmt.Errorf("applying migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	return nil
}

func (s *Store) apply(ctx context.Context, m sqlstore.Migration) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Re-check inside the write lock: another process may have migrated meanwhile.
	var done int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&done); err != nil {
		return err
	}
	if done > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, time.Now().UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}

// SchemaVersion returns the highest applied migration number.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
