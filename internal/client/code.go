package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// runCodeWire is the request body of POST /v1/sandboxes/{id}/execute.
type runCodeWire struct {
	Code      string            `json:"code"`
	Language  string            `json:"language,omitempty"`
	ContextID string            `json:"context_id,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Timeout   int64             `json:"timeout,omitempty"`
	Stream    bool              `json:"stream,omitempty"`
}

func toRunCodeWire(req RunCodeRequest, stream bool) runCodeWire {
	return runCodeWire{
		Code: req.Code, Language: req.Language, ContextID: req.ContextID, Env: req.Env,
		Timeout: seconds(req.Timeout), Stream: stream,
	}
}

// RunCode runs a cell in the sandbox's code interpreter and waits for it.
func (c *Client) RunCode(ctx context.Context, id string, req RunCodeRequest) (*Execution, error) {
	var ex Execution
	if err := c.doJSON(ctx, "POST", sandboxPath(id, "/execute"), nil, toRunCodeWire(req, false), &ex); err != nil {
		return nil, err
	}
	return &ex, nil
}

// RunCodeStream runs a cell and calls onEvent (which may be nil) for each interpreter
// line as it arrives: number_of_executions, stdout, stderr and result as they come, error
// if the cell raised, end_of_execution. It returns the Execution assembled from them. An
// error from onEvent stops reading and is returned; a failure the server reports
// mid-stream is an *APIError.
func (c *Client) RunCodeStream(ctx context.Context, id string, req RunCodeRequest, onEvent func(CodeEvent) error) (*Execution, error) {
	body, err := json.Marshal(toRunCodeWire(req, true))
	if err != nil {
		return nil, err
	}
	hreq, err := c.newRequest(ctx, "POST", sandboxPath(id, "/execute"), nil, bytes.NewReader(body))
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
		return nil, fmt.Errorf("code stream: server answered %q, not an event stream", ct)
	}
	ex := &Execution{Results: []Result{}, Logs: Logs{Stdout: []string{}, Stderr: []string{}}}
	err = readSSE(resp.Body, func(name string, data []byte) error {
		if name == "error" {
			if apiErr := streamFailure(data); apiErr != nil {
				return apiErr
			}
		}
		ev, err := decodeCodeLine(name, data)
		if err != nil {
			return err
		}
		ex.apply(ev)
		if onEvent != nil {
			return onEvent(*ev)
		}
		return nil
	})
	if err != nil {
		if apiErr, ok := err.(*APIError); ok {
			apiErr.Status = resp.StatusCode
			if apiErr.RequestID == "" {
				apiErr.RequestID = resp.Header.Get("X-Request-Id")
			}
		}
		return nil, err
	}
	// The stream ends when the cell does (after end_of_execution, or earlier if the
	// interpreter stopped); a connection cut mid-way is a read error above.
	return ex, nil
}

// streamFailure returns the *APIError of an "error" event that reports a failure of
// the server (an Error body: code and message, no type), or nil for the interpreter's
// own error line (the cell raised).
func streamFailure(data []byte) *APIError {
	var v struct {
		Type      *string `json:"type"`
		Code      string  `json:"code"`
		Message   string  `json:"message"`
		RequestID string  `json:"request_id"`
		Field     string  `json:"field"`
	}
	if json.Unmarshal(data, &v) != nil || v.Type != nil || v.Code == "" {
		return nil
	}
	return &APIError{Code: v.Code, Message: v.Message, RequestID: v.RequestID, Field: v.Field}
}

// CreateCodeContext starts a new interpreter context (a kernel with its own state).
func (c *Client) CreateCodeContext(ctx context.Context, id string, req CreateCodeContextRequest) (*CodeContext, error) {
	in := struct {
		Language string `json:"language,omitempty"`
		Cwd      string `json:"cwd,omitempty"`
	}{req.Language, req.Cwd}
	var out CodeContext
	if err := c.doJSON(ctx, "POST", sandboxPath(id, "/contexts"), nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListCodeContexts lists the sandbox's interpreter contexts.
func (c *Client) ListCodeContexts(ctx context.Context, id string) ([]CodeContext, error) {
	var resp struct {
		Contexts []CodeContext `json:"contexts"`
	}
	if err := c.doJSON(ctx, "GET", sandboxPath(id, "/contexts"), nil, nil, &resp); err != nil {
		return nil, err
	}
	return resp.Contexts, nil
}

// RestartCodeContext restarts a context's kernel: its state is lost, its id stays.
func (c *Client) RestartCodeContext(ctx context.Context, id, contextID string) error {
	return c.doJSON(ctx, "POST", sandboxPath(id, "/contexts/", url.PathEscape(contextID), "/restart"), nil, nil, nil)
}

// DeleteCodeContext stops a context's kernel and forgets it.
func (c *Client) DeleteCodeContext(ctx context.Context, id, contextID string) error {
	return c.doJSON(ctx, "DELETE", sandboxPath(id, "/contexts/", url.PathEscape(contextID)), nil, nil, nil)
}
