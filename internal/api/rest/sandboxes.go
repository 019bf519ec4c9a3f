package rest

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

const defaultTemplate = "base"

func (s *Server) createSandbox(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	key, err := edge.IdempotencyKey(r)
	if err != nil {
		return err
	}
	var req createSandboxRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := checkTimeout("timeout", req.Timeout, false); err != nil {
		return err
	}
	if err := checkLimits(req.Limits); err != nil {
		return err
	}
	if req.Template == "" && req.Snapshot == "" {
		req.Template = defaultTemplate
	}
	var lc domain.Lifecycle
	if req.Lifecycle != nil {
		lc = domain.Lifecycle{OnTimeout: req.Lifecycle.OnTimeout, AutoResume: req.Lifecycle.AutoResume}
	}
	sb, err := s.svc.Create(r.Context(), p, domain.CreateSandbox{
		Lifecycle:  lc,
		TemplateID: req.Template,
		Timeout:    time.Duration(req.Timeout) * time.Second,
		Env:        req.Env,
		Metadata:   req.Metadata,
		Internet:   req.Internet,
		Network:    req.Network.policy(),
		Limits:     req.Limits,
		Runtime:    req.Runtime, MinIsolation: req.MinIsolation,
		AllowPublicTraffic: req.AllowPublicTraffic,
		Snapshot:           req.Snapshot,
		IdempotencyKey:     key,
	})
	if err != nil {
		return err
	}
	edge.SetTarget(r, sb.ID)
	s.edge.WriteJSON(w, r, http.StatusCreated, withTrafficToken(toSandboxJSON(sb, s.opts.domain), p, sb))
	return nil
}

func (s *Server) getSandbox(w http.ResponseWriter, r *http.Request) error {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	sb, err := s.svc.Get(r.Context(), p, id)
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, withTrafficToken(toSandboxJSON(sb, s.opts.domain), p, sb))
	return nil
}

func (s *Server) listSandboxes(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	f, err := parseSandboxFilter(r.URL.Query())
	if err != nil {
		return err
	}
	f.TeamID = p.TeamID
	items, next, err := s.svc.List(r.Context(), p, f)
	if err != nil {
		return err
	}
	resp := listSandboxesResponse{Sandboxes: make([]sandboxJSON, 0, len(items)), NextCursor: next}
	for _, sb := range items {
		resp.Sandboxes = append(resp.Sandboxes, toSandboxJSON(sb, s.opts.domain))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}

// parseSandboxFilter reads ?state=a,b&metadata.K=V&limit=N&cursor=C. Unknown parameters
// are rejected so that a typo ("states=") does not silently list everything.
func parseSandboxFilter(q url.Values) (domain.SandboxFilter, error) {
	var f domain.SandboxFilter
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	sort.Strings(names) // report the same bad parameter every time
	for _, name := range names {
		vals := q[name]
		v := vals[len(vals)-1]
		switch {
		case name == "state":
			for _, st := range strings.Split(strings.Join(vals, ","), ",") {
				st = strings.TrimSpace(st)
				if st == "" {
					continue
				}
				state := domain.SandboxState(st)
				if !state.Valid() {
					return f, domain.Invalid("state", "unknown state %q: use starting, running, paused, stopped or error (comma-separated)", st)
				}
				f.States = append(f.States, state)
			}
		case name == "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return f, domain.Invalid("limit", "limit must be an integer from 1 to 1000, got %q", v)
			}
			f.Limit = n
		case name == "cursor":
			f.Cursor = v
		case strings.HasPrefix(name, "metadata."):
			key := strings.TrimPrefix(name, "metadata.")
			if key == "" {
				return f, domain.Invalid("metadata", "metadata filters look like metadata.KEY=VALUE")
			}
			if f.Metadata == nil {
				f.Metadata = map[string]string{}
			}
			f.Metadata[key] = v
		default:
			return f, domain.Invalid(name, "unknown query parameter %q: use state, metadata.KEY, limit or cursor", name)
		}
	}
	return f, nil
}

func (s *Server) killSandbox(w http.ResponseWriter, r *http.Request) error {
	return edge.KillSandbox(w, r, s.svc)
}

func (s *Server) setTimeout(w http.ResponseWriter, r *http.Request) error {
	p, id, req, err := edge.SandboxCall[setTimeoutRequest](w, r, s.decodeJSON)
	if err != nil {
		return err
	}
	if req.Timeout == nil {
		return domain.Invalid("timeout", "field \"timeout\" is required: seconds from now until the sandbox ends")
	}
	if err := checkTimeout("timeout", *req.Timeout, true); err != nil {
		return err
	}
	sb, err := s.svc.SetTimeout(r.Context(), p, id, time.Duration(*req.Timeout)*time.Second)
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, toSandboxJSON(sb, s.opts.domain))
	return nil
}

// setNetwork replaces the sandbox's egress policy (applied to its new connections).
func (s *Server) setNetwork(w http.ResponseWriter, r *http.Request) error {
	p, id, req, err := edge.SandboxCall[networkJSON](w, r, s.decodeJSON)
	if err != nil {
		return err
	}
	sb, err := s.svc.SetNetwork(r.Context(), p, id, *req.policy())
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, toSandboxJSON(sb, s.opts.domain))
	return nil
}

func (s *Server) pauseSandbox(w http.ResponseWriter, r *http.Request) error {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	sb, err := s.svc.Pause(r.Context(), p, id)
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, toSandboxJSON(sb, s.opts.domain))
	return nil
}

func (s *Server) resumeSandbox(w http.ResponseWriter, r *http.Request) error {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	var req resumeRequest // the body is optional
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := checkTimeout("timeout", req.Timeout, false); err != nil {
		return err
	}
	sb, err := s.svc.Resume(r.Context(), p, id, time.Duration(req.Timeout)*time.Second)
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, withTrafficToken(toSandboxJSON(sb, s.opts.domain), p, sb))
	return nil
}

// checkTimeout validates a timeout in seconds. Zero means "the default" unless positive
// is set, in which case it must be at least one second.
func checkTimeout(field string, secs int64, positive bool) error {
	switch {
	case secs < 0:
		return domain.Invalid(field, "%s must not be negative, got %d", field, secs)
	case positive && secs == 0:
		return domain.Invalid(field, "%s must be at least 1 second", field)
	case secs > maxTimeoutSeconds:
		return domain.Invalid(field, "%s must be at most %d seconds (24h), got %d", field, maxTimeoutSeconds, secs)
	}
	return nil
}

func checkLimits(l domain.Limits) error {
	switch {
	case l.CPUCores < 0:
		return domain.Invalid("limits.cpu_cores", "limits.cpu_cores must not be negative")
	case l.MemoryMB < 0:
		return domain.Invalid("limits.memory_mb", "limits.memory_mb must not be negative")
	case l.DiskMB < 0:
		return domain.Invalid("limits.disk_mb", "limits.disk_mb must not be negative")
	case l.MaxProcesses < 0:
		return domain.Invalid("limits.max_processes", "limits.max_processes must not be negative")
	}
	return nil
}

// WithPorts serves GET /v1/sandboxes/{id}/ports from pl. Without it that route
// answers 503.
func WithPorts(pl domain.PortLister) Option { return func(o *options) { o.ports = pl } }

func (s *Server) listPorts(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	pl := s.opts.ports
	if pl == nil {
		return domain.Errorf(domain.KindUnavailable, "listing a sandbox's ports is not supported by this server")
	}
	id := r.PathValue("id")
	ports, err := pl.Ports(r.Context(), p, id)
	if err != nil {
		return err
	}
	resp := listPortsResponse{Ports: make([]portJSON, 0, len(ports))}
	for _, port := range ports {
		pj := portJSON{Port: port}
		if s.opts.domain != "" {
			pj.URL = fmt.Sprintf("http://%d-%s.%s/", port, id, s.opts.domain)
		}
		resp.Ports = append(resp.Ports, pj)
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}
