// Package helm tests the Kubernetes chart in deploy/helm/warren: it renders the chart
// with Helm's own Go library for each values file in the chart's ci/ folder, decodes
// every manifest strictly into the Kubernetes API types (an unknown field or kind fails),
// checks the properties the chart promises, and runs Helm's linter as `helm lint` does.
package helm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"sigs.k8s.io/yaml"
)

const (
	chartDir  = "../../deploy/helm/warren"
	release   = "warren"
	namespace = "sandboxes"
)

// valuesFiles are the chart's CI values files (the chart-testing convention): the
// defaults with only what is required, a production-like setup and a minimal one.
var valuesFiles = []string{"ci/defaults-values.yaml", "ci/production-values.yaml", "ci/minimal-values.yaml"}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading the chart %s: %v", chartDir, err)
	}
	return c
}

func readValues(t *testing.T, file string) common.Values {
	t.Helper()
	v, err := common.ReadValuesFile(filepath.Join(chartDir, file))
	if err != nil {
		t.Fatalf("reading %s: %v", file, err)
	}
	return v
}

// render renders the chart as `helm template` does, but strictly: a template that reads
// a value the chart does not define fails instead of printing nothing.
func render(c *chart.Chart, vals common.Values) (map[string]string, error) {
	top, err := util.ToRenderValues(c, vals, common.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true, Revision: 1}, nil)
	if err != nil {
		return nil, err
	}
	return engine.Engine{Strict: true}.Render(c, top)
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// manifest is one rendered Kubernetes object: where it came from, its kind and its JSON.
type manifest struct {
	file, apiVersion, kind, name string
	json                         []byte
	obj                          any
}

// manifests splits the rendered templates into objects, decoding each strictly.
func manifests(t *testing.T, out map[string]string) []manifest {
	t.Helper()
	var ms []manifest
	files := make([]string, 0, len(out))
	for f := range out {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		if !strings.HasSuffix(f, ".yaml") {
			continue // NOTES.txt, _helpers.tpl
		}
		for i, doc := range docSep.Split(out[f], -1) {
			if isBlank(doc) {
				continue
			}
			j, err := yaml.YAMLToJSONStrict([]byte(doc))
			if err != nil {
				t.Fatalf("%s, document %d: not YAML: %v\n%s", f, i, err, doc)
			}
			var tm struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name      string `json:"name"`
					Namespace string `json:"namespace"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(j, &tm); err != nil {
				t.Fatalf("%s, document %d: %v", f, i, err)
			}
			m := manifest{file: f, apiVersion: tm.APIVersion, kind: tm.Kind, name: tm.Metadata.Name, json: j}
			if m.obj, err = decodeStrict(m.apiVersion, m.kind, j); err != nil {
				t.Errorf("%s: %s %s: %v\n%s", f, m.kind, m.name, err, doc)
				continue
			}
			if m.name == "" || tm.Metadata.Namespace != namespace {
				t.Errorf("%s: %s has name %q and namespace %q; want a name and the release's namespace %q", f, m.kind, m.name, tm.Metadata.Namespace, namespace)
			}
			ms = append(ms, m)
		}
	}
	return ms
}

func isBlank(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// decodeStrict decodes j into the Go type of its kind, refusing unknown fields, unknown
// kinds and trailing data.
func decodeStrict(apiVersion, kind string, j []byte) (any, error) {
	newObj, ok := kinds[apiVersion+"/"+kind]
	if !ok {
		return nil, fmt.Errorf("kind %s/%s is not one this chart may render (add it to kinds if it should)", apiVersion, kind)
	}
	obj := newObj()
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return nil, fmt.Errorf("strict decode into %T: %w", obj, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("trailing data after the object")
	}
	return obj, nil
}

// renderCase renders one values file and decodes its manifests.
func renderCase(t *testing.T, file string) (common.Values, []manifest) {
	t.Helper()
	c := loadChart(t)
	vals := readValues(t, file)
	out, err := render(c, vals)
	if err != nil {
		t.Fatalf("rendering with %s: %v", file, err)
	}
	ms := manifests(t, out)
	if len(ms) == 0 {
		t.Fatalf("rendering with %s gave no manifests", file)
	}
	// The effective values: the chart's merged with the file's, as the templates saw them.
	merged, err := util.CoalesceValues(c, vals)
	if err != nil {
		t.Fatal(err)
	}
	return merged, ms
}

func TestRenderStrict(t *testing.T) {
	for _, f := range valuesFiles {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, ms := renderCase(t, f)
			var kinds []string
			for _, m := range ms {
				kinds = append(kinds, m.kind+"/"+m.name)
			}
			t.Logf("%d objects: %s", len(ms), strings.Join(kinds, " "))
		})
	}
}

// TestBadValues: without a database or a domain, or with a misspelt or ill-typed value
// (values.schema.json), the chart refuses to render and says which value is wrong.
func TestBadValues(t *testing.T) {
	c := loadChart(t)
	const base = "domain: s.example.com\ndatabase: {url: postgres://db/w}\n"
	for _, tc := range []struct {
		name string
		vals string
		want string
	}{
		{"no database", "domain: sandbox.example.com\n", "database.url"},
		{"no domain", "database: {url: postgres://warren@db/warren}\n", "domain is required"},
		{"misspelt value", base + "control: {replcas: 3}\n", "replcas"},
		{"not a postgres url", "domain: s.example.com\ndatabase: {url: mysql://db/w}\n", "url"},
		{"port out of range", base + "node: {internalPort: 70000}\n", "internalPort"},
		{"no node selector", base + "node: {nodeSelector: null}\n", "nodeSelector"},
		{"tls without secret", "domain: s.example.com\ndatabase: {url: postgres://db/w}\ningress: {enabled: true, tls: {enabled: true}}\n", "ingress.tls.apiSecretName"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := common.ReadValues([]byte(tc.vals))
			if err != nil {
				t.Fatal(err)
			}
			_, err = render(c, vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render error = %v; want one naming %q", err, tc.want)
			}
		})
	}
}

func TestMain(m *testing.M) {
	if _, err := os.Stat(filepath.Join(chartDir, "Chart.yaml")); err != nil {
		fmt.Fprintln(os.Stderr, "test/helm runs from its own directory (go test ./test/helm):", err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}
