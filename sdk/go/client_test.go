package warren

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewConfiguration(t *testing.T) {
	env := func(m map[string]string) Option {
		return WithEnv(func(k string) string { return m[k] })
	}
	cases := []struct {
		name    string
		opts    []Option
		url     string
		key     string
		domain  string
		wantErr string
	}{
		{"defaults", []Option{WithEnv(nil)}, "http://127.0.0.1:3000", "", "", ""},
		{"environment", []Option{env(map[string]string{"WARREN_API_URL": "https://w.example.com/api/", "WARREN_API_KEY": "sk_env", "WARREN_DOMAIN": "sbx.example.com"})},
			"https://w.example.com/api", "sk_env", "sbx.example.com", ""},
		{"options win", []Option{env(map[string]string{"WARREN_API_URL": "http://env:1", "WARREN_API_KEY": "sk_env"}), WithAPIURL("http://opt:2"), WithAPIKey("sk_opt"), WithSandboxDomain("d.example")},
			"http://opt:2", "sk_opt", "d.example", ""},
		{"explicit empty key", []Option{env(map[string]string{"WARREN_API_KEY": "sk_env"}), WithAPIKey("")}, "http://127.0.0.1:3000", "", "", ""},
		// The proxy address says nothing about the domain: the server reports it.
		{"proxy URL ignored", []Option{env(map[string]string{"WARREN_PROXY_URL": "http://127.0.0.1:3911"})}, "http://127.0.0.1:3000", "", "", ""},
		{"remote API", []Option{WithEnv(nil), WithAPIURL("https://warren.example.com")}, "https://warren.example.com", "", "", ""},
		{"no scheme", []Option{WithEnv(nil), WithAPIURL("127.0.0.1:3000")}, "", "", "", "must look like http://host:port"},
		{"ftp", []Option{WithEnv(nil), WithAPIURL("ftp://host")}, "", "", "", "must look like http://host:port"},
		{"no host", []Option{WithEnv(nil), WithAPIURL("http://")}, "", "", "", "must look like http://host:port"},
		{"query", []Option{WithEnv(nil), WithAPIURL("http://h/?q=1")}, "", "", "", "must not have a query"},
		{"fragment", []Option{WithEnv(nil), WithAPIURL("http://h/#f")}, "", "", "", "must not have a query or fragment"},
		{"nil HTTP client", []Option{WithHTTPClient(nil)}, "", "", "", "nil client"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, err := New(c.opts...)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cl.APIURL() != c.url || cl.key != c.key || cl.SandboxDomain() != c.domain {
				t.Errorf("url %q key %q domain %q", cl.APIURL(), cl.key, cl.SandboxDomain())
			}
		})
	}
}

func TestNewReadsProcessEnvironment(t *testing.T) {
	t.Setenv("WARREN_API_URL", "http://envhost:1234")
	t.Setenv("WARREN_API_KEY", "sk_from_env")
	c, err := New()
	if err != nil || c.APIURL() != "http://envhost:1234" || c.key != "sk_from_env" {
		t.Errorf("client %+v, err %v", c, err)
	}
}

// TestRequestHeaders: credentials, User-Agent, Accept and the base URL's path prefix.
func TestRequestHeaders(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{"templates": []any{}}) })
	c, err := New(WithEnv(nil), WithAPIURL(f.srv.URL+"/prefix/"), WithAPIKey("sk_abc"), WithUserAgent("test-agent"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Templates(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := f.last()
	if r.path != "/prefix/v1/templates" || r.header.Get("Authorization") != "Bearer sk_abc" ||
		r.header.Get("User-Agent") != "test-agent" || r.header.Get("Accept") != "application/json" {
		t.Errorf("request %s %v", r.path, r.header)
	}
	c, _ = New(WithEnv(nil), WithAPIURL(f.srv.URL), WithAPIKey(""))
	_, _ = c.Templates(context.Background())
	if r := f.last(); r.header.Get("Authorization") != "" || !strings.HasPrefix(r.header.Get("User-Agent"), "warren-go/") {
		t.Errorf("without a key: %v", r.header)
	}
}

// TestGetHostAndPorts: GetHost uses the domain the server reports with the sandbox,
// unless the client overrides it; Ports lists the ports with their URLs.
func TestGetHostAndPorts(t *testing.T) {
	const id = "abcdefghij0123456789"
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/sandboxes/" + id:
			writeJSON(w, 200, map[string]any{"id": id, "state": "running", "domain": "sbx.example.com:3001"})
		case "/v1/sandboxes/" + id + "/ports":
			writeJSON(w, 200, map[string]any{"ports": []any{map[string]any{"port": 8080, "url": "http://8080-" + id + ".sbx.example.com:3001/"}}})
		default:
			apiError(w, 404, "not_found", "no route")
		}
	})
	ctx := context.Background()
	sbx := f.client().Sandbox(id)
	if got := sbx.GetHost(8080); got != "" {
		t.Errorf("GetHost before the domain is known = %q", got)
	}
	if _, err := sbx.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sbx.GetHost(8080); got != "8080-"+id+".sbx.example.com:3001" {
		t.Errorf("GetHost = %q", got)
	}
	ports, err := sbx.Ports(ctx)
	if err != nil || len(ports) != 1 || ports[0].Port != 8080 || ports[0].URL != "http://"+sbx.GetHost(8080)+"/" {
		t.Errorf("Ports: %+v %v", ports, err)
	}
	for _, opt := range []Option{WithSandboxDomain("override.example"), WithEnv(func(k string) string {
		return map[string]string{"WARREN_DOMAIN": "override.example"}[k]
	})} {
		sbx, err := f.client(opt).ConnectSandbox(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := sbx.GetHost(3000); got != "3000-"+id+".override.example" {
			t.Errorf("GetHost with an override = %q", got)
		}
	}
}

func TestRoutePathEscaping(t *testing.T) {
	if got := routeDeleteContext.url("a b", "ctx/1"); got != "/v1/sandboxes/a%20b/contexts/ctx%2F1" {
		t.Errorf("url = %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("a missing path parameter did not panic")
		}
	}()
	routeGetSandbox.url()
}

// TestConnectionReuse: calls read their responses to the end, so that net/http reuses
// the connection, even when the end of a stream or the newline after a JSON value
// arrives after the content the SDK needed.
func TestConnectionReuse(t *testing.T) {
	var conns atomic.Int32
	big := make([]map[string]any, 3000)
	for i := range big {
		big[i] = map[string]any{"name": fmt.Sprint("f", i), "path": fmt.Sprint("/d/f", i), "type": "file"}
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/sandboxes/abc/commands":
			sse(w, ev("start", map[string]int{"pid": 1}), ev("end", map[string]any{"exit_code": 0}))
		case "/v1/sandboxes/abc/execute":
			sse(w, ev("error", map[string]string{"code": "unavailable", "message": "broke", "request_id": "r"}))
		default:
			writeJSON(w, 200, map[string]any{"entries": big}) // chunked, ends with a newline
			w.(http.Flusher).Flush()
		}
		time.Sleep(30 * time.Millisecond) // the end of the response comes later
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := New(WithEnv(nil), WithAPIURL(srv.URL), WithAPIKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, sbx := context.Background(), c.Sandbox("abc")
	for range 3 {
		if _, err := sbx.Commands().Run(ctx, "true", RunOptions{}); err != nil {
			t.Fatal(err)
		}
		if entries, err := sbx.Files().List(ctx, "/d"); err != nil || len(entries) != 3000 {
			t.Fatal(err)
		}
		if _, err := sbx.RunCode(ctx, "1", RunCodeOptions{}); !errors.Is(err, ErrUnavailable) {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("9 calls used %d connections, want 1", n)
	}
}
