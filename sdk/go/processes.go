package warren

import (
	"context"
	"strconv"
)

// Signal is a signal the API can send to a process.
type Signal string

// The signals the sandbox agent sends.
const (
	SignalTerm Signal = "TERM"
	SignalKill Signal = "KILL"
)

// ProcessInfo describes a process running in a sandbox: one started through the API
// (a command, a background command, a terminal) or by the sandbox's template.
type ProcessInfo struct {
	// PID is the process id inside the sandbox.
	PID int `json:"pid"`
	// Cmd is the program: /bin/bash for a shell line (Args are then ["-c", line]).
	Cmd  string   `json:"cmd"`
	Args []string `json:"args"`
	Cwd  string   `json:"cwd"`
	// Tag names a special process, e.g. the template's start command.
	Tag string `json:"tag,omitempty"`
}

type processList struct {
	Processes []ProcessInfo `json:"processes"`
}

type stdinWire struct {
	Data       *string `json:"data,omitempty"`
	DataBase64 *string `json:"data_base64,omitempty"`
}

type signalWire struct {
	Signal Signal `json:"signal"`
}

// List returns the processes running in the sandbox.
func (c *Commands) List(ctx context.Context) ([]ProcessInfo, error) {
	var list processList
	if err := c.s.c.call(ctx, request{route: routeListProcesses, params: []string{c.s.ID}}, &list); err != nil {
		return nil, err
	}
	if list.Processes == nil {
		list.Processes = []ProcessInfo{}
	}
	return list.Processes, nil
}

// Kill sends SIGKILL to process pid and its process group. A process that is not
// running is ErrNotFound.
func (c *Commands) Kill(ctx context.Context, pid int) error {
	return c.Signal(ctx, pid, SignalKill)
}

// Signal sends sig (SignalTerm or SignalKill; others are ErrInvalid) to process pid
// and its process group. A process that is not running is ErrNotFound.
func (c *Commands) Signal(ctx context.Context, pid int, sig Signal) error {
	return c.s.c.call(ctx, request{route: routeProcessSignal, params: c.pidParams(pid), json: signalWire{sig}}, nil)
}

// SendStdin writes data to the standard input of process pid, which must have been
// started with RunOptions.StdinOpen (else ErrConflict). Any size works: large data
// goes in pieces of MaxStdin bytes.
func (c *Commands) SendStdin(ctx context.Context, pid int, data []byte) error {
	for len(data) > 0 {
		n := min(len(data), MaxStdin)
		var w stdinWire
		w.Data, w.DataBase64 = textOrBase64(data[:n])
		if err := c.s.c.call(ctx, request{route: routeProcessStdin, params: c.pidParams(pid), json: w}, nil); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// CloseStdin closes the standard input of process pid, which then reads end-of-file.
// Closing it twice is fine.
func (c *Commands) CloseStdin(ctx context.Context, pid int) error {
	return c.s.c.call(ctx, request{route: routeProcessStdinClose, params: c.pidParams(pid)}, nil)
}

func (c *Commands) pidParams(pid int) []string { return []string{c.s.ID, strconv.Itoa(pid)} }
