package gvisor

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/oci"
)

func TestHostMemoryMB(t *testing.T) {
	for _, tc := range []struct{ guest, host int64 }{
		{128, 224},
		{256, 384},
		{1024, 1344},
		{8192, 10304},
	} {
		if got := hostMemoryMB(tc.guest); got != tc.host {
			t.Errorf("host limit for memory_mb %d: %d MiB, want %d", tc.guest, got, tc.host)
		}
	}
}

// TestStatsMemoryLimit: Stats reports the guest limit the handle remembers, not the
// host cgroup's, and the cgroup's when the handle has none (a sandbox started before);
// a sandbox without a cgroup is not found. The cgroups are a fake tree (oci.CgroupRoot).
func TestStatsMemoryLimit(t *testing.T) {
	root := t.TempDir()
	old := oci.CgroupRoot
	oci.CgroupRoot = root
	t.Cleanup(func() { oci.CgroupRoot = old })
	const parent, id = "/warren-test-gvisor", "somesandbox"
	mem := filepath.Join(root, "memory", oci.CgroupPath(parent, id))
	if err := os.MkdirAll(mem, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"memory.usage_in_bytes": "1048576\n", "memory.limit_in_bytes": "402653184\n"} {
		if err := os.WriteFile(filepath.Join(mem, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	d := &Driver{cfg: Config{CgroupParent: parent}}
	h := runtime.Handle{ID: id, Data: map[string]string{dataMemoryLimit: "268435456"}}
	st, err := d.Stats(context.Background(), h)
	if err != nil || st.MemoryLimit != 256<<20 || st.MemoryBytes != 1<<20 {
		t.Errorf("Stats: limit %d, memory %d, err %v; want %d, %d", st.MemoryLimit, st.MemoryBytes, err, 256<<20, 1<<20)
	}
	h.Data = nil
	if st, err := d.Stats(context.Background(), h); err != nil || st.MemoryLimit != 384<<20 {
		t.Errorf("Stats without a remembered limit: %d, %v; want the cgroup's, %d", st.MemoryLimit, err, 384<<20)
	}
	if _, err := d.Stats(context.Background(), runtime.Handle{ID: "nosuchsandbox"}); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("Stats of a sandbox without a cgroup: %v, want not found", err)
	}
}
