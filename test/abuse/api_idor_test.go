package abuse

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/e2b"
	"github.com/warren-sh/warren/test/internal/harness"
)

// IDOR probes: team B, holding a key with every scope of its own team, aims at team A's
// sandbox, processes, files, code contexts, key, user, team and invoices by id, on every
// route that names one (/v1 and the E2B API) and through the sandbox proxy with B's own
// sandbox's tokens. Each must be refused (404; 403 where a route says so) and A's things
// must be untouched afterwards. The cases are tables keyed by route; a route of
// openapi.json or of the E2B API that names an id and has no case fails its probe, so a
// new route cannot be forgotten.

func init() {
	register(
		probe{name: "api/idor-sandbox-routes", run: probeIDORSandboxRoutes},
		probe{name: "api/idor-tenancy-routes", run: probeIDORTenancyRoutes},
		probe{name: "api/idor-e2b-routes", run: probeIDORE2BRoutes},
		probe{name: "api/idor-envd-traffic", run: probeIDOREnvdTraffic},
		probe{name: "api/idor-code-contexts", runtimes: []string{"gvisor"}, run: probeIDORCodeContexts},
	)
}

// idorWorld is team A's things and team B's key, made once per server.
type idorWorld struct {
	aTeam, aKey, aKeyID string
	bTeam, bKey, bKeyID string
	aUser               string // a member of team A
	sbA                 string // A's sandbox, of the runtime under attack
	endsA               string // its ends_at, which B must not move
	pidA                int    // a background process of A's
	secret              string // /tmp/secret in sbA
	sbB                 string // B's own sandbox, for B's tokens
	ciA, ctxA           string // A's code-interpreter sandbox and a context in it (lazily, gvisor)
	snapA               string // A's snapshot of sbA (gvisor; runc cannot save a sandbox)
	tplA, buildA        string // A's own template and its build (ids nobody has without the layer builder)
}

var worlds = map[*harness.Server]*idorWorld{}

// world returns the server's IDOR world, making it on first use. Its sandboxes end with
// the server's test.
func (e *env) world(t *testing.T) *idorWorld {
	t.Helper()
	if w := worlds[e.S]; w != nil {
		return w
	}
	w := &idorWorld{secret: "team-a-secret-" + uniq()}
	w.aTeam, w.aKey, w.aKeyID = e.newTeam(t, "idor team a "+uniq())
	w.bTeam, w.bKey, w.bKeyID = e.newTeam(t, "idor team b "+uniq())
	w.aUser = e.newUser(t, w.aTeam, "a-"+uniq()+"@example.test", "a-password-"+uniq(), "member")
	srv := e.S
	for _, sb := range []struct {
		id  *string
		key string
	}{{&w.sbA, w.aKey}, {&w.sbB, w.bKey}} {
		var v v1Sandbox
		code, raw := send(t, "POST", srv.URL+"/v1/sandboxes", bearer(sb.key), map[string]any{"runtime": e.Runtime, "timeout": 3600})
		mustJSON(t, "create", code, raw, 201, &v)
		*sb.id = v.ID
		key := sb.key
		srv.T.Cleanup(func() { send(srv.T, "DELETE", srv.URL+"/v1/sandboxes/"+v.ID, bearer(key), nil) })
	}
	var v v1Sandbox
	code, raw := send(t, "GET", srv.URL+"/v1/sandboxes/"+w.sbA, bearer(w.aKey), nil)
	mustJSON(t, "A's sandbox", code, raw, 200, &v)
	w.endsA = v.EndsAt
	code, raw = send(t, "PUT", srv.URL+"/v1/sandboxes/"+w.sbA+"/files/content?path=/tmp/secret", bearer(w.aKey), w.secret)
	mustJSON(t, "A writes /tmp/secret", code, raw, 200, nil)
	var p struct {
		PID int `json:"pid"`
	}
	code, raw = send(t, "POST", srv.URL+"/v1/sandboxes/"+w.sbA+"/commands", bearer(w.aKey), map[string]any{"cmd": "sleep 7200", "background": true})
	mustJSON(t, "A starts a process", code, raw, 201, &p)
	w.pidA = p.PID
	w.snapA = "snap_0000000000000000" // a snapshot id nobody has, where runc cannot make one
	if e.Runtime == "gvisor" {
		var s struct {
			ID string `json:"id"`
		}
		code, raw = send(t, "POST", srv.URL+"/v1/sandboxes/"+w.sbA+"/snapshots", bearer(w.aKey), map[string]any{"name": "idor-a-" + uniq()})
		mustJSON(t, "A snapshots its sandbox", code, raw, 201, &s)
		w.snapA = s.ID
		srv.T.Cleanup(func() { send(srv.T, "DELETE", srv.URL+"/v1/snapshots/"+s.ID, bearer(w.aKey), nil) })
	}
	w.tplA, w.buildA = "idor-a-"+uniq(), "bld_0000000000000000"
	var tb struct {
		Build struct {
			ID string `json:"id"`
		} `json:"build"`
	}
	code, raw = send(t, "POST", srv.URL+"/v1/templates", bearer(w.aKey), map[string]any{"name": w.tplA, "from_template": "base"})
	switch code {
	case 202:
		mustJSON(t, "A builds a template", code, raw, 202, &tb)
		w.buildA = tb.Build.ID
	case 503: // no layer builder on this server: the probes use ids nobody has
	default:
		t.Fatalf("A builds a template: %d %s", code, raw)
	}
	worlds[e.S] = w
	return w
}

// interpreter gives A a code-interpreter sandbox with a context holding x = 42.
func (e *env) interpreter(t *testing.T, w *idorWorld) {
	t.Helper()
	if w.ciA != "" {
		return
	}
	e.S.WaitTemplate("code-interpreter", 15*time.Minute)
	srv := e.S
	var v v1Sandbox
	code, raw := send(t, "POST", srv.URL+"/v1/sandboxes", bearer(w.aKey), map[string]any{"template": "code-interpreter", "runtime": e.Runtime, "timeout": 3600})
	mustJSON(t, "A's code-interpreter sandbox", code, raw, 201, &v)
	srv.T.Cleanup(func() { send(srv.T, "DELETE", srv.URL+"/v1/sandboxes/"+v.ID, bearer(w.aKey), nil) })
	var c struct {
		ID string `json:"id"`
	}
	code, raw = send(t, "POST", srv.URL+"/v1/sandboxes/"+v.ID+"/contexts", bearer(w.aKey), map[string]any{"language": "python"})
	mustJSON(t, "A's code context", code, raw, 201, &c)
	code, raw = send(t, "POST", srv.URL+"/v1/sandboxes/"+v.ID+"/execute", bearer(w.aKey), map[string]any{"code": "x = 42", "context_id": c.ID})
	mustJSON(t, "A sets x", code, raw, 200, nil)
	w.ciA, w.ctxA = v.ID, c.ID
}

// untouched fails t for anything of A's that B's attempts changed.
func (e *env) untouched(t *testing.T, w *idorWorld) {
	t.Helper()
	api := func(method, path string, out any) {
		t.Helper()
		code, raw := send(t, method, e.S.URL+path, bearer(w.aKey), nil)
		mustJSON(t, "A: "+method+" "+path, code, raw, 200, out)
	}
	var sb v1Sandbox
	api("GET", "/v1/sandboxes/"+w.sbA, &sb)
	if sb.State != "running" || sb.EndsAt != w.endsA {
		t.Errorf("A's sandbox changed: state %s, ends_at %s (was %s)", sb.State, sb.EndsAt, w.endsA)
	}
	if len(sb.Network.AllowOut)+len(sb.Network.DenyOut) != 0 {
		t.Errorf("A's sandbox's network policy changed: %+v", sb.Network)
	}
	code, raw := send(t, "GET", e.S.URL+"/v1/sandboxes/"+w.sbA+"/files/content?path=/tmp/secret", bearer(w.aKey), nil)
	if code != 200 || string(raw) != w.secret {
		t.Errorf("A's /tmp/secret changed: %d %q", code, raw)
	}
	for _, p := range []string{"/tmp/idor-pwned", "/tmp/idor-dir", "/tmp/idor-moved"} {
		if e.exists(t, w.aKey, w.sbA, p) {
			t.Errorf("B planted %s in A's sandbox", p)
		}
	}
	var procs struct {
		Processes []struct {
			PID int `json:"pid"`
		} `json:"processes"`
	}
	api("GET", "/v1/sandboxes/"+w.sbA+"/processes", &procs)
	alive := false
	for _, p := range procs.Processes {
		alive = alive || p.PID == w.pidA
	}
	if !alive {
		t.Errorf("A's process %d is gone", w.pidA)
	}
	var users struct {
		Users []struct {
			ID, Name, Role string
		} `json:"users"`
	}
	api("GET", "/v1/users", &users)
	found := false
	for _, u := range users.Users {
		if u.ID == w.aUser {
			found = true
			if u.Name != "member user" || u.Role != "member" {
				t.Errorf("A's user changed: %+v", u)
			}
		}
	}
	if !found {
		t.Errorf("A's user %s is gone", w.aUser)
	}
	var team struct {
		Name string `json:"name"`
	}
	api("GET", "/v1/teams/"+w.aTeam, &team)
	if !strings.HasPrefix(team.Name, "idor team a ") {
		t.Errorf("A's team was renamed to %q", team.Name)
	}
	if strings.HasPrefix(w.snapA, "snap_") && w.snapA != "snap_0000000000000000" {
		api("GET", "/v1/snapshots/"+w.snapA, nil)
	}
	if w.buildA != "bld_0000000000000000" {
		api("GET", "/v1/templates/"+w.tplA, nil)
	}
	if w.ciA != "" {
		code, raw := send(t, "POST", e.S.URL+"/v1/sandboxes/"+w.ciA+"/execute", bearer(w.aKey), map[string]any{"code": "x", "context_id": w.ctxA})
		if code != 200 || !strings.Contains(string(raw), "42") {
			t.Errorf("A's code context lost its state: %d %s", code, raw)
		}
	}
}

// idorCase is one attempt of B's on a thing of A's.
type idorCase struct {
	route  string // "METHOD /path" in openapi.json or e2b.Routes(); "" for an extra attempt
	method string // defaults to route's method
	target string // path and query, naming A's things
	body   any
	h      hdr   // extra headers
	allow  []int // refusals; nil means 404
	// leaks, when set, inspects an allowed answer and says what of A's it shows ("" = nothing).
	leaks func(body []byte) string
}

// attack runs cases against base with auth, and returns how many were refused.
func attack(t *testing.T, w *idorWorld, base string, auth hdr, cases []idorCase) int {
	t.Helper()
	refused := 0
	for _, c := range cases {
		method := c.method
		if method == "" {
			method, _, _ = strings.Cut(c.route, " ")
		}
		allow := c.allow
		if allow == nil {
			allow = []int{404}
		}
		code, raw := send(t, method, base+c.target, auth.merge(c.h), c.body)
		ok := false
		for _, a := range allow {
			ok = ok || code == a
		}
		switch {
		case !ok:
			t.Errorf("B: %s %s = %d %s; want %v", method, c.target, code, raw, allow)
		case strings.Contains(string(raw), w.secret):
			t.Errorf("B: %s %s leaked A's secret: %s", method, c.target, raw)
		case c.leaks != nil && c.leaks(raw) != "":
			t.Errorf("B: %s %s shows A's %s: %s", method, c.target, c.leaks(raw), raw)
		default:
			refused++
		}
	}
	return refused
}

// covered fails t for each route in routes that names an id (a {param}) and has no case.
func covered(t *testing.T, routes []string, cases []idorCase) {
	t.Helper()
	have := map[string]bool{}
	for _, c := range cases {
		have[c.route] = true
	}
	for _, r := range routes {
		if strings.Contains(r, "{") && !have[r] {
			t.Errorf("route %s names an id but has no IDOR case: add one to test/abuse/api_idor_test.go", r)
		}
	}
}

// openAPIRoutes lists openapi.json's operations as "METHOD /path".
func openAPIRoutes(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(harness.RepoRoot(), "internal", "api", "rest", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for path, ops := range doc.Paths {
		for m := range ops {
			switch m {
			case "get", "put", "post", "delete", "patch", "head", "options":
				out = append(out, strings.ToUpper(m)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

func withPrefix(routes []string, prefix string, keep bool) []string {
	var out []string
	for _, r := range routes {
		_, path, _ := strings.Cut(r, " ")
		if strings.HasPrefix(path, prefix) == keep {
			out = append(out, r)
		}
	}
	return out
}

// wsUpgrade are the headers of a WebSocket handshake.
var wsUpgrade = hdr{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}

func sandboxCases(w *idorWorld) []idorCase {
	sb := "/v1/sandboxes/" + w.sbA
	proc := fmt.Sprintf("%s/processes/%d", sb, w.pidA)
	ctx := "ctx0"
	if w.ctxA != "" {
		ctx = w.ctxA
	}
	r := func(route, target string, body any) idorCase {
		return idorCase{route: route, target: target, body: body}
	}
	return []idorCase{
		r("GET /v1/sandboxes/{id}", sb, nil),
		r("DELETE /v1/sandboxes/{id}", sb, nil),
		r("POST /v1/sandboxes/{id}/timeout", sb+"/timeout", map[string]any{"timeout": 1}),
		r("PUT /v1/sandboxes/{id}/network", sb+"/network", map[string]any{"deny_out": []string{"0.0.0.0/0"}}),
		r("POST /v1/sandboxes/{id}/pause", sb+"/pause", nil),
		r("POST /v1/sandboxes/{id}/resume", sb+"/resume", nil),
		r("POST /v1/sandboxes/{id}/commands", sb+"/commands", map[string]any{"cmd": "cat /tmp/secret; touch /tmp/idor-pwned"}),
		r("POST /v1/sandboxes/{id}/execute", sb+"/execute", map[string]any{"code": "open('/tmp/idor-pwned', 'w')"}),
		r("POST /v1/sandboxes/{id}/contexts", sb+"/contexts", map[string]any{}),
		r("GET /v1/sandboxes/{id}/contexts", sb+"/contexts", nil),
		r("DELETE /v1/sandboxes/{id}/contexts/{context_id}", sb+"/contexts/"+ctx, nil),
		r("POST /v1/sandboxes/{id}/contexts/{context_id}/restart", sb+"/contexts/"+ctx+"/restart", nil),
		r("PUT /v1/sandboxes/{id}/files/content", sb+"/files/content?path=/tmp/secret", "overwritten by B"),
		r("GET /v1/sandboxes/{id}/files/content", sb+"/files/content?path=/tmp/secret", nil),
		r("GET /v1/sandboxes/{id}/files", sb+"/files?path=/tmp", nil),
		r("DELETE /v1/sandboxes/{id}/files", sb+"/files?path=/tmp/secret", nil),
		r("POST /v1/sandboxes/{id}/files/dir", sb+"/files/dir?path=/tmp/idor-dir", nil),
		r("GET /v1/sandboxes/{id}/files/stat", sb+"/files/stat?path=/tmp/secret", nil),
		r("POST /v1/sandboxes/{id}/files/move", sb+"/files/move", map[string]any{"from": "/tmp/secret", "to": "/tmp/idor-moved"}),
		r("GET /v1/sandboxes/{id}/metrics", sb+"/metrics", nil),
		r("GET /v1/sandboxes/{id}/logs", sb+"/logs", nil),
		r("GET /v1/sandboxes/{id}/ports", sb+"/ports", nil),
		{route: "GET /v1/sandboxes/{id}/terminal", target: sb + "/terminal", h: wsUpgrade},
		r("GET /v1/sandboxes/{id}/processes", sb+"/processes", nil),
		r("GET /v1/sandboxes/{id}/processes/{pid}/events", proc+"/events", nil),
		r("POST /v1/sandboxes/{id}/processes/{pid}/stdin", proc+"/stdin", map[string]any{"data": "x\n"}),
		r("POST /v1/sandboxes/{id}/processes/{pid}/stdin/close", proc+"/stdin/close", nil),
		r("POST /v1/sandboxes/{id}/processes/{pid}/signal", proc+"/signal", map[string]any{"signal": "SIGKILL"}),
		r("POST /v1/sandboxes/{id}/fork", sb+"/fork", map[string]any{"count": 1}),
		r("POST /v1/sandboxes/{id}/snapshots", sb+"/snapshots", map[string]any{"name": "b-of-a"}),
	}
}

// probeIDORSandboxRoutes: B's key on every /v1 route under A's sandbox.
func probeIDORSandboxRoutes(t *testing.T, e *env) string {
	w := e.world(t)
	cases := sandboxCases(w)
	covered(t, withPrefix(openAPIRoutes(t), "/v1/sandboxes/{id}", true), cases)
	n := attack(t, w, e.S.URL, bearer(w.bKey), cases)
	// B's listing does not show A's sandbox either.
	code, raw := send(t, "GET", e.S.URL+"/v1/sandboxes", bearer(w.bKey), nil)
	if code != 200 || strings.Contains(string(raw), w.sbA) {
		t.Errorf("B's listing: %d %s", code, raw)
	}
	e.untouched(t, w)
	return fmt.Sprintf("%d/%d /v1 sandbox routes refused B (404), listing clean, A untouched", n, len(cases))
}

// probeIDORTenancyRoutes: B's key on A's key, user, team and invoices, by path and by
// team_id; and B cannot make a key or a user in team A.
func probeIDORTenancyRoutes(t *testing.T, e *env) string {
	w := e.world(t)
	period := time.Now().UTC().Format("2006-01")
	refusedOr403 := []int{403, 404}
	noRows := func(b []byte) string {
		var rep struct {
			Rows []json.RawMessage `json:"rows"`
		}
		if json.Unmarshal(b, &rep) == nil && len(rep.Rows) > 0 {
			return "usage rows"
		}
		return ""
	}
	node := serverNode(t, e)
	cases := []idorCase{
		// Nodes are the platform's: a team's key with every scope may not list, drain or
		// undrain them.
		{method: "GET", target: "/v1/nodes", allow: []int{403}},
		{route: "POST /v1/nodes/{name}/drain", target: "/v1/nodes/" + node + "/drain", allow: []int{403}},
		{route: "POST /v1/nodes/{name}/undrain", target: "/v1/nodes/" + node + "/undrain", allow: []int{403}},
		{route: "DELETE /v1/keys/{id}", target: "/v1/keys/" + w.aKeyID},
		{route: "GET /v1/teams/{id}", target: "/v1/teams/" + w.aTeam, allow: refusedOr403},
		{route: "PATCH /v1/teams/{id}", target: "/v1/teams/" + w.aTeam, body: map[string]any{"name": "pwned by b"}, allow: refusedOr403},
		{route: "PATCH /v1/users/{id}", target: "/v1/users/" + w.aUser, body: map[string]any{"name": "pwned", "role": "viewer"}},
		{route: "DELETE /v1/users/{id}", target: "/v1/users/" + w.aUser},
		{route: "GET /v1/invoices/{period}", target: "/v1/invoices/" + period + "?team_id=" + w.aTeam},
		{route: "GET /v1/snapshots/{id}", target: "/v1/snapshots/" + w.snapA},
		{route: "DELETE /v1/snapshots/{id}", target: "/v1/snapshots/" + w.snapA},
		{method: "GET", target: "/v1/snapshots?sandbox_id=" + w.sbA, allow: []int{200}, leaks: func(b []byte) string {
			if strings.Contains(string(b), w.snapA) || strings.Contains(string(b), w.sbA) {
				return "snapshot"
			}
			return ""
		}},
		{route: "GET /v1/templates/{id}", target: "/v1/templates/" + w.tplA},
		{route: "DELETE /v1/templates/{id}", target: "/v1/templates/" + w.tplA},
		{route: "GET /v1/templates/{id}/builds", target: "/v1/templates/" + w.tplA + "/builds"},
		{route: "GET /v1/templates/{id}/builds/{build}", target: "/v1/templates/" + w.tplA + "/builds/" + w.buildA},
		{route: "GET /v1/templates/{id}/builds/{build}/logs", target: "/v1/templates/" + w.tplA + "/builds/" + w.buildA + "/logs"},
		{method: "GET", target: "/v1/templates/" + w.tplA + "/builds/" + w.buildA + "/logs", h: hdr{"Accept": "text/event-stream"}},
		{method: "GET", target: "/v1/templates", allow: []int{200}, leaks: func(b []byte) string {
			if strings.Contains(string(b), w.tplA) {
				return "template"
			}
			return ""
		}},
		// Starting a sandbox from A's template, or building on it.
		{method: "POST", target: "/v1/sandboxes", body: map[string]any{"template": w.tplA}, allow: []int{400, 404}},
		{method: "POST", target: "/v1/templates", body: map[string]any{"name": "b-" + uniq(), "from_template": w.tplA}, allow: []int{400, 404, 503}},
		// Starting a sandbox from A's snapshot, by id.
		{method: "POST", target: "/v1/sandboxes", body: map[string]any{"snapshot": w.snapA}, allow: []int{400, 404}},
		// Ids in the query and the body.
		{method: "GET", target: "/v1/users?team_id=" + w.aTeam},
		{method: "GET", target: "/v1/usage?team_id=" + w.aTeam},
		{method: "GET", target: "/v1/usage?sandbox_id=" + w.sbA, allow: []int{200, 404}, leaks: noRows},
		// The audit log answers a non-admin naming another team with the caller's own
		// entries (auth.Audit, by design); nothing of A's may be among them.
		{method: "GET", target: "/v1/audit?team_id=" + w.aTeam, allow: []int{200, 404}, leaks: onlyActor(w.bKeyID)},
		{method: "GET", target: "/v1/invoices?team_id=" + w.aTeam},
		{method: "POST", target: "/v1/keys", body: map[string]any{"name": "b-in-a", "team_id": w.aTeam}, allow: refusedOr403},
		{method: "POST", target: "/v1/users", body: map[string]any{"team_id": w.aTeam, "email": "b-" + uniq() + "@example.test",
			"password": "b-password-" + uniq(), "role": "owner"}, allow: refusedOr403},
	}
	covered(t, withPrefix(openAPIRoutes(t), "/v1/sandboxes/{id}", false), cases)
	n := attack(t, w, e.S.URL, bearer(w.bKey), cases)
	code, raw := send(t, "GET", e.S.URL+"/v1/teams", bearer(w.bKey), nil)
	if code != 200 || strings.Contains(string(raw), w.aTeam) {
		t.Errorf("B's team listing: %d %s", code, raw)
	}
	e.untouched(t, w) // A's key still works: untouched uses it
	if state := nodeState(t, e, node); state != "ready" {
		t.Errorf("the server's node is %q after B's drain attempts, want ready", state)
	}
	return fmt.Sprintf("%d/%d node, key, user, team, invoice, usage and audit attempts refused B (404/403; audit shows B its own entries only), A untouched", n, len(cases))
}

// serverNode returns the name of the server's node, as its platform admin lists it.
func serverNode(t *testing.T, e *env) string {
	t.Helper()
	var l struct {
		Nodes []struct{ Name string } `json:"nodes"`
	}
	code, raw := send(t, "GET", e.S.URL+"/v1/nodes", bearer(e.S.Key), nil)
	if code != 200 || json.Unmarshal(raw, &l) != nil || len(l.Nodes) != 1 {
		t.Fatalf("GET /v1/nodes as the platform admin: %d %s", code, raw)
	}
	return l.Nodes[0].Name
}

// nodeState returns the state of the server's node name, as its platform admin sees it.
func nodeState(t *testing.T, e *env, name string) string {
	t.Helper()
	var l struct {
		Nodes []struct{ Name, State string } `json:"nodes"`
	}
	code, raw := send(t, "GET", e.S.URL+"/v1/nodes", bearer(e.S.Key), nil)
	if code != 200 || json.Unmarshal(raw, &l) != nil {
		t.Fatalf("GET /v1/nodes as the platform admin: %d %s", code, raw)
	}
	for _, n := range l.Nodes {
		if n.Name == name {
			return n.State
		}
	}
	return "missing"
}

// onlyActor flags audit entries of any actor but keyID.
func onlyActor(keyID string) func([]byte) string {
	return func(b []byte) string {
		var l struct {
			Entries []struct {
				ActorID string `json:"actor_id"`
				Action  string `json:"action"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(b, &l); err != nil {
			return "an unreadable answer"
		}
		for _, e := range l.Entries {
			if e.ActorID != keyID {
				return "audit entry " + e.Action + " by " + e.ActorID
			}
		}
		return ""
	}
}

// probeIDORE2BRoutes: B's key on every E2B API route that names A's sandbox.
func probeIDORE2BRoutes(t *testing.T, e *env) string {
	w := e.world(t)
	id := w.sbA
	notA := func(b []byte) string {
		if strings.Contains(string(b), id) {
			return "sandbox"
		}
		return ""
	}
	r := func(route, target string, body any) idorCase {
		return idorCase{route: route, target: target, body: body}
	}
	cases := []idorCase{
		r("GET /sandboxes/{id}", "/sandboxes/"+id, nil),
		r("DELETE /sandboxes/{id}", "/sandboxes/"+id, nil),
		r("POST /v2/sandboxes/{id}/connect", "/v2/sandboxes/"+id+"/connect", map[string]any{"timeout": 1}),
		r("POST /sandboxes/{id}/connect", "/sandboxes/"+id+"/connect", map[string]any{}),
		r("POST /sandboxes/{id}/timeout", "/sandboxes/"+id+"/timeout", map[string]any{"timeout": 1}),
		r("POST /sandboxes/{id}/refreshes", "/sandboxes/"+id+"/refreshes", map[string]any{"duration": 3600}),
		r("GET /sandboxes/{id}/metrics", "/sandboxes/"+id+"/metrics", nil),
		r("GET /sandboxes/{id}/logs", "/sandboxes/"+id+"/logs", nil),
		r("GET /v2/sandboxes/{id}/logs", "/v2/sandboxes/"+id+"/logs", nil),
		r("POST /sandboxes/{id}/pause", "/sandboxes/"+id+"/pause", nil),
		r("POST /sandboxes/{id}/resume", "/sandboxes/"+id+"/resume", map[string]any{}),
		r("POST /sandboxes/{id}/fork", "/sandboxes/"+id+"/fork", map[string]any{}),
		r("POST /sandboxes/{id}/snapshots", "/sandboxes/"+id+"/snapshots", map[string]any{}),
		r("PUT /sandboxes/{id}/network", "/sandboxes/"+id+"/network", map[string]any{"denyOut": []string{"0.0.0.0/0"}}),
		// A's snapshot: deleting it (E2B deletes snapshots as templates), listing it,
		// starting a sandbox from it.
		{method: "DELETE", target: "/templates/" + w.snapA},
		{method: "GET", target: "/snapshots?sandboxID=" + id, allow: []int{200}, leaks: func(b []byte) string {
			if strings.Contains(string(b), w.snapA) {
				return "snapshot"
			}
			return notA(b)
		}},
		{method: "POST", target: "/v2/sandboxes", body: map[string]any{"templateID": w.snapA}, allow: []int{400, 404}},
		// Templates are the server's, not a team's: nobody may delete the built-in ones.
		{route: "DELETE /templates/{id}", target: "/templates/base", allow: []int{403, 404, 501}},
		{route: "GET /templates/{id}/{sub}", target: "/templates/aliases/base", allow: []int{200}},
		// Template builds name a template of the caller's own: B reaches none of A's,
		// nor finds it by alias or in the listing.
		{route: "GET /templates/{id}/files/{hash}", target: "/templates/" + w.tplA + "/files/" + strings.Repeat("ab", 32)},
		{route: "PUT /templates/{id}/files/{hash}", target: "/templates/" + w.tplA + "/files/" + strings.Repeat("ab", 32), body: "x", allow: []int{401}},
		{route: "POST /v2/templates/{id}/builds/{buildID}", target: "/v2/templates/" + w.tplA + "/builds/" + w.buildA,
			body: map[string]any{"fromTemplate": "base"}},
		{route: "GET /templates/{id}/builds/{buildID}/status", target: "/templates/" + w.tplA + "/builds/" + w.buildA + "/status"},
		{method: "GET", target: "/templates/aliases/" + w.tplA},
		{method: "DELETE", target: "/templates/" + w.tplA},
		// Tags name a template of the caller's own: B neither lists, assigns nor removes A's.
		{method: "GET", target: "/templates/" + w.tplA + "/tags"},
		{method: "POST", target: "/templates/tags", body: map[string]any{"target": w.tplA, "tags": []string{"b"}}, allow: []int{404}},
		{method: "POST", target: "/templates/tags", body: map[string]any{"target": w.tplA + ":v1", "tags": []string{"b"}}, allow: []int{404}},
		{method: "DELETE", target: "/templates/tags", body: map[string]any{"name": w.tplA, "tags": []string{"v1"}}, allow: []int{404}},
		{method: "POST", target: "/v2/sandboxes", body: map[string]any{"templateID": w.tplA + ":v1"}, allow: []int{400, 404}},
		{method: "GET", target: "/templates", allow: []int{200}, leaks: func(b []byte) string {
			if strings.Contains(string(b), w.tplA) {
				return "template"
			}
			return ""
		}},
		// Ids in the query.
		{method: "GET", target: "/sandboxes/metrics?sandbox_ids=" + id, allow: []int{200, 404}, leaks: notA},
		{method: "GET", target: "/v2/sandboxes", allow: []int{200}, leaks: notA},
		{method: "GET", target: "/sandboxes", allow: []int{200}, leaks: notA},
	}
	covered(t, e2b.Routes(), cases)
	n := attack(t, w, e.S.URL, e2bKey(w.bKey), cases)
	// B's own build may not start from A's template.
	var rb struct{ TemplateID, BuildID string }
	code, raw := send(t, "POST", e.S.URL+"/v3/templates", e2bKey(w.bKey), map[string]any{"name": "b-" + uniq()})
	switch {
	case code == 202 && json.Unmarshal(raw, &rb) == nil:
		defer send(t, "DELETE", e.S.URL+"/templates/"+rb.TemplateID, e2bKey(w.bKey), nil)
		code, raw = send(t, "POST", e.S.URL+"/v2/templates/"+rb.TemplateID+"/builds/"+rb.BuildID, e2bKey(w.bKey),
			map[string]any{"fromTemplate": w.tplA})
		if code != 404 && code != 400 {
			t.Errorf("B builds on A's template: %d %s; want 404", code, raw)
		}
		t.Logf("B's build on A's template: %d %s", code, raw)
	case code != 503: // a server without the layer builder refuses builds
		t.Errorf("B registers a build: %d %s", code, raw)
	}
	code, raw = send(t, "GET", e.S.URL+"/v1/templates", bearer(w.aKey), nil)
	if code != 200 || !strings.Contains(string(raw), `"base"`) {
		t.Errorf("the base template is gone after B's attempt: %d %s", code, raw)
	}
	e.untouched(t, w)
	return fmt.Sprintf("%d/%d E2B API attempts refused B (404; built-in templates are global, template builds name the caller's own), A untouched", n, len(cases))
}

// probeIDOREnvdTraffic: B's own sandbox's tokens do not open A's sandbox through the
// proxy, on the agent's port or (gVisor) the code interpreter's.
func probeIDOREnvdTraffic(t *testing.T, e *env) string {
	w := e.world(t)
	envdB, trafficB := e.envdToken(t, w.bKey, w.sbB)
	rpc := hdr{"Content-Type": "application/json", "Connect-Protocol-Version": "1", "X-Access-Token": envdB}
	type try struct {
		name, method, path string
		port               int
		h                  hdr
		body               any
		want               int
	}
	tries := []try{
		{"Process.Start", "POST", "/process.Process/Start", 49983, rpc,
			map[string]any{"process": map[string]any{"cmd": "/bin/touch", "args": []string{"/tmp/idor-pwned"}}}, 401},
		{"Process.List", "POST", "/process.Process/List", 49983, rpc, map[string]any{}, 401},
		{"Filesystem.ListDir", "POST", "/filesystem.Filesystem/ListDir", 49983, rpc, map[string]any{"path": "/tmp"}, 401},
		{"Filesystem.Remove", "POST", "/filesystem.Filesystem/Remove", 49983, rpc, map[string]any{"path": "/tmp/secret"}, 401},
		{"GET /files", "GET", "/files?path=/tmp/secret", 49983, hdr{"X-Access-Token": envdB}, nil, 401},
		{"POST /files", "POST", "/files?path=/tmp/idor-pwned", 49983, hdr{"X-Access-Token": envdB, "Content-Type": "application/octet-stream"}, "pwned", 401},
		{"Host-routed Process.List", "POST", "/process.Process/List", 49983,
			rpc.merge(hdr{"Host": "49983-" + w.sbA + ".sandbox.example.test"}), map[string]any{}, 401},
	}
	sandboxes := map[int]string{49983: w.sbA}
	if e.Runtime == "gvisor" {
		e.interpreter(t, w)
		sandboxes[49999] = w.ciA
		for _, h := range []hdr{{"X-Access-Token": envdB}, {"E2B-Traffic-Access-Token": trafficB}, {"X-Access-Token": envdB, "E2B-Traffic-Access-Token": trafficB}} {
			tries = append(tries, try{"interpreter /execute with B's " + strings.Join(keys(h), "+"), "POST", "/execute", 49999,
				h.merge(hdr{"Content-Type": "application/json"}), map[string]any{"code": "x = 'pwned'"}, 401})
		}
		tries = append(tries, try{"interpreter /contexts with B's traffic token", "GET", "/contexts", 49999,
			hdr{"E2B-Traffic-Access-Token": trafficB}, nil, 401})
	}
	refused := 0
	for _, tr := range tries {
		code, raw := e.proxied(t, tr.method, sandboxes[tr.port], tr.port, tr.path, tr.h, tr.body)
		if code != tr.want || strings.Contains(string(raw), w.secret) {
			t.Errorf("B's token, %s on A's sandbox: %d %s; want %d", tr.name, code, raw, tr.want)
			continue
		}
		refused++
	}
	e.untouched(t, w)
	return fmt.Sprintf("%d/%d proxied calls to A's sandbox with B's envd/traffic tokens: 401, A untouched", refused, len(tries))
}

// probeIDORCodeContexts: A's code contexts in a real code-interpreter sandbox survive B's
// attempts to list, create, restart and delete them, and keep their state.
func probeIDORCodeContexts(t *testing.T, e *env) string {
	w := e.world(t)
	e.interpreter(t, w)
	sb := "/v1/sandboxes/" + w.ciA
	cases := []idorCase{
		{route: "GET /v1/sandboxes/{id}/contexts", target: sb + "/contexts"},
		{route: "POST /v1/sandboxes/{id}/contexts", target: sb + "/contexts", body: map[string]any{"language": "python"}},
		{route: "POST /v1/sandboxes/{id}/contexts/{context_id}/restart", target: sb + "/contexts/" + w.ctxA + "/restart"},
		{route: "DELETE /v1/sandboxes/{id}/contexts/{context_id}", target: sb + "/contexts/" + w.ctxA},
		{route: "POST /v1/sandboxes/{id}/execute", target: sb + "/execute", body: map[string]any{"code": "x = 'pwned'", "context_id": w.ctxA}},
	}
	n := attack(t, w, e.S.URL, bearer(w.bKey), cases)
	var list []struct {
		ID string `json:"id"`
	}
	code, raw := send(t, "GET", e.S.URL+sb+"/contexts", bearer(w.aKey), nil)
	var wrapped struct {
		Contexts json.RawMessage `json:"contexts"`
	}
	if code == 200 && json.Unmarshal(raw, &wrapped) == nil && len(wrapped.Contexts) > 0 {
		_ = json.Unmarshal(wrapped.Contexts, &list)
	} else {
		_ = json.Unmarshal(raw, &list)
	}
	found := false
	for _, c := range list {
		found = found || c.ID == w.ctxA
	}
	if code != http.StatusOK || !found {
		t.Errorf("A's context %s is gone: %d %s", w.ctxA, code, raw)
	}
	e.untouched(t, w) // includes: x is still 42 in A's context
	return fmt.Sprintf("%d/%d attempts on A's code contexts refused B (404); A's context kept x = 42", n, len(cases))
}
