package server

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDepsNoAgent: the server reports the agent's protocol version from package version
// and must not link warren-agent's code for it.
func TestDepsNoAgent(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go tool is not on PATH")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/warren-sh/warren/internal/agent" || strings.HasPrefix(dep, "github.com/warren-sh/warren/internal/agent/") {
			t.Errorf("the server depends on %s: take shared constants from internal/version", dep)
		}
	}
}
