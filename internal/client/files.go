package client

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
)

func fileQuery(path string) url.Values {
	return url.Values{"path": {path}}
}

// Upload writes r's content to path in the sandbox (creating parent directories),
// streaming it: any size works.
func (c *Client) Upload(ctx context.Context, id, path string, r io.Reader) (*FileInfo, error) {
	req, err := c.newRequest(ctx, "PUT", sandboxPath(id, "/files/content"), fileQuery(path), r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Accept", "application/json")
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var fi FileInfo
	if err := decodeJSON(resp.Body, &fi); err != nil {
		return nil, fmt.Errorf("decoding upload response: %w", err)
	}
	return &fi, nil
}

// Download streams the file at path in the sandbox into w and returns how many bytes it
// wrote. A transfer that breaks part-way is an error, never a silently short file.
func (c *Client) Download(ctx context.Context, id, path string, w io.Writer) (int64, error) {
	req, err := c.newRequest(ctx, "GET", sandboxPath(id, "/files/content"), fileQuery(path), nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.send(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("downloading %s after %d bytes: %w", path, n, err)
	}
	return n, nil
}

// ListFiles lists the directory at path, descending depth levels (at least 1).
func (c *Client) ListFiles(ctx context.Context, id, path string, depth int) ([]FileInfo, error) {
	q := fileQuery(path)
	if depth > 0 {
		q.Set("depth", strconv.Itoa(depth))
	}
	var resp struct {
		Entries []FileInfo `json:"entries"`
	}
	if err := c.doJSON(ctx, "GET", sandboxPath(id, "/files"), q, nil, &resp); err != nil {
		return nil, err
	}
	return resp.Entries, nil
}
