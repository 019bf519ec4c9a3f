package idmount

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMountShiftsOwners mounts a root-owned tree id-mapped into two ranges and checks
// that each view shows the tree owned by its own range, and that the source is untouched.
func TestMountShiftsOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "etc", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(filepath.Join(src, "etc", "f"), 1000, 1001); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Range{{UID: 165536, GID: 165536, Size: 65536}, {UID: 231072, GID: 231072, Size: 65536}} {
		dst := filepath.Join(dir, "dst", "x")
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := Mount(src, dst, r); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Unmount(dst, unix.MNT_DETACH) })
		for name, want := range map[string][2]uint32{"": {r.UID, r.GID}, "etc/f": {r.UID + 1000, r.GID + 1001}} {
			fi, err := os.Lstat(filepath.Join(dst, name))
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != want[0] || st.Gid != want[1] {
				t.Errorf("range %d: %q is owned by %d:%d, want %d:%d", r.UID, name, st.Uid, st.Gid, want[0], want[1])
			}
		}
		if err := unix.Unmount(dst, 0); err != nil {
			t.Fatal(err)
		}
	}
	fi, _ := os.Lstat(filepath.Join(src, "etc", "f"))
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1000 || st.Gid != 1001 {
		t.Errorf("the source changed owner: %d:%d", st.Uid, st.Gid)
	}
}
