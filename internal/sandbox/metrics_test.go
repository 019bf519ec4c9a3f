package sandbox

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/metrics"
	"github.com/warren-sh/warren/internal/runtime"
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

// endRecorder is a Recorder that keeps the kills and losses it is told of.
type endRecorder struct {
	nopRecorder
	mu   sync.Mutex
	ends []string
}

func (r *endRecorder) Killed(reason string) { r.add("killed " + reason) }
func (r *endRecorder) Lost(reason string)   { r.add("lost " + reason) }

func (r *endRecorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ends = append(r.ends, s)
}

func (r *endRecorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.ends)
	slices.Sort(out)
	return out
}

// TestMetricsEnds: each way a sandbox ends is counted once under its reason: a kill
// (request), a timeout, one the sweeper finds dead (lost), and KillAll's (shutdown).
func TestMetricsEnds(t *testing.T) {
	w := newWorld(t)
	rec := &endRecorder{}
	w.svc.cfg.Recorder = rec
	ctx := context.Background()
	killed, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	expiring, err := w.svc.Create(ctx, writer, domain.CreateSandbox{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dead, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.svc.Kill(ctx, writer, killed.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the timeout", func() bool { return w.row(expiring.ID).State == domain.StateStopped })
	drv := gvisorFake
	drv.status = func(_ context.Context, h runtime.Handle) (runtime.Status, error) {
		if h.ID == dead.ID {
			return runtime.StatusStopped, nil
		}
		return runtime.StatusRunning, nil
	}
	w.node.drivers = []runtime.Driver{drv}
	if n := w.sweeper.CheckLive(ctx); n != 1 {
		t.Fatalf("CheckLive ended %d, want 1", n)
	}
	last, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.svc.KillAll(ctx); err != nil {
		t.Fatal(err)
	}
	if w.row(last.ID).State != domain.StateStopped {
		t.Fatalf("KillAll left %s", w.row(last.ID).State)
	}
	want := []string{"killed request", "killed shutdown", "killed timeout", "lost stopped_unexpectedly"}
	if got := rec.got(); !slices.Equal(got, want) {
		t.Errorf("ends counted %q, want %q", got, want)
	}
}

// TestMetricsPoolPaths: a create a warm member serves counts as path warm, one that
// does not fit the pool's profile as cold, and the members waiting in the pool are not
// in the census (they belong to no team and run nothing of anyone's).
func TestMetricsPoolPaths(t *testing.T) {
	mx := metrics.New(metrics.Options{})
	pw := newPoolWorldWith(t, mx.Sandboxes(), PoolSize{"base", 1})
	pw.waitReady("base", 1)
	ctx := context.Background()
	if _, err := pw.svc.Create(ctx, writer, domain.CreateSandbox{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pw.svc.Create(ctx, writer, domain.CreateSandbox{Limits: domain.Limits{MemoryMB: 1024}}); err != nil {
		t.Fatal(err)
	}
	pw.waitReady("base", 1)
	counts, err := Census(ctx, pw.svc)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 1 || counts[0].N != 2 || counts[0].State != domain.StateRunning || counts[0].Team != teamID {
		t.Errorf("census %+v, want the 2 created sandboxes running and no pool member", counts)
	}
	mfs, err := mx.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "warren_sandbox_creates_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "path" {
					paths[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if paths["warm"] != 1 || paths["cold"] != 1 || len(paths) != 2 {
		t.Errorf("creates by path %v, want warm 1 and cold 1", paths)
	}
}
