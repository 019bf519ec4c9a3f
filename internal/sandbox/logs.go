package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Logs reads the sandboxes' own logs: what their agents write to the console, which
// the node keeps (Node.OpenLog).
type Logs struct {
	sandboxes *Service
}

var _ domain.LogService = (*Logs)(nil)

// NewLogs returns the log service of s's sandboxes.
func NewLogs(s *Service) *Logs { return &Logs{sandboxes: s} }

var levelRank = map[string]int{"debug": 0, "info": 1, "warn": 2, "error": 3}

// Logs implements domain.LogService: the agent's JSON log lines from the sandbox's
// console. A sandbox that has ended has no log left.
func (l *Logs) Logs(ctx context.Context, p domain.Principal, id string, q domain.LogQuery) ([]domain.LogEntry, error) {
	sb, err := l.sandboxes.Get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 1000
	}
	minLevel := 0
	if q.Level != "" {
		r, ok := levelRank[strings.ToLower(q.Level)]
		if !ok {
			return nil, domain.Invalid("level", "level must be debug, info, warn or error, not %q", q.Level)
		}
		minLevel = r
	}
	if sb.State.Terminal() {
		return []domain.LogEntry{}, nil
	}
	f, err := l.sandboxes.cfg.Node.OpenLog(id)
	if errors.Is(err, fs.ErrNotExist) {
		return []domain.LogEntry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading sandbox log: %w", err)
	}
	defer f.Close()
	return readLogEntries(f, q, minLevel), nil
}

// readLogEntries returns the entries of the console log r that q asks for, at most
// q.Limit of them: the first ones, or with q.Backward the last ones, newest first.
// The log is the sandbox's to fill, so no more than 2 × q.Limit entries are held.
func readLogEntries(r io.Reader, q domain.LogQuery, minLevel int) []domain.LogEntry {
	all := []domain.LogEntry{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		e, ok := parseLogLine(sc.Bytes())
		if !ok || levelRank[e.Level] < minLevel || e.Timestamp.Before(q.Start) {
			continue
		}
		if q.Search != "" && !strings.Contains(e.Message, q.Search) {
			continue
		}
		all = append(all, e)
		if !q.Backward && len(all) == q.Limit {
			break
		}
		if len(all) >= 2*q.Limit {
			all = append(all[:0], all[len(all)-q.Limit:]...)
		}
	}
	if len(all) > q.Limit {
		all = all[len(all)-q.Limit:]
	}
	if q.Backward {
		slices.Reverse(all)
	}
	return all
}

// parseLogLine reads one slog JSON line of the agent; other console output (runsc's own
// messages) becomes an info entry stamped now.
func parseLogLine(b []byte) (domain.LogEntry, bool) {
	if len(strings.TrimSpace(string(b))) == 0 {
		return domain.LogEntry{}, false
	}
	var raw map[string]any
	if json.Unmarshal(b, &raw) != nil {
		return domain.LogEntry{Timestamp: time.Now().UTC(), Level: "info", Message: string(b), Fields: map[string]string{}}, true
	}
	e := domain.LogEntry{Level: "info", Fields: map[string]string{}}
	for k, v := range raw {
		switch k {
		case "time":
			if s, ok := v.(string); ok {
				e.Timestamp, _ = time.Parse(time.RFC3339Nano, s)
			}
		case "level":
			if s, ok := v.(string); ok {
				e.Level = strings.ToLower(s)
			}
		case "msg":
			e.Message, _ = v.(string)
		default:
			e.Fields[k] = fmt.Sprint(v)
		}
	}
	return e, true
}

// followPoll is how often FollowLogs looks for new log lines.
const followPoll = 250 * time.Millisecond

// FollowLogs implements domain.LogService by tailing the sandbox's console log from
// its start. The file stays open, so lines written just before the sandbox ended (and
// its directory was removed) are still read.
func (l *Logs) FollowLogs(ctx context.Context, p domain.Principal, id string, q domain.LogQuery, onEntry func(domain.LogEntry) error) error {
	sb, err := l.sandboxes.Get(ctx, p, id)
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
	t := &logTail{open: func() (io.ReadCloser, error) { return l.sandboxes.cfg.Node.OpenLog(id) }}
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
		if !l.sandboxes.reg.running(id) {
			sb, err := l.sandboxes.get(ctx, p, id)
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
