package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestRoomAdmit(t *testing.T) {
	l := domain.Limits{MemoryMB: 512, DiskMB: 2048}
	cases := []struct {
		name       string
		mem, disk  int64
		err        error
		resource   string // "" admits
		need, free int64
	}{
		{name: "room", mem: 1024, disk: 3072},
		{name: "exactly enough", mem: 512 + 256, disk: 2048 + 1024},
		{name: "memory short by the reserve", mem: 700, disk: 1 << 20, resource: "memory", need: 768, free: 700},
		{name: "disk short", mem: 1 << 20, disk: 3000, resource: "disk", need: 3072, free: 3000},
		{name: "unreadable admits", err: errors.New("no /proc")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &Room{Dir: "/data", MemoryReserveMB: 256, DiskReserveMB: 1024, RetryAfter: 7 * time.Second,
				Read: func(dir string) (int64, int64, error) {
					if dir != "/data" {
						t.Errorf("read %q, want /data", dir)
					}
					return c.mem, c.disk, c.err
				}}
			err := r.Admit(context.Background(), l)
			if c.resource == "" {
				if err != nil {
					t.Fatalf("Admit = %v, want nil", err)
				}
				return
			}
			var nf *domain.NodeFullError
			if !domain.IsKind(err, domain.KindUnavailable) || !errors.As(err, &nf) {
				t.Fatalf("Admit = %v, want a KindUnavailable NodeFullError", err)
			}
			if *nf != (domain.NodeFullError{Resource: c.resource, NeedMB: c.need, FreeMB: c.free, RetryAfter: 7 * time.Second}) {
				t.Errorf("refusal %+v", *nf)
			}
		})
	}
}

func TestReadFree(t *testing.T) {
	mem, disk, err := ReadFree(t.TempDir())
	if err != nil || mem <= 0 || disk <= 0 {
		t.Fatalf("ReadFree = %d MiB memory, %d MiB disk, %v", mem, disk, err)
	}
	if _, err := memAvailableMB([]byte("MemTotal: 1 kB\n")); err == nil {
		t.Error("meminfo without MemAvailable read")
	}
	if got, err := memAvailableMB([]byte("MemTotal: 8000000 kB\nMemAvailable:    2097152 kB\n")); got != 2048 || err != nil {
		t.Errorf("memAvailableMB = %d, %v; want 2048", got, err)
	}
}
