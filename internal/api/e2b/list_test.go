package e2b

import (
	"context"
	"net/url"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestParseMetadataQuery(t *testing.T) {
	tests := []struct {
		rawQuery string
		want     map[string]string
		bad      bool
	}{
		{"metadata=a%3Db%252520c", map[string]string{"a": "b c"}, false}, // observed from the JS SDK
		{"metadata=user%3Dann%26app%3Dprod", map[string]string{"user": "ann", "app": "prod"}, false},
		// {"k&=": "v=1&x"}: & and = inside keys and values survive, encoded once more.
		{"metadata=k%252526%25253D%3Dv%25253D1%252526x", map[string]string{"k&=": "v=1&x"}, false},
		{"metadata=a%3D", map[string]string{"a": ""}, false},
		{"", nil, false},
		{"metadata=", nil, false},
		{"metadata=a", nil, true},
		{"metadata=a%3Db%3Dc", nil, true},
		{"metadata=%3Dv", nil, true},
		{"metadata=a%3D%25zz", nil, true},
		{"metadata=%25zz", nil, true},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.rawQuery)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseMetadataQuery(q)
		if tt.bad {
			if err == nil || !domain.IsKind(err, domain.KindInvalid) {
				t.Errorf("%s: err = %v, want Invalid", tt.rawQuery, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %v, %v; want %v", tt.rawQuery, got, err, tt.want)
		}
	}
}

func TestListV2Query(t *testing.T) {
	run := []domain.SandboxState{domain.StateRunning}
	both := []domain.SandboxState{domain.StateRunning, domain.StatePaused}
	after, _ := time.Parse(time.RFC3339, "2025-01-02T03:04:05Z")
	tests := []struct {
		query string
		want  domain.SandboxFilter
	}{
		{"", domain.SandboxFilter{States: both, Limit: 100}},
		{"?metadata=a%3Db%252520c&state=running,paused", domain.SandboxFilter{States: both, Limit: 100, Metadata: map[string]string{"a": "b c"}}},
		{"?state=paused&state=running", domain.SandboxFilter{States: []domain.SandboxState{domain.StatePaused, domain.StateRunning}, Limit: 100}},
		{"?state=running", domain.SandboxFilter{States: run, Limit: 100}},
		{"?state=paused", domain.SandboxFilter{States: []domain.SandboxState{domain.StatePaused}, Limit: 100}},
		{"?order=asc&limit=2&nextToken=tok&template=code-interpreter-v1&startedAfter=2025-01-02T03:04:05Z",
			domain.SandboxFilter{States: both, Limit: 2, Ascending: true, Cursor: "tok", TemplateID: "code-interpreter", CreatedAfter: after}},
		{"?order=desc&limit=100&unknown=ignored", domain.SandboxFilter{States: both, Limit: 100}},
	}
	for _, tt := range tests {
		h := newHarness(t)
		var got domain.SandboxFilter
		h.svc.ListFn = func(_ context.Context, _ domain.Principal, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
			got = f
			return nil, "", nil
		}
		res := h.do("GET", "/v2/sandboxes"+tt.query, nil)
		wantStatus(t, res, 200)
		if string(res.Body) != "[]\n" {
			t.Errorf("%s: body %q, want []", tt.query, res.Body)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: filter %+v, want %+v", tt.query, got, tt.want)
		}
		if _, ok := res.Header["X-Next-Token"]; ok {
			t.Errorf("%s: X-Next-Token on the last page", tt.query)
		}
	}
}

func TestListV2BadQuery(t *testing.T) {
	tests := []struct{ query, msg string }{
		{"?state=stopped", "state"},
		{"?limit=0", "limit"},
		{"?limit=101", "limit"},
		{"?limit=ten", "limit"},
		{"?order=up", "order"},
		{"?startedAfter=yesterday", "startedAfter"},
		{"?metadata=novalue", "metadata"},
		{"?metadata=%25zz", "metadata"},
	}
	for _, tt := range tests {
		h := newHarness(t)
		wantError(t, h.do("GET", "/v2/sandboxes"+tt.query, nil), 400, tt.msg)
	}
	h := newHarness(t)
	h.svc.ListFn = func(context.Context, domain.Principal, domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
		return nil, "", domain.Invalid("cursor", "malformed cursor")
	}
	wantError(t, h.do("GET", "/v2/sandboxes?nextToken=junk", nil), 400, "nextToken")
}

// TestListV2Paused: paused sandboxes are listed as paused; one that changed state
// between the query and the answer is left out.
func TestListV2Paused(t *testing.T) {
	h := newHarness(t)
	h.svc.ListFn = func(_ context.Context, _ domain.Principal, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
		p := running(sbID)
		p.State = domain.StatePaused
		return []*domain.Sandbox{p, running(sbID2)}, "", nil
	}
	res := h.do("GET", "/v2/sandboxes?state=paused", nil)
	wantStatus(t, res, 200)
	got := res.Arr(t)
	if len(got) != 1 || got[0]["sandboxID"] != sbID || got[0]["state"] != "paused" {
		t.Errorf("listed %v, want the paused sandbox only", got)
	}
}

// pagedList fakes a store of n running sandboxes (plus a stopped one that must never be
// listed) paged by an index cursor.
func pagedList(n int) func(context.Context, domain.Principal, domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
	var all []*domain.Sandbox
	for i := range n {
		all = append(all, running(string(rune('a'+i))+sbID[1:]))
	}
	stopped := running(sbID2)
	stopped.State = domain.StateStopped
	return func(_ context.Context, _ domain.Principal, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
		start := 0
		if f.Cursor != "" {
			start, _ = strconv.Atoi(f.Cursor)
		}
		end := min(start+f.Limit, len(all))
		page := append([]*domain.Sandbox{}, all[start:end]...)
		if start == 0 {
			page = append(page, stopped) // a row that went stopped between query and answer
		}
		next := ""
		if end < len(all) {
			next = strconv.Itoa(end)
		}
		return page, next, nil
	}
}

func TestListV2Paging(t *testing.T) {
	h := newHarness(t)
	h.svc.ListFn = pagedList(5)
	var ids []string
	token, pages := "", 0
	for {
		target := "/v2/sandboxes?limit=2"
		if token != "" {
			target += "&nextToken=" + url.QueryEscape(token)
		}
		res := h.do("GET", target, nil)
		wantStatus(t, res, 200)
		pages++
		for _, sb := range res.Arr(t) {
			ids = append(ids, sb["sandboxID"].(string))
			if sb["state"] != "running" {
				t.Errorf("state = %v", sb["state"])
			}
		}
		token = res.Header.Get("X-Next-Token")
		if token == "" {
			break
		}
	}
	if pages != 3 || len(ids) != 5 {
		t.Errorf("pages %d ids %v", pages, ids)
	}
}

func TestListedSandboxShape(t *testing.T) {
	h := newHarness(t)
	h.svc.ListFn = func(context.Context, domain.Principal, domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
		return []*domain.Sandbox{running(sbID)}, "", nil
	}
	res := h.do("GET", "/v2/sandboxes", nil)
	wantStatus(t, res, 200)
	got := res.Arr(t)
	want := map[string]any{
		"sandboxID": sbID, "templateID": "base", "alias": "base", "clientID": DefaultClientID,
		"startedAt": "2025-01-02T03:04:06Z", "endAt": "2025-01-02T03:09:05Z", "cpuCount": 1.0,
		"memoryMB": 512.0, "diskSizeMB": 1024.0, "envdVersion": "0.6.13", "state": "running",
		"metadata": map[string]any{"user": "ann"},
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
}

func TestListV1(t *testing.T) {
	h := newHarness(t)
	list := pagedList(250)
	var filters []domain.SandboxFilter
	h.svc.ListFn = func(ctx context.Context, p domain.Principal, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
		filters = append(filters, f)
		return list(ctx, p, f)
	}
	res := h.do("GET", "/sandboxes?metadata=user%3Dann", nil)
	wantStatus(t, res, 200)
	if n := len(res.Arr(t)); n != 250 {
		t.Errorf("listed %d sandboxes, want 250", n)
	}
	if res.Header.Get("X-Next-Token") != "" {
		t.Error("v1 list is not paged")
	}
	if len(filters) != 3 || filters[0].Metadata["user"] != "ann" || filters[2].Cursor != "200" {
		t.Errorf("filters %+v", filters)
	}
	wantError(t, h.do("GET", "/sandboxes?metadata=bad", nil), 400, "metadata")
}
