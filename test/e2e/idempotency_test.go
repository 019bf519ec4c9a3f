package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// createWithKey posts body to path with an Idempotency-Key, authenticated as the REST
// API (Authorization) or the E2B API (X-API-Key) wants, and returns the status, the
// sandbox id in the answer and the raw answer.
func (s *server) createWithKey(t *testing.T, path, key string, body map[string]any) (int, string, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	if path == "/v1/sandboxes" {
		req.Header.Set("Authorization", "Bearer "+s.Key)
	} else {
		req.Header.Set("X-API-Key", s.Key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", path, err)
		return 0, "", nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		ID        string `json:"id"`
		SandboxID string `json:"sandboxID"`
	}
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out.ID + out.SandboxID, raw
}

// TestIdempotentCreate: ten concurrent creates with one Idempotency-Key and one body
// start one sandbox and all answer 201 with it; the key with another body is 409 and
// starts nothing; the E2B create route honours the header the same way.
func TestIdempotentCreate(t *testing.T) {
	s := startServer(t, serverOpts{})
	body := map[string]any{"template": "base", "metadata": map[string]string{"suite": "idempotency"}}
	const n = 10
	codes, ids := make([]int, n), make([]string, n)
	raws := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], ids[i], raws[i] = s.createWithKey(t, "/v1/sandboxes", "retry-me-1", body)
		}()
	}
	wg.Wait()
	for i := range n {
		if codes[i] != 201 || ids[i] == "" || ids[i] != ids[0] {
			t.Fatalf("create %d: %d %s; want 201 with the sandbox of create 0 (%s)", i, codes[i], raws[i], ids[0])
		}
	}
	var list struct {
		Sandboxes []sandboxJSON `json:"sandboxes"`
	}
	if code, raw := s.API("GET", "/v1/sandboxes?metadata.suite=idempotency", nil, &list); code != 200 || len(list.Sandboxes) != 1 || list.Sandboxes[0].ID != ids[0] {
		t.Fatalf("sandboxes after 10 creates with one key: %d %s; want just %s", code, raw, ids[0])
	}
	if r := s.Exec(ids[0], "echo once"); r.Stdout != "once\n" {
		t.Errorf("exec in the sandbox: %+v", r)
	}

	other := map[string]any{"template": "base", "metadata": map[string]string{"suite": "idempotency", "other": "body"}}
	if code, _, raw := s.createWithKey(t, "/v1/sandboxes", "retry-me-1", other); code != 409 || !strings.Contains(string(raw), "different request") {
		t.Fatalf("the key with another body: %d %s; want 409 naming the different request", code, raw)
	}
	if code, _, raw := s.createWithKey(t, "/v1/sandboxes", strings.Repeat("k", 256), body); code != 400 || !strings.Contains(string(raw), "Idempotency-Key") {
		t.Fatalf("a 256-character key: %d %s; want 400 naming the header", code, raw)
	}

	// The E2B route: a retry gets the sandbox the first created.
	e2b := map[string]any{"templateID": "base", "metadata": map[string]string{"suite": "idempotency-e2b"}}
	code1, id1, raw1 := s.createWithKey(t, "/sandboxes", "retry-me-e2b", e2b)
	code2, id2, raw2 := s.createWithKey(t, "/sandboxes", "retry-me-e2b", e2b)
	if code1 != 201 || code2 != 201 || id1 == "" || id1 != id2 {
		t.Fatalf("E2B creates with one key: %d %s, then %d %s; want 201 twice with one sandbox", code1, raw1, code2, raw2)
	}
	if code, raw := s.API("GET", "/v1/sandboxes?metadata.suite=idempotency-e2b", nil, &list); code != 200 || len(list.Sandboxes) != 1 {
		t.Fatalf("E2B sandboxes: %d %s; want one", code, raw)
	}
	s.Kill(ids[0])
	s.Kill(id1)
}
