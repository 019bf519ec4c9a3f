package rest

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestCreateSandbox(t *testing.T) {
	h := newHarness(t)
	var got domain.CreateSandbox
	h.svc.create = func(_ context.Context, p domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
		got = req
		return testSandbox(), nil
	}
	body := `{"template":"python","timeout":300,"env":{"A":"1"},"metadata":{"user":"alice"},
		"internet":false,"limits":{"cpu_cores":1.5,"memory_mb":512,"disk_mb":1024,"max_processes":256}}`
	res := h.do("POST", "/v1/sandboxes", body)
	if res.Status != http.StatusCreated {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	no := false
	want := domain.CreateSandbox{
		TemplateID: "python", Timeout: 300 * time.Second, Env: map[string]string{"A": "1"},
		Metadata: map[string]string{"user": "alice"}, Internet: &no,
		Limits: domain.Limits{CPUCores: 1.5, MemoryMB: 512, DiskMB: 1024, MaxProcesses: 256},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("service got %+v, want %+v", got, want)
	}
	m := res.Obj(t)
	if m["id"] != sbID || m["state"] != "running" || m["runtime"] != "gvisor" {
		t.Errorf("sandbox JSON: %s", res.Body)
	}
	if keys := m["env_keys"].([]any); len(keys) != 2 || keys[0] != "A" || keys[1] != "SECRET_TOKEN" {
		t.Errorf("env_keys = %v", keys)
	}
	for _, secret := range []string{"hunter2", "10.11.0.2", "tok", "pid", "stopped_at"} {
		if strings.Contains(string(res.Body), secret) {
			t.Errorf("sandbox JSON exposes %q: %s", secret, res.Body)
		}
	}
	if m["created_at"] != "2025-01-02T03:04:05Z" || m["ends_at"] != "2025-01-02T03:09:05Z" {
		t.Errorf("times: %s", res.Body)
	}

	// An empty body is a default sandbox from template "base".
	res = h.do("POST", "/v1/sandboxes", nil)
	if res.Status != http.StatusCreated || got.TemplateID != "base" || got.Timeout != 0 || got.Internet != nil {
		t.Errorf("defaults: status %d, request %+v", res.Status, got)
	}
}

func TestCreateSandboxBadBodies(t *testing.T) {
	h := newHarness(t, WithMaxJSONBytes(1024))
	h.svc.create = func(context.Context, domain.Principal, domain.CreateSandbox) (*domain.Sandbox, error) {
		t.Error("service called for a bad body")
		return testSandbox(), nil
	}
	cases := []struct {
		name, body string
		status     int
		field      string
		msg        string
	}{
		{"timeout as string", `{"timeout":"300"}`, 400, "timeout", `field "timeout": expected integer, got string`},
		{"timeout fraction", `{"timeout":1.5}`, 400, "timeout", `expected integer, got number 1.5`},
		{"nested type", `{"limits":{"memory_mb":"lots"}}`, 400, "limits.memory_mb", `field "limits.memory_mb": expected integer`},
		{"env values", `{"env":{"A":1}}`, 400, "env", `field "env": expected string, got number`},
		{"unknown field", `{"templat":"base"}`, 400, "templat", `unknown field "templat"`},
		{"syntax", `{"template":}`, 400, "", "not valid JSON"},
		{"truncated", `{"template":"base"`, 400, "", "ends in the middle"},
		{"array body", `[1,2]`, 400, "", "must be a JSON object"},
		{"trailing data", `{} {}`, 400, "", "single JSON object"},
		{"negative timeout", `{"timeout":-1}`, 400, "timeout", "must not be negative"},
		{"timeout over 24h", `{"timeout":86401}`, 400, "timeout", "at most 86400"},
		{"negative cpu", `{"limits":{"cpu_cores":-1}}`, 400, "limits.cpu_cores", "must not be negative"},
		{"negative memory", `{"limits":{"memory_mb":-1}}`, 400, "limits.memory_mb", "must not be negative"},
		{"negative disk", `{"limits":{"disk_mb":-5}}`, 400, "limits.disk_mb", "must not be negative"},
		{"negative procs", `{"limits":{"max_processes":-5}}`, 400, "limits.max_processes", "must not be negative"},
		{"too large", `{"template":"` + strings.Repeat("x", 2000) + `"}`, 413, "", "larger than 1024 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := h.wantError(h.do("POST", "/v1/sandboxes", c.body), c.status, "invalid", c.field)
			if msg := m["message"].(string); !strings.Contains(msg, c.msg) {
				t.Errorf("message %q lacks %q", msg, c.msg)
			}
		})
	}
}

func TestGetSandbox(t *testing.T) {
	h := newHarness(t)
	h.svc.get = func(_ context.Context, _ domain.Principal, id string) (*domain.Sandbox, error) {
		if err := notFoundUnless(id); err != nil {
			return nil, err
		}
		return testSandbox(), nil
	}
	res := h.do("GET", "/v1/sandboxes/"+sbID, nil)
	if res.Status != 200 || res.Obj(t)["id"] != sbID {
		t.Fatalf("get: %d %s", res.Status, res.Body)
	}
	// Another team's sandbox: the service says not found, and so do we.
	h.wantError(h.do("GET", "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz", nil), 404, "not_found", "")
	// Not even shaped like an id: not found without asking the service.
	h.svc.get = nil
	h.wantError(h.do("GET", "/v1/sandboxes/NOT-AN-ID", nil), 404, "not_found", "")
}

func TestListSandboxes(t *testing.T) {
	h := newHarness(t)
	var got domain.SandboxFilter
	h.svc.list = func(_ context.Context, _ domain.Principal, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
		got = f
		return []*domain.Sandbox{testSandbox()}, "next123", nil
	}
	res := h.do("GET", "/v1/sandboxes?state=running,stopped&metadata.user=alice&metadata.env=prod&limit=10&cursor=abc", nil)
	if res.Status != 200 {
		t.Fatalf("list: %d %s", res.Status, res.Body)
	}
	want := domain.SandboxFilter{
		TeamID: testPrincipal.TeamID, States: []domain.SandboxState{"running", "stopped"},
		Metadata: map[string]string{"user": "alice", "env": "prod"}, Cursor: "abc", Limit: 10,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("filter = %+v, want %+v", got, want)
	}
	m := res.Obj(t)
	if m["next_cursor"] != "next123" || len(m["sandboxes"].([]any)) != 1 {
		t.Errorf("list body: %s", res.Body)
	}

	// No filter: all states, and an empty page is [] not null.
	h.svc.list = func(_ context.Context, _ domain.Principal, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
		got = f
		return nil, "", nil
	}
	res = h.do("GET", "/v1/sandboxes", nil)
	if len(got.States) != 0 || !strings.Contains(string(res.Body), `"sandboxes":[]`) {
		t.Errorf("unfiltered: filter %+v, body %s", got, res.Body)
	}

	bad := []struct{ query, field string }{
		{"state=running,sleeping", "state"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"states=running", "states"},
		{"metadata.=x", "metadata"},
	}
	for _, b := range bad {
		h.wantError(h.do("GET", "/v1/sandboxes?"+b.query, nil), 400, "invalid", b.field)
	}
}

func TestKillSandbox(t *testing.T) {
	h := newHarness(t)
	var killed string
	h.svc.kill = func(_ context.Context, _ domain.Principal, id string) error {
		if err := notFoundUnless(id); err != nil {
			return err
		}
		killed = id
		return nil
	}
	res := h.do("DELETE", "/v1/sandboxes/"+sbID, nil)
	if res.Status != http.StatusNoContent || len(res.Body) != 0 || killed != sbID {
		t.Errorf("kill: %d %q, killed %q", res.Status, res.Body, killed)
	}
	h.wantError(h.do("DELETE", "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz", nil), 404, "not_found", "")
	h.svc.kill = func(context.Context, domain.Principal, string) error {
		return domain.Errorf(domain.KindConflict, "sandbox is already stopped")
	}
	h.wantError(h.do("DELETE", "/v1/sandboxes/"+sbID, nil), 409, "conflict", "")
}

func TestSetTimeout(t *testing.T) {
	h := newHarness(t)
	var got time.Duration
	h.svc.setTimeout = func(_ context.Context, _ domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
		if err := notFoundUnless(id); err != nil {
			return nil, err
		}
		got = d
		return testSandbox(), nil
	}
	res := h.do("POST", "/v1/sandboxes/"+sbID+"/timeout", `{"timeout":600}`)
	if res.Status != 200 || got != 10*time.Minute {
		t.Errorf("timeout: %d %s, service got %v", res.Status, res.Body, got)
	}
	h.wantError(h.do("POST", "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz/timeout", `{"timeout":60}`), 404, "not_found", "")
	for _, body := range []string{`{}`, `{"timeout":0}`, `{"timeout":-5}`, `{"timeout":90000}`, `{"timeout":"1m"}`} {
		h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/timeout", body), 400, "invalid", "timeout")
	}
}

func TestPauseResume(t *testing.T) {
	h := newHarness(t)
	h.svc.pause = func(_ context.Context, _ domain.Principal, id string) (*domain.Sandbox, error) {
		if err := notFoundUnless(id); err != nil {
			return nil, err
		}
		sb := testSandbox()
		sb.State, sb.PausedAt = domain.StatePaused, time.Now()
		return sb, nil
	}
	var got time.Duration
	h.svc.resume = func(_ context.Context, _ domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
		if err := notFoundUnless(id); err != nil {
			return nil, err
		}
		got = d
		if d == time.Hour {
			return nil, domain.Errorf(domain.KindConflict, "sandbox %q is already running; only a paused sandbox can be resumed", id)
		}
		return testSandbox(), nil
	}
	res := h.do("POST", "/v1/sandboxes/"+sbID+"/pause", nil)
	if res.Status != 200 || !strings.Contains(string(res.Body), `"state":"paused"`) || !strings.Contains(string(res.Body), `"paused_at"`) {
		t.Errorf("pause: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("POST", "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz/pause", nil), 404, "not_found", "")
	res = h.do("POST", "/v1/sandboxes/"+sbID+"/resume", nil)
	if res.Status != 200 || got != 0 {
		t.Errorf("resume without a body: %d %s, service got %v", res.Status, res.Body, got)
	}
	if res := h.do("POST", "/v1/sandboxes/"+sbID+"/resume", `{"timeout":120}`); res.Status != 200 || got != 2*time.Minute {
		t.Errorf("resume with a timeout: %d %s, service got %v", res.Status, res.Body, got)
	}
	h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/resume", `{"timeout":3600}`), 409, "conflict", "")
	for body, field := range map[string]string{`{"timeout":-1}`: "timeout", `{"timeout":90000}`: "timeout", `{"timeout":"1m"}`: "timeout", `{"wait":true}`: "wait"} {
		h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/resume", body), 400, "invalid", field)
	}
}

func TestCreateLifecycle(t *testing.T) {
	h := newHarness(t)
	var got domain.CreateSandbox
	h.svc.create = func(_ context.Context, _ domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
		got = req
		sb := testSandbox()
		sb.Lifecycle = req.Lifecycle
		return sb, nil
	}
	res := h.do("POST", "/v1/sandboxes", `{"lifecycle":{"on_timeout":"pause","auto_resume":true}}`)
	if res.Status != 201 || got.Lifecycle != (domain.Lifecycle{OnTimeout: "pause", AutoResume: true}) ||
		!strings.Contains(string(res.Body), `"lifecycle":{"on_timeout":"pause","auto_resume":true}`) {
		t.Errorf("create with a lifecycle: %d %s, service got %+v", res.Status, res.Body, got.Lifecycle)
	}
	h.wantError(h.do("POST", "/v1/sandboxes", `{"lifecycle":{"on_timeout":"pause","resume":true}}`), 400, "invalid", "resume")
}
