package domain

import "context"

// TerminalRequest opens an interactive terminal (a process on a pseudo-terminal) in a
// sandbox. Zero values mean "default".
type TerminalRequest struct {
	// Cols and Rows are the initial window size (80x24).
	Cols, Rows uint32
	// Cmd is a shell command line run by the login shell (`bash -l -c Cmd`); "" runs
	// the interactive login shell itself.
	Cmd string
	// User is "user" (the default) or "root".
	User string
	// Env is added to the process's environment (TERM and LANG have defaults).
	Env map[string]string
}

// Terminal is a running terminal session. Read and Write may be used from two
// goroutines at once; neither may be used by two at once.
type Terminal interface {
	// Read reads the terminal's output. After the process ended and every byte of its
	// output was read, it returns io.EOF.
	Read(p []byte) (int, error)
	// Write sends keystrokes (bytes for the terminal's input).
	Write(p []byte) (int, error)
	// Resize changes the window size.
	Resize(ctx context.Context, cols, rows uint32) error
	// Wait blocks until the process ended and returns its exit code (-1 when a signal
	// killed it). An error means the session broke before the end was known.
	Wait(ctx context.Context) (int, error)
	// Close ends the session, killing the process if it still runs.
	Close() error
}

// TerminalService opens terminals in sandboxes. It is scoped like SandboxService
// (another team's sandbox is not found) and needs the sandboxes:write scope.
type TerminalService interface {
	OpenTerminal(ctx context.Context, p Principal, id string, req TerminalRequest) (Terminal, error)
}

// LogService reads a sandbox's own log (its agent's: processes started and ended...):
// the entries written so far, or following it as it is written. Needs the
// sandboxes:read scope; a sandbox that has ended has no log left.
type LogService interface {
	// Logs returns entries of the sandbox's own log.
	Logs(ctx context.Context, p Principal, id string, q LogQuery) ([]LogEntry, error)
	LogFollower
}

// LogFollower streams a sandbox's own log as it is written (the console's live log
// view). Needs the sandboxes:read scope.
type LogFollower interface {
	// FollowLogs calls onEntry for every entry matching q (Start, Level, Search; Limit
	// and Backward are ignored), first those already written, then new ones as they
	// come. It returns nil when the sandbox has ended (or already had), ctx's error when
	// ctx ends, and onEntry's error if it fails.
	FollowLogs(ctx context.Context, p Principal, id string, q LogQuery, onEntry func(LogEntry) error) error
}
