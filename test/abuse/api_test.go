package abuse

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/domain"
)

// API holes: credentials that open more than they should (issue 13, High 1 and 2). The
// IDOR probes, one team's key against another team's things on every route that names
// one, are in api_idor_test.go.

func init() {
	register(
		probe{name: "api/interpreter-without-token", runtimes: []string{"gvisor"}, run: probeInterpreterWithoutToken},
		probe{name: "api/viewer-reads-envd-token", run: probeViewerReadsEnvdToken},
		probe{name: "api/private-traffic-without-token", run: probePrivateTrafficWithoutToken},
	)
}

// hdr is a request's extra headers.
type hdr map[string]string

func bearer(key string) hdr { return hdr{"Authorization": "Bearer " + key} }
func e2bKey(key string) hdr { return hdr{"X-API-Key": key} }

// merge returns a copy of a with b's headers added.
func (a hdr) merge(b hdr) hdr {
	out := hdr{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// send does one request and returns its status and (at most 1 MiB of) its body. body is
// nil, a string or []byte (sent raw), or anything else (sent as JSON). A "Host" header
// sets the request's Host. The request is bounded in time, so that an attack that opens
// a stream (events, a terminal) ends; the bound is generous because code-interpreter
// calls on a loaded host take seconds. t fails only when no answer came at all.
func send(t *testing.T, method, url string, h hdr, body any) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := edgetest.NewRequest(t, method, url, body).WithContext(ctx)
	req.RequestURI = "" // a client request, built like the API tests' server-side ones
	for k, v := range h {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20)) // a cut stream still shows what leaked
	return resp.StatusCode, b
}

// mustJSON decodes a 2xx answer into out, failing t on any other status.
func mustJSON(t *testing.T, what string, code int, raw []byte, want int, out any) {
	t.Helper()
	if code != want {
		t.Fatalf("%s: %d %s (want %d)", what, code, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: decoding %s: %v", what, raw, err)
		}
	}
}

// v1Sandbox is the part of a /v1 sandbox these probes read.
type v1Sandbox struct {
	ID                 string `json:"id"`
	State              string `json:"state"`
	EndsAt             string `json:"ends_at"`
	AllowPublicTraffic *bool  `json:"allow_public_traffic"`
	TrafficToken       string `json:"traffic_token"`
	Network            struct {
		AllowOut []string `json:"allow_out"`
		DenyOut  []string `json:"deny_out"`
	} `json:"network"`
}

// create starts a sandbox of the runtime under attack with key and extra fields; the
// probe's cleanup kills it.
func (e *env) create(t *testing.T, key string, fields map[string]any) v1Sandbox {
	t.Helper()
	body := map[string]any{"runtime": e.Runtime, "timeout": 900}
	for k, v := range fields {
		body[k] = v
	}
	var sb v1Sandbox
	code, raw := send(t, "POST", e.S.URL+"/v1/sandboxes", bearer(key), body)
	mustJSON(t, "create", code, raw, 201, &sb)
	srv := e.S
	t.Cleanup(func() { send(t, "DELETE", srv.URL+"/v1/sandboxes/"+sb.ID, bearer(key), nil) })
	return sb
}

// envdToken is the sandbox's access token as the E2B API's connect gives it to key's
// holder (a writer).
func (e *env) envdToken(t *testing.T, key, id string) (envd, traffic string) {
	t.Helper()
	var c struct {
		EnvdAccessToken    string  `json:"envdAccessToken"`
		TrafficAccessToken *string `json:"trafficAccessToken"`
	}
	code, raw := send(t, "POST", e.S.URL+"/sandboxes/"+id+"/connect", e2bKey(key), map[string]any{})
	mustJSON(t, "E2B connect", code, raw, 200, &c)
	if c.EnvdAccessToken == "" || c.TrafficAccessToken == nil || *c.TrafficAccessToken == "" {
		t.Errorf("E2B connect did not give a writer both tokens: %s", raw)
	}
	if c.TrafficAccessToken != nil {
		traffic = *c.TrafficAccessToken
	}
	return c.EnvdAccessToken, traffic
}

// proxied sends a request to port of sandbox id through the sandbox proxy, routed by
// E2B's headers (or by Host when h has one).
func (e *env) proxied(t *testing.T, method, id string, port int, path string, h hdr, body any) (int, []byte) {
	t.Helper()
	route := hdr{"E2b-Sandbox-Id": id, "E2b-Sandbox-Port": fmt.Sprint(port)}
	if _, byHost := h["Host"]; byHost {
		route = hdr{}
	}
	return send(t, method, e.S.ProxyURL+path, route.merge(h), body)
}

// exists reports whether path exists in sandbox id (asked through /v1 with key).
func (e *env) exists(t *testing.T, key, id, path string) bool {
	t.Helper()
	code, raw := send(t, "GET", e.S.URL+"/v1/sandboxes/"+id+"/files/stat?path="+path, bearer(key), nil)
	if code != 200 && code != 404 {
		t.Fatalf("stat %s: %d %s", path, code, raw)
	}
	return code == 200
}

// newTeam creates a team as the platform admin, with a key holding every scope of the
// team (what a tenant's own admin has).
func (e *env) newTeam(t *testing.T, name string) (teamID, key, keyID string) {
	t.Helper()
	var tm struct {
		ID string `json:"id"`
	}
	code, raw := send(t, "POST", e.S.URL+"/v1/teams", bearer(e.S.Key), map[string]any{"name": name})
	mustJSON(t, "create team", code, raw, 201, &tm)
	key, keyID = e.newKey(t, tm.ID, nil)
	return tm.ID, key, keyID
}

// newKey creates a key of team teamID (nil scopes: the creator's, i.e. every scope).
func (e *env) newKey(t *testing.T, teamID string, scopes []string) (secret, id string) {
	t.Helper()
	body := map[string]any{"name": "abuse", "team_id": teamID}
	if scopes != nil {
		body["scopes"] = scopes
	}
	var k struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	code, raw := send(t, "POST", e.S.URL+"/v1/keys", bearer(e.S.Key), body)
	mustJSON(t, "create key", code, raw, 201, &k)
	return k.Key, k.ID
}

// newUser creates a user of team teamID and returns its id.
func (e *env) newUser(t *testing.T, teamID, email, password, role string) string {
	t.Helper()
	var u struct {
		ID string `json:"id"`
	}
	code, raw := send(t, "POST", e.S.URL+"/v1/users", bearer(e.S.Key),
		map[string]any{"team_id": teamID, "email": email, "name": role + " user", "password": password, "role": role})
	mustJSON(t, "create user", code, raw, 201, &u)
	return u.ID
}

// uniq is a suffix that keeps names apart between runtimes and runs.
func uniq() string { return domain.NewID(8) }

// probeInterpreterWithoutToken: the code interpreter's port runs code for nobody who
// lacks the sandbox's tokens, whether they address it by the routing headers or by Host
// (a sandbox id is not a secret: it is in preview URLs, logs and read-only views); the
// tokens, and the server's own /v1 relay, still run code.
func probeInterpreterWithoutToken(t *testing.T, e *env) string {
	e.S.WaitTemplate("code-interpreter", 15*time.Minute)
	sb := e.create(t, e.S.Key, map[string]any{"template": "code-interpreter"})
	envd, traffic := e.envdToken(t, e.S.Key, sb.ID)
	if sb.TrafficToken != traffic {
		t.Errorf("/v1 create's traffic_token %q differs from E2B connect's trafficAccessToken %q", sb.TrafficToken, traffic)
	}
	plant := map[string]any{"code": "open('/tmp/ci-pwned', 'w').write('pwned')"}
	attacks := []struct {
		name, method, path string
		h                  hdr
	}{
		{"execute, headers, no token", "POST", "/execute", nil},
		{"execute, Host, no token", "POST", "/execute", hdr{"Host": "49999-" + sb.ID + ".sandbox.example.test"}},
		{"execute, wrong access token", "POST", "/execute", hdr{"X-Access-Token": "0123456789abcdef"}},
		{"execute, wrong traffic token", "POST", "/execute", hdr{"E2B-Traffic-Access-Token": domain.PortToken("guess", "")}},
		{"execute, access token as traffic token", "POST", "/execute", hdr{"E2B-Traffic-Access-Token": envd}},
		{"create context, no token", "POST", "/contexts", nil},
		{"list contexts, no token", "GET", "/contexts", nil},
	}
	for _, a := range attacks {
		code, raw := e.proxied(t, a.method, sb.ID, 49999, a.path, a.h, plant)
		if code != 401 || !strings.Contains(string(raw), "is private") {
			t.Errorf("%s: %d %s; want 401 saying the port is private", a.name, code, raw)
		}
	}
	if e.exists(t, e.S.Key, sb.ID, "/tmp/ci-pwned") {
		t.Errorf("code sent without a token ran in the sandbox")
	}
	// The owners' ways in still work: the SDK's headers, and the server's relay.
	for _, h := range []hdr{{"E2B-Traffic-Access-Token": traffic}, {"X-Access-Token": envd}} {
		code, raw := e.proxied(t, "POST", sb.ID, 49999, "/execute", h.merge(hdr{"Content-Type": "application/json"}), map[string]any{"code": "6*7"})
		if code != 200 || !strings.Contains(string(raw), "42") {
			t.Errorf("execute with %v: %d %s; want 200 with 42", keys(h), code, raw)
		}
	}
	code, raw := send(t, "POST", e.S.URL+"/v1/sandboxes/"+sb.ID+"/execute", bearer(e.S.Key), map[string]any{"code": "6*7"})
	if code != 200 || !strings.Contains(string(raw), "42") {
		t.Errorf("/v1 execute relay: %d %s", code, raw)
	}
	return fmt.Sprintf("%d tokenless or wrong-token calls to 49999: 401, nothing ran; traffic token, access token and /v1 relay run code", len(attacks))
}

func keys(h hdr) []string {
	var out []string
	for k := range h {
		out = append(out, k)
	}
	return out
}

// probeViewerReadsEnvdToken: a read-only key and a viewer's session can read a sandbox but
// get neither its access token (root through the agent, past scopes and the audit log) nor
// its traffic token, cannot connect, and cannot reach the agent without the token.
func probeViewerReadsEnvdToken(t *testing.T, e *env) string {
	teamID, writeKey, _ := e.newTeam(t, "viewer team "+uniq())
	readKey, _ := e.newKey(t, teamID, []string{"sandboxes:read"})
	email, password := "viewer-"+uniq()+"@example.test", "viewer-password-"+uniq()
	e.newUser(t, teamID, email, password, "viewer")
	var login struct {
		Token string `json:"token"`
	}
	code, raw := send(t, "POST", e.S.URL+"/v1/auth/login", nil, map[string]any{"email": email, "password": password})
	mustJSON(t, "viewer login", code, raw, 200, &login)
	sb := e.create(t, writeKey, nil)

	readers := []struct {
		name string
		e2b  hdr // how this reader authenticates to the E2B API
		v1   hdr
	}{
		{"read-only key", e2bKey(readKey), bearer(readKey)},
		{"viewer session", bearer(login.Token), bearer(login.Token)},
	}
	for _, r := range readers {
		code, raw := send(t, "GET", e.S.URL+"/sandboxes/"+sb.ID, r.e2b, nil)
		var d map[string]any
		mustJSON(t, r.name+": E2B GET", code, raw, 200, &d)
		if tok, ok := d["envdAccessToken"]; ok && tok != "" {
			t.Errorf("%s: E2B GET /sandboxes/{id} answered envdAccessToken %v", r.name, tok)
		}
		code, raw = send(t, "GET", e.S.URL+"/v1/sandboxes/"+sb.ID, r.v1, nil)
		var v v1Sandbox
		mustJSON(t, r.name+": /v1 GET", code, raw, 200, &v)
		if v.TrafficToken != "" {
			t.Errorf("%s: /v1 GET answered traffic_token", r.name)
		}
		for _, path := range []string{"/sandboxes/" + sb.ID + "/connect", "/v2/sandboxes/" + sb.ID + "/connect"} {
			code, raw = send(t, "POST", e.S.URL+path, r.e2b, map[string]any{})
			if code != 403 || strings.Contains(string(raw), "AccessToken") {
				t.Errorf("%s: POST %s = %d %s; want 403 without tokens", r.name, path, code, raw)
			}
		}
		code, raw = send(t, "GET", e.S.URL+"/v2/sandboxes", r.e2b, nil)
		if code != 200 || strings.Contains(string(raw), "AccessToken") {
			t.Errorf("%s: E2B list: %d %s", r.name, code, raw)
		}
	}
	// Without the token the agent runs nothing for anyone.
	start := map[string]any{"process": map[string]any{"cmd": "/bin/touch", "args": []string{"/tmp/viewer-pwned"}}}
	code, raw = e.proxied(t, "POST", sb.ID, 49983, "/process.Process/Start",
		hdr{"Content-Type": "application/json", "Connect-Protocol-Version": "1", "Authorization": "Basic cm9vdDo="}, start)
	if code != 401 {
		t.Errorf("agent Start without a token: %d %s; want 401", code, raw)
	}
	if e.exists(t, writeKey, sb.ID, "/tmp/viewer-pwned") {
		t.Errorf("the agent ran a command sent without its token")
	}
	// The writer still gets both (else nobody could use the SDK).
	code, raw = send(t, "GET", e.S.URL+"/sandboxes/"+sb.ID, e2bKey(writeKey), nil)
	if code != 200 || !strings.Contains(string(raw), `"envdAccessToken":"`) {
		t.Errorf("writer's E2B GET: %d %s; want envdAccessToken", code, raw)
	}
	e.envdToken(t, writeKey, sb.ID)
	return "read-only key and viewer session: GET 200 without envdAccessToken or traffic_token, connect 403, agent 401; a writer gets both tokens"
}

// probePrivateTrafficWithoutToken: a sandbox created with allow_public_traffic false
// answers on its ports only with its traffic token; the access token, a token derived
// from it, a wrong token or none are refused, and a public sandbox is the control.
func probePrivateTrafficWithoutToken(t *testing.T, e *env) string {
	sb := e.create(t, e.S.Key, map[string]any{"allow_public_traffic": false})
	if sb.AllowPublicTraffic == nil || *sb.AllowPublicTraffic || sb.TrafficToken == "" {
		t.Fatalf("create with allow_public_traffic false answered %+v", sb)
	}
	var got v1Sandbox
	code, raw := send(t, "GET", e.S.URL+"/v1/sandboxes/"+sb.ID, bearer(e.S.Key), nil)
	mustJSON(t, "/v1 GET", code, raw, 200, &got)
	if got.AllowPublicTraffic == nil || *got.AllowPublicTraffic || got.TrafficToken != sb.TrafficToken {
		t.Errorf("/v1 GET of a private sandbox: %s", raw)
	}
	code, raw = send(t, "GET", e.S.URL+"/sandboxes/"+sb.ID, e2bKey(e.S.Key), nil)
	if code != 200 || !strings.Contains(string(raw), `"allowPublicTraffic":false`) {
		t.Errorf("E2B GET of a private sandbox: %d %s", code, raw)
	}
	envd, traffic := e.envdToken(t, e.S.Key, sb.ID)
	if traffic != sb.TrafficToken {
		t.Errorf("E2B connect's trafficAccessToken differs from /v1's traffic_token")
	}
	public := e.create(t, e.S.Key, nil)
	const serve = "mkdir -p /tmp/www && echo page-of-$(hostname) > /tmp/www/index.html && exec python3 -m http.server 8080 --directory /tmp/www"
	for _, id := range []string{sb.ID, public.ID} {
		code, raw := send(t, "POST", e.S.URL+"/v1/sandboxes/"+id+"/commands", bearer(e.S.Key), map[string]any{"cmd": serve, "background": true})
		mustJSON(t, "start a web server", code, raw, 201, nil)
	}
	ok := hdr{"E2B-Traffic-Access-Token": sb.TrafficToken}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, raw := e.proxied(t, "GET", sb.ID, 8080, "/", ok, nil)
		if code == 200 && strings.Contains(string(raw), "page-of-"+sb.ID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the private sandbox's web server never answered its traffic token: %d %s", code, raw)
		}
		time.Sleep(300 * time.Millisecond)
	}
	attacks := []struct {
		name string
		h    hdr
	}{
		{"no token", nil},
		{"no token, Host routing", hdr{"Host": "8080-" + sb.ID + ".sandbox.example.test"}},
		{"wrong token", hdr{"E2B-Traffic-Access-Token": "0123456789abcdef"}},
		{"the access token as traffic token", hdr{"E2B-Traffic-Access-Token": envd}},
		{"the access token in X-Access-Token", hdr{"X-Access-Token": envd}},
		{"the token a public sandbox would have", hdr{"E2B-Traffic-Access-Token": domain.PortToken(envd, "")}},
		{"another sandbox's traffic token", hdr{"E2B-Traffic-Access-Token": domain.PortToken("other", "")}},
	}
	for _, a := range attacks {
		code, raw := e.proxied(t, "GET", sb.ID, 8080, "/", a.h, nil)
		if code != 403 || strings.Contains(string(raw), "page-of-") {
			t.Errorf("%s: %d %s; want 403", a.name, code, raw)
		}
	}
	code, raw = e.proxied(t, "GET", public.ID, 8080, "/", nil, nil)
	for deadline := time.Now().Add(30 * time.Second); code != 200 && time.Now().Before(deadline); {
		time.Sleep(300 * time.Millisecond)
		code, raw = e.proxied(t, "GET", public.ID, 8080, "/", nil, nil)
	}
	if code != 200 || !strings.Contains(string(raw), "page-of-"+public.ID) {
		t.Errorf("control: a public sandbox's port without a token: %d %s", code, raw)
	}
	return fmt.Sprintf("%d ways without the traffic token: 403; its traffic token 200; public control 200", len(attacks))
}
