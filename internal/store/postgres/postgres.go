// Package postgres implements domain.Store on PostgreSQL (pgx/v5 with pgxpool), for
// deployments that run several servers against one database or want PostgreSQL's
// operational tooling. The queries are store/sqlstore's, shared with store/sqlite, run
// on the pgx pool; this package owns the connection, the migrations and the PostgreSQL
// dialect (TIMESTAMPTZ, JSONB, row locks, error codes).
//
// The URL is a pgx connection string; parameters pgx does not know are sent as run-time
// settings, so "?search_path=warren" puts Warren's tables in their own schema (the
// schema must exist), and pool_max_conns sizes the pool.
//
// Concurrency: statements run at READ COMMITTED. CreateSandboxWithinQuota locks the
// team's row (FOR NO KEY UPDATE) before it sums and inserts, so quota checks of one
// team serialize across every server while other writes to the team go on.
//
// The schema lives in embedded, numbered migrations (migrations/NNNN_name.sql) with the
// same numbers as the SQLite store's, recorded in schema_migrations. They run in one
// transaction under a transaction-scoped advisory lock keyed by the schema, so servers
// that start at once migrate one after the other, and a failed migration leaves
// nothing behind.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlstore"
)

var _ domain.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store is a domain.Store backed by a PostgreSQL database: the shared queries of
// sqlstore, run on the pool, plus Close. It is safe for concurrent use.
type Store struct {
	sqlstore.Stores

	pool *pgxpool.Pool

	closeOnce sync.Once
}

// Open connects to the database at url and brings its schema up to date.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The error may quote the URL, password included: say only what is wrong.
		return nil, errors.New("opening postgres store: the database URL is not a valid PostgreSQL connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening postgres store: %w", err)
	}
	s := &Store{pool: pool}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("opening postgres store on %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrating postgres store: %w", err)
	}
	s.Stores = sqlstore.New(newPool(pool), newPool(pool), dialect{})
	return s, nil
}

// Close closes the pool. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

// migrate applies every migration newer than the schema's version in one transaction,
// holding an advisory lock for the schema so that concurrent servers do not race.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := sqlstore.Migrations(migrationFS, "migrations")
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var schema *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return err
		}
		if schema == nil {
			return errors.New("the search_path names no existing schema: create the schema first, or fix search_path in the database URL")
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('warren schema_migrations ' || $1, 0))`, *schema); err != nil {
			return fmt.Errorf("taking the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER     PRIMARY KEY,
			name       TEXT        NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if current > len(ms) {
			return fmt.Errorf("database schema version %d is newer than this binary knows (%d): run a newer warren", current, len(ms))
		}
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("applying migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("recording migration %04d_%s: %w", m.Version, m.Name, err)
			}
		}
		return nil
	})
}

// SchemaVersion returns the highest applied migration number.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
