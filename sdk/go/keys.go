package warren

import (
	"context"
	"time"
)

// Scopes an API key can have. ScopeAdmin is every other scope within the key's team.
const (
	ScopeSandboxesRead  = "sandboxes:read"
	ScopeSandboxesWrite = "sandboxes:write"
	ScopeKeysRead       = "keys:read"
	ScopeKeysWrite      = "keys:write"
	ScopeUsageRead      = "usage:read"
	ScopeTeamRead       = "team:read"
	ScopeTeamWrite      = "team:write"
	ScopeAuditRead      = "audit:read"
	ScopeAdmin          = "admin"
)

// Key is an API key without its secret.
type Key struct {
	ID     string `json:"id"`
	TeamID string `json:"team_id"`
	Name   string `json:"name"`
	// Prefix is the non-secret start of the key, to recognise it.
	Prefix string   `json:"prefix"`
	Scopes []string `json:"scopes"`
	// Admin marks the platform admin key (it may act on every team).
	Admin      bool      `json:"admin"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
}

// CreatedKey is a new API key with its secret, which the server shows only once.
type CreatedKey struct {
	Key
	// Secret is the key itself (sk_...): store it now.
	Secret string `json:"key"`
}

// KeyOptions describe a key to create. Zero fields mean the defaults.
type KeyOptions struct {
	// Name is a label to tell keys apart.
	Name string
	// Scopes are what the key may do (default: the creator's scopes; never more).
	Scopes []string
	// ExpiresAt, or ExpiresIn from now (rounded up to whole seconds), ends the key's
	// validity; zero: it never expires. Give at most one.
	ExpiresAt time.Time
	ExpiresIn time.Duration
	// TeamID creates the key for another team (platform admins only).
	TeamID string
}

type createKeyWire struct {
	Name      string   `json:"name,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	ExpiresAt string   `json:"expires_at,omitempty"`
	ExpiresIn int64    `json:"expires_in,omitempty"`
	TeamID    string   `json:"team_id,omitempty"`
}

type keyList struct {
	Keys []Key `json:"keys"`
}

// CreateKey makes an API key. Its secret (CreatedKey.Secret) is returned this once;
// the server keeps only a hash.
func (c *Client) CreateKey(ctx context.Context, opts KeyOptions) (*CreatedKey, error) {
	w := createKeyWire{Name: opts.Name, Scopes: opts.Scopes, ExpiresIn: seconds(opts.ExpiresIn), TeamID: opts.TeamID}
	if !opts.ExpiresAt.IsZero() {
		w.ExpiresAt = opts.ExpiresAt.UTC().Format(time.RFC3339)
	}
	var k CreatedKey
	if err := c.call(ctx, request{route: routeCreateKey, json: w}, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// ListKeys lists the team's API keys, without secrets.
func (c *Client) ListKeys(ctx context.Context) ([]Key, error) {
	var list keyList
	if err := c.call(ctx, request{route: routeListKeys}, &list); err != nil {
		return nil, err
	}
	if list.Keys == nil {
		list.Keys = []Key{}
	}
	return list.Keys, nil
}

// RevokeKey revokes an API key; it stops working at once.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	return c.call(ctx, request{route: routeRevokeKey, params: []string{id}}, nil)
}

// Template is a root filesystem recipe sandboxes start from.
type Template struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	// Ready says whether its root filesystem is built, so sandboxes can start from it.
	Ready     bool      `json:"ready"`
	BuiltAt   time.Time `json:"built_at,omitzero"`
	SizeBytes int64     `json:"size_bytes"`
	// BuiltIn is a template every team sees; the others are the team's own.
	BuiltIn  bool   `json:"builtin"`
	StartCmd string `json:"start_cmd,omitempty"`
	// CPUCores and MemoryMB are a built template's defaults for its sandboxes (0: the
	// server's).
	CPUCores float64 `json:"cpu_cores,omitempty"`
	MemoryMB int64   `json:"memory_mb,omitempty"`
}

type templateList struct {
	Templates []Template `json:"templates"`
}

// Templates lists the templates sandboxes can start from.
func (c *Client) Templates(ctx context.Context) ([]Template, error) {
	var list templateList
	if err := c.call(ctx, request{route: routeTemplates}, &list); err != nil {
		return nil, err
	}
	if list.Templates == nil {
		list.Templates = []Template{}
	}
	return list.Templates, nil
}
