package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// TryLock takes the session-level advisory lock of name (keyed by the schema too, so
// that stores on other schemas of one database never meet) on a connection of its own,
// held out of the pool until release. PostgreSQL ends the lock with that connection:
// a server that dies or loses the database lets another take it at once, with no lease
// to expire and no clock to trust. A lock not taken returns the connection at once.
func (s *Store) TryLock(ctx context.Context, name string) (release func(), ok bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("taking lock %s: %w", name, err)
	}
	const key = `hashtextextended('warren lock ' || current_schema() || ' ' || $1, 0)`
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+key+`)`, name).Scan(&ok); err != nil || !ok {
		conn.Release()
		if err != nil {
			return nil, false, fmt.Errorf("taking lock %s: %w", name, err)
		}
		return nil, false, nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var unlocked bool
			if err := conn.QueryRow(uctx, `SELECT pg_advisory_unlock(`+key+`)`, name).Scan(&unlocked); err != nil || !unlocked {
				// The session may still hold it: never hand such a connection back.
				conn.Hijack().Close(uctx)
				return
			}
			conn.Release()
		})
	}, true, nil
}
