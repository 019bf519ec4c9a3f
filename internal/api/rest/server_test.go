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
		if res.status != http.StatusOK {
			t.Errorf("%s: status %d: %s", path, res.status, res.body)
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
	if res := h.do("GET", "/readyz", nil); res.status != http.StatusOK {
		t.Errorf("ready: status %d", res.status)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	h := newHarness(t)
	h.wantError(h.do("GET", "/v1/nope", nil), http.StatusNotFound, "not_found", "")
	h.wantError(h.do("GET", "/v1/sandboxes/", nil), http.StatusNotFound, "not_found", "")

	res := h.do("PATCH", "/v1/sandboxes/"+sbID, nil)
	h.wantError(res, http.StatusMethodNotAllowed, "method_not_allowed", "")
	if got := res.header.Get("Allow"); got != "DELETE, GET, HEAD" {
		t.Errorf("Allow = %q", got)
	}
	res = h.do("DELETE", "/v1/templates", nil)
	h.wantError(res, http.StatusMethodNotAllowed, "method_not_allowed", "")
	if got := res.header.Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow = %q", got)
	}
}

func TestRequestID(t *testing.T) {
	h := newHarness(t)
	h.svc.templates = func(context.Context) ([]*domain.Template, error) { return nil, nil }
	a := h.do("GET", "/v1/templates", nil).header.Get("X-Request-Id")
	b := h.do("GET", "/v1/templates", nil).header.Get("X-Request-Id")
	if a == "" || a == b {
		t.Errorf("request ids %q, %q: want distinct and non-empty", a, b)
	}
	r := h.req("GET", "/v1/templates", nil)
	r.Header.Set("X-Request-Id", "from-proxy-42")
	if got := h.serve(r).header.Get("X-Request-Id"); got != "from-proxy-42" {
		t.Errorf("propagated id = %q", got)
	}
	r = h.req("GET", "/v1/templates", nil)
	r.Header.Set("X-Request-Id", "bad id\nwith junk")
	if got := h.serve(r).header.Get("X-Request-Id"); !strings.HasPrefix(got, "req_") {
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
			if res.header.Get("WWW-Authenticate") == "" {
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

func TestErrorKindMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
		field  string
	}{
		{domain.NotFound("sandbox", sbID), 404, "not_found", ""},
		{domain.Invalid("template", "bad template"), 400, "invalid", "template"},
		{domain.Errorf(domain.KindUnauthorized, "expired"), 401, "unauthorized", ""},
		{domain.Errorf(domain.KindForbidden, "admins only"), 403, "forbidden", ""},
		{domain.Errorf(domain.KindConflict, "already stopped"), 409, "conflict", ""},
		{domain.Errorf(domain.KindQuotaExceeded, "too many sandboxes"), 429, "quota_exceeded", ""},
		{domain.Errorf(domain.KindUnavailable, "node draining"), 503, "unavailable", ""},
		{fmt.Errorf("getting sandbox: %w", domain.NotFound("sandbox", sbID)), 404, "not_found", ""},
		{errors.New("disk on fire at /secret/path"), 500, "internal", ""},
	}
	for _, c := range cases {
		t.Run(c.code, func(t *testing.T) {
			h := newHarness(t)
			h.svc.get = func(context.Context, domain.Principal, string) (*domain.Sandbox, error) { return nil, c.err }
			res := h.do("GET", "/v1/sandboxes/"+sbID, nil)
			m := h.wantError(res, c.status, c.code, c.field)
			if c.status == 500 {
				if m["message"] != internalMessage {
					t.Errorf("internal message = %q", m["message"])
				}
				logs := h.logs.String()
				if !strings.Contains(logs, "disk on fire") || !strings.Contains(logs, res.header.Get("X-Request-Id")) {
					t.Errorf("internal error not logged with its request id:\n%s", logs)
				}
			} else if m["message"] != domain.PublicMessage(c.err) {
				t.Errorf("message = %q, want %q", m["message"], domain.PublicMessage(c.err))
			}
		})
	}
}

func TestPanicIs500(t *testing.T) {
	h := newHarness(t)
	h.svc.get = func(context.Context, domain.Principal, string) (*domain.Sandbox, error) {
		panic("boom")
	}
	res := h.do("GET", "/v1/sandboxes/"+sbID, nil)
	m := h.wantError(res, http.StatusInternalServerError, "internal", "")
	if m["message"] != internalMessage {
		t.Errorf("message = %q", m["message"])
	}
	if logs := h.logs.String(); !strings.Contains(logs, "boom") || !strings.Contains(logs, `"status":500`) {
		t.Errorf("panic not logged:\n%s", logs)
	}
}
