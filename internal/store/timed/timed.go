// Package timed wraps a domain.Store so that the duration of every call of a role
// method is reported to an observer as "<role>.<method>" (sandboxes.get,
// sandboxes.create_within_quota, teams.list, ...): the server feeds it to
// warren_store_query_duration_seconds. It costs two clock reads per call, and the server
// wraps its store only when metrics are on.
package timed

import (
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// observe receives one call's operation name and its start.
type observe func(op string, t0 time.Time)

// store is a domain.Store whose role methods are timed.
type store struct {
	teams
	users
	keys
	templates
	builds
	sandboxes
	snapshots
	audit
	usages
	invoices
	inner domain.Store
}

var _ domain.Store = (*store)(nil)

// Wrap returns s with the duration of each call reported to record.
func Wrap(s domain.Store, record func(op string, d time.Duration)) domain.Store {
	o := observe(func(op string, t0 time.Time) { record(op, time.Since(t0)) })
	return &store{
		teams: teams{s, o}, users: users{s, o}, keys: keys{s, o}, templates: templates{s, o}, builds: builds{s, o},
		sandboxes: sandboxes{s, o}, snapshots: snapshots{s, o}, audit: audit{s, o}, usages: usages{s, o},
		invoices: invoices{s, o}, inner: s,
	}
}

// Close closes the wrapped store.
func (s *store) Close() error { return s.inner.Close() }
