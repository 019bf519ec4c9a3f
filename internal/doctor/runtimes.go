package doctor

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/runtime/gvisor"
)

// runscInstallFix installs the runsc Warren is tested with: scripts/install-deps.sh
// builds it from gVisor's Go module at the pinned version.
const runscInstallFix = "run scripts/install-deps.sh (as root, from a Warren checkout; it needs Go): it builds gVisor's runsc at the pinned version " +
	gvisor.PinnedVersion + " and installs it as /usr/local/bin/runsc"

// platformRE finds the platform list in the help of runsc's -platform flag, e.g.
// "specifies which platform to use: systrap (default), ptrace, kvm. (default "systrap")".
var platformRE = regexp.MustCompile(`platform to use: ([^.\n]*)`)

func (s *state) checkRunsc(ctx context.Context) Check {
	runsc, err := s.h.LookPath("runsc")
	if err != nil {
		s.runscWhy = cause{"runsc not installed", CheckRunsc}
		return fail(CheckRunsc, "runsc (gVisor) not found", runscInstallFix)
	}
	s.runscWhy = cause{"runsc does not run", CheckRunsc}
	out, err := s.h.Command(ctx, runsc, "--version")
	if err != nil {
		return fail(CheckRunsc, fmt.Sprintf("%s --version: %v: %s", runsc, err, firstLine(out)), runscInstallFix)
	}
	version := strings.TrimPrefix(firstLine(out), "runsc version ")
	if v, err := s.h.RunscVersion(ctx, runsc); err == nil {
		s.runscVersion = v
		version = v.String()
	}
	flags, err := s.h.Command(ctx, runsc, "flags")
	if err != nil {
		return fail(CheckRunsc, fmt.Sprintf("runsc %s at %s; runsc flags: %v", version, runsc, err), runscInstallFix)
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
		s.runscWhy = cause{"runsc has no systrap platform", CheckRunsc}
		return fail(CheckRunsc, detail+"; no systrap platform (ptrace is too slow, kvm needs hardware virtualization)", runscInstallFix)
	}
	s.runscPath, s.runscUsable, s.runscWhy = runsc, true, cause{}
	switch v := s.runscVersion; {
	case v.Pinned():
		detail += " (the pinned build)"
	case v.Older():
		return warn(CheckRunsc, detail+"; older than the pinned "+gvisor.Module+"@"+gvisor.PinnedVersion+
			": its checkpoint fails while a sandbox has a TCP connection open or in TIME_WAIT (pause, fork and snapshots)", runscInstallFix)
	default:
		detail += " (newer than the pinned " + gvisor.PinnedVersion + ", which Warren is tested with)"
	}
	return ok(CheckRunsc, detail)
}

func (s *state) checkRunc(ctx context.Context) Check {
	runc, err := s.h.LookPath("runc")
	if err != nil {
		s.runcWhy = cause{"runc not installed", CheckRunc}
		return warn(CheckRunc, "runc not found: the runc runtime (weaker isolation, faster start) is unavailable", "apt-get install runc")
	}
	out, err := s.h.Command(ctx, runc, "--version")
	if err != nil {
		s.runcWhy = cause{"runc does not run", CheckRunc}
		return warn(CheckRunc, fmt.Sprintf("%s --version: %v: %s", runc, err, firstLine(out)), "apt-get install --reinstall runc")
	}
	s.runcPath, s.runcUsable = runc, true
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
		s.kvmWhy = cause{"no /dev/kvm", CheckKVM}
		return warn(CheckKVM, "no /dev/kvm: microVMs not usable", kvmFix)
	}
	s.kvmDev = true
	if err := s.h.OpenDevice(dev); err != nil {
		s.kvmWhy = cause{"/dev/kvm does not open", CheckKVM}
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
	// A kvm_pvm built into the kernel is not in /proc/modules (which may not even
	// exist), but is in /sys/module.
	if _, err := s.h.Stat("/sys/module/kvm_pvm"); err == nil {
		pvm = true
	}
	switch {
	case pvm:
		s.kvmWhy = cause{"no hardware virtualization (PVM backend)", CheckKVM}
		return warn(CheckKVM, "/dev/kvm opens but is PVM (kvm_pvm module, software virtualization"+
			cond(flag == "", ", no vmx/svm CPU flag", "")+"): microVMs not usable; never use gVisor's kvm platform here", kvmFix)
	case flag == "":
		s.kvmWhy = cause{"no hardware virtualization (no vmx/svm CPU flag)", CheckKVM}
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

// vmms are the microVM monitors a microvm runtime can use, preferred first.
var vmms = []string{"firecracker", "cloud-hypervisor"}

// checkVMM looks for a VMM binary. Without hardware virtualization a VMM is of no use,
// and the fix says so rather than send people installing one.
func (s *state) checkVMM(ctx context.Context) Check {
	fix := "nothing to do here: a VMM needs hardware virtualization, which this host lacks (see kvm); gVisor needs neither"
	if s.microVMs {
		fix = "install Firecracker (the static firecracker binary of a release, into /usr/local/bin) or Cloud Hypervisor (cloud-hypervisor)"
	}
	for _, name := range vmms {
		p, err := s.h.LookPath(name)
		if err != nil {
			continue
		}
		out, err := s.h.Command(ctx, p, "--version")
		if err != nil {
			s.vmmWhy = cause{name + " does not run", CheckVMM}
			return warn(CheckVMM, fmt.Sprintf("%s --version: %v: %s", p, err, firstLine(out)), fix)
		}
		s.vmm = name
		return ok(CheckVMM, firstLine(out)+" at "+p)
	}
	s.vmmWhy = cause{"no VMM installed", CheckVMM}
	return warn(CheckVMM, "no VMM ("+strings.Join(vmms, " or ")+") on PATH: microVMs not usable", fix)
}

// Startup ratings of a measured run.
const (
	fastRun = 300 * time.Millisecond
	okRun   = time.Second
)

// rating rates a measured start: fast, ok or slow.
func rating(d time.Duration) string {
	switch {
	case d < fastRun:
		return "fast"
	case d < okRun:
		return "ok"
	}
	return "slow"
}

// checkRunscRun runs a real gVisor sandbox and rates how long it took.
func (s *state) checkRunscRun(ctx context.Context) (Check, time.Duration) {
	return s.measure(ctx, measured{
		check: CheckRunscRun, binary: "runsc", path: s.runscPath, usable: &s.runscUsable, why: &s.runscWhy,
		run:  s.h.RunSandbox,
		what: "runsc --network=none run of /bin/echo",
		fix:  "run it by hand with --debug --debug-log=/tmp/runsc/ to see why; check the cgroups and namespaces checks above",
		slow: "expect ~150-300 ms; check for CPU contention, and that runsc uses --platform=systrap",
	})
}

// checkRuncRun runs a real runc container and rates how long it took.
func (s *state) checkRuncRun(ctx context.Context) (Check, time.Duration) {
	return s.measure(ctx, measured{
		check: CheckRuncRun, binary: "runc", path: s.runcPath, usable: &s.runcUsable, why: &s.runcWhy,
		run: s.h.RunContainer,
		what: "runc run of /bin/echo (read-only root, no network; no user namespace: " +
			"a start-time measurement needs none, Warren's runc sandboxes get one)",
		fix:  "run it by hand (runc --debug run) to see why; check the cgroups and namespaces checks above",
		slow: "expect ~20-50 ms; check for CPU contention and a slow cgroup setup",
	})
}

// measured describes one runtime's measured run.
type measured struct {
	check, binary, path string
	usable              *bool
	why                 *cause
	run                 func(ctx context.Context, bin, rootfs string) (time.Duration, error)
	what, fix, slow     string
}

func (s *state) measure(ctx context.Context, m measured) (Check, time.Duration) {
	switch {
	case s.opts.RootFS == "":
		return warn(m.check, "not measured: no root filesystem given", "pass a root filesystem with /bin/echo (e.g. a built template's rootfs)"), 0
	case !*m.usable:
		return warn(m.check, "not measured: "+m.binary+" is not usable (see the "+m.binary+" check)", "fix the "+m.binary+" check first"), 0
	}
	d, err := m.run(ctx, m.path, s.opts.RootFS)
	if err != nil {
		*m.usable, *m.why = false, cause{"a test run failed", m.check}
		return fail(m.check, m.binary+" run in "+s.opts.RootFS+" failed: "+err.Error(), m.fix), 0
	}
	r := rating(d)
	detail := fmt.Sprintf("%s: %.0f ms (%s)", m.what, millis(d), r)
	if r == "slow" {
		return warn(m.check, detail, m.slow), d
	}
	return ok(m.check, detail), d
}

func cond(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}
