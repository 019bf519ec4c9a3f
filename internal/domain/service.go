package domain

import (
	"context"
	"io"
	"time"
)

// Principal is the authenticated caller of an API request.
type Principal struct {
	TeamID string
	KeyID  string
	Admin  bool
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
}

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

// SandboxService is what the API edges (REST /v1, E2B, CLI) call. Every method is scoped
// to the principal's team: another team's sandbox is reported as not found.
type SandboxService interface {
	Create(ctx context.Context, p Principal, req CreateSandbox) (*Sandbox, error)
	Get(ctx context.Context, p Principal, id string) (*Sandbox, error)
	List(ctx context.Context, p Principal, f SandboxFilter) ([]*Sandbox, string, error)
	Kill(ctx context.Context, p Principal, id string) error
	// SetTimeout makes the sandbox end `d` from now.
	SetTimeout(ctx context.Context, p Principal, id string, d time.Duration) (*Sandbox, error)
	// Connect returns a running sandbox and makes sure it lives at least d more; it never
	// shortens its life. A sandbox that is not running is KindNotFound.
	Connect(ctx context.Context, p Principal, id string, d time.Duration) (*Sandbox, error)
	// Metrics reads the sandbox's current CPU, memory and disk use from inside it.
	Metrics(ctx context.Context, p Principal, id string) (*SandboxMetrics, error)
	// Logs returns entries of the sandbox's own log.
	Logs(ctx context.Context, p Principal, id string, q LogQuery) ([]LogEntry, error)
	// Exec runs a command; onEvent (may be nil) sees output as it arrives. The returned
	// result holds the whole output as well.
	Exec(ctx context.Context, p Principal, id string, req ExecRequest, onEvent func(ExecEvent) error) (*ExecResult, error)
	// WriteFile creates or truncates path (parents are created) with the content of r.
	WriteFile(ctx context.Context, p Principal, id, path, user string, r io.Reader) (*FileInfo, error)
	// ReadFile streams path's content to w.
	ReadFile(ctx context.Context, p Principal, id, path, user string, w io.Writer) error
	ListFiles(ctx context.Context, p Principal, id, path, user string, depth int) ([]FileInfo, error)
	Templates(ctx context.Context) ([]*Template, error)
}

// KeyService manages API keys for the API edges.
type KeyService interface {
	// Authenticate resolves a presented secret ("sk_...") to its principal.
	Authenticate(ctx context.Context, secret string) (Principal, error)
	// CreateKey makes a key for the principal's team and returns it with its secret,
	// which is shown this once and never stored.
	CreateKey(ctx context.Context, p Principal, name string) (*APIKey, string, error)
	ListKeys(ctx context.Context, p Principal) ([]*APIKey, error)
	RevokeKey(ctx context.Context, p Principal, id string) error
}
