package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Store records the store's query durations by operation (role.method).
type Store struct {
	queries *prometheus.HistogramVec
}

func newStore(m *Metrics) *Store {
	return &Store{queries: m.histogramVec("warren_store_query_duration_seconds", "Store calls by operation (role.method, e.g. sandboxes.get).",
		[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}, "op")}
}

// Query records one store call op that took d.
func (s *Store) Query(op string, d time.Duration) { s.queries.WithLabelValues(op).Observe(d.Seconds()) }
