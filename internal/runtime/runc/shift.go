package runc

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// IDMap is a user namespace mapping: sandbox ids 0..Size-1 are host ids Host..Host+Size-1.
type IDMap struct {
	HostUID uint32
	HostGID uint32
	Size    uint32
}

// shift maps a host-side template id (0..Size-1) to the host id the sandbox sees as it.
// Ids outside the range cannot be represented in the sandbox; they become nobody (65534).
func (m IDMap) shift(id, base uint32) uint32 {
	if id >= m.Size {
		id = 65534 % m.Size
	}
	return base + id
}

// shiftFormat versions how copies are made; a copy of another format is rebuilt.
const shiftFormat = 2

// shiftedMarker is written next to a finished shifted copy; without it the copy is
// incomplete and is rebuilt.
type shiftedMarker struct {
	Format  int       `json:"format"`
	Source  string    `json:"source"`
	HostUID uint32    `json:"host_uid"`
	HostGID uint32    `json:"host_gid"`
	Size    uint32    `json:"size"`
	Entries int       `json:"entries"`
	BuiltAt time.Time `json:"built_at"`
}

// ShiftedPath is where the copy of src shifted by m lives: next to src, in the template's
// cache entry, so it shares the template's lifetime and hash.
func ShiftedPath(src string, m IDMap) string {
	src = strings.TrimRight(src, "/")
	if m.HostUID == m.HostGID && m.Size == 65536 {
		return fmt.Sprintf("%s-shifted-%d", src, m.HostUID)
	}
	return fmt.Sprintf("%s-shifted-%d-%d-%d", src, m.HostUID, m.HostGID, m.Size)
}

// EnsureShifted returns a copy of the root filesystem src whose every inode (symlinks
// included) is owned by the ids m maps src's owners to, building it on first use. Later
// calls only read the marker. Builds are serialised across processes by a lock file and
// made atomic by a rename, so a crash mid-way leaves nothing that looks complete.
//
// A copy without a valid marker is rebuilt in place: that is only safe while no sandbox
// uses it as its lower layer, which holds for a crashed build; a format change needs
// the node drained (or the old copy renamed away) first.
func EnsureShifted(ctx context.Context, src string, m IDMap) (string, error) {
	dst := ShiftedPath(src, m)
	if shiftedReady(dst, src, m) {
		return dst, nil
	}
	lock, err := os.OpenFile(dst+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("locking shifted root filesystem: %w", err)
	}
	defer lock.Close()
	if err := flockCtx(ctx, int(lock.Fd())); err != nil {
		return "", err
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	if shiftedReady(dst, src, m) { // another process built it while we waited
		return dst, nil
	}
	// Under the lock, anything at dst or a temporary copy is a crashed build's leftover.
	stale, _ := filepath.Glob(dst + ".tmp-*")
	for _, s := range append(stale, dst) {
		if err := os.RemoveAll(s); err != nil {
			return "", fmt.Errorf("removing stale shifted copy %s: %w", s, err)
		}
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dst, os.Getpid())
	n, err := copyShifted(ctx, src, tmp, m)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("building uid-shifted copy of %s: %w", src, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	b, _ := json.Marshal(shiftedMarker{Format: shiftFormat, Source: src, HostUID: m.HostUID, HostGID: m.HostGID, Size: m.Size, Entries: n, BuiltAt: time.Now().UTC()})
	if err := os.WriteFile(dst+".ready.tmp", b, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(dst+".ready.tmp", dst+".ready"); err != nil {
		return "", err
	}
	return dst, nil
}

func shiftedReady(dst, src string, m IDMap) bool {
	b, err := os.ReadFile(dst + ".ready")
	if err != nil {
		return false
	}
	var mk shiftedMarker
	if json.Unmarshal(b, &mk) != nil || mk.Format != shiftFormat || mk.Source != src || mk.HostUID != m.HostUID || mk.HostGID != m.HostGID || mk.Size != m.Size {
		return false
	}
	fi, err := os.Stat(dst)
	return err == nil && fi.IsDir()
}

// flockCtx takes an exclusive lock on fd, giving up when ctx ends.
func flockCtx(ctx context.Context, fd int) error {
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("locking shifted root filesystem: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for another build of the shifted root filesystem: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// copyShifted copies the tree at src to dst (which must not exist), preserving modes
// (setuid bits included), hard links, times, device nodes and extended attributes, with
// every owner shifted by m. It returns the number of entries copied.
func copyShifted(ctx context.Context, src, dst string, m IDMap) (int, error) {
	type dirTimes struct {
		path string
		st   unix.Stat_t
	}
	var dirs []dirTimes
	links := map[[2]uint64]string{} // (dev, ino) of multiply linked files -> first copy
	n := 0
	err := filepath.WalkDir(src, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		n++
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		mode := st.Mode & 0o7777
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := unix.Mkdir(out, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirTimes{out, st})
		case unix.S_IFREG:
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := links[key]; ok && st.Nlink > 1 {
				return unix.Link(first, out) // shares the inode already shifted
			}
			if st.Nlink > 1 {
				links[key] = out
			}
			if err := copyFile(p, out); err != nil {
				return err
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, out); err != nil {
				return err
			}
		default: // devices, fifos, sockets
			if err := unix.Mknod(out, st.Mode, int(st.Rdev)); err != nil {
				return err
			}
		}
		return finishInode(p, out, &st, mode, m)
	})
	if err != nil {
		return n, err
	}
	// Directory times last, deepest first: creating entries changes a directory's mtime.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		ts := []unix.Timespec{d.st.Atim, d.st.Mtim}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, d.path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return n, err
		}
	}
	return n, nil
}

// finishInode gives out its shifted owner, mode, extended attributes and times.
func finishInode(src, out string, st *unix.Stat_t, mode uint32, m IDMap) error {
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if err := unix.Lchown(out, int(m.shift(st.Uid, m.HostUID)), int(m.shift(st.Gid, m.HostGID))); err != nil {
		return err
	}
	if !isLink {
		// After chown: chown clears setuid and setgid bits, which must survive.
		if err := unix.Chmod(out, mode); err != nil {
			return err
		}
	}
	if err := copyXattrs(src, out, m); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return nil // set after the directory's contents
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, out, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil { // copy_file_range where possible
		out.Close()
		return err
	}
	return out.Close()
}

// copyXattrs copies src's extended attributes to dst. POSIX ACLs get shifted ids. File
// capabilities are dropped: the sandboxes run with no_new_privs, under which they never
// grant anything, and a file whose capabilities exceed the bounding set (ping's
// cap_net_raw, which sandboxes do not hold) cannot even be executed (EPERM); without
// them ping falls back to ICMP datagram sockets, which the driver enables.
func copyXattrs(src, dst string, m IDMap) error {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return err
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(src, buf)
	if err != nil {
		return err
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		val, err := lgetxattr(src, name)
		if err != nil {
			return err
		}
		switch name {
		case "system.posix_acl_access", "system.posix_acl_default":
			val = shiftACL(val, m)
		case "security.capability":
			val = nil
		}
		if val == nil {
			continue
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil {
			return fmt.Errorf("setting %s on %s: %w", name, dst, err)
		}
	}
	return nil
}

func lgetxattr(path, name string) ([]byte, error) {
	n, err := unix.Lgetxattr(path, name, nil)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	n, err = unix.Lgetxattr(path, name, b)
	return b[:n], err
}

// shiftACL shifts the ids of a POSIX ACL xattr (version 2: a 4-byte header, then
// 8-byte entries of tag, permissions and id).
func shiftACL(v []byte, m IDMap) []byte {
	const aclUser, aclGroup = 0x02, 0x08
	out := append([]byte(nil), v...)
	for off := 4; off+8 <= len(out); off += 8 {
		tag := binary.LittleEndian.Uint16(out[off:])
		id := binary.LittleEndian.Uint32(out[off+4:])
		switch tag {
		case aclUser:
			binary.LittleEndian.PutUint32(out[off+4:], m.shift(id, m.HostUID))
		case aclGroup:
			binary.LittleEndian.PutUint32(out[off+4:], m.shift(id, m.HostGID))
		}
	}
	return out
}
