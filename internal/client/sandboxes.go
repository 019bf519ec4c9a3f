package client

import (
	"context"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// seconds rounds d up to whole seconds, the API's unit.
func seconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}

// CreateSandbox starts a sandbox and returns it once it runs.
func (c *Client) CreateSandbox(ctx context.Context, req CreateSandboxRequest) (*Sandbox, error) {
	wire := struct {
		Template     string            `json:"template,omitempty"`
		Timeout      int64             `json:"timeout,omitempty"`
		Env          map[string]string `json:"env,omitempty"`
		Metadata     map[string]string `json:"metadata,omitempty"`
		Internet     *bool             `json:"internet,omitempty"`
		Limits       Limits            `json:"limits"`
		Runtime      string            `json:"runtime,omitempty"`
		MinIsolation string            `json:"min_isolation,omitempty"`
	}{req.Template, seconds(req.Timeout), req.Env, req.Metadata, req.Internet, req.Limits, req.Runtime, req.MinIsolation}
	var sb Sandbox
	if err := c.doJSON(ctx, "POST", "/v1/sandboxes", nil, wire, &sb); err != nil {
		return nil, err
	}
	return &sb, nil
}

// GetSandbox returns one sandbox of the caller's team.
func (c *Client) GetSandbox(ctx context.Context, id string) (*Sandbox, error) {
	var sb Sandbox
	if err := c.doJSON(ctx, "GET", sandboxPath(id), nil, nil, &sb); err != nil {
		return nil, err
	}
	return &sb, nil
}

// ListSandboxes returns one page of the team's sandboxes, newest first, and the cursor of
// the next page ("" on the last page).
func (c *Client) ListSandboxes(ctx context.Context, p ListSandboxesParams) ([]Sandbox, string, error) {
	q := url.Values{}
	if len(p.States) > 0 {
		q.Set("state", strings.Join(p.States, ","))
	}
	for k, v := range p.Metadata {
		q.Set("metadata."+k, v)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	var resp struct {
		Sandboxes  []Sandbox `json:"sandboxes"`
		NextCursor string    `json:"next_cursor"`
	}
	if err := c.doJSON(ctx, "GET", "/v1/sandboxes", q, nil, &resp); err != nil {
		return nil, "", err
	}
	return resp.Sandboxes, resp.NextCursor, nil
}

// KillSandbox stops a sandbox for good.
func (c *Client) KillSandbox(ctx context.Context, id string) error {
	return c.doJSON(ctx, "DELETE", sandboxPath(id), nil, nil, nil)
}

// SetTimeout makes the sandbox end d from now (rounded up to whole seconds).
func (c *Client) SetTimeout(ctx context.Context, id string, d time.Duration) (*Sandbox, error) {
	var sb Sandbox
	in := map[string]int64{"timeout": seconds(d)}
	if err := c.doJSON(ctx, "POST", sandboxPath(id, "/timeout"), nil, in, &sb); err != nil {
		return nil, err
	}
	return &sb, nil
}
