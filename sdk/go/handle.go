package warren

import (
	"context"
	"strconv"
)

// CommandHandle is a command started with Start, running in the background. Its output
// is read by a goroutine of its own until the command ends or Disconnect is called.
type CommandHandle struct {
	// PID is the command's process id inside the sandbox (also its process group id).
	PID int

	cmds   *Commands
	st     *cmdStream
	cancel context.CancelFunc
	allow  bool
	done   chan struct{}
	res    *CommandResult // set before done is closed
	err    error
}

// Start starts a shell command line (with bash -l -c) and returns once it runs,
// without waiting for it. ctx bounds only the start: the command and the handle's
// stream live on after ctx ends (until the command ends, its Timeout passes, Kill, or
// Disconnect). Errors before the command runs (unknown sandbox, bad user) are returned
// here.
func (c *Commands) Start(ctx context.Context, cmd string, opts RunOptions) (*CommandHandle, error) {
	return c.start(ctx, execWire{Cmd: cmd}, opts)
}

// StartArgs is Start for a program and its arguments, run directly without a shell.
func (c *Commands) StartArgs(ctx context.Context, args []string, opts RunOptions) (*CommandHandle, error) {
	return c.start(ctx, execWire{Args: args}, opts)
}

func (c *Commands) start(ctx context.Context, w execWire, opts RunOptions) (*CommandHandle, error) {
	// The stream must outlive ctx; ctx may only abort the start.
	streamCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	st, err := c.open(streamCtx, w, opts)
	if err == nil {
		err = st.readStart(streamCtx)
		if err != nil {
			st.close()
		}
	}
	if !stop() {
		// ctx ended during the start: report that rather than the closed stream.
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
	h := &CommandHandle{PID: st.pid, cmds: c, st: st, cancel: cancel, allow: opts.AllowNonZeroExit, done: make(chan struct{})}
	go h.follow(streamCtx)
	return h, nil
}

// follow reads the stream to its end.
func (h *CommandHandle) follow(ctx context.Context) {
	defer close(h.done)
	defer h.cancel()
	defer h.st.close()
	h.res, h.err = h.st.readToEnd(ctx)
	if h.err == nil {
		h.err = exitError(h.res, h.allow)
	}
}

// Done is closed when the command ended, or the handle stopped following it.
func (h *CommandHandle) Done() <-chan struct{} { return h.done }

// Wait waits for the command to end and returns its result, like Run (a non-zero
// exit returns the result and a *CommandExitError). If ctx ends first, Wait returns
// ctx's error and the command keeps running.
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

// killGroup SIGKILLs the process group $1 (the command and its children), or the
// process alone if it leads no group. Exit status 1: nothing was running.
const killGroup = `kill -KILL -- "-$1" 2>/dev/null || kill -KILL -- "$1" 2>/dev/null`

// Kill kills the command and its children (SIGKILL to its process group) and waits
// until the handle saw it end. Killing a command that already ended does nothing.
//
// The /v1 API has no call to signal a process, so Kill runs kill(1) as root in the
// sandbox.
func (h *CommandHandle) Kill(ctx context.Context) error {
	select {
	case <-h.done:
		return nil
	default:
	}
	_, err := h.cmds.RunArgs(ctx, []string{"/bin/bash", "-c", killGroup, "warren", strconv.Itoa(h.PID)},
		RunOptions{User: "root", AllowNonZeroExit: true})
	if err != nil {
		return err
	}
	select {
	case <-h.done:
		return nil
	case <-ctx.Done():
		return transportError(ctx, ctx.Err())
	}
}

// Disconnect stops following the command and closes the stream; the command keeps
// running in the sandbox (until it ends or its Timeout passes). Wait then returns an
// error unless the command had already ended.
func (h *CommandHandle) Disconnect() {
	h.cancel()
	<-h.done
}
