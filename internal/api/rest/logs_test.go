package rest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/domain"
)

var logT0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func testLogEntries() []domain.LogEntry {
	return []domain.LogEntry{
		{Timestamp: logT0, Level: "info", Message: "process started", Fields: map[string]string{"pid": "7", "cmd": "/bin/bash"}},
		{Timestamp: logT0.Add(time.Second), Level: "warn", Message: "out of memory", Fields: nil},
	}
}

func TestLogsJSON(t *testing.T) {
	h, f := newConsoleHarness(t)
	var got domain.LogQuery
	f.logs = func(_ context.Context, p domain.Principal, id string, q domain.LogQuery) ([]domain.LogEntry, error) {
		if err := scoped(p, id, domain.ScopeSandboxesRead); err != nil {
			return nil, err
		}
		got = q
		return testLogEntries(), nil
	}
	res := h.do("GET", "/v1/sandboxes/"+sbID+"/logs?since=2025-01-02T03:04:05.5Z&level=WARN&limit=5", nil)
	if res.Status != 200 {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	if !got.Start.Equal(logT0.Add(500*time.Millisecond)) || got.Level != "warn" || got.Limit != 5 {
		t.Errorf("query = %+v", got)
	}
	var body struct {
		Logs []edge.LogEntry `json:"logs"`
	}
	if err := json.Unmarshal(res.Body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Logs) != 2 || body.Logs[0].Fields["pid"] != "7" || body.Logs[1].Fields == nil || body.Logs[1].Message != "out of memory" {
		t.Errorf("logs = %+v", body.Logs)
	}

	bad := []struct{ query, field string }{
		{"since=yesterday", "since"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"level=loud", "level"},
		{"follow=maybe", "follow"},
	}
	for _, b := range bad {
		h.wantError(h.do("GET", "/v1/sandboxes/"+sbID+"/logs?"+b.query, nil), 400, "invalid", b.field)
	}
	h.wantError(h.do("GET", "/v1/sandboxes/bbbbbbbbbbbbbbbbbbbb/logs", nil), 404, "not_found", "")
}

func TestLogsFollow(t *testing.T) {
	h, f := newConsoleHarness(t)
	h.svc.get = func(_ context.Context, p domain.Principal, id string) (*domain.Sandbox, error) {
		if err := scoped(p, id, domain.ScopeSandboxesRead); err != nil {
			return nil, err
		}
		sb := testSandbox()
		sb.State, sb.EndReason = domain.StateStopped, "killed"
		return sb, nil
	}
	var got domain.LogQuery
	f.followLogs = func(_ context.Context, _ domain.Principal, _ string, q domain.LogQuery, onEntry func(domain.LogEntry) error) error {
		got = q
		for _, e := range testLogEntries() {
			if err := onEntry(e); err != nil {
				return err
			}
		}
		return nil // the sandbox ended
	}
	cases := []struct {
		name   string
		target string
		accept string
	}{
		{"follow=true", "/v1/sandboxes/" + sbID + "/logs?follow=true&since=2025-01-02T03:04:05Z", ""},
		{"Accept: text/event-stream", "/v1/sandboxes/" + sbID + "/logs?since=2025-01-02T03:04:05Z", "text/event-stream"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.req("GET", c.target, nil)
			if c.accept != "" {
				r.Header.Set("Accept", c.accept)
			}
			res := h.serve(r)
			if res.Status != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("%d %v\n%s", res.Status, res.Header, res.Body)
			}
			if !got.Start.Equal(logT0) {
				t.Errorf("since not passed: %+v", got)
			}
			evs := parseSSE(t, res.Body)
			var names []string
			for _, ev := range evs {
				names = append(names, ev.name)
			}
			if strings.Join(names, ",") != "log,log,end" {
				t.Fatalf("events %v\n%s", names, res.Body)
			}
			if !strings.Contains(evs[0].data, `"message":"process started"`) || !strings.Contains(evs[1].data, `"fields":{}`) {
				t.Errorf("log events %q %q", evs[0].data, evs[1].data)
			}
			if evs[2].data != `{"state":"stopped","end_reason":"killed"}` {
				t.Errorf("end event %s", evs[2].data)
			}
			if !strings.HasPrefix(string(res.Body), ": following") {
				t.Errorf("the stream does not open with a comment: %q", res.Body)
			}
		})
	}

	// Errors known before the stream are JSON with their status.
	h.wantError(h.do("GET", "/v1/sandboxes/bbbbbbbbbbbbbbbbbbbb/logs?follow=true", nil), 404, "not_found", "")
	h.as(domain.Principal{TeamID: "team_a", Scopes: []domain.Scope{domain.ScopeKeysRead}})
	h.wantError(h.do("GET", "/v1/sandboxes/"+sbID+"/logs?follow=true", nil), 403, "forbidden", "")
	h.as(testPrincipal)

	// A failure while following is the last event.
	f.followLogs = func(_ context.Context, _ domain.Principal, _ string, _ domain.LogQuery, onEntry func(domain.LogEntry) error) error {
		if err := onEntry(testLogEntries()[0]); err != nil {
			return err
		}
		return errors.New("disk on fire")
	}
	res := h.do("GET", "/v1/sandboxes/"+sbID+"/logs?follow=true", nil)
	evs := parseSSE(t, res.Body)
	if len(evs) != 2 || evs[0].name != "log" || evs[1].name != "error" || !strings.Contains(evs[1].data, `"code":"internal"`) {
		t.Errorf("events %+v", evs)
	}
	if strings.Contains(string(res.Body), "disk on fire") {
		t.Error("internal error text leaked to the client")
	}
	if !strings.Contains(h.logs.String(), "disk on fire") {
		t.Error("internal error not logged")
	}
}

// TestLogsFollowClientGone: when the client disconnects, following stops and nothing
// more is written.
func TestLogsFollowClientGone(t *testing.T) {
	h, f := newConsoleHarness(t)
	h.svc.get = func(context.Context, domain.Principal, string) (*domain.Sandbox, error) { return testSandbox(), nil }
	stopped := make(chan error, 1)
	f.followLogs = func(ctx context.Context, _ domain.Principal, _ string, _ domain.LogQuery, onEntry func(domain.LogEntry) error) error {
		if err := onEntry(testLogEntries()[0]); err != nil {
			return err
		}
		<-ctx.Done()
		stopped <- ctx.Err()
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := h.req("GET", "/v1/sandboxes/"+sbID+"/logs?follow=true", nil).WithContext(ctx)
	done := make(chan edgetest.Result, 1)
	go func() { done <- h.serve(r) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("follow ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("following did not stop when the client went away")
	}
	res := <-done
	if evs := parseSSE(t, res.Body); len(evs) != 1 || evs[0].name != "log" {
		t.Errorf("events after disconnect: %+v", evs)
	}
}
