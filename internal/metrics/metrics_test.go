package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// contract is every warren_* metric with its type and labels (without team), as the
// Metrics section of docs/ARCHITECTURE.md names them (dashboards and alert rules are
// written against these names). perTeam marks
// the metrics that take a team label with Options.TeamLabels.
var contract = []struct {
	name    string
	typ     dto.MetricType
	labels  []string
	perTeam bool
}{
	{"warren_build_info", dto.MetricType_GAUGE, []string{"version"}, false},
	{"warren_sandboxes", dto.MetricType_GAUGE, []string{"state", "template", "runtime"}, true},
	{"warren_sandbox_creates_total", dto.MetricType_COUNTER, []string{"template", "path", "outcome"}, true},
	{"warren_sandbox_create_duration_seconds", dto.MetricType_HISTOGRAM, []string{"template", "path"}, false},
	{"warren_sandbox_start_phase_duration_seconds", dto.MetricType_HISTOGRAM, []string{"phase", "runtime"}, false},
	{"warren_sandbox_kills_total", dto.MetricType_COUNTER, []string{"reason"}, false},
	{"warren_sandboxes_lost_total", dto.MetricType_COUNTER, []string{"reason"}, false},
	{"warren_sandbox_lifecycle_duration_seconds", dto.MetricType_HISTOGRAM, []string{"op", "outcome"}, false},
	{"warren_pool_size", dto.MetricType_GAUGE, []string{"template", "state"}, false},
	{"warren_pool_claims_total", dto.MetricType_COUNTER, []string{"template", "result"}, false},
	{"warren_template_build_duration_seconds", dto.MetricType_HISTOGRAM, []string{"template", "outcome"}, false},
	{"warren_template_cache_total", dto.MetricType_COUNTER, []string{"result"}, false},
	{"warren_http_requests_total", dto.MetricType_COUNTER, []string{"api", "route", "method", "code"}, true},
	{"warren_http_request_duration_seconds", dto.MetricType_HISTOGRAM, []string{"api", "route", "method"}, false},
	{"warren_proxy_requests_total", dto.MetricType_COUNTER, []string{"code"}, false},
	{"warren_proxy_bytes_total", dto.MetricType_COUNTER, []string{"direction"}, false},
	{"warren_egress_decisions_total", dto.MetricType_COUNTER, []string{"action", "kind"}, false},
	{"warren_refusals_total", dto.MetricType_COUNTER, []string{"kind", "reason"}, true},
	{"warren_node_capacity", dto.MetricType_GAUGE, []string{"resource"}, false},
	{"warren_node_used", dto.MetricType_GAUGE, []string{"resource"}, false},
	{"warren_metering_lag_seconds", dto.MetricType_GAUGE, nil, false},
	{"warren_store_query_duration_seconds", dto.MetricType_HISTOGRAM, []string{"op"}, false},
}

// exercise records something in every metric of m.
func exercise(m *Metrics) {
	m.Sandboxes().Watch(func(context.Context) ([]SandboxCount, error) {
		return []SandboxCount{
			{State: "running", Template: "base", Runtime: "gvisor", TeamID: "team_a", N: 2},
			{State: "running", Template: "base", Runtime: "gvisor", TeamID: "team_b", N: 1},
			{State: "paused", Template: "base", Runtime: "runc", TeamID: "team_a", N: 1},
		}, nil
	}, nil)
	sb := m.Sandboxes()
	sb.Created("base", "cold", "team_a", 300*time.Millisecond, true)
	sb.Created("base", "warm", "team_a", 0, false)
	sb.StartPhase("prepare", "gvisor", 20*time.Millisecond)
	sb.Killed("request")
	sb.Lost("stopped_unexpectedly")
	sb.Lifecycle("pause", time.Second, true)
	m.Pools(func() []PoolCount { return []PoolCount{{Template: "base", Ready: 1, Target: 2, Claims: 3, Misses: 1}} })
	m.Templates().Built("base", time.Minute, true)
	m.Templates().Cache(true)
	m.Request("v1", "GET /v1/sandboxes/{id}", "GET", 200, time.Millisecond, "team_a")
	m.Proxy().Request(502)
	m.Proxy().Bytes(10, 20)
	m.Egress().Decision("deny", "sni")
	m.Refused("quota", "sandboxes", "team_a")
	m.Node(func() NodeFigures {
		return NodeFigures{Capacity: map[string]float64{"cpu_cores": 2}, Used: map[string]float64{"cpu_cores": 1}}
	})
	m.MeteringLag(func() time.Time { return time.Now().Add(-3 * time.Second) })
	m.Store().Query("sandboxes.get", time.Millisecond)
}

func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func labelNames(m *dto.Metric) []string {
	var out []string
	for _, l := range m.GetLabel() {
		out = append(out, l.GetName())
	}
	sort.Strings(out)
	return out
}

// TestContract: every metric of the contract is there with its type and exactly its
// labels, the team label only with TeamLabels, and nothing else is named warren_*.
func TestContract(t *testing.T) {
	for _, team := range []bool{false, true} {
		m := New(Options{Version: "1.2.3", TeamLabels: team})
		exercise(m)
		got := gather(t, m)
		for _, c := range contract {
			mf, ok := got[c.name]
			if !ok {
				t.Errorf("team labels %v: %s missing", team, c.name)
				continue
			}
			if mf.GetType() != c.typ {
				t.Errorf("%s: type %s, want %s", c.name, mf.GetType(), c.typ)
			}
			want := slices.Clone(c.labels)
			if team && c.perTeam {
				want = append(want, "team")
			}
			sort.Strings(want)
			for _, s := range mf.GetMetric() {
				if got := labelNames(s); !slices.Equal(got, want) {
					t.Errorf("team labels %v: %s has labels %v, want %v", team, c.name, got, want)
				}
			}
			delete(got, c.name)
		}
		for name := range got {
			if strings.HasPrefix(name, "warren_") {
				t.Errorf("%s is not in the contract", name)
			}
		}
		for _, std := range []string{"go_goroutines", "process_cpu_seconds_total"} {
			if _, ok := got[std]; !ok {
				t.Errorf("%s missing: the Go and process collectors are registered", std)
			}
		}
	}
}

// TestValues: the census is summed over teams without team labels, the build info
// names the version, and the lag is measured from the last tick.
func TestValues(t *testing.T) {
	m := New(Options{Version: "1.2.3"})
	exercise(m)
	got := gather(t, m)
	values := map[string]float64{}
	for _, s := range got["warren_sandboxes"].GetMetric() {
		var parts []string
		for _, l := range s.GetLabel() {
			parts = append(parts, l.GetValue())
		}
		values[strings.Join(parts, ",")] = s.GetGauge().GetValue()
	}
	// labels sort by name: runtime, state, template
	if values["gvisor,running,base"] != 3 || values["runc,paused,base"] != 1 || len(values) != 2 {
		t.Errorf("warren_sandboxes: %v, want running base gvisor 3 and paused base runc 1", values)
	}
	bi := got["warren_build_info"].GetMetric()[0]
	if bi.GetLabel()[0].GetValue() != "1.2.3" || bi.GetGauge().GetValue() != 1 {
		t.Errorf("build info: %v", bi)
	}
	lag := got["warren_metering_lag_seconds"].GetMetric()[0].GetGauge().GetValue()
	if lag < 3 || lag > 60 {
		t.Errorf("metering lag %v, want about 3 s", lag)
	}
	h := got["warren_sandbox_create_duration_seconds"].GetMetric()
	if len(h) != 1 || h[0].GetHistogram().GetSampleCount() != 1 {
		t.Errorf("create durations: %v, want one ok create (the failed one is counted, not timed)", h)
	}
}

// TestCensusError: a census that fails makes the scrape report an error for that
// metric and still serve the rest.
func TestCensusError(t *testing.T) {
	m := New(Options{})
	m.Sandboxes().Watch(func(context.Context) ([]SandboxCount, error) { return nil, errors.New("store down") }, nil)
	m.Request("v1", "unmatched", "GET", 404, time.Millisecond, "")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "warren_http_requests_total") {
		t.Errorf("scrape with a failing census: %d %.300s", rec.Code, rec.Body.String())
	}
}

// TestInstrument: the console's pages are recorded by the pattern that routed them,
// never their path.
func TestInstrument(t *testing.T) {
	m := New(Options{})
	mux := http.NewServeMux()
	mux.Handle("/", m.Instrument("console", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})))
	for _, p := range []string{"/assets/app-1234.js", "/sandboxes/abcdefghij0123456789"} {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	ms := fams["warren_http_requests_total"].GetMetric()
	if len(ms) != 1 || ms[0].GetCounter().GetValue() != 2 {
		t.Fatalf("console requests: %v, want one series counting 2", ms)
	}
	for _, l := range ms[0].GetLabel() {
		if l.GetName() == "route" && l.GetValue() != "/" {
			t.Errorf("route %q, want the pattern /", l.GetValue())
		}
		if l.GetName() == "code" && l.GetValue() != "418" {
			t.Errorf("code %q, want 418", l.GetValue())
		}
	}
}
