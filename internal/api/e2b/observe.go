package e2b

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

const (
	// maxLogs is the most log entries one request returns (E2B's default and v2 maximum).
	maxLogs = 1000
	// maxMetricsIDs caps GET /sandboxes/metrics?sandbox_ids= (E2B's spec limit).
	maxMetricsIDs = 100
	// metricsParallel bounds the agents asked at once by GET /sandboxes/metrics.
	metricsParallel = 8
)

// metrics answers one current reading: Warren keeps no metric history, so the start and
// end of the window are validated but do not select anything.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	for _, name := range []string{"start", "end"} {
		if _, err := queryInt(q, name, -1); err != nil {
			return err
		}
	}
	m, err := s.svc.Metrics(r.Context(), p, id)
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, []metricJSON{toMetric(m)})
	return nil
}

// metricsMany serves GET /sandboxes/metrics?sandbox_ids=a,b: the current reading of each
// running sandbox among them; the others are left out, as E2B does.
func (s *Server) metricsMany(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	var ids []string
	seen := map[string]bool{}
	for _, id := range strings.Split(strings.Join(r.URL.Query()["sandbox_ids"], ","), ",") {
		if id = strings.TrimSpace(id); id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 || len(ids) > maxMetricsIDs {
		return domain.Invalid("sandbox_ids", "sandbox_ids must list 1 to %d comma-separated sandbox ids", maxMetricsIDs)
	}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
		sem      = make(chan struct{}, metricsParallel)
		out      = metricsManyResponse{Sandboxes: map[string]metricJSON{}}
	)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			m, err := s.svc.Metrics(r.Context(), p, id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				out.Sandboxes[id] = toMetric(m)
			case domain.KindOf(err) == domain.KindInternal && firstErr == nil:
				firstErr = err // classified errors (not found, not running...) just leave it out
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	s.edge.WriteJSON(w, r, http.StatusOK, out)
	return nil
}

// logsV1 serves the deprecated GET /sandboxes/{id}/logs?start=<ms>&limit=, whose body
// carries both the raw lines ("logs") and the structured entries ("logEntries").
func (s *Server) logsV1(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	start, err := queryInt(q, "start", -1)
	if err != nil {
		return err
	}
	limit, err := queryInt(q, "limit", -1)
	if err != nil {
		return err
	}
	lq := domain.LogQuery{Limit: int(min(limit, maxLogs))}
	if start > 0 {
		lq.Start = time.UnixMilli(start)
	}
	entries, err := s.logs(r, lq)
	if err != nil {
		return err
	}
	out := logsV1Response{Logs: []logLineJSON{}, LogEntries: []edge.LogEntry{}}
	for _, e := range entries {
		out.Logs = append(out.Logs, logLineJSON{Timestamp: e.Timestamp.UTC(), Line: rawLine(e)})
		out.LogEntries = append(out.LogEntries, edge.ToLogEntry(e))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, out)
	return nil
}

// logsV2 serves GET /v2/sandboxes/{id}/logs?cursor=<ms>&limit=&direction=&level=&search=.
func (s *Server) logsV2(w http.ResponseWriter, r *http.Request) error {
	lq, keep, err := parseLogsV2Query(r.URL.Query())
	if err != nil {
		return err
	}
	entries, err := s.logs(r, lq)
	if err != nil {
		return err
	}
	out := logsV2Response{Logs: []edge.LogEntry{}}
	for _, e := range entries {
		if keep(e, len(out.Logs)) {
			out.Logs = append(out.Logs, edge.ToLogEntry(e))
		}
	}
	s.edge.WriteJSON(w, r, http.StatusOK, out)
	return nil
}

// parseLogsV2Query reads GET /v2/sandboxes/{id}/logs' query into what to ask the
// service for, and keep, which says whether an entry the service answered is in the
// page when n are already. Forward, the cursor is the oldest time returned (inclusive).
// Backward, it is the newest (inclusive); domain.LogQuery has no upper bound, so the
// edge asks for the newest maxLogs entries and drops those after the cursor.
func parseLogsV2Query(q url.Values) (lq domain.LogQuery, keep func(e domain.LogEntry, n int) bool, err error) {
	cursor, err := queryInt(q, "cursor", -1)
	if err != nil {
		return lq, nil, err
	}
	limit, err := queryInt(q, "limit", maxLogs)
	if err != nil {
		return lq, nil, err
	}
	if limit == 0 {
		limit = maxLogs
	}
	lq = domain.LogQuery{Limit: int(limit), Level: q.Get("level"), Search: q.Get("search")}
	if len(lq.Search) > 256 {
		return lq, nil, domain.Invalid("search", "search must be at most 256 bytes")
	}
	switch d := q.Get("direction"); d {
	case "", "forward":
	case "backward":
		lq.Backward = true
	default:
		return lq, nil, domain.Invalid("direction", "direction must be forward or backward, got %q", d)
	}
	until := time.Time{}
	switch {
	case cursor > 0 && lq.Backward:
		lq.Limit, until = maxLogs, time.UnixMilli(cursor)
	case cursor > 0:
		lq.Start = time.UnixMilli(cursor)
	}
	keep = func(e domain.LogEntry, n int) bool {
		return n < int(limit) && (until.IsZero() || !e.Timestamp.After(until))
	}
	return lq, keep, nil
}

// logs returns the log of the caller's sandbox {id} that lq selects, from Config.Logs.
func (s *Server) logs(r *http.Request, lq domain.LogQuery) ([]domain.LogEntry, error) {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return nil, err
	}
	if s.cfg.Logs == nil {
		return nil, domain.Errorf(domain.KindUnavailable, "this server does not keep sandbox logs")
	}
	return s.cfg.Logs.Logs(r.Context(), p, id, lq)
}

// queryInt parses an optional non-negative integer parameter; 0 when absent. maxV < 0
// means unbounded.
func queryInt(q url.Values, name string, maxV int64) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || maxV >= 0 && n > maxV {
		if maxV >= 0 {
			return 0, domain.Invalid(name, "%s must be an integer from 0 to %d, got %q", name, maxV, v)
		}
		return 0, domain.Invalid(name, "%s must be a non-negative integer, got %q", name, v)
	}
	return n, nil
}

// listTemplates returns the templates the caller sees: with Config.Templates the
// built-ins and the team's own, else the built-ins.
func (s *Server) listTemplates(r *http.Request) ([]*domain.Template, error) {
	if s.cfg.Templates == nil {
		return s.svc.Templates(r.Context())
	}
	p, err := edge.Principal(r)
	if err != nil {
		return nil, err
	}
	return s.cfg.Templates.ListTemplates(r.Context(), p)
}

func (s *Server) templates(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.listTemplates(r)
	if err != nil {
		return err
	}
	out := make([]templateJSON, 0, len(ts))
	for _, t := range ts {
		out = append(out, s.toTemplate(t))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, out)
	return nil
}

// findTemplate returns the template a name or alias refers to, or nil.
func (s *Server) findTemplate(r *http.Request, name string) (*domain.Template, error) {
	id := resolveTemplate(name)
	if s.cfg.Templates != nil {
		p, err := edge.Principal(r)
		if err != nil {
			return nil, err
		}
		t, err := s.cfg.Templates.GetTemplate(r.Context(), p, id)
		if domain.IsKind(err, domain.KindNotFound) {
			return nil, nil
		}
		return t, err
	}
	ts, err := s.svc.Templates(r.Context())
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		if t.ID == id {
			return t, nil
		}
	}
	return nil, nil
}

func (s *Server) templateAlias(w http.ResponseWriter, r *http.Request) error {
	alias := r.PathValue("alias")
	t, err := s.findTemplate(r, alias)
	if err != nil {
		return err
	}
	if t == nil {
		return domain.NotFound("template alias", alias)
	}
	s.edge.WriteJSON(w, r, http.StatusOK, templateAliasJSON{TemplateID: t.ID, Public: t.TeamID == ""})
	return nil
}

// deleteTemplate serves DELETE /templates/{id}, which the SDK's deleteSnapshot and E2B's
// CLI (template delete) use: a template or a snapshot of the caller's team (by id or name) is
// deleted (204); deleting one of the built-in templates is not supported (501);
// anything else is 404, on which the SDK returns false.
func (s *Server) deleteTemplate(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	t, err := s.findTemplate(r, id)
	if err != nil {
		return err
	}
	if t != nil && t.TeamID != "" && t.TeamID == p.TeamID && s.cfg.Templates != nil {
		if err := s.cfg.Templates.DeleteTemplate(r.Context(), p, t.ID); err != nil {
			return err
		}
		edge.SetTarget(r, t.ID)
		noContent(w)
		return nil
	}
	if t != nil && t.TeamID == "" {
		return notImplemented("deleting templates", templateHint)
	}
	if s.cfg.Snapshots == nil {
		return domain.NotFound("template or snapshot", id)
	}
	if err := s.cfg.Snapshots.DeleteSnapshot(r.Context(), p, id); err != nil {
		if domain.IsKind(err, domain.KindNotFound) {
			return domain.NotFound("template or snapshot", id)
		}
		return err
	}
	edge.SetTarget(r, id)
	noContent(w)
	return nil
}
