package runc

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/testenv"
)

// aclXattr encodes a POSIX ACL (version 2) with one named user and one named group.
func aclXattr(uid, gid uint32) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	_ = binary.Write(&b, le, uint32(2))
	entry := func(tag, perm uint16, id uint32) {
		_ = binary.Write(&b, le, tag)
		_ = binary.Write(&b, le, perm)
		_ = binary.Write(&b, le, id)
	}
	// Permissions matching mode 0750 (setting an ACL rewrites the mode bits).
	entry(0x01, 7, 0xffffffff) // user obj
	entry(0x02, 5, uid)        // named user
	entry(0x04, 5, 0xffffffff) // group obj
	entry(0x08, 5, gid)        // named group
	entry(0x10, 5, 0xffffffff) // mask
	entry(0x20, 0, 0xffffffff) // other
	return b.Bytes()
}

func TestEnsureShifted(t *testing.T) {
	testenv.NeedsRoot(t, "create files owned by other users")
	src := filepath.Join(t.TempDir(), "rootfs")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "home", "user"), 0o755))
	must(os.Chown(filepath.Join(src, "home", "user"), 1000, 1000))
	must(os.Chmod(filepath.Join(src, "home", "user"), 0o750))
	must(os.WriteFile(filepath.Join(src, "su"), []byte("#!/bin/sh\n"), 0o755))
	must(unix.Chmod(filepath.Join(src, "su"), 0o4755))
	must(os.WriteFile(filepath.Join(src, "a"), []byte("linked"), 0o644))
	must(os.Link(filepath.Join(src, "a"), filepath.Join(src, "home", "b")))
	must(os.Symlink("/etc/nowhere", filepath.Join(src, "home", "user", "link")))
	must(os.Lchown(filepath.Join(src, "home", "user", "link"), 1000, 1000))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	must(os.WriteFile(filepath.Join(src, "ping"), []byte("x"), 0o755))
	capV2 := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // cap_net_raw+ep
	must(unix.Setxattr(filepath.Join(src, "ping"), "security.capability", capV2, 0))
	must(unix.Setxattr(filepath.Join(src, "a"), "user.note", []byte("kept"), 0))
	if err := unix.Setxattr(filepath.Join(src, "home", "user"), "system.posix_acl_access", aclXattr(1001, 1002), 0); err != nil {
		t.Logf("no ACL support on the test file system: %v", err)
	}

	m := IDMap{HostUID: 200000, HostGID: 300000, Size: 65536}
	dst, err := EnsureShifted(context.Background(), src, m)
	if err != nil {
		t.Fatal(err)
	}
	if dst != ShiftedPath(src, m) {
		t.Errorf("path %s, want %s", dst, ShiftedPath(src, m))
	}
	owner := []struct {
		path     string
		uid, gid uint32
		mode     uint32
	}{
		{".", 200000, 300000, 0o755},
		{"home/user", 201000, 301000, 0o750},
		{"home/user/link", 201000, 301000, 0o777},
		{"su", 200000, 300000, 0o4755},
		{"fifo", 200000, 300000, 0o600},
	}
	for _, c := range owner {
		var st unix.Stat_t
		must(unix.Lstat(filepath.Join(dst, c.path), &st))
		if st.Uid != c.uid || st.Gid != c.gid || st.Mode&0o7777 != c.mode {
			t.Errorf("%s: %d:%d %o, want %d:%d %o", c.path, st.Uid, st.Gid, st.Mode&0o7777, c.uid, c.gid, c.mode)
		}
	}
	var sa, sb unix.Stat_t
	must(unix.Stat(filepath.Join(dst, "a"), &sa))
	must(unix.Stat(filepath.Join(dst, "home", "b"), &sb))
	if sa.Ino != sb.Ino {
		t.Errorf("hard link not kept: inodes %d and %d", sa.Ino, sb.Ino)
	}
	if target, _ := os.Readlink(filepath.Join(dst, "home", "user", "link")); target != "/etc/nowhere" {
		t.Errorf("symlink target %q", target)
	}
	if v, err := lgetxattr(filepath.Join(dst, "a"), "user.note"); err != nil || string(v) != "kept" {
		t.Errorf("user xattr: %q %v", v, err)
	}
	if _, err := lgetxattr(filepath.Join(dst, "ping"), "security.capability"); err == nil {
		t.Errorf("file capabilities were kept; sandboxes without them in their bounding set could not exec the file")
	}
	if v, err := lgetxattr(filepath.Join(dst, "home", "user"), "system.posix_acl_access"); err == nil {
		if !bytes.Equal(v, aclXattr(201001, 301002)) {
			t.Errorf("ACL ids not shifted: % x", v)
		}
	}
	var s0, s1 unix.Stat_t
	must(unix.Lstat(filepath.Join(src, "home", "user"), &s0))
	must(unix.Lstat(filepath.Join(dst, "home", "user"), &s1))
	if s0.Mtim != s1.Mtim {
		t.Errorf("directory mtime not kept: %v vs %v", s0.Mtim, s1.Mtim)
	}

	// Cached: a second call returns the same copy without rebuilding it.
	must(os.WriteFile(filepath.Join(dst, "probe"), nil, 0o644))
	if again, err := EnsureShifted(context.Background(), src, m); err != nil || again != dst {
		t.Fatalf("second call: %s %v", again, err)
	}
	if _, err := os.Stat(filepath.Join(dst, "probe")); err != nil {
		t.Errorf("the cached copy was rebuilt")
	}
	// A copy without its marker (a crashed build) is rebuilt.
	must(os.Remove(dst + ".ready"))
	if _, err := EnsureShifted(context.Background(), src, m); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, "probe")); !os.IsNotExist(err) {
		t.Errorf("an unmarked copy was reused")
	}
}

func TestIDMapShift(t *testing.T) {
	m := IDMap{HostUID: 100000, HostGID: 200000, Size: 65536}
	cases := []struct{ id, base, want uint32 }{
		{0, m.HostUID, 100000},
		{1000, m.HostUID, 101000},
		{65535, m.HostGID, 265535},
		{70000, m.HostUID, 165534}, // outside the range: nobody
	}
	for _, c := range cases {
		if got := m.shift(c.id, c.base); got != c.want {
			t.Errorf("shift(%d, %d) = %d, want %d", c.id, c.base, got, c.want)
		}
	}
}
