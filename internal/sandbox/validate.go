package sandbox

import (
	"fmt"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

const (
	maxMapEntries = 100
	maxKeyLen     = 256
	maxValueLen   = 8 << 10
	minMemoryMB   = 128
)

func validateMap(field string, m map[string]string, envKeys bool) error {
	if len(m) > maxMapEntries {
		return domain.Invalid(field, "%s has %d entries; at most %d are allowed", field, len(m), maxMapEntries)
	}
	for k, v := range m {
		switch {
		case k == "":
			return domain.Invalid(field, "%s has an empty key", field)
		case len(k) > maxKeyLen:
			return domain.Invalid(field, "%s key %.20q... is longer than %d bytes", field, k, maxKeyLen)
		case len(v) > maxValueLen:
			return domain.Invalid(field, "%s[%q] is longer than %d bytes", field, k, maxValueLen)
		case strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0):
			return domain.Invalid(field, "%s[%q] contains a NUL byte", field, k)
		case envKeys && strings.ContainsRune(k, '='):
			return domain.Invalid(field, "%s key %q contains '='", field, k)
		}
	}
	return nil
}

// defaultLimits are the limits a sandbox of template tplID gets when it asks for none:
// c.DefaultLimits, with the template's memory from c.TemplateMemoryMB if that is more
// (capped at c.MaxLimits.MemoryMB when there is one).
func (c *Config) defaultLimits(tplID string) domain.Limits {
	d := c.DefaultLimits
	if m := c.TemplateMemoryMB[tplID]; m > d.MemoryMB {
		if c.MaxLimits.MemoryMB > 0 {
			m = min(m, max(c.MaxLimits.MemoryMB, d.MemoryMB))
		}
		d.MemoryMB = m
	}
	return d
}

// templateLimits are the limits a sandbox of tpl gets when it asks for none: a
// built-in's defaultLimits, or for a team's template c.DefaultLimits with the template's
// own CPU cores and memory where it sets them (E2B's cpuCount and memoryMB), capped at
// c.MaxLimits (which the operator may have lowered since the build).
func (c *Config) templateLimits(tpl *domain.Template) domain.Limits {
	if tpl.TeamID == "" {
		return c.defaultLimits(tpl.ID)
	}
	d := c.DefaultLimits
	if v := tpl.Limits.CPUCores; v > 0 {
		if c.MaxLimits.CPUCores > 0 {
			v = min(v, c.MaxLimits.CPUCores)
		}
		d.CPUCores = v
	}
	if v := tpl.Limits.MemoryMB; v > 0 {
		if c.MaxLimits.MemoryMB > 0 {
			v = min(v, c.MaxLimits.MemoryMB)
		}
		d.MemoryMB = v
	}
	return d
}

// resolveLimits fills the defaults d into l and checks it against the node's maxima mx
// (zero fields: no maximum).
func resolveLimits(l, d, mx domain.Limits) (domain.Limits, error) {
	if l.CPUCores < 0 || l.MemoryMB < 0 || l.DiskMB < 0 || l.MaxProcesses < 0 {
		return l, domain.Invalid("limits", "limits must not be negative")
	}
	if l.CPUCores == 0 {
		l.CPUCores = d.CPUCores
	}
	if l.MemoryMB == 0 {
		l.MemoryMB = d.MemoryMB
	}
	if l.DiskMB == 0 {
		l.DiskMB = d.DiskMB
	}
	if l.MaxProcesses == 0 {
		l.MaxProcesses = d.MaxProcesses
	}
	check := func(field string, v, max float64, knob string) error {
		if max > 0 && v > max {
			return domain.Invalid("limits."+field, "limits.%s %s exceeds this node's maximum of %s; ask for less or raise %s",
				field, trim(v), trim(max), knob)
		}
		return nil
	}
	if err := check("cpu_cores", l.CPUCores, mx.CPUCores, "WARREN_MAX_CPU_CORES"); err != nil {
		return l, err
	}
	if err := check("memory_mb", float64(l.MemoryMB), float64(mx.MemoryMB), "WARREN_MAX_MEMORY_MB"); err != nil {
		return l, err
	}
	if err := check("disk_mb", float64(l.DiskMB), float64(mx.DiskMB), "WARREN_MAX_DISK_MB"); err != nil {
		return l, err
	}
	if err := check("max_processes", float64(l.MaxProcesses), float64(mx.MaxProcesses), "WARREN_MAX_PROCESSES"); err != nil {
		return l, err
	}
	if l.MemoryMB < minMemoryMB {
		return l, domain.Invalid("limits.memory_mb", "limits.memory_mb %d is below the minimum of %d", l.MemoryMB, minMemoryMB)
	}
	if l.CPUCores < 0.05 {
		return l, domain.Invalid("limits.cpu_cores", "limits.cpu_cores %s is below the minimum of 0.05", trim(l.CPUCores))
	}
	if l.MaxProcesses < 16 {
		return l, domain.Invalid("limits.max_processes", "limits.max_processes %d is below the minimum of 16", l.MaxProcesses)
	}
	return l, nil
}

func trim(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

// resolveTimeout returns a requested lifetime d, def when it is zero, refusing one
// under a second or over max.
func resolveTimeout(d, def, max time.Duration) (time.Duration, error) {
	if d == 0 {
		return def, nil
	}
	if d < time.Second {
		return 0, domain.Invalid("timeout", "timeout must be at least 1 second")
	}
	if d > max {
		return 0, domain.Invalid("timeout", "timeout %s exceeds the maximum of %s", d, max)
	}
	return d, nil
}

// validateLifecycle checks a create's lifecycle: on_timeout is kill or pause, and
// pausing (at the timeout, or to be resumed by traffic) needs a runtime that can.
func validateLifecycle(l domain.Lifecycle, drv runtime.Driver) error {
	switch l.OnTimeout {
	case "", domain.OnTimeoutKill, domain.OnTimeoutPause:
	default:
		return domain.Invalid("lifecycle.on_timeout", "on_timeout %q is not one of kill, pause", l.OnTimeout)
	}
	if l.OnTimeout == domain.OnTimeoutPause || l.AutoResume {
		if _, ok := drv.(runtime.Checkpointer); !ok {
			return domain.Invalid("lifecycle", "runtime %s cannot pause a sandbox; use runtime gvisor for on_timeout pause or auto_resume", drv.Capabilities().Name)
		}
	}
	return nil
}

// checkRequest checks what every create checks alike, whatever it starts from: env and
// metadata, the runtime (runtimeName: the request's, or the one a snapshot restores
// on) against the node and the team, and the lifecycle against that runtime. It
// returns the runtime's driver.
func checkRequest(cfg *Config, team *domain.Team, req domain.CreateSandbox, runtimeName string) (runtime.Driver, error) {
	if err := validateMap("env", req.Env, true); err != nil {
		return nil, err
	}
	if err := validateMap("metadata", req.Metadata, false); err != nil {
		return nil, err
	}
	drv, err := pickRuntime(cfg.Node, cfg.Runtimes, team, runtimeName, req.MinIsolation)
	if err != nil {
		return nil, err
	}
	if err := validateLifecycle(req.Lifecycle, drv); err != nil {
		return nil, err
	}
	return drv, nil
}
