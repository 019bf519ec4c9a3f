package template

import (
	"path/filepath"
	"testing"
)

// TestBrowserBuildReal builds the browser template into the shared cache (minutes when
// the cache is cold) and checks what the sandbox needs from it: Chromium, the front as
// the start command, executable. test/e2e's TestBrowserTemplate drives it in a sandbox.
func TestBrowserBuildReal(t *testing.T) {
	rootfs, m := buildReal(t, Browser(), "")
	if m.StartCmd != BrowserBin {
		t.Errorf("marker StartCmd = %q, want %q", m.StartCmd, BrowserBin)
	}
	wantExecutables(t, rootfs, "usr/bin/chromium", BrowserBin[1:])
	if fonts, _ := filepath.Glob(filepath.Join(rootfs, "usr/share/fonts/truetype/liberation*/*.ttf")); len(fonts) == 0 {
		t.Error("no Liberation fonts in the rootfs: pages would render without text")
	}
}
