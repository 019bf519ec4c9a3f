package runc

import (
	"testing"

	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/runtimetest"
)

// TestContract runs the driver contract on runc. The same state root serves every driver
// value the suite makes, as it would a restarted server. The full-stack suite for this
// driver is test/stack.
func TestContract(t *testing.T) {
	root := t.TempDir()
	runtimetest.Run(t, func() runtime.Driver {
		d, err := New(Config{Root: root, CgroupParent: "/warren-test-runc"})
		if err != nil {
			t.Fatalf("runc driver: %v", err)
		}
		return d
	})
}
