package domain

import (
	"crypto/rand"
	"time"
)

// SandboxState is the lifecycle state of a sandbox.
type SandboxState string

// Sandbox states. A sandbox goes starting -> running -> stopped; a failed create ends in
// "error". A running sandbox may be paused (its memory saved to disk, nothing of it
// running) and resumed (paused -> starting -> running). Stopped and error are terminal.
const (
	StateStarting SandboxState = "starting"
	StateRunning  SandboxState = "running"
	StatePaused   SandboxState = "paused"
	StateStopped  SandboxState = "stopped"
	StateError    SandboxState = "error"
)

// Valid reports whether s is a known state.
func (s SandboxState) Valid() bool {
	switch s {
	case StateStarting, StateRunning, StatePaused, StateStopped, StateError:
		return true
	}
	return false
}

// Terminal reports whether a sandbox in state s is gone for good.
func (s SandboxState) Terminal() bool { return s == StateStopped || s == StateError }

// Live reports whether a sandbox in state s runs (or is being started) on the node:
// it holds an address slot and counts against its team's quota. A paused sandbox is
// neither live nor terminal: it holds only disk.
func (s SandboxState) Live() bool { return s == StateStarting || s == StateRunning }

// Lifecycle says what happens to a sandbox at its timeout, and to a paused one when
// traffic comes for it.
type Lifecycle struct {
	// OnTimeout is OnTimeoutKill ("" means the same) or OnTimeoutPause.
	OnTimeout string
	// AutoResume makes a request through the proxy to the paused sandbox resume it.
	AutoResume bool
}

// Lifecycle OnTimeout values.
const (
	OnTimeoutKill  = "kill"
	OnTimeoutPause = "pause"
)

// Limits are the resources a sandbox may use. Zero means "use the configured default".
type Limits struct {
	CPUCores     float64 `json:"cpu_cores"`
	MemoryMB     int64   `json:"memory_mb"`
	DiskMB       int64   `json:"disk_mb"`
	MaxProcesses int64   `json:"max_processes"`
}

// Sandbox is one isolated environment. Runtime holds the driver's persisted handle so a
// restarted server can re-attach to it.
type Sandbox struct {
	ID         string
	TeamID     string
	TemplateID string
	State      SandboxState
	// EndReason says why a terminal sandbox ended: "killed", "timeout", "lost", "error: ...".
	EndReason string
	Metadata  map[string]string
	Env       map[string]string
	Limits    Limits
	Internet  bool
	// Network is the sandbox's egress policy (normalised; zero = internet access alone
	// decides). With Internet false, its allow entries still pass (see WithInternet).
	Network     NetworkPolicy
	RuntimeName string
	// RuntimeHandle is the driver's opaque, persisted handle (JSON).
	RuntimeHandle []byte
	// Address is the sandbox's IP address on its private link ("" before it runs).
	Address string
	// Slot is the index of the sandbox's address block in the node's address pool.
	Slot int
	// AccessToken authenticates calls to the in-sandbox agent.
	AccessToken string
	// TrafficToken, when set, must accompany every request the proxy routes to the
	// sandbox's ports (E2B's allowPublicTraffic: false); "" means public.
	TrafficToken string
	CreatedAt    time.Time
	StartedAt    time.Time
	EndsAt       time.Time
	StoppedAt    time.Time
	// Lifecycle is fixed at creation.
	Lifecycle Lifecycle
	// PausedAt is when the sandbox was last paused (zero if never); a paused sandbox
	// is deleted once it has been paused for the server's paused retention.
	PausedAt time.Time
	// Node names the node the sandbox was created on ("" for sandboxes older than the
	// node table); fixed at creation.
	Node string
}

// Team owns API keys and sandboxes; tenants never see each other's things.
type Team struct {
	ID        string
	Name      string
	CreatedAt time.Time
	// Quota caps the team's sandboxes and request rate (zero fields: no limit).
	Quota Quota
	// PlanID names the pricing plan the team is billed on ("" = the server's default plan).
	PlanID string
	// SpendLimit, a decimal amount in the plan's currency ("" = none), stops new
	// sandboxes once the current billing period's charges reach it.
	SpendLimit string
	// AllowedRuntimes limits the team's sandboxes to these runtimes (by name, e.g.
	// "gvisor"); empty allows every runtime the server enables.
	AllowedRuntimes []string
}

// APIKey is a team's credential. Only the SHA-256 hash of the secret is stored; Prefix is
// a short non-secret part shown in listings so people can tell keys apart.
type APIKey struct {
	ID     string
	TeamID string
	Name   string
	Prefix string
	Hash   string
	// Admin keys are platform administrators: they manage every team (the bootstrap key).
	Admin bool
	// Scopes limit what the key may do inside its team (see Scope).
	Scopes []Scope
	// UserID is the user who created the key, "" when a key or the system did. A key
	// made with a user's key keeps that user.
	UserID     string
	CreatedAt  time.Time
	LastUsedAt time.Time
	RevokedAt  time.Time
	// ExpiresAt, when set, is when the key stops working.
	ExpiresAt time.Time
	// Creator is the user UserID as that user is now, read with the key (stores ignore
	// it on create): nil when UserID is "" or the user no longer exists. A key works
	// only while its creator exists and is not disabled, and only within the creator's
	// current role.
	Creator *KeyCreator
}

// KeyCreator is what authentication needs to know of a key's creating user.
type KeyCreator struct {
	Role       Role
	DisabledAt time.Time
}

// Template is a root filesystem recipe that sandboxes start from.
type Template struct {
	ID string
	// TeamID owns a built template; "" is a built-in that every team sees.
	TeamID      string
	Description string
	// Hash identifies the recipe; the built root filesystem is cached under it.
	Hash      string
	RootFS    string
	Ready     bool
	BuiltAt   time.Time
	SizeBytes int64
	// StartCmd is started by the agent at boot in every sandbox of the template.
	StartCmd string
	// ReadyPort, when set, is a port whose GET /health must answer 2xx before a new
	// sandbox of the template is handed out (its start command's server).
	ReadyPort int
	// PrivatePorts are the ports of the template's own services that are not meant to be
	// public (the code interpreter's 49999, which runs any code it is sent): the proxy
	// forwards a request to them only with the sandbox's access token (X-Access-Token) or
	// its traffic token (E2B-Traffic-Access-Token), whatever allowPublicTraffic says.
	PrivatePorts []int
	// Env, Workdir and User are what a built template's sandboxes start with (its
	// build's ENV, WORKDIR and USER steps); ReadyCheck says when its StartCmd is ready.
	Env        map[string]string
	Workdir    string
	User       string
	ReadyCheck ReadyCheck
	// Limits are what a sandbox of a built template gets when it asks for none: CPUCores
	// and MemoryMB, each zero for the server's default (E2B's cpuCount and memoryMB).
	Limits Limits
	// CreatedAt is when a team's template was first registered (zero for built-ins).
	CreatedAt time.Time
}

// AnyTeam, as the team of a store lookup or filter, means every team. It is for the
// server's own work (recovery, sweeps, the proxy's routing); a tenant's request always
// names its team. An empty team id is refused (KindInvalid), so a team that was
// forgotten on the way never widens a query to every tenant's rows.
const AnyTeam = "*"

// SandboxFilter selects sandboxes in a listing. TeamID is required (a team, or AnyTeam);
// the other empty fields match everything.
type SandboxFilter struct {
	TeamID   string
	States   []SandboxState
	Metadata map[string]string
	// TemplateID matches one template; CreatedAfter keeps sandboxes created at or after it.
	TemplateID   string
	CreatedAfter time.Time
	// Nodes, when set, keeps the sandboxes of these nodes ("" matches rows without one).
	Nodes []string
	// Ascending pages oldest first (default newest first).
	Ascending bool
	// Cursor is the opaque position from a previous page; Limit caps the page (0 = default).
	Cursor string
	Limit  int
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// NewID returns a random n-character id over [a-z0-9]. Sandbox ids use n=20: DNS-label
// safe and without '-', so they survive the <port>-<id>.<domain> host scheme.
func NewID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	for i := range b {
		// 256 % 36 != 0 gives a tiny bias; ids need uniqueness, not uniformity.
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

// ValidSandboxID reports whether id has the shape of a sandbox id.
func ValidSandboxID(id string) bool {
	if len(id) != 20 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// PoolStats describes one template's warm pool on this node: sandboxes started ahead of
// any request, unowned, which a create of that template with the pool's profile (the
// node's default runtime and limits) takes instead of starting one.
type PoolStats struct {
	TemplateID string
	// Size is how many members the pool keeps; Ready how many wait now; Starting is 1
	// while one is being started.
	Size, Ready, Starting int
	// Claims counts creates served by a member; Misses creates of the template that
	// started cold because no member was ready or the request did not fit the
	// profile; Failures members that could not be started or could not take a
	// claim's identity (the claim then started cold).
	Claims, Misses, Failures int64
}
