package sandbox

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/telemetry"
	"github.com/warren-sh/warren/internal/telemetry/otlptest"
)

// traced turns tracing on for the test, exporting to a receiver; flush sends what is
// queued and turns it off again.
func traced(t *testing.T) (rcv *otlptest.Receiver, flush func()) {
	t.Helper()
	rcv = otlptest.New()
	t.Cleanup(rcv.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	tr, err := telemetry.Setup(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return rcv, func() {
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		otel.SetTracerProvider(noop.NewTracerProvider())
	}
}

// spanTree is the spans of one caller's trace by name, below the caller.
func spanTree(t *testing.T, rcv *otlptest.Receiver, traceID, callerID string) map[string]otlptest.Span {
	t.Helper()
	out := map[string]otlptest.Span{}
	for _, s := range otlptest.Descendants(rcv.Trace(traceID), callerID) {
		out[s.Name] = s
	}
	return out
}

// TestCreateSpans checks the span tree of cold creates (one that starts, one whose
// agent never answers) and of a warm pool claim, on the fakes.
func TestCreateSpans(t *testing.T) {
	rcv, flush := traced(t)
	w := newWorld(t)
	w.svc.cfg.Room = func(context.Context, domain.Limits) error { return nil }
	tracer := otel.Tracer("test")

	coldCtx, cold := tracer.Start(context.Background(), "caller")
	sb, err := w.svc.Create(coldCtx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	cold.End()
	w.agentReady = errors.New("agent does not answer")
	failCtx, fail := tracer.Start(context.Background(), "caller")
	if _, err := w.svc.Create(failCtx, writer, domain.CreateSandbox{}); !domain.IsKind(err, domain.KindUnavailable) {
		t.Fatalf("create with a dead agent: %v", err)
	}
	fail.End()
	w.agentReady = nil

	pw := newPoolWorld(t, PoolSize{"base", 1})
	pw.waitReady("base", 1)
	warmCtx, warm := tracer.Start(context.Background(), "caller")
	wsb, err := pw.svc.Create(warmCtx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	warm.End()
	flush()

	tree := spanTree(t, rcv, cold.SpanContext().TraceID().String(), cold.SpanContext().SpanID().String())
	create := tree["sandbox.create"]
	if create.ParentSpanID != cold.SpanContext().SpanID().String() || create.Attrs["warren.sandbox_id"] != sb.ID ||
		create.Attrs["warren.create_path"] != "cold" || create.Attrs["warren.team_id"] != teamID || create.Error {
		t.Errorf("cold sandbox.create %+v", create)
	}
	for name, parent := range map[string]string{
		"sandbox.admit": "sandbox.create", "sandbox.node_admit": "sandbox.create", "sandbox.reserve": "sandbox.create",
		"sandbox.boot": "sandbox.create", "sandbox.agent_ready": "sandbox.boot",
	} {
		if s, ok := tree[name]; !ok || s.ParentSpanID != tree[parent].SpanID || s.Error {
			t.Errorf("%s: %+v, want it under %s, not failed", name, s, parent)
		}
	}
	if _, ok := tree["sandbox.pool_claim"]; ok {
		t.Error("a server without pools claimed")
	}

	tree = spanTree(t, rcv, fail.SpanContext().TraceID().String(), fail.SpanContext().SpanID().String())
	if !tree["sandbox.create"].Error || !tree["sandbox.boot"].Error || !tree["sandbox.agent_ready"].Error {
		t.Errorf("a start whose agent never answered: create, boot and agent_ready not failed: %+v", tree)
	}

	tree = spanTree(t, rcv, warm.SpanContext().TraceID().String(), warm.SpanContext().SpanID().String())
	create, claim := tree["sandbox.create"], tree["sandbox.pool_claim"]
	if create.Attrs["warren.create_path"] != "warm" || create.Attrs["warren.sandbox_id"] != wsb.ID {
		t.Errorf("warm sandbox.create %+v", create)
	}
	if claim.ParentSpanID != create.SpanID || claim.Attrs["warren.pool_hit"] != "true" || claim.Attrs["warren.sandbox_id"] != wsb.ID {
		t.Errorf("sandbox.pool_claim %+v, want a hit under the create", claim)
	}
	if _, ok := tree["sandbox.boot"]; ok {
		t.Error("a claimed create booted a sandbox")
	}
}
