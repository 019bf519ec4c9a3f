package abuse

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A runc sandbox shares the host kernel: root that escapes its user namespace is, on the
// host, the ids the namespace maps to. If every sandbox mapped to the same host range,
// that root would own every other sandbox's files and could signal or ptrace its
// processes. Each sandbox must have a range of its own.

func init() {
	register(probe{name: "escape/runc-shared-uid-range", runtimes: []string{"runc"}, run: probeSharedUIDRange})
}

// idRange is one line of a /proc/<pid>/uid_map: inside ids from In map to host ids
// from Host, Size of them.
type idRange struct{ In, Host, Size uint64 }

func (r idRange) owns(id uint32) bool { return uint64(id) >= r.Host && uint64(id) < r.Host+r.Size }

func parseUIDMap(t *testing.T, name, s string) idRange {
	t.Helper()
	f := strings.Fields(s)
	if len(f) != 3 {
		t.Fatalf("sandbox %s: /proc/self/uid_map is %q, want one line of three numbers", name, s)
	}
	var n [3]uint64
	for i := range f {
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			t.Fatalf("sandbox %s: /proc/self/uid_map %q: %v", name, s, err)
		}
		n[i] = v
	}
	return idRange{n[0], n[1], n[2]}
}

// hostOwner returns the host uid and gid of path, which must exist.
func hostOwner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("stat on the host: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

// upperOf returns the host directory of sandbox id's writable layer (on its disk when
// it has a size limit).
func upperOf(t *testing.T, e *env, id string) string {
	t.Helper()
	dir := filepath.Join(e.S.DataDir, "sandboxes", id)
	for _, p := range []string{filepath.Join(dir, "disk", "upper"), filepath.Join(dir, "upper")} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("no writable layer of sandbox %s on the host under %s", id, dir)
	return ""
}

func probeSharedUIDRange(t *testing.T, e *env) string {
	a, b := e.Fresh(t, nil), e.Fresh(t, nil)
	// As root in each: its uid map, and a file root creates in its own layer.
	cmd := `cat /proc/self/uid_map; echo owned > /idrange-probe`
	ra, rb := rootExec(t, e, a, cmd, 30), rootExec(t, e, b, cmd, 30)
	if ra.ExitCode != 0 || rb.ExitCode != 0 {
		t.Fatalf("probe command failed: A %d %q, B %d %q", ra.ExitCode, ra.Stderr, rb.ExitCode, rb.Stderr)
	}
	ma, mb := parseUIDMap(t, "A", ra.Stdout), parseUIDMap(t, "B", rb.Stdout)
	if ma.In != 0 || mb.In != 0 {
		t.Fatalf("uid maps do not start at root: A %+v, B %+v", ma, mb)
	}
	if ma.Host < mb.Host+mb.Size && mb.Host < ma.Host+ma.Size {
		t.Errorf("sandboxes A and B share host ids: A maps root to %d, B to %d (%d ids each): root escaping A owns B", ma.Host, mb.Host, ma.Size)
	}
	// On the host: each layer, the file each root made in it, and each sandbox's view of
	// the template must belong to its own range, none of it to the other's.
	var outcome []string
	for _, s := range []struct {
		name, id, otherName string
		own, other          idRange
	}{{"A", a, "B", ma, mb}, {"B", b, "A", mb, ma}} {
		upper := upperOf(t, e, s.id)
		paths := map[string]string{
			"writable layer":         upper,
			"file root made":         filepath.Join(upper, "idrange-probe"),
			"template's /etc/passwd": filepath.Join(e.S.DataDir, "sandboxes", s.id, "rootfs", "etc", "passwd"),
		}
		for what, p := range paths {
			uid, gid := hostOwner(t, p)
			switch {
			case s.other.owns(uid) || s.other.owns(gid):
				t.Errorf("sandbox %s's %s (%s) is owned by %d:%d, in sandbox %s's host range %d+%d: root escaping %s owns it",
					s.name, what, p, uid, gid, s.otherName, s.other.Host, s.other.Size, s.otherName)
			case !s.own.owns(uid) || !s.own.owns(gid):
				t.Errorf("sandbox %s's %s (%s) is owned by %d:%d, outside its own host range %d+%d", s.name, what, p, uid, gid, s.own.Host, s.own.Size)
			}
		}
		uid, _ := hostOwner(t, upper)
		outcome = append(outcome, fmt.Sprintf("%s root=host %d, layer owned by %d", s.name, s.own.Host, uid))
	}
	return strings.Join(outcome, "; ")
}
