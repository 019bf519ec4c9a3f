package abuse

import (
	"fmt"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/forward"
)

func init() {
	register(probe{name: "cluster/internal-listener", runtimes: []string{"gvisor"}, run: probeInternalListener})
}

// probeInternalListener attacks a node's internal listener, where control replicas send
// a cluster's requests with the cluster secret: without the secret (or with a wrong or
// partial one, or with only the mark of sandbox traffic) every API route and the proxy
// are refused and nothing happens; the secret is no credential (a request with it and
// no API key is still 401); and a request with it and another team's key sees nothing
// of the sandbox (the node authenticates the caller itself). Health probes alone are
// open.
func probeInternalListener(t *testing.T, e *env) string {
	if e.S.IURL == "" {
		t.Fatal("the suite's server has no internal listener")
	}
	id := e.Sandbox()
	_, bKey, _ := e.newTeam(t, "cluster probe b "+uniq())
	base := e.S.IURL
	routes := []struct{ method, path string }{
		{"GET", "/v1/sandboxes"}, {"POST", "/v1/sandboxes"}, {"GET", "/v1/sandboxes/" + id},
		{"POST", "/v1/sandboxes/" + id + "/commands"}, {"DELETE", "/v1/sandboxes/" + id},
		{"GET", "/v1/nodes"}, {"POST", "/v1/keys"}, {"GET", "/sandboxes"}, {"DELETE", "/sandboxes/" + id},
		{"GET", "/v1/sandboxes/" + id + "/terminal"}, {"GET", "/"},
	}
	wrong := []hdr{
		{},
		{forward.HeaderSecret: clusterSecret + "x"},
		{forward.HeaderSecret: clusterSecret[:len(clusterSecret)-1]},
		{forward.HeaderSecret: strings.ToUpper(clusterSecret)},
		{forward.HeaderSecret: ""},
		{forward.HeaderProxied: "1", "Host": "49983-" + id + ".localhost"},
		{forward.HeaderVia: "control"},
	}
	refused := 0
	for _, rt := range routes {
		for _, h := range wrong {
			all := hdr{"Authorization": "Bearer " + e.S.Key}
			for k, v := range h {
				all[k] = v
			}
			code, raw := send(t, rt.method, base+rt.path, all, map[string]any{"cmd": "touch /tmp/pwned", "timeout": 60})
			if code != 401 || !strings.Contains(string(raw), "cluster secret") {
				t.Errorf("%s %s with %v: %d %s; want 401 naming the cluster secret", rt.method, rt.path, h, code, raw)
				continue
			}
			refused++
		}
	}
	if r := e.Exec("test -e /tmp/pwned && echo pwned || echo clean"); r.Stdout != "clean\n" {
		t.Errorf("a refused request ran in the sandbox: %+v", r)
	}
	with := func(key string) hdr {
		h := hdr{forward.HeaderSecret: clusterSecret}
		if key != "" {
			h["Authorization"] = "Bearer " + key
		}
		return h
	}
	// The secret opens the listener, not the API: no key is 401, another team's key
	// finds nothing, and the owner's key works.
	if code, raw := send(t, "GET", base+"/v1/sandboxes/"+id, with(""), nil); code != 401 {
		t.Errorf("the secret without an API key: %d %s; want 401", code, raw)
	}
	for _, rt := range []struct{ method, path string }{{"GET", "/v1/sandboxes/" + id}, {"POST", "/v1/sandboxes/" + id + "/commands"},
		{"DELETE", "/v1/sandboxes/" + id}, {"GET", "/sandboxes/" + id}} {
		if code, raw := send(t, rt.method, base+rt.path, with(bKey), map[string]any{"cmd": "touch /tmp/pwned"}); code != 404 {
			t.Errorf("%s %s with the secret and another team's key: %d %s; want 404", rt.method, rt.path, code, raw)
		}
	}
	if code, raw := send(t, "GET", base+"/v1/sandboxes/"+id, with(e.S.Key), nil); code != 200 {
		t.Errorf("the owner's key with the secret: %d %s; want 200", code, raw)
	}
	if code, raw := send(t, "GET", base+"/healthz", nil, nil); code != 200 || strings.Contains(string(raw), clusterSecret) {
		t.Errorf("GET /healthz without the secret: %d %s; want 200", code, raw)
	}
	if r := e.Exec("test -e /tmp/pwned && echo pwned || echo clean"); r.Stdout != "clean\n" {
		t.Errorf("another team's request ran in the sandbox: %+v", r)
	}
	return fmt.Sprintf("%d requests without the right secret refused (401); the secret is no API key; another team's key 404 on 4 routes", refused)
}
