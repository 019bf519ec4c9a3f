package domain

import (
	"fmt"
	"strconv"
	"time"
)

// Error describes the refusal in one line, for logs; clients get the Message of the
// *Error that wraps it and the fields themselves.
func (e *QuotaError) Error() string {
	s := fmt.Sprintf("quota %s exceeded: limit %s, used %s", e.Quota, formatQuantity(e.Limit), formatQuantity(e.Used))
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", retry after %s", e.RetryAfter)
	}
	return s
}

// formatQuantity prints a quota quantity without a needless fraction ("10", "2.5").
func formatQuantity(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// quotaSlack absorbs floating-point error when summing CPU cores (0.1+0.2 > 0.3).
const quotaSlack = 1e-9

// CheckSandboxQuota reports whether one more sandbox with limits l fits in q on top of
// used. It checks max_sandboxes, max_cpu_cores, max_memory_mb and max_disk_mb in that
// order (zero: no limit) and returns nil or a KindQuotaExceeded *Error whose Err is a
// *QuotaError naming the first quota that would be exceeded. Stores call it inside the
// transaction that inserts the sandbox, so that the check and the insert are atomic.
func CheckSandboxQuota(q Quota, used QuotaUsage, l Limits) error {
	refuse := func(name, unit string, limit, have, want float64) error {
		return &Error{
			Kind: KindQuotaExceeded,
			Message: fmt.Sprintf("quota %s exceeded: the team's running sandboxes hold %s of at most %s %s and this one needs %s more; "+
				"stop sandboxes you no longer need, or ask the operator to raise the quota",
				name, formatQuantity(have), formatQuantity(limit), unit, formatQuantity(want)),
			Err: &QuotaError{Quota: name, Limit: limit, Used: have},
		}
	}
	switch {
	case q.MaxSandboxes > 0 && used.Sandboxes+1 > q.MaxSandboxes:
		return refuse("max_sandboxes", "sandboxes", float64(q.MaxSandboxes), float64(used.Sandboxes), 1)
	case q.MaxCPUCores > 0 && used.CPUCores+l.CPUCores > q.MaxCPUCores+quotaSlack:
		return refuse("max_cpu_cores", "CPU cores", q.MaxCPUCores, used.CPUCores, l.CPUCores)
	case q.MaxMemoryMB > 0 && used.MemoryMB+l.MemoryMB > q.MaxMemoryMB:
		return refuse("max_memory_mb", "MB of memory", float64(q.MaxMemoryMB), float64(used.MemoryMB), float64(l.MemoryMB))
	case q.MaxDiskMB > 0 && used.DiskMB+l.DiskMB > q.MaxDiskMB:
		return refuse("max_disk_mb", "MB of disk", float64(q.MaxDiskMB), float64(used.DiskMB), float64(l.DiskMB))
	}
	return nil
}

// NodeFullError details a refusal because this node lacks the free memory or disk one
// more sandbox could use (node admission). Waiting may help (sandboxes end), so the
// edge answers 503 node_full with RetryAfter.
type NodeFullError struct {
	Resource string // "memory" or "disk"
	// NeedMB is what the sandbox may use plus the node's reserve; FreeMB what is free.
	NeedMB, FreeMB int64
	// RetryAfter is how long a client should wait before trying again.
	RetryAfter time.Duration
}

func (e *NodeFullError) Error() string {
	return fmt.Sprintf("node full: %s needs %d MB (with the node's reserve), %d MB free", e.Resource, e.NeedMB, e.FreeMB)
}

// NodeFull is the KindUnavailable refusal of a sandbox this node has no room for.
func NodeFull(resource string, needMB, freeMB int64, retryAfter time.Duration) error {
	return &Error{
		Kind: KindUnavailable,
		Message: fmt.Sprintf("this node has no room for the sandbox: it needs %d MB of free %s (its limit plus the node's reserve) and %d MB are free; "+
			"retry later, ask for a smaller memory_mb or disk_mb, or ask the operator to add capacity", needMB, resource, freeMB),
		Err: &NodeFullError{Resource: resource, NeedMB: needMB, FreeMB: freeMB, RetryAfter: retryAfter},
	}
}

// MiB is a mebibyte, the unit of the MB quotas.
const MiB = 1 << 20

// CheckTemplateQuota reports whether a team may keep count templates of bytes in all
// (after the change being checked): max_templates, then max_template_mb (zero: no
// limit). A refusal is a KindQuotaExceeded *Error whose Err is a *QuotaError.
func CheckTemplateQuota(q Quota, count, bytes int64) error {
	switch {
	case q.MaxTemplates > 0 && count > q.MaxTemplates:
		return &Error{
			Kind: KindQuotaExceeded,
			Message: fmt.Sprintf("quota max_templates exceeded: the team keeps %d of at most %d templates; "+
				"delete templates you no longer need (warren template delete), or ask the operator to raise the quota",
				count-1, q.MaxTemplates),
			Err: &QuotaError{Quota: "max_templates", Limit: float64(q.MaxTemplates), Used: float64(count - 1)},
		}
	case q.MaxTemplateMB > 0 && bytes > q.MaxTemplateMB*MiB:
		usedMB := float64((bytes + MiB - 1) / MiB)
		return &Error{
			Kind: KindQuotaExceeded,
			Message: fmt.Sprintf("quota max_template_mb exceeded: the team's templates would hold %s of at most %d MB; "+
				"delete templates you no longer need, make the template smaller, or ask the operator to raise the quota",
				formatQuantity(usedMB), q.MaxTemplateMB),
			Err: &QuotaError{Quota: "max_template_mb", Limit: float64(q.MaxTemplateMB), Used: usedMB},
		}
	}
	return nil
}
