package oci

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/warren-sh/warren/internal/testenv"
)

// procsFileFrom finds this process's cgroup.procs in the first v1 hierarchy mounted
// below the root, else in cgroup v2 (at the root, or at root/unified on a hybrid host),
// and refuses paths it cannot trust.
func TestProcsFileFrom(t *testing.T) {
	mk := func(root string, dirs ...string) {
		for _, d := range dirs {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, d, "cgroup.procs"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	controllers := func(root, at string) {
		if err := os.WriteFile(filepath.Join(root, at, "cgroup.controllers"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name  string
		setup func(root string)
		self  string
		want  string // relative to root; "" for an error
	}{
		{"v1: the first mounted hierarchy", func(r string) { mk(r, "pids/a/b", "systemd/a") },
			"9:name=systemd:/a\n8:pids:/a/b\n0::/\n", "systemd/a/cgroup.procs"},
		{"v1: a hierarchy not mounted is passed over", func(r string) { mk(r, "pids/x") },
			"4:memory:/m\n3:pids:/x\n", "pids/x/cgroup.procs"},
		{"v1: joined controllers", func(r string) { mk(r, "cpu,cpuacct/s") },
			"2:cpu,cpuacct:/s\n", "cpu,cpuacct/s/cgroup.procs"},
		{"v2 only", func(r string) { mk(r, "", "user.slice"); controllers(r, "") },
			"0::/user.slice\n", "user.slice/cgroup.procs"},
		{"hybrid: v2 at unified", func(r string) { mk(r, "unified/s"); controllers(r, "unified") },
			"0::/s\n", "unified/s/cgroup.procs"},
		{"v2 not mounted", func(r string) { mk(r, "s") }, "0::/s\n", ""},
		{"a path that climbs out", func(r string) { mk(r, "pids/a") }, "8:pids:/../a\n", ""},
		{"no cgroup at all", func(string) {}, "", ""},
		{"garbage", func(r string) { mk(r, "pids") }, "pids\n::\n1:pids\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			c.setup(root)
			got, err := procsFileFrom(root, []byte(c.self))
			if c.want == "" {
				if err == nil {
					t.Fatalf("got %s, want an error", got)
				}
				return
			}
			if err != nil || got != filepath.Join(root, c.want) {
				t.Fatalf("got %q, %v; want %q", got, err, filepath.Join(root, c.want))
			}
		})
	}
}

// On this host PrimeMigration moves the test process into its own cgroup: it works, and
// the process is still where it was.
func TestPrimeMigrationReal(t *testing.T) {
	testenv.NeedsRoot(t, "moving a process between cgroups")
	before, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		testenv.Missing(t, "no /proc/self/cgroup: "+err.Error())
	}
	if err := PrimeMigration(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile("/proc/self/cgroup")
	if string(after) != string(before) {
		t.Errorf("the process moved:\n%s\nthen\n%s", before, after)
	}
}
