package sqlstore

import (
	"context"
	"database/sql"
)

// The shared queries reach a database through these interfaces, which each dialect
// package implements on its own driver (FromDB does it for database/sql). Queries arrive
// already rebound to the dialect's placeholders. Scan must honor sql.Scanner
// destinations: the column decoders of this package are sql.Scanners.

// Querier runs statements on a pool or in a transaction.
type Querier interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow runs a query for one row. Its Scan reports that there is none with an
	// error that errors.Is sql.ErrNoRows.
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Pool is a Querier that can begin transactions.
type Pool interface {
	Querier
	Begin(ctx context.Context) (Tx, error)
}

// Tx is a transaction. Rollback after Commit does nothing.
type Tx interface {
	Querier
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Row is the result of QueryRow.
type Row interface {
	Scan(dest ...any) error
}

// Rows is the result of Query.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// FromDB adapts a database/sql pool.
func FromDB(db *sql.DB) Pool { return sqlPool{sqlQuerier{db}, db} }

// sqlRunner is what *sql.DB and *sql.Tx have in common.
type sqlRunner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type sqlQuerier struct{ r sqlRunner }

func (q sqlQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.r.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqlQuerier) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := q.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (q sqlQuerier) QueryRow(ctx context.Context, query string, args ...any) Row {
	return q.r.QueryRowContext(ctx, query, args...)
}

type sqlPool struct {
	sqlQuerier
	db *sql.DB
}

func (p sqlPool) Begin(ctx context.Context) (Tx, error) {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return sqlTx{sqlQuerier{tx}, tx}, nil
}

type sqlTx struct {
	sqlQuerier
	tx *sql.Tx
}

func (t sqlTx) Commit(context.Context) error   { return t.tx.Commit() }
func (t sqlTx) Rollback(context.Context) error { return t.tx.Rollback() }
