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
