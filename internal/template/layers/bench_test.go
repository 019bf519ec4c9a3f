package layers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// BenchmarkBuild measures a small build (RUN, ENV, RUN) on the base template: cold
// (empty cache), fully cached, and with only its last step changed, each iteration on
// a fresh cache, and reports the three times, their ratios to cold, and the finished
// root filesystem's size.
func BenchmarkBuild(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	var cold, cached, last time.Duration
	var size int64
	for i := 0; i < b.N; i++ {
		e.fresh(b)
		steps := []domain.BuildStep{
			{Kind: domain.StepRun, Args: []string{"mkdir -p /app && seq 1 10000 > /app/data"}},
			{Kind: domain.StepEnv, Args: []string{"MODE", "bench"}},
			{Kind: domain.StepRun, Args: []string{"wc -l /app/data > /app/count"}},
		}
		for k, d := range []*time.Duration{&cold, &cached, &last} {
			if k == 2 {
				steps[2].Args = []string{fmt.Sprintf("wc -c /app/data > /app/count%d", i)}
			}
			t0 := time.Now()
			res, _, _, err := e.run(ctx, domain.BuildSpec{Steps: steps}, nil)
			*d += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			size = res.Size
		}
	}
	n := float64(b.N)
	b.ReportMetric(cold.Seconds()*1000/n, "cold-ms")
	b.ReportMetric(cached.Seconds()*1000/n, "cached-ms")
	b.ReportMetric(last.Seconds()*1000/n, "last-step-ms")
	b.ReportMetric(cached.Seconds()/cold.Seconds(), "cached/cold")
	b.ReportMetric(last.Seconds()/cold.Seconds(), "last/cold")
	b.ReportMetric(float64(size)/(1<<20), "rootfs-MiB")
}
