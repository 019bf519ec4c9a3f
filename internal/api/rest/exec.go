package rest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// exec runs a command. The response is one JSON object, or an SSE stream when the body
// says "stream": true or the client accepts text/event-stream. With "background": true
// it starts the command and answers 201 {"pid": N} at once (startBackground).
func (s *Server) exec(w http.ResponseWriter, r *http.Request) error {
	p, id, body, err := edge.SandboxCall[execRequest](w, r, s.decodeJSON)
	if err != nil {
		return err
	}
	req, err := toExecRequest(body)
	if err != nil {
		return err
	}
	if body.Background || body.StdinOpen {
		return s.startBackground(w, r, p, id, req, body)
	}
	ps, err := s.processes()
	if err != nil {
		return err
	}
	if body.Stream || acceptsEventStream(r) {
		return s.execStream(w, r, ps, p, id, req)
	}
	res, err := ps.Exec(r.Context(), p, id, req, nil)
	if err != nil {
		return err
	}
	if res == nil {
		return fmt.Errorf("exec in sandbox %s: service returned no result", id)
	}
	writeExecResult(w, res) // execResponse, written piece by piece
	return nil
}

func toExecRequest(b execRequest) (domain.ExecRequest, error) {
	var req domain.ExecRequest
	switch {
	case b.Cmd != "" && len(b.Args) > 0:
		return req, domain.Invalid("cmd", "send either cmd (a shell line) or args (an argv array), not both")
	case b.Cmd == "" && len(b.Args) == 0:
		return req, domain.Invalid("cmd", "one of cmd (a shell line) or args (an argv array) is required")
	case len(b.Args) > 0 && b.Args[0] == "":
		return req, domain.Invalid("args", "args[0] must name the program to run")
	}
	if err := checkTimeout("timeout", b.Timeout, false); err != nil {
		return req, err
	}
	req = domain.ExecRequest{
		Cmd: b.Cmd, Args: b.Args, Env: b.Env, Cwd: b.Cwd, User: b.User,
		Timeout: time.Duration(b.Timeout) * time.Second,
	}
	switch {
	case b.Stdin != nil && b.StdinBase64 != nil:
		return req, domain.Invalid("stdin", "send either stdin or stdin_base64, not both")
	case b.Stdin != nil:
		req.Stdin = []byte(*b.Stdin)
	case b.StdinBase64 != nil:
		in, err := base64.StdEncoding.DecodeString(*b.StdinBase64)
		if err != nil {
			return req, domain.Invalid("stdin_base64", "stdin_base64 is not valid base64: %v", err)
		}
		req.Stdin = in
	}
	return req, nil
}

func acceptsEventStream(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

// execStream streams the command as SSE: start, stdout/stderr..., then end or error.
// Nothing is written until the first event, so a failure to start (unknown sandbox, bad
// user) is still an ordinary JSON error with its status code.
func (s *Server) execStream(w http.ResponseWriter, r *http.Request, ps domain.ProcessService, p domain.Principal, id string, req domain.ExecRequest) error {
	return s.streamCommand(w, r, id, func(onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
		return ps.Exec(r.Context(), p, id, req, onEvent)
	})
}

// streamCommand runs run and streams what it reports as SSE (see execStream); the
// process routes share it.
func (s *Server) streamCommand(w http.ResponseWriter, r *http.Request, id string, run func(onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error)) error {
	sse := &sseWriter{w: w}
	stop := s.keepStreamAlive(sse)
	res, err := run(func(ev domain.ExecEvent) error {
		switch {
		case ev.Stdout != nil:
			return sse.send("stdout", outputEvent{Data: base64.StdEncoding.EncodeToString(ev.Stdout), Text: string(ev.Stdout)})
		case ev.Stderr != nil:
			return sse.send("stderr", outputEvent{Data: base64.StdEncoding.EncodeToString(ev.Stderr), Text: string(ev.Stderr)})
		case ev.End != nil:
			return nil // the returned result is authoritative; "end" is sent from it
		default:
			return sse.send("start", startEvent{PID: ev.PID})
		}
	})
	stop()
	if err == nil && res == nil {
		err = fmt.Errorf("exec in sandbox %s: service returned no result", id)
	}
	if err != nil {
		if !sse.started() {
			return err
		}
		if werr := sse.writeErr(); werr != nil {
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "event stream client went away",
				slog.String(logkey.RequestID, edge.RequestID(r.Context())), slog.Any(logkey.Err, werr))
			return nil
		}
		body := s.errorEvent(r, err)
		_ = sse.send("error", body)
		return nil
	}
	_ = sse.send("end", endEvent{ExitCode: res.ExitCode, Error: res.Error, TimedOut: res.TimedOut})
	return nil
}

// sseWriter writes Server-Sent Events. The service's callback and the keep-alive ticker
// both write, so every write holds mu. After a failed write, all later writes fail.
type sseWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	begun   bool
	lastErr error
}

// beginLocked sends the SSE headers. Preconditions: mu held.
func (e *sseWriter) beginLocked() {
	if e.begun {
		return
	}
	h := e.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	e.w.WriteHeader(http.StatusOK)
	e.begun = true
}

func (e *sseWriter) send(event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.write("event: " + event + "\ndata: " + string(data) + "\n\n")
}

func (e *sseWriter) comment(text string) error { return e.write(": " + text + "\n\n") }

func (e *sseWriter) write(s string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lastErr != nil {
		return e.lastErr
	}
	e.beginLocked()
	if _, err := e.w.Write([]byte(s)); err != nil {
		e.lastErr = err
		return err
	}
	if err := http.NewResponseController(e.w).Flush(); err != nil {
		e.lastErr = err
		return err
	}
	return nil
}

func (e *sseWriter) started() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.begun
}

func (e *sseWriter) writeErr() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastErr
}
