package bench

import (
	"encoding/json"
	"sort"
	"time"
)

// Stats summarises a series of durations in milliseconds. A measurement that could not
// be taken (the server does not offer the operation, or it failed) has N 0 and Error
// saying why, and is written as {"n":0,"error":"..."}: never as made-up figures.
type Stats struct {
	N     int     `json:"n"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	Min   float64 `json:"min_ms"`
	Max   float64 `json:"max_ms"`
	Error string  `json:"error,omitempty"`
}

// MarshalJSON writes an absent measurement as {"n":0,"error":...}.
func (s Stats) MarshalJSON() ([]byte, error) {
	if s.N == 0 {
		return json.Marshal(struct {
			N     int    `json:"n"`
			Error string `json:"error,omitempty"`
		}{0, s.Error})
	}
	type plain Stats
	return json.Marshal(plain(s))
}

// absent is a measurement that could not be taken, with the reason.
func absent(reason string) Stats { return Stats{Error: reason} }

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// sortedMs returns ds in milliseconds, sorted.
func sortedMs(ds []time.Duration) []float64 {
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = msOf(d)
	}
	sort.Float64s(ms)
	return ms
}

// nearestRank is the p-th percentile of sorted ms (nearest rank).
func nearestRank(ms []float64, p float64) float64 {
	i := int(p*float64(len(ms))+0.999999) - 1
	return ms[max(0, min(i, len(ms)-1))]
}

func summarize(ds []time.Duration) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	ms := sortedMs(ds)
	return Stats{N: len(ms), P50: nearestRank(ms, 0.50), P95: nearestRank(ms, 0.95), Min: ms[0], Max: ms[len(ms)-1]}
}

// summarizeOr summarises ds, or reports the series absent for reason when it is empty.
func summarizeOr(ds []time.Duration, reason string) Stats {
	if len(ds) == 0 {
		return absent(reason)
	}
	return summarize(ds)
}

// PStats adds p99 to a series.
type PStats struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func pstats(ds []time.Duration) PStats {
	if len(ds) == 0 {
		return PStats{}
	}
	ms := sortedMs(ds)
	return PStats{N: len(ms), P50: nearestRank(ms, 0.50), P99: nearestRank(ms, 0.99), Max: ms[len(ms)-1]}
}

// ratio is a over b, or 0 when either is missing.
func ratio(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return a / b
}
