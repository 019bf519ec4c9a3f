package edge

import (
	"context"
	"net/http"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

type auditTargetKey struct{}

// SetTarget names the object a request created (a new sandbox's id), for its audit
// entry. Requests about an existing object need not: its {id} path value is the target.
func SetTarget(r *http.Request, id string) {
	if t, ok := r.Context().Value(auditTargetKey{}).(*string); ok {
		*t = id
	}
}

// Audit appends an entry for action to the caller's team's audit log with record once
// the request is done, whatever its outcome: refused attempts are part of the record.
// details, when not nil, adds what else the entry should say. With a nil record, Audit
// is next. It must run inside Authenticate: unauthenticated requests are not recorded.
func Audit(record func(context.Context, *domain.AuditEntry), action string, details func(*http.Request) map[string]string, next http.Handler) http.Handler {
	if record == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := new(string)
		r = r.WithContext(context.WithValue(r.Context(), auditTargetKey{}, target))
		next.ServeHTTP(w, r)
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			return
		}
		if *target == "" {
			*target = r.PathValue("id")
		}
		e := &domain.AuditEntry{TeamID: p.TeamID, At: time.Now().UTC(), Action: action, Target: *target,
			Status: status(w), RemoteAddr: ClientIP(r), RequestID: RequestID(r.Context())}
		if details != nil {
			e.Details = details(r)
		}
		e.ActorType, e.ActorID = p.Actor()
		record(r.Context(), e)
	})
}
