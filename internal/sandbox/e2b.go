package sandbox

import (
	"bufio"
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

var _ domain.Router = (*Service)(nil)

// Connect implements domain.SandboxService.
func (s *Service) Connect(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return nil, err
	}
	sb, err := s.get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if d > s.cfg.MaxTimeout {
		return nil, domain.Invalid("timeout", "timeout %s exceeds the maximum of %s", d, s.cfg.MaxTimeout)
	}
	s.mu.Lock()
	ls, ok := s.live[id]
	if !ok || ls.ending {
		s.mu.Unlock()
		return nil, domain.Errorf(domain.KindNotFound, "sandbox %q is not running (it is %s)", id, sb.State)
	}
	cp := *ls.sb
	if want := s.cfg.Now().UTC().Add(d); d > 0 && want.After(cp.EndsAt) {
		cp.EndsAt = want
		ls.sb.EndsAt = want
		ls.timer.Reset(time.Until(want))
		s.mu.Unlock()
		if err := s.cfg.Store.UpdateSandbox(ctx, &cp); err != nil {
			return nil, err
		}
		return &cp, nil
	}
	s.mu.Unlock()
	return &cp, nil
}

// Metrics implements domain.SandboxService.
func (s *Service) Metrics(ctx context.Context, p domain.Principal, id string) (*domain.SandboxMetrics, error) {
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesRead)
	if err != nil {
		return nil, err
	}
	return agent.Metrics(ctx)
}

var levelRank = map[string]int{"debug": 0, "info": 1, "warn": 2, "error": 3}

// Logs implements domain.SandboxService: the agent's JSON log lines from the sandbox's
// console. A sandbox that has ended has no log left.
func (s *Service) Logs(ctx context.Context, p domain.Principal, id string, q domain.LogQuery) ([]domain.LogEntry, error) {
	sb, err := s.Get(ctx, p, id)
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
	f, err := s.cfg.Node.OpenLog(id)
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

// Route implements domain.Router for the sandbox proxy.
func (s *Service) Route(ctx context.Context, id string) (*domain.Route, error) {
	if !domain.ValidSandboxID(id) {
		return nil, domain.NotFound("sandbox", id)
	}
	s.mu.Lock()
	ls, ok := s.live[id]
	var r *domain.Route
	if ok && !ls.ending {
		r = &domain.Route{SandboxID: id, Address: ls.sb.Address, Running: true, AccessToken: ls.sb.AccessToken,
			TrafficToken: ls.sb.TrafficToken, PrivatePorts: ls.privatePorts}
	}
	s.mu.Unlock()
	if r != nil {
		return r, nil
	}
	if _, err := s.cfg.Store.GetSandbox(ctx, "", id); err != nil {
		return nil, err
	}
	return &domain.Route{SandboxID: id, Running: false}, nil
}
