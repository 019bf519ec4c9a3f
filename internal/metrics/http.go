package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics are the API requests' counter and duration histogram.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTP(m *Metrics) *httpMetrics {
	return &httpMetrics{
		requests: m.counterVec("warren_http_requests_total", "API requests by API (v1, e2b, console), route pattern, method and status code.",
			m.withTeam("api", "route", "method", "code")...),
		duration: m.histogramVec("warren_http_request_duration_seconds", "API request durations by API, route pattern and method (streams: until they end).",
			prometheus.DefBuckets, "api", "route", "method"),
	}
}

// Request records one API request (edge.Metrics): route is the ServeMux pattern
// ("unmatched" when none matched), method a standard method or "other".
func (m *Metrics) Request(api, route, method string, status int, d time.Duration, teamID string) {
	m.http.requests.WithLabelValues(m.teamValues(teamID, api, route, method, strconv.Itoa(status))...).Inc()
	m.http.duration.WithLabelValues(api, route, method).Observe(d.Seconds())
}

// Instrument records the requests h serves under api, for handlers outside the API
// edges (the console's pages). The route is the pattern of the mux that routed the
// request to h; "unmatched" when there is none.
func (m *Metrics) Instrument(api string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.Request(api, route, methodLabel(r.Method), sw.status, time.Since(start), "")
	})
}

// methodLabel is method when it is a standard one, else "other".
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// statusWriter remembers the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status  int
	written bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written && code >= 200 {
		w.status, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.written = true
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
