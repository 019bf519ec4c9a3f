package gvisor

import "testing"

func TestGuestProcesses(t *testing.T) {
	for _, c := range []struct {
		max  int64
		want uint64
	}{{0, 0}, {-1, 0}, {1024, 328}, {256, 72}, {136, 32}, {64, 32}} {
		if got := guestProcesses(c.max); got != c.want {
			t.Errorf("guestProcesses(%d) = %d, want %d", c.max, got, c.want)
		}
	}
}
