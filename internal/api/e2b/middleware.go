package e2b

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

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// ServeHTTP is the outermost middleware: it assigns the request id, recovers panics and
// logs the request, then hands over to the mux.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := requestID(r)
	rec := &recorder{ResponseWriter: w}
	rec.Header().Set("X-Request-Id", id)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))

	defer func() {
		v := recover()
		if v != nil && v != http.ErrAbortHandler {
			s.log.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
				slog.String(logkey.RequestID, id), slog.String("panic", fmt.Sprint(v)),
				slog.String("stack", string(debug.Stack())))
			if !rec.wroteHeader {
				s.writeErrorBody(rec, r, http.StatusInternalServerError, internalMessage(id))
			}
		}
		s.logRequest(r, rec, start, v == http.ErrAbortHandler)
		if v == http.ErrAbortHandler {
			panic(v) // let net/http abort the connection
		}
	}()
	s.mux.ServeHTTP(rec, r)
}

func (s *Server) logRequest(r *http.Request, rec *recorder, start time.Time, aborted bool) {
	status := rec.status
	if !rec.wroteHeader {
		status = http.StatusOK
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
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

// requestID reuses a well-formed X-Request-Id from the client (or a proxy in front) and
// otherwise makes one. The check keeps log lines and headers free of injected junk.
func requestID(r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if id != "" && len(id) <= 64 && strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == "" {
		return id
	}
	return "req_" + domain.NewID(20)
}

// authenticate resolves the API key to a Principal and attaches it to the context.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, err := apiKey(r)
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
		if err := s.rateLimit(r, p); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

// apiKey reads the key from X-API-Key (what the E2B SDKs send; header names are
// case-insensitive) or, failing that, from Authorization: Bearer.
func apiKey(r *http.Request) (string, error) {
	if k := strings.TrimSpace(r.Header.Get("X-API-Key")); k != "" {
		return k, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", domain.Errorf(domain.KindUnauthorized,
			"missing API key: send it as the X-API-Key header (set E2B_API_KEY to a Warren key sk_...)")
	}
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", domain.Errorf(domain.KindUnauthorized,
			`malformed Authorization header: expected "Bearer sk_...", or send the key as X-API-Key`)
	}
	return token, nil
}

// principal returns the caller of an authenticated route. Its absence is a wiring bug,
// reported as an internal error.
func principal(r *http.Request) (domain.Principal, error) {
	p, ok := r.Context().Value(principalKey).(domain.Principal)
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
	// sandboxID is the sandbox a create made, for the audit log.
	sandboxID string
}

func (rec *recorder) WriteHeader(code int) {
	if !rec.wroteHeader && code >= 200 {
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

// Unwrap lets http.ResponseController reach the underlying writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
