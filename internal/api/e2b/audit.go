package e2b

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
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
}

// audit records the request in the caller's team's audit log once it is done.
func (s *Server) audit(action string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		if s.cfg.Audit == nil {
			return
		}
		p, ok := r.Context().Value(principalKey).(domain.Principal)
		if !ok {
			return
		}
		status := http.StatusOK
		target := r.PathValue("id")
		if rec, ok := w.(*recorder); ok {
			if rec.wroteHeader {
				status = rec.status
			}
			if target == "" {
				target = rec.sandboxID
			}
		}
		e := &domain.AuditEntry{TeamID: p.TeamID, At: time.Now().UTC(), Action: action, Target: target, Status: status,
			RemoteAddr: remoteIP(r), RequestID: requestIDFrom(r.Context()), Details: map[string]string{"api": "e2b"}}
		e.ActorType, e.ActorID = p.Actor()
		s.cfg.Audit(r.Context(), e)
	})
}

// rateLimit charges a request to the team's budget; a refusal is a rate-limit error.
func (s *Server) rateLimit(r *http.Request, p domain.Principal) error {
	if s.cfg.RateLimit == nil || p.RequestsPerMinute <= 0 {
		return nil
	}
	ok, wait := s.cfg.RateLimit(r.Context(), "team:"+p.TeamID, p.RequestsPerMinute)
	if ok {
		return nil
	}
	return &domain.Error{Kind: domain.KindQuotaExceeded,
		Message: fmt.Sprintf("rate limit reached: %d requests per minute for this team; retry after the Retry-After header's seconds", p.RequestsPerMinute),
		Err:     retryAfterError(wait)}
}

// retryAfterError carries a wait to retryAfterSeconds.
type retryAfterError time.Duration

func (e retryAfterError) Error() string             { return "retry after " + time.Duration(e).String() }
func (e retryAfterError) RetryAfter() time.Duration { return time.Duration(e) }

func remoteIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}
