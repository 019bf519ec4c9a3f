// Package traced wraps a domain.Store so that every call of a role method (GetTeam,
// CreateSandboxWithinQuota, ...) is a span named "store.<Method>", under the caller's
// span, with the database's kind as db.system.name. The server wraps its store only
// when tracing is on (telemetry.Enabled), so an untraced server pays nothing for it.
package traced

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/warren-sh/warren/internal/domain"
)

// store is a domain.Store whose role methods are traced.
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

// Wrap returns s with its calls traced; system names the database ("sqlite",
// "postgresql").
func Wrap(s domain.Store, system string) domain.Store {
	db := attribute.String("db.system.name", system)
	return &store{
		teams: teams{s, db}, users: users{s, db}, keys: keys{s, db}, templates: templates{s, db}, builds: builds{s, db},
		sandboxes: sandboxes{s, db}, snapshots: snapshots{s, db}, audit: audit{s, db}, usages: usages{s, db},
		invoices: invoices{s, db}, inner: s,
	}
}

// Close closes the wrapped store.
func (s *store) Close() error { return s.inner.Close() }

// start starts a client span of a store call under ctx's span.
func start(ctx context.Context, name string, db attribute.KeyValue) (context.Context, trace.Span) {
	return otel.Tracer("github.com/warren-sh/warren/internal/store/traced").Start(ctx, name,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(db))
}

// end ends span; an error other than the answers a store gives in its normal course
// (not found, conflict, quota exceeded) marks it failed.
func end(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		switch domain.KindOf(err) {
		case domain.KindNotFound, domain.KindConflict, domain.KindQuotaExceeded, domain.KindInvalid:
		default:
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}
