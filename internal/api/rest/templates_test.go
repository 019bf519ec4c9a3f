package rest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// fakeTemplates is a domain.TemplateService with function fields.
type fakeTemplates struct {
	createBuild func(ctx context.Context, p domain.Principal, name string, o domain.BuildOptions) (*domain.Template, *domain.Build, error)
	putFiles    func(ctx context.Context, p domain.Principal, tplID, hash string, r io.Reader) error
	startBuild  func(ctx context.Context, p domain.Principal, tplID, buildID string, spec domain.BuildSpec) (*domain.Build, error)
	getBuild    func(ctx context.Context, p domain.Principal, tplID, buildID string) (*domain.Build, error)
	listBuilds  func(ctx context.Context, p domain.Principal, tplID string) ([]*domain.Build, error)
	buildLogs   func(ctx context.Context, p domain.Principal, tplID, buildID string, offset int, follow bool, each func(domain.BuildLogLine) error) error
	list        func(ctx context.Context, p domain.Principal) ([]*domain.Template, error)
	get         func(ctx context.Context, p domain.Principal, id string) (*domain.Template, error)
	del         func(ctx context.Context, p domain.Principal, id string) error
}

var _ domain.TemplateService = (*fakeTemplates)(nil)

func (f *fakeTemplates) CreateBuild(ctx context.Context, p domain.Principal, name string, o domain.BuildOptions) (*domain.Template, *domain.Build, error) {
	return f.createBuild(ctx, p, name, o)
}
func (f *fakeTemplates) PutFiles(ctx context.Context, p domain.Principal, tplID, hash string, r io.Reader) error {
	return f.putFiles(ctx, p, tplID, hash, r)
}
func (f *fakeTemplates) HasFiles(ctx context.Context, p domain.Principal, tplID, hash string) (bool, error) {
	return false, errNotSet
}
func (f *fakeTemplates) StartBuild(ctx context.Context, p domain.Principal, tplID, buildID string, spec domain.BuildSpec) (*domain.Build, error) {
	return f.startBuild(ctx, p, tplID, buildID, spec)
}
func (f *fakeTemplates) GetBuild(ctx context.Context, p domain.Principal, tplID, buildID string) (*domain.Build, error) {
	return f.getBuild(ctx, p, tplID, buildID)
}
func (f *fakeTemplates) ListBuilds(ctx context.Context, p domain.Principal, tplID string) ([]*domain.Build, error) {
	return f.listBuilds(ctx, p, tplID)
}
func (f *fakeTemplates) BuildLogs(ctx context.Context, p domain.Principal, tplID, buildID string, offset int, follow bool, each func(domain.BuildLogLine) error) error {
	return f.buildLogs(ctx, p, tplID, buildID, offset, follow, each)
}
func (f *fakeTemplates) ListTemplates(ctx context.Context, p domain.Principal) ([]*domain.Template, error) {
	return f.list(ctx, p)
}
func (f *fakeTemplates) GetTemplate(ctx context.Context, p domain.Principal, id string) (*domain.Template, error) {
	return f.get(ctx, p, id)
}
func (f *fakeTemplates) DeleteTemplate(ctx context.Context, p domain.Principal, id string) error {
	return f.del(ctx, p, id)
}

var testBuild = &domain.Build{ID: "bld_1", TemplateID: "app", TeamID: "team1", State: domain.BuildWaiting,
	CreatedAt: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}

// recordingTemplates accepts builds of "app" and records what it was given.
func recordingTemplates(spec *domain.BuildSpec, files *[]byte) *fakeTemplates {
	return &fakeTemplates{
		createBuild: func(ctx context.Context, p domain.Principal, name string, o domain.BuildOptions) (*domain.Template, *domain.Build, error) {
			if name != "app" {
				return nil, nil, domain.Invalid("name", "bad name %q", name)
			}
			return &domain.Template{ID: name, TeamID: p.TeamID}, testBuild, nil
		},
		putFiles: func(ctx context.Context, p domain.Principal, tplID, hash string, r io.Reader) error {
			b, _ := io.ReadAll(r)
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hash {
				return domain.Invalid("hash", "hash mismatch")
			}
			*files = b
			return nil
		},
		startBuild: func(ctx context.Context, p domain.Principal, tplID, buildID string, s domain.BuildSpec) (*domain.Build, error) {
			*spec = s
			b := *testBuild
			b.State = domain.BuildBuilding
			return &b, nil
		},
	}
}

func TestBuildTemplateJSON(t *testing.T) {
	var spec domain.BuildSpec
	var files []byte
	h := newHarness(t, WithTemplates(recordingTemplates(&spec, &files), 0))
	res := h.do("POST", "/v1/templates", `{"name":"app","from_template":"base","steps":[{"type":"run","args":["apt-get install -y curl"]},
		{"type":"ENV","args":["A","1"],"force":true}],"start_cmd":"python3 -m http.server 8000","ready":{"port":8000,"timeout":30},"timeout":600,
		"cpu_cores":1.5,"memory_mb":2048}`)
	if res.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	m := res.Obj(t)
	if m["build"].(map[string]any)["state"] != "building" || m["template"].(map[string]any)["id"] != "app" {
		t.Errorf("body %s", res.Body)
	}
	if spec.FromTemplate != "base" || len(spec.Steps) != 2 || spec.Steps[0].Kind != domain.StepRun || !spec.Steps[1].Force ||
		spec.StartCmd != "python3 -m http.server 8000" || spec.Ready.Port != 8000 || spec.Ready.Timeout != 30*time.Second ||
		spec.Timeout != 10*time.Minute || spec.Name != "app" || spec.Limits != (domain.Limits{CPUCores: 1.5, MemoryMB: 2048}) {
		t.Errorf("spec %+v", spec)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"from_template":"base"}`, "name"},
		{`{"name":"app","ready":{"port":1,"url":"http://x"}}`, "ready"},
		{`{"name":"app","timeout":-1}`, "timeout"},
		{`{"name":"app","build_args":{"A":"1"}}`, "build_args"},
		{`{"name":"app","stepz":[]}`, "stepz"},
	} {
		h.wantError(h.do("POST", "/v1/templates", tc.body), 400, "invalid", tc.field)
	}
}

// multipartBuild is a POST /v1/templates form with the given parts.
func multipartBuild(t *testing.T, h *harness, parts map[string][]byte) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, name := range []string{"name", "spec", "dockerfile", "context", "other"} {
		if b, ok := parts[name]; ok {
			w, _ := mw.CreateFormFile(name, name)
			w.Write(b)
		}
	}
	mw.Close()
	r := h.req("POST", "/v1/templates", buf.Bytes())
	r.Header.Set("Content-Type", mw.FormDataContentType())
	return r
}

func TestBuildTemplateDockerfile(t *testing.T) {
	var spec domain.BuildSpec
	var files []byte
	h := newHarness(t, WithTemplates(recordingTemplates(&spec, &files), 64))
	ctxTar := []byte("pretend this is a tar archive")
	df := "FROM base\nARG V=1\nRUN echo $V\nCOPY app.py /srv/app.py\nCMD [\"python3\", \"/srv/app.py\"]\n"
	res := h.serve(multipartBuild(t, h, map[string][]byte{"name": []byte("app"), "dockerfile": []byte(df), "context": ctxTar,
		"spec": []byte(`{"name":"ignored","build_args":{"V":"2"},"ready":{"port":8080}}`)}))
	if res.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	sum := sha256.Sum256(ctxTar)
	hash := hex.EncodeToString(sum[:])
	if !bytes.Equal(files, ctxTar) || spec.FromTemplate != "base" || len(spec.Steps) != 2 || spec.Steps[1].FilesHash != hash ||
		!strings.Contains(spec.Steps[0].Args[0], "echo 2") || spec.Ready.Port != 8080 || !strings.Contains(spec.StartCmd, "/srv/app.py") {
		t.Errorf("spec %+v, files %q", spec, files)
	}
	// A context over the limit is 413; an unsupported instruction 400 naming the line.
	res = h.serve(multipartBuild(t, h, map[string][]byte{"name": []byte("app"), "dockerfile": []byte(df), "context": bytes.Repeat([]byte("x"), 65)}))
	h.wantError(res, http.StatusRequestEntityTooLarge, "invalid", "context")
	res = h.serve(multipartBuild(t, h, map[string][]byte{"name": []byte("app"), "dockerfile": []byte("FROM base\nEXPOSE 80\n")}))
	if m := h.wantError(res, 400, "invalid", "dockerfile"); !strings.Contains(m["message"].(string), "line 2") {
		t.Errorf("message %v does not name the line", m["message"])
	}
	h.wantError(h.serve(multipartBuild(t, h, map[string][]byte{"name": []byte("app"), "other": []byte("x")})), 400, "invalid", "other")
}

// TestBuildContextSpool: a build context is spooled in the upload directory while it is
// stored, and removed from it afterwards.
func TestBuildContextSpool(t *testing.T) {
	dir := t.TempDir()
	var spec domain.BuildSpec
	var files []byte
	ts := recordingTemplates(&spec, &files)
	var spooledAt string
	put := ts.putFiles
	ts.putFiles = func(ctx context.Context, p domain.Principal, tplID, hash string, r io.Reader) error {
		if f, ok := r.(*os.File); ok {
			spooledAt = filepath.Dir(f.Name())
		}
		return put(ctx, p, tplID, hash, r)
	}
	h := newHarness(t, WithTemplates(ts, 0), WithUploadDir(dir))
	res := h.serve(multipartBuild(t, h, map[string][]byte{"name": []byte("app"), "dockerfile": []byte("FROM base\nCOPY a /a\n"), "context": []byte("tar")}))
	if res.Status != http.StatusAccepted || spooledAt != dir {
		t.Errorf("status %d, spooled in %q, want %q: %s", res.Status, spooledAt, dir, res.Body)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the spool keeps %d files after the request", len(ents))
	}
}

func TestTemplateRoutes(t *testing.T) {
	done := &domain.Build{ID: "bld_1", TemplateID: "app", TeamID: "team1", State: domain.BuildError, Reason: "step 2 (RUN false) exited with 1",
		Steps:     []domain.StepResult{{Index: 0, Key: "k0", Cached: true}, {Index: 1, Key: "k1", ExitCode: 1, Duration: 1500 * time.Millisecond}},
		CreatedAt: testBuild.CreatedAt, FinishedAt: testBuild.CreatedAt.Add(time.Minute)}
	lines := []domain.BuildLogLine{{Time: done.CreatedAt, Level: "info", Message: "step 1 cached"}, {Time: done.CreatedAt, Level: "error", Message: "boom"}}
	var deleted string
	ts := &fakeTemplates{
		list: func(ctx context.Context, p domain.Principal) ([]*domain.Template, error) {
			return []*domain.Template{{ID: "base", Ready: true}, {ID: "app", TeamID: p.TeamID, StartCmd: "srv"}}, nil
		},
		get: func(ctx context.Context, p domain.Principal, id string) (*domain.Template, error) {
			if id != "app" {
				return nil, domain.NotFound("template", id)
			}
			return &domain.Template{ID: "app", TeamID: p.TeamID}, nil
		},
		del: func(ctx context.Context, p domain.Principal, id string) error {
			if id != "app" {
				return domain.NotFound("template", id)
			}
			deleted = id
			return nil
		},
		getBuild: func(ctx context.Context, p domain.Principal, tplID, buildID string) (*domain.Build, error) {
			if tplID != "app" || buildID != "bld_1" {
				return nil, domain.NotFound("build", buildID)
			}
			return done, nil
		},
		listBuilds: func(ctx context.Context, p domain.Principal, tplID string) ([]*domain.Build, error) {
			if tplID != "app" {
				return nil, domain.NotFound("template", tplID)
			}
			return []*domain.Build{done}, nil
		},
		buildLogs: func(ctx context.Context, p domain.Principal, tplID, buildID string, offset int, follow bool, each func(domain.BuildLogLine) error) error {
			if tplID != "app" || buildID != "bld_1" {
				return domain.NotFound("build", buildID)
			}
			for _, l := range lines[min(offset, len(lines)):] {
				if err := each(l); err != nil {
					return err
				}
			}
			return nil
		},
	}
	h := newHarness(t, WithTemplates(ts, 0))
	res := h.do("GET", "/v1/templates", nil)
	if res.Status != 200 || !strings.Contains(string(res.Body), `"builtin":true`) || !strings.Contains(string(res.Body), `"builtin":false`) {
		t.Errorf("list: %d %s", res.Status, res.Body)
	}
	if res := h.do("GET", "/v1/templates/app", nil); res.Status != 200 {
		t.Errorf("get: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("GET", "/v1/templates/other", nil), 404, "not_found", "")
	res = h.do("GET", "/v1/templates/app/builds/bld_1", nil)
	if m := res.Obj(t); res.Status != 200 || m["state"] != "error" || !strings.Contains(m["reason"].(string), "exited with 1") ||
		m["steps"].([]any)[0].(map[string]any)["cached"] != true || m["steps"].([]any)[1].(map[string]any)["duration_ms"] != 1500.0 {
		t.Errorf("build: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("GET", "/v1/templates/app/builds/bld_2", nil), 404, "not_found", "")
	res = h.do("GET", "/v1/templates/app/builds", nil)
	if m := res.Obj(t); res.Status != 200 || len(m["builds"].([]any)) != 1 || m["builds"].([]any)[0].(map[string]any)["id"] != "bld_1" {
		t.Errorf("builds: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("GET", "/v1/templates/other/builds", nil), 404, "not_found", "")
	res = h.do("GET", "/v1/templates/app/builds/bld_1/logs?offset=1", nil)
	if m := res.Obj(t); res.Status != 200 || m["next_offset"] != 2.0 || len(m["lines"].([]any)) != 1 || m["state"] != "error" {
		t.Errorf("logs: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("GET", "/v1/templates/app/builds/bld_1/logs?offset=-1", nil), 400, "invalid", "offset")
	r := h.req("GET", "/v1/templates/app/builds/bld_1/logs", nil)
	r.Header.Set("Accept", "text/event-stream")
	res = h.serve(r)
	body := string(res.Body)
	if res.Status != 200 || strings.Count(body, "event: log") != 2 || !strings.Contains(body, "event: end") || !strings.Contains(body, `"state":"error"`) {
		t.Errorf("SSE: %d %s", res.Status, body)
	}
	r = h.req("GET", "/v1/templates/app/builds/nope/logs", nil)
	r.Header.Set("Accept", "text/event-stream")
	h.wantError(h.serve(r), 404, "not_found", "")
	if res := h.do("DELETE", "/v1/templates/app", nil); res.Status != 204 || deleted != "app" {
		t.Errorf("delete: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("DELETE", "/v1/templates/other", nil), 404, "not_found", "")

	// Without the service: built-ins only, and 503 for the rest.
	h2 := newHarness(t)
	h2.wantError(h2.do("GET", "/v1/templates/app", nil), 503, "unavailable", "")
}
