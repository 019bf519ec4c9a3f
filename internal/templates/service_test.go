package templates

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlite"
	"github.com/warren-sh/warren/internal/template/oci"
)

// fakeBuilder is a domain.StepBuilder with a function field.
type fakeBuilder struct {
	build func(ctx context.Context, spec domain.BuildSpec, parent string, files domain.BuildFiles,
		logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error)
}

func (f *fakeBuilder) Build(ctx context.Context, spec domain.BuildSpec, parent string, files domain.BuildFiles,
	logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error) {
	return f.build(ctx, spec, parent, files, logs, steps)
}

// fakePuller is an ImagePuller with a function field.
type fakePuller struct {
	pull func(ctx context.Context, ref string) (*oci.Image, error)
}

func (f *fakePuller) Pull(ctx context.Context, ref string) (*oci.Image, error) {
	return f.pull(ctx, ref)
}

type world struct {
	svc     *Service
	store   *sqlite.Store
	builder *fakeBuilder
	a, b    domain.Principal
}

func admin(team string) domain.Principal {
	return domain.Principal{TeamID: team, Scopes: []domain.Scope{domain.ScopeAdmin}}
}

// newWorld is a service on a real SQLite store with teams a and b and the built-in
// base; the builder succeeds with one cached and one run step unless a test changes it.
func newWorld(t *testing.T, tweak func(*Config)) *world {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, id := range []string{"team-a", "team-b"} {
		if err := st.CreateTeam(ctx, &domain.Team{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.UpsertTemplate(ctx, &domain.Template{ID: "base", Hash: "h", RootFS: "/cache/base", Ready: true,
		Env: map[string]string{"PATH": "/usr/bin"}}); err != nil {
		t.Fatal(err)
	}
	fb := &fakeBuilder{build: func(ctx context.Context, spec domain.BuildSpec, parent string, files domain.BuildFiles,
		logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error) {
		logs(domain.BuildLogLine{Level: "info", Message: "step 1 cached"})
		steps(domain.StepResult{Index: 0, Key: "k0", Cached: true})
		logs(domain.BuildLogLine{Level: "info", Message: "step 2 ran"})
		steps(domain.StepResult{Index: 1, Key: "k1", Duration: time.Second})
		return "/layers/" + spec.Name + "/" + parent, 3 * domain.MiB, nil
	}}
	cfg := Config{Store: st, Builder: fb, FilesDir: filepath.Join(dir, "files")}
	if tweak != nil {
		tweak(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return &world{svc: svc, store: st, builder: fb, a: admin("team-a"), b: admin("team-b")}
}

var runSpec = domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{{Kind: domain.StepRun, Args: []string{"true"}},
	{Kind: domain.StepEnv, Args: []string{"A", "1", "PATH", "/opt/bin:/usr/bin"}}, {Kind: domain.StepWorkdir, Args: []string{"/app"}},
	{Kind: domain.StepUser, Args: []string{"user"}}},
	StartCmd: "srv", Ready: domain.ReadyCheck{Port: 8080}}

// build runs spec as a new build of the team's template name and waits for its end
// (following its logs), returning the build and its log.
func (w *world) build(t *testing.T, p domain.Principal, name string, spec domain.BuildSpec) (*domain.Build, []string) {
	t.Helper()
	ctx := t.Context()
	_, b, err := w.svc.CreateBuild(ctx, p, name, domain.BuildOptions{})
	if err != nil {
		t.Fatalf("CreateBuild(%s): %v", name, err)
	}
	if _, err := w.svc.StartBuild(ctx, p, name, b.ID, spec); err != nil {
		t.Fatalf("StartBuild(%s): %v", name, err)
	}
	var lines []string
	if err := w.svc.BuildLogs(ctx, p, name, b.ID, 0, true, func(l domain.BuildLogLine) error {
		lines = append(lines, l.Message)
		return nil
	}); err != nil {
		t.Fatalf("following the logs: %v", err)
	}
	got, err := w.svc.GetBuild(ctx, p, name, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got, lines
}

func wantKind(t *testing.T, what string, err error, k domain.Kind) {
	t.Helper()
	if domain.KindOf(err) != k {
		t.Errorf("%s: error %v (kind %v), want kind %v", what, err, domain.KindOf(err), k)
	}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestBuildReady(t *testing.T) {
	w := newWorld(t, nil)
	b, lines := w.build(t, w.a, "app", runSpec)
	if b.State != domain.BuildReady || b.Reason != "" || b.FinishedAt.IsZero() {
		t.Fatalf("build %+v, want ready", b)
	}
	if len(b.Steps) != 2 || !b.Steps[0].Cached || b.Steps[1].Cached {
		t.Errorf("steps %+v, want the first cached and the second run", b.Steps)
	}
	log := strings.Join(lines, "\n")
	for _, want := range []string{"building on template base", "step 1 cached", "step 2 ran", "build ready"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	tpl, err := w.svc.GetTemplate(t.Context(), w.a, "app")
	if err != nil {
		t.Fatal(err)
	}
	if !tpl.Ready || tpl.TeamID != "team-a" || tpl.RootFS != "/layers/app//cache/base" || tpl.SizeBytes != 3*domain.MiB ||
		tpl.StartCmd != "srv" || tpl.ReadyCheck.Port != 8080 || tpl.Env["PATH"] != "/opt/bin:/usr/bin" || tpl.Env["A"] != "1" ||
		tpl.Workdir != "/app" || tpl.User != "user" || tpl.Hash != b.ID {
		t.Errorf("template after the build: %+v", tpl)
	}
	list, err := w.svc.ListTemplates(t.Context(), w.a)
	if err != nil || len(list) != 2 {
		t.Errorf("team a lists %d templates (%v), want base and app", len(list), err)
	}
	// The team's builds of it, newest first; a built-in has none of the team's.
	b2, _ := w.build(t, w.a, "app", runSpec)
	if bs, err := w.svc.ListBuilds(t.Context(), w.a, "app"); err != nil || len(bs) != 2 || bs[0].ID != b2.ID || bs[1].ID != b.ID ||
		bs[1].State != domain.BuildReady || len(bs[1].Steps) != 2 {
		t.Errorf("ListBuilds: %+v, %v; want %s then %s", bs, err, b2.ID, b.ID)
	}
	if bs, err := w.svc.ListBuilds(t.Context(), w.a, "base"); err != nil || len(bs) != 0 {
		t.Errorf("ListBuilds of a built-in: %+v, %v", bs, err)
	}
	// Non-followed logs from an offset.
	var rest []string
	if err := w.svc.BuildLogs(t.Context(), w.a, "app", b.ID, len(lines)-1, false, func(l domain.BuildLogLine) error {
		rest = append(rest, l.Message)
		return nil
	}); err != nil || len(rest) != 1 || rest[0] != lines[len(lines)-1] {
		t.Errorf("logs from the last line: %q, %v", rest, err)
	}
}

// TestTeamScoping: another team's template, build, files and logs are not found, by
// every method; its name is free for others.
func TestTeamScoping(t *testing.T) {
	w := newWorld(t, nil)
	ctx := t.Context()
	b, _ := w.build(t, w.a, "app", runSpec)
	tar := []byte("tar bytes")
	if err := w.svc.PutFiles(ctx, w.a, "app", sha(tar), bytes.NewReader(tar)); err != nil {
		t.Fatal(err)
	}
	nop := func(domain.BuildLogLine) error { return nil }
	for name, err := range map[string]error{
		"GetTemplate":    get(w.svc.GetTemplate(ctx, w.b, "app")),
		"GetBuild":       get(w.svc.GetBuild(ctx, w.b, "app", b.ID)),
		"GetBuild (any)": get(w.svc.GetBuild(ctx, w.b, "", b.ID)),
		"BuildLogs":      w.svc.BuildLogs(ctx, w.b, "app", b.ID, 0, false, nop),
		"ListBuilds":     get(w.svc.ListBuilds(ctx, w.b, "app")),
		"StartBuild":     get(w.svc.StartBuild(ctx, w.b, "app", b.ID, runSpec)),
		"PutFiles":       w.svc.PutFiles(ctx, w.b, "app", sha(tar), bytes.NewReader(tar)),
		"HasFiles":       get(w.svc.HasFiles(ctx, w.b, "app", sha(tar))),
		"DeleteTemplate": w.svc.DeleteTemplate(ctx, w.b, "app"),
	} {
		wantKind(t, "team b: "+name, err, domain.KindNotFound)
	}
	if has, err := w.svc.HasFiles(ctx, w.a, "app", sha(tar)); !has || err != nil {
		t.Errorf("team a's files: %v, %v", has, err)
	}
	// b building from a's template by name: not found either.
	_, bb, err := w.svc.CreateBuild(ctx, w.b, "mine", domain.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := runSpec
	spec.FromTemplate = "app"
	wantKind(t, "b building on a's template", get(w.svc.StartBuild(ctx, w.b, "mine", bb.ID, spec)), domain.KindInvalid)
	// The same name is b's own.
	b2, _ := w.build(t, w.b, "app", runSpec)
	if b2.State != domain.BuildReady {
		t.Errorf("b's app: %+v", b2)
	}
	list, err := w.svc.ListTemplates(ctx, w.b)
	if err != nil {
		t.Fatal(err)
	}
	for _, tpl := range list {
		if tpl.TeamID == "team-a" {
			t.Errorf("team b lists team a's template %s", tpl.ID)
		}
	}
	// Scopes: a viewer reads but does not build.
	viewer := domain.Principal{TeamID: "team-a", Scopes: domain.RoleScopes(domain.RoleViewer)}
	wantKind(t, "a viewer building", get2(w.svc.CreateBuild(ctx, viewer, "x", domain.BuildOptions{})), domain.KindForbidden)
	if _, err := w.svc.GetTemplate(ctx, viewer, "app"); err != nil {
		t.Errorf("a viewer reading: %v", err)
	}
}

func get[T any](_ T, err error) error          { return err }
func get2[T, U any](_ T, _ U, err error) error { return err }

func TestNames(t *testing.T) {
	w := newWorld(t, nil)
	ctx := t.Context()
	for name, kind := range map[string]domain.Kind{
		"base":                  domain.KindInvalid, // a built-in: not the team's to build
		"Upper":                 domain.KindInvalid,
		"":                      domain.KindInvalid,
		"../x":                  domain.KindInvalid,
		"snap_abc":              domain.KindInvalid,
		"a b":                   domain.KindInvalid,
		"ok-name_1":             0,
		strings.Repeat("x", 64): domain.KindInvalid,
	} {
		_, _, err := w.svc.CreateBuild(ctx, w.a, name, domain.BuildOptions{})
		if kind == 0 {
			if err != nil {
				t.Errorf("CreateBuild(%q): %v", name, err)
			}
			continue
		}
		wantKind(t, fmt.Sprintf("CreateBuild(%q)", name), err, kind)
	}
	// A second build of the same template is the same template.
	tpl, _, err := w.svc.CreateBuild(ctx, w.a, "ok-name_1", domain.BuildOptions{})
	if err != nil || tpl.ID != "ok-name_1" {
		t.Errorf("second build: %+v, %v", tpl, err)
	}
}

func TestQuota(t *testing.T) {
	w := newWorld(t, nil)
	ctx := t.Context()
	team, _ := w.store.GetTeam(ctx, "team-a")
	team.Quota = domain.Quota{MaxTemplates: 1, MaxTemplateMB: 5}
	if err := w.store.UpdateTeam(ctx, team); err != nil {
		t.Fatal(err)
	}
	w.build(t, w.a, "one", runSpec)
	_, _, err := w.svc.CreateBuild(ctx, w.a, "two", domain.BuildOptions{})
	wantKind(t, "a second template", err, domain.KindQuotaExceeded)
	if !strings.Contains(domain.PublicMessage(err), "max_templates") {
		t.Errorf("refusal: %q", domain.PublicMessage(err))
	}
	// A build that would leave more than max_template_mb fails, and the previous build
	// stays what the template is.
	w.builder.build = func(ctx context.Context, spec domain.BuildSpec, parent string, files domain.BuildFiles,
		logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error) {
		return "/layers/huge", 6 * domain.MiB, nil
	}
	b, _ := w.build(t, w.a, "one", runSpec)
	if b.State != domain.BuildError || !strings.Contains(b.Reason, "max_template_mb") {
		t.Errorf("an oversized build: %+v", b)
	}
	tpl, _ := w.svc.GetTemplate(ctx, w.a, "one")
	if tpl.RootFS != "/layers/one//cache/base" || !tpl.Ready {
		t.Errorf("after a refused build the template is %+v, want the previous build", tpl)
	}
}

// TestBuildFails: a failed step is the build's reason and leaves the previous ready
// build in place; a build over its time limit is stopped.
func TestBuildFails(t *testing.T) {
	w := newWorld(t, nil)
	ctx := t.Context()
	w.build(t, w.a, "app", runSpec)
	w.builder.build = func(ctx context.Context, spec domain.BuildSpec, parent string, files domain.BuildFiles,
		logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error) {
		logs(domain.BuildLogLine{Level: "error", Message: "E: Unable to locate package nope"})
		steps(domain.StepResult{Index: 0, Key: "k", ExitCode: 100})
		return "", 0, domain.Invalid("steps[0]", "step 1 (RUN apt-get install nope) exited with 100: E: Unable to locate package nope")
	}
	b, lines := w.build(t, w.a, "app", runSpec)
	if b.State != domain.BuildError || !strings.Contains(b.Reason, "exited with 100") || len(b.Steps) != 1 || b.Steps[0].ExitCode != 100 {
		t.Errorf("failed build: %+v", b)
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "build failed") {
		t.Errorf("last log line %q", last)
	}
	tpl, _ := w.svc.GetTemplate(ctx, w.a, "app")
	if !tpl.Ready || tpl.RootFS != "/layers/app//cache/base" {
		t.Errorf("after a failed build the template is %+v", tpl)
	}

	w.builder.build = func(ctx context.Context, spec domain.BuildSpec, parent string, files domain.BuildFiles,
		logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error) {
		<-ctx.Done()
		return "", 0, ctx.Err()
	}
	spec := runSpec
	spec.Timeout = 50 * time.Millisecond
	b, _ = w.build(t, w.a, "app", spec)
	if b.State != domain.BuildError || !strings.Contains(b.Reason, "time limit of 50ms") {
		t.Errorf("a build past its time limit: %+v", b)
	}
	// An internal error is not shown to the client.
	w.builder.build = func(ctx context.Context, spec domain.BuildSpec, parent string, files domain.BuildFiles,
		logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error) {
		return "", 0, errors.New("mkdir /secret/path: permission denied")
	}
	b, _ = w.build(t, w.a, "app", runSpec)
	if b.State != domain.BuildError || strings.Contains(b.Reason, "/secret") {
		t.Errorf("an internal failure: %+v", b)
	}
}

func TestStartRefusals(t *testing.T) {
	w := newWorld(t, nil)
	ctx := t.Context()
	_, b, err := w.svc.CreateBuild(ctx, w.a, "app", domain.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tar := []byte("context")
	if err := w.svc.PutFiles(ctx, w.a, "app", sha(tar), bytes.NewReader(tar)); err != nil {
		t.Fatal(err)
	}
	copyStep := func(hash string) domain.BuildSpec {
		s := runSpec
		s.Steps = []domain.BuildStep{{Kind: domain.StepCopy, Args: []string{"a", "/a"}, FilesHash: hash}}
		return s
	}
	for name, tc := range map[string]struct {
		spec  domain.BuildSpec
		field string
	}{
		"no parent":        {domain.BuildSpec{}, "from_template"},
		"both parents":     {domain.BuildSpec{FromTemplate: "base", FromImage: "debian:bookworm"}, "from_template"},
		"unknown kind":     {domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{{Kind: "EXPOSE", Args: []string{"80"}}}}, "steps[0]"},
		"empty RUN":        {domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{{Kind: domain.StepRun, Args: []string{" "}}}}, "steps[0]"},
		"relative dir":     {domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{{Kind: domain.StepWorkdir, Args: []string{"app"}}}}, "steps[0]"},
		"odd ENV":          {domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{{Kind: domain.StepEnv, Args: []string{"A"}}}}, "steps[0]"},
		"files missing":    {copyStep(sha([]byte("other"))), "steps[0]"},
		"bad hash":         {copyStep("xyz"), "steps[0]"},
		"no files":         {copyStep(""), "steps[0]"},
		"unknown parent":   {domain.BuildSpec{FromTemplate: "nope"}, "from_template"},
		"two ready kinds":  {domain.BuildSpec{FromTemplate: "base", StartCmd: "srv", Ready: domain.ReadyCheck{Port: 80, File: "/x"}}, "ready"},
		"ready url":        {domain.BuildSpec{FromTemplate: "base", StartCmd: "srv", Ready: domain.ReadyCheck{URL: "localhost:80"}}, "ready.url"},
		"image, no puller": {domain.BuildSpec{FromImage: "debian:bookworm"}, ""},
	} {
		// Each refusal ends its build, and takes along the template it alone registered.
		_, rb, err := w.svc.CreateBuild(ctx, w.a, "refused", domain.BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.svc.StartBuild(ctx, w.a, "refused", rb.ID, tc.spec)
		if tc.field == "" {
			wantKind(t, name, err, domain.KindUnavailable)
		} else {
			wantKind(t, name, err, domain.KindInvalid)
			if f := domain.FieldOf(err); f != tc.field {
				t.Errorf("%s: field %q, want %q (%v)", name, f, tc.field, err)
			}
		}
		if _, gerr := w.svc.GetTemplate(ctx, w.a, "refused"); !domain.IsKind(gerr, domain.KindNotFound) {
			t.Errorf("%s: the template registered for the refused build is still there (%v)", name, gerr)
		}
	}
	// A refusal leaves a template that has another build waiting; that build is untouched.
	wantKind(t, "refused next to a waiting build", get(w.svc.StartBuild(ctx, w.a, "app",
		mustBuild(t, w, "app"), domain.BuildSpec{})), domain.KindInvalid)
	// The COPY with its files uploaded starts; a second start of the build is refused.
	if _, err := w.svc.StartBuild(ctx, w.a, "app", b.ID, copyStep(sha(tar))); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "starting twice", get(w.svc.StartBuild(ctx, w.a, "app", b.ID, runSpec)), domain.KindConflict)

	none := newWorld(t, func(c *Config) { c.Builder = nil })
	wantKind(t, "no layer builder", get2(none.svc.CreateBuild(ctx, none.a, "app", domain.BuildOptions{})), domain.KindUnavailable)
}

// mustBuild creates a build of the team a's template name and returns its id.
func mustBuild(t *testing.T, w *world, name string) string {
	t.Helper()
	_, b, err := w.svc.CreateBuild(t.Context(), w.a, name, domain.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b.ID
}

// TestRefusedKeepsBuilt: a refused build of a template that was built before ends as an
// error with the refusal's message, and the template stays as it was.
func TestRefusedKeepsBuilt(t *testing.T) {
	w := newWorld(t, nil)
	ctx := t.Context()
	if b, _ := w.build(t, w.a, "app", runSpec); b.State != domain.BuildReady {
		t.Fatalf("first build: %+v", b)
	}
	id := mustBuild(t, w, "app")
	wantKind(t, "a refused rebuild", get(w.svc.StartBuild(ctx, w.a, "app", id, domain.BuildSpec{FromTemplate: "nope"})), domain.KindInvalid)
	b, err := w.svc.GetBuild(ctx, w.a, "app", id)
	if err != nil || b.State != domain.BuildError || !strings.Contains(b.Reason, `"nope" does not exist`) || b.FinishedAt.IsZero() {
		t.Errorf("the refused build: %+v, %v", b, err)
	}
	if tpl, err := w.svc.GetTemplate(ctx, w.a, "app"); err != nil || !tpl.Ready {
		t.Errorf("the built template after a refused rebuild: %+v, %v", tpl, err)
	}
}

func TestFiles(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.MaxFileBytes, c.TeamFilesBytes = 100, 150 })
	ctx := t.Context()
	if _, _, err := w.svc.CreateBuild(ctx, w.a, "app", domain.BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	ok := bytes.Repeat([]byte("a"), 100)
	err := w.svc.PutFiles(ctx, w.a, "app", sha([]byte("different")), bytes.NewReader(ok))
	wantKind(t, "wrong hash", err, domain.KindInvalid)
	if has, _ := w.svc.HasFiles(ctx, w.a, "app", sha([]byte("different"))); has {
		t.Error("files stored under a hash they do not have")
	}
	big := bytes.Repeat([]byte("b"), 101)
	err = w.svc.PutFiles(ctx, w.a, "app", sha(big), bytes.NewReader(big))
	var tle *domain.TooLargeError
	if !errors.As(err, &tle) || tle.Limit != 100 {
		t.Errorf("an archive over the limit: %v", err)
	}
	if err := w.svc.PutFiles(ctx, w.a, "app", sha(ok), bytes.NewReader(ok)); err != nil {
		t.Fatal(err)
	}
	// The team has 50 bytes left.
	sixty := bytes.Repeat([]byte("c"), 60)
	if err := w.svc.PutFiles(ctx, w.a, "app", sha(sixty), bytes.NewReader(sixty)); !errors.As(err, &tle) || tle.Limit != 50 {
		t.Errorf("past the team's bound: %v", err)
	}
	wantKind(t, "a built-in's files", w.svc.PutFiles(ctx, w.a, "base", sha(ok), bytes.NewReader(ok)), domain.KindInvalid)
	wantKind(t, "an uppercase hash", get(w.svc.HasFiles(ctx, w.a, "app", strings.ToUpper(sha(ok)))), domain.KindInvalid)
	// The builder reads them through BuildFiles, and only the team's.
	f := teamFiles{teamDir(w.svc.cfg.FilesDir, "team-a")}
	r, err := f.Open(ctx, sha(ok))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := (teamFiles{teamDir(w.svc.cfg.FilesDir, "team-b")}).Open(ctx, sha(ok)); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("team b's files open a's archive: %v", err)
	}
}

func TestLogBound(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.MaxLogLines, c.MaxLineBytes = 20, 10 })
	w.builder.build = func(ctx context.Context, spec domain.BuildSpec, parent string, files domain.BuildFiles,
		logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error) {
		for i := range 100 {
			logs(domain.BuildLogLine{Level: "debug", Message: fmt.Sprintf("line %03d and a long tail", i)})
		}
		return "/x", 1, nil
	}
	_, lines := w.build(t, w.a, "app", runSpec)
	if len(lines) > 20 {
		t.Errorf("%d lines kept, want at most 20", len(lines))
	}
	log := strings.Join(lines, "\n")
	for _, want := range []string{"line 000 a …", "log lines left out", "line 099 a …", "build read …"} {
		if !strings.Contains(log, want) {
			t.Errorf("bounded log lacks %q:\n%s", want, log)
		}
	}
}

func TestFromImage(t *testing.T) {
	var gotParent string
	var gotEnv map[string]string
	w := newWorld(t, func(c *Config) {
		c.Images = &fakePuller{pull: func(ctx context.Context, ref string) (*oci.Image, error) {
			if ref == "missing:1" {
				return nil, domain.Errorf(domain.KindNotFound, "image missing:1: MANIFEST_UNKNOWN")
			}
			return &oci.Image{Ref: ref, Digest: "sha256:abc", Root: "/images/abc/rootfs",
				Config: v1.Config{Env: []string{"PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"}, WorkingDir: "/w"}}, nil
		}}
	})
	w.builder.build = func(ctx context.Context, spec domain.BuildSpec, parent string, files domain.BuildFiles,
		logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error) {
		gotParent, gotEnv = parent, spec.Env
		return "/layers/img", 1, nil
	}
	spec := domain.BuildSpec{FromImage: "python:3.12", Env: map[string]string{"LANG": "en_US.UTF-8"}}
	b, lines := w.build(t, w.a, "py", spec)
	if b.State != domain.BuildReady || gotParent != "/images/abc/rootfs" || gotEnv["PATH"] != "/usr/local/bin:/usr/bin" || gotEnv["LANG"] != "en_US.UTF-8" {
		t.Errorf("build %+v on %q with env %v", b, gotParent, gotEnv)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "pulling image python:3.12") {
		t.Errorf("log: %q", lines)
	}
	tpl, _ := w.svc.GetTemplate(t.Context(), w.a, "py")
	if tpl.Workdir != "/w" {
		t.Errorf("template workdir %q, want the image's", tpl.Workdir)
	}
	b, _ = w.build(t, w.a, "py", domain.BuildSpec{FromImage: "missing:1"})
	if b.State != domain.BuildError || !strings.Contains(b.Reason, "MANIFEST_UNKNOWN") {
		t.Errorf("an image that cannot be pulled: %+v", b)
	}
}

func TestRecoverAndDelete(t *testing.T) {
	w := newWorld(t, nil)
	ctx := t.Context()
	w.build(t, w.a, "app", runSpec)
	// A build left building by a server that stopped.
	_, b, _ := w.svc.CreateBuild(ctx, w.a, "app", domain.BuildOptions{})
	b.State = domain.BuildBuilding
	if err := w.store.BeginBuild(ctx, b, runSpec); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "deleting while a build runs", w.svc.DeleteTemplate(ctx, w.a, "app"), domain.KindConflict)
	if n, err := w.svc.Recover(ctx); n != 1 || err != nil {
		t.Fatalf("Recover = %d, %v", n, err)
	}
	got, _ := w.svc.GetBuild(ctx, w.a, "app", b.ID)
	if got.State != domain.BuildError || got.Reason != ErrRestart {
		t.Errorf("after a restart: %+v", got)
	}
	// A running sandbox of the template keeps it.
	sb := &domain.Sandbox{ID: domain.NewID(20), TeamID: "team-a", TemplateID: "app", State: domain.StateRunning,
		CreatedAt: time.Now(), RuntimeName: "gvisor", Address: "10.0.0.2", AccessToken: "t"}
	if err := w.store.CreateSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	err := w.svc.DeleteTemplate(ctx, w.a, "app")
	wantKind(t, "deleting with a running sandbox", err, domain.KindConflict)
	if !strings.Contains(domain.PublicMessage(err), sb.ID) {
		t.Errorf("refusal %q does not name the sandbox", domain.PublicMessage(err))
	}
	sb.State = domain.StateStopped
	if err := w.store.UpdateSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	tar := []byte("files")
	if err := w.svc.PutFiles(ctx, w.a, "app", sha(tar), bytes.NewReader(tar)); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.DeleteTemplate(ctx, w.a, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(teamDir(w.svc.cfg.FilesDir, "team-a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the team's build files outlive its last template: %v", err)
	}
	wantKind(t, "deleted", get(w.svc.GetTemplate(ctx, w.a, "app")), domain.KindNotFound)
	wantKind(t, "its builds", get(w.svc.GetBuild(ctx, w.a, "app", b.ID)), domain.KindNotFound)
	wantKind(t, "a built-in", w.svc.DeleteTemplate(ctx, w.a, "base"), domain.KindInvalid)
}

// TestFollowConcurrent: followers see every line of a build that is running while they
// read, and return when it ends.
func TestFollowConcurrent(t *testing.T) {
	release := make(chan struct{})
	w := newWorld(t, nil)
	w.builder.build = func(ctx context.Context, spec domain.BuildSpec, parent string, files domain.BuildFiles,
		logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error) {
		for i := range 30 {
			logs(domain.BuildLogLine{Message: fmt.Sprintf("early %d", i)})
		}
		<-release
		for i := range 30 {
			logs(domain.BuildLogLine{Message: fmt.Sprintf("late %d", i)})
		}
		return "/x", 1, nil
	}
	ctx := t.Context()
	_, b, _ := w.svc.CreateBuild(ctx, w.a, "app", domain.BuildOptions{})
	if _, err := w.svc.StartBuild(ctx, w.a, "app", b.ID, runSpec); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	counts := make([]int, 3)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = w.svc.BuildLogs(ctx, w.a, "app", b.ID, 0, true, func(l domain.BuildLogLine) error {
				counts[i]++
				if l.Message == "early 29" && i == 0 {
					close(release)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, n := range counts {
		if n != 62 { // building on..., 60 lines, build ready
			t.Errorf("follower %d saw %d lines, want 62", i, n)
		}
	}
}

// TestMeterStorage: a built team template's size is booked as disk MB·s from its build
// on, split by UTC day, once (a second booking adds only the time since), and neither
// built-ins nor templates without a build are booked.
func TestMeterStorage(t *testing.T) {
	w := newWorld(t, nil)
	ctx := t.Context()
	w.build(t, w.a, "app", runSpec) // 3 MiB (the fake builder)
	tpl, _ := w.svc.GetTemplate(ctx, w.a, "app")
	if _, _, err := w.svc.CreateBuild(ctx, w.b, "unbuilt", domain.BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	built := tpl.BuiltAt.UTC().Truncate(time.Millisecond)
	nextDay := time.Date(built.Year(), built.Month(), built.Day()+1, 0, 0, 0, 0, time.UTC)
	at := nextDay.Add(10 * time.Second)
	if err := w.svc.MeterStorage(ctx, w.store, at); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.MeterStorage(ctx, w.store, at.Add(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	rows, err := w.store.ListUsage(ctx, domain.UsageFilter{TeamID: domain.AnyTeam, From: built.AddDate(0, 0, -1), To: at.AddDate(0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, r := range rows {
		if r.SandboxID != StorageUsageID("team-a", "app") || r.TeamID != "team-a" || r.TemplateID != "app" {
			t.Errorf("booked %+v", r)
		}
		total += r.DiskMBSeconds
	}
	want := 3 * at.Add(20*time.Second).Sub(built).Milliseconds() / 1000
	if len(rows) != 2 || total < want-3 || total > want {
		t.Errorf("%d rows of %d MB·s in all, want 2 days and %d", len(rows), total, want)
	}
}

// TestTemplateLimits: the limits a build is created with, or its spec's own, become the
// template's sandbox defaults; a template built on a team's template inherits them; limits
// outside the server's bounds are refused before anything is registered.
func TestTemplateLimits(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.MaxLimits = domain.Limits{CPUCores: 4, MemoryMB: 8192} })
	ctx := t.Context()
	get := func(name string) domain.Limits {
		t.Helper()
		tpl, err := w.svc.GetTemplate(ctx, w.a, name)
		if err != nil {
			t.Fatal(err)
		}
		return tpl.Limits
	}
	// E2B: the limits come with the create; the spec has none.
	_, b, err := w.svc.CreateBuild(ctx, w.a, "big", domain.BuildOptions{Limits: domain.Limits{CPUCores: 2, MemoryMB: 4096}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.StartBuild(ctx, w.a, "big", b.ID, runSpec); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.BuildLogs(ctx, w.a, "big", b.ID, 0, true, func(domain.BuildLogLine) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got, want := get("big"), (domain.Limits{CPUCores: 2, MemoryMB: 4096}); got != want {
		t.Errorf("big: limits %+v, want %+v", got, want)
	}
	// A child of it inherits them; its own spec's limits win.
	child := runSpec
	child.FromTemplate = "big"
	if bd, _ := w.build(t, w.a, "child", child); bd.State != domain.BuildReady {
		t.Fatalf("child: %+v", bd)
	}
	if got := get("child"); got != (domain.Limits{CPUCores: 2, MemoryMB: 4096}) {
		t.Errorf("child: limits %+v, want big's", got)
	}
	own := child
	own.Limits = domain.Limits{MemoryMB: 256}
	if bd, _ := w.build(t, w.a, "own", own); bd.State != domain.BuildReady {
		t.Fatalf("own: %+v", bd)
	}
	if got := get("own"); got != (domain.Limits{MemoryMB: 256}) {
		t.Errorf("own: limits %+v, want its spec's", got)
	}
	if got := get("base"); got != (domain.Limits{}) {
		t.Errorf("base: limits %+v, want none", got)
	}

	for _, c := range []struct {
		l    domain.Limits
		want string
	}{
		{domain.Limits{CPUCores: 8}, "maximum of 4"},
		{domain.Limits{MemoryMB: 16384}, "maximum of 8192"},
		{domain.Limits{MemoryMB: 64}, "minimum of 128"},
		{domain.Limits{CPUCores: 0.01}, "minimum of 0.05"},
		{domain.Limits{CPUCores: -1}, "minimum"},
		{domain.Limits{DiskMB: 100}, "only cpu_cores and memory_mb"},
	} {
		_, _, err := w.svc.CreateBuild(ctx, w.a, "refused", domain.BuildOptions{Limits: c.l})
		wantKind(t, fmt.Sprintf("CreateBuild %+v", c.l), err, domain.KindInvalid)
		if !strings.Contains(domain.PublicMessage(err), c.want) {
			t.Errorf("CreateBuild %+v: %q, want %q", c.l, domain.PublicMessage(err), c.want)
		}
		_, b, err := w.svc.CreateBuild(ctx, w.a, "spec-refused", domain.BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		spec := runSpec
		spec.Limits = c.l
		_, err = w.svc.StartBuild(ctx, w.a, "spec-refused", b.ID, spec)
		wantKind(t, fmt.Sprintf("StartBuild %+v", c.l), err, domain.KindInvalid)
	}
	_, err = w.svc.GetTemplate(ctx, w.a, "refused")
	wantKind(t, "a refused template", err, domain.KindNotFound)
}

// TestTags: a build tagged v1 makes the row app:v1 and leaves the default alone; tags
// are assigned to the build a target names (the default too), listed default first,
// removed (never the default, never one whose sandboxes run), and go with the template;
// another team sees none of it.
func TestTags(t *testing.T) {
	w := newWorld(t, nil)
	ctx := t.Context()
	tags := NewTags(w.svc)
	buildTagged := func(spec domain.BuildSpec, tags ...string) *domain.Build {
		t.Helper()
		_, b, err := w.svc.CreateBuild(ctx, w.a, "app", domain.BuildOptions{Tags: tags})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.StartBuild(ctx, w.a, "app", b.ID, spec); err != nil {
			t.Fatal(err)
		}
		if err := w.svc.BuildLogs(ctx, w.a, "app", b.ID, 0, true, func(domain.BuildLogLine) error { return nil }); err != nil {
			t.Fatal(err)
		}
		return b
	}
	v1spec := runSpec
	v1spec.StartCmd = "srv-v1"
	b1 := buildTagged(v1spec, "v1", "v1")
	if tpl, _ := w.svc.GetTemplate(ctx, w.a, "app"); tpl.Ready {
		t.Errorf("a build tagged only v1 made the default ready: %+v", tpl)
	}
	row, err := w.store.GetTemplate(ctx, "team-a", "app:v1")
	if err != nil || !row.Ready || row.StartCmd != "srv-v1" || row.Hash != b1.ID {
		t.Fatalf("app:v1: %+v, %v", row, err)
	}
	b2 := buildTagged(runSpec) // the default
	got, err := tags.ListTags(ctx, w.a, "app")
	if err != nil || len(got) != 2 || got[0].Tag != "default" || got[0].BuildID != b2.ID || got[1].Tag != "v1" || got[1].BuildID != b1.ID {
		t.Fatalf("ListTags: %+v, %v", got, err)
	}
	if ts, _ := w.svc.ListTemplates(ctx, w.a); len(ts) != 2 { // base and app
		t.Errorf("ListTemplates lists %d, want base and app without tags", len(ts))
	}

	// v1 becomes prod and the default; the default's start command is v1's.
	id, err := tags.AssignTags(ctx, w.a, "app:v1", []string{"prod", "default"})
	if err != nil || id != b1.ID {
		t.Fatalf("AssignTags: %q, %v", id, err)
	}
	if tpl, _ := w.svc.GetTemplate(ctx, w.a, "app"); tpl.StartCmd != "srv-v1" || tpl.Hash != b1.ID {
		t.Errorf("the default after assigning it v1's build: %+v", tpl)
	}
	if row, err := w.store.GetTemplate(ctx, "team-a", "app:prod"); err != nil || row.Hash != b1.ID {
		t.Errorf("app:prod: %+v, %v", row, err)
	}
	for _, c := range []struct {
		what string
		err  error
		kind domain.Kind
	}{
		{"assign from a missing tag", get(tags.AssignTags(ctx, w.a, "app:nope", []string{"x"})), domain.KindNotFound},
		{"assign a bad tag", get(tags.AssignTags(ctx, w.a, "app", []string{"Bad Tag"})), domain.KindInvalid},
		{"assign no tags", get(tags.AssignTags(ctx, w.a, "app", nil)), domain.KindInvalid},
		{"b assigning a's", get(tags.AssignTags(ctx, w.b, "app", []string{"x"})), domain.KindNotFound},
		{"b listing a's", get(tags.ListTags(ctx, w.b, "app")), domain.KindNotFound},
		{"b removing a's", tags.RemoveTags(ctx, w.b, "app", []string{"prod"}), domain.KindNotFound},
		{"remove the default", tags.RemoveTags(ctx, w.a, "app", []string{"default"}), domain.KindInvalid},
		{"remove a missing tag", tags.RemoveTags(ctx, w.a, "app", []string{"nope"}), domain.KindNotFound},
		{"tags of a built-in", get(tags.ListTags(ctx, w.a, "base")), domain.KindInvalid},
	} {
		wantKind(t, c.what, c.err, c.kind)
	}
	if err := tags.RemoveTags(ctx, w.a, "app", []string{"prod"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.GetTemplate(ctx, "team-a", "app:prod"); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("a removed tag's row: %v", err)
	}
	if err := w.svc.DeleteTemplate(ctx, w.a, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.GetTemplate(ctx, "team-a", "app:v1"); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("a deleted template's tag row: %v", err)
	}
	_, _, err = w.svc.CreateBuild(ctx, w.a, "app", domain.BuildOptions{Tags: []string{"-x"}})
	wantKind(t, "a build with a bad tag", err, domain.KindInvalid)
}
