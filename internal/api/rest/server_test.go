package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/domain"
)

func TestNewDefaults(t *testing.T) {
	for _, c := range []struct {
		name string
		svc  domain.SandboxService
		keys domain.KeyService
	}{{"nil service", nil, &fakeKeys{}}, {"nil keys", &fakeSandboxes{}, nil}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: New did not panic", c.name)
				}
			}()
			New(c.svc, c.keys, nil)
		}()
	}
	s := New(&fakeSandboxes{}, &fakeKeys{}, nil, WithReady(nil), WithMaxJSONBytes(0), WithKeepAlive(-1))
	if s.opts.maxJSONBytes != 1<<20 || s.opts.keepAlive != 15*time.Second || s.opts.ready != nil || s.Handler() != s {
		t.Errorf("zero options did not fall back to defaults: %+v", s.opts)
	}
}

func TestHealth(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		r := h.req("GET", path, nil)
		r.Header.Del("Authorization") // public
		res := h.serve(r)
		if res.Status != http.StatusOK {
			t.Errorf("%s: status %d: %s", path, res.Status, res.Body)
		}
	}

	notReady := true
	h = newHarness(t, WithReady(func() error {
		if notReady {
			return errors.New("database is migrating")
		}
		return nil
	}))
	m := h.wantError(h.do("GET", "/readyz", nil), http.StatusServiceUnavailable, "unavailable", "")
	if !strings.Contains(m["message"].(string), "database is migrating") {
		t.Errorf("readyz message = %q", m["message"])
	}
	notReady = false
	if res := h.do("GET", "/readyz", nil); res.Status != http.StatusOK {
		t.Errorf("ready: status %d", res.Status)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	h := newHarness(t)
	h.wantError(h.do("GET", "/v1/nope", nil), http.StatusNotFound, "not_found", "")
	h.wantError(h.do("GET", "/v1/sandboxes/", nil), http.StatusNotFound, "not_found", "")

	res := h.do("PATCH", "/v1/sandboxes/"+sbID, nil)
	h.wantError(res, http.StatusMethodNotAllowed, "method_not_allowed", "")
	if got := res.Header.Get("Allow"); got != "DELETE, GET, HEAD" {
		t.Errorf("Allow = %q", got)
	}
	res = h.do("DELETE", "/v1/templates", nil)
	h.wantError(res, http.StatusMethodNotAllowed, "method_not_allowed", "")
	if got := res.Header.Get("Allow"); got != "GET, HEAD, POST" {
		t.Errorf("Allow = %q", got)
	}
}

func TestRequestID(t *testing.T) {
	h := newHarness(t)
	h.svc.templates = func(context.Context) ([]*domain.Template, error) { return nil, nil }
	a := h.do("GET", "/v1/templates", nil).Header.Get("X-Request-Id")
	b := h.do("GET", "/v1/templates", nil).Header.Get("X-Request-Id")
	if a == "" || a == b {
		t.Errorf("request ids %q, %q: want distinct and non-empty", a, b)
	}
	r := h.req("GET", "/v1/templates", nil)
	r.Header.Set("X-Request-Id", "from-proxy-42")
	if got := h.serve(r).Header.Get("X-Request-Id"); got != "from-proxy-42" {
		t.Errorf("propagated id = %q", got)
	}
	r = h.req("GET", "/v1/templates", nil)
	r.Header.Set("X-Request-Id", "bad id\nwith junk")
	if got := h.serve(r).Header.Get("X-Request-Id"); !strings.HasPrefix(got, "req_") {
		t.Errorf("junk id was not replaced: %q", got)
	}
	if !strings.Contains(h.logs.String(), `"request_id":"from-proxy-42"`) {
		t.Errorf("request log lacks the request id:\n%s", h.logs)
	}
}

func TestAuth(t *testing.T) {
	h := newHarness(t)
	h.svc.templates = func(context.Context) ([]*domain.Template, error) { return nil, nil }
	cases := []struct {
		name, header, wantMsg string
	}{
		{"missing", "", "missing API key"},
		{"wrong scheme", "Basic dXNlcjpwYXNz", "malformed Authorization"},
		{"empty bearer", "Bearer ", "malformed Authorization"},
		{"unknown key", "Bearer sk_nope", "invalid API key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.req("GET", "/v1/templates", nil)
			r.Header.Set("Authorization", c.header)
			res := h.serve(r)
			m := h.wantError(res, http.StatusUnauthorized, "unauthorized", "")
			if !strings.Contains(m["message"].(string), c.wantMsg) {
				t.Errorf("message %q lacks %q", m["message"], c.wantMsg)
			}
			if res.Header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate header")
			}
		})
	}

	// A key store that says "not found" must not leak that: still a 401.
	h.keys.authenticate = func(context.Context, string) (domain.Principal, error) {
		return domain.Principal{}, domain.NotFound("key", "x")
	}
	m := h.wantError(h.do("GET", "/v1/templates", nil), http.StatusUnauthorized, "unauthorized", "")
	if strings.Contains(m["message"].(string), "not found") {
		t.Errorf("message leaks the lookup: %q", m["message"])
	}

	// A broken key store is a 500, not a 401.
	h.keys.authenticate = func(context.Context, string) (domain.Principal, error) {
		return domain.Principal{}, errors.New("db is down")
	}
	h.wantError(h.do("GET", "/v1/templates", nil), http.StatusInternalServerError, "internal", "")

	// The principal reaches the service.
	h.keys.authenticate = nil
	var got domain.Principal
	h.svc.get = func(_ context.Context, p domain.Principal, _ string) (*domain.Sandbox, error) {
		got = p
		return testSandbox(), nil
	}
	h.do("GET", "/v1/sandboxes/"+sbID, nil)
	if !reflect.DeepEqual(got, testPrincipal) {
		t.Errorf("service saw principal %+v, want %+v", got, testPrincipal)
	}
}

// TestErrorBodies renders each kind of error, and errors that wrap what a client must
// not see, in /v1's shape.
func TestErrorBodies(t *testing.T) {
	edgetest.EachError(t, func(t *testing.T, c edgetest.ErrorCase) {
		h := newHarness(t)
		h.svc.get = func(context.Context, domain.Principal, string) (*domain.Sandbox, error) { return nil, c.Err }
		res := h.do("GET", "/v1/sandboxes/"+sbID, nil)
		m := h.wantError(res, c.Status, c.Code, c.Field)
		edgetest.NoSecrets(t, res.Body)
		id := res.Header.Get("X-Request-Id")
		if want := c.Message; want == "" {
			if m["message"] != "internal error; quote request id "+id+" when reporting it" {
				t.Errorf("internal message = %q", m["message"])
			}
			if logs := h.logs.String(); !strings.Contains(logs, c.Err.Error()) || !strings.Contains(logs, id) {
				t.Errorf("internal error not logged with its request id:\n%s", logs)
			}
		} else if m["message"] != want {
			t.Errorf("message = %q, want %q", m["message"], want)
		}
		if got, _ := m["quota"].(string); got != c.Quota {
			t.Errorf("quota = %q, want %q", got, c.Quota)
		}
		if ra := fmt.Sprint(c.RetryAfter); c.RetryAfter > 0 && (res.Header.Get("Retry-After") != ra || fmt.Sprint(m["retry_after"]) != ra) {
			t.Errorf("Retry-After %q, retry_after %v; want %s", res.Header.Get("Retry-After"), m["retry_after"], ra)
		}
	})
}

func TestPanicIs500(t *testing.T) {
	h := newHarness(t)
	h.svc.get = func(context.Context, domain.Principal, string) (*domain.Sandbox, error) {
		panic("boom")
	}
	res := h.do("GET", "/v1/sandboxes/"+sbID, nil)
	m := h.wantError(res, http.StatusInternalServerError, "internal", "")
	if !strings.Contains(m["message"].(string), res.Header.Get("X-Request-Id")) || !strings.Contains(h.logs.String(), "boom") {
		t.Errorf("message = %q; logs:\n%s", m["message"], h.logs)
	}
}
