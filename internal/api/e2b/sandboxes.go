package e2b

import (
	"net/http"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

const (
	// createTimeoutV2 is a sandbox's lifetime when POST /v2/sandboxes gives none (E2B: 300 s).
	createTimeoutV2 = 300 * time.Second
	// createTimeoutV1 is the same for the legacy POST /sandboxes, whose spec default is 15 s.
	createTimeoutV1 = 15 * time.Second
	// connectTimeout is how long connect keeps a sandbox alive at least when the body
	// gives no timeout (E2B: 300 s). Connect never shortens a sandbox's life.
	connectTimeout = 300 * time.Second
	// refreshMin is both the default and the floor of POST .../refreshes, as in E2B
	// (SandboxTimeoutDefault); refreshMax is its spec maximum (1 h).
	refreshMin = 15 * time.Second
	refreshMax = time.Hour
	// sandboxHint ends the 501 message of sandbox operations Warren lacks.
	sandboxHint = "kill and create a new sandbox instead"
	// templateHint ends the 501 message of template operations.
	templateHint = "use the templates listed by GET /templates"
)

func (s *Server) createV2(w http.ResponseWriter, r *http.Request) error {
	return s.create(w, r, createTimeoutV2)
}

func (s *Server) createV1(w http.ResponseWriter, r *http.Request) error {
	return s.create(w, r, createTimeoutV1)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, defaultTimeout time.Duration) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	key, err := edge.IdempotencyKey(r)
	if err != nil {
		return err
	}
	var req newSandboxRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.TemplateID == "" {
		return domain.Invalid("templateID", `templateID is required, for example "base" or "code-interpreter-v1"`)
	}
	timeout := defaultTimeout
	if req.Timeout != nil {
		if *req.Timeout < 0 {
			return domain.Invalid("timeout", "timeout must not be negative, got %d", *req.Timeout)
		}
		if *req.Timeout > 0 { // 0 means the default, as an omitted timeout does
			timeout = seconds(*req.Timeout)
		}
	}
	cs := domain.CreateSandbox{
		TemplateID:     resolveTemplate(req.TemplateID),
		Timeout:        timeout,
		Env:            req.EnvVars,
		Metadata:       req.Metadata,
		Internet:       req.AllowInternetAccess,
		IdempotencyKey: key,
	}
	if err := applyOptions(&req, &cs); err != nil {
		return err
	}
	sb, err := s.svc.Create(r.Context(), p, cs)
	if err != nil {
		return err
	}
	edge.SetTarget(r, sb.ID)
	s.edge.WriteJSON(w, r, http.StatusCreated, s.toSandbox(p, sb, req.TemplateID))
	return nil
}

// applyOptions maps the network and lifecycle options onto cs, and refuses by name each
// one Warren cannot honour: silently dropping an egress rule or a proxy would leave a
// sandbox less locked down than its creator asked for.
func applyOptions(req *newSandboxRequest, cs *domain.CreateSandbox) error {
	unsupported := func(field, why string) error {
		return domain.Invalid(field, "%s is not supported by this Warren server: %s", field, why)
	}
	if n := req.Network; n != nil {
		switch {
		case len(n.Rules) > 0:
			return unsupported("network.rules", "egress requests cannot be rewritten")
		case present(n.EgressProxy):
			return unsupported("network.egressProxy", "egress cannot go through a proxy")
		case n.MaskRequestHost != nil && *n.MaskRequestHost != "":
			return unsupported("network.maskRequestHost", "the sandbox proxy forwards the Host header unchanged")
		case len(n.HTTPSPorts) > 0:
			return unsupported("network.httpsPorts", "the sandbox proxy does not terminate TLS to sandbox ports")
		}
		np, err := e2bPolicy("network.", n.AllowOut, n.DenyOut)
		if err != nil {
			return err
		}
		if !np.IsZero() {
			cs.Network = &np
		}
		cs.AllowPublicTraffic = n.AllowPublicTraffic
	}
	// A pause always keeps the sandbox's memory (autoPauseMemory either way).
	if req.AutoPause != nil && *req.AutoPause {
		cs.Lifecycle.OnTimeout = domain.OnTimeoutPause
	}
	if req.AutoResume != nil && req.AutoResume.Enabled {
		cs.Lifecycle.AutoResume = true
	}
	switch {
	case present(req.MCP):
		return unsupported("mcp", "there is no MCP gateway")
	case present(req.IAM):
		return unsupported("iam", "there are no workload identity tokens")
	case len(req.VolumeMounts) > 0:
		return unsupported("volumeMounts", "there are no volumes")
	}
	return nil
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request) error {
	p, id, req, err := edge.SandboxCall[connectRequest](w, r, decodeJSON)
	if err != nil {
		return err
	}
	d := connectTimeout
	if req.Timeout != nil {
		if *req.Timeout < 0 {
			return domain.Invalid("timeout", "timeout must not be negative, got %d", *req.Timeout)
		}
		d = seconds(*req.Timeout) // 0: just connect, do not extend
	}
	// A paused sandbox is resumed (201); a running one kept alive at least d more (200).
	cur, err := s.svc.Get(r.Context(), p, id)
	if err != nil {
		return err
	}
	if cur.State == domain.StatePaused {
		return s.resumeAnswer(w, r, p, id, d)
	}
	sb, err := s.svc.Connect(r.Context(), p, id, d)
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, s.toSandbox(p, sb, ""))
	return nil
}

// resumeAnswer resumes the paused sandbox id to live d (the default when 0) and answers
// 201 with it. A sandbox resumed meanwhile by another call is answered as connect would.
func (s *Server) resumeAnswer(w http.ResponseWriter, r *http.Request, p domain.Principal, id string, d time.Duration) error {
	sb, err := s.svc.Resume(r.Context(), p, id, d)
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusCreated, s.toSandbox(p, sb, ""))
	return nil
}

// pause pauses a running sandbox: 204; 409 when it is already paused; a sandbox that
// is gone is not found, as E2B forgets killed sandboxes. The body's memory flag is
// accepted either way: a pause always keeps the memory.
func (s *Server) pause(w http.ResponseWriter, r *http.Request) error {
	p, id, _, err := edge.SandboxCall[pauseRequest](w, r, decodeJSON)
	if err != nil {
		return err
	}
	if _, err := s.live(r, p, id); err != nil {
		return err
	}
	if _, err := s.svc.Pause(r.Context(), p, id); err != nil {
		return err
	}
	noContent(w)
	return nil
}

// resume is the deprecated POST /sandboxes/{id}/resume: 201 with the resumed sandbox;
// 409 when it is running.
func (s *Server) resume(w http.ResponseWriter, r *http.Request) error {
	p, id, req, err := edge.SandboxCall[resumeRequest](w, r, decodeJSON)
	if err != nil {
		return err
	}
	d := time.Duration(0)
	if req.Timeout != nil {
		if *req.Timeout < 0 {
			return domain.Invalid("timeout", "timeout must not be negative, got %d", *req.Timeout)
		}
		d = seconds(*req.Timeout)
	}
	if req.AutoPause != nil && *req.AutoPause {
		return domain.Invalid("autoPause", "autoPause cannot be changed on resume: a sandbox keeps the lifecycle it was created with")
	}
	if _, err := s.live(r, p, id); err != nil {
		return err
	}
	return s.resumeAnswer(w, r, p, id, d)
}

func (s *Server) getSandbox(w http.ResponseWriter, r *http.Request) error {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	sb, err := s.live(r, p, id)
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, s.toDetail(p, sb))
	return nil
}

// live returns the caller's sandbox if it is running or paused (E2B's two states);
// anything else is not found.
func (s *Server) live(r *http.Request, p domain.Principal, id string) (*domain.Sandbox, error) {
	sb, err := s.svc.Get(r.Context(), p, id)
	if err != nil {
		return nil, err
	}
	if sb.State != domain.StateRunning && sb.State != domain.StatePaused {
		return nil, domain.Errorf(domain.KindNotFound, "sandbox %q not found (it is %s)", id, sb.State)
	}
	return sb, nil
}

// running returns the caller's sandbox if it is running. E2B forgets killed sandboxes,
// so anything else is not found, which the SDK maps to SandboxNotFoundError.
func (s *Server) running(r *http.Request, p domain.Principal, id string) (*domain.Sandbox, error) {
	sb, err := s.svc.Get(r.Context(), p, id)
	if err != nil {
		return nil, err
	}
	if sb.State != domain.StateRunning {
		return nil, domain.Errorf(domain.KindNotFound, "sandbox %q not found (it is %s)", id, sb.State)
	}
	return sb, nil
}

func (s *Server) killSandbox(w http.ResponseWriter, r *http.Request) error {
	return edge.KillSandbox(w, r, s.svc)
}

func (s *Server) setTimeout(w http.ResponseWriter, r *http.Request) error {
	p, id, req, err := edge.SandboxCall[timeoutRequest](w, r, decodeJSON)
	if err != nil {
		return err
	}
	if req.Timeout == nil {
		return domain.Invalid("timeout", "timeout is required: seconds from now until the sandbox ends")
	}
	if *req.Timeout < 0 {
		return domain.Invalid("timeout", "timeout must not be negative, got %d", *req.Timeout)
	}
	if _, err := s.svc.SetTimeout(r.Context(), p, id, seconds(*req.Timeout)); err != nil {
		return err
	}
	noContent(w)
	return nil
}

// refresh keeps a sandbox alive at least duration more (default and minimum 15 s, as in
// E2B); like connect, it never shortens the sandbox's life.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) error {
	p, id, req, err := edge.SandboxCall[refreshRequest](w, r, decodeJSON)
	if err != nil {
		return err
	}
	d := refreshMin
	if req.Duration != nil {
		if *req.Duration < 0 || seconds(*req.Duration) > refreshMax {
			return domain.Invalid("duration", "duration must be from 0 to %d seconds, got %d",
				int(refreshMax.Seconds()), *req.Duration)
		}
		d = max(refreshMin, seconds(*req.Duration))
	}
	if _, err := s.svc.Connect(r.Context(), p, id, d); err != nil {
		return err
	}
	noContent(w)
	return nil
}

// unsupported answers an operation Warren lacks with 501.
func unsupported(what, hint string) func(*Server, http.ResponseWriter, *http.Request) error {
	return func(*Server, http.ResponseWriter, *http.Request) error { return notImplemented(what, hint) }
}

func notImplemented(what, hint string) error {
	msg := what + " is not supported by this Warren server yet"
	if hint != "" {
		msg += "; " + hint
	}
	return edge.NotImplemented(msg)
}

// seconds converts a client's seconds to a Duration, saturating instead of overflowing
// (the service then rejects anything past its maximum).
func seconds(n int64) time.Duration {
	const maxSecs = int64(1<<63-1) / int64(time.Second)
	return time.Duration(min(n, maxSecs)) * time.Second
}
