package domain

import (
	"context"
	"slices"
	"time"
)

// Role is a user's place in a team. Each role can do everything the one below it can.
type Role string

// Roles, from most to least powerful.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
	RoleViewer Role = "viewer"
)

// Roles lists the roles from most to least powerful.
var Roles = []Role{RoleOwner, RoleAdmin, RoleMember, RoleViewer}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Scope is one permission of an API key or session. A caller may do what its scopes
// allow, inside its own team only; ScopeAdmin is every team scope.
type Scope string

// Scopes.
const (
	ScopeSandboxesRead  Scope = "sandboxes:read"
	ScopeSandboxesWrite Scope = "sandboxes:write"
	ScopeKeysRead       Scope = "keys:read"
	ScopeKeysWrite      Scope = "keys:write"
	ScopeUsageRead      Scope = "usage:read"
	ScopeTeamRead       Scope = "team:read"
	ScopeTeamWrite      Scope = "team:write"
	ScopeAuditRead      Scope = "audit:read"
	// ScopeAdmin grants every scope above (within the team).
	ScopeAdmin Scope = "admin"
)

// AllScopes lists every scope, ScopeAdmin last.
var AllScopes = []Scope{
	ScopeSandboxesRead, ScopeSandboxesWrite, ScopeKeysRead, ScopeKeysWrite,
	ScopeUsageRead, ScopeTeamRead, ScopeTeamWrite, ScopeAuditRead, ScopeAdmin,
}

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool { return slices.Contains(AllScopes, s) }

// RoleScopes returns what a user of role r may do.
func RoleScopes(r Role) []Scope {
	switch r {
	case RoleOwner, RoleAdmin:
		return []Scope{ScopeAdmin}
	case RoleMember:
		return []Scope{ScopeSandboxesRead, ScopeSandboxesWrite, ScopeKeysRead, ScopeKeysWrite,
			ScopeUsageRead, ScopeTeamRead}
	case RoleViewer:
		return []Scope{ScopeSandboxesRead, ScopeUsageRead, ScopeTeamRead}
	}
	return nil
}

// HasScope reports whether a grant of scopes allows want.
func HasScope(scopes []Scope, want Scope) bool {
	return slices.Contains(scopes, ScopeAdmin) || slices.Contains(scopes, want)
}

// Covers reports whether every scope of sub is allowed by scopes (a key may not be given
// more than its creator has).
func Covers(scopes, sub []Scope) bool {
	for _, s := range sub {
		if !HasScope(scopes, s) {
			return false
		}
	}
	return true
}

// Intersect returns the scopes both a and b allow: what a key (a) may still do when its
// creating user now holds only b. ScopeAdmin survives only when both hold it.
func Intersect(a, b []Scope) []Scope {
	if HasScope(a, ScopeAdmin) && HasScope(b, ScopeAdmin) {
		return []Scope{ScopeAdmin}
	}
	out := []Scope{}
	for _, s := range AllScopes {
		if s != ScopeAdmin && HasScope(a, s) && HasScope(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// User is a person who logs in to the console with email and password. A user belongs
// to one team with one role. Only the argon2id hash of the password is stored.
type User struct {
	ID           string
	TeamID       string
	Email        string // lower-cased
	Name         string
	Role         Role
	PasswordHash string // PHC string: $argon2id$v=19$m=...,t=...,p=...$salt$hash
	CreatedAt    time.Time
	LastLoginAt  time.Time
	DisabledAt   time.Time
	// SessionEpoch is carried by every session token issued to the user; a token whose
	// epoch differs is refused. The store increments it (EndSessions) when the user's
	// password or role changes and at logout, which ends every session at once.
	SessionEpoch int64
}

// Quota caps what a team may hold at once and how fast it may call. Zero means no limit.
type Quota struct {
	MaxSandboxes      int64   `json:"max_sandboxes"`
	MaxCPUCores       float64 `json:"max_cpu_cores"`
	MaxMemoryMB       int64   `json:"max_memory_mb"`
	MaxDiskMB         int64   `json:"max_disk_mb"`
	RequestsPerMinute int64   `json:"requests_per_minute"`
	// MaxSnapshots caps the snapshots the team keeps (they hold disk on the node).
	MaxSnapshots int64 `json:"max_snapshots"`
	// MaxTemplates caps the templates the team keeps, and MaxTemplateMB their total size
	// on disk (built root filesystems).
	MaxTemplates  int64 `json:"max_templates"`
	MaxTemplateMB int64 `json:"max_template_mb"`
}

// QuotaPatch changes some fields of a Quota; nil fields stay as they are.
type QuotaPatch struct {
	MaxSandboxes      *int64   `json:"max_sandboxes,omitempty"`
	MaxCPUCores       *float64 `json:"max_cpu_cores,omitempty"`
	MaxMemoryMB       *int64   `json:"max_memory_mb,omitempty"`
	MaxDiskMB         *int64   `json:"max_disk_mb,omitempty"`
	RequestsPerMinute *int64   `json:"requests_per_minute,omitempty"`
	MaxSnapshots      *int64   `json:"max_snapshots,omitempty"`
	MaxTemplates      *int64   `json:"max_templates,omitempty"`
	MaxTemplateMB     *int64   `json:"max_template_mb,omitempty"`
}

// FullPatch is the patch that sets every field of q.
func FullPatch(q Quota) *QuotaPatch {
	return &QuotaPatch{&q.MaxSandboxes, &q.MaxCPUCores, &q.MaxMemoryMB, &q.MaxDiskMB, &q.RequestsPerMinute, &q.MaxSnapshots,
		&q.MaxTemplates, &q.MaxTemplateMB}
}

// Apply returns q with the patch's set fields.
func (q Quota) Apply(p *QuotaPatch) Quota {
	if p == nil {
		return q
	}
	if p.MaxSandboxes != nil {
		q.MaxSandboxes = *p.MaxSandboxes
	}
	if p.MaxCPUCores != nil {
		q.MaxCPUCores = *p.MaxCPUCores
	}
	if p.MaxMemoryMB != nil {
		q.MaxMemoryMB = *p.MaxMemoryMB
	}
	if p.MaxDiskMB != nil {
		q.MaxDiskMB = *p.MaxDiskMB
	}
	if p.RequestsPerMinute != nil {
		q.RequestsPerMinute = *p.RequestsPerMinute
	}
	if p.MaxSnapshots != nil {
		q.MaxSnapshots = *p.MaxSnapshots
	}
	if p.MaxTemplates != nil {
		q.MaxTemplates = *p.MaxTemplates
	}
	if p.MaxTemplateMB != nil {
		q.MaxTemplateMB = *p.MaxTemplateMB
	}
	return q
}

// QuotaUsage is what a team holds now, in the units of Quota.
type QuotaUsage struct {
	Sandboxes int64   `json:"sandboxes"`
	CPUCores  float64 `json:"cpu_cores"`
	MemoryMB  int64   `json:"memory_mb"`
	DiskMB    int64   `json:"disk_mb"`
	// Snapshots is the number of snapshots the team keeps.
	Snapshots int64 `json:"snapshots"`
	// Templates is the number of the team's own templates, TemplateMB their total size.
	Templates  int64 `json:"templates"`
	TemplateMB int64 `json:"template_mb"`
}

// QuotaError is the detail of a KindQuotaExceeded refusal: which quota, its limit, and
// what the team used when it was refused.
type QuotaError struct {
	Quota string  // "max_sandboxes", "max_cpu_cores", "max_memory_mb", "max_disk_mb", "max_snapshots", "max_templates", "max_template_mb", "requests_per_minute", "spending_limit"
	Limit float64 // the limit (for spending_limit, in the plan's currency)
	Used  float64 // current usage before the refused request
	// RetryAfter, when set, is how long to wait before trying again (rate limits).
	RetryAfter time.Duration
}

// AuditEntry is one line of a team's append-only audit log: who did what, when, from where.
type AuditEntry struct {
	ID         int64
	TeamID     string
	At         time.Time
	ActorType  string // "key", "user" or "system"
	ActorID    string // key id, user id, or ""
	Action     string // for example "sandbox.create", "key.revoke", "user.login"
	Target     string // the object acted on, for example a sandbox id
	Status     int    // HTTP status of the request, 0 when not a request
	RemoteAddr string
	RequestID  string
	Details    map[string]string
}

// Actor returns how the audit log names p: its key, else its user, else the system.
func (p Principal) Actor() (actorType, actorID string) {
	switch {
	case p.KeyID != "":
		return "key", p.KeyID
	case p.UserID != "":
		return "user", p.UserID
	}
	return "system", ""
}

// AuditFilter selects audit entries of one team, newest first.
type AuditFilter struct {
	TeamID string
	Action string    // exact action, "" for all
	Since  time.Time // at or after
	Until  time.Time // before; zero means no bound
	// BeforeID pages: only entries with ID < BeforeID (0 = from the newest).
	BeforeID int64
	Limit    int // 0 = 100, at most 1000
}

// RequestMeta is what an edge knows about the request behind a call: where it came from
// and its id. Edges attach it to the context so that audit entries written below the
// edge can say "from where".
type RequestMeta struct {
	RemoteAddr string
	RequestID  string
}

type requestMetaKey struct{}

// WithRequestMeta returns ctx carrying m.
func WithRequestMeta(ctx context.Context, m RequestMeta) context.Context {
	return context.WithValue(ctx, requestMetaKey{}, m)
}

// RequestMetaFrom returns the request meta attached to ctx, if any.
func RequestMetaFrom(ctx context.Context) RequestMeta {
	m, _ := ctx.Value(requestMetaKey{}).(RequestMeta)
	return m
}
