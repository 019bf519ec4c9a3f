package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Bounds of a layer that copyLayer copies itself rather than with cp: a template
// snapshot's upper layer is a few dozen small files (code-interpreter's: 22 entries,
// 168 KiB), where starting cp took 4.5-7 ms of a restore's preparation.
const (
	maxSimpleEntries = 256
	maxSimpleBytes   = 4 << 20
)

// copyLayer copies an overlay upper directory to dst (which must not exist) with
// everything overlayfs keeps in it: owners, modes, times, extended attributes (opaque
// directories), whiteouts (0/0 character devices), hard links and holes. A small
// layer of plain directories, files and symbolic links (their extended attributes
// included) is copied here; any other goes to cp -a, which knows them all.
func copyLayer(ctx context.Context, src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("copying %s: %s already exists", src, dst)
	}
	if simpleLayer(src) {
		err := copySimple(src, dst)
		if err != nil {
			_ = os.RemoveAll(dst)
			return fmt.Errorf("copying %s: %w", src, err)
		}
		return nil
	}
	cmd := exec.CommandContext(ctx, "cp", "-a", "--sparse=always", "--", src, dst)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(dst)
		return fmt.Errorf("copying %s: %w: %s", src, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// simpleLayer reports whether the tree at src is small and holds only directories,
// regular files without holes or other links, and symbolic links.
func simpleLayer(src string) bool {
	entries, total := 0, int64(0)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if entries++; entries > maxSimpleEntries {
			return errNotSimple
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return errNotSimple
		}
		switch fi.Mode().Type() {
		case 0:
			total += fi.Size()
			if st.Nlink != 1 || total > maxSimpleBytes || st.Blocks*512 < fi.Size() {
				return errNotSimple
			}
		case fs.ModeDir, fs.ModeSymlink:
		default:
			return errNotSimple
		}
		return nil
	})
	return err == nil
}

var errNotSimple = errors.New("not a simple layer")

// copySimple copies a tree that simpleLayer accepted: contents, owners, extended
// attributes (overlayfs marks its upper directories: trusted.overlay.*), modes (set
// after the owner, which clears set-id bits) and times (a directory's once its entries
// are in).
func copySimple(src, dst string) error {
	var dirs []string // to stamp with their times, deepest first
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		switch fi.Mode().Type() {
		case fs.ModeDir:
			if err := os.Mkdir(to, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, rel)
		case fs.ModeSymlink:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
		default:
			if err := copyFile(p, to); err != nil {
				return err
			}
		}
		if err := os.Lchown(to, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if err := copyXattrs(p, to); err != nil {
			return err
		}
		if fi.Mode().Type() != fs.ModeSymlink {
			if err := unix.Fchmodat(unix.AT_FDCWD, to, st.Mode&0o7777, 0); err != nil {
				return err
			}
		}
		if fi.IsDir() {
			return nil // stamped once its entries are in
		}
		return stamp(to, st)
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		fi, err := os.Lstat(filepath.Join(src, dirs[i]))
		if err != nil {
			return err
		}
		if err := stamp(filepath.Join(dst, dirs[i]), fi.Sys().(*syscall.Stat_t)); err != nil {
			return err
		}
	}
	return nil
}

// copyXattrs gives to the extended attributes of from (neither followed if a link).
func copyXattrs(from, to string) error {
	size, err := unix.Llistxattr(from, nil)
	if err != nil || size == 0 {
		return err
	}
	names := make([]byte, size)
	n, err := unix.Llistxattr(from, names)
	if err != nil {
		return err
	}
	for _, name := range strings.Split(strings.TrimSuffix(string(names[:n]), "\x00"), "\x00") {
		size, err := unix.Lgetxattr(from, name, nil)
		if err != nil {
			return fmt.Errorf("reading %s of %s: %w", name, from, err)
		}
		value := make([]byte, size)
		m, err := unix.Lgetxattr(from, name, value)
		if err != nil {
			return fmt.Errorf("reading %s of %s: %w", name, from, err)
		}
		if err := unix.Lsetxattr(to, name, value[:m], 0); err != nil {
			return fmt.Errorf("setting %s on %s: %w", name, to, err)
		}
	}
	return nil
}

// copyFile copies a regular file's bytes to a new file at to.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// stamp gives path (not following a symbolic link) the access and modification times
// of st.
func stamp(path string, st *syscall.Stat_t) error {
	ts := []unix.Timespec{{Sec: st.Atim.Sec, Nsec: st.Atim.Nsec}, {Sec: st.Mtim.Sec, Nsec: st.Mtim.Nsec}}
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
}
