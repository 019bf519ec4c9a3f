package traced_test

import (
	"context"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlite"
	"github.com/warren-sh/warren/internal/store/traced"
	"github.com/warren-sh/warren/internal/telemetry"
	"github.com/warren-sh/warren/internal/telemetry/otlptest"
)

// TestWrap runs calls through a traced SQLite store: each is a client span named by its
// method under the caller's span, the answers are the store's, and a not-found answer
// is not a failed span.
func TestWrap(t *testing.T) {
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
	st := traced.Wrap(inner, "sqlite")
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
	if _, err := st.UsedSlots(ctx); err != nil {
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
	for name, n := range want {
		if n != 0 {
			t.Errorf("%s: %d calls without their span (negative: spans without a call); spans: %+v", name, n, spans)
		}
	}
}
