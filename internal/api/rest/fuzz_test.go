package rest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
)

// FuzzRoutes sends arbitrary path segments, query strings and bodies to every /v1 route,
// over fakes whose unset methods fail with an internal error. Whatever arrives, the
// answer is documented for the route in openapi.json and valid against its schema (the
// harness checks every response), a 500 carries only the generic message (never the
// cause), and nothing panics.
func FuzzRoutes(f *testing.F) {
	var routes []string
	for _, rt := range routeTable {
		routes = append(routes, rt.method+" "+rt.path)
	}
	edgetest.SeedRoutes(f, routes,
		edgetest.FuzzInput{Route: 3, Seg: "x", Query: "timeout=abc", Body: []byte(`{"template":"base","timeout":-1,"env":{"":"x"}}`)},
		edgetest.FuzzInput{Route: 4, Seg: "../../etc", Query: "state=nope&limit=-5&metadata=%ff", Body: []byte(`[`)},
		edgetest.FuzzInput{Route: 8, Seg: "abcdefghij0123456789", Body: []byte(`{"cmd":"true","timeout":1e309}`)})
	f.Fuzz(func(t *testing.T, idx uint8, seg, query string, body []byte) {
		h := newHarness(t)
		what, res, _ := edgetest.FuzzRoute(t, routes, edgetest.FuzzInput{Route: idx, Seg: seg, Query: query, Body: body}, h.logs,
			func(r *http.Request) edgetest.Result {
				r.Header.Set("Authorization", "Bearer "+testKey)
				return h.serve(r)
			})
		if res.Status >= 500 && strings.Contains(string(res.Body), errNotSet.Error()) {
			t.Fatalf("%s: a 500 carries its cause: %s", what, res.Body)
		}
	})
}
