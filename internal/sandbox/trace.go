package sandbox

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/warren-sh/warren/internal/domain"
)

// The sandbox services' spans (docs/ARCHITECTURE.md, Tracing) are named
// "sandbox.<operation>" and carry the sandbox's id as an attribute, never in the name.
// They go through the global tracer, a no-op unless warren serve exports traces.

// tracer is asked of the global provider at each use: a kept one would stay bound to
// the provider installed first.
func tracer() trace.Tracer { return otel.Tracer("github.com/warren-sh/warren/internal/sandbox") }

// Attribute keys of the sandbox services' spans.
const (
	attrSandboxID = attribute.Key("warren.sandbox_id")
	attrTeamID    = attribute.Key("warren.team_id")
	attrTemplate  = attribute.Key("warren.template")
	attrRuntime   = attribute.Key("warren.runtime")
	// attrCreatePath is how a sandbox was made: cold (booted), warm (a warm pool
	// member), restore (from a snapshot).
	attrCreatePath = attribute.Key("warren.create_path")
	// attrForkCount is how many copies a fork asked for.
	attrForkCount = attribute.Key("warren.fork_count")
)

// startSpan starts the span name under ctx's span.
func startSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return tracer().Start(ctx, name, trace.WithAttributes(attrs...))
}

// endSpan ends span, marking it failed with err unless err is nil. Refusals the caller
// caused (not found, invalid, quota...) are recorded but are not the span's error.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		if k := domain.KindOf(err); k == domain.KindInternal || k == domain.KindUnavailable {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}
