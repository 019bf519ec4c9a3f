package node

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRemoveLost removes the kept images of failed resumes older than the cutoff and
// keeps the younger ones; with no such directory at all there is nothing to do.
func TestRemoveLost(t *testing.T) {
	c := &Checkpoints{n: &Node{cfg: Config{Dir: t.TempDir()}}}
	if n, err := c.RemoveLost(time.Now()); n != 0 || err != nil {
		t.Fatalf("without a lost directory: %d %v", n, err)
	}
	now := time.Now()
	for name, age := range map[string]time.Duration{"old": 48 * time.Hour, "young": time.Hour} {
		dir := filepath.Join(c.lostDir(), name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "checkpoint.img"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.RemoveLost(now.Add(-24 * time.Hour)); n != 1 || err != nil {
		t.Fatalf("RemoveLost: %d %v, want 1", n, err)
	}
	if _, err := os.Stat(filepath.Join(c.lostDir(), "old")); !os.IsNotExist(err) {
		t.Errorf("the old image is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.lostDir(), "young")); err != nil {
		t.Errorf("the young image is gone: %v", err)
	}
}
