package helm

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestValuesDocumented: every value in values.yaml is in the chart README's table (the
// value itself or the table it belongs to, such as node.nodeSelector), and the table
// names no value the chart does not have.
func TestValuesDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| (`[^|]+)\\|")
	name := regexp.MustCompile("`([A-Za-z0-9_.]+)`")
	for _, r := range row.FindAllStringSubmatch(string(readme), -1) {
		for _, n := range name.FindAllStringSubmatch(r[1], -1) {
			documented[n[1]] = true
		}
	}
	data, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal(data, &vals); err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		paths[prefix] = true
		if m, ok := v.(map[string]any); ok && len(m) > 0 && !documented[prefix] {
			for k, sub := range m {
				walk(strings.TrimPrefix(prefix+"."+k, "."), sub)
			}
			return
		}
		if !documented[prefix] {
			t.Errorf("value %s is not in the table of %s/README.md", prefix, chartDir)
		}
	}
	for k, v := range vals {
		walk(k, v)
	}
	var extra []string
	for d := range documented {
		if !paths[d] {
			extra = append(extra, d)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("the README's table names values the chart does not have: %v", extra)
	}
	if len(documented) < 40 {
		t.Fatalf("only %d values found in the README's table", len(documented))
	}
}
