// Package doctor checks whether a host can run Warren and says what to fix when it
// cannot: privileges, kernel, cgroups, namespaces, overlayfs, nftables, the sandbox
// runtimes (gVisor runsc: its path and version, read from the binary's Go build
// information, against the pinned one; runc) and their platforms, debootstrap for
// templates, disk space, whether /dev/kvm is hardware virtualization or a software backend such as PVM,
// and whether a VMM is installed. From the checks it builds the compatibility report:
// which runtimes (microvm, gvisor, runc) are usable and why not, their measured start
// times, whether runsc checkpoint and restore work (tried on a real sandbox), and the
// configuration to run `warren serve` with. Every probe of the system
// goes through the function fields of Host, so that the checks can be tested against
// fakes.
package doctor

import (
	"context"
	"os"
	"time"

	"github.com/warren-sh/warren/internal/runtime/gvisor"
)

// Status is the outcome of one check.
type Status string

// Check outcomes.
const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warn" // Warren works, with a limitation
	StatusFail Status = "fail" // something Warren needs is missing
)

// Check names, in report order.
const (
	CheckRoot        = "root"
	CheckKernel      = "kernel"
	CheckCgroups     = "cgroups"
	CheckNamespaces  = "namespaces"
	CheckTun         = "tun"
	CheckOverlay     = "overlayfs"
	CheckNftables    = "nftables"
	CheckIproute2    = "iproute2"
	CheckIPForward   = "ip_forward"
	CheckRunsc       = "runsc"
	CheckRunc        = "runc"
	CheckDebootstrap = "debootstrap"
	CheckDisk        = "disk"
	CheckKVM         = "kvm"
	CheckVMM         = "vmm"
	// CheckRunscRun, CheckRuncRun and CheckRunscCheckpoint are only present when
	// Options.MeasureRuntimes is set.
	CheckRunscRun        = "runsc_run"
	CheckRuncRun         = "runc_run"
	CheckRunscCheckpoint = "runsc_checkpoint"
)

// Check is one line of the report.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Detail says what was found.
	Detail string `json:"detail"`
	// Fix says what to do about a warning or failure: the command to run where there is one.
	Fix string `json:"fix,omitempty"`
}

// Summary counts checks by status.
type Summary struct {
	OK   int `json:"ok"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
}

// Report is the result of Run.
type Report struct {
	Hostname string    `json:"hostname"`
	Kernel   string    `json:"kernel"`
	Time     time.Time `json:"time"`
	Checks   []Check   `json:"checks"`
	Summary  Summary   `json:"summary"`
	// Runtimes lists the sandbox runtimes usable on this host, strongest isolation first
	// ("microvm", "gvisor", "runc").
	Runtimes []string `json:"runtimes"`
	// MicroVMs is true when /dev/kvm is backed by hardware virtualization (a VMM is also
	// needed before the microvm runtime is usable: see Support).
	MicroVMs bool `json:"microvms"`
	// RunscRunMillis and RuncRunMillis are the measured times of a runsc and a runc run
	// of /bin/echo to exit; 0 when not measured.
	RunscRunMillis float64 `json:"runsc_run_ms,omitempty"`
	RuncRunMillis  float64 `json:"runc_run_ms,omitempty"`
	// RunscPath and RunscVersion are the runsc found on PATH and its version (the
	// gvisor.dev/gvisor module version it was built from, or what --version says).
	RunscPath    string `json:"runsc_path,omitempty"`
	RunscVersion string `json:"runsc_version,omitempty"`
	// Checkpoint is the tried checkpoint and restore of a runsc sandbox; nil when not
	// measured.
	Checkpoint *CheckpointProbe `json:"runsc_checkpoint,omitempty"`
	// Support has one entry per runtime Warren knows, strongest isolation first, usable
	// or not.
	Support []RuntimeSupport `json:"runtime_support"`
	// Recommended is the configuration to run warren serve with on this host.
	Recommended Recommendation `json:"recommended"`
}

// OK reports whether at least one sandbox runtime works on this host.
func (r Report) OK() bool { return len(r.Runtimes) > 0 }

// ExitCode is warren doctor's exit status: 0 when a runtime works, else 1.
func (r Report) ExitCode() int {
	if r.OK() {
		return 0
	}
	return 1
}

// Check returns the check with the given name.
func (r Report) Check(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// Options configure Run. The zero value checks the real host without measuring.
type Options struct {
	// DataDir is where Warren keeps sandboxes and templates; the disk check looks at the
	// file system holding it (or its nearest existing parent). Default /var/lib/warren.
	DataDir string
	// MeasureRuntimes runs /bin/echo in RootFS with each usable runtime (runsc run, runc
	// run) and reports how long each took. It needs RootFS.
	MeasureRuntimes bool
	// RootFS is a root filesystem directory with /bin/echo, used by MeasureRuntimes.
	RootFS string
	// Host probes the system; nil fields use the real implementations.
	Host Host
}

// DefaultDataDir is the data directory checked when Options.DataDir is empty.
const DefaultDataDir = "/var/lib/warren"

// Run checks the host. It never fails: problems are reported as failed checks.
func Run(ctx context.Context, opts Options) Report {
	if opts.DataDir == "" {
		opts.DataDir = DefaultDataDir
	}
	h := opts.Host.withDefaults()
	rep := Report{Time: time.Now().UTC()}
	rep.Hostname, _ = os.Hostname()
	s := &state{h: h, opts: opts}

	for _, c := range []func(context.Context) Check{
		s.checkRoot, s.checkKernel, s.checkCgroups, s.checkNamespaces, s.checkTun,
		s.checkOverlay, s.checkNftables, s.checkIproute2, s.checkIPForward,
		s.checkRunsc, s.checkRunc, s.checkDebootstrap, s.checkDisk, s.checkKVM, s.checkVMM,
	} {
		rep.Checks = append(rep.Checks, c(ctx))
	}
	if opts.MeasureRuntimes {
		c, d := s.checkRunscRun(ctx)
		rep.Checks = append(rep.Checks, c)
		rep.RunscRunMillis, s.runscRun = millis(d), d
		c, d = s.checkRuncRun(ctx)
		rep.Checks = append(rep.Checks, c)
		rep.RuncRunMillis, s.runcRun = millis(d), d
		var probe *CheckpointProbe
		c, probe = s.checkRunscCheckpoint(ctx)
		rep.Checks = append(rep.Checks, c)
		rep.Checkpoint = probe
	}
	rep.RunscPath = s.runscPath
	if s.runscVersion.Path != "" {
		rep.RunscVersion = s.runscVersion.String()
	}
	for _, c := range rep.Checks {
		switch c.Status {
		case StatusOK:
			rep.Summary.OK++
		case StatusWarn:
			rep.Summary.Warn++
		case StatusFail:
			rep.Summary.Fail++
		}
	}
	rep.Kernel = s.kernel
	rep.MicroVMs = s.microVMs
	s.fixes = map[string]string{}
	for _, c := range rep.Checks {
		if c.Status != StatusOK {
			s.fixes[c.Name] = c.Fix
		}
	}
	rep.Support = s.support()
	for _, rt := range rep.Support {
		if rt.Usable {
			rep.Runtimes = append(rep.Runtimes, rt.Name)
		}
	}
	rep.Recommended = s.recommend(rep.Support)
	return rep
}

// state carries findings between checks.
type state struct {
	h    Host
	opts Options

	kernel                    string
	root, namespaces, cgroups bool
	runscPath, runcPath, vmm  string
	runscUsable, runcUsable   bool
	runscVersion              gvisor.Version
	// microVMs: /dev/kvm is hardware virtualization; kvmDev: /dev/kvm exists at all.
	microVMs, kvmDev bool
	// Why each runtime's own part is missing, with the check that says what to do.
	kvmWhy, vmmWhy, runscWhy, runcWhy cause
	// Measured start times; 0 when not measured.
	runscRun, runcRun time.Duration
	// fixes holds the fix of every check that is not ok, by check name.
	fixes map[string]string
}

// cause is one reason a runtime is not usable and the check whose fix addresses it.
type cause struct{ why, check string }

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ok(name, detail string) Check { return Check{Name: name, Status: StatusOK, Detail: detail} }

func warn(name, detail, fix string) Check {
	return Check{Name: name, Status: StatusWarn, Detail: detail, Fix: fix}
}

func fail(name, detail, fix string) Check {
	return Check{Name: name, Status: StatusFail, Detail: detail, Fix: fix}
}
