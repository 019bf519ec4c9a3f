package node

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// entryOf describes what copyLayer must keep of one entry: type, mode with set-id
// bits, owner, modification time, link count, allocated size class, device number,
// content or link target, and extended attributes.
func entryOf(t *testing.T, p string) string {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	desc := fmt.Sprintf("%v %o %d:%d mtime=%d nlink=%d", fi.Mode().Type(), st.Mode&0o7777, st.Uid, st.Gid,
		syscall.TimespecToNsec(st.Mtim), st.Nlink)
	if !fi.IsDir() {
		desc += fmt.Sprintf(" sparse=%v", st.Blocks*512 < fi.Size())
	}
	switch fi.Mode().Type() {
	case fs.ModeSymlink:
		target, _ := os.Readlink(p)
		desc += " -> " + target
	case fs.ModeCharDevice:
		desc += fmt.Sprintf(" rdev=%d", st.Rdev)
	case 0:
		b, _ := os.ReadFile(p)
		desc += fmt.Sprintf(" %q", b)
	}
	buf := make([]byte, 4096)
	if n, _ := unix.Llistxattr(p, buf); n > 0 {
		for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
			v := make([]byte, 256)
			m, _ := unix.Lgetxattr(p, name, v)
			desc += fmt.Sprintf(" %s=%q", name, v[:max(m, 0)])
		}
	}
	return desc
}

// treeOf describes every entry below root, by relative path.
func treeOf(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = entryOf(t, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// simpleTree makes a layer of the kind a template snapshot has, with what a copy may
// lose: set-id bits, other owners, a read-only directory with entries, symbolic links
// (one dangling), an empty file, extended attributes (overlayfs's own among them), and
// old times on everything.
func simpleTree(t *testing.T, root string) {
	must(t, os.MkdirAll(filepath.Join(root, "home/user/.ipython/db"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "usr/local/lib/ro"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "usr/local/lib/ro/a.pyc"), []byte("bytecode"), 0o644))
	must(t, os.Chmod(filepath.Join(root, "usr/local/lib/ro"), 0o555))
	must(t, os.WriteFile(filepath.Join(root, "home/user/run"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chown(filepath.Join(root, "home/user/run"), 1000, 1000))
	must(t, os.Chmod(filepath.Join(root, "home/user/run"), 0o4755))
	must(t, os.Chown(filepath.Join(root, "home/user"), 1000, 1001))
	must(t, os.WriteFile(filepath.Join(root, "home/user/.ipython/db/empty"), nil, 0o600))
	must(t, os.Symlink("../run", filepath.Join(root, "home/user/.ipython/link")))
	must(t, os.Symlink("/nowhere", filepath.Join(root, "home/user/dangling")))
	must(t, os.Lchown(filepath.Join(root, "home/user/dangling"), 1000, 1000))
	// What overlayfs writes on its upper directories, and an opaque directory.
	must(t, unix.Lsetxattr(filepath.Join(root, "home"), "trusted.overlay.impure", []byte("y"), 0))
	must(t, unix.Lsetxattr(filepath.Join(root, "home/user/.ipython"), "trusted.overlay.opaque", []byte("y"), 0))
	must(t, unix.Lsetxattr(filepath.Join(root, "home/user/run"), "user.note", []byte("kept"), 0))
	old := time.Date(2020, 1, 2, 3, 4, 5, 6789, time.UTC)
	var paths []string
	must(t, filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	for i := len(paths) - 1; i >= 0; i-- { // entries before their directories
		ts := []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.Add(time.Duration(i) * time.Second).UnixNano())}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

// A small layer of directories, files and links is copied without cp, and the copy is
// the layer: contents, owners, modes with set-id bits, link targets, times.
func TestCopyLayerSimple(t *testing.T) {
	needRoot(t)
	src := filepath.Join(t.TempDir(), "upper")
	must(t, os.Mkdir(src, 0o755))
	simpleTree(t, src)
	if !simpleLayer(src) {
		t.Fatal("simpleLayer refused a layer of plain directories, files and links")
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if err := copyLayer(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	want, got := treeOf(t, src), treeOf(t, dst)
	if len(got) != len(want) {
		t.Errorf("%d entries copied, want %d", len(got), len(want))
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s:\n got %s\nwant %s", p, got[p], w)
		}
	}
	if err := copyLayer(context.Background(), src, dst); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("copy onto an existing directory: %v, want an error", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "home/user/run")); err != nil {
		t.Errorf("a refused copy removed what was there: %v", err)
	}
}

// A layer with what only cp copies right (a whiteout, a hard link, a hole, a fifo) or
// too many entries goes to cp, and comes out whole.
func TestCopyLayerFallsBack(t *testing.T) {
	needRoot(t)
	cases := []struct {
		name string
		make func(t *testing.T, root string)
	}{
		{"whiteout", func(t *testing.T, root string) {
			must(t, unix.Mknod(filepath.Join(root, "gone"), unix.S_IFCHR|0o000, 0))
		}},
		{"hard link", func(t *testing.T, root string) {
			must(t, os.WriteFile(filepath.Join(root, "one"), []byte("x"), 0o644))
			must(t, os.Link(filepath.Join(root, "one"), filepath.Join(root, "two")))
		}},
		{"hole", func(t *testing.T, root string) {
			f, err := os.Create(filepath.Join(root, "sparse"))
			must(t, err)
			must(t, f.Truncate(1<<20))
			must(t, f.Close())
		}},
		{"fifo", func(t *testing.T, root string) {
			must(t, unix.Mkfifo(filepath.Join(root, "pipe"), 0o644))
		}},
		{"many entries", func(t *testing.T, root string) {
			for i := 0; i <= maxSimpleEntries; i++ {
				must(t, os.WriteFile(filepath.Join(root, fmt.Sprintf("f%d", i)), nil, 0o644))
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "upper")
			must(t, os.Mkdir(src, 0o755))
			simpleTree(t, src)
			c.make(t, src)
			if simpleLayer(src) {
				t.Fatal("simpleLayer took it")
			}
			dst := filepath.Join(t.TempDir(), "copy")
			if err := copyLayer(context.Background(), src, dst); err != nil {
				t.Fatal(err)
			}
			want, got := treeOf(t, src), treeOf(t, dst)
			for p, w := range want {
				if p == "." { // cp -a stamps the top directory after its own writes too
					continue
				}
				if got[p] != w {
					t.Errorf("%s:\n got %s\nwant %s", p, got[p], w)
				}
			}
		})
	}
}
