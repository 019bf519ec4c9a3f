package e2b

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
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
