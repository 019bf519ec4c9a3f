package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warren-sh/warren/internal/store/sqlstore"
)

// The shared queries run on pgx itself, not through database/sql: pgx honors the
// sql.Scanner column decoders, reports a missing row as an error that is
// sql.ErrNoRows, and the pool stays the one pool_max_conns sizes.

// pgxRunner is what *pgxpool.Pool and pgx.Tx have in common.
type pgxRunner interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// querier is a sqlstore.Querier on a pgxRunner.
type querier struct{ r pgxRunner }

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.r.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := q.r.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgxRows{rows}, nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return q.r.QueryRow(ctx, query, args...)
}

// pool is the sqlstore.Pool on the pgx pool.
type pool struct {
	querier
	p *pgxpool.Pool
}

func newPool(p *pgxpool.Pool) pool { return pool{querier{p}, p} }

func (p pool) Begin(ctx context.Context) (sqlstore.Tx, error) {
	tx, err := p.p.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return pgxTx{querier{tx}, tx}, nil
}

type pgxTx struct {
	querier
	tx pgx.Tx
}

func (t pgxTx) Commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t pgxTx) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

// pgxRows gives pgx.Rows the Close of sqlstore.Rows (pgx's returns nothing: its error
// is in Err).
type pgxRows struct{ pgx.Rows }

func (r pgxRows) Close() error {
	r.Rows.Close()
	return r.Rows.Err()
}
