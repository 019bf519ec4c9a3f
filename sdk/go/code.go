package warren

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// RunCodeOptions configure one cell. With neither Language nor Context, the default
// Python context runs it.
type RunCodeOptions struct {
	// Language picks that language's default context: python, javascript, typescript,
	// bash, r, java, ...
	Language string
	// Context picks a context made by CreateCodeContext (not with Language).
	Context *CodeContext
	// Env is set for this execution only.
	Env map[string]string
	// Timeout interrupts the cell (the kernel and its state survive), rounded up to
	// whole seconds. Zero means the time left until ctx's deadline, if it has one, else
	// the server's default.
	Timeout time.Duration
	// OnStdout and OnStderr receive output chunks, OnResult each result and OnError the
	// exception, as they arrive and in order. OnEvent receives every line of the
	// stream (after the other callbacks), including types this version does not know.
	OnStdout, OnStderr func(string)
	OnResult           func(*Result)
	OnError            func(*ExecutionError)
	OnEvent            func(CodeEvent)
}

// runCodeWire is the request body of POST /v1/sandboxes/{id}/execute.
type runCodeWire struct {
	Code      string            `json:"code"`
	Language  string            `json:"language,omitempty"`
	ContextID string            `json:"context_id,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Timeout   int64             `json:"timeout,omitempty"`
	Stream    bool              `json:"stream,omitempty"`
}

// Wire shapes of the interpreter's lines, as the SDK reads them (for the drift test:
// decodeCodeLine reads them leniently from a map).
type (
	codeCountLine struct {
		Type           string `json:"type"`
		ExecutionCount int    `json:"execution_count"`
	}
	codeTextLine struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	codeErrorLine struct {
		Type      string `json:"type"`
		Name      string `json:"name"`
		Value     string `json:"value"`
		Traceback string `json:"traceback"`
		// An error event without a type is a failure of the server: an Error body.
		errorWire
	}
	codeEndLine struct {
		Type string `json:"type"`
	}
)

// RunCode runs a cell in the sandbox's code interpreter (templates that have one, such
// as code-interpreter; others answer ErrConflict) and returns what it did. Output is
// streamed to the callbacks as it comes. A cell that raises is not a Go error: see
// Execution.Error.
func (s *Sandbox) RunCode(ctx context.Context, code string, opts RunCodeOptions) (*Execution, error) {
	if opts.Language != "" && opts.Context != nil {
		return nil, fmt.Errorf("warren: RunCode: give Language or Context, not both (a context has its own language)")
	}
	opts.Timeout = timeoutFromDeadline(ctx, opts.Timeout)
	w := runCodeWire{Code: code, Language: opts.Language, Env: opts.Env, Timeout: seconds(opts.Timeout), Stream: true}
	if opts.Context != nil {
		w.ContextID = opts.Context.ID
	}
	resp, err := s.c.send(ctx, request{route: routeRunCode, params: []string{s.ID}, json: w, accept: "text/event-stream"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return nil, fmt.Errorf("warren: the server answered the cell with %q, not an event stream", ct)
	}
	ex := &Execution{Results: []Result{}, Logs: Logs{Stdout: []string{}, Stderr: []string{}}}
	sse := newSSEReader(resp.Body)
	for {
		ev, err := sse.next()
		if err == io.EOF {
			// The stream ends when the cell does; a cut connection is a read error.
			return ex, nil
		}
		if err != nil {
			return nil, fmt.Errorf("warren: reading the cell's output: %w", transportError(ctx, err))
		}
		if ev.name == CodeEventError {
			if err := codeStreamFailure(ev.data, resp.Header.Get("X-Request-Id")); err != nil {
				drain(resp.Body) // the failure ended the stream
				return nil, err
			}
		}
		line, err := decodeCodeLine(ev.name, ev.data)
		if err != nil {
			return nil, fmt.Errorf("warren: bad %s event: %w", ev.name, err)
		}
		ex.apply(line)
		opts.deliver(line)
	}
}

func (o *RunCodeOptions) deliver(ev *CodeEvent) {
	switch {
	case ev.Type == CodeEventStdout && o.OnStdout != nil:
		o.OnStdout(ev.Text)
	case ev.Type == CodeEventStderr && o.OnStderr != nil:
		o.OnStderr(ev.Text)
	case ev.Type == CodeEventResult && o.OnResult != nil:
		o.OnResult(ev.Result)
	case ev.Error != nil && o.OnError != nil:
		o.OnError(ev.Error)
	}
	if o.OnEvent != nil {
		o.OnEvent(*ev)
	}
}

// codeStreamFailure returns the error of an "error" event that reports a failure of
// the server (an Error body: code and message, no type), or nil for the interpreter's
// own error line (the cell raised).
func codeStreamFailure(data []byte, requestID string) error {
	var v struct {
		Type *string `json:"type"`
		errorWire
	}
	if json.Unmarshal(data, &v) != nil || v.Type != nil || v.Code == "" {
		return nil
	}
	return newAPIError(v.errorWire, 0, requestID, 0, false)
}

// CodeContext is a code interpreter context: a kernel with its own state.
type CodeContext struct {
	ID       string `json:"id"`
	Language string `json:"language"`
	Cwd      string `json:"cwd"`
}

// CodeContextOptions describe a context; empty fields mean python and /home/user.
type CodeContextOptions struct {
	Language string
	Cwd      string
}

type codeContextWire struct {
	Language string `json:"language,omitempty"`
	Cwd      string `json:"cwd,omitempty"`
}

type codeContextList struct {
	Contexts []CodeContext `json:"contexts"`
}

// CreateCodeContext starts a new interpreter context.
func (s *Sandbox) CreateCodeContext(ctx context.Context, opts CodeContextOptions) (*CodeContext, error) {
	var out CodeContext
	req := request{route: routeCreateContext, params: []string{s.ID}, json: codeContextWire(opts)}
	if err := s.c.call(ctx, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListCodeContexts lists the sandbox's interpreter contexts.
func (s *Sandbox) ListCodeContexts(ctx context.Context) ([]CodeContext, error) {
	var list codeContextList
	if err := s.c.call(ctx, request{route: routeListContexts, params: []string{s.ID}}, &list); err != nil {
		return nil, err
	}
	if list.Contexts == nil {
		list.Contexts = []CodeContext{}
	}
	return list.Contexts, nil
}

// RestartCodeContext restarts a context's kernel: its state is lost, its id stays.
func (s *Sandbox) RestartCodeContext(ctx context.Context, id string) error {
	return s.c.call(ctx, request{route: routeRestartContext, params: []string{s.ID, id}}, nil)
}

// RemoveCodeContext stops a context's kernel and forgets it.
func (s *Sandbox) RemoveCodeContext(ctx context.Context, id string) error {
	return s.c.call(ctx, request{route: routeDeleteContext, params: []string{s.ID, id}}, nil)
}
