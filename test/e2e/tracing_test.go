package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/telemetry/otlptest"
)

// TestTracing starts a real server exporting OTLP to an in-process receiver, creates a
// sandbox under a caller's traceparent, and checks the span tree that arrives: the
// request's server span continues the caller's trace, and the create span under it
// has the phases of a start (admission, node room, slot and row, node prepare, runtime
// start, agent ready). The JSON access log and the lifecycle event carry the trace.
// A command, a named snapshot and a sandbox restored from it have their spans too.
func TestTracing(t *testing.T) {
	rcv := otlptest.New()
	t.Cleanup(rcv.Close) // after the server's stop (cleanups run last first), which flushes to it
	s := startServer(t, serverOpts{ExtraEnv: []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + rcv.URL, "OTEL_BSP_SCHEDULE_DELAY=100", "OTEL_SERVICE_NAME=warren-e2e",
		"WARREN_LOG_FORMAT=json",
	}})
	const (
		callerTrace = "0af7651916cd43dd8448eb211c80319c"
		callerSpan  = "b7ad6b7169203331"
	)
	resp, raw := tracedCall(t, s, "POST", "/v1/sandboxes", map[string]any{"template": "base"}, callerTrace, callerSpan)
	var sb sandboxJSON
	if resp.StatusCode != 201 || json.Unmarshal(raw, &sb) != nil {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}

	phases := []string{"sandbox.admit", "sandbox.node_admit", "sandbox.reserve", "sandbox.boot", "node.prepare", "node.runtime_start",
		"sandbox.agent_ready", "store.GetTeam", "store.GetTemplate", "store.CreateSandboxWithinQuota", "store.UpdateSandbox"}
	var spans []otlptest.Span
	var server, create *otlptest.Span
	deadline := time.Now().Add(60 * time.Second)
	for {
		spans = rcv.Trace(callerTrace)
		server, create = nil, nil
		for i := range spans {
			switch spans[i].Name {
			case "POST /v1/sandboxes":
				server = &spans[i]
			case "sandbox.create":
				create = &spans[i]
			}
		}
		if server != nil && create != nil && len(otlptest.Descendants(spans, create.SpanID)) >= len(phases) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the create's spans did not all arrive; got %+v (receiver problems: %v)", spans, rcv.Problems())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if server.ParentSpanID != callerSpan || server.Kind != "SPAN_KIND_SERVER" || server.Service != "warren-e2e" {
		t.Errorf("server span %+v: want a server span of warren-e2e under the caller's span %s", server, callerSpan)
	}
	if server.Attrs["http.route"] != "/v1/sandboxes" || server.Attrs["http.response.status_code"] != "201" {
		t.Errorf("server span attributes %v", server.Attrs)
	}
	if create.ParentSpanID != server.SpanID || create.Attrs["warren.sandbox_id"] != sb.ID || create.Attrs["warren.create_path"] != "cold" {
		t.Errorf("create span %+v: want it under the server span %s, for sandbox %s, cold", create, server.SpanID, sb.ID)
	}
	below := map[string]otlptest.Span{}
	for _, d := range otlptest.Descendants(spans, create.SpanID) {
		below[d.Name] = d
	}
	for _, p := range phases {
		if _, ok := below[p]; !ok {
			t.Errorf("no %s span below sandbox.create; below it: %v", p, names(below))
		}
	}
	if below["store.CreateSandboxWithinQuota"].ParentSpanID != below["sandbox.reserve"].SpanID || below["store.GetTeam"].Attrs["db.system.name"] != "sqlite" {
		t.Errorf("store.CreateSandboxWithinQuota %+v is not under sandbox.reserve, or store.GetTeam %+v has no db.system.name", below["store.CreateSandboxWithinQuota"], below["store.GetTeam"])
	}
	boot := below["sandbox.boot"]
	for _, p := range []string{"node.prepare", "node.runtime_start", "sandbox.agent_ready"} {
		if below[p].ParentSpanID != boot.SpanID {
			t.Errorf("%s is not a child of sandbox.boot", p)
		}
	}
	if below["node.runtime_start"].Attrs["warren.runtime"] == "" {
		t.Errorf("node.runtime_start has no runtime: %v", below["node.runtime_start"].Attrs)
	}
	for _, sp := range spans {
		if strings.Contains(sp.Name, sb.ID) {
			t.Errorf("span name %q holds the sandbox id", sp.Name)
		}
		if sp.Error {
			t.Errorf("span %s failed: %v", sp.Name, sp.Attrs)
		}
	}

	// The JSON log: the access log line and the lifecycle event carry the trace.
	var access, created map[string]any
	for _, line := range strings.Split(s.Logs(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch {
		case m["msg"] == "request" && m["method"] == "POST" && m["path"] == "/v1/sandboxes":
			access = m
		case m["msg"] == "sandbox created" && m["sandbox_id"] == sb.ID:
			created = m
		}
	}
	if access == nil || access["trace_id"] != callerTrace || access["span_id"] != server.SpanID || access["request_id"] != resp.Header.Get("X-Request-Id") {
		t.Errorf("access log line %v: want trace_id %s, span_id %s, request_id %s", access, callerTrace, server.SpanID, resp.Header.Get("X-Request-Id"))
	}
	if created == nil || created["trace_id"] != callerTrace || created["span_id"] != create.SpanID || created["request_id"] != resp.Header.Get("X-Request-Id") {
		t.Errorf("lifecycle line %v: want trace_id %s, span_id %s, request_id %s", created, callerTrace, create.SpanID, resp.Header.Get("X-Request-Id"))
	}

	// A command under another trace: its server span is named by the route, with the
	// exec span below it; the kill's lifecycle line carries the kill's trace.
	const execTrace, execSpan, killTrace = "11112222333344445555666677778888", "1234123412341234", "99990000aaaabbbbccccddddeeeeffff"
	resp, raw = tracedCall(t, s, "POST", "/v1/sandboxes/"+sb.ID+"/commands", map[string]any{"cmd": "echo traced"}, execTrace, execSpan)
	if resp.StatusCode != 200 || !strings.Contains(string(raw), "traced") {
		t.Fatalf("exec: %d %s", resp.StatusCode, raw)
	}
	// A named snapshot, and a sandbox restored from it: the snapshot-restore path.
	const snapTrace, restoreTrace = "aaaa0000bbbb1111cccc2222dddd3333", "eeee4444ffff55556666777788889999"
	resp, raw = tracedCall(t, s, "POST", "/v1/sandboxes/"+sb.ID+"/snapshots", map[string]any{"name": "traced"}, snapTrace, execSpan)
	if resp.StatusCode != 201 {
		t.Fatalf("snapshot: %d %s", resp.StatusCode, raw)
	}
	resp, raw = tracedCall(t, s, "POST", "/v1/sandboxes", map[string]any{"snapshot": "traced"}, restoreTrace, execSpan)
	var restored sandboxJSON
	if resp.StatusCode != 201 || json.Unmarshal(raw, &restored) != nil {
		t.Fatalf("create from the snapshot: %d %s", resp.StatusCode, raw)
	}
	s.Kill(restored.ID)
	restorePhases := []string{"sandbox.restore", "node.prepare", "node.runtime_restore", "sandbox.agent_ready"}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		snapSpans, restoreSpans := rcv.Trace(snapTrace), rcv.Trace(restoreTrace)
		have := map[string]otlptest.Span{}
		for _, sp := range append(snapSpans, restoreSpans...) {
			have[sp.Name] = sp
		}
		missing := []string{}
		for _, n := range append([]string{"sandbox.snapshot", "sandbox.create"}, restorePhases...) {
			if _, ok := have[n]; !ok {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 {
			if c := have["sandbox.create"]; c.Attrs["warren.create_path"] != "restore" || c.Attrs["warren.sandbox_id"] != restored.ID {
				t.Errorf("create from a snapshot: %+v", c)
			}
			if r := have["sandbox.restore"]; r.ParentSpanID != have["sandbox.create"].SpanID {
				t.Errorf("sandbox.restore %+v is not under the create", r)
			}
			for _, n := range restorePhases[1:] {
				if have[n].ParentSpanID != have["sandbox.restore"].SpanID {
					t.Errorf("%s is not under sandbox.restore", n)
				}
			}
			if sn := have["sandbox.snapshot"]; sn.Attrs["warren.sandbox_id"] != sb.ID || sn.Error {
				t.Errorf("sandbox.snapshot %+v", sn)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the snapshot's and the restore's spans lack %v; got %v", missing, names(have))
		}
	}

	// The E2B API shares the edge: its route names its server span.
	const e2bTrace = "0123456789abcdef0123456789abcdef"
	if resp, raw = tracedCall(t, s, "GET", "/sandboxes/"+sb.ID, nil, e2bTrace, execSpan); resp.StatusCode != 200 {
		t.Fatalf("E2B get: %d %s", resp.StatusCode, raw)
	}
	e2bServer := func() *otlptest.Span {
		for _, sp := range rcv.Trace(e2bTrace) {
			if sp.Kind == "SPAN_KIND_SERVER" {
				return &sp
			}
		}
		return nil
	}
	for deadline := time.Now().Add(60 * time.Second); e2bServer() == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the E2B request's server span did not arrive; its trace: %+v", rcv.Trace(e2bTrace))
		}
	}
	if e := e2bServer(); e.Name != "GET /sandboxes/{id}" || e.ParentSpanID != execSpan {
		t.Errorf("E2B server span %+v: want GET /sandboxes/{id} under %s", e, execSpan)
	}

	if resp, raw = tracedCall(t, s, "DELETE", "/v1/sandboxes/"+sb.ID, nil, killTrace, execSpan); resp.StatusCode != 204 {
		t.Fatalf("kill: %d %s", resp.StatusCode, raw)
	}
	// stoppedLine is the kill's lifecycle line for sb, once the server has written it.
	stoppedLine := func() map[string]any {
		for _, line := range strings.Split(s.Logs(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "sandbox stopped" && m["sandbox_id"] == sb.ID {
				return m
			}
		}
		return nil
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		spans = rcv.Trace(execTrace)
		if len(spans) >= 2 && stoppedLine() != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command's spans or the kill's log line did not arrive; spans %+v", spans)
		}
	}
	var execServer, exec *otlptest.Span
	for i := range spans {
		switch spans[i].Name {
		case "POST /v1/sandboxes/{id}/commands":
			execServer = &spans[i]
		case "sandbox.exec":
			exec = &spans[i]
		}
	}
	if execServer == nil || exec == nil || execServer.ParentSpanID != execSpan || exec.ParentSpanID != execServer.SpanID || exec.Attrs["warren.sandbox_id"] != sb.ID {
		t.Errorf("command spans %+v: want POST /v1/sandboxes/{id}/commands under %s and sandbox.exec below it", spans, execSpan)
	}
	if m := stoppedLine(); m["trace_id"] != killTrace {
		t.Errorf("the 'sandbox stopped' line for %s is %v: want the kill's trace_id %s", sb.ID, m, killTrace)
	}
	if p := rcv.Problems(); len(p) > 0 {
		t.Errorf("the receiver refused requests: %v", p)
	}
}

// tracedCall sends one /v1 request with a traceparent of trace and span.
func tracedCall(t *testing.T, s *server, method, path string, body any, trace, span string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+s.Key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("traceparent", "00-"+trace+"-"+span+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, raw
}

func names(m map[string]otlptest.Span) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	return out
}
