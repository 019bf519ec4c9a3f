package auth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlite"
)

func TestBootstrapOwner(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	path := filepath.Join(dir, "console-admin.txt")
	if _, _, _, err := BootstrapOwner(ctx, st, path); err == nil {
		t.Fatal("BootstrapOwner before Bootstrap succeeded; want an error saying the team is missing")
	}
	if _, _, err := Bootstrap(ctx, st, filepath.Join(dir, "admin.key")); err != nil {
		t.Fatal(err)
	}
	email, pw, created, err := BootstrapOwner(ctx, st, path)
	if err != nil || !created || email != DefaultOwnerEmail || len(pw) != 20 {
		t.Fatalf("BootstrapOwner = %q %q %v %v", email, pw, created, err)
	}
	b, err := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if err != nil || strings.TrimSpace(string(b)) != email+" "+pw || fi.Mode().Perm() != 0o600 {
		t.Errorf("login file %q (%v, mode %v)", b, err, fi.Mode())
	}
	signer, _ := NewSigner([]byte(strings.Repeat("k", 32)))
	ks, _ := New(st, WithSessions(signer, 0))
	sess, err := ks.Sessions.Login(ctx, email, pw)
	if err != nil || sess.User.Role != domain.RoleOwner {
		t.Fatalf("logging in as the bootstrap owner: %+v %v", sess, err)
	}
	// A second start changes nothing.
	if _, _, created, err := BootstrapOwner(ctx, st, path); err != nil || created {
		t.Errorf("second BootstrapOwner: created %v, %v", created, err)
	}
}

// TestOwnerFileGoesAtFirstLogin: with WithOwnerFile, a failed login keeps the file, the
// owner's first login removes it, and another user's login never touches it.
func TestOwnerFileGoesAtFirstLogin(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := Bootstrap(ctx, st, filepath.Join(dir, "admin.key")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "console-admin.txt")
	email, pw, _, err := BootstrapOwner(ctx, st, path)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.txt")
	if err := os.WriteFile(other, []byte("someone@else.example pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, _ := NewSigner([]byte(strings.Repeat("k", 32)))
	for _, tc := range []struct {
		file     string
		password string
		gone     bool
	}{
		{other, pw, false}, // the file names someone else
		{path, "wrong password", false},
		{path, pw, true},
	} {
		ks, _ := New(st, WithSessions(signer, 0), WithOwnerFile(tc.file))
		_, _ = ks.Sessions.Login(ctx, email, tc.password)
		if _, err := os.Stat(tc.file); os.IsNotExist(err) != tc.gone {
			t.Errorf("file %s after a login with password %q: gone=%v, want %v", filepath.Base(tc.file), tc.password, os.IsNotExist(err), tc.gone)
		}
	}
}
