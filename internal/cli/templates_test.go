package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/api/rest"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlite"
	"github.com/warren-sh/warren/internal/templates"
)

// stepBuilder is a domain.StepBuilder with a function field.
type stepBuilder struct {
	build func(ctx context.Context, spec domain.BuildSpec, parent string, files domain.BuildFiles,
		logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error)
}

func (b *stepBuilder) Build(ctx context.Context, spec domain.BuildSpec, parent string, files domain.BuildFiles,
	logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error) {
	return b.build(ctx, spec, parent, files, logs, steps)
}

// newTemplateEnv is the CLI against the real /v1 handler with the real template
// service on a SQLite store (team_a and the built-in base) and builder as its layer
// builder.
func newTemplateEnv(t *testing.T, builder *stepBuilder) *testEnv {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateTeam(ctx, &domain.Team{ID: "team_a", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertTemplate(ctx, &domain.Template{ID: "base", RootFS: "/cache/base", Ready: true}); err != nil {
		t.Fatal(err)
	}
	ts, err := templates.New(templates.Config{Store: st, Builder: builder, FilesDir: filepath.Join(dir, "files")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.Close)
	svc := newMemService()
	srv := httptest.NewServer(restServer(svc, rest.WithTemplates(ts, 1<<20)))
	t.Cleanup(srv.Close)
	return &testEnv{t: t, svc: svc, url: srv.URL, vars: map[string]string{"WARREN_API_URL": srv.URL, "WARREN_API_KEY": keyA}}
}

// tarNames lists the entries of a build's files.
func tarNames(t *testing.T, files domain.BuildFiles, hash string) []string {
	t.Helper()
	r, err := files.Open(context.Background(), hash)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var names []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	sort.Strings(names)
	return names
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTemplateBuild(t *testing.T) {
	var sent []string
	var gotSpec domain.BuildSpec
	b := &stepBuilder{}
	e := newTemplateEnv(t, b)
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{
		"Dockerfile":     "FROM base\nARG V=1\nRUN echo $V\nCOPY app.py /srv/\nCMD [\"python3\", \"/srv/app.py\"]\n",
		"app.py":         "print('hi')\n",
		"node_modules/x": "left out",
		"secret.env":     "left out",
		"sub/keep.txt":   "kept",
		".dockerignore":  "# comment\nnode_modules\n*.env\n",
	})
	b.build = func(ctx context.Context, spec domain.BuildSpec, parent string, files domain.BuildFiles,
		logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error) {
		gotSpec = spec
		sent = tarNames(t, files, spec.Steps[1].FilesHash)
		logs(domain.BuildLogLine{Message: "step 1/2: RUN echo 2 (cached)"})
		steps(domain.StepResult{Index: 0, Key: "k0", Cached: true})
		logs(domain.BuildLogLine{Message: "step 2/2: COPY app.py /srv/"})
		steps(domain.StepResult{Index: 1, Key: "k1"})
		return "/layers/app", 1 << 20, nil
	}
	r := e.ok("template", "build", "--name", "app", "--build-arg", "V=2", ctxDir)
	for _, want := range []string{"building template app", "step 1/2: RUN echo 2 (cached)", "2 steps, 1 from cache", "template app is ready"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if got := strings.Join(sent, " "); got != ".dockerignore Dockerfile app.py sub/ sub/keep.txt" {
		t.Errorf("the context sent: %s", got)
	}
	if !strings.Contains(gotSpec.Steps[0].Args[0], "echo 2") || gotSpec.FromTemplate != "base" {
		t.Errorf("spec %+v", gotSpec)
	}
	r = e.ok("template", "list")
	if !strings.Contains(r.stdout, "app") || !strings.Contains(r.stdout, "built-in") {
		t.Errorf("template list:\n%s", r.stdout)
	}

	// A failed step exits 1 with its reason and the last log lines.
	b.build = func(ctx context.Context, spec domain.BuildSpec, parent string, files domain.BuildFiles,
		logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error) {
		logs(domain.BuildLogLine{Level: "error", Message: "sh: nope: not found"})
		return "", 0, domain.Invalid("steps[0]", "step 1 (RUN nope) exited with 127")
	}
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "FROM base\nRUN nope\n"})
	r = e.run("template", "build", "--name", "app", ctxDir)
	if r.code != 1 || !strings.Contains(r.stderr, "exited with 127") || !strings.Contains(r.stderr, "sh: nope: not found") {
		t.Errorf("a failed build: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	// Refusals before anything is sent.
	if r := e.run("template", "build", ctxDir); r.code != 2 || !strings.Contains(r.stderr, "--name") {
		t.Errorf("no name: %d %s", r.code, r.stderr)
	}
	writeFiles(t, ctxDir, map[string]string{".dockerignore": "!keep\n"})
	if r := e.run("template", "build", "--name", "app", ctxDir); r.code != 2 || !strings.Contains(r.stderr, "not supported") {
		t.Errorf("an exception in .dockerignore: %d %s", r.code, r.stderr)
	}
	writeFiles(t, ctxDir, map[string]string{".dockerignore": "", "big.bin": string(bytes.Repeat([]byte("x"), 2<<20))})
	if r := e.run("template", "build", "--name", "app", "--max-context-mb", "1", ctxDir); r.code == 0 || !strings.Contains(r.stderr, "more than 1 MiB") {
		t.Errorf("a context over the CLI's bound: %d %s", r.code, r.stderr)
	}
	// Over the server's bound (1 MiB here) it is the server's 413.
	if r := e.run("template", "build", "--name", "app", ctxDir); r.code == 0 || !strings.Contains(r.stderr, "larger than the limit") {
		t.Errorf("a context over the server's bound: %d %s", r.code, r.stderr)
	}

	e.ok("template", "delete", "app")
	if r := e.run("template", "delete", "app"); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("deleting twice: %d %s", r.code, r.stderr)
	}
}
