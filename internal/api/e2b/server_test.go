package e2b

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/domain"
)

func TestAuth(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		status int
		msg    string
	}{
		{"x-api-key", map[string]string{"X-API-Key": testKey}, 200, ""},
		{"X-API-KEY spelling of the SDK", map[string]string{"X-API-KEY": testKey}, 200, ""},
		{"bearer", map[string]string{"Authorization": "Bearer " + testKey}, 200, ""},
		{"bearer lower-case scheme", map[string]string{"Authorization": "bearer " + testKey}, 200, ""},
		{"missing", nil, 401, "missing API key"},
		{"wrong key", map[string]string{"X-API-Key": "sk_nope"}, 401, "invalid API key"},
		{"wrong bearer", map[string]string{"Authorization": "Bearer sk_nope"}, 401, "invalid API key"},
		{"basic scheme", map[string]string{"Authorization": "Basic Zm9vOmJhcg=="}, 401, "malformed Authorization"},
		{"X-API-Key wins over Bearer", map[string]string{"X-API-Key": "sk_nope", "Authorization": "Bearer " + testKey}, 401, "invalid API key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.svc.TemplatesFn = func(context.Context) ([]*domain.Template, error) { return nil, nil }
			r := httptest.NewRequest("GET", "/templates", nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			res := h.serve(r)
			if tt.status == 200 {
				wantStatus(t, res, 200)
				return
			}
			wantError(t, res, tt.status, tt.msg)
		})
	}
}

// TestOverTheWire sends what the JS SDK sends: a lower-case x-api-key header and a
// chunked JSON body without Content-Length.
func TestOverTheWire(t *testing.T) {
	h := newHarness(t)
	h.svc.CreateFn = func(_ context.Context, _ domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
		if req.TemplateID != "base" || req.Metadata["a"] != "b" {
			t.Errorf("Create got %+v", req)
		}
		return running(sbID), nil
	}
	ts := httptest.NewServer(h.srv)
	defer ts.Close()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"templateID":"base","metadata":{"a":"b"}}`
	fmt.Fprintf(conn, "POST /v2/sandboxes HTTP/1.1\r\nHost: api.test\r\nx-api-key: %s\r\n"+
		"content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"+
		"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", testKey, 10, body[:10], len(body)-10, body[10:])
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(b), `"sandboxID":"`+sbID+`"`) {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
}

func TestRouting(t *testing.T) {
	stopped := running(sbID2)
	stopped.State = domain.StateStopped
	tests := []struct {
		method, target string
		status         int
		msg            string
	}{
		{"GET", "/sandboxes/" + sbID + "/nope", 404, "no E2B API route"},
		{"GET", "/v2/sandboxes/" + sbID, 404, "no E2B API route"},
		{"PUT", "/sandboxes/" + sbID, 405, "allowed: DELETE, GET, HEAD"},
		{"PATCH", "/v2/sandboxes", 405, "allowed: GET, HEAD, POST"},
		{"POST", "/sandboxes/metrics", 405, "allowed: "},

		{"POST", "/sandboxes/" + sbID + "/fork", 501, "forks and snapshots is not supported"},
		{"POST", "/sandboxes/" + sbID + "/snapshots", 501, "forks and snapshots is not supported"},
		{"POST", "/sandboxes/" + sbID2 + "/pause", 404, "not found"},
		{"POST", "/sandboxes/" + sbID2 + "/snapshots", 404, "not found"},
		{"POST", "/sandboxes/zzzzzzzzzzzzzzzzzzzz/resume", 404, "not found"},
		{"POST", "/sandboxes/" + sbID2 + "/resume", 404, "not found"},
		{"POST", "/sandboxes/bad-id/fork", 404, "not found"},
		{"GET", "/snapshots?sandboxID=" + sbID, 501, "forks and snapshots is not supported"},

		{"POST", "/v3/templates", 501, "building templates is not supported"},
		{"POST", "/templates", 501, "template operation is not supported"},
		{"POST", "/v2/templates/base/builds/b1", 501, "templates is not supported"},
		{"GET", "/templates/base/builds/b1/status", 501, "templates is not supported"},
		{"GET", "/templates/base", 501, "template operation is not supported"},
		{"POST", "/templates/tags", 501, "template tags is not supported"},
		{"GET", "/templates/base/tags", 501, "template tags is not supported"},
		{"GET", "/templates/base/other", 404, "no such template route"},
		{"GET", "/templates/base/files/" + strings.Repeat("a", 64), 501, "building templates is not supported"},
		{"GET", "/volumes", 501, "volumes is not supported"},
		{"POST", "/secrets", 501, "secrets is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			h := newHarness(t)
			h.getReturns(running(sbID), stopped)
			res := h.do(tt.method, tt.target, nil)
			wantError(t, res, tt.status, tt.msg)
			if tt.status == 405 && res.Header.Get("Allow") == "" {
				t.Error("405 without Allow header")
			}
		})
	}
}

func TestUnsupportedNeedsAuth(t *testing.T) {
	h := newHarness(t)
	r := httptest.NewRequest("POST", "/v3/templates", nil)
	wantError(t, h.serve(r), 401, "missing API key")
}

func TestRegisterAndHandles(t *testing.T) {
	h := newHarness(t)
	h.svc.TemplatesFn = func(context.Context) ([]*domain.Template, error) { return nil, nil }
	top := http.NewServeMux()
	h.srv.Register(top)
	top.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Handler", "v1") })

	tests := []struct {
		path string
		e2b  bool
	}{
		{"/sandboxes", true}, {"/sandboxes/" + sbID, true}, {"/v2/sandboxes", true},
		{"/v2/sandboxes/" + sbID + "/logs", true}, {"/templates", true}, {"/v3/templates", true},
		{"/snapshots", true}, {"/volumes/x", true},
		{"/v1/sandboxes", false}, {"/healthz", false}, {"/readyz", false}, {"/", false},
		{"/v2", false}, {"/v2/other", false}, {"/sandboxesx", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.path, nil)
		if got := h.srv.Handles(r); got != tt.e2b {
			t.Errorf("Handles(%s) = %v, want %v", tt.path, got, tt.e2b)
		}
		rec := httptest.NewRecorder()
		top.ServeHTTP(rec, r)
		if toV1 := rec.Header().Get("X-Handler") == "v1"; toV1 == tt.e2b {
			t.Errorf("mux sent %s to v1 = %v, want %v", tt.path, toV1, !tt.e2b)
		}
	}
}

func TestPanicIsRecovered(t *testing.T) {
	h := newHarness(t)
	h.svc.GetFn = func(context.Context, domain.Principal, string) (*domain.Sandbox, error) { panic("boom") }
	res := h.do("GET", "/sandboxes/"+sbID, nil)
	wantError(t, res, 500, "internal error", res.Header.Get("X-Request-Id"))
}

// TestErrorBodies renders each kind of error, and errors that wrap what a client must
// not see, in E2B's shape: the field in the message, every 429 with a Retry-After.
func TestErrorBodies(t *testing.T) {
	edgetest.EachError(t, func(t *testing.T, c edgetest.ErrorCase) {
		h := newHarness(t)
		h.svc.GetFn = func(context.Context, domain.Principal, string) (*domain.Sandbox, error) { return nil, c.Err }
		res := h.do("GET", "/sandboxes/"+sbID, nil)
		id := res.Header.Get("X-Request-Id")
		msg := c.Message
		switch {
		case msg == "":
			msg = "internal error; quote request id " + id + " when reporting it"
		case c.Field != "":
			msg = c.Field + ": " + msg
		}
		wantError(t, res, c.Status, msg)
		edgetest.NoSecrets(t, res.Body)
		retryAfter := ""
		switch {
		case c.RetryAfter > 0:
			retryAfter = fmt.Sprint(c.RetryAfter)
		case c.Status == 429:
			retryAfter = "5" // defaultRetryAfter
		}
		if got := res.Header.Get("Retry-After"); got != retryAfter {
			t.Errorf("Retry-After = %q, want %q", got, retryAfter)
		}
	})
}

func TestBadJSON(t *testing.T) {
	tests := []struct {
		name, body, msg string
	}{
		{"wrong type", `{"templateID": 5}`, `"templateID"`},
		{"nested wrong type", `{"templateID":"base","network":{"allowPublicTraffic":"no"}}`, "network.allowPublicTraffic"},
		{"timeout not integer", `{"templateID":"base","timeout":"soon"}`, `"timeout"`},
		{"unknown field", `{"templateID":"base","gpu":true}`, `"gpu" is not supported`},
		{"syntax", `{"templateID":`, "ends in the middle"},
		{"garbage", `{"templateID" "base"}`, "not valid JSON"},
		{"trailing", `{"templateID":"base"} {}`, "single JSON object"},
		{"array", `[]`, "must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			wantError(t, h.do("POST", "/v2/sandboxes", tt.body), 400, tt.msg)
		})
	}
	t.Run("too large", func(t *testing.T) {
		h := newHarness(t)
		big := `{"templateID":"base","metadata":{"a":"` + strings.Repeat("x", maxJSONBytes) + `"}}`
		wantError(t, h.do("POST", "/v2/sandboxes", big), 413, "larger than")
	})
}

func TestEnvdVersionConfig(t *testing.T) {
	h := newHarness(t)
	for in, want := range map[string]string{"": DefaultEnvdVersion, "0.5.1": "0.5.1", "dev": DefaultEnvdVersion, "v1.2.3-rc1": "v1.2.3-rc1"} {
		s := New(h.svc, h.keys, nil, Config{EnvdVersion: in})
		if s.cfg.EnvdVersion != want {
			t.Errorf("EnvdVersion %q -> %q, want %q", in, s.cfg.EnvdVersion, want)
		}
		if s.cfg.ClientID != DefaultClientID {
			t.Errorf("ClientID default = %q", s.cfg.ClientID)
		}
	}
}
