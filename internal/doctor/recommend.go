package doctor

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/runtime"
)

// Runtime names, as WARREN_RUNTIME takes them, strongest isolation first.
const (
	RuntimeMicroVM = "microvm"
	RuntimeGVisor  = "gvisor"
	RuntimeRunc    = "runc"
	// RuntimeAuto lets warren serve pick the strongest usable runtime.
	RuntimeAuto = "auto"
)

// RuntimeSupport says whether one runtime can run sandboxes on this host.
type RuntimeSupport struct {
	// Name is what WARREN_RUNTIME takes: microvm, gvisor or runc.
	Name string `json:"name"`
	// Isolation is the boundary between a sandbox and the host kernel:
	// microvm > sandbox (gVisor) > container (runc).
	Isolation string `json:"isolation"`
	Usable    bool   `json:"usable"`
	// Reasons say why the runtime is not usable; Fix what to do about it.
	Reasons []string `json:"reasons,omitempty"`
	Fix     string   `json:"fix,omitempty"`
	// StartMillis and Rating are the measured start (fast < 300 ms, ok < 1 s, slow);
	// absent when not measured.
	StartMillis float64 `json:"start_ms,omitempty"`
	Rating      string  `json:"rating,omitempty"`
}

// Recommendation is how to run warren serve on this host.
type Recommendation struct {
	// Runtime is the runtime WARREN_RUNTIME=auto picks: the strongest usable one; ""
	// when none is usable.
	Runtime string `json:"runtime"`
	// Env, Flags and Command are the same configuration three ways: environment
	// variables, warren serve flags, and a command line to paste.
	Env     map[string]string `json:"env"`
	Flags   []string          `json:"flags"`
	Command string            `json:"command,omitempty"`
	// Notes explain the choice; those starting with "warning:" need attention.
	Notes []string `json:"notes"`
}

// support builds the runtime table from the checks' findings. Every runtime needs root,
// the required namespaces and cgroups, and its own parts.
func (s *state) support() []RuntimeSupport {
	var host []cause
	if !s.root {
		host = append(host, cause{"not running as root", CheckRoot})
	}
	if !s.namespaces {
		host = append(host, cause{"required namespaces not usable", CheckNamespaces})
	}
	if !s.cgroups {
		host = append(host, cause{"no usable cgroups", CheckCgroups})
	}
	rt := func(name string, iso runtime.Isolation, own []cause, start time.Duration) RuntimeSupport {
		r := RuntimeSupport{Name: name, Isolation: iso.String()}
		for _, c := range append(slices.Clone(host), own...) {
			if c.why == "" {
				continue
			}
			r.Reasons = append(r.Reasons, c.why)
			if f := s.fixes[c.check]; f != "" && !strings.Contains(r.Fix, f) {
				r.Fix = strings.TrimPrefix(r.Fix+"\n"+f, "\n")
			}
		}
		r.Usable = len(r.Reasons) == 0
		if r.Usable && start > 0 {
			r.StartMillis, r.Rating = millis(start), rating(start)
		}
		return r
	}
	return []RuntimeSupport{
		rt(RuntimeMicroVM, runtime.IsolationMicroVM, []cause{s.kvmWhy, s.vmmWhy}, 0),
		rt(RuntimeGVisor, runtime.IsolationSandbox, []cause{s.runscWhy}, s.runscRun),
		rt(RuntimeRunc, runtime.IsolationContainer, []cause{s.runcWhy}, s.runcRun),
	}
}

// runcWarning is the warning that goes with every use of runc.
const runcWarning = "warning: runc shares the host kernel: use it only for trusted work " +
	"(Warren hardens it with a user namespace, seccomp and no host devices, but a kernel bug reachable from a sandbox is a host compromise)"

// recommend picks what auto picks (the strongest usable runtime) and says how to
// configure warren serve for it. It pins the runtime rather than recommend auto, so that
// a runtime that breaks later makes warren serve fail instead of quietly falling back to
// a weaker isolation.
func (s *state) recommend(rts []RuntimeSupport) Recommendation {
	rec := Recommendation{Env: map[string]string{}, Flags: []string{}, Notes: []string{}}
	by := map[string]RuntimeSupport{}
	for _, r := range rts {
		by[r.Name] = r
		if r.Usable && rec.Runtime == "" {
			rec.Runtime = r.Name
		}
	}
	note := func(format string, a ...any) { rec.Notes = append(rec.Notes, fmt.Sprintf(format, a...)) }
	if rec.Runtime == "" {
		note("warning: no runtime is usable, so warren serve cannot run sandboxes: fix the failed checks above")
		return rec
	}
	rec.Env["WARREN_RUNTIME"] = rec.Runtime
	switch rec.Runtime {
	case RuntimeMicroVM:
		note("microvm: every sandbox gets its own guest kernel under hardware virtualization (%s)", s.vmm)
	case RuntimeGVisor:
		rec.Env["WARREN_RUNSC_PLATFORM"] = "systrap"
		note("gvisor: every sandbox runs on gVisor's user-space kernel (systrap platform); its system calls never reach the host kernel directly")
		if s.kvmDev && !s.microVMs {
			note("warning: keep WARREN_RUNSC_PLATFORM=systrap, never kvm: /dev/kvm here is not hardware virtualization and gVisor's kvm platform hangs on it")
		}
	case RuntimeRunc:
		note(runcWarning)
		note("for untrusted work install gVisor (see the runsc check), then run doctor again")
	}
	note("WARREN_RUNTIME=auto picks %s today; pinning it makes warren serve fail, rather than fall back to a weaker runtime, if %s breaks", rec.Runtime, rec.Runtime)
	if r := by[RuntimeRunc]; r.Usable && rec.Runtime != RuntimeRunc {
		start := ""
		if chosen := by[rec.Runtime]; r.StartMillis > 0 && chosen.StartMillis > 0 {
			start = fmt.Sprintf(" (it starts in %.0f ms, %s in %.0f ms)", r.StartMillis, chosen.Name, chosen.StartMillis)
		} else if r.StartMillis > 0 {
			start = fmt.Sprintf(" (it starts in %.0f ms)", r.StartMillis)
		}
		note("runc is usable too%s; requests get it only when offered (WARREN_RUNTIMES=%s,runc), and only for trusted work: runc shares the host kernel", start, rec.Runtime)
	}
	if r := by[rec.Runtime]; r.Rating == "slow" {
		check := map[string]string{RuntimeGVisor: CheckRunscRun, RuntimeRunc: CheckRuncRun}[r.Name]
		note("warning: %s starts slowly here (%.0f ms): see the %s check", r.Name, r.StartMillis, check)
	}
	if s.opts.DataDir != DefaultDataDir {
		rec.Env["WARREN_DATA_DIR"] = s.opts.DataDir
	}
	// WARREN_RUNTIME first, the rest in a stable order.
	keys := slices.DeleteFunc(slices.Sorted(maps.Keys(rec.Env)), func(k string) bool { return k == "WARREN_RUNTIME" })
	var env []string
	for _, k := range append([]string{"WARREN_RUNTIME"}, keys...) {
		flag := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "WARREN_")), "_", "-")
		rec.Flags = append(rec.Flags, "--"+flag+"="+rec.Env[k])
		env = append(env, k+"="+rec.Env[k])
	}
	rec.Command = strings.Join(env, " ") + " warren serve"
	return rec
}
