package rest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

type logListResponse struct {
	Logs []edge.LogEntry `json:"logs"`
}

// logEndEvent is the data of the "end" event: how the sandbox ended, when known.
type logEndEvent struct {
	State     string `json:"state,omitempty"`
	EndReason string `json:"end_reason,omitempty"`
}

// logQuery reads ?since=RFC3339&level=L&limit=N&follow=BOOL.
func logQuery(r *http.Request) (domain.LogQuery, bool, error) {
	var q domain.LogQuery
	v := r.URL.Query()
	var err error
	if q.Start, err = edge.TimeParam(v.Get("since"), "since"); err != nil {
		return q, false, err
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return q, false, domain.Invalid("limit", "limit must be an integer from 1 to 1000, got %q", s)
		}
		q.Limit = n
	}
	switch q.Level = strings.ToLower(v.Get("level")); q.Level {
	case "", "debug", "info", "warn", "error":
	default:
		return q, false, domain.Invalid("level", "level must be debug, info, warn or error, got %q", v.Get("level"))
	}
	follow := false
	if s := v.Get("follow"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return q, false, domain.Invalid("follow", "follow must be true or false, got %q", s)
		}
		follow = b
	}
	return q, follow, nil
}

// WithLogs serves the sandboxes' own logs (GET /v1/sandboxes/{id}/logs, listed or
// followed) from ls. Without it that route answers 503.
func WithLogs(ls domain.LogService) Option { return func(o *options) { o.logs = ls } }

// logService returns the log service.
func (s *Server) logService() (domain.LogService, error) {
	if s.opts.logs == nil {
		return nil, domain.Errorf(domain.KindUnavailable, "this server does not keep sandbox logs")
	}
	return s.opts.logs, nil
}

// logs answers the sandbox's own log: JSON, or (follow=true, or a client that accepts
// text/event-stream) a stream of entries that follows the log until the sandbox ends.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) error {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	q, follow, err := logQuery(r)
	if err != nil {
		return err
	}
	ls, err := s.logService()
	if err != nil {
		return err
	}
	if follow || acceptsEventStream(r) {
		return s.followLogs(w, r, ls, p, id, q)
	}
	entries, err := ls.Logs(r.Context(), p, id, q)
	if err != nil {
		return err
	}
	resp := logListResponse{Logs: make([]edge.LogEntry, 0, len(entries))}
	for _, e := range entries {
		resp.Logs = append(resp.Logs, edge.ToLogEntry(e))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}

// followLogs streams "log" events, then "end" when the sandbox has ended, or "error".
func (s *Server) followLogs(w http.ResponseWriter, r *http.Request, lf domain.LogFollower, p domain.Principal, id string, q domain.LogQuery) error {
	// Errors known before the stream starts (unknown sandbox, missing scope, bad level)
	// are ordinary JSON errors with their status.
	if _, err := s.svc.Get(r.Context(), p, id); err != nil {
		return err
	}
	sse := &sseWriter{w: w}
	if err := sse.comment("following the log of sandbox " + id); err != nil {
		return nil
	}
	stop := s.keepStreamAlive(sse)
	err := lf.FollowLogs(r.Context(), p, id, q, func(e domain.LogEntry) error {
		return sse.send("log", edge.ToLogEntry(e))
	})
	stop()
	switch {
	case sse.writeErr() != nil || errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "log stream client went away",
			slog.String(logkey.RequestID, edge.RequestID(r.Context())), slog.String(logkey.SandboxID, id))
	case err != nil:
		body := s.errorEvent(r, err)
		_ = sse.send("error", body)
	default:
		var end logEndEvent
		if sb, gerr := s.svc.Get(context.WithoutCancel(r.Context()), p, id); gerr == nil {
			end = logEndEvent{State: string(sb.State), EndReason: sb.EndReason}
		}
		_ = sse.send("end", end)
	}
	return nil
}
