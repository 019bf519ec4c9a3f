package gvisor

import (
	"testing"

	"github.com/warren-sh/warren/internal/runtime/oci"
)

// TestBootCPU: a sandbox boots with at least two cores' quota, and with the CPU count
// runsc derives from the quota (max(2, ceil(cores))) unchanged; one whose limit is at
// least that boots under its own.
func TestBootCPU(t *testing.T) {
	const p = 100000
	for _, tc := range []struct {
		name  string
		limit *oci.CPU
		want  *oci.CPU
	}{
		{"no limit", nil, nil},
		{"no quota", &oci.CPU{Period: p}, nil},
		{"half a core", &oci.CPU{Quota: p / 2, Period: p}, &oci.CPU{Quota: 2 * p, Period: p}},
		{"one core", &oci.CPU{Quota: p, Period: p}, &oci.CPU{Quota: 2 * p, Period: p}},
		{"one and a half", &oci.CPU{Quota: 3 * p / 2, Period: p}, &oci.CPU{Quota: 2 * p, Period: p}},
		{"two cores", &oci.CPU{Quota: 2 * p, Period: p}, nil},
		{"two and a half: three cores seen either way", &oci.CPU{Quota: 5 * p / 2, Period: p}, &oci.CPU{Quota: 3 * p, Period: p}},
		{"four cores", &oci.CPU{Quota: 4 * p, Period: p}, nil},
		{"another period", &oci.CPU{Quota: 50000, Period: 50000}, &oci.CPU{Quota: 100000, Period: 50000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := bootCPU(tc.limit)
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Errorf("bootCPU(%+v) = %+v, want %+v", tc.limit, got, tc.want)
			}
		})
	}
}
