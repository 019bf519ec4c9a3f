package bench

import (
	"context"
	"fmt"
	"time"
)

// CodeResult is the code interpreter benchmark in the shape earlier versions printed
// (under "code_interpreter"); Result's code_create_to_first_result and run_code hold
// the same series.
type CodeResult struct {
	// CreateToFirstResult is from "create a code-interpreter sandbox" to the first
	// result of a cell (1+1), over CodeRuns sandboxes.
	CreateToFirstResult Stats `json:"create_to_first_result"`
	// RunCode is the round trip of POST /v1/sandboxes/{id}/execute {"code":"1+1"} on a
	// warm context.
	RunCode PStats `json:"run_code_1plus1_warm"`
}

// code creates CodeRuns code-interpreter sandboxes (create to first result each), then
// times CodeCalls warm executions of 1+1 in the last one.
func (b *runner) code(ctx context.Context) error {
	var firsts []time.Duration
	var warmID string
	defer func() {
		if warmID != "" {
			b.c.kill(ctx, warmID)
		}
	}()
	for i := 0; i < b.o.CodeRuns; i++ {
		// The last one was just killed: let its teardown end (Options.settleAfter).
		if err := sleepCtx(ctx, b.o.settleAfter); err != nil {
			return err
		}
		start := time.Now()
		sb, err := b.c.create(ctx, `{"template":"code-interpreter","timeout":900}`)
		if err != nil {
			return fmt.Errorf("code-interpreter: %w", err)
		}
		text, err := b.c.execute(ctx, sb.ID, "1+1")
		if err == nil && text != "2" {
			err = fmt.Errorf("1+1 gave %q", text)
		}
		if err != nil {
			b.c.kill(ctx, sb.ID)
			return fmt.Errorf("code-interpreter: %w", err)
		}
		took := time.Since(start)
		firsts = append(firsts, took)
		b.progress("code-interpreter sandbox %d/%d: first result after %.0f ms", i+1, b.o.CodeRuns, msOf(took))
		if i < b.o.CodeRuns-1 {
			b.c.kill(ctx, sb.ID)
		} else {
			warmID = sb.ID
		}
	}
	var warm []time.Duration
	for i := -5; i < b.o.CodeCalls; i++ {
		start := time.Now()
		if _, err := b.c.execute(ctx, warmID, "1+1"); err != nil {
			return fmt.Errorf("runCode: %w", err)
		}
		if i >= 0 {
			warm = append(warm, time.Since(start))
		}
	}
	b.r.CodeFirst, b.r.RunCode = summarize(firsts), summarize(warm)
	b.r.Code = &CodeResult{CreateToFirstResult: b.r.CodeFirst, RunCode: pstats(warm)}
	b.progress("runCode(\"1+1\"): p50 %.1f ms, p95 %.1f ms (n=%d)", b.r.RunCode.P50, b.r.RunCode.P95, b.r.RunCode.N)
	return nil
}
