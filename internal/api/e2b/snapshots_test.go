package e2b

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

// withSnapshots gives the harness's server a fake snapshot service.
func (h *harness) withSnapshots() *fake.Snapshots {
	ss := &fake.Snapshots{}
	h.srv = New(h.svc, h.keys, h.srv.log, Config{Domain: testDomain, Logs: h.svc, Snapshots: ss})
	return ss
}

func TestFork(t *testing.T) {
	h := newHarness(t)
	ss := h.withSnapshots()
	stopped := running(sbID2)
	stopped.State = domain.StateStopped
	h.getReturns(running(sbID), stopped)
	var gotCount int
	var gotTimeout time.Duration
	ss.ForkFn = func(_ context.Context, _ domain.Principal, id string, count int, timeout time.Duration) ([]domain.ForkResult, error) {
		gotCount, gotTimeout = count, timeout
		if count > 20 {
			return nil, domain.Invalid("count", "count must be between 1 and 20, not %d", count)
		}
		out := make([]domain.ForkResult, count)
		for i := range out {
			out[i].Sandbox = running("forkforkforkfork000" + string(rune('0'+i)))
		}
		out[count-1] = domain.ForkResult{Err: domain.CheckSandboxQuota(domain.Quota{MaxSandboxes: 1}, domain.QuotaUsage{Sandboxes: 1}, domain.Limits{})}
		return out, nil
	}
	res := h.do("POST", "/sandboxes/"+sbID+"/fork", `{"count":3,"timeout":60}`)
	wantStatus(t, res, 201)
	if gotCount != 3 || gotTimeout != time.Minute {
		t.Errorf("service asked for %d copies, timeout %s", gotCount, gotTimeout)
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(res.Body, &items); err != nil || len(items) != 3 {
		t.Fatalf("fork answer: %v %s", err, res.Body)
	}
	for i, it := range items[:2] {
		var sb map[string]any
		if _, bad := it["error"]; bad || json.Unmarshal(it["sandbox"], &sb) != nil || sb["sandboxID"] == "" || sb["envdAccessToken"] != "envd-token" || sb["envdVersion"] == "" {
			t.Errorf("item %d: %s", i, res.Body)
		}
	}
	var e errorBody
	if _, bad := items[2]["sandbox"]; bad || json.Unmarshal(items[2]["error"], &e) != nil || e.Code != 429 || e.Message == "" {
		t.Errorf("error item: %s", res.Body)
	}
	// Defaults: one copy, the server's timeout.
	wantStatus(t, h.do("POST", "/sandboxes/"+sbID+"/fork", `{}`), 201)
	if gotCount != 1 || gotTimeout != 0 {
		t.Errorf("defaults: %d copies, timeout %s", gotCount, gotTimeout)
	}
	wantError(t, h.do("POST", "/sandboxes/"+sbID+"/fork", `{"count":21}`), 400, "between 1 and 20")
	wantError(t, h.do("POST", "/sandboxes/"+sbID+"/fork", `{"timeout":-1}`), 400, "timeout")
	// E2B forgets ended sandboxes: 404 (the SDK checks the status for this call).
	wantError(t, h.do("POST", "/sandboxes/"+sbID2+"/fork", `{}`), 404, "not found")
	wantError(t, h.do("POST", "/sandboxes/cbcdefghij0123456789/fork", `{}`), 404, "not found")
	ss.ForkFn = func(context.Context, domain.Principal, string, int, time.Duration) ([]domain.ForkResult, error) {
		return nil, domain.Errorf(domain.KindConflict, "sandbox is paused: resume it first")
	}
	wantError(t, h.do("POST", "/sandboxes/"+sbID+"/fork", `{}`), 409, "resume it first")
}

func TestSnapshots(t *testing.T) {
	h := newHarness(t)
	ss := h.withSnapshots()
	h.getReturns(running(sbID))
	snap := &domain.Snapshot{ID: "snap_0123456789abcdef", TeamID: testTeam.TeamID, Name: "warm", SandboxID: sbID, TemplateID: "base"}
	var gotName string
	ss.CreateSnapshotFn = func(_ context.Context, _ domain.Principal, id, name string) (*domain.Snapshot, error) {
		gotName = name
		return snap, nil
	}
	res := h.do("POST", "/sandboxes/"+sbID+"/snapshots", `{"name":"warm"}`)
	wantStatus(t, res, 201)
	if gotName != "warm" || strings.TrimSpace(string(res.Body)) != `{"snapshotID":"snap_0123456789abcdef","names":["warm"]}` {
		t.Errorf("create: name %q, %s", gotName, res.Body)
	}
	wantError(t, h.do("POST", "/sandboxes/cbcdefghij0123456789/snapshots", `{}`), 404, "not found")

	var gotFilter domain.SnapshotFilter
	ss.ListSnapshotsFn = func(_ context.Context, _ domain.Principal, f domain.SnapshotFilter) ([]*domain.Snapshot, string, error) {
		gotFilter = f
		unnamed := *snap
		unnamed.Name = ""
		return []*domain.Snapshot{snap, &unnamed}, "more", nil
	}
	res = h.do("GET", "/snapshots?sandboxID="+sbID+"&limit=2&nextToken=abc", nil)
	wantStatus(t, res, 200)
	if gotFilter.SandboxID != sbID || gotFilter.Limit != 2 || gotFilter.Cursor != "abc" || res.Header.Get("X-Next-Token") != "more" {
		t.Errorf("list: filter %+v, next %q", gotFilter, res.Header.Get("X-Next-Token"))
	}
	if strings.TrimSpace(string(res.Body)) != `[{"snapshotID":"snap_0123456789abcdef","names":["warm"]},{"snapshotID":"snap_0123456789abcdef","names":[]}]` {
		t.Errorf("list: %s", res.Body)
	}
	wantError(t, h.do("GET", "/snapshots?limit=0", nil), 400, "limit")

	// deleteSnapshot: a snapshot goes (204), an unknown id is 404 (the SDK: false), a
	// built-in template is not deleted.
	h.svc.TemplatesFn = func(context.Context) ([]*domain.Template, error) {
		return []*domain.Template{{ID: "base", Ready: true}}, nil
	}
	ss.DeleteSnapshotFn = func(_ context.Context, _ domain.Principal, ref string) error {
		if ref != snap.ID {
			return domain.NotFound("snapshot", ref)
		}
		return nil
	}
	wantNoContent(t, h.do("DELETE", "/templates/"+snap.ID, nil))
	wantError(t, h.do("DELETE", "/templates/snap_ffffffffffffffff", nil), 404, "not found")
	wantError(t, h.do("DELETE", "/templates/base", nil), 501, "deleting templates")
}
