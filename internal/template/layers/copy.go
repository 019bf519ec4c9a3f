package layers

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/node"
	"github.com/warren-sh/warren/internal/template/oci"
)

// A COPY reads the tar archive its FilesHash names, selects the entries at Args[0] (a
// file or a directory; a pattern with * ? [ selects every top entry it matches) and
// unpacks them at Args[1] on the host, through an overlay of the build's layers so
// far (the new files land in the step's own layer), with oci.ApplyTar: nothing reaches
// outside the root filesystem. Refused: ".." in any name, a relative symlink
// that climbs above the root, a hard link to an entry not selected, device nodes and
// FIFOs, whiteout names, and archives or selections over the size bounds. An absolute
// symlink is kept: it means the image's own root, as in the sandbox. Files belong to
// root (or to Args[2], user[:group] of the image) and keep their modes, unless Args[3]
// gives one (octal, as Docker's COPY --chmod): then every copied file and directory has
// it, and links are left as they are.

// copyMode parses a COPY's mode: octal, at most 07777.
func copyMode(s string) (int64, error) {
	m, err := strconv.ParseInt(s, 8, 64)
	if err != nil || m < 0 || m > 0o7777 || len(s) > 5 {
		return 0, fmt.Errorf("mode %q is not an octal file mode (such as 0644 or 755)", s)
	}
	return m, nil
}

// cleanSrc is a COPY source as a path relative to the archive's root ("." for all).
func cleanSrc(src string) (string, error) {
	s := strings.TrimLeft(src, "/")
	for _, part := range strings.Split(s, "/") {
		if part == ".." {
			return "", fmt.Errorf("source %q leaves the build's files (..)", src)
		}
	}
	s = path.Clean(s)
	if s == "" {
		s = "."
	}
	return s, nil
}

// cleanEntry is a tar entry's name relative to the archive's root.
func cleanEntry(name string) (string, bool) {
	n := strings.TrimLeft(name, "/")
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", false
		}
	}
	n = path.Clean(n)
	if n == "" {
		n = "."
	}
	return n, true
}

// selector picks a COPY's entries and says where each goes, relative to dst.
type selector struct {
	src  string
	glob bool
}

func newSelector(src string) selector {
	s, _ := cleanSrc(src)
	return selector{src: s, glob: strings.ContainsAny(s, "*?[")}
}

// rel says whether name is selected and, if so, its path below the destination ("."
// for the source itself), and whether the source itself is the entry.
func (s selector) rel(name string) (string, bool) {
	if s.src == "." {
		return name, true
	}
	if !s.glob {
		if name == s.src {
			return ".", true
		}
		if r, ok := strings.CutPrefix(name, s.src+"/"); ok {
			return r, true
		}
		return "", false
	}
	// A pattern matches the first components of name; what matched is copied into
	// the destination by its last matched component for a file, its contents for a
	// directory (as Docker does).
	n := strings.Count(s.src, "/") + 1
	parts := strings.Split(name, "/")
	if len(parts) < n {
		return "", false
	}
	if ok, _ := path.Match(s.src, strings.Join(parts[:n], "/")); !ok {
		return "", false
	}
	if len(parts) == n {
		return parts[n-1], true // a matched top entry: fixed up for directories by the caller
	}
	return strings.Join(parts[n:], "/"), true
}

// walkSelected calls fn with every selected entry of the archive hash, its path below
// the destination, and its content, checking each against the rules above.
func (bd *build) walkSelected(ctx context.Context, i int, s domain.BuildStep, fn func(h *tar.Header, rel string, r io.Reader) error) error {
	if bd.files == nil {
		return domain.Invalid(fmt.Sprintf("steps[%d]", i), "step %d (COPY): the build has no files", i+1)
	}
	rc, err := bd.files.Open(ctx, s.FilesHash)
	if err != nil {
		return fmt.Errorf("step %d (COPY): opening the files %s: %w", i+1, s.FilesHash, err)
	}
	defer rc.Close()
	b := bd.b
	lr := &io.LimitedReader{R: rc, N: b.cfg.MaxCopyBytes + 1}
	tr := tar.NewReader(lr)
	sel := newSelector(s.Args[0])
	bad := func(format string, args ...any) error {
		return domain.Invalid(fmt.Sprintf("steps[%d]", i), "step %d (COPY %s): %s", i+1, s.Args[0], fmt.Sprintf(format, args...))
	}
	entries, found := 0, false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if lr.N <= 0 {
			return bad("the files are larger than %d bytes", b.cfg.MaxCopyBytes)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return bad("reading the files' tar archive: %v", err)
		}
		if entries++; entries > b.cfg.MaxCopyEntries {
			return bad("the files hold more than %d entries", b.cfg.MaxCopyEntries)
		}
		name, ok := cleanEntry(h.Name)
		if !ok {
			return bad("entry %q leaves the archive's root (..); such an archive is refused whole", h.Name)
		}
		rel, ok := sel.rel(name)
		if !ok || name == "." && h.Typeflag == tar.TypeDir && sel.src != "." {
			continue
		}
		if sel.glob && h.Typeflag == tar.TypeDir && !strings.Contains(rel, "/") && strings.Count(name, "/") == strings.Count(sel.src, "/") {
			rel = "." // a matched directory: its contents go into the destination
		}
		if strings.HasPrefix(path.Base(name), ".wh.") {
			return bad("entry %q: names starting with .wh. are reserved for layer whiteouts", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
		default:
			return bad("entry %q is a device node, FIFO or other special file; only files, directories and links can be copied", h.Name)
		}
		if h.Typeflag == tar.TypeSymlink && !path.IsAbs(h.Linkname) {
			if t := path.Join(path.Dir(name), h.Linkname); t == ".." || strings.HasPrefix(t, "../") {
				return bad("symlink %q -> %q points above the build's files", h.Name, h.Linkname)
			}
		}
		found = true
		if err := fn(h, rel, tr); err != nil {
			return err
		}
	}
	if !found {
		return bad("no such file or directory in the build's files")
	}
	return nil
}

// selectionDigest is the content hash of what the COPY step i selects: each entry's
// destination path, type, mode, link target and bytes, in archive order.
func (bd *build) selectionDigest(ctx context.Context, i int, s domain.BuildStep) (string, error) {
	h := sha256.New()
	err := bd.walkSelected(ctx, i, s, func(th *tar.Header, rel string, r io.Reader) error {
		writeField(h, rel)
		writeField(h, string(th.Typeflag))
		writeField(h, strconv.FormatInt(th.Mode&0o7777, 8))
		writeField(h, th.Linkname)
		writeField(h, strconv.FormatInt(th.Size, 10))
		_, err := io.Copy(h, r)
		return err
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyFiles makes COPY step i's layer in diff.
func (bd *build) copyFiles(ctx context.Context, i int, s domain.BuildStep, diff string) error {
	view := filepath.Join(bd.work, fmt.Sprintf("copy%d", i))
	merged, err := node.MountLayers(append(append([]string{}, bd.stack...), bd.parent.RootFS), view, view)
	if err != nil {
		return err
	}
	mounted := true
	defer func() {
		if mounted {
			_ = node.UnmountAll(view)
		}
	}()
	root, err := os.OpenRoot(merged)
	if err != nil {
		return err
	}
	defer root.Close()
	uid, gid := 0, 0
	if len(s.Args) >= 3 && s.Args[2] != "" {
		if uid, gid, err = owner(root, s.Args[2]); err != nil {
			return domain.Invalid(fmt.Sprintf("steps[%d]", i), "step %d (COPY): %v", i+1, err)
		}
	}
	mode := int64(-1)
	if len(s.Args) == 4 {
		if mode, err = copyMode(s.Args[3]); err != nil {
			return domain.Invalid(fmt.Sprintf("steps[%d]", i), "step %d (COPY): %v", i+1, err)
		}
	}
	dst := strings.TrimPrefix(bd.meta.abs(s.Args[1]), "/")
	if dst == "" {
		dst = "."
	}
	// A single file copied onto a directory (or a path ending in "/") goes inside it.
	intoDir := strings.HasSuffix(s.Args[1], "/") || newSelector(s.Args[0]).glob
	if fi, err := root.Stat(dst); err == nil && fi.IsDir() {
		intoDir = true
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := bd.walkSelected(ctx, i, s, func(h *tar.Header, rel string, r io.Reader) error {
			if rel == "." && h.Typeflag != tar.TypeDir && intoDir {
				rel = path.Base(h.Name)
			}
			out := &tar.Header{Typeflag: h.Typeflag, Name: path.Join(dst, rel), Mode: h.Mode & 0o7777, Size: h.Size,
				ModTime: h.ModTime, Uid: uid, Gid: gid, Linkname: h.Linkname, Format: tar.FormatPAX}
			if mode >= 0 && (h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA || h.Typeflag == tar.TypeDir) {
				out.Mode = mode
			}
			if h.Typeflag == tar.TypeLink {
				target, ok := cleanEntry(h.Linkname)
				trel, sel := newSelector(s.Args[0]).rel(target)
				if !ok || !sel {
					return domain.Invalid(fmt.Sprintf("steps[%d]", i), "step %d (COPY): hard link %q -> %q: the target is not among the copied files", i+1, h.Name, h.Linkname)
				}
				out.Linkname, out.Size = path.Join(dst, trel), 0
			}
			if err := tw.WriteHeader(out); err != nil {
				return err
			}
			if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
				_, err := io.Copy(tw, r)
				return err
			}
			return nil
		})
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	_, err = oci.ApplyTar(ctx, merged, pr, oci.Limits{MaxImageBytes: bd.b.cfg.MaxCopyBytes * 2, MaxLayers: 1, MaxEntries: bd.b.cfg.MaxCopyEntries * 2})
	pr.CloseWithError(errors.New("copy ended"))
	if err != nil {
		if errors.Is(err, oci.ErrUnsafe) {
			return domain.Invalid(fmt.Sprintf("steps[%d]", i), "step %d (COPY %s): %v", i+1, s.Args[0], err)
		}
		return fmt.Errorf("step %d (COPY %s): %w", i+1, s.Args[0], err)
	}
	root.Close()
	if err := node.UnmountAll(view); err != nil {
		return err
	}
	mounted = false
	if err := os.Rename(filepath.Join(view, "upper"), diff); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(diff, ".warren")) // warren-agent's (see inSandbox)
}

// owner resolves user[:group] against the image's /etc/passwd and /etc/group (names
// or numeric ids; the user's group when none is given).
func owner(root *os.Root, spec string) (int, int, error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	uid, gid := -1, -1
	if n, err := strconv.Atoi(u); err == nil {
		uid = n
	}
	err := scanDB(root, "etc/passwd", func(f []string) bool {
		if len(f) >= 4 && (f[0] == u || f[2] == u) {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			return false
		}
		return true
	})
	if err != nil && uid < 0 {
		return 0, 0, err
	}
	if uid < 0 {
		return 0, 0, fmt.Errorf("owner %q: no such user in the image's /etc/passwd", spec)
	}
	if hasGroup {
		gid = -1
		if n, err := strconv.Atoi(g); err == nil {
			gid = n
		}
		_ = scanDB(root, "etc/group", func(f []string) bool {
			if len(f) >= 3 && f[0] == g {
				gid, _ = strconv.Atoi(f[2])
				return false
			}
			return true
		})
		if gid < 0 {
			return 0, 0, fmt.Errorf("owner %q: no such group in the image's /etc/group", spec)
		}
	}
	if gid < 0 {
		gid = uid
	}
	return uid, gid, nil
}

// scanDB calls fn with the fields of each line of a colon file of the image (at most
// 4 MiB of it) until fn returns false.
func scanDB(root *os.Root, name string, fn func([]string) bool) error {
	f, err := root.Open(name)
	if err != nil {
		return fmt.Errorf("reading the image's /%s: %w", name, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, 4<<20))
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if !fn(strings.Split(line, ":")) {
			return nil
		}
	}
	return nil
}
