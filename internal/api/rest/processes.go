package rest

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

// This file serves the long-running processes of a sandbox: commands started with
// "background": true, listed, re-attached to, fed stdin and signalled.

type processStartedJSON struct {
	PID uint32 `json:"pid"`
}

type processJSON struct {
	PID  uint32   `json:"pid"`
	Cmd  string   `json:"cmd"`
	Args []string `json:"args"`
	Cwd  string   `json:"cwd"`
	Tag  string   `json:"tag,omitempty"`
}

type listProcessesResponse struct {
	Processes []processJSON `json:"processes"`
}

type stdinRequest struct {
	// Data is text; DataBase64 carries bytes that are not valid UTF-8. Exactly one.
	Data       *string `json:"data"`
	DataBase64 *string `json:"data_base64"`
}

type signalRequest struct {
	Signal string `json:"signal"`
}

// WithProcesses serves commands and background processes (POST /commands and the
// /processes routes) from ps. Without it those routes answer 503.
func WithProcesses(ps domain.ProcessService) Option { return func(o *options) { o.processes = ps } }

// processes returns the process service.
func (s *Server) processes() (domain.ProcessService, error) {
	if s.opts.processes == nil {
		return nil, domain.Errorf(domain.KindUnavailable, "this server does not run commands or manage background processes")
	}
	return s.opts.processes, nil
}

// processTarget reads the sandbox id and the pid of a process route.
func processTarget(r *http.Request) (domain.Principal, string, uint32, error) {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return p, id, 0, err
	}
	v := r.PathValue("pid")
	pid, err := strconv.ParseUint(v, 10, 32)
	if err != nil || pid == 0 {
		return p, id, 0, domain.Invalid("pid", "pid must be a positive integer (a process id from GET /v1/sandboxes/%s/processes), got %q", id, v)
	}
	return p, id, uint32(pid), nil
}

// startBackground starts the command of a POST /commands with "background": true and
// answers 201 {"pid": N} once it runs.
func (s *Server) startBackground(w http.ResponseWriter, r *http.Request, p domain.Principal, id string, req domain.ExecRequest, body execRequest) error {
	switch {
	case !body.Background:
		return domain.Invalid("stdin_open", "stdin_open applies to background commands only: add \"background\": true")
	case body.Stream:
		return domain.Invalid("stream", "a background command answers with its pid, not a stream: follow its output with GET /v1/sandboxes/%s/processes/{pid}/events", id)
	}
	ps, err := s.processes()
	if err != nil {
		return err
	}
	pid, err := ps.StartProcess(r.Context(), p, id, domain.BackgroundRequest{Exec: req, StdinOpen: body.StdinOpen})
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusCreated, processStartedJSON{PID: pid})
	return nil
}

func (s *Server) listProcesses(w http.ResponseWriter, r *http.Request) error {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	ps, err := s.processes()
	if err != nil {
		return err
	}
	list, err := ps.ListProcesses(r.Context(), p, id)
	if err != nil {
		return err
	}
	resp := listProcessesResponse{Processes: make([]processJSON, 0, len(list))}
	for _, pi := range list {
		args := pi.Args
		if args == nil {
			args = []string{}
		}
		resp.Processes = append(resp.Processes, processJSON{PID: pi.PID, Cmd: pi.Cmd, Args: args, Cwd: pi.Cwd, Tag: pi.Tag})
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}

// processEvents streams a process's output as SSE, with the events of POST
// /commands: start, stdout/stderr..., then end or error. A background command the
// server recorded is replayed from its start before its live output; any other
// process is followed from now on (see sandbox.Service.AttachProcess).
func (s *Server) processEvents(w http.ResponseWriter, r *http.Request) error {
	p, id, pid, err := processTarget(r)
	if err != nil {
		return err
	}
	ps, err := s.processes()
	if err != nil {
		return err
	}
	return s.streamCommand(w, r, id, func(onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
		return ps.AttachProcess(r.Context(), p, id, pid, onEvent)
	})
}

func (s *Server) processStdin(w http.ResponseWriter, r *http.Request) error {
	p, id, pid, err := processTarget(r)
	if err != nil {
		return err
	}
	var body stdinRequest
	if err := s.decodeJSON(w, r, &body); err != nil {
		return err
	}
	var data []byte
	switch {
	case body.Data != nil && body.DataBase64 != nil:
		return domain.Invalid("data", "send either data or data_base64, not both")
	case body.Data != nil:
		data = []byte(*body.Data)
	case body.DataBase64 != nil:
		if data, err = base64.StdEncoding.DecodeString(*body.DataBase64); err != nil {
			return domain.Invalid("data_base64", "data_base64 is not valid base64: %v", err)
		}
	default:
		return domain.Invalid("data", "one of data (text) or data_base64 (bytes) is required")
	}
	ps, err := s.processes()
	if err != nil {
		return err
	}
	if err := ps.SendStdin(r.Context(), p, id, pid, data); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) processStdinClose(w http.ResponseWriter, r *http.Request) error {
	p, id, pid, err := processTarget(r)
	if err != nil {
		return err
	}
	ps, err := s.processes()
	if err != nil {
		return err
	}
	if err := ps.CloseStdin(r.Context(), p, id, pid); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) processSignal(w http.ResponseWriter, r *http.Request) error {
	p, id, pid, err := processTarget(r)
	if err != nil {
		return err
	}
	var body signalRequest
	if err := s.decodeJSON(w, r, &body); err != nil {
		return err
	}
	ps, err := s.processes()
	if err != nil {
		return err
	}
	if err := ps.SignalProcess(r.Context(), p, id, pid, body.Signal); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
