// Package testenv decides what a test does when something it needs is missing: outside
// CI it skips with the reason; under CI (CI set to anything but "" or "false") it fails,
// because CI installs and starts everything the suites need, so a missing thing there is
// a broken CI, not a reason to pass quietly. Under -short (make unit) tests that need root
// or a real service skip even in CI: make unit runs only what needs neither.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run under CI (.ci/run exports CI=1).
func CI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Missing skips t with why, or fails it under CI.
func Missing(t testing.TB, why string) {
	t.Helper()
	if CI() {
		t.Fatalf("CI: this test cannot run: %s (CI must provide it: see scripts/install-deps.sh and scripts/test-services.sh)", why)
		return
	}
	t.Skip(why)
}

// NeedsRoot skips t under -short, and otherwise when not root (failing under CI).
func NeedsRoot(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: needs root (%s)", what)
	}
	if os.Geteuid() != 0 {
		Missing(t, "needs root: "+what+" (run the tests as root, as make test in CI does)")
	}
}

// NeedsTool skips t when the program is not on PATH (failing under CI) and returns its path.
func NeedsTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not installed (scripts/install-deps.sh installs it)")
	}
	return p
}

// NeedsEnv returns the variable's value, skipping t when it is unset (failing under CI).
func NeedsEnv(t testing.TB, name, how string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if testing.Short() {
			t.Skipf("-short: %s is unset", name)
		}
		Missing(t, name+" is unset: "+how)
	}
	return v
}
