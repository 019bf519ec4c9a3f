package template

import (
	_ "embed"
	"slices"
)

// desktopX11VNC is the desktop template's x11vnc wrapper (internal/template/desktop/x11vnc):
// the real x11vnc with a soft open-files limit it can live with.
//
//go:embed desktop/x11vnc
var desktopX11VNC string

// Paths and ports of the desktop template, as the official @e2b/desktop SDK uses them:
// it starts the stream with `cd /opt/noVNC/utils && ./novnc_proxy --vnc localhost:5900
// --listen 6080 --web /opt/noVNC`.
const (
	DesktopNoVNC     = "/opt/noVNC"
	DesktopNoVNCPort = 6080
	DesktopVNCPort   = 5900
	// DesktopX11VNC is the wrapper that PATH finds before /usr/bin/x11vnc.
	DesktopX11VNC = "/usr/local/bin/x11vnc"
)

// desktopPackages are what the desktop template adds to Base's packages (apt-get,
// --no-install-recommends), one per thing @e2b/desktop runs in the sandbox:
//   - xvfb (Xvfb), x11-utils (xdpyinfo, its readiness probe), xfce4 and dbus-x11
//     (startxfce4 and the session bus it starts; the SDK waits for xfce4-session, xfwm4
//     and xfdesktop), x11-xserver-utils (xrandr: getScreenSize), xdotool (mouse and
//     keyboard), scrot (screenshot), x11vnc (stream), python3-websockify (what
//     novnc_proxy runs), net-tools (netstat: how the SDK waits for noVNC's port),
//     xdg-utils (open) and libgtk-3-bin (gtk-launch: launch);
//   - mousepad and xfce4-terminal, an editor and a terminal to drive, and a font.
//
// Debian's novnc package is not among them: it depends on nodejs and OpenStack's
// python3-novnc (hundreds of MB) for a static web client; desktopScript unpacks only
// its files into /opt/noVNC.
var desktopPackages = []string{
	"dbus-x11", "fonts-dejavu-core", "libgtk-3-bin", "mousepad", "net-tools",
	"python3-websockify", "scrot", "x11-utils", "x11-xserver-utils", "x11vnc", "xdg-utils",
	"xdotool", "xfce4", "xfce4-terminal", "xvfb",
}

// desktopNoVNCScript runs before baseScript, while the chroot still has apt's package
// lists and the build host's resolver: it fetches Debian's novnc package and unpacks
// its web client and novnc_proxy (a shell script that runs websockify) where the SDK
// looks for them, without installing the package or its dependencies.
const desktopNoVNCScript = `set -eu
mkdir -p /tmp/novnc-deb
cd /tmp/novnc-deb
apt-get -q -oAPT::Sandbox::User=root download novnc
dpkg-deb -x novnc_*.deb unpacked
rm -rf ` + DesktopNoVNC + `
mv unpacked/usr/share/novnc ` + DesktopNoVNC + `
cd /
rm -rf /tmp/novnc-deb
`

// desktopScript runs after baseScript. /proc is not mounted during it.
const desktopScript = `
# Fail the build here, not in the first sandbox, if something the SDK runs is missing.
for p in Xvfb xdpyinfo startxfce4 xfce4-session xfwm4 xfdesktop xrandr xdotool scrot x11vnc websockify netstat xdg-open gtk-launch mousepad; do
	command -v "$p" >/dev/null || { echo "desktop template: $p is missing" >&2; exit 1; }
done
test -x /usr/bin/x11vnc
test -x ` + DesktopNoVNC + `/utils/novnc_proxy
test -f ` + DesktopNoVNC + `/vnc.html
# The panel asks on its first start whether to use the default layout, a dialog over the
# desktop that a program driving the mouse would have to dismiss: start with the default.
mkdir -p /home/user/.config/xfce4/xfconf/xfce-perchannel-xml
cp /etc/xdg/xfce4/panel/default.xml /home/user/.config/xfce4/xfconf/xfce-perchannel-xml/xfce4-panel.xml
chown -R 1000:1000 /home/user
rm -rf /tmp/* /var/tmp/*
`

// Desktop returns the "desktop" recipe: Base plus an X11 desktop that the official
// @e2b/desktop SDK drives unchanged. It has no start command: the SDK starts Xvfb,
// xfce4, x11vnc and noVNC itself, with commands, after the sandbox is created.
func Desktop() Recipe {
	b := Base()
	return Recipe{
		Name:        "desktop",
		Suite:       b.Suite,
		Variant:     b.Variant,
		Mirror:      b.Mirror,
		Packages:    slices.Clone(b.Packages),
		AptPackages: slices.Clone(desktopPackages),
		Files:       map[string]string{DesktopX11VNC: desktopX11VNC},
		Script:      desktopNoVNCScript + b.Script + desktopScript,
		Version:     1,
	}
}
