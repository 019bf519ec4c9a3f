package observability

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/testenv"
	"github.com/warren-sh/warren/test/internal/harness"
)

// TestPromtool runs Debian's promtool on the deploy files: the configuration and the
// rules must pass its checks, and alerts_test.yml's unit tests (each alert firing on the
// input that should fire it, silent otherwise) must pass.
func TestPromtool(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs promtool (the prometheus package)")
	}
	promtool := testenv.NeedsTool(t, "promtool")
	for _, args := range [][]string{
		{"check", "config", deployPath("prometheus", "prometheus.yml")},
		{"check", "rules", deployPath("prometheus", "alerts.yml")},
		{"test", "rules", deployPath("prometheus", "alerts_test.yml")},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// checkRules fails t on a rule Prometheus could not evaluate, or one without what an
// operator needs from an alert: a `for:`, a severity and a summary and description.
func checkRules(t *testing.T, p *promServer, want int) []rule {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var rules []rule
	for {
		rules = p.rules()
		evaluated := len(rules) > 0
		for _, r := range rules {
			evaluated = evaluated && !r.LastEvaluation.IsZero() && r.LastEvaluation.Year() > 2000
		}
		if evaluated || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(rules) != want {
		t.Fatalf("prometheus loaded %d rules from deploy/prometheus/alerts.yml, want %d", len(rules), want)
	}
	for _, r := range rules {
		if r.Health != "ok" || r.LastError != "" {
			t.Errorf("rule %s: health %q, error %q", r.Name, r.Health, r.LastError)
		}
		if r.Type != "alerting" {
			continue
		}
		if r.Duration <= 0 {
			t.Errorf("alert %s has no for: (one bad scrape would page)", r.Name)
		}
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("alert %s: severity %q, want warning or critical", r.Name, s)
		}
		if r.Annotations["summary"] == "" || len(r.Annotations["description"]) < 40 {
			t.Errorf("alert %s: summary %q, description %q: both must say what is wrong and what to look at", r.Name, r.Annotations["summary"], r.Annotations["description"])
		}
	}
	return rules
}

// alertNames lists the alerts deploy/prometheus/alerts.yml must define (issue 16).
var alertNames = []string{"WarrenDown", "WarrenAPIErrorRatioHigh", "WarrenSandboxCreateSlow", "WarrenNodeFull",
	"WarrenNodeNearCapacity", "WarrenSandboxesLost", "WarrenMeteringLag"}

// TestPrometheusLoadsDeployFiles starts prometheus on the deploy configuration with a
// warren target nobody listens on: prometheus must load the rules, evaluate each without
// error, and find the target down (the WarrenDown expression returns it).
func TestPrometheusLoadsDeployFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts prometheus")
	}
	nobody := harness.FreePort(t)
	rulesFile, err := os.ReadFile(deployPath("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	p := startPrometheus(t, func(addr string) string { return scrapeConfig(t, nobody, addr) }, map[string][]byte{"alerts.yml": rulesFile})
	rules := checkRules(t, p, len(alertNames))
	got := map[string]bool{}
	for _, r := range rules {
		got[r.Name] = true
	}
	for _, n := range alertNames {
		if !got[n] {
			t.Errorf("alert %s is missing from deploy/prometheus/alerts.yml", n)
		}
	}
	// Prometheus scrapes itself (the deploy file's second job) and finds warren down.
	p.waitFor(`up{job="prometheus"} == 1`, 30*time.Second, nonEmpty)
	p.waitFor(`up{job="warren", instance="`+nobody+`"} == 0`, 30*time.Second, nonEmpty)
	for _, r := range rules {
		if r.Name == "WarrenDown" {
			p.waitFor(r.Query, 30*time.Second, nonEmpty)
		}
	}
}

func nonEmpty(v []sample) error {
	if len(v) == 0 {
		return errEmpty
	}
	return nil
}

type emptyError struct{}

func (emptyError) Error() string { return "empty result" }

var errEmpty = emptyError{}
