package agentclient

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

func TestFileOperations(t *testing.T) {
	c := newTestAgent(t)
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(file, []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}

	deep := filepath.Join(dir, "a", "b", "c")
	fi, created, err := c.MakeDir(ctx, deep, "")
	if err != nil || !created || fi.Type != "dir" || fi.Path != deep {
		t.Fatalf("mkdir -p: %+v created=%v, %v", fi, created, err)
	}
	fi, created, err = c.MakeDir(ctx, deep, "")
	if err != nil || created || fi.Type != "dir" {
		t.Errorf("mkdir of an existing directory: %+v created=%v, %v", fi, created, err)
	}
	for _, p := range []string{file, filepath.Join(file, "sub")} {
		if _, _, err := c.MakeDir(ctx, p, ""); !domain.IsKind(err, domain.KindConflict) {
			t.Errorf("mkdir %s with a file in the way: %v, want conflict", p, err)
		}
	}

	moved := filepath.Join(dir, "x", "y", "g.txt")
	fi, err = c.Move(ctx, file, moved, "")
	if err != nil || fi.Path != moved || fi.Type != "file" || fi.Size != 2 {
		t.Fatalf("move: %+v, %v", fi, err)
	}
	if _, err := c.Stat(ctx, file, ""); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("stat of the moved file's old path: %v, want not found", err)
	}
	if _, err := c.Move(ctx, file, moved, ""); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("move of a missing file: %v, want not found", err)
	}

	if err := c.Remove(ctx, filepath.Join(dir, "a"), ""); err != nil {
		t.Fatalf("remove a tree: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Errorf("the removed tree is still there: %v", err)
	}
	if err := c.Remove(ctx, filepath.Join(dir, "a"), ""); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("remove of a missing path: %v, want not found", err)
	}
	if err := c.Remove(ctx, moved, ""); err != nil {
		t.Errorf("remove a file: %v", err)
	}
}
