package bench

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 20; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := summarize(ds)
	if s.N != 20 || s.P50 != 10 || s.P95 != 19 || s.Min != 1 || s.Max != 20 {
		t.Errorf("summary of 1..20 ms: %+v", s)
	}
	if s := summarize([]time.Duration{5 * time.Millisecond}); s.P50 != 5 || s.P95 != 5 {
		t.Errorf("single: %+v", s)
	}
	if s := summarize(nil); s.N != 0 {
		t.Errorf("empty: %+v", s)
	}
}

func TestPStats(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := pstats(ds)
	if s.N != 200 || s.P50 != 100 || s.P99 != 198 || s.Max != 200 {
		t.Errorf("pstats of 1..200 ms: %+v", s)
	}
}
