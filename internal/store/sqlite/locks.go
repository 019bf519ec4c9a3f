package sqlite

import (
	"context"
	"sync"
)

// locks are the named locks of domain.LockStore. A SQLite database serves one server
// process, so they live in that process: nothing else can run the jobs they guard.
type locks struct {
	mu   sync.Mutex
	held map[string]bool
}

// TryLock takes the lock name if nobody in this process holds it.
func (s *Store) TryLock(_ context.Context, name string) (release func(), ok bool, err error) {
	l := &s.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[name] {
		return nil, false, nil
	}
	if l.held == nil {
		l.held = map[string]bool{}
	}
	l.held[name] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			delete(l.held, name)
		})
	}, true, nil
}
