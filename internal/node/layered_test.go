package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// TestStartLayered starts a layered sandbox on a fake driver over two layers and a
// parent: the root filesystem shows the topmost version of each file, writes and
// deletions land in the writable layer only, SaveLayer keeps them (a deletion as a
// whiteout), and Stop leaves no mount and no directory.
func TestStartLayered(t *testing.T) {
	var got runtime.Spec
	n := testNode(t, &fakeDriver{start: func(s runtime.Spec) (runtime.Handle, error) {
		got = s
		return runtime.Handle{ID: s.ID, Driver: "fake"}, nil
	}})
	parent, l1, l2 := t.TempDir(), t.TempDir(), t.TempDir()
	write := func(dir, name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(parent, "a", "parent")
	write(parent, "b", "parent")
	write(l1, "b", "l1")
	write(l1, "c", "l1")
	write(l2, "c", "l2")
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	id := "build-" + domain.NewID(14)
	h, _, err := n.StartLayered(context.Background(), LayeredSpec{ID: id, Slot: 6, RootFS: parent, Lowers: []string{l2, l1},
		Limits: domain.Limits{DiskMB: 64}, Agent: AgentConfig{AccessToken: "tok"}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = n.Stop(context.Background(), id, 6, &h)
		}
	})
	for name, want := range map[string]string{"a": "parent", "b": "l1", "c": "l2"} {
		if b, _ := os.ReadFile(filepath.Join(got.RootFS, name)); string(b) != want {
			t.Errorf("%s reads %q, want %q", name, b, want)
		}
	}
	if fi, err := os.Stat(got.RootFS); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the root's mode %v (%v), want the parent's 0755", fi.Mode(), err)
	}
	write(got.RootFS, "d", "new")
	if err := os.Remove(filepath.Join(got.RootFS, "b")); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(t.TempDir(), "layer")
	if err := n.SaveLayer(context.Background(), id, saved); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(saved, "d")); string(b) != "new" {
		t.Errorf("saved layer's d: %q", b)
	}
	fi, err := os.Lstat(filepath.Join(saved, "b"))
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 || fi.Sys().(*syscall.Stat_t).Rdev != 0 {
		t.Errorf("saved layer's b is not a whiteout: %v %v", fi, err)
	}
	for _, l := range []string{parent, l1, l2} {
		if _, err := os.Stat(filepath.Join(l, "d")); err == nil {
			t.Errorf("a read-only layer %s was written", l)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(l1, "b")); string(b) != "l1" {
		t.Errorf("a read-only layer lost a file: %q", b)
	}
	if left, err := n.Leftovers(context.Background(), "build-"); err != nil || len(left) != 1 || left[0] != id {
		t.Errorf("leftovers %v (%v), want [%s]", left, err, id)
	}
	if err := n.Stop(context.Background(), id, 6, &h); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if left, err := n.Leftovers(context.Background(), "build-"); err != nil || len(left) != 0 {
		t.Errorf("leftovers after Stop %v (%v)", left, err)
	}
	if m, _ := mountsUnder(n.cfg.Dir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if _, err := os.Stat(n.sandboxDir(id)); !os.IsNotExist(err) {
		t.Errorf("directory left: %v", err)
	}
}

// TestStartLayeredRefusals: an id with a sandbox id's shape, a driver that maps ids,
// and layers whose paths cannot go into the overlay's options are refused, leaving
// nothing.
func TestStartLayeredRefusals(t *testing.T) {
	n := testNode(t, &shiftingDriver{})
	parent := t.TempDir()
	many := make([]string, 80)
	for i := range many {
		many[i] = "/var/cache/warren/layers/" + strings.Repeat("0", 64)
	}
	for _, c := range []struct {
		name string
		spec LayeredSpec
		want string
	}{
		{"sandbox id", LayeredSpec{ID: domain.NewID(20), Slot: 1, RootFS: parent}, "shape of a sandbox id"},
		{"id mapping", LayeredSpec{ID: "build-x1", Slot: 1, RootFS: parent, Lowers: []string{t.TempDir()}}, "maps ids"},
	} {
		if _, _, err := n.StartLayered(context.Background(), c.spec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if _, err := os.Stat(n.sandboxDir(c.spec.ID)); !os.IsNotExist(err) {
			t.Errorf("%s: directory left: %v", c.name, err)
		}
	}
	dir := t.TempDir()
	for _, lowers := range [][]string{many, {"/a:b"}, {"/a,b"}} {
		if _, err := MountLayers(append(lowers, parent), dir, dir); err == nil {
			_ = UnmountAll(dir)
			t.Errorf("MountLayers(%.60q...) mounted", lowers)
		}
	}
	if m, _ := mountsUnder(dir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}
