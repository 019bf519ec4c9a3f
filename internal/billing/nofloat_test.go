package billing

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNoFloatingPoint keeps floating point out of the money code: no float type and no
// decimal<->float conversion in the package's non-test sources.
func TestNoFloatingPoint(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	banned := regexp.MustCompile(`\bfloat(32|64)\b|ParseFloat|FromFloat|InexactFloat|Float64\(`)
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := banned.Find(src); m != nil {
			t.Errorf("%s uses %s; money must stay decimal", f, m)
		}
		checked++
	}
	if checked < 5 {
		t.Errorf("checked only %d files; is the test running in the package directory?", checked)
	}
}
