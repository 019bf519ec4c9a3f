package agentclient

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
	fi, created, err := c.Files().MakeDir(ctx, deep, "")
	if err != nil || !created || fi.Type != "dir" || fi.Path != deep {
		t.Fatalf("mkdir -p: %+v created=%v, %v", fi, created, err)
	}
	fi, created, err = c.Files().MakeDir(ctx, deep, "")
	if err != nil || created || fi.Type != "dir" {
		t.Errorf("mkdir of an existing directory: %+v created=%v, %v", fi, created, err)
	}
	for _, p := range []string{file, filepath.Join(file, "sub")} {
		if _, _, err := c.Files().MakeDir(ctx, p, ""); !domain.IsKind(err, domain.KindConflict) {
			t.Errorf("mkdir %s with a file in the way: %v, want conflict", p, err)
		}
	}

	moved := filepath.Join(dir, "x", "y", "g.txt")
	fi, err = c.Files().Move(ctx, file, moved, "")
	if err != nil || fi.Path != moved || fi.Type != "file" || fi.Size != 2 {
		t.Fatalf("move: %+v, %v", fi, err)
	}
	if _, err := c.Files().Stat(ctx, file, ""); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("stat of the moved file's old path: %v, want not found", err)
	}
	if _, err := c.Files().Move(ctx, file, moved, ""); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("move of a missing file: %v, want not found", err)
	}

	if err := c.Files().Remove(ctx, filepath.Join(dir, "a"), ""); err != nil {
		t.Fatalf("remove a tree: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Errorf("the removed tree is still there: %v", err)
	}
	if err := c.Files().Remove(ctx, filepath.Join(dir, "a"), ""); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("remove of a missing path: %v, want not found", err)
	}
	if err := c.Files().Remove(ctx, moved, ""); err != nil {
		t.Errorf("remove a file: %v", err)
	}
}

// TestMoveRefusals: what the filesystem does not allow is a conflict (an impossible
// request is invalid) whose message says what to do instead, never an internal error.
func TestMoveRefusals(t *testing.T) {
	c := newTestAgent(t)
	ctx := context.Background()
	dir := t.TempDir()
	write := func(p string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := write(filepath.Join(dir, "f.txt"))
	write(filepath.Join(dir, "full", "inside.txt"))
	write(filepath.Join(dir, "src", "s.txt"))
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		from, to string
		kind     domain.Kind
		hint     string
	}{
		{"onto a directory that is not empty", filepath.Join(dir, "src"), filepath.Join(dir, "full"), domain.KindConflict, "remove it first"},
		{"a file onto a directory", file, filepath.Join(dir, "empty"), domain.KindConflict, "a file cannot replace"},
		{"a directory onto a file", filepath.Join(dir, "src"), file, domain.KindConflict, "a directory cannot replace"},
		{"a directory into itself", filepath.Join(dir, "src"), filepath.Join(dir, "src", "deeper"), domain.KindInvalid, "outside it"},
	}
	// Another filesystem: /dev/shm (tmpfs) when it is not the one of the temp dir.
	var a, b syscall.Stat_t
	if syscall.Stat(dir, &a) == nil && syscall.Stat("/dev/shm", &b) == nil && a.Dev != b.Dev {
		cases = append(cases, struct {
			name     string
			from, to string
			kind     domain.Kind
			hint     string
		}{"to another filesystem", file, filepath.Join("/dev/shm", filepath.Base(dir)+"-moved.txt"), domain.KindConflict, "copy it instead"})
	} else {
		t.Log("/dev/shm is not another filesystem here: the cross-filesystem case is not run")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Files().Move(ctx, tc.from, tc.to, "")
			if !domain.IsKind(err, tc.kind) || !strings.Contains(err.Error(), tc.hint) || !strings.Contains(err.Error(), tc.from) {
				t.Errorf("move %s to %s: %v, want %v naming the source and saying %q", tc.from, tc.to, err, tc.kind, tc.hint)
			}
			if _, err := os.Lstat(tc.from); err != nil {
				t.Errorf("the source is gone after a refused move: %v", err)
			}
		})
	}
}
