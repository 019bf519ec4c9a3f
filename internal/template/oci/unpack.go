package oci

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// Limits bound what one image may put on disk. Zero fields take the defaults.
type Limits struct {
	// MaxImageBytes bounds the image's layers: their compressed sizes as the manifest
	// states them, and the uncompressed tar streams of all layers together.
	MaxImageBytes int64
	// MaxLayers bounds the number of layers.
	MaxLayers int
	// MaxEntries bounds the number of tar entries over all layers.
	MaxEntries int
}

// DefaultLimits are generous for real images (a Debian with a toolchain is ~1 GB) and
// still keep a hostile image from filling the disk.
var DefaultLimits = Limits{MaxImageBytes: 8 << 30, MaxLayers: 128, MaxEntries: 2_000_000}

func (l Limits) withDefaults() Limits {
	if l.MaxImageBytes <= 0 {
		l.MaxImageBytes = DefaultLimits.MaxImageBytes
	}
	if l.MaxLayers <= 0 {
		l.MaxLayers = DefaultLimits.MaxLayers
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultLimits.MaxEntries
	}
	return l
}

// Whiteout markers of the OCI image layout: ".wh.NAME" deletes NAME of the layers
// below, ".wh..wh..opq" hides everything the layers below put in its directory.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// UnpackStats counts what unpacking did.
type UnpackStats struct {
	Entries int   // tar entries read
	Bytes   int64 // uncompressed bytes read (tar framing included)
	// Skipped counts entries not materialised: device nodes and FIFOs.
	Skipped int
}

// ErrUnsafe marks a layer refused because it would write outside the root (a ../ path,
// a hard link out, or a write through a relative symlink that climbs above the root) or
// exceeds a limit.
var ErrUnsafe = errors.New("unsafe image layer")

// unpacker applies layers, in order, to one root directory. An entry's parent path is
// first resolved the way the container will see it (resolveParent): symlinks followed
// inside the root, an absolute target meaning the root's own directory (Debian's
// /var/run -> /run), a relative one climbing above the root refused. Every file system
// operation then goes through an os.Root, so that nothing, whatever the layer says,
// reaches outside the directory even if the resolution were wrong: the kernel resolves
// each component beneath the root and an escaping or absolute symlink is an error.
type unpacker struct {
	root   *os.Root
	limits Limits
	stats  UnpackStats
	// budget is what is left of MaxImageBytes for the uncompressed streams.
	budget int64
}

func newUnpacker(dir string, limits Limits) (*unpacker, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	limits = limits.withDefaults()
	return &unpacker{root: r, limits: limits, budget: limits.MaxImageBytes}, nil
}

func (u *unpacker) Close() error { return u.root.Close() }

// budgetReader fails once more than the unpacker's remaining budget has been read.
type budgetReader struct {
	r io.Reader
	u *unpacker
}

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.u.budget -= int64(n)
	b.u.stats.Bytes += int64(n)
	if b.u.budget < 0 {
		return n, fmt.Errorf("%w: the image's layers unpack to more than %d bytes", ErrUnsafe, b.u.limits.MaxImageBytes)
	}
	return n, err
}

// Apply unpacks one uncompressed layer tar stream on top of what is already there.
func (u *unpacker) Apply(ctx context.Context, layer io.Reader) error {
	tr := tar.NewReader(&budgetReader{r: layer, u: u})
	// written holds what this layer created, which an opaque marker must keep.
	written := map[string]bool{}
	var dirTimes []dirTime
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading layer tar: %w", err)
		}
		u.stats.Entries++
		if u.stats.Entries > u.limits.MaxEntries {
			return fmt.Errorf("%w: more than %d files", ErrUnsafe, u.limits.MaxEntries)
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue // the root itself: its mode stays ours
		}
		// The parent directories as the container will see them: symlinks among them
		// followed inside the root.
		if name, err = u.resolveParent(name); err != nil {
			return fmt.Errorf("layer entry %s: %w", hdr.Name, err)
		}
		dir, base := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		if dir == "" {
			dir = "."
		}
		switch {
		case base == opaqueMarker:
			if err := u.opaque(dir, written); err != nil {
				return fmt.Errorf("opaque whiteout %s: %w", hdr.Name, err)
			}
			continue
		case strings.HasPrefix(base, whiteoutPrefix):
			target := path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix))
			if err := u.root.RemoveAll(target); err != nil {
				return fmt.Errorf("whiteout %s: %w", hdr.Name, unsafeIfEscape(err))
			}
			continue
		}
		if err := u.entry(hdr, tr, name, dir); err != nil {
			return fmt.Errorf("layer entry %s: %w", hdr.Name, unsafeIfEscape(err))
		}
		written[name] = true
		if hdr.Typeflag == tar.TypeDir {
			dirTimes = append(dirTimes, dirTime{name, hdr.ModTime})
		}
	}
	// Directory times last: writing their contents changed them.
	for _, d := range dirTimes {
		_ = u.root.Chtimes(d.name, d.mtime, d.mtime)
	}
	return nil
}

type dirTime struct {
	name  string
	mtime time.Time
}

// cleanName turns a tar entry name into a path relative to the root, refusing names
// that leave it. Leading "/" and "./" are what tar writers put there; ".." is not.
func cleanName(name string) (string, error) {
	n := strings.TrimLeft(name, "/")
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: entry %q points outside the root", ErrUnsafe, name)
		}
	}
	n = path.Clean(n)
	if n == "" {
		n = "."
	}
	return n, nil
}

// unsafeIfEscape marks os.Root's "path escapes from parent" errors as ErrUnsafe.
func unsafeIfEscape(err error) error {
	if err != nil && strings.Contains(err.Error(), "escapes from parent") {
		return fmt.Errorf("%w: %w", ErrUnsafe, err)
	}
	return err
}

// entry materialises one tar entry at name (its parent directory is dir).
func (u *unpacker) entry(hdr *tar.Header, r io.Reader, name, dir string) error {
	if err := u.root.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mode := fs.FileMode(hdr.Mode) & fs.ModePerm
	if hdr.Mode&04000 != 0 {
		mode |= fs.ModeSetuid
	}
	if hdr.Mode&02000 != 0 {
		mode |= fs.ModeSetgid
	}
	if hdr.Mode&01000 != 0 {
		mode |= fs.ModeSticky
	}
	existing, err := u.root.Lstat(name)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Anything but a directory kept for a directory is replaced, never written through:
	// a symlink left by an earlier layer must not redirect this entry.
	if exists && !(hdr.Typeflag == tar.TypeDir && existing.IsDir()) {
		if err := u.root.RemoveAll(name); err != nil {
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !exists || !existing.IsDir() {
			if err := u.root.Mkdir(name, 0o700); err != nil {
				return err
			}
		}
	case tar.TypeReg, tar.TypeRegA:
		f, err := u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		// The target is stored as is; only using it later (an entry beneath it) is checked.
		return u.root.Symlink(hdr.Linkname, name)
	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return err
		}
		if target, err = u.resolveParent(target); err != nil {
			return err
		}
		return u.root.Link(target, name)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		u.stats.Skipped++ // no device nodes in a sandbox's root; runsc provides /dev
		return nil
	default:
		u.stats.Skipped++
		return nil
	}
	if err := u.root.Lchown(name, hdr.Uid, hdr.Gid); err != nil && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	// Chmod after Chown: chown clears the setuid and setgid bits.
	if err := u.root.Chmod(name, mode); err != nil {
		return err
	}
	// File capabilities last: a write or a chown clears them.
	if hdr.Typeflag != tar.TypeDir && hasXattrs(hdr.PAXRecords) {
		f, err := u.root.OpenFile(name, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		err = setXattrs(f, hdr.PAXRecords)
		f.Close()
		if err != nil {
			return err
		}
	}
	if hdr.Typeflag != tar.TypeDir {
		_ = u.root.Chtimes(name, hdr.ModTime, hdr.ModTime)
	}
	return nil
}

// opaque removes everything under dir that this layer did not write.
func (u *unpacker) opaque(dir string, written map[string]bool) error {
	if err := u.root.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := u.root.Open(dir)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		p := path.Join(dir, n)
		if !written[p] {
			if err := u.root.RemoveAll(p); err != nil {
				return err
			}
			continue
		}
		if fi, err := u.root.Lstat(p); err == nil && fi.IsDir() {
			if err := u.opaque(p, written); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxSymlinks bounds the symlinks followed for one path (Linux's own limit is 40).
const maxSymlinks = 40

// resolveParent returns name with the symlinks among its parent directories followed
// inside the root; the last component is left alone (an entry replaces a symlink there
// rather than writing through it). Missing directories stay as named (they are made).
func (u *unpacker) resolveParent(name string) (string, error) {
	dir, base := path.Split(name)
	if dir == "" {
		return name, nil
	}
	d, err := u.resolveDir(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return "", err
	}
	return path.Join(d, base), nil
}

// resolveDir follows every symlink of p inside the root: an absolute target starts
// again at the root, a relative one from the link's directory, and a ".." above the
// root is refused.
func (u *unpacker) resolveDir(p string) (string, error) {
	todo := strings.Split(p, "/")
	var done []string
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", fmt.Errorf("%w: %q leads above the root through a symlink", ErrUnsafe, p)
			}
			done = done[:len(done)-1]
			continue
		}
		cur := path.Join(append(done, c)...)
		fi, err := u.root.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			done = append(done, c)
			continue
		}
		if err != nil {
			return "", unsafeIfEscape(err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if hops++; hops > maxSymlinks {
			return "", fmt.Errorf("%w: more than %d symlinks in %q", ErrUnsafe, maxSymlinks, p)
		}
		target, err := u.root.Readlink(cur)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

// ApplyTar unpacks one uncompressed tar stream into dir as an image layer is unpacked
// (see unpacker): nothing reaches outside dir, and limits bound it. Whiteout names
// (".wh.") are applied as whiteouts, so a caller unpacking files that are not an image
// layer refuses such names first.
func ApplyTar(ctx context.Context, dir string, r io.Reader, limits Limits) (UnpackStats, error) {
	u, err := newUnpacker(dir, limits)
	if err != nil {
		return UnpackStats{}, err
	}
	defer u.Close()
	err = u.Apply(ctx, r)
	return u.stats, err
}
