package sandbox

import (
	"fmt"
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

// pickRuntime chooses the driver for a request: the one it names, else the node's
// default; a minimum isolation level is met or refused, never silently weakened.
func (s *Service) pickRuntime(name, minIso string) (runtime.Driver, error) {
	available := []string{}
	for _, d := range s.cfg.Node.Drivers() {
		c := d.Capabilities()
		available = append(available, fmt.Sprintf("%s (%s)", c.Name, c.Isolation))
	}
	var min runtime.Isolation
	if minIso != "" {
		lvl, ok := isolationLevels[strings.ToLower(minIso)]
		if !ok {
			return nil, domain.Invalid("min_isolation", "min_isolation must be container, sandbox or microvm, not %q", minIso)
		}
		min = lvl
	}
	if name != "" {
		d, ok := s.cfg.Node.DriverFor(name)
		if !ok {
			return nil, domain.Invalid("runtime", "runtime %q is not available on this node; available: %s (run 'warren doctor' on the server to see why others are not)",
				name, strings.Join(available, ", "))
		}
		if c := d.Capabilities(); c.Isolation < min {
			return nil, domain.Invalid("min_isolation", "runtime %q gives %s isolation, less than the %s asked for", name, c.Isolation, min)
		}
		return d, nil
	}
	d := s.cfg.Node.Driver()
	if d.Capabilities().Isolation >= min {
		return d, nil
	}
	// The default is too weak for this request: take the strongest driver that is enough.
	var best runtime.Driver
	for _, cand := range s.cfg.Node.Drivers() {
		if c := cand.Capabilities(); c.Isolation >= min && (best == nil || c.Isolation > best.Capabilities().Isolation) {
			best = cand
		}
	}
	if best == nil {
		missing := ""
		if min == runtime.IsolationMicroVM {
			missing = ": microVMs need hardware virtualization (vmx/svm) and a VMM (Firecracker or Cloud Hypervisor), and this node has no microVM runtime"
		}
		return nil, domain.Invalid("min_isolation", "no runtime on this node gives %s isolation%s; available: %s", min, missing, strings.Join(available, ", "))
	}
	return best, nil
}
