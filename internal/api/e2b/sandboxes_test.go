package e2b

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestCreate(t *testing.T) {
	f, tr := false, true
	tests := []struct {
		name, path, body string
		want             domain.CreateSandbox
		wantTemplate     string // templateID in the response
	}{
		{"minimal", "/v2/sandboxes", `{"templateID":"base"}`,
			domain.CreateSandbox{TemplateID: "base", Timeout: 300 * time.Second}, "base"},
		{"code interpreter alias", "/v2/sandboxes", `{"templateID":"code-interpreter-v1","metadata":{"a":"b"},"envVars":{"FOO":"bar"},"timeout":120}`,
			domain.CreateSandbox{TemplateID: "code-interpreter", Timeout: 120 * time.Second,
				Metadata: map[string]string{"a": "b"}, Env: map[string]string{"FOO": "bar"}}, "code-interpreter-v1"},
		{"code interpreter plain", "/v2/sandboxes", `{"templateID":"code-interpreter"}`,
			domain.CreateSandbox{TemplateID: "code-interpreter", Timeout: 300 * time.Second}, "code-interpreter"},
		{"v1 default timeout is 15s", "/sandboxes", `{"templateID":"base","secure":true}`,
			domain.CreateSandbox{TemplateID: "base", Timeout: 15 * time.Second}, "base"},
		{"timeout 0 is the default", "/v2/sandboxes", `{"templateID":"base","timeout":0}`,
			domain.CreateSandbox{TemplateID: "base", Timeout: 300 * time.Second}, "base"},
		{"no internet", "/v2/sandboxes", `{"templateID":"base","allow_internet_access":false}`,
			domain.CreateSandbox{TemplateID: "base", Timeout: 300 * time.Second, Internet: &f}, "base"},
		{"deny all", "/v2/sandboxes", `{"templateID":"base","allow_internet_access":true,"network":{"denyOut":["0.0.0.0/0"]}}`,
			domain.CreateSandbox{TemplateID: "base", Timeout: 300 * time.Second, Internet: &tr,
				Network: &domain.NetworkPolicy{DenyOut: []string{"0.0.0.0/0"}}}, "base"},
		{"only these (the SDK's ALL_TRAFFIC and an allow list)", "/v2/sandboxes", `{"templateID":"base","network":{"denyOut":["0.0.0.0/0"],"allowOut":["198.18.0.7","198.19.0.0/16","API.example.com"]}}`,
			domain.CreateSandbox{TemplateID: "base", Timeout: 300 * time.Second,
				Network: &domain.NetworkPolicy{AllowOut: []string{"198.18.0.7", "198.19.0.0/16", "api.example.com"}, DenyOut: []string{"0.0.0.0/0"}}}, "base"},
		{"internet off with an allow list", "/v2/sandboxes", `{"templateID":"base","allow_internet_access":false,"network":{"allowOut":["198.18.0.7"]}}`,
			domain.CreateSandbox{TemplateID: "base", Timeout: 300 * time.Second, Internet: &f,
				Network: &domain.NetworkPolicy{AllowOut: []string{"198.18.0.7"}}}, "base"},
		{"private traffic", "/v2/sandboxes", `{"templateID":"base","network":{"allowPublicTraffic":false}}`,
			domain.CreateSandbox{TemplateID: "base", Timeout: 300 * time.Second, AllowPublicTraffic: &f}, "base"},
		{"harmless defaults accepted", "/v2/sandboxes", `{"templateID":"base","autoPause":false,"autoResume":{"enabled":false},"mcp":null,"network":{"allowOut":[],"rules":{}}}`,
			domain.CreateSandbox{TemplateID: "base", Timeout: 300 * time.Second}, "base"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			var got domain.CreateSandbox
			h.svc.CreateFn = func(_ context.Context, p domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
				if !reflect.DeepEqual(p, testTeam) {
					t.Errorf("principal %+v", p)
				}
				got = req
				sb := running(sbID)
				sb.TemplateID = req.TemplateID
				if req.AllowPublicTraffic != nil && !*req.AllowPublicTraffic {
					sb.TrafficToken = "traffic-token"
				}
				return sb, nil
			}
			res := h.do("POST", tt.path, tt.body)
			wantStatus(t, res, 201)
			if !sameCreate(got, tt.want) {
				t.Errorf("Create got %+v, want %+v", got, tt.want)
			}
			m := res.Obj(t)
			want := map[string]any{"sandboxID": sbID, "templateID": tt.wantTemplate, "clientID": DefaultClientID,
				"envdVersion": "0.6.13", "envdAccessToken": "envd-token", "domain": testDomain, "alias": tt.wantTemplate}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s = %v, want %v", k, m[k], v)
				}
			}
			// A private sandbox's own traffic token; a public one's opens its private ports
			// (the code interpreter's), and the code-interpreter SDK sends it.
			wantTok := domain.PortToken("envd-token", "")
			if tt.want.AllowPublicTraffic != nil {
				wantTok = "traffic-token"
			}
			if tok := m["trafficAccessToken"]; tok != wantTok {
				t.Errorf("trafficAccessToken = %v, want %v", tok, wantTok)
			}
		})
	}
}

func sameCreate(a, b domain.CreateSandbox) bool {
	eqMap := func(x, y map[string]string) bool {
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if y[k] != v {
				return false
			}
		}
		return true
	}
	eqBool := func(x, y *bool) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqNet := func(x, y *domain.NetworkPolicy) bool {
		return (x == nil) == (y == nil) && (x == nil || reflect.DeepEqual(*x, *y))
	}
	return a.TemplateID == b.TemplateID && a.Timeout == b.Timeout && eqMap(a.Env, b.Env) &&
		eqMap(a.Metadata, b.Metadata) && eqBool(a.Internet, b.Internet) &&
		eqBool(a.AllowPublicTraffic, b.AllowPublicTraffic) && a.Limits == b.Limits && eqNet(a.Network, b.Network)
}

func TestCreateRefusesWhatItCannotHonour(t *testing.T) {
	tests := []struct{ body, field string }{
		{`{"templateID":"base","network":{"allowOut":["198.18.0.7","https://example.com/"]}}`, "network.allowOut[1]"},
		{`{"templateID":"base","network":{"denyOut":["fd00::/8"]}}`, "IPv6"},
		{`{"templateID":"base","network":{"denyOut":["*"]}}`, "network.denyOut[0]"},
		{`{"templateID":"base","network":{"rules":{"api.example.com":[{"transform":{"headers":{"a":"b"}}}]}}}`, "network.rules"},
		{`{"templateID":"base","network":{"egressProxy":{"address":"proxy:3128"}}}`, "network.egressProxy"},
		{`{"templateID":"base","network":{"maskRequestHost":"x.test"}}`, "network.maskRequestHost"},
		{`{"templateID":"base","network":{"httpsPorts":[443]}}`, "network.httpsPorts"},
		{`{"templateID":"mcp-gateway","mcp":{"github":{}}}`, "mcp"},
		{`{"templateID":"base","iam":{"tokens":{"t":{"audience":"x"}}}}`, "iam"},
		{`{"templateID":"base","volumeMounts":[{"name":"v","path":"/data"}]}`, "volumeMounts"},
		{`{}`, "templateID is required"},
		{`{"templateID":"base","timeout":-1}`, "timeout must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			h := newHarness(t)
			h.svc.CreateFn = func(context.Context, domain.Principal, domain.CreateSandbox) (*domain.Sandbox, error) {
				t.Error("Create called for a request that must be refused")
				return running(sbID), nil
			}
			wantError(t, h.do("POST", "/v2/sandboxes", tt.body), 400, tt.field)
		})
	}
}

func TestCreateServiceErrors(t *testing.T) {
	tests := []struct {
		err    error
		status int
		msg    string
	}{
		{domain.Invalid("template", "template %q does not exist; list templates with GET /v1/templates", "code-interpreter"), 400, "does not exist"},
		{domain.Errorf(domain.KindQuotaExceeded, "team has 10 running sandboxes"), 429, "10 running"},
		{domain.Errorf(domain.KindUnavailable, "the sandbox could not be started"), 503, "could not be started"},
	}
	for _, tt := range tests {
		h := newHarness(t)
		h.svc.CreateFn = func(context.Context, domain.Principal, domain.CreateSandbox) (*domain.Sandbox, error) {
			return nil, tt.err
		}
		res := h.do("POST", "/v2/sandboxes", `{"templateID":"code-interpreter-v1"}`)
		wantError(t, res, tt.status, tt.msg)
		if tt.status == 429 && res.Header.Get("Retry-After") != "5" {
			t.Errorf("429 Retry-After = %q", res.Header.Get("Retry-After"))
		}
	}
}

func TestConnect(t *testing.T) {
	tests := []struct {
		path string
		body any
		want time.Duration
	}{
		{"/v2/sandboxes/" + sbID + "/connect", `{}`, 300 * time.Second},
		{"/v2/sandboxes/" + sbID + "/connect", nil, 300 * time.Second},
		{"/v2/sandboxes/" + sbID + "/connect", `{"timeout":30}`, 30 * time.Second},
		{"/v2/sandboxes/" + sbID + "/connect", `{"timeout":0,"memory":false}`, 0},
		{"/sandboxes/" + sbID + "/connect", `{"timeout":60}`, 60 * time.Second},
	}
	for _, tt := range tests {
		h := newHarness(t)
		h.getReturns(running(sbID))
		var got time.Duration
		h.svc.ConnectFn = func(_ context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
			got = d
			return running(id), nil
		}
		res := h.do("POST", tt.path, tt.body)
		wantStatus(t, res, 200)
		if got != tt.want {
			t.Errorf("%s %v: Connect d = %v, want %v", tt.path, tt.body, got, tt.want)
		}
		m := res.Obj(t)
		if m["sandboxID"] != sbID || m["envdAccessToken"] != "envd-token" || m["envdVersion"] != "0.6.13" || m["domain"] != testDomain {
			t.Errorf("connect body %s", res.Body)
		}
	}
	h := newHarness(t)
	h.getReturns(running(sbID))
	h.svc.ConnectFn = func(_ context.Context, _ domain.Principal, id string, _ time.Duration) (*domain.Sandbox, error) {
		return nil, domain.Errorf(domain.KindNotFound, "sandbox %q is not running (it is stopped)", id)
	}
	wantError(t, h.do("POST", "/v2/sandboxes/"+sbID+"/connect", `{}`), 404, "not running")
	wantError(t, h.do("POST", "/v2/sandboxes/NOT-AN-ID/connect", `{}`), 404, "not found")
	wantError(t, h.do("POST", "/v2/sandboxes/"+sbID+"/connect", `{"timeout":-5}`), 400, "timeout")
}

func TestGetSandbox(t *testing.T) {
	h := newHarness(t)
	stopped := running(sbID2)
	stopped.State = domain.StateStopped
	sb := running(sbID)
	sb.TrafficToken = "tt"
	sb.Metadata = nil
	h.getReturns(sb, stopped)

	res := h.do("GET", "/sandboxes/"+sbID, nil)
	wantStatus(t, res, 200)
	m := res.Obj(t)
	want := map[string]any{
		"sandboxID": sbID, "templateID": "base", "alias": "base", "clientID": DefaultClientID,
		"startedAt": "2025-01-02T03:04:06Z", "endAt": "2025-01-02T03:09:05Z",
		"cpuCount": 1.0, "memoryMB": 512.0, "diskSizeMB": 1024.0, "envdVersion": "0.6.13",
		"state": "running", "domain": testDomain, "envdAccessToken": "envd-token", "allowInternetAccess": true,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	if md, ok := m["metadata"].(map[string]any); !ok || len(md) != 0 {
		t.Errorf("metadata = %#v, want {}", m["metadata"])
	}
	if n, _ := m["network"].(map[string]any); n["allowPublicTraffic"] != false {
		t.Errorf("network = %#v", m["network"])
	}
	if l, _ := m["lifecycle"].(map[string]any); l["onTimeout"] != "kill" || l["autoResume"] != false {
		t.Errorf("lifecycle = %#v", m["lifecycle"])
	}
	if _, leaked := m["envVars"]; leaked {
		t.Error("env vars leaked")
	}
	wantError(t, h.do("GET", "/sandboxes/"+sbID2, nil), 404, "not found", "stopped")
	wantError(t, h.do("GET", "/sandboxes/zzzzzzzzzzzzzzzzzzzz", nil), 404, "not found")
}

// TestKillTwice: the SDK's kill() returns false on the second call because the body's
// code is 404.
func TestKillTwice(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	alive := map[string]bool{sbID: true}
	h.svc.KillFn = func(_ context.Context, _ domain.Principal, id string) error {
		mu.Lock()
		defer mu.Unlock()
		if !alive[id] {
			return domain.Errorf(domain.KindNotFound, "sandbox %q is not running (it is stopped)", id)
		}
		alive[id] = false
		return nil
	}
	wantNoContent(t, h.do("DELETE", "/sandboxes/"+sbID, nil))
	wantError(t, h.do("DELETE", "/sandboxes/"+sbID, nil), 404, "not running")
	wantError(t, h.do("DELETE", "/sandboxes/x", nil), 404, "not found")
}

func TestSetTimeout(t *testing.T) {
	h := newHarness(t)
	var got time.Duration
	h.svc.SetTimeoutFn = func(_ context.Context, _ domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
		if id != sbID {
			return nil, domain.NotFound("sandbox", id)
		}
		got = d
		return running(id), nil
	}
	wantNoContent(t, h.do("POST", "/sandboxes/"+sbID+"/timeout", `{"timeout":90}`))
	if got != 90*time.Second {
		t.Errorf("SetTimeout d = %v", got)
	}
	wantError(t, h.do("POST", "/sandboxes/"+sbID+"/timeout", `{}`), 400, "timeout is required")
	wantError(t, h.do("POST", "/sandboxes/"+sbID+"/timeout", `{"timeout":-1}`), 400, "timeout")
	wantError(t, h.do("POST", "/sandboxes/"+sbID2+"/timeout", `{"timeout":9}`), 404, "not found")
}

func TestRefresh(t *testing.T) {
	tests := []struct {
		body   any
		want   time.Duration
		status int
	}{
		{nil, 15 * time.Second, 204},
		{`{}`, 15 * time.Second, 204},
		{`{"duration":5}`, 15 * time.Second, 204},
		{`{"duration":120}`, 120 * time.Second, 204},
		{`{"duration":3601}`, 0, 400},
		{`{"duration":-1}`, 0, 400},
	}
	for _, tt := range tests {
		h := newHarness(t)
		var got time.Duration
		h.svc.ConnectFn = func(_ context.Context, _ domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
			got = d
			return running(id), nil
		}
		res := h.do("POST", "/sandboxes/"+sbID+"/refreshes", tt.body)
		if tt.status == 400 {
			wantError(t, res, 400, "duration")
			continue
		}
		wantNoContent(t, res)
		if got != tt.want {
			t.Errorf("%v: Connect d = %v, want %v", tt.body, got, tt.want)
		}
	}
	h := newHarness(t)
	h.svc.ConnectFn = func(_ context.Context, _ domain.Principal, id string, _ time.Duration) (*domain.Sandbox, error) {
		return nil, domain.NotFound("sandbox", id)
	}
	wantError(t, h.do("POST", "/sandboxes/"+sbID+"/refreshes", nil), 404, "not found")
}

// TestCreateLifecycle: autoPause and autoResume become the sandbox's lifecycle, and
// getInfo shows it.
func TestCreateLifecycle(t *testing.T) {
	h := newHarness(t)
	var got domain.Lifecycle
	h.svc.CreateFn = func(_ context.Context, _ domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
		got = req.Lifecycle
		return running(sbID), nil
	}
	res := h.do("POST", "/v2/sandboxes", `{"templateID":"base","autoPause":true,"autoPauseMemory":true,"autoResume":{"enabled":true}}`)
	wantStatus(t, res, 201)
	if got != (domain.Lifecycle{OnTimeout: domain.OnTimeoutPause, AutoResume: true}) {
		t.Errorf("lifecycle %+v", got)
	}
	sb := running(sbID)
	sb.Lifecycle = got
	h.getReturns(sb)
	res = h.do("GET", "/sandboxes/"+sbID, nil)
	wantStatus(t, res, 200)
	if lc, _ := res.Obj(t)["lifecycle"].(map[string]any); lc["onTimeout"] != "pause" || lc["autoResume"] != true {
		t.Errorf("getInfo lifecycle %v", res.Obj(t)["lifecycle"])
	}
}

// TestPauseAndConnect: pause answers 204 and 409 when already paused; connect and the
// deprecated resume resume a paused sandbox with 201; getInfo shows it paused.
func TestPauseAndConnect(t *testing.T) {
	h := newHarness(t)
	paused := running(sbID)
	paused.State = domain.StatePaused
	stopped := running(sbID2)
	stopped.State = domain.StateStopped
	h.getReturns(running(sbID), stopped)
	var pauses int
	h.svc.PauseFn = func(_ context.Context, _ domain.Principal, id string) (*domain.Sandbox, error) {
		pauses++
		if pauses > 1 {
			return nil, domain.Errorf(domain.KindConflict, "sandbox %q is already paused", id)
		}
		return paused, nil
	}
	res := h.do("POST", "/sandboxes/"+sbID+"/pause", `{}`)
	wantStatus(t, res, 204)
	wantError(t, h.do("POST", "/sandboxes/"+sbID+"/pause", nil), 409, "already paused")
	wantError(t, h.do("POST", "/sandboxes/"+sbID2+"/pause", nil), 404, "not found")
	wantError(t, h.do("POST", "/sandboxes/"+sbID+"/pause", `{"memory":"yes"}`), 400, "memory")

	h.getReturns(paused, stopped)
	res = h.do("GET", "/sandboxes/"+sbID, nil)
	wantStatus(t, res, 200)
	if res.Obj(t)["state"] != "paused" {
		t.Errorf("getInfo of a paused sandbox: %s", res.Body)
	}
	var resumed []time.Duration
	h.svc.ResumeFn = func(_ context.Context, _ domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
		resumed = append(resumed, d)
		return running(id), nil
	}
	h.svc.ConnectFn = func(context.Context, domain.Principal, string, time.Duration) (*domain.Sandbox, error) {
		t.Error("Connect called for a paused sandbox")
		return nil, nil
	}
	res = h.do("POST", "/v2/sandboxes/"+sbID+"/connect", `{"timeout":30}`)
	wantStatus(t, res, 201)
	if m := res.Obj(t); m["sandboxID"] != sbID || m["envdAccessToken"] != "envd-token" {
		t.Errorf("connect body %s", res.Body)
	}
	wantStatus(t, h.do("POST", "/sandboxes/"+sbID+"/resume", `{"timeout":60}`), 201)
	if len(resumed) != 2 || resumed[0] != 30*time.Second || resumed[1] != time.Minute {
		t.Errorf("resumes %v", resumed)
	}
	wantError(t, h.do("POST", "/sandboxes/"+sbID+"/resume", `{"autoPause":true}`), 400, "autoPause")
	wantError(t, h.do("POST", "/sandboxes/"+sbID2+"/resume", `{}`), 404, "not found")
}
