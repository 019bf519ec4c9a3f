package warren

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxStdin is the most RunOptions.Stdin may hold: standard input travels inside the
// JSON request, which the server caps at 1 MiB. Write larger input to a file with
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
	// standard input, which is then closed.
	Stdin io.Reader
	// Timeout kills the command after this long (rounded up to whole seconds); the
	// command then ends with an error matching ErrTimeout. For Run, zero means the time
	// left until ctx's deadline, if it has one, so the command does not outlive the
	// call; else the server's default.
	Timeout time.Duration
	// OnStdout and OnStderr receive output chunks as they arrive, in order, from the
	// goroutine reading the stream (for Start: a goroutine of the handle's own). The
	// slice is not retained.
	OnStdout, OnStderr func([]byte)
	// AllowNonZeroExit makes a non-zero exit (or a signal) a plain result instead of a
	// *CommandExitError.
	AllowNonZeroExit bool
}

// CommandResult is how a command ended, with its whole output (exact bytes).
type CommandResult struct {
	// PID is the process id inside the sandbox.
	PID      int    `json:"pid"`
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	// Error says how the command ended when not cleanly, e.g. "exit status 1" or
	// "signal: killed" (with ExitCode -1).
	Error string `json:"error,omitempty"`
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
}

// Commands runs commands in a sandbox; get it with Sandbox.Commands.
type Commands struct {
	s *Sandbox
}

// Commands returns the sandbox's command runner.
func (s *Sandbox) Commands() *Commands { return &Commands{s: s} }

// Run runs a shell command line (with bash -l -c) and waits for it. Output goes to
// the callbacks as it arrives and is also returned whole. A non-zero exit (or a
// signal) returns the result together with a *CommandExitError holding it, as
// exec.Cmd.Output does, unless opts.AllowNonZeroExit is set.
//
// If ctx ends first, Run returns its error; the command then runs on until it ends or
// its Timeout passes (which, unless given, is ctx's deadline). Use Start and Kill to
// stop a command at will.
func (c *Commands) Run(ctx context.Context, cmd string, opts RunOptions) (*CommandResult, error) {
	return c.run(ctx, execWire{Cmd: cmd}, opts)
}

// RunArgs is Run for a program and its arguments, run directly without a shell.
func (c *Commands) RunArgs(ctx context.Context, args []string, opts RunOptions) (*CommandResult, error) {
	return c.run(ctx, execWire{Args: args}, opts)
}

func (c *Commands) run(ctx context.Context, w execWire, opts RunOptions) (*CommandResult, error) {
	opts.Timeout = timeoutFromDeadline(ctx, opts.Timeout)
	st, err := c.open(ctx, w, opts)
	if err != nil {
		return nil, err
	}
	defer st.close()
	if err := st.readStart(ctx); err != nil {
		return nil, err
	}
	res, err := st.readToEnd(ctx)
	if err != nil {
		return nil, err
	}
	return res, exitError(res, opts.AllowNonZeroExit)
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

func exitError(res *CommandResult, allow bool) error {
	if allow || (res.ExitCode == 0 && res.Error == "") {
		return nil
	}
	return &CommandExitError{CommandResult: res}
}

// open sends the command and returns its event stream.
func (c *Commands) open(ctx context.Context, w execWire, opts RunOptions) (*cmdStream, error) {
	w.Env, w.Cwd, w.User, w.Timeout, w.Stream = opts.Env, opts.Cwd, opts.User, seconds(opts.Timeout), true
	if opts.Stdin != nil {
		in, err := io.ReadAll(io.LimitReader(opts.Stdin, MaxStdin+1))
		if err != nil {
			return nil, fmt.Errorf("warren: reading the command's stdin: %w", err)
		}
		if len(in) > MaxStdin {
			return nil, fmt.Errorf("warren: stdin is larger than %d KiB: write it to a file with Files().Write and redirect from it", MaxStdin>>10)
		}
		// JSON strings cannot carry arbitrary bytes; those go base64-encoded.
		if utf8.Valid(in) {
			s := string(in)
			w.Stdin = &s
		} else {
			s := base64.StdEncoding.EncodeToString(in)
			w.StdinBase64 = &s
		}
	}
	resp, err := c.s.c.send(ctx, request{route: routeExecCommand, params: []string{c.s.ID}, json: w, accept: "text/event-stream"})
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, fmt.Errorf("warren: the server answered the command with %q, not an event stream", ct)
	}
	return &cmdStream{resp: resp, sse: newSSEReader(resp.Body), opts: opts}, nil
}

// cmdStream reads one command's events. The output buffers are guarded by mu because a
// handle's Stdout and Stderr read them while its goroutine writes.
type cmdStream struct {
	resp    *http.Response
	sse     *sseReader
	opts    RunOptions
	pid     int
	started bool
	result  *CommandResult
	failed  bool // an error event ended the stream

	mu             sync.Mutex
	stdout, stderr bytes.Buffer
}

// close ends the stream. After the end or error event, which end the server's
// stream, the rest is read first so that the connection is reused.
func (st *cmdStream) close() {
	if st.result != nil || st.failed {
		drain(st.resp.Body)
	}
	st.resp.Body.Close()
}

// readStart reads up to the start event, which the server sends first, so that a
// handle knows its PID and errors before the command runs are returned by Start.
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
		st.result = &CommandResult{PID: st.pid, ExitCode: v.ExitCode, Error: v.Error, Stdout: st.stdout.String(), Stderr: st.stderr.String()}
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
	cb := st.opts.OnStdout
	if stderr {
		cb = st.opts.OnStderr
	}
	if cb != nil {
		cb(data)
	}
}

// streamError turns an error event into an *APIError. A command that ran past its
// timeout is reported as code unavailable with "timed out" in the message (the API has
// no code of its own for it); that error also matches ErrTimeout.
func (st *cmdStream) streamError(data []byte) error {
	var w errorWire
	if err := json.Unmarshal(data, &w); err != nil || w.Code == "" {
		return fmt.Errorf("warren: bad error event %q", data)
	}
	err := newAPIError(w, 0, st.resp.Header.Get("X-Request-Id"), 0, false)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == "unavailable" && strings.Contains(ae.Message, "timed out") {
		ae.timeout = true
	}
	return err
}

// snapshot returns the output received so far.
func (st *cmdStream) snapshot() (stdout, stderr string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.stdout.String(), st.stderr.String()
}
