package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// execWire is the request body of POST /v1/sandboxes/{id}/commands.
type execWire struct {
	Cmd         string            `json:"cmd,omitempty"`
	Args        []string          `json:"args,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Cwd         string            `json:"cwd,omitempty"`
	User        string            `json:"user,omitempty"`
	Stdin       *string           `json:"stdin,omitempty"`
	StdinBase64 *string           `json:"stdin_base64,omitempty"`
	Timeout     int64             `json:"timeout,omitempty"`
	Stream      bool              `json:"stream,omitempty"`
}

func toExecWire(req ExecRequest, stream bool) execWire {
	w := execWire{
		Cmd: req.Cmd, Args: req.Args, Env: req.Env, Cwd: req.Cwd, User: req.User,
		Timeout: seconds(req.Timeout), Stream: stream,
	}
	if req.Stdin != nil {
		// JSON strings cannot carry arbitrary bytes; send those base64-encoded.
		if utf8.Valid(req.Stdin) {
			s := string(req.Stdin)
			w.Stdin = &s
		} else {
			s := base64.StdEncoding.EncodeToString(req.Stdin)
			w.StdinBase64 = &s
		}
	}
	return w
}

// Exec runs a command and waits for it. A non-zero exit code is a result, not an error.
func (c *Client) Exec(ctx context.Context, id string, req ExecRequest) (*ExecResult, error) {
	var res ExecResult
	if err := c.doJSON(ctx, "POST", sandboxPath(id, "/commands"), nil, toExecWire(req, false), &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// ExecStream runs a command and calls onEvent for each event as it arrives: start, then
// stdout and stderr chunks, then end. It returns how the command ended (without its
// output). An error from onEvent stops reading and is returned; a failure the server
// reports mid-stream is an *APIError.
func (c *Client) ExecStream(ctx context.Context, id string, req ExecRequest, onEvent func(ExecEvent) error) (*ExecResult, error) {
	body, err := json.Marshal(toExecWire(req, true))
	if err != nil {
		return nil, err
	}
	hreq, err := c.newRequest(ctx, "POST", sandboxPath(id, "/commands"), nil, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")
	resp, err := c.send(hreq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return nil, fmt.Errorf("exec stream: server answered %q, not an event stream", ct)
	}
	if onEvent == nil {
		onEvent = func(ExecEvent) error { return nil }
	}
	var result *ExecResult
	err = readSSE(resp.Body, func(name string, data []byte) error {
		ev, err := decodeEvent(name, data)
		if err != nil || ev == nil {
			return err
		}
		if err := onEvent(*ev); err != nil {
			return err
		}
		if ev.Type == EventEnd {
			result = &ExecResult{ExitCode: ev.ExitCode, Error: ev.Error}
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			apiErr.Status = resp.StatusCode
			if apiErr.RequestID == "" {
				apiErr.RequestID = resp.Header.Get("X-Request-Id")
			}
		}
		return nil, err
	}
	if result == nil {
		return nil, fmt.Errorf("exec stream ended before the command finished: %w", io.ErrUnexpectedEOF)
	}
	return result, nil
}

var errStop = errors.New("stop reading the stream")

// decodeEvent turns one SSE event into an ExecEvent; unknown events are skipped (nil) so
// that older clients survive newer servers. An "error" event becomes an *APIError.
func decodeEvent(name string, data []byte) (*ExecEvent, error) {
	switch name {
	case EventStart:
		var v struct {
			PID int `json:"pid"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("exec stream: bad start event: %w", err)
		}
		return &ExecEvent{Type: name, PID: v.PID}, nil
	case EventStdout, EventStderr:
		var v struct {
			Data string `json:"data"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("exec stream: bad %s event: %w", name, err)
		}
		raw, err := base64.StdEncoding.DecodeString(v.Data)
		if err != nil {
			return nil, fmt.Errorf("exec stream: bad %s data: %w", name, err)
		}
		return &ExecEvent{Type: name, Data: raw}, nil
	case EventEnd:
		var v ExecResult
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("exec stream: bad end event: %w", err)
		}
		return &ExecEvent{Type: name, ExitCode: v.ExitCode, Error: v.Error}, nil
	case "error":
		var v struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
			Field     string `json:"field"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("exec stream: bad error event: %w", err)
		}
		return nil, &APIError{Code: v.Code, Message: v.Message, RequestID: v.RequestID, Field: v.Field}
	}
	return nil, nil
}

// readSSE parses a text/event-stream and calls fn for each event with a data field.
// Comments (keep-alives) and fields other than event and data are ignored.
func readSSE(r io.Reader, fn func(name string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20) // a code result's image can be large
	var name string
	var data []byte
	hasData := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if hasData {
				if name == "" {
					name = "message"
				}
				if err := fn(name, data); err != nil {
					return err
				}
			}
			name, data, hasData = "", data[:0], false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			name = value
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		}
	}
	return sc.Err()
}
