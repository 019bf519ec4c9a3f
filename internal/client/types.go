package client

import "time"

// Limits are the resources a sandbox may use; zero means the server's default.
type Limits struct {
	CPUCores     float64 `json:"cpu_cores"`
	MemoryMB     int64   `json:"memory_mb"`
	DiskMB       int64   `json:"disk_mb"`
	MaxProcesses int64   `json:"max_processes"`
}

// Sandbox is a sandbox as the API shows it. Times the server omits are zero.
type Sandbox struct {
	ID        string            `json:"id"`
	TeamID    string            `json:"team_id"`
	Template  string            `json:"template"`
	State     string            `json:"state"`
	EndReason string            `json:"end_reason,omitempty"`
	Metadata  map[string]string `json:"metadata"`
	// EnvKeys are the names of the sandbox's environment variables (never the values).
	EnvKeys   []string  `json:"env_keys"`
	Internet  bool      `json:"internet"`
	Limits    Limits    `json:"limits"`
	Runtime   string    `json:"runtime,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	StartedAt time.Time `json:"started_at,omitzero"`
	EndsAt    time.Time `json:"ends_at,omitzero"`
	StoppedAt time.Time `json:"stopped_at,omitzero"`
}

// CreateSandboxRequest starts a sandbox. Zero fields mean the server's defaults.
type CreateSandboxRequest struct {
	Template string
	// Timeout is rounded up to whole seconds.
	Timeout  time.Duration
	Env      map[string]string
	Metadata map[string]string
	// Internet: nil means the default (on).
	Internet *bool
	Limits   Limits
	// Runtime ("gvisor", "runc") and MinIsolation ("container", "sandbox", "microvm")
	// choose the runtime; empty means the server's default.
	Runtime      string
	MinIsolation string
}

// ListSandboxesParams filters a listing. Empty fields match everything.
type ListSandboxesParams struct {
	States   []string
	Metadata map[string]string
	Limit    int
	Cursor   string
}

// ExecRequest runs one command. Set Cmd (a shell line, run by bash -l -c) or Args (argv).
type ExecRequest struct {
	Cmd   string
	Args  []string
	Env   map[string]string
	Cwd   string
	User  string
	Stdin []byte
	// Timeout bounds the command; zero means the server default. Rounded up to seconds.
	Timeout time.Duration
}

// ExecResult is how a command ended. Stdout and Stderr are empty for streamed commands,
// whose output went to the event callback.
type ExecResult struct {
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	Error    string `json:"error,omitempty"`
}

// Event types of a command stream.
const (
	EventStart  = "start"
	EventStdout = "stdout"
	EventStderr = "stderr"
	EventEnd    = "end"
)

// ExecEvent is one event of a command stream: Type says which fields are set.
type ExecEvent struct {
	Type string
	// PID is set for EventStart.
	PID int
	// Data is the raw output for EventStdout and EventStderr.
	Data []byte
	// ExitCode and Error are set for EventEnd.
	ExitCode int
	Error    string
}

// FileInfo describes a file or directory in a sandbox.
type FileInfo struct {
	Name     string    `json:"name"`
	Path     string    `json:"path"`
	Type     string    `json:"type"`
	Size     int64     `json:"size"`
	Mode     uint32    `json:"mode"`
	Owner    string    `json:"owner,omitempty"`
	Group    string    `json:"group,omitempty"`
	Modified time.Time `json:"modified,omitzero"`
}

// Key is an API key without its secret.
type Key struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Prefix     string    `json:"prefix"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	Admin      bool      `json:"admin"`
}

// CreatedKey is a new API key with its secret, which the server shows only once.
type CreatedKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
	Key       string    `json:"key"`
}

// Template is a root filesystem recipe sandboxes start from.
type Template struct {
	ID          string    `json:"id"`
	Description string    `json:"description"`
	Ready       bool      `json:"ready"`
	BuiltAt     time.Time `json:"built_at,omitzero"`
	SizeBytes   int64     `json:"size_bytes"`
}
