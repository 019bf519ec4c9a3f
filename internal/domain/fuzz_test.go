package domain

import (
	"regexp"
	"testing"
)

var sandboxIDShape = regexp.MustCompile(`^[a-z0-9]{20}$`)

// FuzzValidSandboxID checks the id validator against its definition (20 characters of
// [a-z0-9]) on arbitrary strings, and that NewID's ids pass it.
func FuzzValidSandboxID(f *testing.F) {
	for _, s := range []string{NewID(20), "", "ABCDEFGHIJ0123456789", "abcdefghij012345678\u00e9", "abcdefghij0123456789x", "../../../../../etc/pa"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := ValidSandboxID(id), sandboxIDShape.MatchString(id); got != want {
			t.Fatalf("ValidSandboxID(%q) = %v, want %v", id, got, want)
		}
		if id := NewID(20); !ValidSandboxID(id) {
			t.Fatalf("NewID(20) = %q is not a valid sandbox id", id)
		}
	})
}
