package edge

import (
	"net/http"
	"strings"
	"time"
)

// observe records the request r (served through rec since start) in the edge's metrics.
// r is the request Serve handed to the mux, which set its Pattern.
func (e *Edge) observe(r *http.Request, rec *recorder, start time.Time) {
	if e.metrics == nil {
		return
	}
	status := rec.status
	if !rec.wroteHeader {
		status = http.StatusOK
	}
	team := rec.teamID
	if team == "" {
		if p, ok := PrincipalFrom(r.Context()); ok {
			team = p.TeamID
		}
	}
	e.metrics.Request(e.api, RoutePattern(r), MethodLabel(r.Method), status, time.Since(start), team)
}

// RoutePattern is the ServeMux pattern that served r, for metrics: "unmatched" when no
// route did (the catch-all "/" or nothing). It is never the raw path.
func RoutePattern(r *http.Request) string {
	if r.Pattern == "" || r.Pattern == "/" {
		return "unmatched"
	}
	return r.Pattern
}

// MethodLabel is method when it is a standard HTTP method, else "other": clients choose
// methods, and a label must not take whatever they send.
func MethodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// countRefusal counts c in the edge's metrics when it refuses the request for a rate
// limit, a quota or node admission.
func (e *Edge) countRefusal(w http.ResponseWriter, r *http.Request, c Class) {
	if e.metrics == nil {
		return
	}
	kind, reason := refusalOf(c)
	if kind == "" {
		return
	}
	team := ""
	if rec, ok := w.(*recorder); ok {
		team = rec.teamID
	}
	if team == "" {
		if p, ok := PrincipalFrom(r.Context()); ok {
			team = p.TeamID
		}
	}
	e.metrics.Refused(kind, reason, team)
}

// refusalOf names the refusal c is: kind rate_limit, quota or admission and what ran
// out; "" when c is no refusal.
func refusalOf(c Class) (kind, reason string) {
	switch {
	case c.Code == "node_full":
		return "admission", "node_full"
	case c.Quota == nil:
		return "", ""
	case c.Code == "rate_limited":
		return "rate_limit", c.Quota.Quota
	}
	switch q := c.Quota.Quota; q {
	case "max_sandboxes":
		return "quota", "sandboxes"
	case "max_cpu_cores":
		return "quota", "cores"
	case "max_memory_mb":
		return "quota", "memory"
	case "max_disk_mb":
		return "quota", "disk"
	case "max_snapshots":
		return "quota", "snapshots"
	case "max_templates":
		return "quota", "templates"
	case "max_template_mb":
		return "quota", "template_storage"
	case "spending_limit":
		return "quota", "spending_limit"
	default:
		return "quota", strings.TrimPrefix(q, "max_")
	}
}
