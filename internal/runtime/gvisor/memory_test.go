package gvisor

import (
	"context"
	"testing"

	"github.com/warren-sh/warren/internal/runtime"
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
// host cgroup's, and the cgroup's when the handle has none (a sandbox started before).
func TestStatsMemoryLimit(t *testing.T) {
	d := &Driver{cfg: Config{CgroupParent: "/warren-test-gvisor-none"}}
	h := runtime.Handle{ID: "nosuchsandbox", Data: map[string]string{dataMemoryLimit: "268435456"}}
	st, err := d.Stats(context.Background(), h)
	if err != nil || st.MemoryLimit != 256<<20 {
		t.Errorf("Stats: limit %d, err %v; want %d", st.MemoryLimit, err, 256<<20)
	}
	h.Data = nil
	if st, _ := d.Stats(context.Background(), h); st.MemoryLimit != 0 {
		t.Errorf("Stats without a remembered limit: %d, want the cgroup's (none here)", st.MemoryLimit)
	}
}
