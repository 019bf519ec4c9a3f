package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads the server's /metrics with Prometheus's text parser.
func scrape(t *testing.T, s *server) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get(s.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v %.300s", resp.StatusCode, err, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams, string(body)
}

// label returns the value of the label name of m.
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestMetrics: a real server's /metrics, on its own listener and without a key, counts
// a running sandbox, times its create and start phases, records the API requests by
// route pattern, and never names the sandbox.
func TestMetrics(t *testing.T) {
	s := startServer(t, serverOpts{})
	sb := s.Create(map[string]any{"timeout": 120})
	if r := s.Exec(sb.ID, "echo hi"); !strings.Contains(r.Stdout, "hi") {
		t.Fatalf("exec: %+v", r)
	}
	if code, _ := s.API("GET", "/v1/sandboxes/"+sb.ID, nil, nil); code != 200 {
		t.Fatalf("get sandbox: %d", code)
	}
	fams, body := scrape(t, s)
	if strings.Contains(body, sb.ID) {
		t.Errorf("/metrics names the sandbox id %s", sb.ID)
	}

	running := 0.0
	for _, m := range fams["warren_sandboxes"].GetMetric() {
		if label(m, "state") == "running" && label(m, "template") == "base" {
			running += m.GetGauge().GetValue()
		}
	}
	if running != 1 {
		t.Errorf(`warren_sandboxes{state="running",template="base"} = %v, want 1`, running)
	}
	var creates uint64
	for _, m := range fams["warren_sandbox_create_duration_seconds"].GetMetric() {
		if label(m, "path") == "cold" {
			h := m.GetHistogram()
			creates += h.GetSampleCount()
			if h.GetSampleSum() <= 0 {
				t.Errorf("create duration sum %v, want > 0", h.GetSampleSum())
			}
		}
	}
	if creates != 1 {
		t.Errorf("cold create durations observed: %d, want 1", creates)
	}
	phases := map[string]uint64{}
	for _, m := range fams["warren_sandbox_start_phase_duration_seconds"].GetMetric() {
		phases[label(m, "phase")] += m.GetHistogram().GetSampleCount()
	}
	for _, ph := range []string{"prepare", "runtime_start", "agent_ready"} {
		if phases[ph] < 1 {
			t.Errorf("start phase %s not observed: %v", ph, phases)
		}
	}
	routes := map[string]float64{}
	for _, m := range fams["warren_http_requests_total"].GetMetric() {
		routes[label(m, "api")+" "+label(m, "route")+" "+label(m, "code")] += m.GetCounter().GetValue()
	}
	for _, want := range []string{"v1 POST /v1/sandboxes 201", "v1 POST /v1/sandboxes/{id}/commands 200", "v1 GET /v1/sandboxes/{id} 200"} {
		if routes[want] < 1 {
			t.Errorf("no request recorded as %q: %v", want, routes)
		}
	}
	storeOps := map[string]uint64{}
	for _, m := range fams["warren_store_query_duration_seconds"].GetMetric() {
		storeOps[label(m, "op")] += m.GetHistogram().GetSampleCount()
	}
	for _, op := range []string{"sandboxes.create_within_quota", "sandboxes.get", "teams.get"} {
		if storeOps[op] < 1 {
			t.Errorf("store call %s not timed: %v", op, storeOps)
		}
	}
	cache := map[string]float64{}
	for _, m := range fams["warren_template_cache_total"].GetMetric() {
		cache[label(m, "result")] += m.GetCounter().GetValue()
	}
	if cache["hit"]+cache["miss"] < 1 {
		t.Errorf("template cache lookups not counted: %v", cache)
	}
	for _, name := range []string{"warren_build_info", "go_goroutines", "process_resident_memory_bytes",
		"warren_node_capacity", "warren_node_used", "warren_metering_lag_seconds"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	s.Kill(sb.ID)
	fams, _ = scrape(t, s)
	var kills float64
	for _, m := range fams["warren_sandbox_kills_total"].GetMetric() {
		if label(m, "reason") == "request" {
			kills += m.GetCounter().GetValue()
		}
	}
	if kills != 1 {
		t.Errorf(`warren_sandbox_kills_total{reason="request"} = %v, want 1`, kills)
	}
	for _, m := range fams["warren_sandboxes"].GetMetric() {
		if label(m, "state") == "running" && m.GetGauge().GetValue() != 0 {
			t.Errorf("after the kill: warren_sandboxes %v", m)
		}
	}
}
