package bench

import (
	"fmt"
	"io"
)

// WriteText writes r as a table for people: one line per series, then the ratios and
// the idle memory.
func WriteText(w io.Writer, r *Result) {
	fmt.Fprintln(w)
	for _, row := range []struct {
		name string
		s    Stats
	}{
		{"bare runsc run (baseline)", r.Baseline},
		{"bare runsc run, no network", r.BaselineNonet},
		{"cold create to first output", r.Cold},
		{"warm create to first output", r.Warm},
		{"pause", r.Pause},
		{"resume", r.Resume},
		{"fork of 1", r.Fork1},
		{"fork of 10, per sandbox", r.Fork10},
		{"code create to first result", r.CodeFirst},
		{"exec {\"cmd\":\"true\"}", r.Exec},
		{"exec, after a pause", r.ExecPaced},
		{"spawn inside the sandbox", r.Spawn},
		{"runCode(\"1+1\")", r.RunCode},
	} {
		if row.s.N == 0 {
			fmt.Fprintf(w, "%-30s not measured: %s\n", row.name, row.s.Error)
			continue
		}
		fmt.Fprintf(w, "%-30s p50 %7.1f ms  p95 %7.1f ms  (n=%d)\n", row.name, row.s.P50, row.s.P95, row.s.N)
	}
	fmt.Fprintf(w, "ratio cold/bare p50 %.2f, p95 %.2f; warm/bare p50 %.2f\n", r.RatioP50, r.RatioP95, r.RatioWarmP50)
	if r.PoolUnsettled > 0 {
		fmt.Fprintf(w, "%d rounds started while the base pool was still refilling: their baselines and cold create include that contention\n", r.PoolUnsettled)
	}
	if r.IdlePSS != nil {
		fmt.Fprintf(w, "idle base sandbox PSS %.1f MiB (sandbox %.1f MiB, gofer %.1f MiB), private %.1f MiB\n",
			mib(r.IdlePSS.Bytes), mib(r.IdlePSS.SandboxBytes), mib(r.IdlePSS.GoferBytes), mib(r.IdlePSS.USSBytes))
	} else {
		fmt.Fprintf(w, "idle base sandbox PSS not measured: %s\n", r.IdlePSSError)
	}
}
