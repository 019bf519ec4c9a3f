package e2b

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

// fakeTemplates is a domain.TemplateService of function fields; an unset one fails
// with fake.ErrNotSet.
type fakeTemplates struct {
	CreateBuildFn    func(ctx context.Context, p domain.Principal, name string, o domain.BuildOptions) (*domain.Template, *domain.Build, error)
	PutFilesFn       func(ctx context.Context, p domain.Principal, templateID, hash string, r io.Reader) error
	HasFilesFn       func(ctx context.Context, p domain.Principal, templateID, hash string) (bool, error)
	StartBuildFn     func(ctx context.Context, p domain.Principal, templateID, buildID string, spec domain.BuildSpec) (*domain.Build, error)
	GetBuildFn       func(ctx context.Context, p domain.Principal, templateID, buildID string) (*domain.Build, error)
	ListBuildsFn     func(ctx context.Context, p domain.Principal, templateID string) ([]*domain.Build, error)
	BuildLogsFn      func(ctx context.Context, p domain.Principal, templateID, buildID string, offset int, follow bool, each func(domain.BuildLogLine) error) error
	ListTemplatesFn  func(ctx context.Context, p domain.Principal) ([]*domain.Template, error)
	GetTemplateFn    func(ctx context.Context, p domain.Principal, id string) (*domain.Template, error)
	DeleteTemplateFn func(ctx context.Context, p domain.Principal, id string) error
}

var _ domain.TemplateService = (*fakeTemplates)(nil)

func (f *fakeTemplates) CreateBuild(ctx context.Context, p domain.Principal, name string, o domain.BuildOptions) (*domain.Template, *domain.Build, error) {
	if f.CreateBuildFn == nil {
		return nil, nil, fake.ErrNotSet
	}
	return f.CreateBuildFn(ctx, p, name, o)
}
func (f *fakeTemplates) PutFiles(ctx context.Context, p domain.Principal, id, hash string, r io.Reader) error {
	if f.PutFilesFn == nil {
		return fake.ErrNotSet
	}
	return f.PutFilesFn(ctx, p, id, hash, r)
}
func (f *fakeTemplates) HasFiles(ctx context.Context, p domain.Principal, id, hash string) (bool, error) {
	if f.HasFilesFn == nil {
		return false, fake.ErrNotSet
	}
	return f.HasFilesFn(ctx, p, id, hash)
}
func (f *fakeTemplates) StartBuild(ctx context.Context, p domain.Principal, id, buildID string, spec domain.BuildSpec) (*domain.Build, error) {
	if f.StartBuildFn == nil {
		return nil, fake.ErrNotSet
	}
	return f.StartBuildFn(ctx, p, id, buildID, spec)
}
func (f *fakeTemplates) GetBuild(ctx context.Context, p domain.Principal, id, buildID string) (*domain.Build, error) {
	if f.GetBuildFn == nil {
		return nil, fake.ErrNotSet
	}
	return f.GetBuildFn(ctx, p, id, buildID)
}
func (f *fakeTemplates) ListBuilds(ctx context.Context, p domain.Principal, id string) ([]*domain.Build, error) {
	if f.ListBuildsFn == nil {
		return nil, fake.ErrNotSet
	}
	return f.ListBuildsFn(ctx, p, id)
}
func (f *fakeTemplates) BuildLogs(ctx context.Context, p domain.Principal, id, buildID string, offset int, follow bool, each func(domain.BuildLogLine) error) error {
	if f.BuildLogsFn == nil {
		return fake.ErrNotSet
	}
	return f.BuildLogsFn(ctx, p, id, buildID, offset, follow, each)
}
func (f *fakeTemplates) ListTemplates(ctx context.Context, p domain.Principal) ([]*domain.Template, error) {
	if f.ListTemplatesFn == nil {
		return nil, fake.ErrNotSet
	}
	return f.ListTemplatesFn(ctx, p)
}
func (f *fakeTemplates) GetTemplate(ctx context.Context, p domain.Principal, id string) (*domain.Template, error) {
	if f.GetTemplateFn == nil {
		return nil, fake.ErrNotSet
	}
	return f.GetTemplateFn(ctx, p, id)
}
func (f *fakeTemplates) DeleteTemplate(ctx context.Context, p domain.Principal, id string) error {
	if f.DeleteTemplateFn == nil {
		return fake.ErrNotSet
	}
	return f.DeleteTemplateFn(ctx, p, id)
}

// The templates the fake service knows: a built-in, the test team's and another team's.
var (
	builtinTpl = &domain.Template{ID: "base", Ready: true, Hash: "h-base"}
	ownTpl     = &domain.Template{ID: "my-tpl", TeamID: testTeam.TeamID, Ready: true, Hash: "h-mine",
		BuiltAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	otherTpl = &domain.Template{ID: "their-tpl", TeamID: "team2", Ready: true}
)

// buildHarness is a harness whose server has a fake TemplateService that knows the
// three templates above (another team's is not found, as the real service answers)
// and stores uploads in memory.
type buildHarness struct {
	*harness
	tpl    *fakeTemplates
	stored map[string][]byte
}

func newBuildHarness(t *testing.T, cfg Config) *buildHarness {
	h := newHarness(t)
	bh := &buildHarness{harness: h, tpl: &fakeTemplates{}, stored: map[string][]byte{}}
	bh.tpl.GetTemplateFn = func(_ context.Context, p domain.Principal, id string) (*domain.Template, error) {
		for _, tpl := range []*domain.Template{builtinTpl, ownTpl, otherTpl} {
			if tpl.ID == id && (tpl.TeamID == "" || tpl.TeamID == p.TeamID) {
				cp := *tpl
				return &cp, nil
			}
		}
		return nil, domain.NotFound("template", id)
	}
	bh.tpl.PutFilesFn = func(_ context.Context, p domain.Principal, id, hash string, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hash {
			t.Errorf("PutFiles(%s): bytes hash to %x", hash, sum)
		}
		bh.stored[p.TeamID+"/"+id+"/"+hash] = b
		return nil
	}
	bh.tpl.HasFilesFn = func(_ context.Context, p domain.Principal, id, hash string) (bool, error) {
		_, ok := bh.stored[p.TeamID+"/"+id+"/"+hash]
		return ok, nil
	}
	log, logs := edgetest.NewLogger()
	h.logs = logs
	cfg.Templates = bh.tpl
	cfg.Domain = testDomain
	cfg.SpoolDir = t.TempDir()
	h.srv = New(h.svc, h.keys, log, cfg)
	return bh
}

// tarOf is a tar archive of the files (name → content), gzipped when gz.
func tarOf(t *testing.T, gz bool, files map[string]string) (archive, plain []byte) {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if !gz {
		return tb.Bytes(), tb.Bytes()
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	if _, err := zw.Write(tb.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return zb.Bytes(), tb.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sdkHash is a hash as the SDK names a COPY step's files (any 64 hex digits will do).
var sdkHash = strings.Repeat("ab", 32)

// link asks for the upload link of hash and returns its URL and token.
func (h *buildHarness) link(tplID, hash string) (string, string) {
	h.t.Helper()
	res := h.do("GET", "/templates/"+tplID+"/files/"+hash, nil)
	wantStatus(h.t, res, http.StatusCreated)
	var up fileUploadJSON
	if err := json.Unmarshal(res.Body, &up); err != nil {
		h.t.Fatal(err)
	}
	if up.Present || up.URL == "" || up.Headers[UploadTokenHeader] == "" {
		h.t.Fatalf("upload link answer %s: want present false, a url and a token header", res.Body)
	}
	return up.URL, up.Headers[UploadTokenHeader]
}

// put uploads body to the path of url with tok, as the SDK does: no API key.
func (h *buildHarness) put(url, tok string, body []byte) edgetest.Result {
	h.t.Helper()
	r := edgetest.NewRequest(h.t, "PUT", url, body)
	if tok != "" {
		r.Header.Set(UploadTokenHeader, tok)
	}
	return h.serve(r)
}

// upload runs the SDK's upload of files for hash to template my-tpl.
func (h *buildHarness) upload(hash string, files map[string]string) string {
	h.t.Helper()
	url, tok := h.link(ownTpl.ID, hash)
	archive, plain := tarOf(h.t, true, files)
	wantNoContent(h.t, h.put(url, tok, archive))
	return sha(plain)
}

func TestTemplateBuildFlow(t *testing.T) {
	h := newBuildHarness(t, Config{PublicURL: "http://api.test:3000/"})
	h.tpl.CreateBuildFn = func(_ context.Context, p domain.Principal, name string, _ domain.BuildOptions) (*domain.Template, *domain.Build, error) {
		if !reflect.DeepEqual(p, testTeam) || name != "my-tpl" {
			t.Errorf("CreateBuild(%+v, %q)", p, name)
		}
		return &domain.Template{ID: name, TeamID: p.TeamID}, &domain.Build{ID: "b1", State: domain.BuildWaiting}, nil
	}
	// Template.build(t, 'my-tpl') sends the options it was given; JSON drops undefined.
	res := h.do("POST", "/v3/templates", map[string]any{"name": "my-tpl"})
	wantStatus(t, res, http.StatusAccepted)
	var rb requestBuildJSON
	if err := json.Unmarshal(res.Body, &rb); err != nil {
		t.Fatal(err)
	}
	if want := (requestBuildJSON{TemplateID: "my-tpl", BuildID: "b1", Names: []string{"my-tpl"}, Aliases: []string{"my-tpl"},
		Tags: []string{"default"}}); !reflect.DeepEqual(rb, want) {
		t.Errorf("POST /v3/templates = %+v, want %+v", rb, want)
	}

	url, tok := h.link(ownTpl.ID, sdkHash)
	if want := "http://api.test:3000/templates/my-tpl/files/" + sdkHash; url != want {
		t.Errorf("upload url %q, want %q", url, want)
	}
	archive, plain := tarOf(t, true, map[string]string{"server.py": "print('hi')\n"})
	wantNoContent(t, h.put(url, tok, archive))
	stored := sha(plain)
	if _, ok := h.stored["team1/my-tpl/"+stored]; !ok {
		t.Fatalf("the uncompressed archive is not stored under its sha256 %s: %v", stored, h.stored)
	}
	// The SDK asks again on the next build: present, no link.
	res = h.do("GET", "/templates/my-tpl/files/"+sdkHash, nil)
	wantStatus(t, res, http.StatusCreated)
	if string(res.Body) != `{"present":true}`+"\n" && string(res.Body) != `{"present":true}` {
		t.Errorf("files already uploaded: %s", res.Body)
	}

	var got domain.BuildSpec
	h.tpl.StartBuildFn = func(_ context.Context, p domain.Principal, id, buildID string, spec domain.BuildSpec) (*domain.Build, error) {
		if id != "my-tpl" || buildID != "b1" {
			t.Errorf("StartBuild(%q, %q)", id, buildID)
		}
		got = spec
		return &domain.Build{ID: buildID, State: domain.BuildBuilding}, nil
	}
	// The body Template().fromTemplate('base').aptInstall(['curl']).runCmd('echo hi')
	// .copy('server.py', '/app/').setEnvs({A: '1'}).setWorkdir('/app').setUser('user')
	// .skipCache().runCmd('make', {user: 'root'}).setStartCmd('python3 server.py',
	// waitForPort(8000)) sends, its COPY carrying the SDK's own fields.
	body := `{"startCmd":"python3 server.py","readyCmd":"[ -n \"$(ss -Htuln sport = :8000)\" ]","steps":[
		{"type":"RUN","args":["apt-get update && DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get install -y curl","root"],"force":false},
		{"type":"RUN","args":["echo hi"],"force":false},
		{"type":"COPY","args":["server.py","/app/","",""],"force":false,"resolveSymlinks":false,"filesHash":"` + sdkHash + `"},
		{"type":"ENV","args":["A","1"],"force":false},
		{"type":"WORKDIR","args":["/app"],"force":false},
		{"type":"USER","args":["user"],"force":false},
		{"type":"RUN","args":["make","root"],"force":true}],
		"force":false,"fromTemplate":"base"}`
	res = h.do("POST", "/v2/templates/my-tpl/builds/b1", body)
	wantStatus(t, res, http.StatusAccepted)
	if res.Header.Get("Content-Length") != "0" || len(res.Body) != 0 {
		t.Errorf("202 with Content-Length %q and body %q, want an empty body said to be empty", res.Header.Get("Content-Length"), res.Body)
	}
	want := domain.BuildSpec{Name: "my-tpl", FromTemplate: "base", StartCmd: "python3 server.py", Ready: domain.ReadyCheck{Port: 8000},
		Steps: []domain.BuildStep{
			{Kind: domain.StepRun, Args: []string{"apt-get update && DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get install -y curl"}},
			{Kind: domain.StepRun, Args: []string{"echo hi"}},
			{Kind: domain.StepCopy, Args: []string{"server.py", "/app/"}, FilesHash: stored},
			{Kind: domain.StepEnv, Args: []string{"A", "1"}},
			{Kind: domain.StepWorkdir, Args: []string{"/app"}},
			{Kind: domain.StepUser, Args: []string{"user"}},
			{Kind: domain.StepUser, Args: []string{"root"}, Force: true},
			{Kind: domain.StepRun, Args: []string{"make"}},
			{Kind: domain.StepUser, Args: []string{"user"}},
		},
		// What the build leaves, not the root of the one RUN step that asked for it.
		Env: map[string]string{"A": "1"}, Workdir: "/app", User: "user"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("StartBuild spec\n%+v\nwant\n%+v", got, want)
	}

	// Status: logs from the offset, and a failed step named as the SDK counts it.
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	lines := []domain.BuildLogLine{{Time: t0, Level: "info", Message: "step 1 cached"}, {Time: t0, Message: "step 8 ran"},
		{Time: t0, Level: "error", Message: "make: no rule"}}
	h.tpl.GetBuildFn = func(_ context.Context, _ domain.Principal, _, buildID string) (*domain.Build, error) {
		steps := []domain.StepResult{}
		for i := 0; i < 7; i++ {
			steps = append(steps, domain.StepResult{Index: i, Cached: true})
		}
		steps = append(steps, domain.StepResult{Index: 7, ExitCode: 2})
		return &domain.Build{ID: buildID, State: domain.BuildError, Reason: "step 8 (RUN make) failed with exit code 2", Steps: steps}, nil
	}
	h.tpl.BuildLogsFn = func(_ context.Context, _ domain.Principal, _, _ string, offset int, follow bool, each func(domain.BuildLogLine) error) error {
		if follow {
			t.Error("status asked to follow the logs")
		}
		for _, l := range lines[min(offset, len(lines)):] {
			if err := each(l); err != nil {
				return err
			}
		}
		return nil
	}
	res = h.do("GET", "/templates/my-tpl/builds/b1/status?logsOffset=1", nil)
	wantStatus(t, res, http.StatusOK)
	var st buildStatusJSON
	if err := json.Unmarshal(res.Body, &st); err != nil {
		t.Fatal(err)
	}
	wantSt := buildStatusJSON{TemplateID: "my-tpl", BuildID: "b1", Status: "error", Logs: []string{},
		LogEntries: []buildLogJSON{{Timestamp: "2026-01-02T03:04:05Z", Level: "info", Message: "step 8 ran"},
			{Timestamp: "2026-01-02T03:04:05Z", Level: "error", Message: "make: no rule"}},
		Reason: &reasonJSON{Message: "step 8 (RUN make) failed with exit code 2", Step: "7", LogEntries: []buildLogJSON{}}}
	if !reflect.DeepEqual(st, wantSt) {
		t.Errorf("status\n%+v\nwant\n%+v", st, wantSt)
	}
	res = h.do("GET", "/templates/my-tpl/builds/b1/status?logsOffset=0&limit=1&level=info", nil)
	wantStatus(t, res, http.StatusOK)
	if err := json.Unmarshal(res.Body, &st); err != nil || len(st.LogEntries) != 1 || st.LogEntries[0].Message != "step 1 cached" {
		t.Errorf("limit=1: %s", res.Body)
	}
	res = h.do("GET", "/templates/my-tpl/builds/b1/status?logsOffset=0&level=error", nil)
	if err := json.Unmarshal(res.Body, &st); err != nil || len(st.LogEntries) != 1 || st.LogEntries[0].Message != "make: no rule" {
		t.Errorf("level=error: %s", res.Body)
	}
}

func TestRequestBuildRefusals(t *testing.T) {
	tests := []struct {
		name string
		body any
		want []string
	}{
		{"no name", map[string]any{}, []string{"name is required"}},
		{"an empty tag", map[string]any{"name": "x:"}, []string{"without a tag"}},
		{"cpuCount zero", map[string]any{"name": "x", "cpuCount": 0}, []string{"cpuCount", "at least 1"}},
		{"cpuCount fraction", map[string]any{"name": "x", "cpuCount": 1.5}, []string{"cpuCount"}},
		{"memoryMB small", map[string]any{"name": "x", "memoryMB": 64}, []string{"memoryMB", "at least 128"}},
		{"minFreeDiskMb", map[string]any{"name": "x", "minFreeDiskMb": 1}, []string{"minFreeDiskMb"}},
		{"another team", map[string]any{"name": "x", "teamID": "team2"}, []string{"teamID"}},
		{"unknown field", map[string]any{"name": "x", "public": true}, []string{"public", "not supported"}},
		{"not JSON", "{", []string{"JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newBuildHarness(t, Config{})
			wantError(t, h.do("POST", "/v3/templates", tt.body), 400, tt.want...)
		})
	}
	t.Run("default tag and deprecated alias", func(t *testing.T) {
		h := newBuildHarness(t, Config{})
		h.tpl.CreateBuildFn = func(_ context.Context, _ domain.Principal, name string, _ domain.BuildOptions) (*domain.Template, *domain.Build, error) {
			if name != "x" {
				t.Errorf("name %q", name)
			}
			return &domain.Template{ID: name, TeamID: testTeam.TeamID}, &domain.Build{ID: "b"}, nil
		}
		wantStatus(t, h.do("POST", "/v3/templates", map[string]any{"name": "x:default", "tags": []string{"default"}}), 202)
		wantStatus(t, h.do("POST", "/v3/templates", map[string]any{"alias": "x", "teamID": testTeam.TeamID}), 202)
	})
	t.Run("tags", func(t *testing.T) {
		h := newBuildHarness(t, Config{})
		var got [][]string
		h.tpl.CreateBuildFn = func(_ context.Context, _ domain.Principal, name string, o domain.BuildOptions) (*domain.Template, *domain.Build, error) {
			if name != "x" {
				t.Errorf("name %q", name)
			}
			got = append(got, o.Tags)
			return &domain.Template{ID: name, TeamID: testTeam.TeamID}, &domain.Build{ID: "b", Tags: o.Tags}, nil
		}
		res := h.do("POST", "/v3/templates", map[string]any{"name": "x:v2", "tags": []string{"prod"}})
		wantStatus(t, res, 202)
		var rb requestBuildJSON
		if err := json.Unmarshal(res.Body, &rb); err != nil || !reflect.DeepEqual(rb.Tags, []string{"v2", "prod"}) {
			t.Errorf("answer tags %v, %v", rb.Tags, err)
		}
		wantStatus(t, h.do("POST", "/v3/templates", map[string]any{"name": "x"}), 202)
		if want := [][]string{{"v2", "prod"}, nil}; !reflect.DeepEqual(got, want) {
			t.Errorf("CreateBuild tags %v, want %v", got, want)
		}
	})
	t.Run("cpuCount and memoryMB", func(t *testing.T) {
		h := newBuildHarness(t, Config{})
		var got []domain.Limits
		h.tpl.CreateBuildFn = func(_ context.Context, _ domain.Principal, name string, o domain.BuildOptions) (*domain.Template, *domain.Build, error) {
			got = append(got, o.Limits)
			return &domain.Template{ID: name, TeamID: testTeam.TeamID}, &domain.Build{ID: "b"}, nil
		}
		wantStatus(t, h.do("POST", "/v3/templates", map[string]any{"name": "x", "cpuCount": 4, "memoryMB": 2048}), 202)
		wantStatus(t, h.do("POST", "/v3/templates", map[string]any{"name": "x", "memoryMB": 512}), 202)
		wantStatus(t, h.do("POST", "/v3/templates", map[string]any{"name": "x"}), 202)
		want := []domain.Limits{{CPUCores: 4, MemoryMB: 2048}, {MemoryMB: 512}, {}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("CreateBuild limits %+v, want %+v", got, want)
		}
	})
	t.Run("service refusal", func(t *testing.T) {
		h := newBuildHarness(t, Config{})
		h.tpl.CreateBuildFn = func(context.Context, domain.Principal, string, domain.BuildOptions) (*domain.Template, *domain.Build, error) {
			return nil, nil, domain.Errorf(domain.KindConflict, `"base" is a built-in template; choose another name`)
		}
		wantError(t, h.do("POST", "/v3/templates", map[string]any{"name": "base"}), 409, "built-in")
	})
}

func TestStartBuildRefusals(t *testing.T) {
	copyStep := func(hash string, args ...string) map[string]any {
		return map[string]any{"type": "COPY", "args": args, "filesHash": hash}
	}
	tests := []struct {
		name   string
		body   any
		status int
		want   []string
	}{
		{"no parent", map[string]any{"steps": []any{}}, 400, []string{"fromTemplate"}},
		{"two parents", map[string]any{"fromTemplate": "base", "fromImage": "debian:bookworm"}, 400, []string{"not both"}},
		{"registry credentials", map[string]any{"fromImage": "x/y:1", "fromImageRegistry": map[string]any{}}, 400, []string{"fromImageRegistry", "Docker config"}},
		{"unknown step type", map[string]any{"fromTemplate": "base", "steps": []any{map[string]any{"type": "EXPOSE", "args": []string{"80"}}}}, 400,
			[]string{"steps[0].type", "EXPOSE", "RUN, COPY, ENV, WORKDIR and USER"}},
		{"RUN without a command", map[string]any{"fromTemplate": "base", "steps": []any{map[string]any{"type": "RUN", "args": []string{" "}}}}, 400,
			[]string{"steps[0]", "step 1 (RUN)", "[command]"}},
		{"ENV odd", map[string]any{"fromTemplate": "base", "steps": []any{map[string]any{"type": "RUN", "args": []string{"x"}},
			map[string]any{"type": "ENV", "args": []string{"A"}}}}, 400, []string{"steps[1]", "step 2 (ENV)", "pairs"}},
		{"ENV bad name", map[string]any{"fromTemplate": "base", "steps": []any{map[string]any{"type": "ENV", "args": []string{"A=B", "x"}}}}, 400, []string{"not an environment variable name"}},
		{"WORKDIR two", map[string]any{"fromTemplate": "base", "steps": []any{map[string]any{"type": "WORKDIR", "args": []string{"/a", "/b"}}}}, 400, []string{"[directory]"}},
		{"USER empty", map[string]any{"fromTemplate": "base", "steps": []any{map[string]any{"type": "USER", "args": []string{""}}}}, 400, []string{"[user]"}},
		{"COPY not uploaded", map[string]any{"fromTemplate": "base", "steps": []any{copyStep(strings.Repeat("cd", 32), "a", "/a", "", "")}}, 400,
			[]string{"were not uploaded", "build again"}},
		{"COPY bad hash", map[string]any{"fromTemplate": "base", "steps": []any{copyStep("xyz", "a", "/a")}}, 400, []string{"filesHash", "sha256"}},
		{"COPY outside", map[string]any{"fromTemplate": "base", "steps": []any{copyStep(sdkHash, "../etc/passwd", "/a")}}, 400, []string{"outside"}},
		{"COPY absolute", map[string]any{"fromTemplate": "base", "steps": []any{copyStep(sdkHash, "/etc/passwd", "/a")}}, 400, []string{"outside"}},
		{"COPY bad mode", map[string]any{"fromTemplate": "base", "steps": []any{copyStep(sdkHash, "a", "/a", "", "rwx")}}, 400, []string{"mode", "octal"}},
		{"COPY one arg", map[string]any{"fromTemplate": "base", "steps": []any{copyStep(sdkHash, "a")}}, 400, []string{"[src, dest, user, mode]"}},
		{"unknown field", map[string]any{"fromTemplate": "base", "cpuCount": 2}, 400, []string{"cpuCount"}},
		{"unknown step field", map[string]any{"fromTemplate": "base", "steps": []any{map[string]any{"type": "RUN", "args": []string{"x"}, "mode": 1}}}, 400, []string{"mode"}},
		{"too many steps", map[string]any{"fromTemplate": "base", "steps": make([]map[string]any, maxBuildSteps+1)}, 400, []string{"at most"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newBuildHarness(t, Config{})
			wantError(t, h.do("POST", "/v2/templates/my-tpl/builds/b1", tt.body), tt.status, tt.want...)
		})
	}
	t.Run("image parent, forced build, alias of a template", func(t *testing.T) {
		h := newBuildHarness(t, Config{})
		var specs []domain.BuildSpec
		h.tpl.StartBuildFn = func(_ context.Context, _ domain.Principal, _, id string, spec domain.BuildSpec) (*domain.Build, error) {
			specs = append(specs, spec)
			return &domain.Build{ID: id}, nil
		}
		wantStatus(t, h.do("POST", "/v2/templates/my-tpl/builds/b1", map[string]any{"fromImage": "debian:bookworm", "force": true,
			"steps": []any{map[string]any{"type": "RUN", "args": []string{"true", ""}}, map[string]any{"type": "WORKDIR", "args": []string{"/x"}}}}), 202)
		wantStatus(t, h.do("POST", "/v2/templates/my-tpl/builds/b2", map[string]any{"fromTemplate": "code-interpreter-v1"}), 202)
		// fromBaseImage() and fromDockerfile("FROM base ...") name images that are
		// Warren's templates.
		wantStatus(t, h.do("POST", "/v2/templates/my-tpl/builds/b3", map[string]any{"fromImage": "e2bdev/base"}), 202)
		wantStatus(t, h.do("POST", "/v2/templates/my-tpl/builds/b4", map[string]any{"fromImage": "base"}), 202)
		wantStatus(t, h.do("POST", "/v2/templates/my-tpl/builds/b5", map[string]any{"fromImage": "registry.local:5000/x"}), 202)
		// copy(src, dest, {mode}) and copy(src, dest, {user, mode}).
		url, tok := h.link(ownTpl.ID, sdkHash)
		archive, plain := tarOf(t, false, map[string]string{"run.sh": "#!/bin/sh\n", "key": "k"})
		wantNoContent(t, h.put(url, tok, archive))
		stored := sha(plain)
		wantStatus(t, h.do("POST", "/v2/templates/my-tpl/builds/b6", map[string]any{"fromTemplate": "base", "steps": []any{
			copyStep(sdkHash, "run.sh", "/app/", "", "0755"), copyStep(sdkHash, "key", "/k", "user", "600")}}), 202)
		want := []domain.BuildSpec{
			{Name: "my-tpl", FromImage: "debian:bookworm", Steps: []domain.BuildStep{
				{Kind: domain.StepRun, Args: []string{"true"}, Force: true}, {Kind: domain.StepWorkdir, Args: []string{"/x"}}}, Workdir: "/x"},
			{Name: "my-tpl", FromTemplate: codeInterpreterTemplate},
			{Name: "my-tpl", FromTemplate: "base"},
			{Name: "my-tpl", FromTemplate: "base"},
			{Name: "my-tpl", FromImage: "registry.local:5000/x"},
			{Name: "my-tpl", FromTemplate: "base", Steps: []domain.BuildStep{
				{Kind: domain.StepCopy, Args: []string{"run.sh", "/app/", "", "0755"}, FilesHash: stored},
				{Kind: domain.StepCopy, Args: []string{"key", "/k", "user", "600"}, FilesHash: stored}}},
		}
		if !reflect.DeepEqual(specs, want) {
			t.Errorf("specs\n%+v\nwant\n%+v", specs, want)
		}
	})
}

// TestTemplateBuildTenancy: unknown templates, built-ins and another team's templates
// are 404 on every build route, and nothing reaches the service's build calls.
func TestTemplateBuildTenancy(t *testing.T) {
	h := newBuildHarness(t, Config{})
	for _, id := range []string{"nope", otherTpl.ID, builtinTpl.ID} {
		for _, c := range []struct{ method, target string }{
			{"GET", "/templates/" + id + "/files/" + sdkHash},
			{"POST", "/v2/templates/" + id + "/builds/b1"},
			{"GET", "/templates/" + id + "/builds/b1/status"},
		} {
			wantError(t, h.do(c.method, c.target, map[string]any{"fromTemplate": "base"}), 404, id)
		}
	}
	wantError(t, h.do("GET", "/templates/aliases/"+otherTpl.ID, nil), 404, otherTpl.ID)
	h.tpl.DeleteTemplateFn = func(context.Context, domain.Principal, string) error {
		t.Error("DeleteTemplate reached for a template that is not the caller's")
		return nil
	}
	wantError(t, h.do("DELETE", "/templates/"+otherTpl.ID, nil), 404, otherTpl.ID)
	wantError(t, h.do("DELETE", "/templates/base", nil), 501, "deleting templates is not supported")
}

func TestTemplateUploadRefusals(t *testing.T) {
	good, _ := tarOf(t, true, map[string]string{"a.txt": "hello"})
	t.Run("another hash on the link", func(t *testing.T) {
		h := newBuildHarness(t, Config{})
		_, tok := h.link(ownTpl.ID, sdkHash)
		other := strings.Repeat("cd", 32)
		wantError(t, h.put("/templates/my-tpl/files/"+other, tok, good), 400, "this upload link is for the files "+sdkHash)
		if len(h.stored) != 0 {
			t.Errorf("stored %d archives", len(h.stored))
		}
	})
	t.Run("no token, a wrong token, an expired one", func(t *testing.T) {
		h := newBuildHarness(t, Config{})
		url, tok := h.link(ownTpl.ID, sdkHash)
		wantError(t, h.put(url, "", good), 401, "unknown or has expired")
		wantError(t, h.put(url, strings.Repeat("0", 64), good), 401, "unknown or has expired")
		h.srv.now = func() time.Time { return time.Now().Add(2 * uploadTokenTTL) }
		wantError(t, h.put(url, tok, good), 401, "build again")
	})
	t.Run("the API key is no upload token", func(t *testing.T) {
		h := newBuildHarness(t, Config{})
		url, _ := h.link(ownTpl.ID, sdkHash)
		r := edgetest.NewRequest(t, "PUT", url, good)
		r.Header.Set("X-API-Key", testKey)
		wantError(t, h.serve(r), 401, "upload link")
	})
	t.Run("oversized", func(t *testing.T) {
		h := newBuildHarness(t, Config{MaxUploadBytes: 4096})
		url, tok := h.link(ownTpl.ID, sdkHash)
		big, _ := tarOf(t, false, map[string]string{"big": strings.Repeat("x", 8192)})
		wantError(t, h.put(url, tok, big), 413, "larger than 4096 bytes")
		// Small compressed, past the limit once gunzipped.
		bomb, _ := tarOf(t, true, map[string]string{"zeros": strings.Repeat("\x00", 1<<20)})
		if len(bomb) > 4096 {
			t.Fatalf("the compressed bomb is %d bytes", len(bomb))
		}
		wantError(t, h.put(url, tok, bomb), 413, "larger than 4096 bytes uncompressed")
		if len(h.stored) != 0 {
			t.Errorf("stored %d archives", len(h.stored))
		}
	})
	bad := []struct {
		name string
		body []byte
		want string
	}{
		{"not a tar", []byte(strings.Repeat("not a tar archive ", 100)), "not a tar archive"},
		{"empty", nil, "empty"},
		{"broken gzip", append([]byte{0x1f, 0x8b}, []byte("garbage")...), "not a valid gzip stream"},
		{"escaping entry", func() []byte {
			b, _ := tarOf(t, true, map[string]string{"../../etc/cron.d/x": "boom"})
			return b
		}(), "outside the archive"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			h := newBuildHarness(t, Config{})
			url, tok := h.link(ownTpl.ID, sdkHash)
			wantError(t, h.put(url, tok, tt.body), 400, tt.want)
			if len(h.stored) != 0 {
				t.Errorf("stored %d archives", len(h.stored))
			}
		})
	}
	t.Run("plain tar, and the spool is cleaned up", func(t *testing.T) {
		h := newBuildHarness(t, Config{})
		url, tok := h.link(ownTpl.ID, sdkHash)
		archive, plain := tarOf(t, false, map[string]string{"./dir/b.txt": "b"})
		wantNoContent(t, h.put(url, tok, archive))
		if _, ok := h.stored["team1/my-tpl/"+sha(plain)]; !ok {
			t.Errorf("not stored under the archive's sha256")
		}
		if left, _ := filepathGlob(h.srv.cfg.SpoolDir); len(left) != 0 {
			t.Errorf("spool dir keeps %v", left)
		}
	})
}

func TestUploadLinkURL(t *testing.T) {
	h := newBuildHarness(t, Config{})
	for _, tt := range []struct{ proto, want string }{
		{"", "http://api.example.test:3000/templates/my-tpl/files/" + sdkHash},
		{"https", "https://api.example.test:3000/templates/my-tpl/files/" + sdkHash},
	} {
		r := h.req("GET", "/templates/my-tpl/files/"+sdkHash, nil)
		r.Host = "api.example.test:3000"
		if tt.proto != "" {
			r.Header.Set("X-Forwarded-Proto", tt.proto)
		}
		res := h.serve(r)
		wantStatus(t, res, http.StatusCreated)
		var up fileUploadJSON
		if err := json.Unmarshal(res.Body, &up); err != nil || up.URL != tt.want {
			t.Errorf("X-Forwarded-Proto %q: url %q, want %q (%v)", tt.proto, up.URL, tt.want, err)
		}
	}
}

func TestReadyCheck(t *testing.T) {
	// The commands are what the SDK's waitFor* helpers write.
	tests := []struct {
		cmd  string
		want domain.ReadyCheck
	}{
		{`[ -n "$(ss -Htuln sport = :8000)" ]`, domain.ReadyCheck{Port: 8000}},
		{`curl -s -o /dev/null -w "%{http_code}" http://localhost:3000/health | grep -q "200"`, domain.ReadyCheck{URL: "http://localhost:3000/health"}},
		{`curl -s -o /dev/null -w "%{http_code}" 'http://localhost:3000/a?b=1&c' | grep -q "200"`, domain.ReadyCheck{URL: "http://localhost:3000/a?b=1&c"}},
		{`curl -s -o /dev/null -w "%{http_code}" http://localhost/ | grep -q "204"`,
			domain.ReadyCheck{Cmd: `curl -s -o /dev/null -w "%{http_code}" http://localhost/ | grep -q "204"`}},
		{`pgrep my-daemon > /dev/null`, domain.ReadyCheck{Process: "my-daemon"}},
		{`[ -f '/tmp/it'"'"'s ready' ]`, domain.ReadyCheck{File: "/tmp/it's ready"}},
		{`sleep 20`, domain.ReadyCheck{Cmd: "sleep 20"}},
		{`[ -n "$(ss -Htuln sport = :99999)" ]`, domain.ReadyCheck{Cmd: `[ -n "$(ss -Htuln sport = :99999)" ]`}},
		{``, domain.ReadyCheck{}},
	}
	for _, tt := range tests {
		if got := readyCheck(tt.cmd); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("readyCheck(%q) = %+v, want %+v", tt.cmd, got, tt.want)
		}
	}
}

func TestTeamTemplatesListed(t *testing.T) {
	h := newBuildHarness(t, Config{})
	h.tpl.ListTemplatesFn = func(_ context.Context, p domain.Principal) ([]*domain.Template, error) {
		return []*domain.Template{builtinTpl, ownTpl}, nil
	}
	res := h.do("GET", "/templates", nil)
	wantStatus(t, res, 200)
	var ts []templateJSON
	if err := json.Unmarshal(res.Body, &ts); err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].TemplateID != "base" || !ts[0].Public || ts[1].TemplateID != "my-tpl" || ts[1].Public {
		t.Errorf("listing %s", res.Body)
	}
	res = h.do("GET", "/templates/aliases/my-tpl", nil)
	wantStatus(t, res, 200)
	if string(bytes.TrimSpace(res.Body)) != `{"templateID":"my-tpl","public":false}` {
		t.Errorf("alias: %s", res.Body)
	}
	deleted := ""
	h.tpl.DeleteTemplateFn = func(_ context.Context, _ domain.Principal, id string) error { deleted = id; return nil }
	wantNoContent(t, h.do("DELETE", "/templates/my-tpl", nil))
	if deleted != "my-tpl" {
		t.Errorf("deleted %q", deleted)
	}
}

// filepathGlob lists what dir holds.
func filepathGlob(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names, err
}
