package runc

import (
	"testing"

	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/runtimetest"
)

// TestConformance runs the runtime conformance suite on runc.
func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(t *testing.T) runtime.Driver {
		d, err := New(Config{Root: t.TempDir(), CgroupParent: "/warren-test-runc"})
		if err != nil {
			t.Fatalf("runc driver: %v", err)
		}
		return d
	})
}
