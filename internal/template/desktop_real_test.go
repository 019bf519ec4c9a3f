package template

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDesktopBuildReal builds the desktop template into the shared cache (minutes when
// the cache is cold) and checks what @e2b/desktop runs in it: the X server, the session,
// the tools and noVNC where the SDK looks. test/e2e's TestE2BSDKDesktop drives it.
func TestDesktopBuildReal(t *testing.T) {
	rootfs, m := buildReal(t, Desktop(), "")
	wantExecutables(t, rootfs, "usr/bin/Xvfb", "usr/bin/startxfce4", "usr/bin/xdotool", "usr/bin/scrot",
		"usr/bin/x11vnc", DesktopX11VNC[1:], "usr/bin/xrandr", "usr/bin/websockify", "opt/noVNC/utils/novnc_proxy")
	if _, err := os.Stat(filepath.Join(rootfs, "opt/noVNC/vnc.html")); err != nil {
		t.Errorf("noVNC's web client is missing: %v", err)
	}
	if m.StartCmd != "" {
		t.Errorf("marker StartCmd = %q; the SDK starts the desktop itself", m.StartCmd)
	}
}
