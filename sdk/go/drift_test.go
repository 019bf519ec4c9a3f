package warren

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// openAPIPath is the server's OpenAPI document, relative to this package.
const openAPIPath = "../../internal/api/rest/openapi.json"

// openAPI is a loaded OpenAPI document with $ref resolution.
type openAPI struct {
	root map[string]any
}

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	raw, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatalf("reading the OpenAPI document: %v", err)
	}
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatalf("decoding %s: %v", openAPIPath, err)
	}
	return &openAPI{root: root}
}

// resolve follows $ref (repeatedly) within the document.
func (d *openAPI) resolve(v any) map[string]any {
	m, _ := v.(map[string]any)
	for m != nil {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var cur any = d.root
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			next, _ := cur.(map[string]any)
			cur = next[part]
		}
		m, _ = cur.(map[string]any)
	}
	return m
}

// alternatives returns the schemas a value may match: s itself, or the non-null
// branches of its oneOf/anyOf, and the parts of an allOf.
func (d *openAPI) alternatives(s map[string]any) []map[string]any {
	var out []map[string]any
	for _, key := range []string{"oneOf", "anyOf", "allOf"} {
		list, _ := s[key].([]any)
		for _, alt := range list {
			if a := d.resolve(alt); a != nil && a["type"] != "null" {
				out = append(out, d.alternatives(a)...)
			}
		}
	}
	if len(out) == 0 || s["properties"] != nil || s["type"] != nil {
		out = append(out, s)
	}
	return out
}

// property finds a property in any alternative of s.
func (d *openAPI) property(s map[string]any, name string) (map[string]any, bool) {
	for _, alt := range d.alternatives(s) {
		props, _ := alt["properties"].(map[string]any)
		if p, ok := props[name]; ok {
			return d.resolve(p), true
		}
	}
	return nil, false
}

// types returns the JSON types a schema allows (empty: any).
func (d *openAPI) types(s map[string]any) []string {
	var out []string
	for _, alt := range d.alternatives(s) {
		switch v := alt["type"].(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, t := range v {
				out = append(out, fmt.Sprint(t))
			}
		default:
			return nil // a branch without a type accepts anything
		}
	}
	return out
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

// jsonType is the JSON type a Go type encodes to.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return "string"
	case t == rawType:
		return ""
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return "string" // base64
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return ""
}

// jsonFields lists a struct's JSON fields, flattening embedded structs.
func jsonFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, jsonFields(ft)...)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		f.Name = name
		out = append(out, f)
	}
	return out
}

// checkType reports the JSON fields of Go type t that schema s lacks or types
// differently, recursing into nested objects and arrays. at names the place.
func (d *openAPI) checkType(t reflect.Type, s map[string]any, at string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s == nil {
		return []string{at + ": no schema"}
	}
	if want := jsonType(t); want != "" {
		if types := d.types(s); len(types) > 0 && !slices.Contains(types, want) &&
			!(want == "number" && slices.Contains(types, "integer")) {
			return []string{fmt.Sprintf("%s: the SDK reads %s as %s, the document says %v", at, t, want, types)}
		}
	}
	var probs []string
	switch {
	case t == timeType || t == rawType:
	case t.Kind() == reflect.Struct:
		for _, f := range jsonFields(t) {
			p, ok := d.property(s, f.Name)
			if !ok {
				probs = append(probs, fmt.Sprintf("%s.%s: not in the document", at, f.Name))
				continue
			}
			probs = append(probs, d.checkType(f.Type, p, at+"."+f.Name)...)
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		for _, alt := range d.alternatives(s) {
			if items := d.resolve(alt["items"]); items != nil {
				return append(probs, d.checkType(t.Elem(), items, at+"[]")...)
			}
		}
	case t.Kind() == reflect.Map:
		for _, alt := range d.alternatives(s) {
			if ap := d.resolve(alt["additionalProperties"]); ap != nil {
				return append(probs, d.checkType(t.Elem(), ap, at+"{}")...)
			}
		}
	}
	return probs
}

// operation returns the document's operation for a route, with its parameters (the
// path's and the operation's).
func (d *openAPI) operation(r *route) (op map[string]any, params map[string]bool) {
	paths, _ := d.root["paths"].(map[string]any)
	item := d.resolve(paths[r.path])
	if item == nil {
		return nil, nil
	}
	op = d.resolve(item[strings.ToLower(r.method)])
	params = map[string]bool{}
	for _, src := range []any{item["parameters"], op["parameters"]} {
		list, _ := src.([]any)
		for _, p := range list {
			if pm := d.resolve(p); pm != nil {
				params[fmt.Sprint(pm["name"])] = true
			}
		}
	}
	return op, params
}

func jsonSchemaOf(d *openAPI, content any, mediaType string) map[string]any {
	c, _ := content.(map[string]any)
	mt, _ := c[mediaType].(map[string]any)
	if mt == nil {
		return nil
	}
	return d.resolve(mt["schema"])
}

// TestOpenAPIDrift checks every route the SDK calls against the server's OpenAPI
// document: the route exists with its success status, the SDK sends only documented
// body fields and query parameters, and every JSON field the SDK decodes (responses
// and stream events) is documented with a compatible type.
func TestOpenAPIDrift(t *testing.T) {
	d := loadOpenAPI(t)
	for _, r := range routes {
		name := r.method + " " + r.path
		op, params := d.operation(r)
		if op == nil {
			t.Errorf("%s: not in %s", name, openAPIPath)
			continue
		}
		responses, _ := op["responses"].(map[string]any)
		resp := d.resolve(responses[fmt.Sprint(r.status)])
		if resp == nil {
			t.Errorf("%s: the document has no %d response", name, r.status)
			continue
		}
		for _, q := range r.query {
			if !params[q] {
				t.Errorf("%s: query parameter %q is not documented", name, q)
			}
		}
		if r.request != nil {
			body := d.resolve(op["requestBody"])
			s := jsonSchemaOf(d, body["content"], "application/json")
			for _, p := range d.checkType(reflect.TypeOf(r.request), s, name+" request") {
				t.Error(p)
			}
		}
		if r.response != nil {
			s := jsonSchemaOf(d, resp["content"], "application/json")
			for _, p := range d.checkType(reflect.TypeOf(r.response), s, name+" response") {
				t.Error(p)
			}
		}
		if r.contentType != "" {
			content, _ := resp["content"].(map[string]any)
			if content[r.contentType] == nil {
				t.Errorf("%s: the %d response has no %s content", name, r.status, r.contentType)
			}
		}
		checkEvents(t, d, r, resp)
	}
	errSchema := d.resolve(map[string]any{"$ref": "#/components/schemas/Error"})
	for _, p := range d.checkType(reflect.TypeFor[errorWire](), errSchema, "Error") {
		t.Error(p)
	}
}

func checkEvents(t *testing.T, d *openAPI, r *route, resp map[string]any) {
	t.Helper()
	if len(r.events) == 0 {
		return
	}
	content, _ := resp["content"].(map[string]any)
	sse, _ := content["text/event-stream"].(map[string]any)
	events, _ := sse["x-sse-events"].(map[string]any)
	for name, typ := range r.events {
		s := d.resolve(events[name])
		if s == nil {
			t.Errorf("%s %s: SSE event %q is not documented", r.method, r.path, name)
			continue
		}
		for _, p := range d.checkType(reflect.TypeOf(typ), s, fmt.Sprintf("%s %s event %s", r.method, r.path, name)) {
			t.Error(p)
		}
	}
}

// TestDriftCheckerCatchesDrift shows the checker fails on what it must catch.
func TestDriftCheckerCatchesDrift(t *testing.T) {
	d := loadOpenAPI(t)
	sandbox := d.resolve(map[string]any{"$ref": "#/components/schemas/Sandbox"})
	type renamed struct {
		ID      string `json:"id"`
		Renamed string `json:"no_such_field"`
	}
	type mistyped struct {
		Internet string `json:"internet"`
	}
	type nested struct {
		Limits struct {
			Bogus int `json:"bogus"`
		} `json:"limits"`
	}
	for _, c := range []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[renamed](), "no_such_field: not in the document"},
		{reflect.TypeFor[mistyped](), "internet: the SDK reads string as string, the document says [boolean]"},
		{reflect.TypeFor[nested](), "limits.bogus: not in the document"},
	} {
		probs := d.checkType(c.typ, sandbox, "Sandbox")
		if len(probs) != 1 || !strings.Contains(probs[0], c.want) {
			t.Errorf("%v: problems %q, want one with %q", c.typ, probs, c.want)
		}
	}
	if probs := d.checkType(reflect.TypeFor[SandboxInfo](), sandbox, "Sandbox"); len(probs) != 0 {
		t.Errorf("SandboxInfo: %q", probs)
	}
	if op, _ := d.operation(&route{method: "GET", path: "/v1/nowhere"}); op != nil {
		t.Error("an unknown path was found")
	}
}

// TestRouteTableComplete checks, from the source, that every route variable is in the
// routes table the drift test reads, and that no request is built without one.
func TestRouteTableComplete(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "routes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared, listed := map[string]bool{}, map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			switch {
			case name.Name == "routes":
				for _, el := range vs.Values[i].(*ast.CompositeLit).Elts {
					listed[el.(*ast.Ident).Name] = true
				}
			case strings.HasPrefix(name.Name, "route"):
				declared[name.Name] = true
			}
		}
		return true
	})
	if len(declared) < 30 {
		t.Fatalf("found only %d route variables; is the parser reading routes.go?", len(declared))
	}
	for name := range declared {
		if !listed[name] {
			t.Errorf("%s is not in the routes table", name)
		}
	}
	if len(listed) != len(routes) {
		t.Errorf("routes has %d entries, %d distinct", len(routes), len(listed))
	}
}

// notInSDK lists the operations of the document the SDK does not call, with why. A new
// route on the server fails TestOpenAPICoverage until the SDK calls it or it is listed
// here.
var notInSDK = map[string]string{
	"GET /healthz":                    "server health, for load balancers",
	"GET /readyz":                     "server readiness, for load balancers",
	"GET /v1/openapi.json":            "the document itself",
	"GET /v1/sandboxes/{id}/metrics":  "not in the SDK yet",
	"GET /v1/sandboxes/{id}/logs":     "not in the SDK yet",
	"GET /v1/sandboxes/{id}/terminal": "a WebSocket for the console's terminal; the SDK uses only net/http",
}

// TestOpenAPICoverage checks that every operation of the document is called by a route
// of the SDK or listed in notInSDK, and that notInSDK lists no route the SDK calls.
func TestOpenAPICoverage(t *testing.T) {
	d := loadOpenAPI(t)
	called := map[string]bool{}
	for _, r := range routes {
		called[r.method+" "+r.path] = true
	}
	paths, _ := d.root["paths"].(map[string]any)
	n := 0
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for method := range ops {
			switch method {
			case "get", "put", "post", "patch", "delete":
			default:
				continue
			}
			n++
			op := strings.ToUpper(method) + " " + path
			_, skipped := notInSDK[op]
			switch {
			case called[op] && skipped:
				t.Errorf("%s is called by the SDK but listed in notInSDK", op)
			case !called[op] && !skipped:
				t.Errorf("%s is in the document but the SDK does not call it: add a route (or list it in notInSDK)", op)
			}
		}
	}
	if n < 40 {
		t.Errorf("found only %d operations; is the document read?", n)
	}
	for op := range notInSDK {
		method, path, _ := strings.Cut(op, " ")
		if o, _ := d.operation(&route{method: method, path: path}); o == nil {
			t.Errorf("notInSDK lists %s, which the document does not have", op)
		}
	}
}
