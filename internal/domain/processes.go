package domain

import (
	"context"
	"io"
)

// BackgroundRequest starts a command that keeps running after the call returns.
type BackgroundRequest struct {
	// Exec is the command. Its Timeout is the process's lifetime: 0 means none (it runs
	// until it exits, is signalled, or its sandbox ends). Its Stdin, if any, is written
	// once the process started.
	Exec ExecRequest
	// StdinOpen keeps the process's standard input open for SendStdin (and CloseStdin)
	// after Exec.Stdin was written; without it, stdin is closed (or /dev/null).
	StdinOpen bool
}

// ProcessInfo describes a process running in a sandbox.
type ProcessInfo struct {
	PID  uint32
	Cmd  string
	Args []string
	Cwd  string
	// Tag names special processes (e.g. a template's start command); "" for none.
	Tag string
}

// Signals a process can be sent (ProcessService.SignalProcess).
const (
	SignalTerm = "TERM"
	SignalKill = "KILL"
)

// ProcessService runs commands and manages long-running processes inside sandboxes:
// run a command to its end, start one in the background, list, re-attach to the
// output, write stdin, signal. It is scoped like SandboxService (another team's sandbox
// is not found). Listing and attaching need sandboxes:read; everything else needs
// sandboxes:write. A pid that is not running is KindNotFound.
type ProcessService interface {
	// Exec runs a command; onEvent (may be nil) sees output as it arrives. The result
	// holds the output only when onEvent is nil, and then a bounded start of each
	// stream (Truncated says some was dropped): the server never holds all of what a
	// sandbox prints.
	Exec(ctx context.Context, p Principal, id string, req ExecRequest, onEvent func(ExecEvent) error) (*ExecResult, error)
	// StartProcess starts req and returns the process's pid as soon as it runs.
	StartProcess(ctx context.Context, p Principal, id string, req BackgroundRequest) (uint32, error)
	// ListProcesses lists the processes running in the sandbox.
	ListProcesses(ctx context.Context, p Principal, id string) ([]ProcessInfo, error)
	// AttachProcess streams a running process's output through onEvent (a PID event
	// first, then output) and returns how it ended. A background command started
	// through the API is replayed from its start (first 256 KiB and last 768 KiB kept),
	// other processes are followed from now on. The result carries no
	// output. A process that ended moments ago yields its end at once.
	AttachProcess(ctx context.Context, p Principal, id string, pid uint32, onEvent func(ExecEvent) error) (*ExecResult, error)
	// SendStdin writes data to the process's standard input.
	SendStdin(ctx context.Context, p Principal, id string, pid uint32, data []byte) error
	// CloseStdin closes the process's standard input, so that it reads end-of-file.
	CloseStdin(ctx context.Context, p Principal, id string, pid uint32) error
	// SignalProcess sends a signal (SignalTerm or SignalKill) to the process and its
	// process group.
	SignalProcess(ctx context.Context, p Principal, id string, pid uint32, signal string) error
}

// FileService reads and changes files in running sandboxes. It is scoped like
// SandboxService; reading, listing and describing need sandboxes:read, the others
// sandboxes:write.
type FileService interface {
	// WriteFile creates or truncates path (parents are created) with the content of r.
	WriteFile(ctx context.Context, p Principal, id, path, user string, r io.Reader) (*FileInfo, error)
	// ReadFile streams path's content to w.
	ReadFile(ctx context.Context, p Principal, id, path, user string, w io.Writer) error
	ListFiles(ctx context.Context, p Principal, id, path, user string, depth int) ([]FileInfo, error)
	FileOps
}

// FileOps are the file operations beyond reading, writing and listing. They are scoped
// like SandboxService; StatFile needs sandboxes:read, the others sandboxes:write.
// user owns what is created and is the home relative paths start in ("" is the
// sandbox's default user); it is not a permission check: the agent acts as root.
type FileOps interface {
	// StatFile describes path without following a final symlink. A missing path is
	// KindNotFound.
	StatFile(ctx context.Context, p Principal, id, path, user string) (*FileInfo, error)
	// MakeDir creates path and its parents (mkdir -p). created is false when the
	// directory already existed; a non-directory in the way is KindConflict.
	MakeDir(ctx context.Context, p Principal, id, path, user string) (fi *FileInfo, created bool, err error)
	// MovePath renames from to to, creating to's parents, and describes to.
	MovePath(ctx context.Context, p Principal, id, from, to, user string) (*FileInfo, error)
	// RemovePath deletes a file or a directory tree. A missing path is KindNotFound.
	RemovePath(ctx context.Context, p Principal, id, path, user string) error
}
