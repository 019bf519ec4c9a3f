package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// CodeResult is the code interpreter benchmark.
type CodeResult struct {
	// CreateToFirstResult is from "create a code-interpreter sandbox" to the first
	// result of a cell (1+1), over Runs sandboxes.
	CreateToFirstResult Stats `json:"create_to_first_result"`
	// RunCode is the round trip of POST /v1/sandboxes/{id}/execute {"code":"1+1"} on a
	// warm context.
	RunCode PStats `json:"run_code_1plus1_warm"`
}

// PStats adds p99 to a series.
type PStats struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// RunCode measures the code interpreter: creates runs sandboxes (create to first result
// each), then times calls warm executions of 1+1 in the last one.
func RunCode(ctx context.Context, o Options, runs, calls int) (*CodeResult, error) {
	if runs <= 0 {
		runs = 5
	}
	if calls <= 0 {
		calls = 200
	}
	var firsts []time.Duration
	var warmID string
	for i := 0; i < runs; i++ {
		start := time.Now()
		var sb struct {
			ID string `json:"id"`
		}
		if err := call(ctx, o, "POST", "/v1/sandboxes", `{"template":"code-interpreter"}`, &sb); err != nil {
			return nil, err
		}
		text, err := execute(ctx, o, sb.ID, "1+1")
		if err != nil {
			call(context.WithoutCancel(ctx), o, "DELETE", "/v1/sandboxes/"+sb.ID, "", nil)
			return nil, err
		}
		if text != "2" {
			call(context.WithoutCancel(ctx), o, "DELETE", "/v1/sandboxes/"+sb.ID, "", nil)
			return nil, fmt.Errorf("1+1 gave %q", text)
		}
		firsts = append(firsts, time.Since(start))
		fmt.Fprintf(o.Progress, "code-interpreter sandbox %d/%d: first result after %.0f ms\n", i+1, runs, float64(time.Since(start).Microseconds())/1000)
		if i < runs-1 {
			call(context.WithoutCancel(ctx), o, "DELETE", "/v1/sandboxes/"+sb.ID, "", nil)
		} else {
			warmID = sb.ID
		}
	}
	defer call(context.WithoutCancel(ctx), o, "DELETE", "/v1/sandboxes/"+warmID, "", nil)
	var warm []time.Duration
	for i := 0; i < calls; i++ {
		start := time.Now()
		if _, err := execute(ctx, o, warmID, "1+1"); err != nil {
			return nil, err
		}
		warm = append(warm, time.Since(start))
	}
	return &CodeResult{CreateToFirstResult: summarize(firsts), RunCode: pstats(warm)}, nil
}

func pstats(ds []time.Duration) PStats {
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d.Microseconds()) / 1000
	}
	sort.Float64s(ms)
	if len(ms) == 0 {
		return PStats{}
	}
	pct := func(p float64) float64 {
		i := int(p*float64(len(ms))+0.999999) - 1
		return ms[max(0, min(i, len(ms)-1))]
	}
	return PStats{N: len(ms), P50: pct(0.50), P99: pct(0.99), Max: ms[len(ms)-1]}
}

func execute(ctx context.Context, o Options, id, code string) (string, error) {
	body, _ := json.Marshal(map[string]string{"code": code})
	var ex struct {
		Results []struct {
			IsMainResult bool   `json:"is_main_result"`
			Text         string `json:"text"`
		} `json:"results"`
		Error *struct{ Name, Value string } `json:"error"`
	}
	if err := call(ctx, o, "POST", "/v1/sandboxes/"+id+"/execute", string(body), &ex); err != nil {
		return "", err
	}
	if ex.Error != nil {
		return "", fmt.Errorf("cell raised %s: %s", ex.Error.Name, ex.Error.Value)
	}
	for _, r := range ex.Results {
		if r.IsMainResult {
			return r.Text, nil
		}
	}
	return "", nil
}
