package testenv

import (
	"testing"
)

// recorder is a testing.TB that remembers whether the test was skipped or failed.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped = true
	r.msg = args[0].(string)
}
func (r *recorder) Fatalf(format string, args ...any) { r.failed = true; r.msg = format }

func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		ci           string
		skip, failed bool
	}{
		{"", true, false},
		{"false", true, false},
		{"0", true, false},
		{"1", false, true},
		{"true", false, true},
	} {
		t.Setenv("CI", tc.ci)
		r := &recorder{TB: t}
		Missing(r, "redis")
		if r.skipped != tc.skip || r.failed != tc.failed {
			t.Errorf("CI=%q: skipped=%v failed=%v, want %v %v", tc.ci, r.skipped, r.failed, tc.skip, tc.failed)
		}
	}
}

func TestNeedsEnv(t *testing.T) {
	t.Setenv("CI", "1")
	t.Setenv("WARREN_TESTENV_PROBE", "x")
	r := &recorder{TB: t}
	if v := NeedsEnv(r, "WARREN_TESTENV_PROBE", "set it"); v != "x" || r.failed || r.skipped {
		t.Errorf("set variable: %q failed=%v skipped=%v", v, r.failed, r.skipped)
	}
	t.Setenv("WARREN_TESTENV_PROBE", "")
	r = &recorder{TB: t}
	NeedsEnv(r, "WARREN_TESTENV_PROBE", "set it")
	if !r.failed && !testing.Short() {
		t.Error("an unset variable under CI did not fail the test")
	}
}
