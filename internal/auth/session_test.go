package auth

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestSigner(t *testing.T, fill byte) *Signer {
	t.Helper()
	s, err := NewSigner(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignerIssueVerify(t *testing.T) {
	s := newTestSigner(t, 'k')
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	exp := now.Add(time.Hour)
	tok := s.Issue("user-1", "team-1", 7, exp)
	if !strings.HasPrefix(tok, SessionPrefix) {
		t.Fatalf("token %q lacks the %q prefix", tok, SessionPrefix)
	}
	if again := s.Issue("user-1", "team-1", 7, exp); again == tok {
		t.Error("two tokens for the same login are equal: no nonce")
	}
	tests := []struct {
		at time.Time
		ok bool
	}{
		{now.Add(-time.Hour), true},
		{now, true},
		{exp.Add(-time.Second), true},
		{exp, false},
		{exp.Add(time.Second), false},
		{exp.Add(365 * 24 * time.Hour), false},
	}
	for _, tc := range tests {
		c, err := s.Verify(tok, tc.at)
		switch {
		case tc.ok && (err != nil || c.UserID != "user-1" || c.TeamID != "team-1" || c.Expires != exp.Unix() || c.Epoch == nil || *c.Epoch != 7):
			t.Errorf("Verify at %v = %+v, %v; want user-1 of team-1 at epoch 7 expiring %v", tc.at, c, err, exp)
		case !tc.ok && err == nil:
			t.Errorf("Verify at %v (expiry %v) accepted the token", tc.at, exp)
		}
	}
}

func TestSignerRejectsForgeries(t *testing.T) {
	s := newTestSigner(t, 'k')
	other := newTestSigner(t, 'o')
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	exp := now.Add(time.Hour)
	tok := s.Issue("user-1", "team-1", 7, exp)
	payload, sig, _ := strings.Cut(strings.TrimPrefix(tok, SessionPrefix), ".")
	flip := func(str string, i int) string {
		b := []byte(str)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	enc := base64.RawURLEncoding.EncodeToString
	// signed forges a token whose signature is right for a payload it chose, to show
	// that the claims are checked too.
	signed := func(claims string) string {
		p := enc([]byte(claims))
		return SessionPrefix + p + "." + s.mac(p)
	}

	tests := []struct {
		name, tok string
	}{
		{"empty", ""},
		{"prefix only", SessionPrefix},
		{"API key prefix", "sk_" + payload + "." + sig},
		{"no prefix", payload + "." + sig},
		{"no signature", SessionPrefix + payload},
		{"empty signature", SessionPrefix + payload + "."},
		{"payload tampered", SessionPrefix + flip(payload, 5) + "." + sig},
		{"signature tampered", SessionPrefix + payload + "." + flip(sig, 3)},
		{"signature truncated", SessionPrefix + payload + "." + sig[:len(sig)-1]},
		{"other user's payload", SessionPrefix + enc([]byte(`{"u":"admin","t":"team-1","e":9999999999,"n":"x"}`)) + "." + sig},
		{"other secret", other.Issue("user-1", "team-1", 7, exp)},
		{"signed garbage", SessionPrefix + "!!!." + s.mac("!!!")},
		{"signed non-JSON", signed("not json")},
		{"signed without user", signed(`{"t":"team-1","e":9999999999,"s":7}`)},
		{"signed without team", signed(`{"u":"user-1","e":9999999999,"s":7}`)},
		{"signed without expiry", signed(`{"u":"user-1","t":"team-1","s":7}`)},
		// Tokens from before session epochs: refused, so that they cannot outlive a
		// password change.
		{"signed without epoch", signed(`{"u":"user-1","t":"team-1","e":9999999999,"n":"x"}`)},
		{"signed with a null epoch", signed(`{"u":"user-1","t":"team-1","e":9999999999,"n":"x","s":null}`)},
		{"trailing data", tok + "x"},
	}
	if _, err := s.Verify(tok, now); err != nil {
		t.Fatalf("the untampered token is refused: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := s.Verify(tc.tok, now); err == nil {
				t.Errorf("Verify(%q) accepted it: %+v", tc.tok, c)
			}
		})
	}
}

func TestNewSigner(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31} {
		if _, err := NewSigner(make([]byte, n)); err == nil {
			t.Errorf("NewSigner with a %d-byte secret succeeded", n)
		}
	}
	secret := bytes.Repeat([]byte("x"), 32)
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	tok := s.Issue("u", "t", 0, exp)
	// The signer keeps its own copy: changing the caller's slice changes nothing.
	secret[0] = 'y'
	if _, err := s.Verify(tok, time.Now()); err != nil {
		t.Errorf("token refused after the caller's secret slice changed: %v", err)
	}
	if _, err := NewSigner(bytes.Repeat([]byte("z"), 64)); err != nil {
		t.Errorf("NewSigner with a 64-byte secret: %v", err)
	}
}

func TestLoadOrCreateSigner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "secrets")
	path := filepath.Join(dir, "session.key")
	s1, err := LoadOrCreateSigner(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("secret file mode %v, want 0600", m)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("created directory mode %v, want 0700", m)
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) != 32 || !bytes.Equal(b, s1.secret) {
		t.Fatalf("secret file holds %d bytes (%v); want the signer's 32-byte secret", len(b), err)
	}
	if bytes.Equal(b, make([]byte, 32)) {
		t.Error("the created secret is all zeros")
	}

	s2, err := LoadOrCreateSigner(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s2.secret, s1.secret) {
		t.Error("reloading the signer gave another secret")
	}
	now := time.Now()
	if _, err := s2.Verify(s1.Issue("u", "t", 0, now.Add(time.Hour)), now); err != nil {
		t.Errorf("a token of the first signer is refused by the reloaded one: %v", err)
	}
	if b2, _ := os.ReadFile(path); !bytes.Equal(b2, b) {
		t.Error("reloading rewrote the secret file")
	}

	// Another directory gets another secret.
	s3, err := LoadOrCreateSigner(filepath.Join(t.TempDir(), "session.key"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(s3.secret, s1.secret) {
		t.Error("two new secret files hold the same secret")
	}
}

func TestLoadOrCreateSignerBadFile(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, []byte("too short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSigner(short); err == nil {
		t.Error("LoadOrCreateSigner accepted a 9-byte secret")
	}
	if b, _ := os.ReadFile(short); string(b) != "too short" {
		t.Error("LoadOrCreateSigner replaced an existing (bad) secret file")
	}
	// A directory where the file should be cannot be read.
	if _, err := LoadOrCreateSigner(dir); err == nil {
		t.Error("LoadOrCreateSigner on a directory succeeded")
	}
	// An operator-provided secret is used as is.
	given := filepath.Join(dir, "given.key")
	secret := bytes.Repeat([]byte("g"), 48)
	if err := os.WriteFile(given, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadOrCreateSigner(given)
	if err != nil || !bytes.Equal(s.secret, secret) {
		t.Errorf("LoadOrCreateSigner(given) = %v; want the file's secret", err)
	}
}
