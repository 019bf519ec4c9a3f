package rest

import (
	"net/http"

	"github.com/warren-sh/warren/internal/api/edge"
)

// audit records the route's action in the caller's team's audit log (edge.Audit).
func (s *Server) audit(action string, next http.Handler) http.Handler {
	if s.opts.audit == nil {
		return next
	}
	return edge.Audit(s.opts.audit.Record, action, func(r *http.Request) map[string]string {
		if cid := r.PathValue("context_id"); cid != "" {
			return map[string]string{"context_id": cid}
		}
		if path := r.URL.Query().Get("path"); path != "" && action == "sandbox.file_write" {
			return map[string]string{"path": path}
		}
		return nil
	}, next)
}
