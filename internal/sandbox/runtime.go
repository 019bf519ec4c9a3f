package sandbox

import (
	"fmt"
	"slices"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// isolationLevels maps the names requests use to levels.
var isolationLevels = map[string]runtime.Isolation{
	"container": runtime.IsolationContainer,
	"sandbox":   runtime.IsolationSandbox,
	"microvm":   runtime.IsolationMicroVM,
}

// enabledDrivers returns the drivers of n requests may use, the default first: those
// named in runtimes (Config.Runtimes), or only the node's default when it names none.
// The node may hold more (to recover and tear down sandboxes of runtimes no longer
// offered).
func enabledDrivers(n Node, runtimes []string) []runtime.Driver {
	if len(runtimes) == 0 {
		return n.Drivers()[:1] // the default
	}
	var out []runtime.Driver
	for _, d := range n.Drivers() {
		if slices.Contains(runtimes, d.Capabilities().Name) {
			out = append(out, d)
		}
	}
	return out
}

// names lists drivers as "gvisor, runc", or "none".
func names(ds []runtime.Driver) string {
	if len(ds) == 0 {
		return "none"
	}
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.Capabilities().Name)
	}
	return strings.Join(out, ", ")
}

// describe lists drivers with their isolation, "gvisor (sandbox), runc (container)",
// or "none".
func describe(ds []runtime.Driver) string {
	if len(ds) == 0 {
		return "none"
	}
	names := make([]string, 0, len(ds))
	for _, d := range ds {
		c := d.Capabilities()
		names = append(names, fmt.Sprintf("%s (%s)", c.Name, c.Isolation))
	}
	return strings.Join(names, ", ")
}

// pickRuntime chooses the node's driver for a request of team, among the enabled
// runtimes: the one it names, else the node's default; a minimum isolation level is met
// or refused. It never silently gives weaker isolation than the default: a runtime the
// server does not enable is refused (invalid), one the team may not use is refused
// (forbidden), and when the team may not use the default, only a runtime at least as
// strong replaces it.
func pickRuntime(n Node, runtimes []string, team *domain.Team, name, minIso string) (runtime.Driver, error) {
	enabled := enabledDrivers(n, runtimes)
	allowed := enabled
	if team != nil && len(team.AllowedRuntimes) > 0 {
		allowed = slices.DeleteFunc(slices.Clone(enabled), func(d runtime.Driver) bool {
			return !slices.Contains(team.AllowedRuntimes, d.Capabilities().Name)
		})
	}
	var min runtime.Isolation
	if minIso != "" {
		lvl, ok := isolationLevels[strings.ToLower(minIso)]
		if !ok {
			return nil, domain.Invalid("min_isolation", "min_isolation must be container, sandbox or microvm, not %q", minIso)
		}
		min = lvl
	}
	find := func(ds []runtime.Driver, name string) runtime.Driver {
		for _, d := range ds {
			if d.Capabilities().Name == name {
				return d
			}
		}
		return nil
	}
	if name != "" {
		d := find(enabled, name)
		if d == nil {
			return nil, domain.Invalid("runtime", "runtime %s is not enabled on this server; enabled: %s (the operator enables more with --runtimes)",
				name, names(enabled))
		}
		if find(allowed, name) == nil {
			return nil, domain.Errorf(domain.KindForbidden, "team %s may not use runtime %s; it may use: %s (a platform admin sets the team's allowed_runtimes)",
				team.ID, name, names(allowed))
		}
		if c := d.Capabilities(); c.Isolation < min {
			return nil, domain.Invalid("min_isolation", "runtime %q gives %s isolation, less than the %s asked for", name, c.Isolation, min)
		}
		return d, nil
	}
	def := n.Drivers()[0] // the default
	defAllowed := find(allowed, def.Capabilities().Name) != nil
	if defAllowed && def.Capabilities().Isolation >= min {
		return def, nil
	}
	// The default is too weak for this request, or the team may not use it: take the
	// strongest allowed driver that is enough and never weaker than the default.
	floor := max(min, def.Capabilities().Isolation)
	var best runtime.Driver
	for _, cand := range allowed {
		if c := cand.Capabilities(); c.Isolation >= floor && (best == nil || c.Isolation > best.Capabilities().Isolation) {
			best = cand
		}
	}
	if best != nil {
		return best, nil
	}
	if !defAllowed && min <= def.Capabilities().Isolation {
		return nil, domain.Errorf(domain.KindForbidden, "team %s may not use this server's default runtime %s, and none it may use isolates as well; name one of its runtimes (it may use: %s), knowing it isolates less",
			team.ID, def.Capabilities().Name, describe(allowed))
	}
	missing := ""
	if min == runtime.IsolationMicroVM {
		missing = ": microVMs need hardware virtualization (vmx/svm) and a VMM (Firecracker or Cloud Hypervisor), and this node has no microVM runtime"
	}
	return nil, domain.Invalid("min_isolation", "no runtime offered here gives %s isolation%s; offered: %s", min, missing, describe(allowed))
}
