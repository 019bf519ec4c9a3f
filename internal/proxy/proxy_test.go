package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

const testID = "abcdefghij0123456789"

// startProxy serves a Proxy over a real loopback listener. route answers every
// lookup; nil means "running at 127.0.0.1 with no tokens".
func startProxy(t *testing.T, cfg Config, route func(id string) (*domain.Route, error)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	if route == nil {
		route = func(id string) (*domain.Route, error) {
			return &domain.Route{SandboxID: id, Address: "127.0.0.1", Running: true}, nil
		}
	}
	rt := &fake.Sandboxes{RouteFn: func(_ context.Context, id string) (*domain.Route, error) {
		calls.Add(1)
		return route(id)
	}}
	if cfg.Domain == "" {
		cfg.Domain = "localhost:3001"
	}
	srv := httptest.NewServer(New(rt, nil, cfg).Handler())
	t.Cleanup(srv.Close)
	return srv, &calls
}

// startBackend serves h on 127.0.0.1 and returns its port.
func startBackend(t *testing.T, h http.HandlerFunc) int {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// newReq builds a request through the proxy routed by the E2B headers.
func newReq(t *testing.T, srv *httptest.Server, method, path string, port int, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("E2b-Sandbox-Id", testID)
	req.Header.Set("E2b-Sandbox-Port", strconv.Itoa(port))
	return req
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// echo answers with what the backend saw.
func echo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"method": r.Method, "uri": r.RequestURI, "host": r.Host, "header": r.Header,
	})
}

type seen struct {
	Method string
	URI    string
	Host   string
	Header http.Header
}

func decodeSeen(t *testing.T, body string) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("backend answer %q: %v", body, err)
	}
	return s
}

func TestHeaderRouting(t *testing.T) {
	port := startBackend(t, echo)
	srv, _ := startProxy(t, Config{}, nil)
	req := newReq(t, srv, "POST", "/process.Process/List?x=1&y=%2F", port, strings.NewReader("{}"))
	req.Header.Set("X-Forwarded-For", "6.6.6.6") // spoofed: must not survive
	resp, body := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	s := decodeSeen(t, body)
	if s.Method != "POST" || s.URI != "/process.Process/List?x=1&y=%2F" {
		t.Errorf("backend saw %s %s", s.Method, s.URI)
	}
	if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(port)); s.Host != want {
		t.Errorf("Host = %q, want %q", s.Host, want)
	}
	for _, h := range []string{"E2b-Sandbox-Id", "E2b-Sandbox-Port"} {
		if v := s.Header.Get(h); v != "" {
			t.Errorf("routing header %s reached the backend: %q", h, v)
		}
	}
	if got := s.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want 127.0.0.1", got)
	}
	if got := s.Header.Get("X-Forwarded-Host"); got != req.URL.Host {
		t.Errorf("X-Forwarded-Host = %q, want %q", got, req.URL.Host)
	}
}

func TestHostRouting(t *testing.T) {
	port := startBackend(t, echo)
	srv, _ := startProxy(t, Config{}, nil)
	for _, host := range []string{
		fmt.Sprintf("%d-%s.localhost:3001", port, testID),
		fmt.Sprintf("%d-%s.sandbox.example.com", port, testID),
		fmt.Sprintf("%d-%s.LOCALHOST", port, strings.ToUpper(testID)), // DNS is case-insensitive
	} {
		t.Run(host, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/health", nil)
			req.Host = host
			resp, body := do(t, req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if s := decodeSeen(t, body); s.URI != "/health" {
				t.Errorf("backend saw %q", s.URI)
			}
		})
	}
}

func TestBadTarget(t *testing.T) {
	srv, calls := startProxy(t, Config{}, nil)
	cases := []struct {
		name, host, id, port string
	}{
		{name: "no routing", host: "localhost:3001"},
		{name: "ip host", host: "127.0.0.1"},
		{name: "host short id", host: "49983-abc.localhost:3001"},
		{name: "host port zero", host: "0-" + testID + ".localhost"},
		{name: "host port text", host: "http-" + testID + ".localhost"},
		{name: "host dash in id", host: "49983-abcdefghij-123456789.localhost"},
		{name: "header upper id", id: "ABCDEFGHIJ0123456789", port: "49983"},
		{name: "header long id", id: testID + "x", port: "49983"},
		{name: "header port big", id: testID, port: "65536"},
		{name: "header port sign", id: testID, port: "+8080"},
		{name: "header port neg", id: testID, port: "-1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/", nil)
			if c.host != "" {
				req.Host = c.host
			}
			if c.id != "" {
				req.Header.Set("E2b-Sandbox-Id", c.id)
				req.Header.Set("E2b-Sandbox-Port", c.port)
			}
			resp, body := do(t, req)
			var e errorBody
			if resp.StatusCode != 400 || json.Unmarshal([]byte(body), &e) != nil || e.Code != 400 {
				t.Fatalf("got %d %s, want 400 JSON", resp.StatusCode, body)
			}
			if !strings.Contains(e.Message, "<port>-<sandboxID>.localhost:3001") {
				t.Errorf("message does not say how to address a sandbox: %q", e.Message)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("router called %d times for bad targets", n)
	}
}

func TestSandboxNotFound(t *testing.T) {
	want := `{"sandboxId":"` + testID + `","message":"The sandbox was not found","code":502}`
	for name, route := range map[string]func(string) (*domain.Route, error){
		"unknown": func(id string) (*domain.Route, error) { return nil, domain.NotFound("sandbox", id) },
		"wrapped": func(id string) (*domain.Route, error) {
			return nil, fmt.Errorf("routing: %w", domain.NotFound("sandbox", id))
		},
		"not running": func(id string) (*domain.Route, error) {
			return &domain.Route{SandboxID: id, Address: "127.0.0.1", Running: false}, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv, _ := startProxy(t, Config{}, route)
			resp, body := do(t, newReq(t, srv, "GET", "/health", 49983, nil))
			if resp.StatusCode != 502 || body != want {
				t.Fatalf("got %d %s\nwant 502 %s", resp.StatusCode, body, want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}

			// A browser navigation gets a page, still a 502.
			req := newReq(t, srv, "GET", "/", 8080, nil)
			req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
			req.Header.Set("Accept", "text/html,application/xhtml+xml")
			resp, body = do(t, req)
			if resp.StatusCode != 502 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, testID) {
				t.Errorf("browser got %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		})
	}
}

func TestRouterError(t *testing.T) {
	srv, _ := startProxy(t, Config{}, func(string) (*domain.Route, error) {
		return nil, errors.New("database is locked")
	})
	resp, body := do(t, newReq(t, srv, "GET", "/", 8080, nil))
	var e errorBody
	if resp.StatusCode != 502 || json.Unmarshal([]byte(body), &e) != nil || e.Code != 502 || e.Message == "" {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if strings.Contains(body, "database") {
		t.Errorf("internal error leaked to the client: %s", body)
	}
}

func TestPanicRecovered(t *testing.T) {
	srv, _ := startProxy(t, Config{}, func(string) (*domain.Route, error) { panic("boom") })
	resp, body := do(t, newReq(t, srv, "GET", "/", 8080, nil))
	if resp.StatusCode != 500 || body != `{"code":500,"message":"internal proxy error"}` {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}

func TestPortNotOpen(t *testing.T) {
	port := closedPort(t)
	srv, _ := startProxy(t, Config{}, nil)
	resp, body := do(t, newReq(t, srv, "GET", "/", port, nil))
	want := fmt.Sprintf(`{"message":"The sandbox is running but port is not open","sandboxId":"%s","port":%d,"code":502}`, testID, port)
	if resp.StatusCode != 502 || body != want {
		t.Fatalf("got %d %s\nwant 502 %s", resp.StatusCode, body, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
}

func TestTrafficToken(t *testing.T) {
	var got atomic.Value
	port := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Values("E2b-Traffic-Access-Token"))
		w.WriteHeader(204)
	})
	agentPort := startBackend(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	srv, _ := startProxy(t, Config{AgentPort: agentPort}, func(id string) (*domain.Route, error) {
		return &domain.Route{SandboxID: id, Address: "127.0.0.1", Running: true, TrafficToken: "tt-secret"}, nil
	})
	cases := []struct {
		name   string
		port   int
		header string // header name as sent
		token  string
		want   int
	}{
		{"missing", port, "", "", 403},
		{"wrong", port, "E2B-Traffic-Access-Token", "nope", 403},
		{"prefix", port, "E2B-Traffic-Access-Token", "tt-secre", 403},
		{"right", port, "E2B-Traffic-Access-Token", "tt-secret", 204},
		{"lower-case name", port, "e2b-traffic-access-token", "tt-secret", 204},
		{"agent port needs none", agentPort, "", "", 204},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got.Store([]string(nil))
			req := newReq(t, srv, "GET", "/", c.port, nil)
			if c.header != "" {
				req.Header[c.header] = []string{c.token} // raw name, sent as is
			}
			resp, body := do(t, req)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, c.want)
			}
			if c.want == 403 {
				var e errorBody
				if json.Unmarshal([]byte(body), &e) != nil || e.Code != 403 || e.Message == "" {
					t.Errorf("403 body %s", body)
				}
			}
			if v := got.Load().([]string); len(v) > 0 {
				t.Errorf("traffic token reached the backend: %q", v)
			}
		})
	}
}

func TestAccessToken(t *testing.T) {
	var got atomic.Value
	agentPort := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("X-Access-Token"))
		w.WriteHeader(200)
	})
	otherPort := startBackend(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	srv, _ := startProxy(t, Config{AgentPort: agentPort}, func(id string) (*domain.Route, error) {
		return &domain.Route{SandboxID: id, Address: "127.0.0.1", Running: true, AccessToken: "at-secret"}, nil
	})
	cases := []struct {
		name, path, token string
		port, want        int
	}{
		{"rpc wrong", "/process.Process/Start", "nope", agentPort, 401},
		{"rpc right", "/process.Process/Start", "at-secret", agentPort, 200},
		{"rpc missing left to agent", "/process.Process/Start", "", agentPort, 200},
		{"health wrong left to agent", "/health", "nope", agentPort, 200},
		{"files wrong left to agent", "/files", "nope", agentPort, 200},
		{"compose wrong", "/files/compose", "nope", agentPort, 401},
		{"other port not checked", "/execute", "nope", otherPort, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got.Store("")
			req := newReq(t, srv, "POST", c.path, c.port, nil)
			if c.token != "" {
				req.Header.Set("X-Access-Token", c.token)
			}
			resp, body := do(t, req)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, c.want)
			}
			if c.want == 401 && body != `{"code":401,"message":"invalid access token"}` {
				t.Errorf("401 body %s", body)
			}
			if c.want == 200 && c.port == agentPort && got.Load().(string) != c.token {
				t.Errorf("agent saw token %q, want %q passed through", got.Load(), c.token)
			}
		})
	}
}

func TestAgentPreflight(t *testing.T) {
	var hits atomic.Int32
	agentPort := startBackend(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	srv, calls := startProxy(t, Config{AgentPort: agentPort}, nil)
	req, _ := http.NewRequest("OPTIONS", srv.URL+"/process.Process/Start", nil)
	// Browsers send no custom headers on a preflight: route by Host.
	req.Host = fmt.Sprintf("%d-%s.localhost:3001", agentPort, testID)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "connect-protocol-version,content-type,x-access-token")
	resp, _ := do(t, req)
	h := resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "*" ||
		h.Get("Access-Control-Allow-Methods") != "POST" ||
		h.Get("Access-Control-Allow-Headers") != "connect-protocol-version,content-type,x-access-token" {
		t.Fatalf("preflight answer %d %v", resp.StatusCode, h)
	}
	if hits.Load() != 0 || calls.Load() != 0 {
		t.Errorf("preflight reached the agent (%d) or the router (%d)", hits.Load(), calls.Load())
	}
}

func TestDefaults(t *testing.T) {
	p := New(&fake.Sandboxes{}, nil, Config{})
	if p.cfg.AgentPort != 49983 || p.cfg.DialTimeout != 5*time.Second {
		t.Errorf("defaults: %+v", p.cfg)
	}
	tr, ok := p.rp.Transport.(*http.Transport)
	if !ok || !tr.DisableCompression || tr.Proxy != nil || tr.ResponseHeaderTimeout != 0 {
		t.Errorf("transport: %#v", p.rp.Transport)
	}
}

// TestPrivatePorts: a template's private port (the code interpreter's) answers only to
// the sandbox's access token or its traffic token, whatever allowPublicTraffic says, and a
// sandbox id alone opens nothing (issue 13, High 1).
func TestPrivatePorts(t *testing.T) {
	var hits atomic.Int32
	var seenTraffic atomic.Value
	backend := func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		seenTraffic.Store(r.Header.Values("E2b-Traffic-Access-Token"))
		w.WriteHeader(200)
	}
	ciPort := startBackend(t, backend)
	webPort := startBackend(t, backend)
	agentPort := startBackend(t, backend)
	const access, traffic = "at-secret", "tt-secret"
	derived := domain.PortToken(access, "")
	routes := map[string]*domain.Route{
		"public":    {Address: "127.0.0.1", Running: true, AccessToken: access, PrivatePorts: []int{ciPort}},
		"private":   {Address: "127.0.0.1", Running: true, AccessToken: access, TrafficToken: traffic, PrivatePorts: []int{ciPort}},
		"no-tokens": {Address: "127.0.0.1", Running: true, PrivatePorts: []int{ciPort}},
	}
	var current atomic.Value
	srv, _ := startProxy(t, Config{AgentPort: agentPort}, func(id string) (*domain.Route, error) {
		r := *routes[current.Load().(string)]
		r.SandboxID = id
		return &r, nil
	})
	type hdr = map[string]string
	cases := []struct {
		name, sandbox string
		port          int
		headers       hdr
		want          int
	}{
		{"interpreter without a token", "public", ciPort, nil, 401},
		{"interpreter with a wrong access token", "public", ciPort, hdr{"X-Access-Token": "nope"}, 401},
		{"interpreter with the access token", "public", ciPort, hdr{"X-Access-Token": access}, 200},
		{"interpreter with the traffic token", "public", ciPort, hdr{"E2B-Traffic-Access-Token": derived}, 200},
		{"interpreter with both (the SDK's /execute)", "public", ciPort, hdr{"X-Access-Token": access, "E2B-Traffic-Access-Token": derived}, 200},
		{"the access token is not a traffic token", "public", ciPort, hdr{"E2B-Traffic-Access-Token": access}, 401},
		{"another sandbox's traffic token", "public", ciPort, hdr{"E2B-Traffic-Access-Token": domain.PortToken("other", "")}, 401},
		{"public sandbox, other port, no token", "public", webPort, nil, 200},
		{"private traffic: interpreter without a token", "private", ciPort, nil, 401},
		{"private traffic: interpreter with the traffic token", "private", ciPort, hdr{"E2B-Traffic-Access-Token": traffic}, 200},
		{"private traffic: interpreter with the access token", "private", ciPort, hdr{"X-Access-Token": access}, 200},
		{"private traffic: derived token does not replace the traffic token", "private", ciPort, hdr{"E2B-Traffic-Access-Token": derived}, 401},
		{"private traffic: other port without a token", "private", webPort, nil, 403},
		{"private traffic: other port with the derived token", "private", webPort, hdr{"E2B-Traffic-Access-Token": derived}, 403},
		{"private traffic: other port with the traffic token", "private", webPort, hdr{"E2B-Traffic-Access-Token": traffic}, 200},
		{"private traffic: agent port is the agent's to check", "private", agentPort, nil, 200},
		{"no tokens: empty headers open nothing", "no-tokens", ciPort, hdr{"X-Access-Token": "", "E2B-Traffic-Access-Token": ""}, 401},
		{"no tokens: no headers open nothing", "no-tokens", ciPort, nil, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			current.Store(c.sandbox)
			hits.Store(0)
			seenTraffic.Store([]string(nil))
			req := newReq(t, srv, "POST", "/execute", c.port, strings.NewReader(`{"code":"1+1"}`))
			for k, v := range c.headers {
				req.Header[k] = []string{v}
			}
			resp, body := do(t, req)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, c.want)
			}
			if c.want != 200 {
				if hits.Load() != 0 {
					t.Errorf("a refused request reached the sandbox")
				}
				var e errorBody
				if json.Unmarshal([]byte(body), &e) != nil || e.Code != c.want {
					t.Errorf("refusal body %s", body)
				}
				if c.want == 401 && (!strings.Contains(e.Message, fmt.Sprintf("port %d of sandbox %s is private", c.port, testID)) ||
					!strings.Contains(e.Message, "X-Access-Token") || !strings.Contains(e.Message, "E2B-Traffic-Access-Token")) {
					t.Errorf("401 message does not say what to send: %q", e.Message)
				}
				return
			}
			if v := seenTraffic.Load().([]string); len(v) > 0 {
				t.Errorf("traffic token reached the sandbox: %q", v)
			}
		})
	}

	t.Run("preflight passes to the service", func(t *testing.T) {
		current.Store("public")
		hits.Store(0)
		req := newReq(t, srv, "OPTIONS", "/execute", ciPort, nil)
		req.Header.Set("Origin", "https://app.example.com")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, body := do(t, req)
		if resp.StatusCode != 200 || hits.Load() != 1 {
			t.Fatalf("preflight: %d %s, backend hits %d", resp.StatusCode, body, hits.Load())
		}
	})
}

// TestFailsClosedWithoutIP: a route whose address is a name, not an IP, is refused
// before anything is dialed (a name would send tenant traffic wherever it resolves).
func TestFailsClosedWithoutIP(t *testing.T) {
	var hits atomic.Int32
	port := startBackend(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	for _, addr := range []string{"localhost", "abcdefghij0123456789", "127.0.0.1.nip.io"} {
		srv, _ := startProxy(t, Config{}, func(id string) (*domain.Route, error) {
			return &domain.Route{SandboxID: id, Address: addr, Running: true}, nil
		})
		resp, body := do(t, newReq(t, srv, "GET", "/", port, nil))
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("address %q: %d %s, want 502", addr, resp.StatusCode, body)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the backend was reached %d times through a name", n)
	}
}

// TestDialNeverResolvesIDs: a pool key whose sandbox address is unknown (the sandbox
// stopped between routing and dialing) fails the dial instead of resolving the id.
func TestDialNeverResolvesIDs(t *testing.T) {
	p := New(&fake.Sandboxes{}, nil, Config{})
	for _, key := range []string{testID + ":80", "localhost:80", "garbage"} {
		if a, err := p.dialAddr(key); err == nil {
			t.Errorf("dialAddr(%q) = %q, want a refusal", key, a)
		}
	}
	p.addrs.Store(testID, "10.0.0.2")
	key := net.JoinHostPort(poolHost(testID, "10.0.0.2"), "8080")
	if a, err := p.dialAddr(key); err != nil || a != "10.0.0.2:8080" {
		t.Errorf("known sandbox: %q %v", a, err)
	}
	// Resumed at another address: the old address's key no longer dials.
	p.addrs.Store(testID, "10.0.0.6")
	if a, err := p.dialAddr(key); err == nil {
		t.Errorf("the old address of a sandbox that moved was dialed as %q", a)
	}
	p.addrs.Store(testID, "evil.example")
	if a, err := p.dialAddr(testID + "-" + "6576696c:8080"); err == nil {
		t.Errorf("a name as the stored address was dialed as %q", a)
	}
}

// TestRequestEndsWithSandbox: a request into a sandbox ends when the sandbox stops
// running (its route's Done closes), instead of hanging on a connection whose other end
// went away without a reset.
func TestRequestEndsWithSandbox(t *testing.T) {
	started := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done() // a stream that never ends by itself
	}))
	defer backend.Close()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(backend.URL, "http://"))
	done := make(chan struct{})
	srv, _ := startProxy(t, Config{}, func(id string) (*domain.Route, error) {
		return &domain.Route{SandboxID: id, Address: host, Running: true, Done: done}, nil
	})
	pn, _ := strconv.Atoi(port)
	resp, err := http.DefaultClient.Do(newReq(t, srv, "GET", "/", pn, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-started
	close(done)
	read := make(chan error, 1)
	go func() { _, err := io.ReadAll(resp.Body); read <- err }()
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("the proxied stream still runs 10 s after its sandbox stopped")
	}
}
