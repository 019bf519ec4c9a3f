package domain

import (
	"context"
	"time"
)

// Principal is the authenticated caller of an API request.
type Principal struct {
	TeamID string
	// KeyID is the API key used, "" for a console session.
	KeyID string
	// UserID is the logged-in user (session) or the user who created the key, if any.
	UserID string
	// Admin is a platform administrator: may act on every team.
	Admin bool
	// Scopes is what the caller may do in its team.
	Scopes []Scope
	// RequestsPerMinute is the team's request rate quota (0 = none), read at
	// authentication so that the rate limiter needs no lookup of its own.
	RequestsPerMinute int64
}

// Can reports whether the caller holds scope s (platform admins hold every scope).
func (p Principal) Can(s Scope) bool { return p.Admin || HasScope(p.Scopes, s) }

// ActingFor returns the principal to act on teamID with: p itself for "" or p's own
// team; for another team, a platform admin acting there with every scope, and for
// anyone else that team is not found.
func (p Principal) ActingFor(teamID string) (Principal, error) {
	if teamID == "" || teamID == p.TeamID {
		return p, nil
	}
	if !p.Admin {
		return Principal{}, NotFound("team", teamID)
	}
	return Principal{TeamID: teamID, KeyID: p.KeyID, UserID: p.UserID, Admin: true, Scopes: []Scope{ScopeAdmin}}, nil
}

// Need returns a KindForbidden error saying which scope is missing, or nil.
func (p Principal) Need(s Scope) error {
	if p.Can(s) {
		return nil
	}
	return Errorf(KindForbidden, "this credential lacks the %q scope: use a key created with --scope %s (or admin), or ask a team admin for a role that has it", s, s)
}

// CreateSandbox is a request to start a sandbox. Zero values mean "default".
type CreateSandbox struct {
	TemplateID string
	Timeout    time.Duration
	Env        map[string]string
	Metadata   map[string]string
	// Internet enables outbound traffic; nil means the default (on).
	Internet *bool
	// AllowPublicTraffic false makes the proxy require the sandbox's traffic token on
	// every request to its ports; nil means true.
	AllowPublicTraffic *bool
	Limits             Limits
	// Runtime asks for a runtime by name ("gvisor", "runc"); "" means the node's default.
	Runtime string
	// MinIsolation asks for at least this isolation: "container", "sandbox" or "microvm".
	MinIsolation string
	// Lifecycle says what happens at the timeout (kill, the default, or pause) and
	// whether traffic resumes a paused sandbox.
	Lifecycle Lifecycle
	// Network, when set, is the sandbox's egress policy (normalised by the service). nil
	// means none, or for a sandbox started from a snapshot the snapshot's.
	Network *NetworkPolicy
	// Snapshot, when set, names a snapshot of the team (its id or name) to start the
	// sandbox from instead of booting it: memory, processes and files as saved. Its
	// template, runtime and limits are the snapshot's. TemplateID may name a snapshot
	// too (E2B's Sandbox.create(snapshotId)) when no template has that name.
	Snapshot string
	// IdempotencyKey, when set (the Idempotency-Key header), makes the create happen
	// once per team and key for 24 hours: a retry with the same request gets the
	// sandbox the first created; with a different request, KindConflict.
	IdempotencyKey string
}

// SandboxMetrics is one reading of a sandbox's resource use, taken inside it.
type SandboxMetrics struct {
	Timestamp  time.Time
	CPUCount   int
	CPUUsedPct float64
	MemUsed    int64
	MemTotal   int64
	MemCache   int64
	DiskUsed   int64
	DiskTotal  int64
}

// LogEntry is one line of a sandbox's own log (its agent: processes started and ended...).
type LogEntry struct {
	Timestamp time.Time
	Level     string // debug, info, warn, error
	Message   string
	Fields    map[string]string
}

// LogQuery selects log entries. Zero values mean: from the start, forward, 1000 entries.
type LogQuery struct {
	Start    time.Time
	Limit    int
	Backward bool
	// Level is the minimum level; Search keeps entries whose message contains it.
	Level  string
	Search string
}

// Route is where the proxy sends traffic for a sandbox.
type Route struct {
	SandboxID    string
	Address      string // the sandbox's IP on its private link
	Running      bool
	AccessToken  string // the agent's token (envd X-Access-Token)
	TrafficToken string // "" when the sandbox's ports are public
	// PrivatePorts are its template's private ports (Template.PrivatePorts): they need
	// AccessToken in X-Access-Token or PortToken() in E2B-Traffic-Access-Token.
	PrivatePorts []int
	// Done, when not nil, is closed once the sandbox stops running at Address (it is
	// killed or paused): requests proxied into it end then.
	Done <-chan struct{}
}

// PortToken is the traffic token of the routed sandbox (see PortToken).
func (r *Route) PortToken() string { return PortToken(r.AccessToken, r.TrafficToken) }

// Router resolves sandbox ids for the proxy. It is not team-scoped: the proxy
// authenticates with the per-sandbox tokens instead. Unknown ids are KindNotFound.
type Router interface {
	Route(ctx context.Context, id string) (*Route, error)
}

// ExecRequest runs one command in a sandbox. Cmd is a shell command line run by
// `bash -c` (not a login shell: the agent already sets PATH, HOME and USER, and a login
// shell's profile costs tens of milliseconds per command); if Args is set instead, Args[0] is executed directly with Args[1:].
type ExecRequest struct {
	Cmd   string
	Args  []string
	Env   map[string]string
	Cwd   string
	User  string
	Stdin []byte
	// Timeout bounds the command's lifetime; 0 means the service default.
	Timeout time.Duration
}

// ExecEvent is one streamed piece of a running command. Exactly one field is set.
type ExecEvent struct {
	PID    uint32
	Stdout []byte
	Stderr []byte
	End    *ExecResult
}

// ExecResult is how a command ended.
type ExecResult struct {
	ExitCode int
	// Error is the wait error text ("exit status 1", "signal: killed"), empty on success.
	Error  string
	Stdout []byte
	Stderr []byte
	// TimedOut is set when the command was killed at its timeout; ExitCode is then -1.
	// A timeout is a normal end of a command, not an error.
	TimedOut bool
	// Truncated is set when Stdout or Stderr holds only the start of the output: what
	// the server keeps of a command whose output is not streamed is bounded.
	Truncated bool
}

// FileInfo describes a file or directory inside a sandbox.
type FileInfo struct {
	Name     string    `json:"name"`
	Path     string    `json:"path"`
	Type     string    `json:"type"` // "file", "dir" or "symlink"
	Size     int64     `json:"size"`
	Mode     uint32    `json:"mode"`
	Owner    string    `json:"owner"`
	Group    string    `json:"group"`
	Modified time.Time `json:"modified"`
}

// SandboxService is a sandbox's life as the API edges (REST /v1, E2B, CLI) see it:
// creating, finding, extending and ending sandboxes, and reading their resource use.
// What runs inside a sandbox has services of its own (ProcessService, FileService,
// LogService, TerminalService, CodeService, PortLister). Every method is scoped to the
// principal's team: another team's sandbox is reported as not found.
type SandboxService interface {
	Create(ctx context.Context, p Principal, req CreateSandbox) (*Sandbox, error)
	Get(ctx context.Context, p Principal, id string) (*Sandbox, error)
	List(ctx context.Context, p Principal, f SandboxFilter) ([]*Sandbox, string, error)
	Kill(ctx context.Context, p Principal, id string) error
	// SetTimeout makes the sandbox end `d` from now.
	SetTimeout(ctx context.Context, p Principal, id string, d time.Duration) (*Sandbox, error)
	// SetNetwork replaces the sandbox's egress policy. A running sandbox's new
	// connections meet it at once; a paused one's is stored and applied on resume. A
	// sandbox that has ended is KindConflict.
	SetNetwork(ctx context.Context, p Principal, id string, np NetworkPolicy) (*Sandbox, error)
	// Connect returns a running sandbox and makes sure it lives at least d more; it never
	// shortens its life. A sandbox that is not running is KindNotFound.
	Connect(ctx context.Context, p Principal, id string, d time.Duration) (*Sandbox, error)
	// Metrics reads the sandbox's current CPU, memory and disk use from inside it.
	Metrics(ctx context.Context, p Principal, id string) (*SandboxMetrics, error)
	// Pause saves a running sandbox's memory and stops it; its files, memory and
	// processes come back with Resume. A sandbox that is not running is KindConflict.
	Pause(ctx context.Context, p Principal, id string) (*Sandbox, error)
	// Resume starts a paused sandbox again where it was paused, to end d from now (0:
	// the default timeout). A sandbox that is not paused is KindConflict.
	Resume(ctx context.Context, p Principal, id string, d time.Duration) (*Sandbox, error)
	Templates(ctx context.Context) ([]*Template, error)
}

// KeyService manages API keys for the API edges.
type KeyService interface {
	// Authenticate resolves a presented secret ("sk_...") to its principal.
	Authenticate(ctx context.Context, secret string) (Principal, error)
	// CreateKey makes a key for the principal's team and returns it with its secret,
	// which is shown this once and never stored.
	CreateKey(ctx context.Context, p Principal, spec KeySpec) (*APIKey, string, error)
	ListKeys(ctx context.Context, p Principal) ([]*APIKey, error)
	RevokeKey(ctx context.Context, p Principal, id string) error
}

// KeySpec describes a key to create. Zero Scopes means the creator's own scopes;
// TeamID other than the caller's is for platform admins only.
type KeySpec struct {
	Name      string
	Scopes    []Scope
	ExpiresAt time.Time
	TeamID    string
}

// TeamSpec creates or changes a team; nil fields take the server's defaults (create) or
// stay as they are (update), and so do the quota's nil fields.
type TeamSpec struct {
	Name       string
	Quota      *QuotaPatch
	PlanID     *string
	SpendLimit *string
	// AllowedRuntimes, when set, replaces the team's list; an empty list allows every
	// runtime the server enables.
	AllowedRuntimes *[]string
}

// UserSpec creates a user.
type UserSpec struct {
	TeamID   string
	Email    string
	Name     string
	Password string
	Role     Role
}

// UserPatch changes a user; nil fields stay.
type UserPatch struct {
	Name     *string
	Role     *Role
	Password *string
	// CurrentPassword must accompany Password when users change their own password.
	CurrentPassword *string
}

// Session is a console login: a short-lived signed token for one user.
type Session struct {
	Token     string
	ExpiresAt time.Time
	User      *User
	Team      *Team
}

// SessionService logs users in to the console and out again.
type SessionService interface {
	Login(ctx context.Context, email, password string) (*Session, error)
	// Logout ends every console session of p's user; p must be a session.
	Logout(ctx context.Context, p Principal) error
}

// TeamService manages teams. Platform admins act on every team; everyone else only on
// their own, within their scopes.
type TeamService interface {
	CreateTeam(ctx context.Context, p Principal, spec TeamSpec) (*Team, error)
	ListTeams(ctx context.Context, p Principal) ([]*Team, error)
	GetTeam(ctx context.Context, p Principal, id string) (*Team, QuotaUsage, error)
	UpdateTeam(ctx context.Context, p Principal, id string, patch TeamSpec) (*Team, error)
}

// UserService manages a team's users. Platform admins act on every team; everyone else
// only on their own, within their scopes.
type UserService interface {
	CreateUser(ctx context.Context, p Principal, spec UserSpec) (*User, error)
	GetUser(ctx context.Context, p Principal, id string) (*User, error)
	ListUsers(ctx context.Context, p Principal, teamID string) ([]*User, error)
	UpdateUser(ctx context.Context, p Principal, id string, patch UserPatch) (*User, error)
	DeleteUser(ctx context.Context, p Principal, id string) error
}

// AuditLog is the audit log: the edges record what callers did, and teams read it.
type AuditLog interface {
	Audit(ctx context.Context, p Principal, f AuditFilter) ([]*AuditEntry, error)
	// Record appends an audit entry; failures are logged, never returned to callers.
	Record(ctx context.Context, e *AuditEntry)
}

// UsageQuery selects a usage report.
type UsageQuery struct {
	From, To  time.Time
	GroupBy   string // "sandbox", "day", "template" or "none"
	SandboxID string
}

// UsageReport is summed usage over a time range.
type UsageReport struct {
	From    time.Time
	To      time.Time
	GroupBy string
	Rows    []UsageRow
	Total   UsageRow
}

// PlanInfo is a pricing plan as clients see it; money is decimal strings.
type PlanInfo struct {
	ID                  string
	Name                string
	Currency            string
	MonthlyPrice        string
	PerMinute           string
	MinimumCharge       string
	PerCPUHour          string
	PerGBHour           string
	PerGBMonthDisk      string
	PerGBTraffic        string
	IncludedHours       string
	IncludedConcurrency int64
}

// BillingService reports usage and bills, and admits new sandboxes against spending
// limits.
type BillingService interface {
	Usage(ctx context.Context, p Principal, q UsageQuery) (*UsageReport, error)
	Plans(ctx context.Context) []PlanInfo
	// Invoices returns the team's issued invoices and the current period's draft.
	Invoices(ctx context.Context, p Principal) ([]*Invoice, error)
	Invoice(ctx context.Context, p Principal, period string) (*Invoice, error)
	// CheckSpend refuses (KindQuotaExceeded, quota "spending_limit") when the team's
	// charges this period reached its spending limit.
	CheckSpend(ctx context.Context, team *Team) error
}

// PoolService reports the node's warm pools (sandbox.Pool), to platform admins only.
type PoolService interface {
	Pools(ctx context.Context, p Principal) ([]PoolStats, error)
}
