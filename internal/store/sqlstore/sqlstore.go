// Package sqlstore holds the SQL that store/sqlite and store/postgres share: every query
// is written once here, with ? placeholders, and run through a Dialect that rebinds the
// placeholders and supplies the little that really differs between the databases.
//
// What differs, and so lives in the dialect packages:
//   - the driver, the connection string, the migrations (column types) and how they run;
//   - how a time is stored (SQLite: unix nanoseconds; PostgreSQL: TIMESTAMPTZ) and the
//     page cursors made from it;
//   - reading numbers out of a JSON column, and matching a JSON object's pairs;
//   - locking: SQLite's one IMMEDIATE writer already serializes quota checks, PostgreSQL
//     locks the team's row (FOR NO KEY UPDATE);
//   - the error codes of unique and foreign-key violations, and errors that are the
//     caller's fault (text PostgreSQL cannot store).
//
// Everything else, upserts included (both speak ON CONFLICT ... DO UPDATE), is one text.
//
// The package has one store type per aggregate (Teams, Users, Keys, Templates,
// Sandboxes, Snapshots, Audit, Usage, Invoices, Nodes, Idempotency), each a domain role interface. New returns them
// together as Stores, which a dialect package's Store embeds next to its Close to make a
// domain.Store. They reach the database through Pool and Querier, which a dialect
// package implements on its own driver (FromDB does it for database/sql).
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Dialect is what the shared queries need to know about one database. The times it
// encodes are never the zero time: the queries store that as NULL, or as ZeroTime in
// NOT NULL columns that order rows.
type Dialect interface {
	// Rebind rewrites the ? placeholders of query into the dialect's own.
	Rebind(query string) string

	// TimeValue returns the column value of t, and false when the dialect cannot store t.
	TimeValue(t time.Time) (v any, ok bool)
	// TimeRange names the times TimeValue can store, for messages ("years 1 to 9999").
	TimeRange() string
	// ZeroTime is the value that stands for the zero time in NOT NULL columns that order
	// rows; it sorts before every storable time.
	ZeroTime() any
	// ClampTime returns the column value of a filter bound, moved to the nearest end of
	// the storable range when it lies outside (a bound far off still selects rightly).
	ClampTime(t time.Time) any
	// ScanTime turns a column value (never NULL) back into a time, in UTC; ZeroTime
	// becomes the zero time.
	ScanTime(v any) (time.Time, error)

	// CursorVersion tags the page cursors of this dialect, so that a cursor made by the
	// other is refused rather than misread.
	CursorVersion() string
	// CursorKey returns the number a page cursor carries for a sort time read from the
	// database (possibly the zero time), and CursorValue the column value of such a
	// number.
	CursorKey(t time.Time) int64
	CursorValue(key int64) any

	// JSONNumber is an SQL expression for the number at key of the JSON object in column
	// (NULL when it is missing). column and key are constants of this package.
	JSONNumber(column, key string) string
	// JSONContains returns a condition, with ? placeholders, and its arguments, that
	// holds when the JSON object in column has every pair of m as a string member.
	JSONContains(column string, m map[string]string) (cond string, args []any)
	// LockTeam, inside a write transaction, makes quota checks of the team wait for one
	// another across every process until tx ends. An unknown team may be KindNotFound.
	LockTeam(ctx context.Context, tx Querier, teamID string) error

	IsUniqueViolation(err error) bool
	IsForeignKeyViolation(err error) bool
	// Classify turns driver errors that are the caller's fault into domain errors (for
	// example KindInvalid for text the database cannot store) and returns any other
	// error unchanged.
	Classify(err error) error
}

// Stores is every aggregate's store on one database. With a Close it is a domain.Store.
type Stores struct {
	*Teams
	*Users
	*Keys
	*Templates
	*Builds
	*Sandboxes
	*Snapshots
	*Audit
	*Usage
	*Invoices
	*Nodes
	*Idempotency
}

// New returns the stores on a database: writes and transactions go to w, reads to r
// (the same pool, unless the dialect keeps read-only connections apart). New does not
// take ownership: the caller closes the pools.
func New(w Pool, r Querier, d Dialect) Stores {
	db := &db{w: w, r: r, d: d}
	return Stores{
		Teams:       &Teams{db},
		Users:       &Users{db},
		Keys:        &Keys{db},
		Templates:   &Templates{db},
		Builds:      &Builds{db},
		Sandboxes:   &Sandboxes{db},
		Snapshots:   &Snapshots{db},
		Audit:       &Audit{db},
		Usage:       &Usage{db},
		Invoices:    &Invoices{db},
		Nodes:       &Nodes{db},
		Idempotency: &Idempotency{db},
	}
}

// db runs the shared queries through the dialect.
type db struct {
	w Pool
	r Querier
	d Dialect
}

// runner is what a query helper needs: a *db (reads on the read pool) or a *tx.
type runner interface {
	// exec runs a write statement and returns the number of rows it changed.
	exec(ctx context.Context, query string, args ...any) (int64, error)
	queryRow(ctx context.Context, query string, args ...any) Row
}

func (db *db) exec(ctx context.Context, query string, args ...any) (int64, error) {
	return db.w.Exec(ctx, db.d.Rebind(query), args...)
}

// writeRow runs a write statement that returns a row (INSERT ... RETURNING).
func (db *db) writeRow(ctx context.Context, query string, args ...any) Row {
	return db.w.QueryRow(ctx, db.d.Rebind(query), args...)
}

func (db *db) queryRow(ctx context.Context, query string, args ...any) Row {
	return db.r.QueryRow(ctx, db.d.Rebind(query), args...)
}

func (db *db) query(ctx context.Context, query string, args ...any) (Rows, error) {
	return db.r.Query(ctx, db.d.Rebind(query), args...)
}

// tx is a write transaction.
type tx struct {
	raw Tx
	d   Dialect
}

func (t *tx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	return t.raw.Exec(ctx, t.d.Rebind(query), args...)
}

func (t *tx) queryRow(ctx context.Context, query string, args ...any) Row {
	return t.raw.QueryRow(ctx, t.d.Rebind(query), args...)
}

// inTx runs fn in a write transaction, committed when fn returns nil. fn's errors come
// back as fn returned them (fn says what it was doing); failures to begin or commit say
// doing.
func (db *db) inTx(ctx context.Context, doing string, fn func(*tx) error) error {
	t, err := db.w.Begin(ctx)
	if err != nil {
		return db.wrap(err, "%s", doing)
	}
	defer t.Rollback(ctx)
	if err := fn(&tx{raw: t, d: db.d}); err != nil {
		return err
	}
	if err := t.Commit(ctx); err != nil {
		return db.wrap(err, "%s", doing)
	}
	return nil
}

// wrap says what was being done when err happened, after the dialect has classified it.
func (db *db) wrap(err error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), db.d.Classify(err))
}

// insertErr maps the error of an INSERT: a taken key is conflict, a missing parent row
// (always the team teamID) KindNotFound, and any other error says what was being done.
func (db *db) insertErr(err error, teamID string, conflict error, format string, args ...any) error {
	switch {
	case db.d.IsUniqueViolation(err):
		return conflict
	case db.d.IsForeignKeyViolation(err):
		return domain.NotFound("team", teamID)
	}
	return db.wrap(err, format, args...)
}

// rowScanner is a Row or Rows.
type rowScanner interface{ Scan(dest ...any) error }

// collect scans every row with scan and closes rows.
func collect[T any](d Dialect, rows Rows, scan func(Dialect, rowScanner) (*T, error)) ([]*T, error) {
	defer rows.Close()
	out := []*T{} // empty, not nil: edges encode it as [] rather than null
	for rows.Next() {
		v, err := scan(d, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// list runs a read query and scans every row; errors say what was being done.
func list[T any](ctx context.Context, db *db, scan func(Dialect, rowScanner) (*T, error), doing, query string, args ...any) ([]*T, error) {
	rows, err := db.query(ctx, query, args...)
	if err != nil {
		return nil, db.wrap(err, "%s", doing)
	}
	out, err := collect(db.d, rows, scan)
	if err != nil {
		return nil, db.wrap(err, "%s", doing)
	}
	return out, nil
}

// get runs a read query for one row of a kind of thing (what); no row is KindNotFound.
func get[T any](ctx context.Context, db *db, scan func(Dialect, rowScanner) (*T, error), what, id, query string, args ...any) (*T, error) {
	v, err := scan(db.d, db.queryRow(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound(what, id)
	}
	if err != nil {
		return nil, db.wrap(err, "getting %s %s", what, id)
	}
	return v, nil
}

// where collects the conditions of a listing and their arguments.
type where struct {
	conds []string
	args  []any
}

// add appends a condition with ? placeholders and its arguments.
func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// String is " WHERE c1 AND c2 ...", or "" without conditions.
func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(w.conds, ` AND `)
}

// marks returns n placeholders separated by commas: "?, ?, ?".
func marks(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// update runs an UPDATE or DELETE of one row; no row changed is KindNotFound.
func (db *db) update(ctx context.Context, what, id, doing, query string, args ...any) error {
	return db.updateWith(ctx, db, what, id, doing, query, args...)
}

// updateWith is update through r (the database or a transaction).
func (db *db) updateWith(ctx context.Context, r runner, what, id, doing, query string, args ...any) error {
	n, err := r.exec(ctx, query, args...)
	if err != nil {
		return db.wrap(err, "%s %s %s", doing, what, id)
	}
	if n == 0 {
		return domain.NotFound(what, id)
	}
	return nil
}
