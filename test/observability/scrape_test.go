package observability

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/testenv"
	"github.com/warren-sh/warren/test/internal/harness"
)

// eventOnly are the metrics this test cannot make appear, with why: a vector gets its
// first series only when its event happens. A dashboard query or name check may find
// nothing for them; every other metric the dashboard uses must have data.
var eventOnly = map[string]string{
	"warren_sandboxes_lost_total":            "only when a sandbox dies under the server",
	"warren_template_build_duration_seconds": "only when a template is built; the test reuses the cached base template",
	"warren_egress_decisions_total":          "only when a sandbox connects out under an egress policy",
}

// TestPrometheusScrapesWarren: Debian's prometheus, configured from
// deploy/prometheus/prometheus.yml, scrapes a real `warren serve` on real runsc while
// the test creates, pauses, resumes and kills sandboxes. Prometheus must then show the
// sandboxes and a create-duration quantile, evaluate every alert rule without error,
// and answer every query of deploy/grafana/warren.json with data (bar eventOnly), using
// only metric names the server exports.
func TestPrometheusScrapesWarren(t *testing.T) {
	testenv.NeedsRoot(t, "starts warren serve and real sandboxes")
	testenv.NeedsTool(t, "prometheus")
	if harness.BinDir == "" {
		t.Fatal("the binaries were not built (TestMain runs harness.Main as root)")
	}
	s := harness.Start(t, harness.Opts{ExtraEnv: []string{
		"WARREN_METER_INTERVAL=1s",
		// One warm member, so creates take both the warm path and (once it is claimed
		// and before it is refilled) the cold one, and the pool metrics have data.
		"WARREN_WARM_POOL=base=1",
	}})
	maddr := s.MListen // harness.Start gives every server a metrics listener of its own
	exposition := getMetrics(t, "http://"+maddr+"/metrics")
	if !strings.Contains(exposition, "warren_build_info{") {
		t.Fatalf("GET /metrics on --metrics-listen has no warren_build_info:\n%.2000s", exposition)
	}

	rulesFile, err := os.ReadFile(deployPath("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	p := startPrometheus(t, func(addr string) string { return scrapeConfig(t, maddr, addr) }, map[string][]byte{"alerts.yml": rulesFile})
	p.waitFor(`up{job="warren", instance="`+maddr+`"} == 1`, 30*time.Second, nonEmpty)

	// Sandboxes: three creates, one paused and resumed, one killed; a 404, a proxy
	// request to a port nothing listens on, and a create refused by a team's quota.
	type sbx struct {
		ID     string `json:"id"`
		State  string `json:"state"`
		Domain string `json:"domain"`
	}
	var ids []string
	var domain string
	for i := 0; i < 3; i++ {
		var sb sbx
		if code, raw := s.API("POST", "/v1/sandboxes", map[string]any{"template": "base"}, &sb); code != 201 {
			t.Fatalf("create %d: %d %s", i, code, raw)
		}
		ids, domain = append(ids, sb.ID), sb.Domain
	}
	var got sbx
	if code, raw := s.API("POST", "/v1/sandboxes/"+ids[0]+"/pause", nil, &got); code != 200 || got.State != "paused" {
		t.Fatalf("pause: %d %s", code, raw)
	}
	if code, raw := s.API("POST", "/v1/sandboxes/"+ids[0]+"/resume", map[string]any{"timeout": 300}, &got); code != 200 || got.State != "running" {
		t.Fatalf("resume: %d %s", code, raw)
	}
	s.Kill(ids[2])
	running := ids[:2]
	if code, _ := s.API("GET", "/v1/sandboxes/"+strings.Repeat("z", len(ids[0])), nil, nil); code != 404 {
		t.Errorf("GET an unknown sandbox = %d, want 404", code)
	}
	proxyRequest(t, s.ProxyURL, "8000-"+running[1]+"."+domain)
	running = append(running, quotaRefusal(t, s))

	// warren_sandboxes shows them (the warm pool's member, not yet anyone's, may be
	// counted as well).
	p.waitFor(`sum(warren_sandboxes{job="warren", state="running"})`, 60*time.Second, func(v []sample) error {
		if len(v) != 1 {
			return fmt.Errorf("%d series", len(v))
		}
		n, err := v[0].float()
		if err != nil || n < float64(len(running)) {
			return fmt.Errorf("%v running (%v), want at least %d", n, err, len(running))
		}
		return nil
	})
	p.waitFor(`histogram_quantile(0.5, sum by (le) (rate(warren_sandbox_create_duration_seconds_bucket[1m])))`, 60*time.Second, func(v []sample) error {
		if len(v) != 1 {
			return fmt.Errorf("%d series, want 1", len(v))
		}
		q, err := v[0].float()
		if err != nil || q <= 0 {
			return fmt.Errorf("p50 create duration %v (%v), want a positive number of seconds", v[0].Value[1], err)
		}
		t.Logf("p50 create duration %.3fs", q)
		return nil
	})
	// A few more scrapes, so every rate window holds two samples of each new series.
	time.Sleep(3 * time.Second)

	// Only warren's job: Prometheus scrapes itself too, and has go_ and process_ metrics
	// of its own.
	names := p.names(`{job="warren"}`)
	declared := declaredMetrics(t)
	rules := checkRules(t, p, len(alertNames))
	var all []query
	for _, r := range rules {
		all = append(all, query{Where: "alert " + r.Name, Expr: r.Query})
	}
	dashQueries := loadDashboard(t).queries(t)
	all = append(all, dashQueries...)
	evaluated := 0
	for i, q := range all {
		expr, err := substitute(q.Expr)
		if err != nil {
			t.Errorf("%s: %v", q.Where, err)
			continue
		}
		res, err := p.query(expr)
		if err != nil {
			t.Errorf("%s: %s: %v", q.Where, expr, err)
			continue
		}
		evaluated++
		metrics := metricNames(expr)
		checkNames(t, q.Where, metrics, names, declared)
		// Alert expressions are empty while nothing is wrong; dashboard queries must draw.
		if i >= len(rules) && res.empty() && !anyEventOnly(metrics) {
			t.Errorf("%s: %s returned no data, though the test produced its metrics %v", q.Where, expr, metrics)
		}
	}
	t.Logf("%d expressions evaluated (%d alert rules, %d dashboard queries); %d metric names in prometheus", evaluated, len(rules), len(dashQueries), len(names))
	for name, why := range eventOnly {
		if !declared[name] {
			t.Errorf("eventOnly lists %s (%s), which no code under internal/ declares", name, why)
		}
	}
}

// checkNames fails t for a metric the expression selects that prometheus does not hold,
// unless it is an eventOnly metric the server declares.
func checkNames(t *testing.T, where string, metrics []string, scraped, declared map[string]bool) {
	t.Helper()
	for _, m := range metrics {
		if scraped[m] {
			continue
		}
		if _, ok := eventOnly[baseName(m)]; ok && declared[baseName(m)] {
			continue
		}
		var near []string
		for n := range scraped {
			if strings.HasPrefix(n, m[:min(len(m), 10)]) {
				near = append(near, n)
			}
		}
		sort.Strings(near)
		t.Errorf("%s uses %s, which is not among the metrics prometheus scraped from warren (a typo? similar: %v)", where, m, near)
	}
}

// anyEventOnly reports whether one of metrics may have no data in this test.
func anyEventOnly(metrics []string) bool {
	for _, m := range metrics {
		if _, ok := eventOnly[baseName(m)]; ok {
			return true
		}
	}
	return false
}

func getMetrics(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return string(b)
}

// proxyRequest sends one request through the sandbox proxy to host (a port of a
// sandbox where nothing listens): any answer will do, the proxy metrics count it.
func proxyRequest(t *testing.T, proxyURL, host string) {
	t.Helper()
	req, _ := http.NewRequest("GET", proxyURL+"/", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET through the proxy: %v", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	t.Logf("proxy answered %d for %s", resp.StatusCode, host)
}

// quotaRefusal makes a team whose quota holds one sandbox, creates it, and has a second
// create refused (warren_refusals_total{kind="quota"}); it returns the first's id.
func quotaRefusal(t *testing.T, s *harness.Server) string {
	t.Helper()
	var team struct {
		ID string `json:"id"`
	}
	if code, raw := s.API("POST", "/v1/teams", map[string]any{"name": "one sandbox", "quota": map[string]any{"max_sandboxes": 1}}, &team); code != 201 {
		t.Fatalf("create team: %d %s", code, raw)
	}
	var key struct {
		Key string `json:"key"`
	}
	if code, raw := s.API("POST", "/v1/keys", map[string]any{"name": "observability", "team_id": team.ID}, &key); code != 201 {
		t.Fatalf("create key: %d %s", code, raw)
	}
	var sb struct {
		ID string `json:"id"`
	}
	if code, raw := s.APIKey(key.Key, "POST", "/v1/sandboxes", map[string]any{"template": "base"}, &sb); code != 201 {
		t.Fatalf("create in the team: %d %s", code, raw)
	}
	if code, raw := s.APIKey(key.Key, "POST", "/v1/sandboxes", map[string]any{"template": "base"}, nil); code < 400 || code >= 500 || !strings.Contains(string(raw), "max_sandboxes") {
		t.Fatalf("second create past max_sandboxes 1: %d %s, want a 4xx naming max_sandboxes", code, raw)
	}
	return sb.ID
}
