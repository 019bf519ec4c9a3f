package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestBenchCommand runs `warren bench` against a real server and checks that it reports
// every figure (the figures themselves are for people, not for assertions).
func TestBenchCommand(t *testing.T) {
	s := startServer(t, serverOpts{})
	s.WaitTemplate("code-interpreter", 20*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, errOut, code := s.CLI(ctx, nil, "bench", "-n", "3", "--code", "--code-calls", "20", "-o", "json")
	if code != 0 {
		t.Fatalf("bench: %d %s", code, errOut)
	}
	var r struct {
		Warren   struct{ N int } `json:"warren_create_to_first_output"`
		Baseline struct{ N int } `json:"baseline_runsc_run"`
		RatioP50 float64         `json:"ratio_p50"`
		Code     struct {
			First struct{ N int } `json:"create_to_first_result"`
			Warm  struct {
				N   int     `json:"n"`
				P99 float64 `json:"p99_ms"`
			} `json:"run_code_1plus1_warm"`
		} `json:"code_interpreter"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench -o json is not JSON: %v\n%s", err, out)
	}
	if r.Warren.N != 3 || r.Baseline.N != 3 || r.RatioP50 <= 0 || r.Code.First.N != 5 || r.Code.Warm.N != 20 || r.Code.Warm.P99 <= 0 {
		t.Errorf("bench figures incomplete: %s", out)
	}
	t.Logf("bench: %s", out)
}
