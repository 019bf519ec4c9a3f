package rest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

func testSnapshot() *domain.Snapshot {
	return &domain.Snapshot{ID: "snap_0123456789abcdef", TeamID: testPrincipal.TeamID, Name: "warm", SandboxID: sbID,
		TemplateID: "base", TemplateRootFS: "/secret/path", RuntimeName: "gvisor", Limits: domain.Limits{CPUCores: 1, MemoryMB: 512},
		Env: map[string]string{"SECRET_TOKEN": "hunter2"}, AccessToken: "tok", SizeBytes: 1 << 20,
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func TestFork(t *testing.T) {
	ss := &fake.Snapshots{}
	h := newHarness(t, WithSnapshots(ss))
	var gotCount int
	var gotTimeout time.Duration
	ss.ForkFn = func(_ context.Context, p domain.Principal, id string, count int, timeout time.Duration) ([]domain.ForkResult, error) {
		if id != sbID {
			return nil, domain.NotFound("sandbox", id)
		}
		gotCount, gotTimeout = count, timeout
		out := make([]domain.ForkResult, count)
		for i := range out {
			out[i].Sandbox = testSandbox()
		}
		if count == 3 {
			out[1] = domain.ForkResult{Err: domain.CheckSandboxQuota(domain.Quota{MaxSandboxes: 2}, domain.QuotaUsage{Sandboxes: 2}, domain.Limits{})}
		}
		return out, nil
	}
	res := h.do("POST", "/v1/sandboxes/"+sbID+"/fork", `{"count":3,"timeout":60}`)
	if res.Status != http.StatusCreated || gotCount != 3 || gotTimeout != time.Minute {
		t.Fatalf("status %d (count %d, timeout %s): %s", res.Status, gotCount, gotTimeout, res.Body)
	}
	m := res.Obj(t)
	sbs, errs := m["sandboxes"].([]any), m["errors"].([]any)
	if len(sbs) != 2 || len(errs) != 1 {
		t.Fatalf("fork answer: %s", res.Body)
	}
	if e := errs[0].(map[string]any); e["index"] != 1.0 || e["status"] != 429.0 || e["code"] != "quota_exceeded" {
		t.Errorf("error item: %v", e)
	}
	if sb := sbs[0].(map[string]any); sb["id"] != sbID || sb["state"] != "running" {
		t.Errorf("sandbox item: %v", sb)
	}
	// No body: one copy, the default timeout, and no errors key.
	res = h.do("POST", "/v1/sandboxes/"+sbID+"/fork", nil)
	if res.Status != http.StatusCreated || gotCount != 1 || gotTimeout != 0 || strings.Contains(string(res.Body), "errors") {
		t.Errorf("default fork: %d %s", res.Status, res.Body)
	}
	// The count's range is the service's to check; it reaches it as given.
	ss.ForkFn = func(_ context.Context, _ domain.Principal, _ string, count int, _ time.Duration) ([]domain.ForkResult, error) {
		return nil, domain.Invalid("count", "count must be between 1 and 20, not %d", count)
	}
	h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/fork", `{"count":0}`), 400, "invalid", "count")
	h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/fork", `{"count":"x"}`), 400, "invalid", "count")
	h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/fork", `{"timeout":-1}`), 400, "invalid", "timeout")
	h.wantError(h.do("POST", "/v1/sandboxes/nope/fork", `{}`), 404, "not_found", "")
	// Nothing started: the first copy's error is the answer.
	ss.ForkFn = func(context.Context, domain.Principal, string, int, time.Duration) ([]domain.ForkResult, error) {
		return []domain.ForkResult{{Err: domain.Errorf(domain.KindUnavailable, "could not be started")}}, nil
	}
	h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/fork", `{}`), 503, "unavailable", "")

	// Without the service: 503.
	h2 := newHarness(t)
	h2.wantError(h2.do("POST", "/v1/sandboxes/"+sbID+"/fork", `{}`), 503, "unavailable", "")
}

func TestSnapshotRoutes(t *testing.T) {
	ss := &fake.Snapshots{}
	h := newHarness(t, WithSnapshots(ss))
	var gotName string
	ss.CreateSnapshotFn = func(_ context.Context, _ domain.Principal, id, name string) (*domain.Snapshot, error) {
		if id != sbID {
			return nil, domain.NotFound("sandbox", id)
		}
		gotName = name
		return testSnapshot(), nil
	}
	res := h.do("POST", "/v1/sandboxes/"+sbID+"/snapshots", `{"name":"warm"}`)
	if res.Status != http.StatusCreated || gotName != "warm" {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	m := res.Obj(t)
	if m["id"] != "snap_0123456789abcdef" || m["name"] != "warm" || m["sandbox_id"] != sbID || m["runtime"] != "gvisor" || m["size_bytes"] != float64(1<<20) {
		t.Errorf("snapshot JSON: %s", res.Body)
	}
	for _, secret := range []string{"hunter2", "tok", "/secret/path"} {
		if strings.Contains(string(res.Body), secret) {
			t.Errorf("snapshot JSON exposes %q: %s", secret, res.Body)
		}
	}
	if res := h.do("POST", "/v1/sandboxes/"+sbID+"/snapshots", nil); res.Status != http.StatusCreated || gotName != "" {
		t.Errorf("create without a body: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("POST", "/v1/sandboxes/"+sbID+"/snapshots", `{"nam":"x"}`), 400, "invalid", "nam")

	var gotFilter domain.SnapshotFilter
	ss.ListSnapshotsFn = func(_ context.Context, _ domain.Principal, f domain.SnapshotFilter) ([]*domain.Snapshot, string, error) {
		gotFilter = f
		return []*domain.Snapshot{testSnapshot()}, "next", nil
	}
	res = h.do("GET", "/v1/snapshots?sandbox_id="+sbID+"&limit=5&cursor=c", nil)
	if res.Status != 200 || gotFilter.SandboxID != sbID || gotFilter.Limit != 5 || gotFilter.Cursor != "c" {
		t.Errorf("list: %d %s (filter %+v)", res.Status, res.Body, gotFilter)
	}
	if m := res.Obj(t); len(m["snapshots"].([]any)) != 1 || m["next_cursor"] != "next" {
		t.Errorf("list: %s", res.Body)
	}
	h.wantError(h.do("GET", "/v1/snapshots?sandbox=x", nil), 400, "invalid", "sandbox")
	h.wantError(h.do("GET", "/v1/snapshots?limit=0", nil), 400, "invalid", "limit")

	ss.GetSnapshotFn = func(_ context.Context, _ domain.Principal, ref string) (*domain.Snapshot, error) {
		if ref != "warm" {
			return nil, domain.NotFound("snapshot", ref)
		}
		return testSnapshot(), nil
	}
	if res := h.do("GET", "/v1/snapshots/warm", nil); res.Status != 200 {
		t.Errorf("get: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("GET", "/v1/snapshots/other", nil), 404, "not_found", "")
	ss.DeleteSnapshotFn = func(_ context.Context, _ domain.Principal, ref string) error {
		if ref != "warm" {
			return domain.NotFound("snapshot", ref)
		}
		return nil
	}
	if res := h.do("DELETE", "/v1/snapshots/warm", nil); res.Status != 204 {
		t.Errorf("delete: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("DELETE", "/v1/snapshots/other", nil), 404, "not_found", "")
}

// TestCreateFromSnapshot: "snapshot" reaches the service, and without a template no
// default template is filled in (the snapshot's is used).
func TestCreateFromSnapshot(t *testing.T) {
	h := newHarness(t)
	var got domain.CreateSandbox
	h.svc.create = func(_ context.Context, _ domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
		got = req
		return testSandbox(), nil
	}
	res := h.do("POST", "/v1/sandboxes", `{"snapshot":"warm","env":{"A":"1"}}`)
	if res.Status != http.StatusCreated || got.Snapshot != "warm" || got.TemplateID != "" || got.Env["A"] != "1" {
		t.Errorf("create from a snapshot: %d, request %+v", res.Status, got)
	}
}
