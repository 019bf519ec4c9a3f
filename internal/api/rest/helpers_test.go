package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/domain"
)

// harness is a Server over fakes, with its logs captured. Every response that goes
// through serve is checked against openapi.json. svc is every sandbox service's fake:
// proc and console add the process and file operations, and the console's live views,
// to it, and are wired as those services.
type harness struct {
	t       *testing.T
	svc     *fakeSandboxes
	proc    *procFake
	console *consoleFake
	keys    *fakeKeys
	srv     *Server
	logs    *edgetest.LogBuffer
}

func newHarness(t *testing.T, opts ...Option) *harness {
	t.Helper()
	log, logs := edgetest.NewLogger()
	h := &harness{t: t, svc: &fakeSandboxes{}, keys: &fakeKeys{}, logs: logs}
	h.proc, h.console = &procFake{fakeSandboxes: h.svc}, &consoleFake{fakeSandboxes: h.svc}
	services := []Option{WithProcesses(h.proc), WithFiles(h.proc), WithLogs(h.console), WithTerminals(h.console)}
	h.srv = New(h.console, h.keys, log, append(services, opts...)...)
	return h
}

// req builds an authenticated request (see edgetest.NewRequest for body).
func (h *harness) req(method, target string, body any) *http.Request {
	h.t.Helper()
	r := edgetest.NewRequest(h.t, method, target, body)
	r.Header.Set("Authorization", "Bearer "+testKey)
	return r
}

func (h *harness) serve(r *http.Request) edgetest.Result {
	h.t.Helper()
	res := edgetest.Serve(h.t, h.srv, r)
	h.conform(r, res)
	return res
}

func (h *harness) do(method, target string, body any) edgetest.Result {
	h.t.Helper()
	return h.serve(h.req(method, target, body))
}

// wantError checks the status and the error body, and returns the body.
func (h *harness) wantError(res edgetest.Result, status int, code, field string) map[string]any {
	h.t.Helper()
	if res.Status != status {
		h.t.Fatalf("status = %d, want %d; body %s", res.Status, status, res.Body)
	}
	m := res.Obj(h.t)
	if m["code"] != code {
		h.t.Errorf("code = %v, want %q; body %s", m["code"], code, res.Body)
	}
	if got, _ := m["field"].(string); got != field {
		h.t.Errorf("field = %q, want %q; body %s", got, field, res.Body)
	}
	if m["request_id"] == "" || m["request_id"] != res.Header.Get("X-Request-Id") {
		h.t.Errorf("request_id %v does not match header %q", m["request_id"], res.Header.Get("X-Request-Id"))
	}
	return m
}

// conform checks a response against the OpenAPI document: the status is documented for
// the operation, and JSON bodies (and SSE event data) validate against their schemas.
func (h *harness) conform(r *http.Request, res edgetest.Result) {
	h.t.Helper()
	doc := loadDoc(h.t)
	_, pattern := h.srv.mux.Handler(r)
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		// The 405 and 404 fallbacks answer with the Error schema.
		h.validateJSON(r, res, doc.schema("Error"))
		return
	}
	op := doc.operation(method, path)
	if op == nil {
		h.t.Errorf("%s %s: operation not in openapi.json", method, path)
		return
	}
	resp := doc.response(op, res.Status)
	if resp == nil {
		h.t.Errorf("%s %s: status %d is not documented", method, path, res.Status)
		return
	}
	ct, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
	content, _ := resp["content"].(map[string]any)
	if len(res.Body) == 0 && content == nil {
		return
	}
	media, _ := content[ct].(map[string]any)
	if media == nil {
		h.t.Errorf("%s %s %d: content type %q is not documented", method, path, res.Status, ct)
		return
	}
	switch ct {
	case "application/json":
		h.validateJSON(r, res, media["schema"].(map[string]any))
	case "text/event-stream":
		// x-sse-events maps each event name the operation sends to its data's schema.
		events, _ := media["x-sse-events"].(map[string]any)
		if events == nil {
			h.t.Errorf("%s %s: text/event-stream without x-sse-events", method, path)
		}
		for _, ev := range parseSSE(h.t, res.Body) {
			schema, _ := events[ev.name].(map[string]any)
			if schema == nil {
				h.t.Errorf("%s %s: undocumented SSE event %q", method, path, ev.name)
				continue
			}
			var v any
			if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
				h.t.Errorf("SSE %s data is not JSON: %v", ev.name, err)
				continue
			}
			for _, e := range doc.validate(schema, v, ev.name) {
				h.t.Errorf("SSE event: %s", e)
			}
		}
	}
}

func (h *harness) validateJSON(r *http.Request, res edgetest.Result, schema map[string]any) {
	h.t.Helper()
	var v any
	if err := json.Unmarshal(res.Body, &v); err != nil {
		h.t.Errorf("%s %s: body is not JSON: %v\n%s", r.Method, r.URL, err, res.Body)
		return
	}
	for _, e := range loadDoc(h.t).validate(schema, v, "body") {
		h.t.Errorf("%s %s %d: %s\n%s", r.Method, r.URL, res.Status, e, res.Body)
	}
}

type sseEvent struct{ name, data string }

func parseSSE(t *testing.T, body []byte) []sseEvent {
	t.Helper()
	var evs []sseEvent
	for _, block := range strings.Split(string(body), "\n\n") {
		if strings.TrimSpace(block) == "" {
			continue
		}
		var ev sseEvent
		for _, line := range strings.Split(block, "\n") {
			switch {
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			default:
				t.Errorf("unexpected SSE line %q", line)
			}
		}
		if ev.name != "" {
			evs = append(evs, ev)
		}
	}
	return evs
}

// apiDoc is the parsed openapi.json with a small JSON Schema checker: $ref, type (a name
// or a list of names), enum, oneOf, required, properties, additionalProperties, items,
// minLength, pattern and date-time formats.
type apiDoc struct{ root map[string]any }

var (
	docOnce sync.Once
	docVal  *apiDoc
	docErr  error
)

func loadDoc(t *testing.T) *apiDoc {
	t.Helper()
	docOnce.Do(func() {
		var m map[string]any
		docErr = json.Unmarshal(openAPIDoc, &m)
		docVal = &apiDoc{root: m}
	})
	if docErr != nil {
		t.Fatalf("openapi.json: %v", docErr)
	}
	return docVal
}

func (d *apiDoc) resolve(v map[string]any) map[string]any {
	for {
		ref, ok := v["$ref"].(string)
		if !ok {
			return v
		}
		var cur any = d.root
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, _ := cur.(map[string]any)
			cur = m[part]
		}
		next, _ := cur.(map[string]any)
		if next == nil {
			panic("unresolvable $ref " + ref)
		}
		v = next
	}
}

func (d *apiDoc) schema(name string) map[string]any {
	return d.resolve(map[string]any{"$ref": "#/components/schemas/" + name})
}

func (d *apiDoc) operation(method, path string) map[string]any {
	paths, _ := d.root["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	return op
}

func (d *apiDoc) response(op map[string]any, status int) map[string]any {
	rs, _ := op["responses"].(map[string]any)
	r, _ := rs[fmt.Sprint(status)].(map[string]any)
	if r == nil {
		return nil
	}
	return d.resolve(r)
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func (d *apiDoc) validate(schema map[string]any, v any, at string) []string {
	schema = d.resolve(schema)
	var errs []string
	var types []any
	switch t := schema["type"].(type) {
	case string:
		types = []any{t}
	case []any:
		types = t
	}
	if len(types) > 0 {
		got, match := jsonType(v), false
		for _, want := range types {
			match = match || got == want || want == "number" && got == "integer"
		}
		if !match {
			return []string{fmt.Sprintf("%s: type %s, want %v", at, got, schema["type"])}
		}
	}
	if alts, ok := schema["oneOf"].([]any); ok {
		var matched int
		var why []string
		for i, alt := range alts {
			if es := d.validate(alt.(map[string]any), v, at); len(es) == 0 {
				matched++
			} else {
				why = append(why, fmt.Sprintf("alternative %d: %s", i, strings.Join(es, "; ")))
			}
		}
		if matched != 1 {
			errs = append(errs, fmt.Sprintf("%s: matches %d of the oneOf alternatives, want 1 (%s)", at, matched, strings.Join(why, " | ")))
		}
	}
	if enum, ok := schema["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || e == v
		}
		if !found {
			errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", at, v, enum))
		}
	}
	if s, ok := v.(string); ok {
		if n, ok := schema["minLength"].(float64); ok && float64(len(s)) < n {
			errs = append(errs, fmt.Sprintf("%s: %q is shorter than %v", at, s, n))
		}
		if p, ok := schema["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(s) {
			errs = append(errs, fmt.Sprintf("%s: %q does not match %s", at, s, p))
		}
		if schema["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339, s); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %q is not RFC 3339", at, s))
			}
		}
	}
	switch x := v.(type) {
	case map[string]any:
		req, _ := schema["required"].([]any)
		for _, name := range req {
			if _, ok := x[name.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required property %q missing", at, name))
			}
		}
		props, _ := schema["properties"].(map[string]any)
		for k, val := range x {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, d.validate(ps, val, at+"."+k)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					errs = append(errs, fmt.Sprintf("%s: undocumented property %q", at, k))
				}
			case map[string]any:
				errs = append(errs, d.validate(ap, val, at+"."+k)...)
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, item := range x {
				errs = append(errs, d.validate(items, item, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return errs
}

// Test data.

const sbID = "abcdefghij0123456789"

func testSandbox() *domain.Sandbox {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return &domain.Sandbox{
		ID: sbID, TeamID: testPrincipal.TeamID, TemplateID: "base", State: domain.StateRunning,
		Metadata: map[string]string{"user": "alice"},
		Env:      map[string]string{"SECRET_TOKEN": "hunter2", "A": "1"},
		Limits:   domain.Limits{CPUCores: 1.5, MemoryMB: 512, DiskMB: 1024, MaxProcesses: 256},
		Internet: true, RuntimeName: "gvisor", RuntimeHandle: []byte(`{"pid":1}`),
		Address: "10.11.0.2", AccessToken: "tok", CreatedAt: t0, StartedAt: t0.Add(time.Second),
		EndsAt: t0.Add(5 * time.Minute),
	}
}

// otherTeam mimics the service: sandboxes of other teams (any id but sbID) are not found.
func notFoundUnless(id string) error {
	if id == sbID {
		return nil
	}
	return domain.NotFound("sandbox", id)
}
