// Package telemetry sets up OpenTelemetry tracing for warren serve, and makes the
// operator log trace-aware. It is the one package that imports the OpenTelemetry SDK
// and the OTLP exporter (test/arch holds it to that): every other package starts its
// spans through the API alone (otel.Tracer), which does nothing until Setup installs a
// provider.
//
// Tracing is on only when the standard OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and OTEL_SDK_DISABLED is not "true", and
// OTEL_TRACES_EXPORTER is not "none"); spans then go out as OTLP over HTTP in batches.
// The exporter, the batch processor and the sampler read the other standard variables
// (OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_SCHEDULE_DELAY, OTEL_TRACES_SAMPLER, ...)
// themselves. The service is named by OTEL_SERVICE_NAME, warren by default.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime/debug"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/warren-sh/warren/internal/logkey"
)

// DefaultServiceName is the service.name spans carry when OTEL_SERVICE_NAME is unset.
const DefaultServiceName = "warren"

// Tracing is what Setup installed. Its zero value (tracing off) is usable.
type Tracing struct {
	tp *sdktrace.TracerProvider
}

// Enabled reports whether spans are exported.
func (t *Tracing) Enabled() bool { return t != nil && t.tp != nil }

// Shutdown sends the spans still queued and stops the exporter; with tracing off it
// does nothing. ctx bounds how long it waits for the collector.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// Enabled reports whether the environment asks for traces to be exported (see the
// package comment).
func Enabled() bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") ||
		strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")), "none") {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs the global tracer provider and the W3C trace-context propagator when
// Enabled, exporting OTLP over HTTP; otherwise it installs nothing and the global
// tracer stays a no-op. The spans' service.version is the binary's build (its VCS
// revision); the exporter's failures (a collector that is down) are logged to log at
// warn level.
func Setup(ctx context.Context, log *slog.Logger) (*Tracing, error) {
	if !Enabled() {
		return &Tracing{}, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := checkEndpoints(); err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, errors.New("setting up the OTLP trace exporter: " + err.Error() + " (check OTEL_EXPORTER_OTLP_ENDPOINT)")
	}
	// Defaults first: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (WithFromEnv) win.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", DefaultServiceName), attribute.String("service.version", buildVersion())),
		resource.WithFromEnv(), resource.WithHost(), resource.WithProcessPID())
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, errors.New("describing the traced service: " + err.Error() + " (check OTEL_RESOURCE_ATTRIBUTES)")
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("exporting traces", logkey.Err, err)
	}))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return &Tracing{tp: tp}, nil
}

// buildVersion is the module version of the binary, or its VCS revision when it was
// built from a work tree ("(devel)").
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && (v == "" || v == "(devel)") {
			v = s.Value
		}
	}
	if v == "" {
		v = "unknown"
	}
	return v
}

// checkEndpoints refuses an endpoint variable that is not an http(s) URL with a host:
// the exporter would only fail each export later, in the log.
func checkEndpoints() error {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		v := os.Getenv(k)
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s=%q is not an http(s) URL: set it like http://127.0.0.1:4318 (OTLP over HTTP; unset it to turn tracing off)", k, v)
		}
	}
	return nil
}
