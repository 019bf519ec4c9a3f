package rest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// The terminal WebSocket: binary frames from the client are keystrokes, binary frames
// from the server are the terminal's output. Text frames carry JSON control messages:
// the client sends {"type":"resize","cols":N,"rows":N}; the server sends
// {"type":"exit","code":N} when the shell ended (then closes with 1000) and
// {"type":"error","message":"..."} for a control message it could not apply.

const (
	// terminalPing is how often the server pings an idle terminal so that proxies keep
	// the connection open and dead clients are noticed.
	terminalPing = 30 * time.Second
	// terminalReadLimit bounds one frame from the client (a large paste).
	terminalReadLimit = 1 << 20
)

// terminalControl is a text frame in either direction.
type terminalControl struct {
	Type    string  `json:"type"`
	Cols    uint32  `json:"cols,omitempty"`
	Rows    uint32  `json:"rows,omitempty"`
	Code    *int    `json:"code,omitempty"`
	Message string  `json:"message,omitempty"`
	Error   *string `json:"error,omitempty"`
}

// terminalSize reads ?cols=&rows= (default 80x24).
func terminalSize(r *http.Request) (cols, rows uint32, err error) {
	cols, rows = 80, 24
	for _, d := range []struct {
		name string
		dst  *uint32
	}{{"cols", &cols}, {"rows", &rows}} {
		v := r.URL.Query().Get(d.name)
		if v == "" {
			continue
		}
		n, perr := strconv.ParseUint(v, 10, 32)
		if perr != nil || n < 1 || n > 1000 {
			return 0, 0, domain.Invalid(d.name, "%s must be an integer from 1 to 1000, got %q", d.name, v)
		}
		*d.dst = uint32(n)
	}
	return cols, rows, nil
}

// WithTerminals serves the terminal WebSocket (GET /v1/sandboxes/{id}/terminal) from
// ts. Without it that route answers 503.
func WithTerminals(ts domain.TerminalService) Option { return func(o *options) { o.terminals = ts } }

// terminal opens a login shell on a pseudo-terminal in the sandbox and connects it to a
// WebSocket. The shell is started before the upgrade, so that an unknown sandbox or a
// missing scope is an ordinary JSON error.
func (s *Server) terminal(w http.ResponseWriter, r *http.Request) error {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	ts := s.opts.terminals
	if ts == nil {
		return domain.Errorf(domain.KindUnavailable, "this server does not offer terminals")
	}
	cols, rows, err := terminalSize(r)
	if err != nil {
		return err
	}
	if !isWebSocket(r) {
		return domain.Invalid("", "this endpoint is a WebSocket: connect with a WebSocket client (Connection: Upgrade, Upgrade: websocket)")
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	term, err := ts.OpenTerminal(ctx, p, id, domain.TerminalRequest{Cols: cols, Rows: rows, Cmd: r.URL.Query().Get("cmd")})
	if err != nil {
		return err
	}
	defer func() {
		if err := term.Close(); err != nil {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "closing terminal",
				slog.String(logkey.RequestID, edge.RequestID(r.Context())), slog.String(logkey.SandboxID, id), slog.Any(logkey.Err, err))
		}
	}()
	// The Origin of cookie-authenticated upgrades was checked by authenticate; API-key
	// clients are not browsers and cannot be driven by another site.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "terminal WebSocket handshake failed",
			slog.String(logkey.RequestID, edge.RequestID(r.Context())), slog.Any(logkey.Err, err))
		return nil // Accept has answered
	}
	conn.SetReadLimit(terminalReadLimit)
	sess := &terminalSession{s: s, conn: conn, term: term, id: id, reqID: edge.RequestID(r.Context())}
	sess.run(ctx, cancel)
	return nil
}

// terminalSession connects one WebSocket to one Terminal.
type terminalSession struct {
	s     *Server
	conn  *websocket.Conn
	term  domain.Terminal
	id    string
	reqID string
}

// run pumps both directions until the shell exits or the client goes away.
func (t *terminalSession) run(ctx context.Context, cancel context.CancelFunc) {
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		defer cancel()
		t.output(ctx)
	}()
	go t.ping(ctx)
	t.input(ctx)
	cancel()
	// Ends a shell that still runs, which ends output's Read; errors are reported by
	// the handler's own (later) Close.
	_ = t.term.Close()
	<-outDone
	// If the client left first, conn is already closed and this does nothing.
	_ = t.conn.CloseNow()
}

// output copies the terminal's output to the client, then reports the exit.
func (t *terminalSession) output(ctx context.Context) {
	buf := make([]byte, 32<<10)
	for {
		n, err := t.term.Read(buf)
		if n > 0 {
			if werr := t.conn.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
				return
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.fail(ctx, err)
			return
		}
	}
	code, err := t.term.Wait(ctx)
	if err != nil {
		t.fail(ctx, err)
		return
	}
	if t.send(ctx, terminalControl{Type: "exit", Code: &code}) != nil {
		return
	}
	_ = t.conn.Close(websocket.StatusNormalClosure, "the shell exited")
}

// fail tells the client that the session broke and closes the connection.
func (t *terminalSession) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // the client went away; nothing to tell
	}
	msg := domain.PublicMessage(err)
	if msg == "" {
		msg = "the terminal session broke; quote request_id " + t.reqID + " when reporting it"
		t.s.log.LogAttrs(ctx, slog.LevelError, "terminal session broke",
			slog.String(logkey.RequestID, t.reqID), slog.String(logkey.SandboxID, t.id), slog.Any(logkey.Err, err))
	}
	code := -1
	_ = t.send(ctx, terminalControl{Type: "exit", Code: &code, Error: &msg})
	_ = t.conn.Close(websocket.StatusInternalError, "terminal session broke")
}

func (t *terminalSession) send(ctx context.Context, m terminalControl) error {
	b, _ := json.Marshal(m)
	return t.conn.Write(ctx, websocket.MessageText, b)
}

// input applies the client's frames until the connection ends.
func (t *terminalSession) input(ctx context.Context) {
	for {
		typ, data, err := t.conn.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageBinary {
			if _, err := t.term.Write(data); err != nil {
				if ctx.Err() == nil {
					_ = t.send(ctx, terminalControl{Type: "error", Message: "typing failed: " + errorText(err)})
				}
			}
			continue
		}
		var m terminalControl
		if err := json.Unmarshal(data, &m); err != nil {
			_ = t.send(ctx, terminalControl{Type: "error", Message: `control messages are JSON such as {"type":"resize","cols":80,"rows":24}`})
			continue
		}
		switch m.Type {
		case "resize":
			if m.Cols < 1 || m.Rows < 1 || m.Cols > 1000 || m.Rows > 1000 {
				_ = t.send(ctx, terminalControl{Type: "error", Message: "resize needs cols and rows from 1 to 1000"})
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := t.term.Resize(rctx, m.Cols, m.Rows)
			cancel()
			if err != nil && ctx.Err() == nil {
				_ = t.send(ctx, terminalControl{Type: "error", Message: "resizing failed: " + errorText(err)})
			}
		default:
			_ = t.send(ctx, terminalControl{Type: "error", Message: "unknown control message type " + strconv.Quote(m.Type) + `: the only one is "resize"`})
		}
	}
}

// ping keeps the connection alive until ctx ends.
func (t *terminalSession) ping(ctx context.Context) {
	tick := time.NewTicker(terminalPing)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			pctx, cancel := context.WithTimeout(ctx, terminalPing)
			err := t.conn.Ping(pctx)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

// errorText is the client-safe text of err.
func errorText(err error) string {
	if msg := domain.PublicMessage(err); msg != "" {
		return msg
	}
	return "internal error"
}
