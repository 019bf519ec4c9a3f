// Package template builds the root filesystems that sandboxes start from.
//
// A template is described by a Recipe (a Debian suite, a debootstrap variant, packages
// for debootstrap and for apt-get, files to add, a shell script run in the chroot, and the
// command the sandbox agent starts at boot). No container registry is reachable from
// Warren's hosts, so root filesystems are built with debootstrap from a Debian mirror and
// cached on disk under the hash of their recipe: <CacheDir>/<name>-<hash>/rootfs, with a
// ready.json marker written last. A cache entry is therefore either complete or absent;
// builds happen in a temporary directory that is renamed into place, and a file lock per
// recipe makes concurrent builders (goroutines or processes) build it once.
package template

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
)

// DefaultMirror is the Debian mirror used when a Recipe leaves Mirror empty.
const DefaultMirror = "http://deb.debian.org/debian"

// hashFormat versions the canonical encoding itself; bumping it invalidates every cache
// entry (do so when the build procedure changes in a way that changes the output).
const hashFormat = "warren-template/1"

// Recipe describes how to build a root filesystem. Two recipes with the same Hash build
// the same root filesystem (up to the mirror's package versions at build time).
type Recipe struct {
	// Name names the template ("base"); it prefixes the cache directory and progress lines.
	Name string `json:"name"`
	// Suite is the Debian suite passed to debootstrap ("bookworm").
	Suite string `json:"suite"`
	// Variant is debootstrap's --variant ("minbase"); empty means debootstrap's default.
	Variant string `json:"variant,omitempty"`
	// Mirror is the Debian mirror URL; empty means DefaultMirror.
	Mirror string `json:"mirror,omitempty"`
	// Packages are installed by debootstrap (--include) together with their dependencies.
	// Order does not matter.
	Packages []string `json:"packages,omitempty"`
	// AptPackages are installed after debootstrap with apt-get install
	// --no-install-recommends from the same mirror and suite. Use it for packages whose
	// dependencies debootstrap's simple resolver cannot satisfy: virtual packages and
	// alternatives (python3-zmq, python3-scipy, ...). Order does not matter.
	AptPackages []string `json:"apt_packages,omitempty"`
	// Files are written into the root filesystem after the packages are installed and
	// before Script runs: absolute path in the rootfs → content. Missing parent
	// directories are created (0755). Files under /usr/local/bin get mode 0755, all
	// others 0644; all are owned by root.
	Files map[string]string `json:"files,omitempty"`
	// Script is a POSIX shell script run as root in the chroot after the packages are
	// installed, with DEBIAN_FRONTEND=noninteractive and without /proc mounted.
	Script string `json:"script,omitempty"`
	// StartCmd is the command line the sandbox agent starts as root when a sandbox of
	// this template boots (split on spaces; no shell), e.g. a server the SDK talks to.
	// Empty means nothing is started.
	StartCmd string `json:"start_cmd,omitempty"`
	// Version is bumped by hand to force a rebuild of an otherwise unchanged recipe.
	Version int `json:"version"`
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	packageRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.:-]*$`)
	tokenRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
)

// Validate reports the first problem that would keep the recipe from building, as a
// domain.KindInvalid error.
func (r Recipe) Validate() error {
	switch {
	case !nameRE.MatchString(r.Name):
		return domain.Invalid("name", "template name %q must be 1-63 lowercase letters, digits, '.', '_' or '-'", r.Name)
	case !tokenRE.MatchString(r.Suite):
		return domain.Invalid("suite", "template %s: suite %q is not a Debian suite name such as \"bookworm\"", r.Name, r.Suite)
	case r.Variant != "" && !tokenRE.MatchString(r.Variant):
		return domain.Invalid("variant", "template %s: variant %q is not a debootstrap variant such as \"minbase\"", r.Name, r.Variant)
	case r.Mirror != "" && !strings.HasPrefix(r.Mirror, "http://") && !strings.HasPrefix(r.Mirror, "https://") && !strings.HasPrefix(r.Mirror, "file:///"):
		return domain.Invalid("mirror", "template %s: mirror %q must be an http://, https:// or file:/// URL", r.Name, r.Mirror)
	case r.StartCmd != "" && !strings.HasPrefix(r.StartCmd, "/"):
		return domain.Invalid("start_cmd", "template %s: start command %q must start with an absolute path", r.Name, r.StartCmd)
	}
	for p := range r.Files {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return domain.Invalid("files", "template %s: file path %q must be absolute and clean, like /usr/local/bin/tool", r.Name, p)
		}
	}
	for _, p := range r.Packages {
		if !packageRE.MatchString(p) {
			return domain.Invalid("packages", "template %s: %q is not a Debian package name", r.Name, p)
		}
	}
	for _, p := range r.AptPackages {
		if !packageRE.MatchString(p) {
			return domain.Invalid("apt_packages", "template %s: %q is not a Debian package name", r.Name, p)
		}
	}
	return nil
}

// mirror returns the mirror to use.
func (r Recipe) mirror() string {
	if r.Mirror == "" {
		return DefaultMirror
	}
	return r.Mirror
}

// packages returns the packages sorted and without duplicates.
func (r Recipe) packages() []string { return sortedSet(r.Packages) }

// aptPackages returns the apt packages sorted and without duplicates.
func (r Recipe) aptPackages() []string { return sortedSet(r.AptPackages) }

func sortedSet(list []string) []string {
	ps := slices.Clone(list)
	slices.Sort(ps)
	return slices.Compact(ps)
}

// Hash returns the first 16 hex digits of the SHA-256 of the recipe's canonical encoding:
// fields in a fixed order, packages sorted and deduplicated, an empty Mirror replaced by
// DefaultMirror, Files sorted by path. It is stable across runs and Go versions; any
// change to a field that changes the build output changes it. AptPackages, Files and
// StartCmd are left out of the encoding when empty, so recipes that do not use them keep
// the hashes (and cache entries) they had before those fields existed.
func (r Recipe) Hash() string {
	canon := struct {
		Format   string            `json:"format"`
		Name     string            `json:"name"`
		Suite    string            `json:"suite"`
		Variant  string            `json:"variant"`
		Mirror   string            `json:"mirror"`
		Packages []string          `json:"packages"`
		Apt      []string          `json:"apt_packages,omitempty"`
		Files    map[string]string `json:"files,omitempty"` // encoding/json sorts map keys
		Script   string            `json:"script"`
		StartCmd string            `json:"start_cmd,omitempty"`
		Version  int               `json:"version"`
	}{hashFormat, r.Name, r.Suite, r.Variant, r.mirror(), r.packages(), r.aptPackages(), r.Files, r.Script, r.StartCmd, r.Version}
	if canon.Packages == nil {
		canon.Packages = []string{}
	}
	b, err := json.Marshal(canon)
	if err != nil {
		// Marshalling strings, a string slice, a string map and an int cannot fail.
		panic(fmt.Sprintf("template: encoding recipe: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// ID returns "<name>-<hash>", the name of the recipe's cache directory.
func (r Recipe) ID() string { return r.Name + "-" + r.Hash() }

// baseScript turns a fresh debootstrap into a sandbox root filesystem. It is idempotent.
const baseScript = `set -eu
# The unprivileged user that sandbox commands run as by default.
if ! getent passwd user >/dev/null; then
	useradd --uid 1000 --user-group --create-home --home-dir /home/user --shell /bin/bash user
fi
chown -R 1000:1000 /home/user

# debootstrap copies the build host's hostname, hosts and resolv.conf; sandboxes must not
# inherit them. resolv.conf stays an empty regular file: it is bind-mounted at runtime.
echo sandbox >/etc/hostname
cat >/etc/hosts <<'EOF'
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
EOF
rm -f /etc/resolv.conf
: >/etc/resolv.conf
chmod 0644 /etc/hostname /etc/hosts /etc/resolv.conf

# Sandboxes never hold CAP_NET_RAW (gVisor drops it, runc's set lacks it), and a program
# whose file capabilities cannot all be granted fails to start (EPERM: the "capability-dumb
# binary" check of Linux and of current gVisor): iputils' ping has cap_net_raw+ep. Without
# them ping uses an unprivileged ICMP socket, as on a normal machine.
python3 - <<'PY'
import os
for d in ("/usr/bin", "/usr/sbin"):
    for name in os.listdir(d):
        p = os.path.join(d, name)
        try:
            if not os.path.islink(p) and "security.capability" in os.listxattr(p):
                os.removexattr(p, "security.capability")
        except OSError:
            pass
PY

# Login shells (bash -l -c: E2B's SDKs start every command so) read /etc/profile, whose
# "$(id -u)" forks and runs id: 20-25 ms in gVisor, most of a login shell's cost. bash
# knows its effective uid as $EUID and then leaves the $(id -u) unexpanded; other shells
# still ask id.
sed -i 's/\[ "$(id -u)" -eq 0 \]/[ "${EUID:-$(id -u)}" -eq 0 ]/' /etc/profile

# Mount point for the in-sandbox agent.
mkdir -p /.warren
chown root:root /.warren
chmod 0755 /.warren

# Keep the image small: package lists, caches, logs, documentation and translations.
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
	/var/lib/dpkg/*-old /var/log/*.log /var/log/apt/* /tmp/* /var/tmp/* \
	/usr/share/doc/* /usr/share/man/* /usr/share/info/*
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
mkdir -p /var/lib/apt/lists/partial
`

// Base returns the "base" recipe: Debian bookworm (minbase) with bash, coreutils, python3,
// curl, git, CA certificates, procps and a few small network tools, a non-root user
// "user" (uid 1000, home /home/user, shell /bin/bash), a hostname-independent /etc/hosts,
// an empty /etc/resolv.conf and the /.warren agent mount point.
func Base() Recipe {
	return Recipe{
		Name:    "base",
		Suite:   "bookworm",
		Variant: "minbase",
		Mirror:  Mirror(),
		Packages: []string{
			"bash", "ca-certificates", "coreutils", "curl", "git", "iproute2",
			"iputils-ping", "netcat-openbsd", "procps", "python3",
		},
		Script:  baseScript,
		Version: 1,
	}
}
