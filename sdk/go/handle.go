package warren

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// CommandHandle follows a command running in the background: one started with Start,
// or an existing process joined with Connect. A goroutine of its own reads the
// command's output until it ends or Disconnect is called.
//
// A handle sees the output written after it attached. The API keeps no backlog, so
// what a command started with Start writes in the moment before its handle attaches
// (a few milliseconds) is not seen: use Run when the whole output of a short command
// matters.
type CommandHandle struct {
	// PID is the command's process id inside the sandbox (also its process group id).
	PID int

	cmds         *Commands
	st           *cmdStream
	cancel       context.CancelFunc
	allow        bool
	done         chan struct{}
	disconnected atomic.Bool
	res          *CommandResult // set before done is closed, if the end was seen
	err          error
}

// ConnectOptions configure a handle made by Commands.Connect.
type ConnectOptions struct {
	// OnStdout and OnStderr receive output chunks as they arrive, from the handle's
	// goroutine. The slice is not retained.
	OnStdout, OnStderr func([]byte)
	// AllowNonZeroExit makes Wait return a non-zero exit (or a signal) as a plain
	// result instead of a *CommandExitError.
	AllowNonZeroExit bool
}

// errDisconnected is what Wait returns after Disconnect, unless the end was seen.
var errDisconnected = errors.New("warren: the handle was disconnected from the command, which may still be running")

// Start starts a shell command line (with /bin/bash -c) in the background and returns
// a handle following it, without waiting for it to end. It runs until it exits, is
// killed, its opts.Timeout passes (zero: no limit) or its sandbox ends. ctx bounds only
// the start: the command and the handle live on after ctx ends. Errors before the
// command runs (unknown sandbox, bad user) are returned here. Start either returns a
// handle or leaves nothing running: if the command started but the handle could not
// attach to it, the command is killed.
//
// With opts.StdinOpen, the command's standard input stays open for SendStdin until
// CloseStdin.
func (c *Commands) Start(ctx context.Context, cmd string, opts RunOptions) (*CommandHandle, error) {
	return c.start(ctx, execWire{Cmd: cmd}, opts)
}

// StartArgs is Start for a program and its arguments, run directly without a shell.
func (c *Commands) StartArgs(ctx context.Context, args []string, opts RunOptions) (*CommandHandle, error) {
	return c.start(ctx, execWire{Args: args}, opts)
}

func (c *Commands) start(ctx context.Context, w execWire, opts RunOptions) (*CommandHandle, error) {
	if err := w.setOptions(opts); err != nil {
		return nil, err
	}
	w.Background, w.StdinOpen = true, opts.StdinOpen
	var started execStartWire
	if err := c.s.c.call(ctx, request{route: routeStartCommand, params: []string{c.s.ID}, json: w}, &started); err != nil {
		return nil, err
	}
	h, err := c.attach(ctx, started.PID, opts.OnStdout, opts.OnStderr, opts.AllowNonZeroExit)
	if err != nil {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if kerr := c.Kill(kctx, started.PID); kerr != nil && !errors.Is(kerr, ErrNotFound) {
			return nil, fmt.Errorf("warren: process %d started, but following it failed (%w) and killing it failed too: %w", started.PID, err, kerr)
		}
		return nil, err
	}
	return h, nil
}

// Connect attaches to a process running in the sandbox (see List) and returns a handle
// following its output: for a background command started through the API, everything it printed since it started (the server keeps the first 256 KiB and the last 768 KiB), then what it prints next; for other processes, from now on. A process that ended moments ago (30s) still
// yields its exit; an unknown pid is ErrNotFound. ctx bounds only the attach.
func (c *Commands) Connect(ctx context.Context, pid int, opts ConnectOptions) (*CommandHandle, error) {
	return c.attach(ctx, pid, opts.OnStdout, opts.OnStderr, opts.AllowNonZeroExit)
}

// attach opens the process's event stream, reads its start event and starts following.
func (c *Commands) attach(ctx context.Context, pid int, onStdout, onStderr func([]byte), allow bool) (*CommandHandle, error) {
	// The stream must outlive ctx; ctx may only abort the attach.
	streamCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	st, err := c.openEvents(streamCtx, pid, onStdout, onStderr)
	if err == nil {
		if err = st.readStart(streamCtx); err != nil {
			st.close()
		}
	}
	if !stop() {
		// ctx ended during the attach: report that rather than the closed stream.
		if err == nil {
			st.close()
		}
		cancel()
		return nil, transportError(ctx, ctx.Err())
	}
	if err != nil {
		cancel()
		return nil, err
	}
	h := &CommandHandle{PID: pid, cmds: c, st: st, cancel: cancel, allow: allow, done: make(chan struct{})}
	go h.follow(streamCtx)
	return h, nil
}

func (c *Commands) openEvents(ctx context.Context, pid int, onStdout, onStderr func([]byte)) (*cmdStream, error) {
	resp, err := c.s.c.send(ctx, request{route: routeProcessEvents, params: []string{c.s.ID, strconv.Itoa(pid)}, accept: "text/event-stream"})
	if err != nil {
		return nil, err
	}
	return newCmdStream(resp, onStdout, onStderr)
}

// follow reads the stream to its end.
func (h *CommandHandle) follow(ctx context.Context) {
	defer close(h.done)
	defer h.cancel()
	defer h.st.close()
	res, err := h.st.readToEnd(ctx)
	switch {
	case err == nil:
		h.res, h.err = res, endError(res, h.allow)
	case h.disconnected.Load():
		h.err = errDisconnected
	default:
		h.err = fmt.Errorf("warren: following process %d: %w", h.PID, err)
	}
}

// Done is closed when the command ended, or the handle stopped following it.
func (h *CommandHandle) Done() <-chan struct{} { return h.done }

// Wait waits for the command to end and returns its result, like Run: a timeout
// returns the result and a *CommandTimeoutError, a non-zero exit the result and a
// *CommandExitError (unless allowed). The result's output is what the handle saw. If
// ctx ends first, Wait returns ctx's error and the command keeps running. If the
// handle stopped following (Disconnect, a broken stream, the sandbox stopping: an
// error matching ErrConflict), Wait returns why.
func (h *CommandHandle) Wait(ctx context.Context) (*CommandResult, error) {
	select {
	case <-h.done:
		return h.res, h.err
	case <-ctx.Done():
		return nil, transportError(ctx, ctx.Err())
	}
}

// Stdout returns the standard output received so far.
func (h *CommandHandle) Stdout() string {
	out, _ := h.st.snapshot()
	return out
}

// Stderr returns the standard error received so far.
func (h *CommandHandle) Stderr() string {
	_, errOut := h.st.snapshot()
	return errOut
}

// ended reports whether the handle saw the command end.
func (h *CommandHandle) ended() bool {
	select {
	case <-h.done:
		return h.res != nil
	default:
		return false
	}
}

// Kill kills the command and its process group (SIGKILL) and, if the handle is
// following it, waits until it saw the end. Killing a command that already ended does
// nothing.
func (h *CommandHandle) Kill(ctx context.Context) error {
	if h.ended() {
		return nil
	}
	if err := h.cmds.Kill(ctx, h.PID); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	select {
	case <-h.done:
		return nil
	case <-ctx.Done():
		return transportError(ctx, ctx.Err())
	}
}

// Signal sends sig (SignalTerm or SignalKill) to the command and its process group,
// without waiting for it to end.
func (h *CommandHandle) Signal(ctx context.Context, sig Signal) error {
	return h.cmds.Signal(ctx, h.PID, sig)
}

// SendStdin writes data to the command's standard input; it needs a command started
// with RunOptions.StdinOpen (else ErrConflict).
func (h *CommandHandle) SendStdin(ctx context.Context, data []byte) error {
	return h.cmds.SendStdin(ctx, h.PID, data)
}

// CloseStdin closes the command's standard input, which then reads end-of-file.
func (h *CommandHandle) CloseStdin(ctx context.Context) error {
	return h.cmds.CloseStdin(ctx, h.PID)
}

// Disconnect stops following the command and closes the stream; the command keeps
// running in the sandbox (Connect joins it again). Wait then returns an error unless
// the command had already ended.
func (h *CommandHandle) Disconnect() {
	h.disconnected.Store(true)
	h.cancel()
	<-h.done
}
