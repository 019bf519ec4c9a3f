package e2e

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/testenv"
)

// desktopSuite is the SDK suite's desktop file (@e2b/desktop), which needs the desktop
// template and Debian's chromium.
const desktopSuite = "desktop.test.mjs"

// TestE2BSDKDesktop runs the official, unmodified @e2b/desktop SDK (test/e2b/desktop.test.mjs)
// against a real server: Sandbox.create of the desktop template (the SDK starts Xvfb and
// xfce4 with commands), screenshot, the mouse, typing into an editor whose saved file is
// read back, and the noVNC stream through the proxy in headless Chromium. The SDK's and
// the stream's screenshots land in test-artifacts/desktop.
func TestE2BSDKDesktop(t *testing.T) {
	node := testenv.NeedsTool(t, "node")
	chromium := os.Getenv("WARREN_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("the desktop suite loads the noVNC stream in Debian's chromium: apt-get install chromium (or set WARREN_CHROMIUM): %v", err)
	}
	ensureNodeModules(t, filepath.Join(repoRoot(), "test", "e2b"))
	s := startServer(t, serverOpts{})
	// Built in the background after code-interpreter and browser on a cold cache.
	s.WaitTemplate("desktop", 45*time.Minute)

	artifacts := filepath.Join(repoRoot(), "test-artifacts", "desktop")
	shots := []string{"screenshot.png", "editor.png", "stream.png"}
	for _, f := range shots {
		os.Remove(filepath.Join(artifacts, f))
	}
	runE2BSuite(t, node, s, []string{filepath.Join("test", "e2b", desktopSuite)},
		[]string{"WARREN_CHROMIUM=" + chromium, "WARREN_ARTIFACTS=" + artifacts})
	for _, f := range shots {
		png, err := os.ReadFile(filepath.Join(artifacts, f))
		if err != nil {
			t.Errorf("artifact %s: %v", f, err)
			continue
		}
		if len(png) < 24 || !bytes.Equal(png[:8], []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("artifact %s is not a PNG (%d bytes)", f, len(png))
			continue
		}
		t.Logf("artifact %s: %dx%d, %d bytes", filepath.Join(artifacts, f), binary.BigEndian.Uint32(png[16:20]), binary.BigEndian.Uint32(png[20:24]), len(png))
	}
}
