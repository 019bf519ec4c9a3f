package auth

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/warren-sh/warren/internal/domain"
)

func TestPasswordRoundTrip(t *testing.T) {
	tests := []struct {
		pw    string
		wrong []string
	}{
		{"correct horse battery staple", []string{"correct horse battery stapl", "Correct horse battery staple", "correct horse battery staple ", ""}},
		{"pässwörd✓✓", []string{"passwords✓✓", "pässwörd✓"}},
		{"$argon2id$v=19$m=1$x", []string{"$argon2id$v=19$m=1$"}},
		{strings.Repeat("é", 256), []string{strings.Repeat("é", 255), strings.Repeat("e", 256)}},
	}
	for _, tc := range tests {
		hash, err := HashPassword(tc.pw)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(hash, tc.pw) {
			t.Errorf("hash %q contains the password", hash)
		}
		if ok, err := CheckPassword(hash, tc.pw); !ok || err != nil {
			t.Errorf("CheckPassword(hash of %q, same) = %v, %v; want true", tc.pw, ok, err)
		}
		for _, w := range tc.wrong {
			if ok, err := CheckPassword(hash, w); ok || err != nil {
				t.Errorf("CheckPassword(hash of %q, %q) = %v, %v; want false, nil", tc.pw, w, ok, err)
			}
		}
	}
}

func TestHashPasswordFormat(t *testing.T) {
	// 16 bytes of salt and 32 of hash in unpadded standard base64: 22 and 43 characters.
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	a, err := HashPassword("same password")
	if err != nil {
		t.Fatal(err)
	}
	b, err := HashPassword("same password")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{a, b} {
		if !phc.MatchString(h) {
			t.Errorf("HashPassword = %q, not an argon2id PHC string with m=19456,t=2,p=1", h)
		}
	}
	if a == b {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	if strings.Split(a, "$")[4] == strings.Split(b, "$")[4] {
		t.Error("two hashes share a salt")
	}
}

// TestCheckPasswordReadsParams proves that the parameters come from the hash, so that
// raising the cost later keeps old passwords working.
func TestCheckPasswordReadsParams(t *testing.T) {
	salt := []byte("0123456789abcdef")
	for _, p := range []struct {
		m, t uint32
		p    uint8
		n    uint32
	}{
		{64, 1, 1, 32},
		{128, 3, 2, 16},
		{8 * 1024, 1, 4, 64},
	} {
		key := argon2.IDKey([]byte("pw-12345"), salt, p.t, p.m, p.p, p.n)
		hash := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.m, p.t, p.p, b64.EncodeToString(salt), b64.EncodeToString(key))
		if ok, err := CheckPassword(hash, "pw-12345"); !ok || err != nil {
			t.Errorf("CheckPassword(%s) = %v, %v; want true", hash, ok, err)
		}
		if ok, err := CheckPassword(hash, "pw-12346"); ok || err != nil {
			t.Errorf("CheckPassword(%s, wrong) = %v, %v; want false, nil", hash, ok, err)
		}
	}
}

func TestCheckPasswordMalformed(t *testing.T) {
	good, err := HashPassword("password1")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=..., salt, hash
	join := func(p ...string) string { return strings.Join(p, "$") }
	tests := []struct {
		name string
		hash string
	}{
		{"empty", ""},
		{"plain text", "password1"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", join("", "argon2i", parts[2], parts[3], parts[4], parts[5])},
		{"argon2d", join("", "argon2d", parts[2], parts[3], parts[4], parts[5])},
		{"old version", join("", "argon2id", "v=16", parts[3], parts[4], parts[5])},
		{"version not a number", join("", "argon2id", "v=x", parts[3], parts[4], parts[5])},
		{"missing version", join("", "argon2id", parts[3], parts[4], parts[5])},
		{"zero memory", join("", "argon2id", parts[2], "m=0,t=2,p=1", parts[4], parts[5])},
		{"zero time", join("", "argon2id", parts[2], "m=19456,t=0,p=1", parts[4], parts[5])},
		{"zero threads", join("", "argon2id", parts[2], "m=19456,t=2,p=0", parts[4], parts[5])},
		{"params garbled", join("", "argon2id", parts[2], "m=lots", parts[4], parts[5])},
		{"params negative", join("", "argon2id", parts[2], "m=-1,t=2,p=1", parts[4], parts[5])},
		{"salt not base64", join("", "argon2id", parts[2], parts[3], "!!!!", parts[5])},
		{"hash not base64", join("", "argon2id", parts[2], parts[3], parts[4], "%%%%")},
		{"hash empty", join("", "argon2id", parts[2], parts[3], parts[4], "")},
		{"extra field", good + "$extra"},
		{"missing leading dollar", good[1:]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The right password must not match a broken hash either.
			ok, err := CheckPassword(tc.hash, "password1")
			if ok || err == nil {
				t.Errorf("CheckPassword(%q) = %v, %v; want false and an error", tc.hash, ok, err)
			}
		})
	}
}

func TestValidPassword(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		ok   bool
	}{
		{"empty", "", false},
		{"7 ASCII", "1234567", false},
		{"8 ASCII", "12345678", true},
		{"7 two-byte characters (14 bytes)", strings.Repeat("é", 7), false},
		{"8 two-byte characters", strings.Repeat("é", 8), true},
		{"4 emoji (16 bytes)", "🔑🔑🔑🔑", false},
		{"256 ASCII", strings.Repeat("a", 256), true},
		{"257 ASCII", strings.Repeat("a", 257), false},
		{"256 two-byte characters (512 bytes)", strings.Repeat("é", 256), true},
		{"257 two-byte characters", strings.Repeat("é", 257), false},
		{"256 emoji (1024 bytes)", strings.Repeat("🔑", 256), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidPassword(tc.pw)
			if tc.ok {
				if err != nil {
					t.Errorf("ValidPassword = %v, want nil", err)
				}
				return
			}
			wantKind(t, "ValidPassword", err, domain.KindInvalid, "password")
		})
	}
}
