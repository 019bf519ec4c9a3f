package rest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

const testSession = "ws_payload.signature"

// consoleLoginHarness serves logins for ada@example.com / "right" and authenticates
// testSession as a member of team_a.
func consoleLoginHarness(t *testing.T) *harness {
	t.Helper()
	h, _ := consoleHarness(t)
	return h
}

// consoleHarness is consoleLoginHarness with its fake team service, whose Logout
// succeeds.
func consoleHarness(t *testing.T) (*harness, *fake.Teams) {
	t.Helper()
	h, teams, _ := newTenancyHarness(t)
	teams.LogoutFn = func(context.Context, domain.Principal) error { return nil }
	teams.LoginFn = func(_ context.Context, email, password string) (*domain.Session, error) {
		if email != "ada@example.com" || password != "right" {
			return nil, domain.Errorf(domain.KindUnauthorized, "wrong email or password")
		}
		return &domain.Session{Token: testSession, ExpiresAt: tenancyT0.Add(12 * time.Hour),
			User: testUser("usr_1"), Team: testTeam("team_a")}, nil
	}
	h.keys.authenticate = func(_ context.Context, secret string) (domain.Principal, error) {
		switch secret {
		case testSession:
			return domain.Principal{TeamID: "team_a", UserID: "usr_1", Scopes: domain.RoleScopes(domain.RoleMember)}, nil
		case testKey:
			return testPrincipal, nil
		}
		if strings.HasPrefix(secret, "sk_") {
			return domain.Principal{}, domain.Errorf(domain.KindUnauthorized, "invalid API key")
		}
		return domain.Principal{}, domain.Errorf(domain.KindUnauthorized, "session expired or invalid: log in again")
	}
	return h, teams
}

// serveConsole sends r through the console session handler.
func serveConsole(h *harness, r *http.Request) edgetest.Result {
	return edgetest.Serve(h.t, h.srv.ConsoleHandler(), r)
}

func cookieByName(cs []*http.Cookie, name string) *http.Cookie {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestConsoleLogin(t *testing.T) {
	cases := []struct {
		name       string
		tls        bool
		forwarded  string
		wantSecure bool
	}{
		{"plain HTTP", false, "", false},
		{"TLS", true, "", true},
		{"behind a TLS proxy", false, "https", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := consoleLoginHarness(t)
			r := httptest.NewRequest("POST", "/console/login", strings.NewReader(`{"email":"ada@example.com","password":"right"}`))
			if c.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if c.forwarded != "" {
				r.Header.Set("X-Forwarded-Proto", c.forwarded)
			}
			res := serveConsole(h, r)
			if res.Status != 200 {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			var body map[string]any
			if err := json.Unmarshal(res.Body, &body); err != nil {
				t.Fatal(err)
			}
			user, _ := body["user"].(map[string]any)
			team, _ := body["team"].(map[string]any)
			if user["email"] != "ada@example.com" || team["id"] != "team_a" || body["expires_at"] != "2025-03-04T17:06:07Z" {
				t.Errorf("body %s", res.Body)
			}
			if strings.Contains(string(res.Body), testSession) || strings.Contains(string(res.Body), "password") {
				t.Errorf("the body carries the token or a password: %s", res.Body)
			}
			cookies := (&http.Response{Header: res.Header}).Cookies()
			prefix := "" // over HTTPS the cookies are __Host- cookies
			if c.wantSecure {
				prefix = hostPrefix
			}
			sess, csrf := cookieByName(cookies, prefix+sessionCookie), cookieByName(cookies, prefix+csrfCookie)
			if sess == nil || csrf == nil {
				t.Fatalf("cookies %v", res.Header["Set-Cookie"])
			}
			if sess.Value != testSession || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/" || sess.Secure != c.wantSecure {
				t.Errorf("session cookie %+v", sess)
			}
			if len(csrf.Value) < 40 || csrf.HttpOnly || csrf.SameSite != http.SameSiteStrictMode || csrf.Path != "/" || csrf.Secure != c.wantSecure {
				t.Errorf("CSRF cookie %+v", csrf)
			}
			if !sess.Expires.Equal(tenancyT0.Add(12*time.Hour)) || !csrf.Expires.Equal(sess.Expires) {
				t.Errorf("cookie expiry %v / %v", sess.Expires, csrf.Expires)
			}
			if res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("X-Request-Id") == "" {
				t.Errorf("headers %v", res.Header)
			}
		})
	}
}

func TestConsoleLoginCSRFTokensDiffer(t *testing.T) {
	h := consoleLoginHarness(t)
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		r := httptest.NewRequest("POST", "/console/login", strings.NewReader(`{"email":"ada@example.com","password":"right"}`))
		res := serveConsole(h, r)
		c := cookieByName((&http.Response{Header: res.Header}).Cookies(), csrfCookie)
		if c == nil || seen[c.Value] {
			t.Fatalf("login %d: CSRF token missing or repeated", i)
		}
		seen[c.Value] = true
	}
}

func TestConsoleLoginErrors(t *testing.T) {
	h := consoleLoginHarness(t)
	cases := []struct {
		name, method, body string
		status             int
		code               string
	}{
		{"wrong password", "POST", `{"email":"ada@example.com","password":"wrong"}`, 401, "unauthorized"},
		{"not JSON", "POST", `email=ada`, 400, "invalid"},
		{"unknown field", "POST", `{"email":"a","password":"b","remember":true}`, 400, "invalid"},
		{"GET", "GET", ``, 405, "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := serveConsole(h, httptest.NewRequest(c.method, "/console/login", strings.NewReader(c.body)))
			if res.Status != c.status {
				t.Fatalf("status %d, want %d: %s", res.Status, c.status, res.Body)
			}
			var e errorBody
			if err := json.Unmarshal(res.Body, &e); err != nil || e.Code != c.code || e.RequestID == "" || e.Message == "" {
				t.Errorf("error body %s (want code %s)", res.Body, c.code)
			}
			if len(res.Header.Values("Set-Cookie")) > 0 {
				t.Errorf("cookies set on failure: %v", res.Header["Set-Cookie"])
			}
		})
	}
	if res := serveConsole(h, httptest.NewRequest("GET", "/console/elsewhere", nil)); res.Status != 404 {
		t.Errorf("unknown console path: %d", res.Status)
	}
	// Without team management there are no logins.
	plain := newHarness(t)
	res := serveConsole(plain, httptest.NewRequest("POST", "/console/login", strings.NewReader(`{"email":"a","password":"b"}`)))
	if res.Status != 503 {
		t.Errorf("login without teams: %d %s", res.Status, res.Body)
	}
}

func TestConsoleLogout(t *testing.T) {
	h := consoleLoginHarness(t)
	cases := []struct {
		name         string
		cookie, head string
		status       int
	}{
		{"no CSRF header", "tok123", "", 403},
		{"wrong CSRF header", "tok123", "tok124", 403},
		{"no CSRF cookie", "", "tok123", 403},
		{"matching", "tok123", "tok123", 204},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/console/logout", nil)
			r.AddCookie(&http.Cookie{Name: sessionCookie, Value: testSession})
			if c.cookie != "" {
				r.AddCookie(&http.Cookie{Name: csrfCookie, Value: c.cookie})
			}
			if c.head != "" {
				r.Header.Set(csrfHeader, c.head)
			}
			res := serveConsole(h, r)
			if res.Status != c.status {
				t.Fatalf("status %d, want %d: %s", res.Status, c.status, res.Body)
			}
			cookies := (&http.Response{Header: res.Header}).Cookies()
			if c.status == 403 {
				var e errorBody
				json.Unmarshal(res.Body, &e)
				if e.Code != "forbidden" || e.Message != msgCSRF || len(cookies) > 0 {
					t.Errorf("body %s, cookies %v", res.Body, cookies)
				}
				return
			}
			for _, name := range []string{sessionCookie, csrfCookie} {
				ck := cookieByName(cookies, name)
				if ck == nil || ck.MaxAge >= 0 || ck.Value != "" || ck.Path != "/" {
					t.Errorf("cookie %s not cleared: %+v", name, ck)
				}
			}
		})
	}
}

// TestCookieAuth: /v1 takes the session cookie, with the CSRF header on state changes;
// an Authorization header wins over the cookie.
func TestCookieAuth(t *testing.T) {
	h := consoleLoginHarness(t)
	h.svc.templates = func(context.Context) ([]*domain.Template, error) { return nil, nil }
	var killedBy domain.Principal
	h.svc.kill = func(_ context.Context, p domain.Principal, id string) error {
		killedBy = p
		return notFoundUnless(id)
	}
	const csrf = "csrf-token-value"
	cases := []struct {
		name          string
		method, path  string
		session       string // cookie value; "" = no cookie
		csrfCookie    string
		csrfHeader    string
		authorization string
		status        int
		code          string
		msg           string
	}{
		{"GET with the cookie", "GET", "/v1/templates", testSession, "", "", "", 200, "", ""},
		{"GET needs no CSRF header even with its cookie", "GET", "/v1/templates", testSession, csrf, "", "", 200, "", ""},
		{"DELETE without the CSRF header", "DELETE", "/v1/sandboxes/" + sbID, testSession, csrf, "", "", 403, "forbidden", msgCSRF},
		{"DELETE without the CSRF cookie", "DELETE", "/v1/sandboxes/" + sbID, testSession, "", csrf, "", 403, "forbidden", msgCSRF},
		{"DELETE with a wrong CSRF header", "DELETE", "/v1/sandboxes/" + sbID, testSession, csrf, csrf + "x", "", 403, "forbidden", msgCSRF},
		{"DELETE with the CSRF header", "DELETE", "/v1/sandboxes/" + sbID, testSession, csrf, csrf, "", 204, "", ""},
		{"POST without the CSRF header", "POST", "/v1/sandboxes/" + sbID + "/timeout", testSession, csrf, "", "", 403, "forbidden", msgCSRF},
		{"an expired session", "GET", "/v1/templates", "ws_expired.sig", "", "", "", 401, "unauthorized", "log in again"},
		{"an API key in the cookie", "GET", "/v1/templates", testKey, "", "", "", 401, "unauthorized", "not a session"},
		{"no credentials at all", "GET", "/v1/templates", "", "", "", "", 401, "unauthorized", "log in to the console"},
		{"a bearer key needs no CSRF header", "DELETE", "/v1/sandboxes/" + sbID, testSession, csrf, "", "Bearer " + testKey, 204, "", ""},
		{"a bad bearer key is not rescued by the cookie", "GET", "/v1/templates", testSession, "", "", "Bearer sk_nope", 401, "unauthorized", "invalid API key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			killedBy = domain.Principal{}
			r := httptest.NewRequest(c.method, c.path, nil)
			if c.session != "" {
				r.AddCookie(&http.Cookie{Name: sessionCookie, Value: c.session})
			}
			if c.csrfCookie != "" {
				r.AddCookie(&http.Cookie{Name: csrfCookie, Value: c.csrfCookie})
			}
			if c.csrfHeader != "" {
				r.Header.Set(csrfHeader, c.csrfHeader)
			}
			if c.authorization != "" {
				r.Header.Set("Authorization", c.authorization)
			}
			res := h.serve(r)
			if res.Status != c.status {
				t.Fatalf("status %d, want %d: %s", res.Status, c.status, res.Body)
			}
			if c.code != "" {
				m := h.wantError(res, c.status, c.code, "")
				if !strings.Contains(m["message"].(string), c.msg) {
					t.Errorf("message %q lacks %q", m["message"], c.msg)
				}
			}
			if c.status == 204 {
				want := "usr_1"
				if c.authorization != "" {
					want = ""
				}
				if killedBy.UserID != want {
					t.Errorf("killed by %+v, want user %q", killedBy, want)
				}
			}
		})
	}
}

// TestCookieWebSocketOrigin: a cookie-authenticated WebSocket upgrade must come from a
// page of this server. The check runs before the handler (here: before the terminal is
// opened).
func TestCookieWebSocketOrigin(t *testing.T) {
	h := consoleLoginHarness(t)
	h.console.openTerminal = func(context.Context, domain.Principal, string, domain.TerminalRequest) (domain.Terminal, error) {
		return nil, domain.Errorf(domain.KindUnavailable, "no terminals here")
	}
	cases := []struct {
		name, origin string
		bearer       bool
		status       int
	}{
		{"no Origin", "", false, 403},
		{"another site", "http://evil.example", false, 403},
		{"same host, other port", "http://example.com:8080", false, 403},
		{"malformed", "::", false, 403},
		{"same origin", "http://example.com", false, 503}, // passes; the fake opens no terminal
		{"an API key needs no Origin", "", true, 503},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://example.com/v1/sandboxes/"+sbID+"/terminal", nil)
			r.Header.Set("Connection", "keep-alive, Upgrade")
			r.Header.Set("Upgrade", "websocket")
			if c.origin != "" {
				r.Header.Set("Origin", c.origin)
			}
			if c.bearer {
				r.Header.Set("Authorization", "Bearer "+testKey)
			} else {
				r.AddCookie(&http.Cookie{Name: sessionCookie, Value: testSession})
			}
			res := h.serve(r)
			if res.Status != c.status {
				t.Fatalf("status %d, want %d: %s", res.Status, c.status, res.Body)
			}
		})
	}
}

// TestConsoleLogoutEndsSessions: logging out of the console ends the user's sessions
// on the server, not only the cookies; a dead session just loses its cookies, and an
// outage is reported rather than hidden.
func TestConsoleLogoutEndsSessions(t *testing.T) {
	h, teams := consoleHarness(t)
	var ended []domain.Principal
	var fail error
	teams.LogoutFn = func(_ context.Context, p domain.Principal) error {
		ended = append(ended, p)
		return fail
	}
	logout := func(session string) edgetest.Result {
		r := httptest.NewRequest("POST", "/console/logout", nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
		r.AddCookie(&http.Cookie{Name: csrfCookie, Value: "c"})
		r.Header.Set(csrfHeader, "c")
		return serveConsole(h, r)
	}
	if res := logout(testSession); res.Status != 204 || len(ended) != 1 || ended[0].UserID != "usr_1" {
		t.Fatalf("live session logout: %d %s, ended %+v", res.Status, res.Body, ended)
	}
	if res := logout("ws_dead.session"); res.Status != 204 || len(ended) != 1 {
		t.Errorf("dead session logout: %d %s, ended %+v", res.Status, res.Body, ended)
	}
	fail = errors.New("database is down")
	if res := logout(testSession); res.Status != 500 {
		t.Errorf("logout during an outage: %d %s, want 500", res.Status, res.Body)
	}
}

// TestHostPrefixedCookiesOverTLS: an HTTPS request authenticates only with the __Host-
// cookies (a plain-named cookie can be planted by a sibling host), a plain HTTP one with
// the plain names.
func TestHostPrefixedCookiesOverTLS(t *testing.T) {
	h := consoleLoginHarness(t)
	for _, c := range []struct {
		name   string
		tls    bool
		prefix string
		want   int // 0: authenticated (past the edge, whatever the fake service answers)
	}{
		{"https with __Host- cookies", true, hostPrefix, 0},
		{"https with plain cookies", true, "", http.StatusUnauthorized},
		{"http with plain cookies", false, "", 0},
		{"http with __Host- cookies", false, hostPrefix, http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/templates", nil)
			if c.tls {
				r.Header.Set("X-Forwarded-Proto", "https")
			}
			r.AddCookie(&http.Cookie{Name: c.prefix + sessionCookie, Value: testSession})
			r.AddCookie(&http.Cookie{Name: c.prefix + csrfCookie, Value: "csrf"})
			res := edgetest.Serve(t, h.srv, r)
			if (c.want == 0 && res.Status == http.StatusUnauthorized) || (c.want != 0 && res.Status != c.want) {
				t.Errorf("status %d, want %d (0: authenticated): %s", res.Status, c.want, res.Body)
			}
		})
	}
}
