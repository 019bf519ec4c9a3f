package template

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/testenv"
)

// buildReal builds recipe r into the shared cache (minutes when the cache is cold; skipped
// under -short, as root only) and returns its root filesystem and marker. what says what
// else the test needs root for, after building with debootstrap.
func buildReal(t *testing.T, r Recipe, what string) (string, Marker) {
	t.Helper()
	if testing.Short() {
		t.Skipf("builds the %s template (minutes when the cache is cold); skipped under -short", r.ID())
	}
	testenv.NeedsRoot(t, "builds a template with debootstrap"+what)
	b := sharedBuilder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	rootfs, err := b.Ensure(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := b.Marker(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("template %s ready after %v (built in %.0fs, %d MB)", r.ID(), time.Since(start).Round(time.Millisecond), m.BuildSeconds, m.SizeBytes/1e6)
	return rootfs, m
}

// wantExecutables fails t for each path (relative to rootfs) that is missing or not
// executable.
func wantExecutables(t *testing.T, rootfs string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		st, err := os.Stat(filepath.Join(rootfs, p))
		if err != nil {
			t.Error(err)
		} else if st.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable (%v)", p, st.Mode())
		}
	}
}
