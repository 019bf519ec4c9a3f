package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPorts: a server started in a sandbox shows up in GET /v1/sandboxes/{id}/ports with
// a URL that reaches it through the proxy.
func TestPorts(t *testing.T) {
	s := startServer(t, serverOpts{})
	sb := s.Create(map[string]any{"timeout": 120})
	var got struct {
		Domain string `json:"domain"`
	}
	s.API("GET", "/v1/sandboxes/"+sb.ID, nil, &got)
	if got.Domain == "" {
		t.Errorf("sandbox JSON has no domain")
	}
	r := s.Exec(sb.ID, "cd /tmp && echo served > index.html && setsid -f python3 -m http.server 8000 >/dev/null 2>&1; echo ok")
	if !strings.Contains(r.Stdout, "ok") {
		t.Fatalf("starting the server: %+v", r)
	}
	var ports struct {
		Ports []struct {
			Port int    `json:"port"`
			URL  string `json:"url"`
		} `json:"ports"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.API("GET", "/v1/sandboxes/"+sb.ID+"/ports", nil, &ports)
		if len(ports.Ports) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(ports.Ports) != 1 || ports.Ports[0].Port != 8000 || !strings.HasPrefix(ports.Ports[0].URL, "http://8000-"+sb.ID+".") {
		t.Fatalf("ports = %+v; want 8000 with its proxy URL", ports.Ports)
	}
	// The URL's host is <port>-<id>.<domain>; send it to the proxy by address.
	host := strings.TrimSuffix(strings.TrimPrefix(ports.Ports[0].URL, "http://"), "/")
	req, _ := http.NewRequest("GET", s.ProxyURL+"/index.html", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "served\n" {
		t.Errorf("GET %s through the proxy = %d %q", ports.Ports[0].URL, resp.StatusCode, body)
	}
	// Another team cannot list them.
	_, other := s.newTeam(map[string]any{"name": "other"})
	if code, _ := s.APIKey(other, "GET", "/v1/sandboxes/"+sb.ID+"/ports", nil, nil); code != 404 {
		t.Errorf("another team listing ports = %d; want 404", code)
	}
}
