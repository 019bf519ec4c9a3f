package node

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestEnsureTraversable checks that the data directory and every directory above it
// become searchable by others, given as an absolute or a relative path (a relative
// one looped forever at "." before: serve --data-dir data never started).
func TestEnsureTraversable(t *testing.T) {
	for _, rel := range []bool{false, true} {
		base := t.TempDir()
		dir := filepath.Join(base, "a", "b")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(base, "a"), 0o700); err != nil {
			t.Fatal(err)
		}
		arg := dir
		if rel {
			t.Chdir(base)
			arg = filepath.Join("a", "b")
		}
		n := &Node{log: slog.New(slog.DiscardHandler)}
		done := make(chan error, 1)
		go func() { done <- n.ensureTraversable(arg) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("ensureTraversable(%q): %v", arg, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("ensureTraversable(%q) did not return", arg)
		}
		for _, p := range []string{dir, filepath.Join(base, "a")} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o701 {
				t.Errorf("%s (relative %v): mode %v, want 0701 (o+x added, nothing else)", p, rel, fi.Mode().Perm())
			}
		}
	}
}
