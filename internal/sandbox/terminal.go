package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/domain"
)

// This file holds what the web console's live views need beyond the SandboxService:
// terminals and following the sandbox's log.

var (
	_ domain.TerminalService = (*Service)(nil)
	_ domain.LogFollower     = (*Service)(nil)
)

// maxTerminalSize bounds a terminal's columns and rows.
const maxTerminalSize = 1000

// OpenTerminal implements domain.TerminalService: a login shell (bash -l) on a
// pseudo-terminal, as the sandbox's user in its home directory.
func (s *Service) OpenTerminal(ctx context.Context, p domain.Principal, id string, req domain.TerminalRequest) (domain.Terminal, error) {
	if req.Cols > maxTerminalSize {
		return nil, domain.Invalid("cols", "cols must be from 1 to %d, got %d", maxTerminalSize, req.Cols)
	}
	if req.Rows > maxTerminalSize {
		return nil, domain.Invalid("rows", "rows must be from 1 to %d, got %d", maxTerminalSize, req.Rows)
	}
	if req.User == "" {
		req.User = "user"
	}
	if req.User != "user" && req.User != "root" {
		return nil, domain.Invalid("user", "user must be \"user\" or \"root\", not %q", req.User)
	}
	if err := validateMap("env", req.Env, true); err != nil {
		return nil, err
	}
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return nil, err
	}
	env := map[string]string{"TERM": "xterm-256color", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
	for k, v := range req.Env {
		env[k] = v
	}
	args := []string{"-i", "-l"}
	if req.Cmd != "" {
		args = []string{"-l", "-c", req.Cmd}
	}
	t, err := agent.StartPTY(ctx, agentclient.PTYRequest{
		Cmd: "/bin/bash", Args: args, Env: env, User: req.User, Cols: req.Cols, Rows: req.Rows,
	})
	if err != nil {
		return nil, fmt.Errorf("opening a terminal in sandbox %s: %w", id, err)
	}
	s.log.Info("terminal opened", "sandbox", id, "pid", t.PID(), "user", req.User, "team_id", p.TeamID)
	return t, nil
}

// followPoll is how often FollowLogs looks for new log lines.
const followPoll = 250 * time.Millisecond

// FollowLogs implements domain.LogFollower by tailing the sandbox's console log from
// its start. The file stays open, so lines written just before the sandbox ended (and
// its directory was removed) are still read.
func (s *Service) FollowLogs(ctx context.Context, p domain.Principal, id string, q domain.LogQuery, onEntry func(domain.LogEntry) error) error {
	sb, err := s.Get(ctx, p, id)
	if err != nil {
		return err
	}
	minLevel := 0
	if q.Level != "" {
		r, ok := levelRank[strings.ToLower(q.Level)]
		if !ok {
			return domain.Invalid("level", "level must be debug, info, warn or error, not %q", q.Level)
		}
		minLevel = r
	}
	if sb.State.Terminal() {
		return nil
	}
	t := &logTail{open: func() (io.ReadCloser, error) { return s.cfg.Node.OpenLog(id) }}
	defer t.close()
	emit := func(line []byte) error {
		e, ok := parseLogLine(line)
		if !ok || levelRank[e.Level] < minLevel || e.Timestamp.Before(q.Start) {
			return nil
		}
		if q.Search != "" && !strings.Contains(e.Message, q.Search) {
			return nil
		}
		return onEntry(e)
	}
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for {
		// Whether it has ended is learnt before the file is read: what it wrote before
		// it ended is then surely read in this round. A sandbox that is not live is
		// starting or being ended; the store says which (ending records "stopped" a
		// moment after the sandbox left the live set).
		ended := false
		if !s.running(id) {
			sb, err := s.get(ctx, p, id)
			if err != nil {
				return err
			}
			ended = sb.State.Terminal()
		}
		if err := t.readLines(emit); err != nil {
			return err
		}
		if ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// running reports whether id is a live sandbox that is not being ended.
func (s *Service) running(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls, ok := s.live[id]
	return ok && !ls.ending
}

// logTail reads a growing file line by line.
type logTail struct {
	// open opens the file from its start; an error satisfying errors.Is(err,
	// fs.ErrNotExist) means it is not there yet.
	open    func() (io.ReadCloser, error)
	f       io.ReadCloser
	partial []byte // a line whose newline has not been written yet
}

// readLines calls emit for each complete line appended since the last call. A file
// that does not exist yet has no lines.
func (t *logTail) readLines(emit func([]byte) error) error {
	if t.f == nil {
		f, err := t.open()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading sandbox log: %w", err)
		}
		t.f = f
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := t.f.Read(buf)
		data := buf[:n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				t.partial = append(t.partial, data...)
				if len(t.partial) > 1<<20 { // a runaway line: cut it
					line := t.partial
					t.partial = nil
					if err := emit(line); err != nil {
						return err
					}
				}
				break
			}
			line := data[:i]
			if len(t.partial) > 0 {
				line = append(t.partial, line...)
				t.partial = nil
			}
			if err := emit(line); err != nil {
				return err
			}
			data = data[i+1:]
		}
		if errors.Is(err, io.EOF) || n == 0 && err == nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading sandbox log: %w", err)
		}
	}
}

func (t *logTail) close() {
	if t.f != nil {
		t.f.Close()
	}
}
