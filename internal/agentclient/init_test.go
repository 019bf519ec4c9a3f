package agentclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestInit: Init sends the identity as envd's /init body with the client's (current)
// token, and a refusal comes back as an error.
func TestInit(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/init" {
			http.Error(w, "wrong route", 404)
			return
		}
		if r.Header.Get("X-Access-Token") != "old" {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"code":401,"message":"the access token is already set"}`))
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(204)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	c := New(addr, "old")
	defer c.Close()
	err := c.Init(context.Background(), Identity{AccessToken: "new", Hostname: "h1", EnvVars: map[string]string{"A": "1"}})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	if got["accessToken"] != "new" || got["hostname"] != "h1" || got["envVars"].(map[string]any)["A"] != "1" {
		t.Fatalf("body %v", got)
	}
	if _, ok := got["defaultUser"]; ok {
		t.Fatalf("an empty defaultUser was sent: %v", got)
	}
	bad := New(addr, "wrong")
	defer bad.Close()
	if err := bad.Init(context.Background(), Identity{Hostname: "h2"}); err == nil || !strings.Contains(err.Error(), "already set") {
		t.Fatalf("Init with a wrong token: %v", err)
	}
}

// TestWithToken: after Init with a new token, WithToken's client sends the new one
// (over the same connections).
func TestWithToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Access-Token") != "new" {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"code":401,"message":"wrong token"}`))
			return
		}
		_, _ = w.Write([]byte(`{"ts":1,"cpu_count":2}`))
	}))
	defer srv.Close()
	c := New(strings.TrimPrefix(srv.URL, "http://"), "old")
	defer c.Close()
	if _, err := c.Metrics(context.Background()); err == nil {
		t.Fatal("the old token was accepted")
	}
	if m, err := c.WithToken("new").Metrics(context.Background()); err != nil || m.CPUCount != 2 {
		t.Errorf("metrics with the new token: %+v, %v", m, err)
	}
}
