package layers

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/warren-sh/warren/internal/node"
)

// finish returns the root filesystem of the layers so far (the last keyed key) over
// the parent: the one made already, or a new one, flattened (whiteouts applied)
// beside its place and renamed into it.
func (bd *build) finish(ctx context.Context, key string) (string, int64, error) {
	b := bd.b
	dst := filepath.Join(b.cfg.Dir, "r", short(key))
	unlock := b.keyLock("root " + key)
	defer unlock()
	if size, ok := readSize(dst); ok {
		bd.logf("info", "root filesystem: cached")
		return filepath.Join(dst, "rootfs"), size, nil
	}
	bd.logf("info", "flattening %d layers over the parent", len(bd.stack))
	tmp, err := os.MkdirTemp(filepath.Join(b.cfg.Dir, "r"), ".tmp-"+scratchPrefix())
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(tmp)
	rootfs := filepath.Join(tmp, "rootfs")
	if linkable(bd.parent.RootFS, b.cfg.Dir) {
		oldest := make([]string, len(bd.stack))
		for i, l := range bd.stack {
			oldest[len(bd.stack)-1-i] = l
		}
		err = flattenLinked(ctx, bd.parent.RootFS, oldest, rootfs)
	} else {
		err = bd.flattenCopy(ctx, rootfs)
	}
	if err != nil {
		return "", 0, fmt.Errorf("flattening the layers: %w", err)
	}
	size, _ := usage(rootfs)
	if err := os.WriteFile(filepath.Join(tmp, "size"), []byte(strconv.FormatInt(size, 10)), 0o600); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if size, ok := readSize(dst); ok {
			return filepath.Join(dst, "rootfs"), size, nil // another process made it
		}
		return "", 0, fmt.Errorf("storing the root filesystem: %w", err)
	}
	return filepath.Join(dst, "rootfs"), size, nil
}

// flattenCopy copies the overlay of the layers over the parent to rootfs: for a
// parent on another file system than the cache.
func (bd *build) flattenCopy(ctx context.Context, rootfs string) error {
	view := filepath.Join(bd.work, "flat")
	merged, err := node.MountLayers(append(append([]string{}, bd.stack...), bd.parent.RootFS), view, view)
	if err != nil {
		return err
	}
	defer node.UnmountAll(view)
	cmd := exec.CommandContext(ctx, "cp", "-a", "--sparse=always", "--", merged, rootfs)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// readSize reads a finished root's size file, written before the rename that makes it
// visible.
func readSize(dir string) (int64, bool) {
	raw, err := os.ReadFile(filepath.Join(dir, "size"))
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	return n, err == nil
}

// usage is the disk space the files below dir hold (allocated blocks, each inode
// counted once), and whether dir holds nothing at all.
func usage(dir string) (int64, bool) {
	var total int64
	entries := 0
	seen := map[uint64]bool{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		entries++
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			total += fi.Size()
			return nil
		}
		if seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		total += st.Blocks * 512
		return nil
	})
	return total, entries == 0
}
