package sandbox

import (
	"context"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/metrics"
)

// TestMetricsNoSandboxIDs creates, pauses, resumes and kills sandboxes on fakes with
// the real metrics recording, and checks that what a scrape gathers counts them and
// that no label value anywhere is a sandbox id.
func TestMetricsNoSandboxIDs(t *testing.T) {
	for _, team := range []bool{false, true} {
		w := newWorld(t)
		mx := metrics.New(metrics.Options{TeamLabels: team})
		w.svc.cfg.Recorder = mx.Sandboxes()
		mx.Sandboxes().Watch(func(ctx context.Context) ([]metrics.SandboxCount, error) {
			counts, err := Census(ctx, w.svc)
			out := make([]metrics.SandboxCount, len(counts))
			for i, n := range counts {
				out[i] = metrics.SandboxCount{State: string(n.State), Template: n.TemplateID, Runtime: n.Runtime, TeamID: n.Team, N: n.N}
			}
			return out, err
		}, nil)
		ctx := context.Background()
		var ids []string
		for range 3 {
			sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, sb.ID)
		}
		if _, err := w.svc.Create(ctx, writer, domain.CreateSandbox{}); !domain.IsKind(err, domain.KindQuotaExceeded) {
			t.Fatalf("fourth create: %v, want the quota's refusal", err)
		}
		if _, err := w.svc.Pause(ctx, writer, ids[0]); err != nil {
			t.Fatal(err)
		}
		if err := w.svc.Kill(ctx, writer, ids[1]); err != nil {
			t.Fatal(err)
		}

		mfs, err := mx.Gatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					for _, id := range ids {
						if strings.Contains(l.GetValue(), id) {
							t.Errorf("%s{%s=%q} holds sandbox id %s", mf.GetName(), l.GetName(), l.GetValue(), id)
						}
					}
					if l.GetName() == "team" && !team {
						t.Errorf("%s has a team label without team labels", mf.GetName())
					}
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
				switch {
				case m.Gauge != nil:
					seen[key] = m.GetGauge().GetValue()
				case m.Counter != nil:
					seen[key] = m.GetCounter().GetValue()
				case m.Histogram != nil:
					seen[key] = float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		teamPart := ""
		if team {
			teamPart = ",team=" + teamID
		}
		want := map[string]float64{
			"warren_sandboxes{runtime=gvisor,state=running" + teamPart + ",template=base}":     1,
			"warren_sandboxes{runtime=gvisor,state=paused" + teamPart + ",template=base}":      1,
			"warren_sandbox_creates_total{outcome=ok,path=cold" + teamPart + ",template=base}": 3,
			"warren_sandbox_create_duration_seconds{path=cold,template=base}":                  3,
			"warren_sandbox_start_phase_duration_seconds{phase=agent_ready,runtime=gvisor}":    3,
			"warren_sandbox_kills_total{reason=request}":                                       1,
			"warren_sandbox_lifecycle_duration_seconds{op=pause,outcome=ok}":                   1,
		}
		for k, v := range want {
			if seen[k] != v {
				t.Errorf("team labels %v: %s = %v, want %v (gathered: %v)", team, k, seen[k], v, seen)
			}
		}
	}
}
