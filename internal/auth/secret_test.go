package auth

import (
	"strings"
	"testing"
)

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		secret, prefix := NewSecret()
		if !wellFormed(secret) {
			t.Fatalf("NewSecret() = %q, not well formed", secret)
		}
		if len(secret) != 43 || !strings.HasPrefix(secret, "sk_") {
			t.Fatalf("NewSecret() = %q, want sk_ and 40 characters", secret)
		}
		if prefix != secret[:11] {
			t.Fatalf("prefix %q is not the first 11 characters of %q", prefix, secret)
		}
		if seen[secret] {
			t.Fatalf("NewSecret repeated %q", secret)
		}
		seen[secret] = true
		for _, c := range secret[3:] {
			counts[c]++
		}
	}
	// 80,000 characters over 62 symbols: each is expected ~1290 times. A symbol that
	// never shows up, or shows up twice as often, means a broken alphabet mapping.
	if len(counts) != 62 {
		t.Errorf("secrets use %d distinct characters, want 62", len(counts))
	}
	for c, n := range counts {
		if n < 900 || n > 1700 {
			t.Errorf("character %q appears %d times in 80000, want about 1290", c, n)
		}
	}
}

func TestHash(t *testing.T) {
	// SHA-256 test vector from FIPS 180-2.
	if got, want := Hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("Hash(abc) = %s, want %s", got, want)
	}
	a, _ := NewSecret()
	b, _ := NewSecret()
	if Hash(a) == Hash(b) || Hash(a) != Hash(a) {
		t.Error("Hash is not a deterministic function of the secret")
	}
}

func TestWellFormed(t *testing.T) {
	good, _ := NewSecret()
	tests := []struct {
		in   string
		want bool
	}{
		{good, true},
		{"sk_" + strings.Repeat("aZ09", 10), true},
		{"", false},
		{"sk_", false},
		{good[:42], false},
		{good + "a", false},
		{"pk_" + good[3:], false},
		{"SK_" + good[3:], false},
		{"sk_" + strings.Repeat("a", 39) + "-", false},
		{"sk_" + strings.Repeat("a", 39) + "é", false},
		{" " + good, false},
	}
	for _, tc := range tests {
		if got := wellFormed(tc.in); got != tc.want {
			t.Errorf("wellFormed(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
