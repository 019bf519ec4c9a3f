package rest

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

type auditTargetKey struct{}

// setTarget names the object a request created, for its audit entry (a path id is
// found without it).
func setTarget(r *http.Request, id string) {
	if t, ok := r.Context().Value(auditTargetKey{}).(*string); ok {
		*t = id
	}
}

// audit appends an entry to the caller's team's audit log once the request is done,
// whatever its outcome: refused attempts are part of the record.
func (s *Server) audit(action string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.teams == nil {
			next.ServeHTTP(w, r)
			return
		}
		target := new(string)
		r = r.WithContext(context.WithValue(r.Context(), auditTargetKey{}, target))
		next.ServeHTTP(w, r)
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			return
		}
		status := http.StatusOK
		if rec, ok := w.(*recorder); ok && rec.wroteHeader {
			status = rec.status
		}
		t := *target
		if t == "" {
			t = r.PathValue("id")
		}
		var details map[string]string
		if cid := r.PathValue("context_id"); cid != "" {
			details = map[string]string{"context_id": cid}
		}
		if path := r.URL.Query().Get("path"); path != "" && action == "sandbox.file_write" {
			details = map[string]string{"path": path}
		}
		e := &domain.AuditEntry{TeamID: p.TeamID, At: time.Now().UTC(), Action: action, Target: t, Status: status,
			RemoteAddr: clientIP(r), RequestID: requestIDFrom(r.Context()), Details: details}
		e.ActorType, e.ActorID = p.Actor()
		s.opts.teams.Record(r.Context(), e)
	})
}

// limit charges one request to key's budget of perMinute a minute.
func (s *Server) limit(r *http.Request, key string, perMinute int64) error {
	if s.opts.rateLimit == nil || perMinute <= 0 {
		return nil
	}
	ok, wait := s.opts.rateLimit(r.Context(), key, perMinute)
	if ok {
		return nil
	}
	return &domain.Error{Kind: domain.KindQuotaExceeded,
		Message: "rate limit reached: " + strconv.FormatInt(perMinute, 10) + " requests per minute for this team; retry after " + strconv.Itoa(retryAfterSeconds(wait)) + "s (see the Retry-After header)",
		Err:     &domain.QuotaError{Quota: "requests_per_minute", Limit: float64(perMinute), Used: float64(perMinute), RetryAfter: wait}}
}
