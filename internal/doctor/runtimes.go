package doctor

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// runscBackportsFix installs a runsc with the systrap platform on Debian 12. Bookworm's
// own runsc (a 2022 build) only has ptrace and kvm.
const runscBackportsFix = `install runsc from bookworm-backports (bookworm's 2022 build has no systrap):
echo 'deb http://deb.debian.org/debian bookworm-backports main' >/etc/apt/sources.list.d/bookworm-backports.list
apt-get update
apt-get install -y -t bookworm-backports runsc`

// platformRE finds the platform list in the help of runsc's -platform flag, e.g.
// "specifies which platform to use: systrap (default), ptrace, kvm. (default "systrap")".
var platformRE = regexp.MustCompile(`platform to use: ([^.\n]*)`)

func (s *state) checkRunsc(ctx context.Context) Check {
	runsc, err := s.h.LookPath("runsc")
	if err != nil {
		return fail(CheckRunsc, "runsc (gVisor) not found", runscBackportsFix)
	}
	out, err := s.h.Command(ctx, runsc, "--version")
	if err != nil {
		return fail(CheckRunsc, fmt.Sprintf("%s --version: %v: %s", runsc, err, firstLine(out)), runscBackportsFix)
	}
	version := strings.TrimPrefix(firstLine(out), "runsc version ")
	flags, err := s.h.Command(ctx, runsc, "flags")
	if err != nil {
		return fail(CheckRunsc, fmt.Sprintf("runsc %s at %s; runsc flags: %v", version, runsc, err), runscBackportsFix)
	}
	var platforms []string
	if m := platformRE.FindSubmatch(flags); m != nil {
		for _, p := range strings.Split(string(m[1]), ",") {
			if f := strings.Fields(p); len(f) > 0 {
				platforms = append(platforms, f[0])
			}
		}
	}
	detail := fmt.Sprintf("runsc %s at %s; platforms: %s", version, runsc, strings.Join(platforms, ", "))
	if !slices.Contains(platforms, "systrap") {
		return fail(CheckRunsc, detail+"; no systrap platform (ptrace is too slow, kvm needs hardware virtualization)", runscBackportsFix)
	}
	s.runscPath, s.runscUsable = runsc, true
	return ok(CheckRunsc, detail)
}

func (s *state) checkRunc(ctx context.Context) Check {
	runc, err := s.h.LookPath("runc")
	if err != nil {
		return warn(CheckRunc, "runc not found: the runc runtime (weaker isolation, faster start) is unavailable", "apt-get install runc")
	}
	out, err := s.h.Command(ctx, runc, "--version")
	if err != nil {
		return warn(CheckRunc, fmt.Sprintf("%s --version: %v: %s", runc, err, firstLine(out)), "apt-get install --reinstall runc")
	}
	s.runcFound = true
	return ok(CheckRunc, firstLine(out)+" at "+runc)
}

func (s *state) checkDebootstrap(ctx context.Context) Check {
	db, err := s.h.LookPath("debootstrap")
	if err != nil {
		return fail(CheckDebootstrap, "debootstrap not found: templates cannot be built", "apt-get install debootstrap")
	}
	out, err := s.h.Command(ctx, db, "--version")
	if err != nil {
		return fail(CheckDebootstrap, fmt.Sprintf("%s --version: %v: %s", db, err, firstLine(out)), "apt-get install --reinstall debootstrap")
	}
	return ok(CheckDebootstrap, firstLine(out)+" at "+db)
}

const kvmFix = "microVMs need hardware virtualization (vmx/svm): bare metal, or a VM with nested virtualization; gVisor (systrap) works without it"

// checkKVM tells hardware KVM apart from a software backend. A PVM host (kvm_pvm) has a
// /dev/kvm that opens, but no vmx/svm CPU flag, and stock guest kernels barely run on it.
func (s *state) checkKVM(context.Context) Check {
	const dev = "/dev/kvm"
	if _, err := s.h.Stat(dev); err != nil {
		return warn(CheckKVM, "no /dev/kvm: microVMs not usable", kvmFix)
	}
	if err := s.h.OpenDevice(dev); err != nil {
		return warn(CheckKVM, fmt.Sprintf("/dev/kvm exists but does not open (%v): microVMs not usable", err),
			"check permissions on /dev/kvm and that the kvm_intel or kvm_amd module is loaded")
	}
	flag := cpuVirtFlag(s.h.ReadFile)
	pvm := false
	if mods, err := s.h.ReadFile("/proc/modules"); err == nil {
		for _, l := range strings.Split(string(mods), "\n") {
			if strings.HasPrefix(l, "kvm_pvm ") {
				pvm = true
			}
		}
	}
	switch {
	case pvm:
		return warn(CheckKVM, "/dev/kvm opens but is PVM (kvm_pvm module, software virtualization"+
			cond(flag == "", ", no vmx/svm CPU flag", "")+"): microVMs not usable; never use gVisor's kvm platform here", kvmFix)
	case flag == "":
		return warn(CheckKVM, "/dev/kvm opens but the CPU has no vmx/svm flag, so it is a software backend (PVM or similar): microVMs not usable; never use gVisor's kvm platform here", kvmFix)
	}
	s.microVMs = true
	return ok(CheckKVM, "/dev/kvm opens and the CPU has "+flag+": microVMs usable")
}

// cpuVirtFlag returns "vmx" or "svm" if /proc/cpuinfo lists it, else "".
func cpuVirtFlag(read func(string) ([]byte, error)) string {
	b, err := read("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		name, val, found := strings.Cut(l, ":")
		if !found || strings.TrimSpace(name) != "flags" {
			continue
		}
		for _, f := range strings.Fields(val) {
			if f == "vmx" || f == "svm" {
				return f
			}
		}
	}
	return ""
}

// Startup ratings of a measured runsc run.
const (
	fastRun = 300 * time.Millisecond
	okRun   = time.Second
)

// checkRunscRun runs a real sandbox and rates how long it took.
func (s *state) checkRunscRun(ctx context.Context) (Check, time.Duration) {
	switch {
	case s.opts.RootFS == "":
		return warn(CheckRunscRun, "not measured: no root filesystem given", "pass a root filesystem with /bin/echo (e.g. a built template's rootfs)"), 0
	case !s.runscUsable:
		return warn(CheckRunscRun, "not measured: runsc is not usable (see the runsc check)", "fix the runsc check first"), 0
	}
	d, err := s.h.RunSandbox(ctx, s.runscPath, s.opts.RootFS)
	if err != nil {
		s.runscUsable = false
		return fail(CheckRunscRun, "runsc run in "+s.opts.RootFS+" failed: "+err.Error(),
			"run it by hand with --debug --debug-log=/tmp/runsc/ to see why; check the cgroups and namespaces checks above"), 0
	}
	rating := "slow"
	switch {
	case d < fastRun:
		rating = "fast"
	case d < okRun:
		rating = "ok"
	}
	detail := fmt.Sprintf("runsc --network=none run of /bin/echo: %d ms (%s)", d.Milliseconds(), rating)
	if rating == "slow" {
		return warn(CheckRunscRun, detail, "expect ~150-300 ms; check for CPU contention, and that runsc uses --platform=systrap"), d
	}
	return ok(CheckRunscRun, detail), d
}

func cond(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}
