package template

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/testenv"
)

// TestDesktopBuildReal builds the desktop template into the shared cache (minutes when
// the cache is cold) and checks what @e2b/desktop runs in it: the X server, the session,
// the tools and noVNC where the SDK looks. test/e2e's TestE2BSDKDesktop drives it.
func TestDesktopBuildReal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the desktop template (minutes when the cache is cold); skipped under -short")
	}
	testenv.NeedsRoot(t, "builds a template with debootstrap")
	r := Desktop()
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
	for _, p := range []string{"usr/bin/Xvfb", "usr/bin/startxfce4", "usr/bin/xdotool", "usr/bin/scrot",
		"usr/bin/x11vnc", DesktopX11VNC[1:], "usr/bin/xrandr", "usr/bin/websockify", "opt/noVNC/utils/novnc_proxy"} {
		st, err := os.Stat(filepath.Join(rootfs, p))
		if err != nil {
			t.Error(err)
		} else if st.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable (%v)", p, st.Mode())
		}
	}
	if _, err := os.Stat(filepath.Join(rootfs, "opt/noVNC/vnc.html")); err != nil {
		t.Errorf("noVNC's web client is missing: %v", err)
	}
	if m.StartCmd != "" {
		t.Errorf("marker StartCmd = %q; the SDK starts the desktop itself", m.StartCmd)
	}
}
