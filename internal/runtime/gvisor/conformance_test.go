package gvisor

import (
	"testing"

	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/runtimetest"
)

// TestConformance runs the runtime conformance suite on gVisor.
func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(t *testing.T) runtime.Driver {
		d, err := New(Config{Root: t.TempDir(), CgroupParent: "/warren-test-gvisor"})
		if err != nil {
			t.Fatalf("gvisor driver: %v", err)
		}
		return d
	})
}
