package rest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	principalKey
)

// PrincipalFrom returns the authenticated caller that the auth middleware attached to ctx.
func PrincipalFrom(ctx context.Context) (domain.Principal, bool) {
	p, ok := ctx.Value(principalKey).(domain.Principal)
	return p, ok
}

// RequestIDFrom returns the request id of the request whose context is ctx, or "".
func RequestIDFrom(ctx context.Context) string { return requestIDFrom(ctx) }

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// ServeHTTP is the outermost middleware: it assigns the request id, recovers panics and
// logs the request, then hands over to the mux.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.serveWith(w, r, s.mux) }

// serveWith runs the outermost middleware around h.
func (s *Server) serveWith(w http.ResponseWriter, r *http.Request, h http.Handler) {
	start := time.Now()
	id := requestID(r)
	rec := &recorder{ResponseWriter: w}
	rec.Header().Set("X-Request-Id", id)
	ctx := context.WithValue(r.Context(), requestIDKey, id)
	ctx = domain.WithRequestMeta(ctx, domain.RequestMeta{RemoteAddr: clientIP(r), RequestID: id})
	r = r.WithContext(ctx)

	defer func() {
		v := recover()
		if v != nil && v != http.ErrAbortHandler {
			s.log.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
				slog.String(logkey.RequestID, id), slog.String("panic", fmt.Sprint(v)),
				slog.String("stack", string(debug.Stack())))
			if !rec.wroteHeader {
				// writeError would log again; the panic is already logged with its stack.
				s.writeErrorBody(rec, r, http.StatusInternalServerError, errorBody{
					Code: domain.KindInternal.String(), Message: internalMessage, RequestID: id,
				})
			}
		}
		s.logRequest(r, rec, start, v == http.ErrAbortHandler)
		if v == http.ErrAbortHandler {
			panic(v) // let net/http abort the connection so the client sees a broken body
		}
	}()
	h.ServeHTTP(rec, r)
}

func (s *Server) logRequest(r *http.Request, rec *recorder, start time.Time, aborted bool) {
	status := rec.status
	if !rec.wroteHeader {
		status = http.StatusOK
	}
	level := slog.LevelInfo
	if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
		level = slog.LevelDebug
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
		slog.Int64("bytes", rec.bytes),
		slog.String(logkey.RequestID, requestIDFrom(r.Context())),
	}
	if rec.teamID != "" {
		attrs = append(attrs, slog.String(logkey.TeamID, rec.teamID))
	}
	if aborted {
		attrs = append(attrs, slog.Bool("aborted", true))
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// requestID reuses a well-formed X-Request-Id from the client (or a proxy in front) and
// otherwise makes one. The check keeps log lines and headers free of injected junk.
func requestID(r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if id != "" && len(id) <= 64 {
		ok := true
		for _, c := range id {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				ok = false
				break
			}
		}
		if ok {
			return id
		}
	}
	return "req_" + domain.NewID(20)
}

// authenticate resolves the caller's credentials to a Principal and attaches it to the
// context: the bearer key, or else the console's session cookie. Cookie-authenticated
// requests must also pass the console's CSRF checks (see checkCookieRequest).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, err := credentials(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		p, err := s.keys.Authenticate(r.Context(), secret)
		if err != nil {
			if domain.IsKind(err, domain.KindNotFound) {
				// Never tell a caller whether some key exists.
				err = &domain.Error{Kind: domain.KindUnauthorized, Message: "invalid API key", Err: err}
			}
			s.writeError(w, r, err)
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.teamID = p.TeamID
		}
		if err := s.limit(r, "team:"+p.TeamID, p.RequestsPerMinute); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

// credentials returns the secret the request authenticates with: the Authorization
// header's bearer token, or else the console's session cookie, which must then pass
// checkCookieRequest.
func credentials(r *http.Request) (string, error) {
	if r.Header.Get("Authorization") == "" {
		if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
			if err := checkCookieRequest(r); err != nil {
				return "", err
			}
			if !strings.HasPrefix(c.Value, sessionPrefix) {
				return "", domain.Errorf(domain.KindUnauthorized, "the console session cookie is not a session: log in again")
			}
			return c.Value, nil
		}
	}
	return bearerToken(r)
}

func bearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", domain.Errorf(domain.KindUnauthorized,
			`missing API key: send the header "Authorization: Bearer sk_..." (or log in to the console)`)
	}
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", domain.Errorf(domain.KindUnauthorized,
			`malformed Authorization header: expected "Bearer sk_..."`)
	}
	return token, nil
}

// principal returns the caller of an authenticated route. The auth middleware guarantees
// it is there; its absence is a wiring bug, reported as an internal error.
func principal(r *http.Request) (domain.Principal, error) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		return domain.Principal{}, fmt.Errorf("no principal on authenticated route %s", r.URL.Path)
	}
	return p, nil
}

// recorder remembers what the handler wrote, for logging and for deciding whether an
// error can still be sent as JSON.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	bytes       int64
	teamID      string
}

func (rec *recorder) WriteHeader(code int) {
	// 101 Switching Protocols is final too: the connection is a WebSocket from here on.
	if !rec.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rec.status = code
		rec.wroteHeader = true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	n, err := rec.ResponseWriter.Write(p)
	rec.bytes += int64(n)
	return n, err
}

// FlushError makes the recorder usable for SSE through http.ResponseController.
func (rec *recorder) FlushError() error {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(rec.ResponseWriter).Flush()
}

// Flush implements http.Flusher for code that asserts it directly.
func (rec *recorder) Flush() { _ = rec.FlushError() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
