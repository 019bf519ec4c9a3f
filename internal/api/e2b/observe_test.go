package e2b

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

var metricsAt = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func metricsFn(_ context.Context, _ domain.Principal, id string) (*domain.SandboxMetrics, error) {
	if id != sbID {
		return nil, domain.Errorf(domain.KindNotFound, "sandbox %q is not running", id)
	}
	return &domain.SandboxMetrics{Timestamp: metricsAt, CPUCount: 2, CPUUsedPct: 12.5,
		MemUsed: 100, MemTotal: 200, MemCache: 10, DiskUsed: 300, DiskTotal: 400}, nil
}

func TestMetrics(t *testing.T) {
	h := newHarness(t)
	h.svc.MetricsFn = metricsFn
	res := h.do("GET", "/sandboxes/"+sbID+"/metrics?start=1700000000&end=1800000000", nil)
	wantStatus(t, res, 200)
	want := []map[string]any{{
		"timestamp": "2025-01-02T03:04:05Z", "timestampUnix": float64(metricsAt.Unix()), "cpuCount": 2.0,
		"cpuUsedPct": 12.5, "memUsed": 100.0, "memTotal": 200.0, "memCache": 10.0, "diskUsed": 300.0, "diskTotal": 400.0,
	}}
	if got := res.Arr(t); !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	wantError(t, h.do("GET", "/sandboxes/"+sbID2+"/metrics", nil), 404, "not running")
	wantError(t, h.do("GET", "/sandboxes/"+sbID+"/metrics?start=-1", nil), 400, "start")
	wantError(t, h.do("GET", "/sandboxes/"+sbID+"/metrics?end=soon", nil), 400, "end")
}

func TestMetricsMany(t *testing.T) {
	h := newHarness(t)
	h.svc.MetricsFn = metricsFn
	res := h.do("GET", "/sandboxes/metrics?sandbox_ids="+sbID+","+sbID2+","+sbID, nil)
	wantStatus(t, res, 200)
	sbs, _ := res.Obj(t)["sandboxes"].(map[string]any)
	if len(sbs) != 1 || sbs[sbID] == nil {
		t.Errorf("body %s", res.Body)
	}
	wantError(t, h.do("GET", "/sandboxes/metrics", nil), 400, "sandbox_ids")

	h.svc.MetricsFn = func(context.Context, domain.Principal, string) (*domain.SandboxMetrics, error) {
		return nil, errors.New("agent exploded")
	}
	wantError(t, h.do("GET", "/sandboxes/metrics?sandbox_ids="+sbID, nil), 500, "internal error")
}

var logEntries = []domain.LogEntry{
	{Timestamp: time.UnixMilli(1000).UTC(), Level: "info", Message: "process started", Fields: map[string]string{"pid": "7"}},
	{Timestamp: time.UnixMilli(2000).UTC(), Level: "error", Message: "process failed"},
	{Timestamp: time.UnixMilli(3000).UTC(), Level: "info", Message: "process ended"},
}

func TestLogsV1(t *testing.T) {
	h := newHarness(t)
	var got domain.LogQuery
	h.svc.LogsFn = func(_ context.Context, _ domain.Principal, id string, q domain.LogQuery) ([]domain.LogEntry, error) {
		if id != sbID {
			return nil, domain.NotFound("sandbox", id)
		}
		got = q
		return logEntries[:2], nil
	}
	res := h.do("GET", "/sandboxes/"+sbID+"/logs?start=1500&limit=5", nil)
	wantStatus(t, res, 200)
	if !got.Start.Equal(time.UnixMilli(1500)) || got.Limit != 5 || got.Backward {
		t.Errorf("query %+v", got)
	}
	m := res.Obj(t)
	lines, _ := m["logs"].([]any)
	entries, _ := m["logEntries"].([]any)
	if len(lines) != 2 || len(entries) != 2 {
		t.Fatalf("body %s", res.Body)
	}
	wantLine := map[string]any{"timestamp": "1970-01-01T00:00:01Z",
		"line": `{"level":"info","msg":"process started","pid":"7","time":"1970-01-01T00:00:01Z"}`}
	if !reflect.DeepEqual(lines[0], wantLine) {
		t.Errorf("logs[0] = %#v", lines[0])
	}
	wantEntry := map[string]any{"timestamp": "1970-01-01T00:00:02Z", "level": "error", "message": "process failed", "fields": map[string]any{}}
	if !reflect.DeepEqual(entries[1], wantEntry) {
		t.Errorf("logEntries[1] = %#v", entries[1])
	}
	wantError(t, h.do("GET", "/sandboxes/"+sbID2+"/logs", nil), 404, "not found")
	wantError(t, h.do("GET", "/sandboxes/"+sbID+"/logs?limit=x", nil), 400, "limit")
}

func TestLogsV2(t *testing.T) {
	tests := []struct {
		query    string
		want     domain.LogQuery
		messages []string
	}{
		{"", domain.LogQuery{Limit: 1000}, []string{"process started", "process failed", "process ended"}},
		{"?cursor=2000&limit=10&level=warn&search=fail",
			domain.LogQuery{Start: time.UnixMilli(2000), Limit: 10, Level: "warn", Search: "fail"}, nil},
		{"?direction=backward&limit=2", domain.LogQuery{Limit: 2, Backward: true}, nil},
		// Backward from a cursor: the newest entries are fetched, those after it dropped.
		{"?direction=backward&cursor=2000&limit=1", domain.LogQuery{Limit: 1000, Backward: true}, []string{"process failed"}},
	}
	for _, tt := range tests {
		h := newHarness(t)
		var got domain.LogQuery
		h.svc.LogsFn = func(_ context.Context, _ domain.Principal, _ string, q domain.LogQuery) ([]domain.LogEntry, error) {
			got = q
			if q.Backward {
				return []domain.LogEntry{logEntries[2], logEntries[1], logEntries[0]}, nil
			}
			return logEntries, nil
		}
		res := h.do("GET", "/v2/sandboxes/"+sbID+"/logs"+tt.query, nil)
		wantStatus(t, res, 200)
		if !got.Start.Equal(tt.want.Start) {
			t.Errorf("%s: Start %v, want %v", tt.query, got.Start, tt.want.Start)
		}
		got.Start, tt.want.Start = time.Time{}, time.Time{}
		if got != tt.want {
			t.Errorf("%s: query %+v, want %+v", tt.query, got, tt.want)
		}
		m := res.Obj(t)
		if _, ok := m["logEntries"]; ok || len(m) != 1 {
			t.Errorf("%s: v2 body has keys other than logs: %s", tt.query, res.Body)
		}
		if tt.messages != nil {
			var msgs []string
			for _, e := range m["logs"].([]any) {
				msgs = append(msgs, e.(map[string]any)["message"].(string))
			}
			if !reflect.DeepEqual(msgs, tt.messages) {
				t.Errorf("%s: messages %v, want %v", tt.query, msgs, tt.messages)
			}
		}
	}
	h := newHarness(t)
	wantError(t, h.do("GET", "/v2/sandboxes/"+sbID+"/logs?direction=sideways", nil), 400, "direction")
	wantError(t, h.do("GET", "/v2/sandboxes/"+sbID+"/logs?limit=1001", nil), 400, "limit")
	wantError(t, h.do("GET", "/v2/sandboxes/"+sbID+"/logs?cursor=-3", nil), 400, "cursor")
}

func testTemplates(context.Context) ([]*domain.Template, error) {
	return []*domain.Template{
		{ID: "base", Hash: "h1", Ready: true, BuiltAt: metricsAt},
		{ID: "code-interpreter", Ready: false},
	}, nil
}

func TestTemplates(t *testing.T) {
	for _, path := range []string{"/templates", "/v2/templates"} {
		h := newHarness(t)
		h.svc.TemplatesFn = testTemplates
		res := h.do("GET", path, nil)
		wantStatus(t, res, 200)
		got := res.Arr(t)
		if len(got) != 2 {
			t.Fatalf("body %s", res.Body)
		}
		want0 := map[string]any{
			"templateID": "base", "buildID": "h1", "cpuCount": 2.0, "memoryMB": 512.0, "diskSizeMB": 2048.0,
			"public": true, "aliases": []any{"base"}, "names": []any{"base"},
			"createdAt": "2025-01-02T03:04:05Z", "updatedAt": "2025-01-02T03:04:05Z", "createdBy": nil,
			"lastSpawnedAt": nil, "spawnCount": 0.0, "buildCount": 1.0, "envdVersion": "0.6.13", "buildStatus": "ready",
		}
		if !reflect.DeepEqual(got[0], want0) {
			t.Errorf("%s: got %#v\nwant %#v", path, got[0], want0)
		}
		if got[1]["buildStatus"] != "building" || !reflect.DeepEqual(got[1]["names"], []any{"code-interpreter", "code-interpreter-v1"}) {
			t.Errorf("%s: code-interpreter %#v", path, got[1])
		}
	}
}

func TestTemplateAliasAndDelete(t *testing.T) {
	h := newHarness(t)
	h.svc.TemplatesFn = testTemplates
	res := h.do("GET", "/templates/aliases/code-interpreter-v1", nil)
	wantStatus(t, res, 200)
	if m := res.Obj(t); m["templateID"] != "code-interpreter" || m["public"] != true {
		t.Errorf("body %s", res.Body)
	}
	wantError(t, h.do("GET", "/templates/aliases/nope", nil), 404, "nope")
	wantError(t, h.do("DELETE", "/templates/snap123", nil), 404, "snap123")
	wantError(t, h.do("DELETE", "/templates/base", nil), 501, "deleting templates is not supported")
}
