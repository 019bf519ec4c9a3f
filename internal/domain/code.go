package domain

import (
	"context"
	"encoding/json"
	"time"
)

// RunCode is one cell to execute in a sandbox's code interpreter.
type RunCode struct {
	Code string
	// Language picks the language's default context (python, javascript, bash...);
	// ContextID picks a context created earlier. Give at most one.
	Language  string
	ContextID string
	// Env is set for this execution only.
	Env map[string]string
	// Timeout interrupts the cell (not the kernel) after this long; 0 means the default.
	Timeout time.Duration
}

// CodeEvent is one line of the code interpreter's NDJSON stream, as sent by the
// interpreter (E2B's /execute protocol): Type is stdout, stderr, result, error,
// number_of_executions, end_of_execution or unexpected_end_of_execution; Raw is the
// whole line.
type CodeEvent struct {
	Type string
	Raw  json.RawMessage
}

// CodeContext is an interpreter context: a kernel with its own state.
type CodeContext struct {
	ID       string `json:"id"`
	Language string `json:"language"`
	Cwd      string `json:"cwd"`
}

// CodeService runs code in a sandbox's code interpreter (templates that have one).
// Scoped to the principal's team like SandboxService.
type CodeService interface {
	// RunCode streams the execution's events to onEvent as they come.
	RunCode(ctx context.Context, p Principal, id string, req RunCode, onEvent func(CodeEvent) error) error
	CreateCodeContext(ctx context.Context, p Principal, id, language, cwd string) (*CodeContext, error)
	ListCodeContexts(ctx context.Context, p Principal, id string) ([]CodeContext, error)
	RestartCodeContext(ctx context.Context, p Principal, id, contextID string) error
	DeleteCodeContext(ctx context.Context, p Principal, id, contextID string) error
}
