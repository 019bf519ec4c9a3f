// Package observability tests deploy/: the Grafana dashboard and Prometheus rules are
// checked statically (structure, metric names against the ones the server declares,
// promtool), and end to end: a real `warren serve` on real runsc is scraped by Debian's
// real prometheus, and every dashboard query and alert expression is evaluated there.
package observability

import (
	"flag"
	"os"
	"testing"

	"github.com/warren-sh/warren/test/internal/harness"
)

// TestMain builds the binaries (harness.Main) only where the end-to-end test can run:
// the static checks run under -short (make unit) and without root too.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() || os.Geteuid() != 0 {
		// The end-to-end test skips itself through testenv (failing under CI).
		os.Exit(m.Run())
	}
	harness.Main(m, "observability")
}
