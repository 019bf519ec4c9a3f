// Package e2e runs Warren end to end: real `warren serve` processes on real runsc, driven
// over HTTP and through the CLI, with a leak check after each server. The server harness
// lives in test/internal/harness, shared with test/abuse.
package e2e

import (
	"testing"

	"github.com/warren-sh/warren/test/internal/harness"
)

func TestMain(m *testing.M) { harness.Main(m, "e2e") }

// server is a harness server; the suites add their own helpers to it.
type server struct{ *harness.Server }

type (
	serverOpts  = harness.Opts
	sandboxJSON = harness.SandboxJSON
	execJSON    = harness.ExecJSON
)

func startServer(t *testing.T, o serverOpts) *server { return &server{harness.Start(t, o)} }

func repoRoot() string { return harness.RepoRoot() }

func freePort(t *testing.T) string { return harness.FreePort(t) }
