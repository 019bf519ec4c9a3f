package client

import (
	"context"
	"encoding/json"
	"io"
	"net/url"
)

// CreateKey makes an API key for the caller's team. The secret (CreatedKey.Key) is
// returned this once; the server keeps only its hash.
func (c *Client) CreateKey(ctx context.Context, name string) (*CreatedKey, error) {
	var k CreatedKey
	if err := c.doJSON(ctx, "POST", "/v1/keys", nil, map[string]string{"name": name}, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// ListKeys lists the team's API keys, without secrets.
func (c *Client) ListKeys(ctx context.Context) ([]Key, error) {
	var resp struct {
		Keys []Key `json:"keys"`
	}
	if err := c.doJSON(ctx, "GET", "/v1/keys", nil, nil, &resp); err != nil {
		return nil, err
	}
	return resp.Keys, nil
}

// RevokeKey revokes one of the team's API keys.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	return c.doJSON(ctx, "DELETE", "/v1/keys/"+url.PathEscape(id), nil, nil, nil)
}

// Templates lists the templates sandboxes can start from.
func (c *Client) Templates(ctx context.Context) ([]Template, error) {
	var resp struct {
		Templates []Template `json:"templates"`
	}
	if err := c.doJSON(ctx, "GET", "/v1/templates", nil, nil, &resp); err != nil {
		return nil, err
	}
	return resp.Templates, nil
}

func decodeJSON(r io.Reader, v any) error {
	return json.NewDecoder(r).Decode(v)
}
