package proxy

import (
	"encoding/json"
	"html"
	"net/http"
	"strconv"
	"strings"
)

// The JSON bodies below are what the E2B SDKs parse; field order matches E2B's
// proxy so the bodies are byte-identical.

type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type notFoundBody struct {
	SandboxID string `json:"sandboxId"`
	Message   string `json:"message"`
	Code      int    `json:"code"`
}

type portClosedBody struct {
	Message   string `json:"message"`
	SandboxID string `json:"sandboxId"`
	Port      int    `json:"port"`
	Code      int    `json:"code"`
}

// writeJSON answers with the proxy's own JSON. The answers are CORS-readable so
// that browser clients see a 502 as a 502 rather than as a network error, and
// never cached, since a sandbox may come back under the same name.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen with the types above
		b = []byte(`{"code":500,"message":"internal proxy error"}`)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	h.Set("Access-Control-Allow-Origin", "*")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// wantsHTML reports whether the request is a browser navigation, which gets a
// page instead of JSON. SDKs in browsers use fetch, which does not ask for
// text/html, so they still get JSON.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.UserAgent(), "Mozilla") && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// writeHTML answers a browser navigation with a short 502 page.
func writeHTML(w http.ResponseWriter, title, text string) {
	b := []byte("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + html.EscapeString(title) +
		"</title></head>\n<body><h1>" + html.EscapeString(title) + "</h1>\n<p>" + html.EscapeString(text) + "</p></body></html>\n")
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = w.Write(b)
}

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}

// preflight answers a CORS preflight the way the agent does: any origin, the
// requested method and headers.
func preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", r.Header.Get("Access-Control-Request-Method"))
	if rh := r.Header.Values("Access-Control-Request-Headers"); len(rh) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(rh, ", "))
	}
	h.Set("Access-Control-Max-Age", "7200")
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	w.WriteHeader(http.StatusNoContent)
}
