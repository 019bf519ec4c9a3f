package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SessionPrefix starts every console session token, so that the edge can tell a session
// from an API key ("sk_").
const SessionPrefix = "ws_"

// DefaultSessionTTL is how long a console login lasts.
const DefaultSessionTTL = 12 * time.Hour

// sessionClaims is the signed payload of a session token.
type sessionClaims struct {
	UserID  string `json:"u"`
	TeamID  string `json:"t"`
	Expires int64  `json:"e"` // unix seconds
	Nonce   string `json:"n"`
	// Epoch is the user's SessionEpoch at login; the token dies when the epoch moves
	// on. Required: tokens from before epochs existed are refused.
	Epoch *int64 `json:"s"`
}

// Signer issues and checks session tokens: ws_<payload>.<HMAC-SHA256 of payload>, both
// base64url. The secret never leaves the server; rotating it ends every session.
type Signer struct {
	secret []byte
}

// NewSigner returns a signer with secret, which must be at least 32 bytes.
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("session secret is %d bytes: it needs at least 32", len(secret))
	}
	return &Signer{secret: append([]byte(nil), secret...)}, nil
}

// LoadOrCreateSigner reads the session secret from path, creating a random one (mode
// 0600) when the file does not exist. Every replica of a cluster must share the file
// (or WARREN_SESSION_SECRET).
func LoadOrCreateSigner(path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b = make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("creating session secret: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("creating session secret: %w", err)
		}
		// Written whole to a temporary file, then linked into place: a reader never sees
		// a partial file, and of two processes racing the first link wins.
		tmp, err := os.CreateTemp(filepath.Dir(path), ".session-*.key")
		if err != nil {
			return nil, fmt.Errorf("creating session secret: %w", err)
		}
		defer os.Remove(tmp.Name())
		_, werr := tmp.Write(b)
		if cerr := tmp.Close(); werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = os.Chmod(tmp.Name(), 0o600)
		}
		if werr != nil {
			return nil, fmt.Errorf("writing session secret %s: %w", path, werr)
		}
		if err := os.Link(tmp.Name(), path); err != nil {
			if errors.Is(err, os.ErrExist) {
				return LoadOrCreateSigner(path) // another process won the race
			}
			return nil, fmt.Errorf("creating session secret %s: %w", path, err)
		}
		return NewSigner(b)
	}
	if err != nil {
		return nil, fmt.Errorf("reading session secret %s: %w", path, err)
	}
	return NewSigner(b)
}

func (s *Signer) mac(payload string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Issue returns a token for the user at session epoch epoch, valid until exp.
func (s *Signer) Issue(userID, teamID string, epoch int64, exp time.Time) string {
	nonce := make([]byte, 9)
	_, _ = rand.Read(nonce)
	b, _ := json.Marshal(sessionClaims{UserID: userID, TeamID: teamID, Expires: exp.Unix(),
		Nonce: base64.RawURLEncoding.EncodeToString(nonce), Epoch: &epoch})
	payload := base64.RawURLEncoding.EncodeToString(b)
	return SessionPrefix + payload + "." + s.mac(payload)
}

// errBadSession is any token that is not a valid, unexpired session.
var errBadSession = errors.New("invalid or expired session")

// Verify checks the token's signature and expiry and returns its claims.
func (s *Signer) Verify(token string, now time.Time) (sessionClaims, error) {
	rest, ok := strings.CutPrefix(token, SessionPrefix)
	if !ok {
		return sessionClaims{}, errBadSession
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.mac(payload))) {
		return sessionClaims{}, errBadSession
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return sessionClaims{}, errBadSession
	}
	var c sessionClaims
	if err := json.Unmarshal(b, &c); err != nil || c.UserID == "" || c.TeamID == "" || c.Epoch == nil {
		return sessionClaims{}, errBadSession
	}
	if now.Unix() >= c.Expires {
		return sessionClaims{}, errBadSession
	}
	return c, nil
}
