// Package arch checks the rules that keep the tree's architecture drawable from `ls`:
// which packages may import which (layering_test.go) and that the docs and comments cite
// only files that exist (docs_test.go). The rules check themselves so a change that breaks
// them fails `make test`, not a later review.
package arch

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/warren-sh/warren"

func repoRoot(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// pkgImports maps each package directory of the main module (relative to the root, test
// files included) to the set of import paths its files name.
func pkgImports(t *testing.T, root string) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata", "sdk", "web", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		if out[rel] == nil {
			out[rel] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			out[rel][path] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// local turns an import path of this module into its directory ("internal/domain"), or
// "" for other modules and the standard library.
func local(path string) string {
	if path == module {
		return "."
	}
	if strings.HasPrefix(path, module+"/") {
		return strings.TrimPrefix(path, module+"/")
	}
	return ""
}

func stdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func under(dir, prefix string) bool { return dir == prefix || strings.HasPrefix(dir, prefix+"/") }

// rule is one layering rule: packages under from must not import what forbidden says.
type rule struct {
	name      string
	from      func(dir string) bool
	forbidden func(imp string) bool
}

var rules = []rule{
	{
		name:      "domain imports the standard library only",
		from:      func(d string) bool { return under(d, "internal/domain") },
		forbidden: func(imp string) bool { return !stdlib(imp) },
	},
	{
		name: "api/* imports no store, node, runtime or sandbox",
		from: func(d string) bool { return under(d, "internal/api") },
		forbidden: func(imp string) bool {
			l := local(imp)
			return under(l, "internal/store") || under(l, "internal/node") || under(l, "internal/runtime") || under(l, "internal/sandbox")
		},
	},
	{
		// The sandbox services declare what they need of these (internal/sandbox/deps.go).
		name: "sandbox imports no node, runtime driver, network or store",
		from: func(d string) bool { return under(d, "internal/sandbox") },
		forbidden: func(imp string) bool {
			l := local(imp)
			return under(l, "internal/node") || under(l, "internal/store") || under(l, "internal/network") ||
				under(l, "internal/runtime") && l != "internal/runtime"
		},
	},
	{
		name:      "runtime/* does not import sandbox",
		from:      func(d string) bool { return under(d, "internal/runtime") },
		forbidden: func(imp string) bool { return under(local(imp), "internal/sandbox") },
	},
	{
		name:      "only cmds imports server",
		from:      func(d string) bool { return d != "internal/cmds" },
		forbidden: func(imp string) bool { return local(imp) == "internal/server" },
	},
	{
		name:      "only cmd/warren imports cmds",
		from:      func(d string) bool { return d != "cmd/warren" },
		forbidden: func(imp string) bool { return local(imp) == "internal/cmds" },
	},
	{
		// Everything else traces through the OpenTelemetry API (otel.Tracer), a no-op
		// until telemetry.Setup installs the SDK's provider.
		name: "only telemetry imports the OpenTelemetry SDK and exporters",
		from: func(d string) bool { return d != "internal/telemetry" },
		forbidden: func(imp string) bool {
			return strings.HasPrefix(imp, "go.opentelemetry.io/otel/sdk") || strings.HasPrefix(imp, "go.opentelemetry.io/otel/exporters")
		},
	},
	{
		// The measured packages declare recorder interfaces (sandbox.Recorder,
		// edge.Metrics, proxy.Metrics) that package metrics implements.
		name:      "only metrics imports the Prometheus client",
		from:      func(d string) bool { return d != "internal/metrics" },
		forbidden: func(imp string) bool { return strings.HasPrefix(imp, "github.com/prometheus/client_golang") },
	},
	{
		name:      "internal packages import no binary's main and no test suite",
		from:      func(d string) bool { return under(d, "internal") },
		forbidden: func(imp string) bool { l := local(imp); return under(l, "cmd") || under(l, "test") },
	},
}

// TestLayering checks every rule over every package of the main module.
func TestLayering(t *testing.T) {
	imports := pkgImports(t, repoRoot(t))
	if len(imports) < 20 || imports["internal/domain"] == nil {
		t.Fatalf("found %d packages (no internal/domain?): the walk has gone blind", len(imports))
	}
	var dirs []string
	for d := range imports {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, r := range rules {
		for _, d := range dirs {
			if !r.from(d) {
				continue
			}
			var bad []string
			for imp := range imports[d] {
				if r.forbidden(imp) {
					bad = append(bad, imp)
				}
			}
			sort.Strings(bad)
			for _, imp := range bad {
				t.Errorf("%s: %s imports %s", r.name, d, imp)
			}
		}
	}
}

// TestRulesBite feeds each rule an import it must refuse, so a rule that matches nothing
// (a renamed package, a typo) fails here instead of passing everything.
func TestRulesBite(t *testing.T) {
	cases := map[string][2]string{
		"domain imports the standard library only":                    {"internal/domain", "github.com/google/uuid"},
		"api/* imports no store, node, runtime or sandbox":            {"internal/api/rest", module + "/internal/store/sqlite"},
		"runtime/* does not import sandbox":                           {"internal/runtime/gvisor", module + "/internal/sandbox"},
		"sandbox imports no node, runtime driver, network or store":   {"internal/sandbox", module + "/internal/runtime/gvisor"},
		"only cmds imports server":                                    {"internal/api/rest", module + "/internal/server"},
		"only cmd/warren imports cmds":                                {"internal/server", module + "/internal/cmds"},
		"internal packages import no binary's main and no test suite": {"internal/sandbox", module + "/test/internal/harness"},
		"only telemetry imports the OpenTelemetry SDK and exporters":  {"internal/sandbox", "go.opentelemetry.io/otel/sdk/trace"},
		"only metrics imports the Prometheus client":                  {"internal/api/edge", "github.com/prometheus/client_golang/prometheus"},
	}
	for _, r := range rules {
		c, ok := cases[r.name]
		if !ok {
			t.Errorf("rule %q has no case here", r.name)
			continue
		}
		if !r.from(c[0]) || !r.forbidden(c[1]) {
			t.Errorf("rule %q lets %s import %s", r.name, c[0], c[1])
		}
	}
}
