package node

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/testenv"
)

func TestUnescapeMount(t *testing.T) {
	cases := map[string]string{
		`/plain/path`:         "/plain/path",
		`/with\040space`:      "/with space",
		`/tab\011and\134back`: "/tab\tand\\back",
	}
	for in, want := range cases {
		if got := unescapeMount(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// TestOverlayReal mounts and unmounts a real overlay: writes land in the upper layer
// and never in the shared lower one.
func TestOverlayReal(t *testing.T) {
	testenv.NeedsRoot(t, "mount overlayfs")
	lower, dir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(lower, "shared"), []byte("template"), 0o644); err != nil {
		t.Fatal(err)
	}
	merged, err := mountOverlay(lower, dir, dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unmountAll(dir)
	if err := os.WriteFile(filepath.Join(merged, "shared"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(lower, "shared")); string(b) != "template" {
		t.Errorf("lower layer changed: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "upper", "shared")); string(b) != "changed" {
		t.Errorf("upper layer: %q", b)
	}
	// The tenant's layer carries no set-uid or device meaning on the host.
	var st unix.Statfs_t
	if err := unix.Statfs(merged, &st); err != nil {
		t.Fatal(err)
	}
	if st.Flags&unix.ST_NOSUID == 0 || st.Flags&unix.ST_NODEV == 0 {
		t.Errorf("overlay mount flags %#x: want nosuid and nodev", st.Flags)
	}
	if err := unmountAll(dir); err != nil {
		t.Fatal(err)
	}
	if m, _ := mountsUnder(dir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}
