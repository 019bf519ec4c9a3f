package domain

import (
	"context"
	"time"
)

// Store persists teams, keys, templates and sandboxes. Implementations: store/sqlite
// (and later store/postgres), held to one conformance suite (store/storetest).
// Lookups of missing rows return a KindNotFound error.
type Store interface {
	CreateTeam(ctx context.Context, t *Team) error
	GetTeam(ctx context.Context, id string) (*Team, error)
	ListTeams(ctx context.Context) ([]*Team, error)

	CreateAPIKey(ctx context.Context, k *APIKey) error
	// GetAPIKeyByHash returns the key with that hash, revoked or not.
	GetAPIKeyByHash(ctx context.Context, hash string) (*APIKey, error)
	ListAPIKeys(ctx context.Context, teamID string) ([]*APIKey, error)
	// RevokeAPIKey marks a team's key revoked; NotFound if it is not that team's key.
	RevokeAPIKey(ctx context.Context, teamID, id string, at time.Time) error
	TouchAPIKey(ctx context.Context, id string, at time.Time) error

	UpsertTemplate(ctx context.Context, t *Template) error
	GetTemplate(ctx context.Context, id string) (*Template, error)
	ListTemplates(ctx context.Context) ([]*Template, error)

	CreateSandbox(ctx context.Context, s *Sandbox) error
	// GetSandbox returns a sandbox of any team when teamID is "", else only the team's.
	GetSandbox(ctx context.Context, teamID, id string) (*Sandbox, error)
	// UpdateSandbox writes every mutable field of s (state, reason, handle, address, times).
	UpdateSandbox(ctx context.Context, s *Sandbox) error
	// ListSandboxes pages by creation time, newest first; next is "" on the last page.
	ListSandboxes(ctx context.Context, f SandboxFilter) (items []*Sandbox, next string, err error)
	// UsedSlots returns the address slots held by sandboxes that are not terminal.
	UsedSlots(ctx context.Context) ([]int, error)

	Close() error
}
