package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/telemetry/otlptest"
)

// clearEnv unsets the variables that turn tracing on, for the test's duration.
func clearEnv(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME"} {
		t.Setenv(k, "")
	}
}

func TestEnabled(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "TRUE"}, false},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			if got := Enabled(); got != c.want {
				t.Errorf("Enabled() = %v, want %v", got, c.want)
			}
		})
	}
}

// TestSetupWithoutEndpoint: no endpoint installs nothing; the global provider stays
// what it was and spans record nothing.
func TestSetupWithoutEndpoint(t *testing.T) {
	clearEnv(t)
	before := noop.NewTracerProvider()
	otel.SetTracerProvider(before)
	tr, err := Setup(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Enabled() {
		t.Error("Enabled() with no endpoint")
	}
	if otel.GetTracerProvider() != trace.TracerProvider(before) {
		t.Errorf("Setup replaced the global tracer provider with %T without an endpoint", otel.GetTracerProvider())
	}
	_, span := otel.Tracer("test").Start(context.Background(), "x")
	if span.IsRecording() {
		t.Error("span records without an endpoint")
	}
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestSetupExports: with an endpoint, spans reach an OTLP/HTTP receiver, flushed by
// Shutdown, named by OTEL_SERVICE_NAME, with their parent.
func TestSetupExports(t *testing.T) {
	clearEnv(t)
	rcv := otlptest.New()
	defer rcv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "warren-test")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "3600000") // an hour: only Shutdown's flush can send them
	// Leave a no-op behind (the default delegate cannot be put back once replaced).
	defer otel.SetTracerProvider(noop.NewTracerProvider())
	tr, err := Setup(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Enabled() {
		t.Fatal("not Enabled() with an endpoint")
	}
	ctx, parent := otel.Tracer("test").Start(context.Background(), "parent")
	_, child := otel.Tracer("test").Start(ctx, "child", trace.WithAttributes())
	child.End()
	parent.End()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := rcv.Spans()
	if len(spans) != 2 {
		t.Fatalf("received %d spans, want 2: %+v (problems: %v)", len(spans), spans, rcv.Problems())
	}
	byName := map[string]otlptest.Span{}
	for _, s := range spans {
		byName[s.Name] = s
		if s.Service != "warren-test" {
			t.Errorf("span %s has service.name %q, want OTEL_SERVICE_NAME's warren-test", s.Name, s.Service)
		}
	}
	p, c := byName["parent"], byName["child"]
	if p.SpanID != parent.SpanContext().SpanID().String() || p.TraceID != parent.SpanContext().TraceID().String() {
		t.Errorf("parent span %+v is not the one started", p)
	}
	if c.ParentSpanID != p.SpanID || c.TraceID != p.TraceID {
		t.Errorf("child %+v is not under parent %+v", c, p)
	}
}

func TestDefaultServiceName(t *testing.T) {
	clearEnv(t)
	rcv := otlptest.New()
	defer rcv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", rcv.URL+"/v1/traces")
	// Leave a no-op behind (the default delegate cannot be put back once replaced).
	defer otel.SetTracerProvider(noop.NewTracerProvider())
	tr, err := Setup(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "one")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := rcv.Spans()
	if len(spans) != 1 || spans[0].Service != DefaultServiceName {
		t.Fatalf("spans %+v, want one of service %q (problems: %v)", spans, DefaultServiceName, rcv.Problems())
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With(logkey.Subsystem, "test")
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))

	log.InfoContext(ctx, "with span")
	log.Info("without")
	reqCtx := domain.WithRequestMeta(ctx, domain.RequestMeta{RequestID: "req_42"})
	log.InfoContext(reqCtx, "in a request")
	log.InfoContext(reqCtx, "naming its request", logkey.RequestID, "req_42")
	log.InfoContext(domain.WithRequestMeta(context.Background(), domain.RequestMeta{RequestID: "req_43"}), "untraced request")
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 5 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	var with, without map[string]any
	if err := json.Unmarshal(lines[0], &with); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(lines[1], &without); err != nil {
		t.Fatal(err)
	}
	if with[logkey.TraceID] != tid.String() || with[logkey.SpanID] != sid.String() || with[logkey.Subsystem] != "test" {
		t.Errorf("line logged in a span: %s", lines[0])
	}
	if _, ok := without[logkey.TraceID]; ok {
		t.Errorf("line logged without a span has a trace id: %s", lines[1])
	}
	if !bytes.Contains(lines[2], []byte(`"request_id":"req_42","trace_id":"`+tid.String())) {
		t.Errorf("line logged in a request: %s", lines[2])
	}
	if bytes.Count(lines[3], []byte(`"request_id"`)) != 1 {
		t.Errorf("line naming its request id has it other than once: %s", lines[3])
	}
	if !bytes.Contains(lines[4], []byte(`"request_id":"req_43"`)) || bytes.Contains(lines[4], []byte(logkey.TraceID)) {
		t.Errorf("line logged in an untraced request: %s", lines[4])
	}
}

func TestSetupRefusesBadEndpoint(t *testing.T) {
	for _, c := range []struct{ key, value string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://collector:4317"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://%zz"},
	} {
		t.Run(c.value, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(c.key, c.value)
			before := noop.NewTracerProvider()
			otel.SetTracerProvider(before)
			_, err := Setup(context.Background(), nil)
			if err == nil || !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), "http://127.0.0.1:4318") {
				t.Errorf("Setup with %s=%s: %v; want an error naming the variable and an example", c.key, c.value, err)
			}
			if otel.GetTracerProvider() != trace.TracerProvider(before) {
				t.Error("a refused Setup installed a provider")
			}
		})
	}
}
