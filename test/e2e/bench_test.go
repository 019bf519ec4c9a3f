package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestBenchCommand runs `warren bench` against a real server and checks that it reports
// every figure, in one object, measured or absent with a reason (the figures themselves
// are for people, not for assertions).
func TestBenchCommand(t *testing.T) {
	// A warm pool of base, so that warm_create_to_first_output is measured.
	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_WARM_POOL=base=2"}})
	s.WaitTemplate("code-interpreter", 20*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, errOut, code := s.CLI(ctx, nil, "bench", "-n", "3", "--code", "--code-calls", "20", "--exec-calls", "20",
		"--pause-runs", "1", "--fork-runs", "1", "-o", "json")
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
	var all map[string]json.RawMessage
	_ = json.Unmarshal([]byte(out), &all)
	for _, k := range []string{"baseline_runsc_run", "baseline_runsc_run_nonet", "cold_create_to_first_output", "warm_create_to_first_output", "pause", "resume",
		"fork_1", "fork_10", "code_create_to_first_result", "exec", "spawn_in_sandbox", "run_code"} {
		var s struct {
			N     int     `json:"n"`
			P50   float64 `json:"p50_ms"`
			Error string  `json:"error"`
		}
		if err := json.Unmarshal(all[k], &s); err != nil || (s.N == 0) == (s.Error == "") || (s.N > 0 && s.P50 <= 0) {
			t.Errorf("%s is neither measured nor absent with a reason: %s", k, all[k])
		}
	}
	// The base template has python3: the spawn floor must be measured, not absent.
	var spawn struct {
		N   int     `json:"n"`
		P50 float64 `json:"p50_ms"`
	}
	if err := json.Unmarshal(all["spawn_in_sandbox"], &spawn); err != nil || spawn.N != 20 || spawn.P50 <= 0 {
		t.Errorf("spawn_in_sandbox: %s, want 20 spawns measured", all["spawn_in_sandbox"])
	}
	var pss int64
	if err := json.Unmarshal(all["idle_pss_bytes"], &pss); err != nil || pss <= 0 {
		t.Errorf("idle_pss_bytes: %s", all["idle_pss_bytes"])
	}
	t.Logf("bench: %s", out)
}
