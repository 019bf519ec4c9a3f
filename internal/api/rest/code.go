package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// WithCode enables code execution (POST /v1/sandboxes/{id}/execute and the contexts
// routes) through svc. Without it, or with nil, those routes answer 501.
func WithCode(svc domain.CodeService) Option {
	return func(o *options) { o.code = svc }
}

// codeService returns the configured CodeService, or a 501 error saying how to get one.
func (s *Server) codeService() (domain.CodeService, error) {
	if s.opts.code == nil {
		return nil, edge.NotImplemented("code execution is not configured on this server; use a server built with the code service, or run code with POST /v1/sandboxes/{id}/commands")
	}
	return s.opts.code, nil
}

// execute runs a cell in the sandbox's code interpreter. The response is the assembled
// execution, or an SSE stream of the interpreter's lines when the body says
// "stream": true or the client accepts text/event-stream.
func (s *Server) execute(w http.ResponseWriter, r *http.Request) error {
	code, err := s.codeService()
	if err != nil {
		return err
	}
	p, id, body, err := edge.SandboxCall[runCodeRequest](w, r, s.decodeJSON)
	if err != nil {
		return err
	}
	switch {
	case body.Code == "":
		return domain.Invalid("code", "field \"code\" is required: the source of the cell to run")
	case body.Language != "" && body.ContextID != "":
		return domain.Invalid("context_id", "send either language (its default context) or context_id (a context you created), not both")
	}
	if err := checkTimeout("timeout", body.Timeout, false); err != nil {
		return err
	}
	req := domain.RunCode{
		Code: body.Code, Language: body.Language, ContextID: body.ContextID, Env: body.Env,
		Timeout: time.Duration(body.Timeout) * time.Second,
	}
	if body.Stream || acceptsEventStream(r) {
		return s.executeStream(w, r, code, p, id, req)
	}
	var ex execution
	ex.init()
	if err := code.RunCode(r.Context(), p, id, req, func(ev domain.CodeEvent) error {
		return ex.apply(ev)
	}); err != nil {
		return err
	}
	return writeExecution(w, &ex)
}

// executeStream relays each interpreter line as one SSE event named after the line's
// type, with the line as its data. Nothing is written before the first line, so a
// failure to start is an ordinary JSON error; a failure after that ends the stream with
// an "error" event carrying an Error body (which, unlike the interpreter's own error
// lines, has no "type" field).
func (s *Server) executeStream(w http.ResponseWriter, r *http.Request, code domain.CodeService, p domain.Principal, id string, req domain.RunCode) error {
	sse := &sseWriter{w: w}
	stop := s.keepStreamAlive(sse)
	err := code.RunCode(r.Context(), p, id, req, func(ev domain.CodeEvent) error {
		if ev.Type == "keepalive" {
			return sse.comment("keepalive") // the interpreter's own keep-alive
		}
		if !validEventName(ev.Type) {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "dropping an interpreter line with an unusable type",
				slog.String(logkey.RequestID, edge.RequestID(r.Context())), slog.String("type", ev.Type))
			return nil
		}
		data := []byte(ev.Raw)
		if bytes.ContainsAny(data, "\r\n") {
			// An SSE data line ends at a newline; JSON never needs one outside strings.
			var buf bytes.Buffer
			if err := json.Compact(&buf, data); err != nil {
				return fmt.Errorf("interpreter line of type %s is not JSON: %w", ev.Type, err)
			}
			data = buf.Bytes()
		}
		return sse.write("event: " + ev.Type + "\ndata: " + string(data) + "\n\n")
	})
	stop()
	if err == nil {
		if !sse.started() {
			_ = sse.write("") // no lines at all: still an (empty) event stream
		}
		return nil
	}
	if !sse.started() {
		return err
	}
	if werr := sse.writeErr(); werr != nil {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "event stream client went away",
			slog.String(logkey.RequestID, edge.RequestID(r.Context())), slog.Any(logkey.Err, werr))
		return nil
	}
	eb := s.errorEvent(r, err)
	_ = sse.send("error", eb)
	return nil
}

// validEventName reports whether name can be an SSE event name here: a non-empty word
// of letters, digits and underscores (every interpreter line type is one).
func validEventName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (s *Server) createCodeContext(w http.ResponseWriter, r *http.Request) error {
	code, err := s.codeService()
	if err != nil {
		return err
	}
	p, id, body, err := edge.SandboxCall[createContextRequest](w, r, s.decodeJSON)
	if err != nil {
		return err
	}
	c, err := code.CreateCodeContext(r.Context(), p, id, body.Language, body.Cwd)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("create code context in sandbox %s: service returned no context", id)
	}
	s.edge.WriteJSON(w, r, http.StatusCreated, toContextJSON(*c))
	return nil
}

func (s *Server) listCodeContexts(w http.ResponseWriter, r *http.Request) error {
	code, err := s.codeService()
	if err != nil {
		return err
	}
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	cs, err := code.ListCodeContexts(r.Context(), p, id)
	if err != nil {
		return err
	}
	resp := listContextsResponse{Contexts: make([]contextJSON, 0, len(cs))}
	for _, c := range cs {
		resp.Contexts = append(resp.Contexts, toContextJSON(c))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}

func (s *Server) restartCodeContext(w http.ResponseWriter, r *http.Request) error {
	return s.contextAction(w, r, domain.CodeService.RestartCodeContext)
}

func (s *Server) deleteCodeContext(w http.ResponseWriter, r *http.Request) error {
	return s.contextAction(w, r, domain.CodeService.DeleteCodeContext)
}

// contextAction runs act on the {context_id} of the {id} sandbox and answers 204.
func (s *Server) contextAction(w http.ResponseWriter, r *http.Request,
	act func(domain.CodeService, context.Context, domain.Principal, string, string) error) error {
	code, err := s.codeService()
	if err != nil {
		return err
	}
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	if err := act(code, r.Context(), p, id, r.PathValue("context_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// keepStreamAlive writes a comment to a quiet SSE stream every keepAlive so that proxies
// do not time it out. The returned stop waits for the writer to finish.
func (s *Server) keepStreamAlive(sse *sseWriter) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(s.opts.keepAlive)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if sse.comment("keep-alive") != nil {
					return
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
