package observability

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/warren-sh/warren/test/internal/harness"
)

// dashboard is the part of a Grafana dashboard JSON model these tests read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Datasource  *datasourceRef  `json:"datasource"`
	GridPos     *gridPos        `json:"gridPos"`
	Targets     []target        `json:"targets"`
	Panels      []panel         `json:"panels"` // a collapsed row's panels
	FieldConfig json.RawMessage `json:"fieldConfig"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct {
	H, W, X, Y int
}

type target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasourceRef  `json:"datasource"`
	AllValue   string          `json:"allValue"`
}

// deployPath is a file under the repository's deploy/ folder.
func deployPath(parts ...string) string {
	return filepath.Join(append([]string{harness.RepoRoot(), "deploy"}, parts...)...)
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(deployPath("grafana", "warren.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("deploy/grafana/warren.json: %v", err)
	}
	return d
}

// allPanels flattens rows: the panels at the top level and those inside collapsed rows.
func (d dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// query is one PromQL expression of the dashboard, with where it comes from.
type query struct {
	Where, Expr string
}

// queries returns every panel target's expression and every query variable's query
// (Grafana's label_values(metric, label) is turned into the PromQL it stands for).
func (d dashboard) queries(t *testing.T) []query {
	t.Helper()
	var out []query
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out = append(out, query{Where: fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), Expr: tg.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		expr, err := variablePromQL(v.Definition)
		if err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		out = append(out, query{Where: "variable " + v.Name, Expr: expr})
	}
	return out
}

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// variablePromQL turns a Grafana Prometheus variable query into PromQL with the same
// answer set: label_values(sel, label) is the label's values among sel's series.
func variablePromQL(def string) (string, error) {
	m := labelValues.FindStringSubmatch(strings.TrimSpace(def))
	if m == nil {
		return "", fmt.Errorf("query %q is not label_values(selector, label), the only form this test knows", def)
	}
	return fmt.Sprintf("count by (%s) (%s)", m[2], m[1]), nil
}

// testVars are the values the end-to-end test gives Grafana's variables: the ones the
// dashboard defines and Grafana's built-in intervals (the test's Prometheus scrapes every
// second, so a 30s window holds enough samples for rate).
var testVars = map[string]string{
	"$__rate_interval": "30s",
	"$__interval":      "15s",
	"$__range":         "5m",
	"$job":             "warren",
	"$instance":        ".+",
	"${datasource}":    "prometheus",
	"$datasource":      "prometheus",
}

var variableRef = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)

// substitute replaces Grafana variables in expr by testVars, failing on any it does not know.
func substitute(expr string) (string, error) {
	keys := make([]string, 0, len(testVars))
	for k := range testVars {
		keys = append(keys, k)
	}
	// Longest first: $__rate_interval before $__range and $__interval.
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		expr = strings.ReplaceAll(expr, k, testVars[k])
	}
	if left := variableRef.FindString(expr); left != "" {
		return "", fmt.Errorf("unknown variable %s", left)
	}
	return expr, nil
}

var (
	promString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	braces     = regexp.MustCompile(`\{[^{}]*\}`)
	// by (...), without (...), on (...), ignoring (...), group_left (...), group_right (...)
	labelLists = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	ident      = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	// keywords are PromQL's operators and literals, which look like identifiers.
	keywords = map[string]bool{"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true,
		"ignoring": true, "group_left": true, "group_right": true, "bool": true, "offset": true, "inf": true, "nan": true, "atan2": true}
)

// metricNames returns the metric names a PromQL expression selects: identifiers outside
// strings, label matchers and label lists that are not keywords, durations or function
// calls.
func metricNames(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = braces.ReplaceAllString(s, " ")
	s = labelLists.ReplaceAllString(s, " ")
	seen := map[string]bool{}
	var out []string
	for _, loc := range ident.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if keywords[strings.ToLower(name)] || seen[name] {
			continue
		}
		// A duration's unit ([5m]) or a number's exponent follows a digit.
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function
		}
		seen[name] = true
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string
	}{
		{`up{job="warren"} == 0`, "up"},
		{`histogram_quantile(0.95, sum by (path, le) (rate(warren_sandbox_create_duration_seconds_bucket{job=~"$job"}[5m])))`, "warren_sandbox_create_duration_seconds_bucket"},
		{`(sum(rate(a_total{code=~"5.."}[1m])) or vector(0)) / sum(rate(a_total[1m]))`, "a_total"},
		{`x / on (instance) group_left (version) y offset 1h > bool 2e3`, "x y"},
		{`warren_node_used / (warren_node_capacity > 0) > 0.9`, "warren_node_capacity warren_node_used"},
		{`count by (version) (warren_build_info{instance=~"a|b"})`, "warren_build_info"},
		{`sum without (le) (m{l="by (x) {y}"})`, "m"},
	} {
		if got := strings.Join(metricNames(tc.expr), " "); got != tc.want {
			t.Errorf("metricNames(%s) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestSubstitute(t *testing.T) {
	got, err := substitute(`rate(m{job=~"$job", instance=~"$instance"}[$__rate_interval]) and m[$__range] and m[$__interval]`)
	if want := `rate(m{job=~"warren", instance=~".+"}[30s]) and m[5m] and m[15s]`; err != nil || got != want {
		t.Errorf("substitute = %q, %v; want %q", got, err, want)
	}
	if _, err := substitute(`m{team="$team"}`); err == nil || !strings.Contains(err.Error(), "$team") {
		t.Errorf("an unknown variable: err = %v, want one naming $team", err)
	}
}

// TestDashboardStructure checks what Grafana needs to load the dashboard and draw every
// panel from the Prometheus the user picks: unique panel ids, a position for each, the
// datasource variable on every panel and target, an expression in every target, and a
// grid that does not overlap.
func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q: both must be set (provisioning keys on the uid)", d.UID, d.Title)
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d: want a current Grafana's (39 or later), so Grafana does not migrate it on load", d.SchemaVersion)
	}
	var dsVar *variable
	for i, v := range d.Templating.List {
		if v.Name == "datasource" {
			dsVar = &d.Templating.List[i]
		}
	}
	if dsVar == nil || dsVar.Type != "datasource" || !strings.Contains(string(dsVar.Query), "prometheus") {
		t.Fatalf("want a datasource variable named datasource of type prometheus; got %+v", dsVar)
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
			t.Errorf("variable %s does not query the ${datasource} variable: %+v", v.Name, v.Datasource)
		}
	}
	ids := map[int]string{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	drawn := 0
	for _, p := range d.allPanels() {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID <= 0 {
			t.Errorf("%s: id must be positive", where)
		}
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("%s: id %d already used by %s", where, p.ID, prev)
		}
		ids[p.ID] = where
		if p.Title == "" {
			t.Errorf("%s: no title", where)
		}
		if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("%s: gridPos %+v: want w, h > 0 within the 24 columns", where, p.GridPos)
			continue
		}
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("%s overlaps %s at (%d,%d)", where, other, x, y)
					y, x = p.GridPos.Y+p.GridPos.H, p.GridPos.X+p.GridPos.W
					continue
				}
				taken[cell{x, y}] = where
			}
		}
		if p.Type == "row" {
			continue
		}
		drawn++
		if p.Description == "" {
			t.Errorf("%s: no description (the panel's (i) says what it shows)", where)
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("%s: datasource %+v, want prometheus ${datasource}", where, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s target %s: empty expr", where, tg.RefID)
			}
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: target refId %q missing or repeated", where, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("%s target %s: datasource %+v, want ${datasource}", where, tg.RefID, tg.Datasource)
			}
			if _, err := substitute(tg.Expr); err != nil {
				t.Errorf("%s target %s: %v", where, tg.RefID, err)
			}
		}
	}
	if drawn < 20 {
		t.Errorf("only %d panels: the dashboard must cover every metric of internal/metrics", drawn)
	}
	t.Logf("%d panels, %d queries", drawn, len(d.queries(t)))
}

// metricConstructor matches the names of functions that take a metric's name first
// (client_golang's NewDesc among them).
var metricConstructor = regexp.MustCompile(`(?i)(counter|gauge|histogram|summary|desc)`)

func calleeName(fn ast.Expr) string {
	switch fn := fn.(type) {
	case *ast.SelectorExpr:
		return fn.Sel.Name
	case *ast.Ident:
		return fn.Name
	}
	return ""
}

// declaredMetrics returns the warren_* metric names the server's code declares in its
// non-test Go files under internal/: string literals given as a Name field (client_golang's
// Opts) or as the first argument of a counter, gauge, histogram, summary or Desc
// constructor.
func declaredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fset := token.NewFileSet()
	re := regexp.MustCompile(`^warren_[a-z0-9_]+$`)
	err := filepath.WalkDir(filepath.Join(harness.RepoRoot(), "internal"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		add := func(e ast.Expr) {
			if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == token.STRING {
				if s, err := strconv.Unquote(bl.Value); err == nil && re.MatchString(s) {
					names[s] = true
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.KeyValueExpr: // prometheus.CounterOpts{Name: "warren_..."}
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Name" {
					add(n.Value)
				}
			case *ast.CallExpr: // a constructor such as counterVec("warren_...", help, labels...)
				if len(n.Args) > 0 && metricConstructor.MatchString(calleeName(n.Fun)) {
					add(n.Args[0])
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// baseName strips the series suffixes of a histogram or summary.
func baseName(name string) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, suf); ok {
			return b
		}
	}
	return name
}

// TestDashboardMetricsDeclared fails on a warren_* name in the dashboard or the alert
// rules that the server does not declare (a typo, or a metric renamed in the code).
func TestDashboardMetricsDeclared(t *testing.T) {
	declared := declaredMetrics(t)
	if len(declared) < 10 {
		t.Fatalf("found only %d warren_* metric names under internal/: has the scan gone blind?", len(declared))
	}
	rules, err := os.ReadFile(deployPath("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var all []query
	all = append(all, loadDashboard(t).queries(t)...)
	for _, m := range regexp.MustCompile(`\bwarren_[a-z0-9_]+`).FindAllString(string(rules), -1) {
		all = append(all, query{Where: "deploy/prometheus/alerts.yml", Expr: m})
	}
	used := map[string]bool{}
	for _, q := range all {
		for _, name := range metricNames(q.Expr) {
			if !strings.HasPrefix(name, "warren_") {
				continue
			}
			used[baseName(name)] = true
			if !declared[name] && !declared[baseName(name)] {
				t.Errorf("%s uses %s, which no code under internal/ declares", q.Where, name)
			}
		}
	}
	// The other way round: a metric nobody can see on the dashboard.
	for name := range declared {
		if !used[name] {
			t.Errorf("internal/ declares %s but the dashboard has no panel for it", name)
		}
	}
}

// TestComposeFiles checks that what deploy/compose.yaml and deploy/Dockerfile take from
// the repository exists: the files mounted into the containers and the scripts copied
// into the image.
func TestComposeFiles(t *testing.T) {
	compose, err := os.ReadFile(deployPath("compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mounts := regexp.MustCompile(`(?m)^\s*- (\./[^:]+):`).FindAllStringSubmatch(string(compose), -1)
	if len(mounts) < 5 {
		t.Fatalf("found %d relative mounts in deploy/compose.yaml, want the prometheus and grafana files", len(mounts))
	}
	for _, m := range mounts {
		if _, err := os.Stat(deployPath(m[1])); err != nil {
			t.Errorf("deploy/compose.yaml mounts %s: %v", m[1], err)
		}
	}
	docker, err := os.ReadFile(deployPath("Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	copies := regexp.MustCompile(`(?m)^COPY ([^-].*) \S+$`).FindAllStringSubmatch(string(docker), -1)
	for _, c := range copies {
		for _, src := range strings.Fields(c[1]) {
			if _, err := os.Stat(filepath.Join(harness.RepoRoot(), src)); err != nil {
				t.Errorf("deploy/Dockerfile copies %s from the repository: %v", src, err)
			}
		}
	}
	if len(copies) == 0 {
		t.Error("found no COPY from the build context in deploy/Dockerfile")
	}
}
