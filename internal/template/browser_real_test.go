package template

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/testenv"
)

// TestBrowserBuildReal builds the browser template into the shared cache (minutes when
// the cache is cold) and checks what the sandbox needs from it: Chromium, the front as
// the start command, executable. test/e2e's TestBrowserTemplate drives it in a sandbox.
func TestBrowserBuildReal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the browser template (minutes when the cache is cold); skipped under -short")
	}
	testenv.NeedsRoot(t, "builds a template with debootstrap")
	r := Browser()
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
	if m.StartCmd != BrowserBin {
		t.Errorf("marker StartCmd = %q, want %q", m.StartCmd, BrowserBin)
	}
	for _, p := range []string{"usr/bin/chromium", BrowserBin[1:]} {
		st, err := os.Stat(filepath.Join(rootfs, p))
		if err != nil {
			t.Error(err)
		} else if st.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable (%v)", p, st.Mode())
		}
	}
	if fonts, _ := filepath.Glob(filepath.Join(rootfs, "usr/share/fonts/truetype/liberation*/*.ttf")); len(fonts) == 0 {
		t.Error("no Liberation fonts in the rootfs: pages would render without text")
	}
}
