package warren

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxStdin is the most RunOptions.Stdin may hold: standard input given up front travels
// inside the JSON request, which the server caps at 1 MiB. For more, start the command
// with StdinOpen and feed it with CommandHandle.SendStdin, or write a file with
// Files().Write and redirect from it.
const MaxStdin = 512 << 10

// RunOptions configure one command. Zero fields mean the server's defaults.
type RunOptions struct {
	// Env adds environment variables.
	Env map[string]string
	// Cwd is the working directory.
	Cwd string
	// User runs the command as this user (default: the template's user).
	User string
	// Stdin is read to the end (at most MaxStdin bytes) and given to the command as its
	// standard input, which is then closed (unless StdinOpen).
	Stdin io.Reader
	// StdinOpen (Start only) keeps the command's standard input open after Stdin, for
	// CommandHandle.SendStdin and CloseStdin.
	StdinOpen bool
	// Timeout kills the command after this long (rounded up to whole seconds); Run and
	// Wait then return a *CommandTimeoutError. For Run, zero means the time left until
	// ctx's deadline, if it has one, so the command does not outlive the call; else the
	// server's default (10 minutes unless configured). For Start, zero means no limit:
	// the command runs until it exits, is killed, or its sandbox ends.
	Timeout time.Duration
	// OnStdout and OnStderr receive output chunks as they arrive, in order, from the
	// goroutine reading the stream (for Start: a goroutine of the handle's own). The
	// slice is not retained.
	OnStdout, OnStderr func([]byte)
	// AllowNonZeroExit makes a non-zero exit (or a signal) a plain result instead of a
	// *CommandExitError. A timeout is still a *CommandTimeoutError.
	AllowNonZeroExit bool
}

// CommandResult is how a command ended, with its output (exact bytes): the whole output
// for Run, what arrived while the handle followed it for a CommandHandle.
type CommandResult struct {
	// PID is the process id inside the sandbox.
	PID      int    `json:"pid"`
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	// Error says how the command ended when not cleanly, e.g. "exit status 1",
	// "signal: killed" or "command timed out after 5s and was killed" (with ExitCode
	// -1).
	Error string `json:"error,omitempty"`
	// TimedOut is true when the command was killed at its Timeout; ExitCode is then -1.
	TimedOut bool `json:"timed_out,omitempty"`
}

// execWire is the request body of POST /v1/sandboxes/{id}/commands.
type execWire struct {
	Cmd         string            `json:"cmd,omitempty"`
	Args        []string          `json:"args,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Cwd         string            `json:"cwd,omitempty"`
	User        string            `json:"user,omitempty"`
	Stdin       *string           `json:"stdin,omitempty"`
	StdinBase64 *string           `json:"stdin_base64,omitempty"`
	Timeout     int64             `json:"timeout,omitempty"`
	Stream      bool              `json:"stream,omitempty"`
	Background  bool              `json:"background,omitempty"`
	StdinOpen   bool              `json:"stdin_open,omitempty"`
}

type execStartWire struct {
	PID int `json:"pid"`
}

type execOutputWire struct {
	Data string `json:"data"`
}

type execEndWire struct {
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error"`
	TimedOut bool   `json:"timed_out"`
}

// Commands runs commands in a sandbox and manages its processes; get it with
// Sandbox.Commands.
type Commands struct {
	s *Sandbox
}

// Commands returns the sandbox's command runner.
func (s *Sandbox) Commands() *Commands { return &Commands{s: s} }

// Run runs a shell command line (with /bin/bash -c) and waits for it. Output goes to
// the callbacks as it arrives and is also returned whole.
//
// How it ended decides the error, which comes with the result in every case but the
// first (as exec.Cmd.Output does):
//   - exit code 0: a nil error;
//   - killed at its Timeout: a *CommandTimeoutError (matching ErrTimeout) holding the
//     result with the output until then, even with AllowNonZeroExit;
//   - a non-zero exit or a signal: a *CommandExitError, unless opts.AllowNonZeroExit.
//
// If ctx ends first, Run returns its error and no result; the command then runs on
// until it ends or its Timeout passes (which, unless given, is ctx's deadline). Use
// Start and Kill to stop a command at will.
func (c *Commands) Run(ctx context.Context, cmd string, opts RunOptions) (*CommandResult, error) {
	return c.run(ctx, execWire{Cmd: cmd}, opts)
}

// RunArgs is Run for a program and its arguments, run directly without a shell.
func (c *Commands) RunArgs(ctx context.Context, args []string, opts RunOptions) (*CommandResult, error) {
	return c.run(ctx, execWire{Args: args}, opts)
}

func (c *Commands) run(ctx context.Context, w execWire, opts RunOptions) (*CommandResult, error) {
	if opts.StdinOpen {
		return nil, fmt.Errorf("warren: RunOptions.StdinOpen applies to Start only: Run takes its input from Stdin")
	}
	opts.Timeout = timeoutFromDeadline(ctx, opts.Timeout)
	if err := w.setOptions(opts); err != nil {
		return nil, err
	}
	w.Stream = true
	resp, err := c.s.c.send(ctx, request{route: routeExecCommand, params: []string{c.s.ID}, json: w, accept: "text/event-stream"})
	if err != nil {
		return nil, err
	}
	st, err := newCmdStream(resp, opts.OnStdout, opts.OnStderr)
	if err != nil {
		return nil, err
	}
	defer st.close()
	res, err := st.readToEnd(ctx)
	if err != nil {
		return nil, err
	}
	return res, endError(res, opts.AllowNonZeroExit)
}

// setOptions copies opts into the request, reading Stdin.
func (w *execWire) setOptions(opts RunOptions) error {
	w.Env, w.Cwd, w.User, w.Timeout = opts.Env, opts.Cwd, opts.User, seconds(opts.Timeout)
	if opts.Stdin == nil {
		return nil
	}
	in, err := io.ReadAll(io.LimitReader(opts.Stdin, MaxStdin+1))
	if err != nil {
		return fmt.Errorf("warren: reading the command's stdin: %w", err)
	}
	if len(in) > MaxStdin {
		return fmt.Errorf("warren: stdin is larger than %d KiB: start the command with StdinOpen and use SendStdin, or write it to a file with Files().Write and redirect from it", MaxStdin>>10)
	}
	w.Stdin, w.StdinBase64 = textOrBase64(in)
	return nil
}

// textOrBase64 returns data as a JSON string when it is valid UTF-8, else base64
// (JSON strings cannot carry arbitrary bytes).
func textOrBase64(data []byte) (text, b64 *string) {
	if utf8.Valid(data) {
		s := string(data)
		return &s, nil
	}
	s := base64.StdEncoding.EncodeToString(data)
	return nil, &s
}

// maxTimeout is the longest timeout the API accepts.
const maxTimeout = 24 * time.Hour

// timeoutFromDeadline returns d, or when d is zero the time left until ctx's deadline
// (at least a second), so that the server stops the work when the caller stops
// waiting. A deadline beyond the API's maximum leaves the server's default.
func timeoutFromDeadline(ctx context.Context, d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left <= maxTimeout {
			return max(left, time.Second)
		}
	}
	return 0
}

// endError is the error that goes with a command's result: a timeout, else a non-zero
// exit unless allowed.
func endError(res *CommandResult, allow bool) error {
	switch {
	case res.TimedOut:
		return &CommandTimeoutError{CommandResult: res}
	case allow || (res.ExitCode == 0 && res.Error == ""):
		return nil
	}
	return &CommandExitError{CommandResult: res}
}

// cmdStream reads one command's events: the answer of a streamed POST .../commands or
// of GET .../processes/{pid}/events. The output buffers are guarded by mu because a
// handle's Stdout and Stderr read them while its goroutine writes.
type cmdStream struct {
	resp               *http.Response
	sse                *sseReader
	onStdout, onStderr func([]byte)
	pid                int
	started            bool
	result             *CommandResult
	failed             bool // an error event ended the stream

	mu             sync.Mutex
	stdout, stderr bytes.Buffer
}

// newCmdStream checks that resp is an event stream and wraps it; it closes resp if not.
func newCmdStream(resp *http.Response, onStdout, onStderr func([]byte)) (*cmdStream, error) {
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, fmt.Errorf("warren: the server answered with %q, not an event stream", ct)
	}
	return &cmdStream{resp: resp, sse: newSSEReader(resp.Body), onStdout: onStdout, onStderr: onStderr}, nil
}

// close ends the stream. After the end or error event, which end the server's
// stream, the rest is read first so that the connection is reused.
func (st *cmdStream) close() {
	if st.result != nil || st.failed {
		drain(st.resp.Body)
	}
	st.resp.Body.Close()
}

// readStart reads up to the start event, which the server sends first.
func (st *cmdStream) readStart(ctx context.Context) error {
	for !st.started && st.result == nil {
		if err := st.step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// readToEnd reads the rest of the stream and returns how the command ended.
func (st *cmdStream) readToEnd(ctx context.Context) (*CommandResult, error) {
	for st.result == nil {
		if err := st.step(ctx); err != nil {
			return nil, err
		}
	}
	return st.result, nil
}

// step handles one event; after the end event, result is set.
func (st *cmdStream) step(ctx context.Context) error {
	ev, err := st.sse.next()
	if err == io.EOF {
		return fmt.Errorf("warren: the command's stream ended before the command did: %w", io.ErrUnexpectedEOF)
	}
	if err != nil {
		return fmt.Errorf("warren: reading the command's output: %w", transportError(ctx, err))
	}
	switch ev.name {
	case "start":
		var v execStartWire
		if err := json.Unmarshal(ev.data, &v); err != nil {
			return fmt.Errorf("warren: bad start event: %w", err)
		}
		st.pid, st.started = v.PID, true
	case "stdout", "stderr":
		var v execOutputWire
		if err := json.Unmarshal(ev.data, &v); err != nil {
			return fmt.Errorf("warren: bad %s event: %w", ev.name, err)
		}
		data, err := base64.StdEncoding.DecodeString(v.Data)
		if err != nil {
			return fmt.Errorf("warren: bad %s data: %w", ev.name, err)
		}
		st.output(ev.name == "stderr", data)
	case "end":
		var v execEndWire
		if err := json.Unmarshal(ev.data, &v); err != nil {
			return fmt.Errorf("warren: bad end event: %w", err)
		}
		st.mu.Lock()
		st.result = &CommandResult{PID: st.pid, ExitCode: v.ExitCode, Error: v.Error, TimedOut: v.TimedOut,
			Stdout: st.stdout.String(), Stderr: st.stderr.String()}
		st.mu.Unlock()
	case "error":
		st.failed = true
		return st.streamError(ev.data)
	}
	return nil // events of newer servers are skipped
}

func (st *cmdStream) output(stderr bool, data []byte) {
	st.mu.Lock()
	if stderr {
		st.stderr.Write(data)
	} else {
		st.stdout.Write(data)
	}
	st.mu.Unlock()
	cb := st.onStdout
	if stderr {
		cb = st.onStderr
	}
	if cb != nil {
		cb(data)
	}
}

// streamError turns an error event into an *APIError: the stream broke (code
// unavailable), or the sandbox stopped under the command (code conflict).
func (st *cmdStream) streamError(data []byte) error {
	var w errorWire
	if err := json.Unmarshal(data, &w); err != nil || w.Code == "" {
		return fmt.Errorf("warren: bad error event %q", data)
	}
	return newAPIError(w, 0, st.resp.Header.Get("X-Request-Id"), 0, false)
}

// snapshot returns the output received so far.
func (st *cmdStream) snapshot() (stdout, stderr string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.stdout.String(), st.stderr.String()
}
