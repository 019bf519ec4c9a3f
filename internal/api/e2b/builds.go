package e2b

import (
	"errors"
	"net/http"
	"strings"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

// Template builds as the SDK's Template.build runs them (docs/e2b-protocol.md §2.5):
// POST /v3/templates registers the build, GET (and PUT) /templates/{id}/files/{hash}
// upload each COPY step's files (uploads.go), POST /v2/templates/{id}/builds/{buildID}
// starts it, and GET /templates/{id}/builds/{buildID}/status is polled for the state
// and the log lines from logsOffset on.

// templateService returns Config.Templates, or a 501 saying the server builds none.
func (s *Server) templateService() (domain.TemplateService, error) {
	if s.cfg.Templates == nil {
		return nil, notImplemented("building templates", templateHint)
	}
	return s.cfg.Templates, nil
}

// ownTemplate returns the caller's own template {id}. A built-in or another team's
// template is not found: neither takes uploads or builds.
func (s *Server) ownTemplate(r *http.Request) (domain.Principal, domain.TemplateService, *domain.Template, error) {
	p, err := edge.Principal(r)
	if err != nil {
		return p, nil, nil, err
	}
	svc, err := s.templateService()
	if err != nil {
		return p, nil, nil, err
	}
	id := r.PathValue("id")
	t, err := svc.GetTemplate(r.Context(), p, id)
	if err != nil {
		return p, nil, nil, err
	}
	if t.TeamID == "" || t.TeamID != p.TeamID {
		return p, nil, nil, domain.Errorf(domain.KindNotFound, "template %q not found among this team's templates (built-in templates cannot be rebuilt)", id)
	}
	edge.SetTarget(r, t.ID)
	return p, svc, t, nil
}

// requestBuild serves POST /v3/templates (Template.build's first call): the template of
// that name is registered, or a new build of the caller's template of that name.
func (s *Server) requestBuild(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	svc, err := s.templateService()
	if err != nil {
		return err
	}
	var b requestBuildBody
	if err := decodeJSON(w, r, &b); err != nil {
		return err
	}
	name := b.Name
	if name == "" {
		name = b.Alias
	}
	name, tag, hasTag := strings.Cut(name, ":")
	switch {
	case name == "":
		return domain.Invalid("name", "name is required: Template.build(template, 'my-template')")
	case b.TeamID != "" && b.TeamID != p.TeamID:
		return domain.Invalid("teamID", "teamID %q is not the team of this API key; leave it out", b.TeamID)
	case hasTag && tag == "":
		return domain.Invalid("name", "name %q ends in ':' without a tag; give name:tag or the name alone", b.Name+b.Alias)
	case b.CPUCount != nil && *b.CPUCount < 1:
		return domain.Invalid("cpuCount", "cpuCount must be at least 1 (or left out for the server's default)")
	case b.MemoryMB != nil && *b.MemoryMB < 128:
		return domain.Invalid("memoryMB", "memoryMB must be at least 128 (or left out for the server's default)")
	case b.MinFreeDiskMB != nil:
		return domain.Invalid("minFreeDiskMb", "per-template disk sizes are not supported by this Warren server yet; leave minFreeDiskMb out")
	}
	var l domain.Limits
	if b.CPUCount != nil {
		l.CPUCores = float64(*b.CPUCount)
	}
	if b.MemoryMB != nil {
		l.MemoryMB = int64(*b.MemoryMB)
	}
	// Template.build(t, 'app:v2') names one tag; {tags} names more; neither: the default.
	tags := b.Tags
	if hasTag {
		tags = append([]string{tag}, tags...)
	}
	t, build, err := svc.CreateBuild(r.Context(), p, name, domain.BuildOptions{Limits: l, Tags: tags})
	if err != nil {
		return err
	}
	edge.SetTarget(r, t.ID)
	names := templateNames(t.ID)
	if len(build.Tags) == 0 {
		build.Tags = []string{domain.DefaultTag}
	}
	s.edge.WriteJSON(w, r, http.StatusAccepted, requestBuildJSON{TemplateID: t.ID, BuildID: build.ID,
		Names: names, Aliases: names, Tags: build.Tags, Public: t.TeamID == ""})
	return nil
}

// startBuild serves POST /v2/templates/{id}/builds/{buildID}: the build's steps, its
// parent and its start and ready commands. 202 without a body; the SDK then polls.
func (s *Server) startBuild(w http.ResponseWriter, r *http.Request) error {
	p, svc, t, err := s.ownTemplate(r)
	if err != nil {
		return err
	}
	var b startBuildBody
	if err := decodeJSON(w, r, &b); err != nil {
		return err
	}
	tr, err := toSpec(t.ID, b, func(hash string) string { return s.up.lookup(p.TeamID, t.ID, hash) })
	if err != nil {
		return err
	}
	buildID := r.PathValue("buildID")
	if _, err := svc.StartBuild(r.Context(), p, t.ID, buildID, tr.spec); err != nil {
		return err
	}
	s.up.setOrigin(p.TeamID, buildID, tr.origin)
	w.Header().Set("Content-Length", "0") // the SDK's client parses a body it is not told is empty
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// defaultLogLimit and maxLogLimit bound the log lines of one status answer; the SDK
// keeps asking from its offset until it has them all.
const (
	defaultLogLimit = 100
	maxLogLimit     = 1000
)

// errEnough stops BuildLogs once a status answer has its lines.
var errEnough = errors.New("enough log lines")

// buildStatus serves GET /templates/{id}/builds/{buildID}/status?logsOffset=&limit=&level=.
func (s *Server) buildStatus(w http.ResponseWriter, r *http.Request) error {
	p, svc, t, err := s.ownTemplate(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	offset, err := queryInt(q, "logsOffset", 1<<31-1)
	if err != nil {
		return err
	}
	limit, err := queryInt(q, "limit", maxLogLimit)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = defaultLogLimit
	}
	minLevel := 0
	if lv := q.Get("level"); lv != "" {
		var ok bool
		if minLevel, ok = logLevels[lv]; !ok {
			return domain.Invalid("level", "level must be debug, info, warn or error, got %q", lv)
		}
	}
	buildID := r.PathValue("buildID")
	b, err := svc.GetBuild(r.Context(), p, t.ID, buildID)
	if err != nil {
		return err
	}
	out := buildStatusJSON{TemplateID: t.ID, BuildID: b.ID, Status: buildState(b.State), Logs: []string{}, LogEntries: []buildLogJSON{}}
	err = svc.BuildLogs(r.Context(), p, t.ID, buildID, int(offset), false, func(l domain.BuildLogLine) error {
		if int64(len(out.LogEntries)) >= limit {
			return errEnough
		}
		if e := toBuildLog(l); logLevels[e.Level] >= minLevel {
			out.LogEntries = append(out.LogEntries, e)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return err
	}
	if b.State == domain.BuildError {
		msg := b.Reason
		if msg == "" {
			msg = "the build failed"
		}
		out.Reason = &reasonJSON{Message: msg, Step: failedStep(b, s.up.origin(p.TeamID, b.ID)), LogEntries: []buildLogJSON{}}
	}
	s.edge.WriteJSON(w, r, http.StatusOK, out)
	return nil
}
