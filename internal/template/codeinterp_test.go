package template

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCodeInterpreterRecipe(t *testing.T) {
	r := CodeInterpreter()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Name != "code-interpreter" || r.StartCmd != "/usr/local/bin/warren-code-interpreter" {
		t.Errorf("name %q, start %q", r.Name, r.StartCmd)
	}
	base := Base()
	if !slices.Equal(r.packages(), base.packages()) {
		t.Errorf("debootstrap packages %q, want Base's %q", r.packages(), base.packages())
	}
	for _, p := range []string{"python3-numpy", "python3-pandas", "python3-matplotlib", "python3-scipy",
		"python3-requests", "python3-ipykernel", "python3-jupyter-client", "nodejs"} {
		if !slices.Contains(r.AptPackages, p) {
			t.Errorf("lacks package %s", p)
		}
	}
	if !strings.HasPrefix(r.Script, base.Script) {
		t.Error("script does not start with the base script")
	}
	bin, ok := r.Files[r.StartCmd]
	if !ok || !strings.HasPrefix(bin, "#!/usr/bin/python3\n") {
		t.Errorf("StartCmd %s is not an embedded Python program", r.StartCmd)
	}
	for _, name := range []string{"ci_server.py", "ci_contexts.py", "ci_python.py", "ci_procs.py", "ci_display.py", "repl.js", "ci_kernel.py"} {
		if r.Files["/usr/local/lib/warren-code-interpreter/"+name] == "" {
			t.Errorf("file %s missing or empty", name)
		}
	}
	if len(r.Files) != 8 {
		t.Errorf("%d files, want 8: %v", len(r.Files), slices.Sorted(maps.Keys(r.Files)))
	}
	if r.Hash() == base.Hash() || CodeInterpreter().Hash() != r.Hash() {
		t.Error("hash not distinct from base, or not stable")
	}
}

// The embedded programs at least compile (with the host's python3 and node, when present;
// the real test runs them in the template).
func TestCodeInterpreterSourcesCompile(t *testing.T) {
	dir := t.TempDir()
	var py []string
	for p, content := range CodeInterpreter().Files {
		name := filepath.Base(p)
		if strings.HasSuffix(name, ".py") || name == "warren-code-interpreter" {
			py = append(py, filepath.Join(dir, name))
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if python, err := exec.LookPath("python3"); err != nil {
		t.Log("no python3 on this host; not checking the Python sources")
	} else {
		script := "import ast, sys\nfor p in sys.argv[1:]:\n    ast.parse(open(p).read(), p)\n"
		if out, err := exec.Command(python, append([]string{"-c", script}, py...)...).CombinedOutput(); err != nil {
			t.Errorf("python sources: %v\n%s", err, out)
		}
	}
	if node, err := exec.LookPath("node"); err != nil {
		t.Log("no node on this host; not checking repl.js")
	} else if out, err := exec.Command(node, "--check", filepath.Join(dir, "repl.js")).CombinedOutput(); err != nil {
		t.Errorf("repl.js: %v\n%s", err, out)
	}
}

// The code interpreter's HTTP handler turns Nagle's algorithm off: /execute writes its
// headers and then one chunk per line, and with Nagle every runCode waited for a delayed
// ACK (about 40 ms) before its first line left the sandbox.
func TestCodeInterpreterNoDelay(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on this host")
	}
	src := CodeInterpreter().Files["/usr/local/lib/warren-code-interpreter/ci_server.py"]
	if src == "" {
		t.Fatal("ci_server.py is not in the recipe's files")
	}
	script := `import ast, sys
tree = ast.parse(sys.stdin.read())
for node in ast.walk(tree):
    if isinstance(node, ast.ClassDef) and node.name == "Handler":
        for st in node.body:
            if isinstance(st, ast.Assign) and any(getattr(t, "id", "") == "disable_nagle_algorithm" for t in st.targets):
                print(ast.literal_eval(st.value))
`
	cmd := exec.Command(python, "-c", script)
	cmd.Stdin = strings.NewReader(src)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "True" {
		t.Errorf("Handler.disable_nagle_algorithm = %q (%v), want True", out, err)
	}
}
