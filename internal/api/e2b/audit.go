package e2b

import (
	"net/http"

	"github.com/warren-sh/warren/internal/api/edge"
)

// auditActions names the state-changing routes in the audit log, with the same names
// as the /v1 API uses for the same actions.
var auditActions = map[string]string{
	"POST /v2/sandboxes":              "sandbox.create",
	"POST /sandboxes":                 "sandbox.create",
	"DELETE /sandboxes/{id}":          "sandbox.kill",
	"POST /v2/sandboxes/{id}/connect": "sandbox.connect",
	"POST /sandboxes/{id}/connect":    "sandbox.connect",
	"POST /sandboxes/{id}/timeout":    "sandbox.set_timeout",
	"POST /sandboxes/{id}/refreshes":  "sandbox.refresh",
	"POST /sandboxes/{id}/fork":       "sandbox.fork",
	"POST /sandboxes/{id}/snapshots":  "snapshot.create",
	"DELETE /templates/{id}":          "snapshot.delete",

	"POST /v3/templates":                       "template.create",
	"POST /v2/templates/{id}/builds/{buildID}": "template.build",
}

// viaE2B marks the audit entries this API writes.
func viaE2B(*http.Request) map[string]string { return map[string]string{"api": "e2b"} }

// audit records the route's action in the caller's team's audit log (edge.Audit).
func (s *Server) audit(action string, next http.Handler) http.Handler {
	return edge.Audit(s.cfg.Audit, action, viaE2B, next)
}
