package doctor

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

func (s *state) checkRoot(context.Context) Check {
	if uid := s.h.Geteuid(); uid != 0 {
		return fail(CheckRoot, fmt.Sprintf("running as uid %d", uid),
			"run warren as root (sudo warren doctor): sandboxes need namespaces, cgroups, mounts and nftables")
	}
	s.root = true
	return ok(CheckRoot, "running as root")
}

// Kernel versions: gVisor's systrap platform needs at least minKernel; kernels older
// than goodKernel work but lack features and fixes Warren was tested with.
var (
	minKernel  = [2]int{4, 14}
	goodKernel = [2]int{5, 10}
)

func (s *state) checkKernel(context.Context) Check {
	b, err := s.h.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return fail(CheckKernel, "cannot read the kernel version: "+err.Error(), "check that /proc is mounted")
	}
	s.kernel = strings.TrimSpace(string(b))
	v, err := parseKernel(s.kernel)
	switch {
	case err != nil:
		return warn(CheckKernel, fmt.Sprintf("%s: cannot parse the version", s.kernel), "")
	case less(v, minKernel):
		return fail(CheckKernel, fmt.Sprintf("%s is older than %d.%d", s.kernel, minKernel[0], minKernel[1]),
			fmt.Sprintf("upgrade to a kernel >= %d.%d (Debian 12's 6.1 works)", goodKernel[0], goodKernel[1]))
	case less(v, goodKernel):
		return warn(CheckKernel, fmt.Sprintf("%s is older than %d.%d; it may work but is untested", s.kernel, goodKernel[0], goodKernel[1]),
			"upgrade to a newer kernel (Debian 12's 6.1 works)")
	}
	return ok(CheckKernel, s.kernel)
}

// parseKernel parses "6.18.44-fc-v595" into {6, 18}.
func parseKernel(release string) ([2]int, error) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return [2]int{}, fmt.Errorf("bad kernel release %q", release)
	}
	major, err1 := strconv.Atoi(parts[0])
	digits := parts[1]
	if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = digits[:i] // "1rc2" -> "1"
	}
	minor, err2 := strconv.Atoi(digits)
	if err1 != nil || err2 != nil {
		return [2]int{}, fmt.Errorf("bad kernel release %q", release)
	}
	return [2]int{major, minor}, nil
}

func less(a, b [2]int) bool { return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]) }

// cgroupControllers are the controllers Warren uses for sandbox limits.
var cgroupControllers = []string{"cpu", "memory", "pids"}

func (s *state) checkCgroups(context.Context) Check {
	mi, err := s.h.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fail(CheckCgroups, "cannot read /proc/self/mountinfo: "+err.Error(), "check that /proc is mounted")
	}
	layout, v2mount, v1 := cgroupLayout(string(mi))
	if layout == "" {
		return fail(CheckCgroups, "no cgroup file system is mounted",
			"mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup) or boot with systemd")
	}
	enabled := enabledControllers(s.h.ReadFile)
	usable := map[string]string{} // controller -> how
	for c, ro := range v1 {
		if !ro && enabled[c] {
			usable[c] = "v1"
		}
	}
	if v2mount != "" {
		if b, err := s.h.ReadFile(v2mount + "/cgroup.controllers"); err == nil {
			for _, c := range strings.Fields(string(b)) {
				if _, done := usable[c]; !done {
					usable[c] = "v2"
				}
			}
		}
	}
	var have, missing []string
	for _, c := range cgroupControllers {
		if how, ok := usable[c]; ok {
			have = append(have, c+" ("+how+")")
		} else {
			missing = append(missing, c)
		}
	}
	s.cgroups = len(have) > 0
	detail := layout
	if len(have) > 0 {
		detail += "; usable: " + strings.Join(have, ", ")
	}
	if len(missing) > 0 {
		detail += "; missing: " + strings.Join(missing, ", ")
		fix := fmt.Sprintf("sandbox %s limits will not be enforced: enable the controller(s) on the kernel command line (e.g. cgroup_enable=memory swapaccount=1) and reboot", strings.Join(missing, ", "))
		if !s.cgroups {
			return fail(CheckCgroups, detail, fix)
		}
		return warn(CheckCgroups, detail, fix)
	}
	return ok(CheckCgroups, detail)
}

// cgroupLayout reads mountinfo and returns the layout ("v2", "v1", "hybrid (...)" or ""),
// where cgroup2 is mounted, and the v1 controllers with whether their mount is read-only.
func cgroupLayout(mountinfo string) (layout, v2mount string, v1 map[string]bool) {
	v1 = map[string]bool{}
	for _, line := range strings.Split(mountinfo, "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		pre, post, found := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !found || len(f) < 6 || len(g) < 3 {
			continue
		}
		mp, ro := f[4], slices.Contains(strings.Split(f[5], ","), "ro")
		switch g[0] {
		case "cgroup2":
			if v2mount == "" || mp == "/sys/fs/cgroup" {
				v2mount = mp
			}
		case "cgroup":
			for _, o := range strings.Split(g[2], ",") {
				if o != "rw" && o != "ro" && !strings.Contains(o, "=") {
					v1[o] = ro
				}
			}
		}
	}
	switch {
	case len(v1) == 0 && v2mount != "":
		layout = "v2 (unified at " + v2mount + ")"
	case len(v1) > 0 && v2mount != "":
		layout = "v1 hybrid (cgroup2 at " + v2mount + ")"
	case len(v1) > 0:
		layout = "v1"
	}
	return layout, v2mount, v1
}

// enabledControllers reads /proc/cgroups; if it cannot, it assumes all are enabled.
func enabledControllers(read func(string) ([]byte, error)) map[string]bool {
	en := map[string]bool{}
	b, err := read("/proc/cgroups")
	if err != nil {
		for _, c := range cgroupControllers {
			en[c] = true
		}
		return en
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && !strings.HasPrefix(f[0], "#") {
			en[f[0]] = f[3] == "1"
		}
	}
	return en
}

// namespaces Warren needs: kind in /proc/self/ns, unshare flags, and whether a sandbox
// runtime cannot work without it.
var namespaces = []struct {
	name     string
	args     []string
	required bool
}{
	{"mnt", []string{"--mount"}, true},
	{"pid", []string{"--pid", "--fork"}, true},
	{"net", []string{"--net"}, true},
	{"user", []string{"--user"}, false},
}

func (s *state) checkNamespaces(ctx context.Context) Check {
	var good, bad []string
	requiredOK := true
	unshare, lookErr := s.h.LookPath("unshare")
	for _, ns := range namespaces {
		var err error
		if _, err = s.h.Stat("/proc/self/ns/" + ns.name); err == nil {
			if lookErr != nil {
				err = fmt.Errorf("unshare not found")
			} else if out, runErr := s.h.Command(ctx, unshare, append(ns.args, "true")...); runErr != nil {
				err = fmt.Errorf("%v: %s", runErr, firstLine(out))
			}
		}
		if err != nil {
			bad = append(bad, ns.name+" ("+err.Error()+")")
			requiredOK = requiredOK && !ns.required
			continue
		}
		good = append(good, ns.name)
	}
	s.namespaces = requiredOK
	detail := "usable: " + strings.Join(good, ", ")
	if len(bad) == 0 {
		return ok(CheckNamespaces, detail)
	}
	detail += "; not usable: " + strings.Join(bad, ", ")
	if lookErr != nil {
		return fail(CheckNamespaces, detail, "apt-get install util-linux (for unshare)")
	}
	fix := "use a kernel with CONFIG_NAMESPACES, CONFIG_NET_NS, CONFIG_PID_NS and CONFIG_USER_NS; for user namespaces: sysctl -w user.max_user_namespaces=15000"
	if !requiredOK {
		return fail(CheckNamespaces, detail, fix)
	}
	return warn(CheckNamespaces, detail, fix)
}

func (s *state) checkTun(context.Context) Check {
	const dev = "/dev/net/tun"
	fi, err := s.h.Stat(dev)
	if err == nil && fi.Mode()&fs.ModeCharDevice == 0 {
		err = fmt.Errorf("not a character device")
	}
	if err == nil {
		err = s.h.OpenDevice(dev)
	}
	if err != nil {
		return warn(CheckTun, dev+": "+err.Error(),
			"modprobe tun, or: mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && chmod 0666 /dev/net/tun")
	}
	return ok(CheckTun, dev+" opens")
}

func (s *state) checkOverlay(ctx context.Context) Check {
	fsys, err := s.h.ReadFile("/proc/filesystems")
	if err != nil {
		return fail(CheckOverlay, "cannot read /proc/filesystems: "+err.Error(), "check that /proc is mounted")
	}
	listed := false
	for _, line := range strings.Split(string(fsys), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == "overlay" {
			listed = true
		}
	}
	if !listed {
		return fail(CheckOverlay, "overlay is not in /proc/filesystems", "modprobe overlay (and add overlay to /etc/modules)")
	}
	dir := existingDir(s.h.Stat, s.opts.DataDir)
	if err := s.h.TryOverlay(ctx, dir); err != nil {
		return fail(CheckOverlay, fmt.Sprintf("a test overlay mount in %s failed: %v", dir, err),
			"put the data dir (--data-dir) on ext4 or xfs; overlayfs cannot use some file systems (e.g. another overlay) as its upper layer")
	}
	return ok(CheckOverlay, "a test overlay mount in "+dir+" works")
}

func (s *state) checkNftables(ctx context.Context) Check {
	nft, err := s.h.LookPath("nft")
	if err != nil {
		return fail(CheckNftables, "nft not found", "apt-get install nftables")
	}
	ver, err := s.h.Command(ctx, nft, "--version")
	if err != nil {
		return fail(CheckNftables, fmt.Sprintf("nft --version: %v: %s", err, firstLine(ver)), "apt-get install --reinstall nftables")
	}
	if out, err := s.h.Command(ctx, nft, "list", "ruleset"); err != nil {
		return fail(CheckNftables, fmt.Sprintf("%s; nft list ruleset failed: %v: %s", firstLine(ver), err, firstLine(out)),
			"run as root and make sure the kernel has nf_tables (modprobe nf_tables)")
	}
	return ok(CheckNftables, firstLine(ver)+"; ruleset readable")
}

func (s *state) checkIproute2(ctx context.Context) Check {
	ip, err := s.h.LookPath("ip")
	if err != nil {
		return warn(CheckIproute2, "ip not found: warren serve does not need it (it sets up sandbox networks over netlink), scripts/leak-check.sh and debugging do", "apt-get install iproute2")
	}
	out, err := s.h.Command(ctx, ip, "-V")
	if err != nil {
		return warn(CheckIproute2, fmt.Sprintf("ip -V: %v: %s", err, firstLine(out)), "apt-get install --reinstall iproute2")
	}
	return ok(CheckIproute2, firstLine(out))
}

func (s *state) checkIPForward(context.Context) Check {
	b, err := s.h.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		return warn(CheckIPForward, "cannot read net.ipv4.ip_forward: "+err.Error(), "check that /proc is mounted")
	}
	if v := strings.TrimSpace(string(b)); v != "1" {
		return warn(CheckIPForward, "net.ipv4.ip_forward = "+v+"; warren serve enables it when it starts (sandbox internet access needs it)",
			"nothing to do, or set it now: sysctl -w net.ipv4.ip_forward=1")
	}
	return ok(CheckIPForward, "net.ipv4.ip_forward = 1")
}

func (s *state) checkDisk(context.Context) Check {
	dir := existingDir(s.h.Stat, s.opts.DataDir)
	free, err := s.h.DiskFree(dir)
	if err != nil {
		return fail(CheckDisk, fmt.Sprintf("statfs %s: %v", dir, err), "create the data dir (mkdir -p "+s.opts.DataDir+")")
	}
	const gib = 1 << 30
	detail := fmt.Sprintf("%.1f GiB free on %s", float64(free)/gib, dir)
	fix := fmt.Sprintf("free space on %s (templates take ~250 MB each, sandboxes what they write), or point --data-dir at a larger disk", dir)
	switch {
	case free < 1*gib:
		return fail(CheckDisk, detail+" (need at least 1 GiB)", fix)
	case free < 5*gib:
		return warn(CheckDisk, detail+" (less than 5 GiB)", fix)
	}
	return ok(CheckDisk, detail)
}

// firstLine returns the first non-empty line of command output, trimmed.
func firstLine(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
