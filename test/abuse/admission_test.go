package abuse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/warren-sh/warren/test/internal/harness"
)

// Node admission: a host without the free memory a sandbox could use refuses it with
// 503 node_full and a Retry-After, on /v1 and on the E2B API, and leaves nothing behind.

func init() {
	register(probe{name: "resources/node-full", runtimes: []string{"gvisor"}, run: probeNodeFull})
}

// hostMemMB is the host's MemTotal in MiB.
func hostMemMB(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	var kb int64
	fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
	return kb >> 10
}

func probeNodeFull(t *testing.T, e *env) string {
	// A server whose memory reserve is above what the host has: every create must be
	// refused before anything is made.
	s := harness.Start(t, harness.Opts{ExtraEnv: []string{fmt.Sprintf("WARREN_NODE_MEMORY_RESERVE_MB=%d", 4*hostMemMB(t))}})
	post := func(path, header string, body any) (*http.Response, map[string]any) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", s.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if header == "X-API-Key" {
			req.Header.Set(header, s.Key)
		} else {
			req.Header.Set("Authorization", "Bearer "+s.Key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(raw, &m)
		return resp, m
	}
	resp, m := post("/v1/sandboxes", "", map[string]any{"timeout": 60})
	if resp.StatusCode != 503 || m["code"] != "node_full" || resp.Header.Get("Retry-After") == "" || m["retry_after"] == nil {
		t.Errorf("/v1 create on a full node: %d Retry-After %q %v; want 503 node_full with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), m)
	}
	v1 := fmt.Sprintf("/v1 %d %v Retry-After %s", resp.StatusCode, m["code"], resp.Header.Get("Retry-After"))
	resp, m = post("/sandboxes", "X-API-Key", map[string]any{"templateID": "base", "timeout": 60})
	if resp.StatusCode != 503 || m["code"] != float64(503) || resp.Header.Get("Retry-After") == "" {
		t.Errorf("E2B create on a full node: %d Retry-After %q %v; want 503 with Retry-After in E2B's shape", resp.StatusCode, resp.Header.Get("Retry-After"), m)
	}
	e2b := fmt.Sprintf("E2B %d Retry-After %s", resp.StatusCode, resp.Header.Get("Retry-After"))
	// Nothing left behind: no sandbox row (of any state), nothing on the node.
	var list struct {
		Sandboxes []harness.SandboxJSON `json:"sandboxes"`
	}
	for _, q := range []string{"?state=starting,running,stopped,error"} {
		if code, body := s.API("GET", "/v1/sandboxes"+q, nil, &list); code != 200 || len(list.Sandboxes) != 0 {
			t.Errorf("GET /v1/sandboxes%s after refusals: %d %s", q, code, body)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(s.DataDir, "sandboxes")); len(ents) != 0 {
		t.Errorf("the refused creates left %d entries in the node's sandbox directory", len(ents))
	}
	return v1 + "; " + e2b + "; no rows, nothing on the node"
}
