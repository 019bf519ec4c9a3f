package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
)

const accessTokenHeader = "X-Access-Token"

// Signing operations for /files URLs (§3.3).
const (
	opRead  = "read"
	opWrite = "write"
)

func tokenEqual(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// withAccessToken enforces X-Access-Token once a token is set. GET /health is open;
// GET and POST /files check the header or a URL signature themselves (filesAuth).
// POST /init is not exempt: it can replace the token, so once one is set only a caller
// that knows it (the server, giving a restored or pooled sandbox its new identity) may
// call it; before that it is open, as the server's first /init finds it.
func (a *Agent) withAccessToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := a.settings.accessToken()
		if token == "" || tokenEqual(r.Header.Get(accessTokenHeader), token) || authExempt(r) {
			next.ServeHTTP(w, r)
			return
		}
		writeJSONError(w, http.StatusUnauthorized,
			"missing or wrong access token: send the sandbox's envdAccessToken in the X-Access-Token header")
	})
}

func authExempt(r *http.Request) bool {
	switch r.URL.Path {
	case "/health":
		return r.Method == http.MethodGet || r.Method == http.MethodHead
	case "/files":
		return r.Method == http.MethodGet || r.Method == http.MethodPost
	}
	return false
}

// signFiles computes a /files URL signature:
// "v1_" + base64-nopad(SHA-256("<path>:<op>:<user>:<token>[:<expiration>]")).
func signFiles(path, op, user, token string, expiration *int64) string {
	s := path + ":" + op + ":" + user + ":" + token
	if expiration != nil {
		s += ":" + strconv.FormatInt(*expiration, 10)
	}
	sum := sha256.Sum256([]byte(s))
	return "v1_" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// filesAuth authorises a /files request for op. With no token set everything is
// allowed. Otherwise a request with X-Access-Token must carry the right token, and
// one without must carry a valid, unexpired signature over the raw path and
// username query values.
func (a *Agent) filesAuth(r *http.Request, op string) error {
	token := a.settings.accessToken()
	if token == "" {
		return nil
	}
	if h := r.Header.Get(accessTokenHeader); h != "" {
		if !tokenEqual(h, token) {
			return errors.New("the X-Access-Token header does not match the sandbox's access token")
		}
		return nil
	}
	q := r.URL.Query()
	sig := q.Get("signature")
	if sig == "" {
		return errors.New("missing access token: send X-Access-Token or use a signed URL (signature query parameter)")
	}
	var exp *int64
	if s := q.Get("signature_expiration"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("signature_expiration %q is not a unix time in seconds", s)
		}
		exp = &v
	}
	want := signFiles(q.Get("path"), op, q.Get("username"), token, exp)
	if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) != 1 {
		return fmt.Errorf("invalid signature for %s of path %q", op, q.Get("path"))
	}
	if exp != nil && *exp < time.Now().Unix() {
		return errors.New("the signed URL has expired; ask for a new one")
	}
	return nil
}

// userNamed returns the named user, or the default user for "". The error says what
// to do; callers map it to 401 / unauthenticated.
func (a *Agent) userNamed(name string) (*User, error) {
	if name == "" {
		name, _ = a.settings.defaults()
	}
	u, err := a.users.lookup(name)
	if err != nil {
		if errors.Is(err, errUnknownUser) {
			return nil, fmt.Errorf("invalid username: %q does not exist in the sandbox%w", name, errQuiet{errUnknownUser})
		}
		return nil, fmt.Errorf("looking up user %q: %w", name, err)
	}
	return u, nil
}

// rpcUser returns the user an RPC runs as: the HTTP Basic auth username (password
// ignored), or the default user when there is no Basic auth header.
func (a *Agent) rpcUser(h http.Header) (*User, error) {
	name := ""
	if auth := h.Get("Authorization"); auth != "" {
		const prefix = "basic "
		if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
			return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("unsupported Authorization header: use Basic auth with the user name"))
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(auth[len(prefix):]))
		if err != nil {
			return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("malformed Basic auth header"))
		}
		name, _, _ = strings.Cut(string(raw), ":")
	}
	u, err := a.userNamed(name)
	if err != nil {
		// An unknown user is unauthenticated, as envd answers. A passwd file the agent
		// cannot read is the sandbox's state (something in it broke the file), not the
		// caller's credentials: the server would take Unauthenticated for a refused
		// access token.
		code := connect.CodeUnauthenticated
		if !errors.Is(err, errUnknownUser) {
			code = connect.CodeFailedPrecondition
		}
		return nil, connect.NewError(code, err)
	}
	return u, nil
}

// errQuiet wraps an error for errors.Is without adding to the message.
type errQuiet struct{ err error }

func (e errQuiet) Error() string { return "" }
func (e errQuiet) Unwrap() error { return e.err }

// resolveFor resolves a request path for u against the default workdir.
func (a *Agent) resolveFor(p string, u *User) string {
	_, workdir := a.settings.defaults()
	return resolvePath(p, u, workdir)
}
