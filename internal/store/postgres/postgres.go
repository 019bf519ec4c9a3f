// Package postgres implements domain.Store on PostgreSQL (pgx/v5 with pgxpool), for
// deployments that run several servers against one database or want PostgreSQL's
// operational tooling.
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
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warren-sh/warren/internal/domain"
)

var _ domain.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store is a domain.Store backed by a PostgreSQL database. It is safe for concurrent
// use.
type Store struct {
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
	return s, nil
}

// Close closes the pool. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order. File names are NNNN_name.sql.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.sql", e.Name())
		}
		body, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations must be numbered 1, 2, 3...: found %d at position %d", m.version, i+1)
		}
	}
	return ms, nil
}

// migrate applies every migration newer than the schema's version in one transaction,
// holding an advisory lock for the schema so that concurrent servers do not race.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
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
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("applying migration %04d_%s: %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return fmt.Errorf("recording migration %04d_%s: %w", m.version, m.name, err)
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

// PostgreSQL error codes the store classifies.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeBadEncoding         = "22021" // character_not_in_repertoire: NUL or invalid UTF-8 in text
	codeBadUnicodeEscape    = "22P05" // untranslatable_character: \u0000 in JSONB
)

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func isUniqueViolation(err error) bool     { return pgCode(err) == codeUniqueViolation }
func isForeignKeyViolation(err error) bool { return pgCode(err) == codeForeignKeyViolation }

// classify turns the errors PostgreSQL raises for text it cannot store (which SQLite
// would have stored) into KindInvalid, and returns any other error unchanged.
func classify(err error) error {
	switch pgCode(err) {
	case codeBadEncoding, codeBadUnicodeEscape:
		return &domain.Error{Kind: domain.KindInvalid,
			Message: "text must be valid UTF-8 without NUL characters", Err: err}
	}
	return err
}

// rowScanner is pgx.Row or pgx.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// collect scans every row and closes rows.
func collect[T any](rows pgx.Rows, scan func(rowScanner) (*T, error)) ([]*T, error) {
	defer rows.Close()
	out := []*T{} // empty, not nil: edges encode it as [] rather than null
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// exec runs one write statement and returns the number of rows it changed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
