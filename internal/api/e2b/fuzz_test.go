package e2b

import (
	"context"
	"encoding/json"
	"net/http"
	"path"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

// FuzzRoutes sends arbitrary path segments, query strings and bodies to every route of
// the E2B API (what E2B's SDKs send is parsed here), over fakes that fail with an
// internal error when reached. Whatever arrives: nothing panics, every answer with a
// body is JSON, a refusal carries E2B's error body ({code, message}) with its status,
// and a 500 never carries its cause.
func FuzzRoutes(f *testing.F) {
	edgetest.SeedRoutes(f, Routes(),
		edgetest.FuzzInput{Seg: "x", Query: "metadata=a%3Db&state=running&limit=-1&nextToken=%%%", Body: []byte(`{"templateID":"base","timeout":-5,"metadata":{"":""}}`)},
		edgetest.FuzzInput{Route: 1, Seg: "..", Body: []byte(`{"timeout":1e309,"envVars":[1]}`)})
	f.Fuzz(func(t *testing.T, idx uint8, seg, query string, body []byte) {
		h := newHarness(t)
		what, res, ok := edgetest.FuzzRoute(t, Routes(), edgetest.FuzzInput{Route: idx, Seg: seg, Query: query, Body: body}, h.logs,
			func(r *http.Request) edgetest.Result { r.Header.Set("X-API-Key", testKey); return h.serve(r) })
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		switch {
		case !ok:
		case len(res.Body) > 0 && !json.Valid(res.Body):
			t.Fatalf("%s: %d with a body that is not JSON: %.200q", what, res.Status, res.Body)
		case res.Status >= 500 && strings.Contains(string(res.Body), fake.ErrNotSet.Error()):
			t.Fatalf("%s: a %d carries its cause: %s", what, res.Status, res.Body)
		case res.Status >= 400 && (json.Unmarshal(res.Body, &e) != nil || e.Code != res.Status || e.Message == ""):
			t.Fatalf("%s: %d without E2B's error body: %s", what, res.Status, res.Body)
		}
	})
}

// FuzzStartBuild sends arbitrary bodies to POST /v2/templates/{id}/builds/{buildID} (the
// steps of the SDK's Template builder) over a fake service that has one upload stored.
// Whatever arrives: the answer is 202 or a 400 in E2B's error shape, and a build that
// reaches the service has one parent, steps of Warren's five kinds with their arguments,
// and COPY steps that read the stored archive from inside it.
func FuzzStartBuild(f *testing.F) {
	f.Add([]byte(`{"fromTemplate":"base","startCmd":"srv","readyCmd":"[ -n \"$(ss -Htuln sport = :80)\" ]","steps":[{"type":"RUN","args":["apt-get install -y x","root"]},{"type":"COPY","args":["a","/b","",""],"filesHash":"` + sdkHash + `"},{"type":"ENV","args":["A","1"]},{"type":"USER","args":["u"]},{"type":"RUN","args":["make","root"],"force":true}],"force":false}`))
	f.Add([]byte(`{"fromImage":"debian:bookworm","steps":[{"type":"WORKDIR","args":["/x"]},{"type":"copy","args":["../x","/y"],"filesHash":"00"}]}`))
	f.Add([]byte(`{"fromTemplate":"base","fromImage":"x","steps":[{"type":"RUN","args":[]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h := newBuildHarness(t, Config{})
		h.srv.up.remember(testTeam.TeamID, ownTpl.ID, sdkHash, strings.Repeat("0", 64))
		h.tpl.StartBuildFn = func(_ context.Context, _ domain.Principal, _, id string, spec domain.BuildSpec) (*domain.Build, error) {
			if (spec.FromTemplate == "") == (spec.FromImage == "") || spec.Name != ownTpl.ID {
				t.Fatalf("spec %+v: want one parent and the template's name", spec)
			}
			for i, s := range spec.Steps {
				n := len(s.Args)
				ok := false
				switch s.Kind {
				case domain.StepRun, domain.StepWorkdir, domain.StepUser:
					ok = n == 1 && s.Args[0] != ""
				case domain.StepEnv:
					ok = n > 0 && n%2 == 0
				case domain.StepCopy:
					ok = n >= 2 && n <= 3 && s.FilesHash == strings.Repeat("0", 64) && !strings.HasPrefix(s.Args[0], "/") &&
						!strings.HasPrefix(path.Clean(s.Args[0]), "../") && path.Clean(s.Args[0]) != ".."
				}
				if !ok {
					t.Fatalf("step %d: %+v", i, s)
				}
			}
			return &domain.Build{ID: id}, nil
		}
		res := h.serve(h.req("POST", "/v2/templates/my-tpl/builds/b1", body))
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		switch {
		case res.Status == http.StatusAccepted:
		case res.Status == http.StatusBadRequest || res.Status == http.StatusRequestEntityTooLarge:
			if json.Unmarshal(res.Body, &e) != nil || e.Code != res.Status || e.Message == "" {
				t.Fatalf("%d without E2B's error body: %s", res.Status, res.Body)
			}
		default:
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
	})
}
