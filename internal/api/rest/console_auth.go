package rest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

// The web console logs in with POST /console/login, which puts the session token in an
// HTTP-only cookie. /v1 accepts that cookie instead of an Authorization header, with
// two defences against cross-site requests besides SameSite=Strict:
//   - double-submit CSRF: a state-changing request must echo the readable warren_csrf
//     cookie in the X-CSRF-Token header, which another site cannot read;
//   - a WebSocket upgrade (the terminal) must come from a page of this server: its
//     Origin's host must be the request's Host.
//
// Over HTTPS the cookies carry the __Host- prefix, which browsers accept only from a
// secure origin, for Path=/ and without a Domain: no sibling host (another service under
// the same parent domain) can set or overwrite them. Over plain HTTP (a local install)
// browsers would refuse a prefixed cookie, so the plain names serve there; an HTTPS
// request never accepts a plain-named cookie, which anyone on the network could have
// planted.
const (
	sessionCookie = "warren_session"
	csrfCookie    = "warren_csrf"
	hostPrefix    = "__Host-"
	csrfHeader    = "X-CSRF-Token"
	// sessionPrefix starts console session tokens (auth.SessionPrefix); API keys are
	// not accepted in the cookie.
	sessionPrefix = "ws_"
)

const msgCSRF = "missing or wrong CSRF token: reload the console"

// credentials returns the secret the request authenticates with: the Authorization
// header's bearer token, or else the console's session cookie, which must then pass the
// console's CSRF checks (checkCookieRequest).
func credentials(r *http.Request) (string, error) {
	if r.Header.Get("Authorization") == "" {
		if c, err := r.Cookie(cookieName(r, sessionCookie)); err == nil && c.Value != "" {
			if err := checkCookieRequest(r); err != nil {
				return "", err
			}
			if !strings.HasPrefix(c.Value, sessionPrefix) {
				return "", domain.Errorf(domain.KindUnauthorized, "the console session cookie is not a session: log in again")
			}
			return c.Value, nil
		}
	}
	return edge.BearerToken(r, `missing API key: send the header "Authorization: Bearer sk_..." (or log in to the console)`, "")
}

// checkCookieRequest applies the CSRF and Origin checks to a request authenticated by
// the session cookie.
func checkCookieRequest(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if !validCSRF(r) {
			return domain.Errorf(domain.KindForbidden, msgCSRF)
		}
	}
	if isWebSocket(r) && !sameOrigin(r) {
		return domain.Errorf(domain.KindForbidden,
			"cross-site WebSocket refused: open the console from this server's own address (Origin %q, Host %q)",
			r.Header.Get("Origin"), r.Host)
	}
	return nil
}

// validCSRF reports whether the X-CSRF-Token header equals the warren_csrf cookie.
func validCSRF(r *http.Request) bool {
	c, err := r.Cookie(cookieName(r, csrfCookie))
	h := r.Header.Get(csrfHeader)
	return err == nil && c.Value != "" && h != "" && subtle.ConstantTimeCompare([]byte(c.Value), []byte(h)) == 1
}

// sameOrigin reports whether the Origin header names the host the request was sent to.
func sameOrigin(r *http.Request) bool {
	u, err := url.Parse(r.Header.Get("Origin"))
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// isWebSocket reports whether r asks to upgrade to a WebSocket.
func isWebSocket(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// ConsoleHandler serves the console's session routes, POST /console/login and POST
// /console/logout, with the same request ids, logs and error bodies as /v1. They are
// not part of /v1 (nor of its OpenAPI document): mount the handler on those two paths.
func (s *Server) ConsoleHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /console/login", s.adapt((*Server).consoleLogin))
	mux.Handle("POST /console/logout", s.adapt((*Server).consoleLogout))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console/login" || r.URL.Path == "/console/logout" {
			w.Header().Set("Allow", "POST")
			s.edge.WriteError(w, r, edge.MethodNotAllowed(r, "POST"))
			return
		}
		s.edge.WriteError(w, r, edge.NoRoute(r, "no route for", ""))
	})
	e := s.edge
	if s.opts.metrics != nil {
		e = e.WithMetrics("console", s.opts.metrics)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.Serve(w, r, mux) })
}

type consoleLoginResponse struct {
	User      userJSON  `json:"user"`
	Team      teamJSON  `json:"team"`
	ExpiresAt time.Time `json:"expires_at"`
}

// consoleLogin checks an email and password and sets the session and CSRF cookies. The
// token itself is not in the body: page scripts never see it.
func (s *Server) consoleLogin(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.checkLogin(w, r)
	if err != nil {
		return err
	}
	csrf := make([]byte, 32)
	_, _ = rand.Read(csrf)
	secure := isTLS(r)
	http.SetCookie(w, &http.Cookie{Name: cookieName(r, sessionCookie), Value: sess.Token, Path: "/", Expires: sess.ExpiresAt,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: cookieName(r, csrfCookie), Value: base64.RawURLEncoding.EncodeToString(csrf), Path: "/",
		Expires: sess.ExpiresAt, Secure: secure, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Cache-Control", "no-store")
	s.edge.WriteJSON(w, r, http.StatusOK, consoleLoginResponse{User: toUserJSON(sess.User),
		Team: toTeamJSON(sess.Team, nil), ExpiresAt: sess.ExpiresAt.UTC()})
	return nil
}

// consoleLogout ends the user's sessions when the cookie holds a live one, and clears
// both cookies. It needs the CSRF header, so that another site cannot log the user out;
// a live session is not needed (an expired one may log out too).
func (s *Server) consoleLogout(w http.ResponseWriter, r *http.Request) error {
	if !validCSRF(r) {
		return domain.Errorf(domain.KindForbidden, msgCSRF)
	}
	if c, err := r.Cookie(cookieName(r, sessionCookie)); err == nil && strings.HasPrefix(c.Value, sessionPrefix) && s.opts.sessions != nil {
		// A dead session has nothing left to end (the cookies go anyway); an outage is
		// reported, so that nobody believes a live session ended.
		p, err := s.keys.Authenticate(r.Context(), c.Value)
		if err == nil {
			err = s.opts.sessions.Logout(r.Context(), p)
		}
		if err != nil && !domain.IsKind(err, domain.KindUnauthorized) {
			return err
		}
	}
	secure := isTLS(r)
	for _, c := range []*http.Cookie{
		{Name: cookieName(r, sessionCookie), HttpOnly: true},
		{Name: cookieName(r, csrfCookie)},
	} {
		c.Path, c.MaxAge, c.Secure, c.SameSite = "/", -1, secure, http.SameSiteStrictMode
		http.SetCookie(w, c)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// cookieName is the console cookie's name for r: with the __Host- prefix over HTTPS.
func cookieName(r *http.Request, name string) string {
	if isTLS(r) {
		return hostPrefix + name
	}
	return name
}

// isTLS reports whether the client reached the server over TLS, directly or through a
// proxy that says so. A spoofed header only makes the cookies HTTPS-only.
func isTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
