package instrumented_test

import (
	"context"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/instrumented"
	"github.com/warren-sh/warren/internal/store/sqlite"
	"github.com/warren-sh/warren/internal/telemetry"
	"github.com/warren-sh/warren/internal/telemetry/otlptest"
)

// TestNoHooks: a store wrapped with no hooks is the store itself.
func TestNoHooks(t *testing.T) {
	inner, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	if got := instrumented.Wrap(inner); got != domain.Store(inner) {
		t.Errorf("Wrap with no hooks = %T, want the store itself", got)
	}
}

// TestTiming runs calls through a timed SQLite store: each is reported once under its
// role.method name, errors included, and the answers are the store's.
func TestTiming(t *testing.T) {
	ctx := context.Background()
	inner, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ops []string
	st := instrumented.Wrap(inner, instrumented.Timing(func(op string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if d <= 0 {
			t.Errorf("%s took %v", op, d)
		}
		ops = append(ops, op)
	}))
	defer st.Close()
	if err := st.CreateTeam(ctx, &domain.Team{ID: "team1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetTeam(ctx, "team1"); err != nil || got.Name != "one" {
		t.Fatalf("GetTeam = %+v, %v", got, err)
	}
	if _, err := st.GetTeam(ctx, "nope"); !domain.IsKind(err, domain.KindNotFound) {
		t.Fatalf("GetTeam(nope) = %v, want not found", err)
	}
	if _, _, err := st.ListSandboxes(ctx, domain.SandboxFilter{TeamID: domain.AnyTeam}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UsedSlots(ctx, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"teams.create", "teams.get", "teams.get", "sandboxes.list", "sandboxes.used_slots"}
	if !reflect.DeepEqual(ops, want) {
		t.Errorf("ops %q, want %q", ops, want)
	}
}

// TestTracing runs calls through a traced and timed SQLite store: each is a client span named by its
// method under the caller's span, the answers are the store's, and a not-found answer
// is not a failed span.
func TestTracing(t *testing.T) {
	rcv := otlptest.New()
	defer rcv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	defer otel.SetTracerProvider(noop.NewTracerProvider())
	tr, err := telemetry.Setup(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	inner, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	var ops []string // both hooks at once, as a server with metrics and tracing has them
	st := instrumented.Wrap(inner, instrumented.Tracing("sqlite"), instrumented.Timing(func(op string, _ time.Duration) { ops = append(ops, op) }))
	defer st.Close()

	ctx, parent := otel.Tracer("test").Start(ctx, "caller")
	if err := st.CreateTeam(ctx, &domain.Team{ID: "team1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetTeam(ctx, "team1")
	if err != nil || got.Name != "one" {
		t.Fatalf("GetTeam = %+v, %v", got, err)
	}
	if _, err := st.GetTeam(ctx, "nope"); !domain.IsKind(err, domain.KindNotFound) {
		t.Fatalf("GetTeam(nope) = %v, want not found", err)
	}
	if _, err := st.UsedSlots(ctx, nil); err != nil {
		t.Fatal(err)
	}
	parent.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := rcv.Trace(parent.SpanContext().TraceID().String())
	want := map[string]int{"store.CreateTeam": 1, "store.GetTeam": 2, "store.UsedSlots": 1}
	for _, s := range spans {
		if s.Name == "caller" {
			continue
		}
		want[s.Name]--
		if s.ParentSpanID != parent.SpanContext().SpanID().String() || s.Kind != "SPAN_KIND_CLIENT" || s.Attrs["db.system.name"] != "sqlite" {
			t.Errorf("span %+v: want a client span of sqlite under the caller", s)
		}
		if s.Error {
			t.Errorf("span %s failed", s.Name)
		}
	}
	if len(ops) != 4 {
		t.Errorf("timed %q alongside the spans, want 4 operations", ops)
	}
	for name, n := range want {
		if n != 0 {
			t.Errorf("%s: %d calls without their span (negative: spans without a call); spans: %+v", name, n, spans)
		}
	}
}
