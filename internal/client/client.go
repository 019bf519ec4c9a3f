// Package client is a small typed Go client for Warren's REST API, /v1: sandboxes,
// commands (whole or streamed over Server-Sent Events), code execution in a sandbox's
// code interpreter (whole or streamed) and its contexts, files (streamed both ways), API
// keys and templates. Errors the API reports come back as *APIError.
//
// It deliberately does not import the server's packages: it speaks only the documented
// wire format (internal/api/rest/openapi.json), so it could be published on its own.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// APIError is an error response from the API.
type APIError struct {
	// Status is the HTTP status code (200 for an error event in a command stream).
	Status int
	// Code is the error kind: not_found, invalid, unauthorized, forbidden, conflict,
	// quota_exceeded, unavailable, internal, ...
	Code    string
	Message string
	// RequestID identifies the request in the server's logs; quote it in bug reports.
	RequestID string
	// Field names the offending request field, for Code "invalid".
	Field string
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	b.WriteString(" (")
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d, ", e.Status)
	}
	b.WriteString(e.Code)
	if e.RequestID != "" {
		b.WriteString(", request ")
		b.WriteString(e.RequestID)
	}
	b.WriteString(")")
	return b.String()
}

// Client calls one Warren server. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host[/prefix], no trailing slash
	key       string
	hc        *http.Client
	userAgent string
}

// Option configures a Client.
type Option func(*Client) error

// WithHTTPClient sets the HTTP client (default: a client with no overall timeout, since
// streams and large files take as long as they take; bound calls with the context).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("client: WithHTTPClient: nil client")
		}
		c.hc = hc
		return nil
	}
}

// WithUserAgent sets the User-Agent header (default "warren-client").
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		c.userAgent = ua
		return nil
	}
}

// New returns a client for the server at baseURL (e.g. "http://127.0.0.1:3000") that
// authenticates with apiKey ("sk_..."). An empty key sends no credentials.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: API URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: API URL %q must look like http://host:port", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: API URL %q must not have a query or fragment", baseURL)
	}
	c := &Client{base: strings.TrimRight(u.String(), "/"), key: apiKey}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.userAgent == "" {
		c.userAgent = "warren-client"
	}
	return c, nil
}

// newRequest builds a request for path (already escaped, starting with "/").
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("User-Agent", c.userAgent)
	return req, nil
}

// send performs req and turns non-2xx responses into *APIError. On success the caller
// owns resp.Body.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readAPIError(resp)
}

func readAPIError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	var wire struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
		Field     string `json:"field"`
	}
	if json.Unmarshal(body, &wire) == nil && wire.Message != "" {
		e.Code, e.Message, e.Field = wire.Code, wire.Message, wire.Field
		if wire.RequestID != "" {
			e.RequestID = wire.RequestID
		}
		return e
	}
	// Not one of ours: a proxy's error page, perhaps. Say what we got.
	e.Code = "http_" + fmt.Sprint(resp.StatusCode)
	e.Message = http.StatusText(resp.StatusCode)
	if text := strings.TrimSpace(string(body)); text != "" && len(text) < 200 {
		e.Message += ": " + text
	}
	if e.Message == "" {
		e.Message = "unexpected HTTP status " + resp.Status
	}
	return e
}

// doJSON sends in (if non-nil) as JSON and decodes the response into out (if non-nil).
func (c *Client) doJSON(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding %s %s response: %w", method, path, err)
	}
	return nil
}

func sandboxPath(id string, rest ...string) string {
	return "/v1/sandboxes/" + url.PathEscape(id) + strings.Join(rest, "")
}
