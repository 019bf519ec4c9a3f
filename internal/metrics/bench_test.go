package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/warren-sh/warren/internal/api/edge"
)

// BenchmarkEdgeRequest is a request through the API edge without and with metrics:
// the ratio of the two is what recording a request costs.
func BenchmarkEdgeRequest(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sandboxes/{id}/pause", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	bare := edge.New(slog.New(slog.DiscardHandler), func(http.ResponseWriter, *http.Request, edge.Class) {})
	for _, tc := range []struct {
		name string
		e    *edge.Edge
	}{
		{"off", bare},
		{"on", bare.WithMetrics("v1", New(Options{}))},
		{"on+team", bare.WithMetrics("v1", New(Options{TeamLabels: true}))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest("POST", "/v1/sandboxes/abcdefghij0123456789/pause", nil)
			b.ReportAllocs()
			for b.Loop() {
				tc.e.Serve(httptest.NewRecorder(), r, mux)
			}
		})
	}
}

// BenchmarkCensusScrape is a scrape of the registry with 1,000 sandboxes in the
// census (the census function itself not included).
func BenchmarkCensusScrape(b *testing.B) {
	m := New(Options{})
	counts := make([]SandboxCount, 0, 1000)
	for i := range 1000 {
		counts = append(counts, SandboxCount{State: "running", Template: []string{"base", "code-interpreter"}[i%2], Runtime: "gvisor", TeamID: "t", N: 1})
	}
	m.Sandboxes().Watch(func(context.Context) ([]SandboxCount, error) { return counts, nil }, nil)
	h := m.Handler()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/metrics", nil))
	}
}
