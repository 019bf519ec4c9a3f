// Package instrumented wraps a domain.Store so that every call of a role method passes
// through hooks: Timing reports its duration as "<role>.<method>" (sandboxes.get,
// sandboxes.create_within_quota, teams.list, ...), which the server feeds to
// warren_store_query_duration_seconds, and Tracing makes it a client span named
// "store.<Method>" under the caller's span. The server wraps its store only when
// metrics or tracing are on, so a server with neither pays nothing for it.
package instrumented

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/warren-sh/warren/internal/domain"
)

// Hook observes one store call: it is called before the call with the operation's name
// ("sandboxes.get") and its method ("GetSandbox"), may return a derived ctx for the
// call, and returns the func to call with the call's error when it returns.
type Hook func(ctx context.Context, op, method string) (context.Context, func(error))

// store is a domain.Store whose role methods run through a hook.
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
	nodes
	locks
	idempotency
	inner domain.Store
}

var _ domain.Store = (*store)(nil)

// Wrap returns s with every role method's call run through hooks, in order (each done
// func in reverse order). With no hooks it returns s itself.
func Wrap(s domain.Store, hooks ...Hook) domain.Store {
	if len(hooks) == 0 {
		return s
	}
	h := chain(hooks)
	return &store{
		teams: teams{s, h}, users: users{s, h}, keys: keys{s, h}, templates: templates{s, h}, builds: builds{s, h},
		sandboxes: sandboxes{s, h}, snapshots: snapshots{s, h}, audit: audit{s, h}, usages: usages{s, h},
		invoices: invoices{s, h}, nodes: nodes{s, h}, locks: locks{s, h}, idempotency: idempotency{s, h}, inner: s,
	}
}

// Close closes the wrapped store.
func (s *store) Close() error { return s.inner.Close() }

func chain(hooks []Hook) Hook {
	if len(hooks) == 1 {
		return hooks[0]
	}
	return func(ctx context.Context, op, method string) (context.Context, func(error)) {
		dones := make([]func(error), len(hooks))
		for i, h := range hooks {
			ctx, dones[i] = h(ctx, op, method)
		}
		return ctx, func(err error) {
			for i := len(dones) - 1; i >= 0; i-- {
				dones[i](err)
			}
		}
	}
}

// Timing reports each call's duration to record under its operation name.
func Timing(record func(op string, d time.Duration)) Hook {
	return func(ctx context.Context, op, _ string) (context.Context, func(error)) {
		t0 := time.Now()
		return ctx, func(error) { record(op, time.Since(t0)) }
	}
}

// Tracing makes each call a client span "store.<Method>" under ctx's span, with the
// database's kind as db.system.name ("sqlite", "postgresql"). An error other than the
// answers a store gives in its normal course (not found, conflict, quota exceeded,
// invalid) marks the span failed.
func Tracing(system string) Hook {
	db := attribute.String("db.system.name", system)
	tracer := otel.Tracer("github.com/warren-sh/warren/internal/store/instrumented")
	return func(ctx context.Context, _, method string) (context.Context, func(error)) {
		ctx, span := tracer.Start(ctx, "store."+method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(db))
		return ctx, func(err error) {
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
	}
}
