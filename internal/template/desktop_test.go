package template

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestDesktopRecipe(t *testing.T) {
	r := Desktop()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Name != "desktop" || r.StartCmd != "" {
		t.Errorf("name %q, start %q; the SDK starts the desktop itself", r.Name, r.StartCmd)
	}
	base := Base()
	if !slices.Equal(r.packages(), base.packages()) {
		t.Errorf("debootstrap packages %q, want Base's %q", r.packages(), base.packages())
	}
	// One package per program @e2b/desktop runs.
	for _, p := range []string{"xvfb", "x11-utils", "xfce4", "dbus-x11", "x11-xserver-utils", "xdotool",
		"scrot", "x11vnc", "python3-websockify", "net-tools"} {
		if !slices.Contains(r.AptPackages, p) {
			t.Errorf("lacks package %s", p)
		}
	}
	if slices.Contains(r.AptPackages, "novnc") {
		t.Error("installs Debian's novnc package, which pulls nodejs and OpenStack; the script unpacks its files")
	}
	// noVNC is fetched while apt's lists and the build host's resolver are still there,
	// that is before the base script removes them.
	nov, rest, ok := strings.Cut(r.Script, base.Script)
	if !ok || !strings.Contains(nov, "apt-get -q -oAPT::Sandbox::User=root download novnc") || !strings.Contains(rest, DesktopNoVNC+"/utils/novnc_proxy") {
		t.Errorf("script does not download noVNC before the base script and check it after:\n%s", r.Script)
	}
	if r.Hash() == base.Hash() || Desktop().Hash() != r.Hash() {
		t.Error("hash not distinct from base or not stable")
	}
	w := r.Files[DesktopX11VNC]
	if !strings.HasPrefix(w, "#!/bin/sh\n") || !strings.Contains(w, "exec /usr/bin/x11vnc \"$@\"") {
		t.Errorf("%s is not a shell wrapper that execs /usr/bin/x11vnc:\n%s", DesktopX11VNC, w)
	}
	if fileMode(DesktopX11VNC)&0o111 == 0 {
		t.Errorf("%s would not be executable", DesktopX11VNC)
	}
}

// TestDesktopX11VNCLimit runs the wrapper's limit logic with sh (the real x11vnc swapped
// for a shell that prints the limit it got): a high soft limit comes down to 1024, a
// lower one is kept.
func TestDesktopX11VNCLimit(t *testing.T) {
	const sh = "/bin/sh"
	w := strings.Replace(Desktop().Files[DesktopX11VNC], `exec /usr/bin/x11vnc "$@"`, `echo "$(ulimit -S -n) $*"`, 1)
	script := filepath.Join(t.TempDir(), "x11vnc")
	if err := os.WriteFile(script, []byte(w), 0o755); err != nil {
		t.Fatal(err)
	}
	hard, err := exec.Command(sh, "-c", "ulimit -H -n").Output()
	if err != nil {
		t.Fatal(err)
	}
	high := 4096
	if h, err := strconv.Atoi(strings.TrimSpace(string(hard))); err == nil && h < high {
		high = h
	}
	for _, tc := range []struct{ soft, want int }{{512, 512}, {1024, 1024}, {high, min(high, 1024)}} {
		out, err := exec.Command(sh, "-c", "ulimit -S -n "+strconv.Itoa(tc.soft)+" && exec "+script+" -rfbport 5900").CombinedOutput()
		if err != nil {
			t.Fatalf("soft limit %d: %v: %s", tc.soft, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != strconv.Itoa(tc.want)+" -rfbport 5900" {
			t.Errorf("soft limit %d: the wrapped x11vnc got %q, want limit %d and the arguments", tc.soft, got, tc.want)
		}
	}
}
