package edge

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

type principalKey struct{}

// PrincipalFrom returns the authenticated caller that Authenticate attached to ctx.
func PrincipalFrom(ctx context.Context) (domain.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(domain.Principal)
	return p, ok
}

// Principal returns the caller of an authenticated route. Authenticate guarantees it is
// there; its absence is a wiring bug, reported as an internal error.
func Principal(r *http.Request) (domain.Principal, error) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		return domain.Principal{}, fmt.Errorf("no principal on authenticated route %s", r.URL.Path)
	}
	return p, nil
}

// SandboxTarget returns the caller and the {id} path value of a route about one
// sandbox. An id that cannot be a sandbox's is not found, like another team's sandbox.
func SandboxTarget(r *http.Request) (domain.Principal, string, error) {
	p, err := Principal(r)
	if err != nil {
		return p, "", err
	}
	id := r.PathValue("id")
	if !domain.ValidSandboxID(id) {
		return p, "", domain.NotFound("sandbox", id)
	}
	return p, id, nil
}

// SandboxCall is the prelude of a route about one sandbox that takes a JSON body: the
// caller and the sandbox's id (SandboxTarget), and the body decoded into a T with decode.
func SandboxCall[T any](w http.ResponseWriter, r *http.Request, decode func(http.ResponseWriter, *http.Request, any) error) (p domain.Principal, id string, body T, err error) {
	if p, id, err = SandboxTarget(r); err == nil {
		err = decode(w, r, &body)
	}
	return p, id, body, err
}

// KillSandbox is the route that ends the caller's sandbox {id}, the same in both APIs:
// 204 No Content, and an ended or unknown sandbox is not found.
func KillSandbox(w http.ResponseWriter, r *http.Request, svc domain.SandboxService) error {
	p, id, err := SandboxTarget(r)
	if err != nil {
		return err
	}
	if err := svc.Kill(r.Context(), p, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// BearerToken returns the token of r's "Authorization: Bearer <token>" header. Without
// the header it is KindUnauthorized with the message missing; another scheme or an
// empty token is KindUnauthorized, saying what was expected, then hint (", or send the
// key as X-API-Key").
func BearerToken(r *http.Request, missing, hint string) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", domain.Errorf(domain.KindUnauthorized, "%s", missing)
	}
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", domain.Errorf(domain.KindUnauthorized, `malformed Authorization header: expected "Bearer sk_..."%s`, hint)
	}
	return token, nil
}

// Authenticate resolves the secret that credentials finds in a request to the caller's
// Principal with keys, charges the request to the team's requests_per_minute budget
// with limit (nil: no limit), and hands the request on with the Principal in its
// context. Refusals are written with WriteError. A key the store does not know is
// "invalid API key": a caller never learns whether some key exists.
func (e *Edge) Authenticate(keys domain.KeyService, credentials func(*http.Request) (string, error), limit RateLimitFunc, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, err := credentials(r)
		if err != nil {
			e.WriteError(w, r, err)
			return
		}
		p, err := keys.Authenticate(r.Context(), secret)
		if err != nil {
			if domain.IsKind(err, domain.KindNotFound) {
				err = &domain.Error{Kind: domain.KindUnauthorized, Message: "invalid API key", Err: err}
			}
			e.WriteError(w, r, err)
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.teamID = p.TeamID
		}
		if err := Limit(r.Context(), limit, "team:"+p.TeamID, p.RequestsPerMinute, "this team"); err != nil {
			e.WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// RateLimitFunc admits one request against a budget of perMinute requests per minute
// for key. A refused request gets how long to wait. An error (the limiter's backend is
// down) should be logged by the function and the request admitted: refusing every call
// because Redis is away would turn a degraded limiter into an outage.
type RateLimitFunc func(ctx context.Context, key string, perMinute int64) (allowed bool, retryAfter time.Duration)

// Limit charges one request to key's budget of perMinute requests a minute with f. A
// refusal is a requests_per_minute quota error that carries the wait; whose names the
// budget's owner in its message ("this team"). A nil f or perMinute <= 0 admits all.
func Limit(ctx context.Context, f RateLimitFunc, key string, perMinute int64, whose string) error {
	if f == nil || perMinute <= 0 {
		return nil
	}
	ok, wait := f(ctx, key, perMinute)
	if ok {
		return nil
	}
	return &domain.Error{Kind: domain.KindQuotaExceeded,
		Message: fmt.Sprintf("rate limit reached: %d requests per minute for %s; retry after %ds (see the Retry-After header)",
			perMinute, whose, retryAfterSeconds(wait)),
		Err: &domain.QuotaError{Quota: "requests_per_minute", Limit: float64(perMinute), Used: float64(perMinute), RetryAfter: wait}}
}
