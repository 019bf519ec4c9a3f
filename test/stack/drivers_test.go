package stack

import (
	"testing"

	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/gvisor"
	"github.com/warren-sh/warren/internal/runtime/runc"
)

// TestGVisor runs the full-stack suite on the gVisor driver.
func TestGVisor(t *testing.T) {
	Run(t, func(t *testing.T) runtime.Driver {
		d, err := gvisor.New(gvisor.Config{Root: t.TempDir(), CgroupParent: "/warren-test-gvisor"})
		if err != nil {
			t.Fatalf("gvisor driver: %v", err)
		}
		return d
	})
}

// TestRunc runs the full-stack suite on the runc driver.
func TestRunc(t *testing.T) {
	Run(t, func(t *testing.T) runtime.Driver {
		d, err := runc.New(runc.Config{Root: t.TempDir(), CgroupParent: "/warren-test-runc"})
		if err != nil {
			t.Fatalf("runc driver: %v", err)
		}
		return d
	})
}
