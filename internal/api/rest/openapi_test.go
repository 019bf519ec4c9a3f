package rest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
)

var httpMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

func TestOpenAPIVersion(t *testing.T) {
	doc := loadDoc(t)
	if v, _ := doc.root["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
	schemes, _ := doc.root["components"].(map[string]any)["securitySchemes"].(map[string]any)
	bearer, _ := schemes["bearer"].(map[string]any)
	if bearer["type"] != "http" || bearer["scheme"] != "bearer" {
		t.Errorf("security scheme bearer = %v", bearer)
	}
}

// TestOpenAPIRoutesMatch checks that the document describes exactly the routes the
// handler registers, with the right authentication and parameters.
func TestOpenAPIRoutesMatch(t *testing.T) {
	doc := loadDoc(t)
	documented := map[string]bool{}
	opIDs := map[string]bool{}
	for path, item := range doc.root["paths"].(map[string]any) {
		item := item.(map[string]any)
		for _, m := range httpMethods {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			key := strings.ToUpper(m) + " " + path
			documented[key] = true
			id, _ := op["operationId"].(string)
			if id == "" || opIDs[id] {
				t.Errorf("%s: missing or duplicate operationId %q", key, id)
			}
			opIDs[id] = true
			checkPathParams(t, doc, key, path, item, op)
		}
	}
	registered := map[string]bool{}
	for _, rt := range routeTable {
		key := rt.method + " " + rt.path
		registered[key] = true
		op := doc.operation(rt.method, rt.path)
		if op == nil {
			continue
		}
		sec, hasSec := op["security"].([]any)
		public := hasSec && len(sec) == 0
		if public != rt.public {
			t.Errorf("%s: documented public=%v, route public=%v", key, public, rt.public)
		}
		if !rt.public && doc.response(op, 401) == nil {
			t.Errorf("%s: 401 not documented", key)
		}
		if doc.response(op, 500) == nil && !rt.public {
			t.Errorf("%s: 500 not documented", key)
		}
	}
	if missing, extra := diff(registered, documented), diff(documented, registered); len(missing)+len(extra) > 0 {
		t.Errorf("routes not documented: %v; documented but not routed: %v", missing, extra)
	}
}

func checkPathParams(t *testing.T, doc *apiDoc, key, path string, item, op map[string]any) {
	t.Helper()
	declared := map[string]bool{}
	for _, list := range []any{item["parameters"], op["parameters"]} {
		ps, _ := list.([]any)
		for _, p := range ps {
			p := doc.resolve(p.(map[string]any))
			if p["in"] == "path" {
				declared[p["name"].(string)] = true
			}
		}
	}
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") {
			name := strings.Trim(seg, "{}")
			if !declared[name] {
				t.Errorf("%s: path parameter %q not declared", key, name)
			}
			delete(declared, name)
		}
	}
	for name := range declared {
		t.Errorf("%s: declared path parameter %q is not in the path", key, name)
	}
}

func diff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIRefsResolve walks the document and resolves every $ref.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc := loadDoc(t)
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["$ref"].(string); ok {
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Errorf("%s: %v", at, r)
						}
					}()
					doc.resolve(x)
				}()
			}
			for k, e := range x {
				walk(e, at+"/"+k)
			}
		case []any:
			for i, e := range x {
				walk(e, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(doc.root, "#")
}

func TestOpenAPIServed(t *testing.T) {
	h := newHarness(t)
	r := h.req("GET", "/v1/openapi.json", nil)
	r.Header.Del("Authorization")
	res := h.serve(r)
	if res.Status != 200 || !bytes.Equal(res.Body, openAPIDoc) || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("openapi.json: %d %v", res.Status, res.Header)
	}
	if !json.Valid(res.Body) {
		t.Error("served document is not valid JSON")
	}
}
