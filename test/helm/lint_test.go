package helm

import (
	"path/filepath"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
)

// TestLint runs Helm's linter on the chart with each values file, as `helm lint --strict
// -f FILE` does: an error or a warning fails (informational messages do not).
func TestLint(t *testing.T) {
	for _, f := range valuesFiles {
		t.Run(filepath.Base(f), func(t *testing.T) {
			vals := readValues(t, f)
			res := lint.RunAll(chartDir, vals, namespace)
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m.Error())
				} else {
					t.Logf("helm lint: %s", m.Error())
				}
			}
		})
	}
}
