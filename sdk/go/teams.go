package warren

import (
	"context"
	"time"
)

// Quota is a team's limits; 0 means no limit.
type Quota struct {
	// MaxSandboxes, MaxCPUCores, MaxMemoryMB and MaxDiskMB cap what the team's running
	// sandboxes hold at once; RequestsPerMinute caps its API calls; MaxSnapshots caps
	// the snapshots it keeps; MaxTemplates and MaxTemplateMB its own templates.
	MaxSandboxes      int64   `json:"max_sandboxes"`
	MaxCPUCores       float64 `json:"max_cpu_cores"`
	MaxMemoryMB       int64   `json:"max_memory_mb"`
	MaxDiskMB         int64   `json:"max_disk_mb"`
	RequestsPerMinute int64   `json:"requests_per_minute"`
	MaxSnapshots      int64   `json:"max_snapshots"`
	MaxTemplates      int64   `json:"max_templates"`
	MaxTemplateMB     int64   `json:"max_template_mb"`
}

// QuotaPatch changes some fields of a team's quota: nil fields are left as they are
// (on create: as the server's default quota has them). 0 means no limit.
type QuotaPatch struct {
	// MaxSandboxes, MaxCPUCores, MaxMemoryMB, MaxDiskMB, RequestsPerMinute and
	// MaxSnapshots, MaxTemplates and MaxTemplateMB are the fields of Quota.
	MaxSandboxes      *int64   `json:"max_sandboxes,omitempty"`
	MaxCPUCores       *float64 `json:"max_cpu_cores,omitempty"`
	MaxMemoryMB       *int64   `json:"max_memory_mb,omitempty"`
	MaxDiskMB         *int64   `json:"max_disk_mb,omitempty"`
	RequestsPerMinute *int64   `json:"requests_per_minute,omitempty"`
	MaxSnapshots      *int64   `json:"max_snapshots,omitempty"`
	MaxTemplates      *int64   `json:"max_templates,omitempty"`
	MaxTemplateMB     *int64   `json:"max_template_mb,omitempty"`
}

// Patch returns a patch that sets every field of the quota to q's value.
func (q Quota) Patch() *QuotaPatch {
	return &QuotaPatch{MaxSandboxes: &q.MaxSandboxes, MaxCPUCores: &q.MaxCPUCores, MaxMemoryMB: &q.MaxMemoryMB,
		MaxDiskMB: &q.MaxDiskMB, RequestsPerMinute: &q.RequestsPerMinute, MaxSnapshots: &q.MaxSnapshots,
		MaxTemplates: &q.MaxTemplates, MaxTemplateMB: &q.MaxTemplateMB}
}

// QuotaUsage is what a team's running sandboxes hold now, and how many snapshots it
// keeps.
type QuotaUsage struct {
	Sandboxes int64   `json:"sandboxes"`
	CPUCores  float64 `json:"cpu_cores"`
	MemoryMB  int64   `json:"memory_mb"`
	DiskMB    int64   `json:"disk_mb"`
	// Snapshots is the number of snapshots the team keeps.
	Snapshots int64 `json:"snapshots"`
	// Templates is the number of the team's own templates, TemplateMB their size.
	Templates  int64 `json:"templates"`
	TemplateMB int64 `json:"template_mb"`
}

// Team is a tenant: it owns sandboxes, users and keys, within its quota.
type Team struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Quota     Quota     `json:"quota"`
	// PlanID is the pricing plan its invoices use.
	PlanID string `json:"plan_id"`
	// SpendLimit is a decimal amount per billing period, "" for none.
	SpendLimit string `json:"spend_limit"`
	// Usage is what the team holds now (present when fetched one by one).
	Usage *QuotaUsage `json:"usage,omitempty"`
}

// TeamOptions describe a team to create. Nil fields take the server's defaults.
type TeamOptions struct {
	Name string
	// Quota sets some fields of the team's quota; the others keep the server's default.
	Quota  *QuotaPatch
	PlanID *string
	// SpendLimit is a decimal amount per billing period ("" for none).
	SpendLimit *string
}

// TeamUpdate changes a team; nil fields keep their value.
type TeamUpdate struct {
	Name *string
	// Quota changes the quota fields it sets; the others keep their value.
	Quota  *QuotaPatch
	PlanID *string
	// SpendLimit is a decimal amount per billing period; "" removes the limit.
	SpendLimit *string
}

type teamWire struct {
	Name       *string     `json:"name,omitempty"`
	Quota      *QuotaPatch `json:"quota,omitempty"`
	PlanID     *string     `json:"plan_id,omitempty"`
	SpendLimit *string     `json:"spend_limit,omitempty"`
}

type teamList struct {
	Teams []Team `json:"teams"`
}

// Ptr returns a pointer to v, for the optional fields of TeamOptions, TeamUpdate,
// QuotaPatch and UserUpdate.
func Ptr[T any](v T) *T { return &v }

// CreateTeam creates a team (platform admin only).
func (c *Client) CreateTeam(ctx context.Context, opts TeamOptions) (*Team, error) {
	w := teamWire{Name: &opts.Name, Quota: opts.Quota, PlanID: opts.PlanID, SpendLimit: opts.SpendLimit}
	var t Team
	if err := c.call(ctx, request{route: routeCreateTeam, json: w}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// ListTeams lists every team for a platform admin, else the caller's own.
func (c *Client) ListTeams(ctx context.Context) ([]Team, error) {
	var list teamList
	if err := c.call(ctx, request{route: routeListTeams}, &list); err != nil {
		return nil, err
	}
	if list.Teams == nil {
		list.Teams = []Team{}
	}
	return list.Teams, nil
}

// GetTeam describes a team, with its current usage: the caller's own, or any for a
// platform admin (others are ErrNotFound).
func (c *Client) GetTeam(ctx context.Context, id string) (*Team, error) {
	var t Team
	if err := c.call(ctx, request{route: routeGetTeam, params: []string{id}}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// UpdateTeam changes a team (platform admin only) and returns it. Only the fields u
// sets are sent, so concurrent changes to other fields are kept.
func (c *Client) UpdateTeam(ctx context.Context, id string, u TeamUpdate) (*Team, error) {
	w := teamWire(u)
	var t Team
	if err := c.call(ctx, request{route: routeUpdateTeam, params: []string{id}, json: w}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Roles of a user in a team.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleViewer = "viewer"
)

// User is a person who signs in to the console.
type User struct {
	ID     string `json:"id"`
	TeamID string `json:"team_id"`
	Email  string `json:"email"`
	Name   string `json:"name"`
	// Role is owner, admin, member or viewer.
	Role        string    `json:"role"`
	CreatedAt   time.Time `json:"created_at"`
	LastLoginAt time.Time `json:"last_login_at,omitzero"`
}

// UserOptions describe a user to create.
type UserOptions struct {
	Email string
	// Password is at least 8 characters.
	Password string
	Name     string
	Role     string
	// TeamID is required for platform admins; others add users to their own team.
	TeamID string
}

// UserUpdate changes a user; nil fields keep their value.
type UserUpdate struct {
	Name     *string
	Role     *string
	Password *string
	// CurrentPassword is required with Password when you change your own password.
	CurrentPassword *string
}

type createUserWire struct {
	TeamID   string `json:"team_id,omitempty"`
	Email    string `json:"email"`
	Name     string `json:"name,omitempty"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

type updateUserWire struct {
	Name            *string `json:"name,omitempty"`
	Role            *string `json:"role,omitempty"`
	Password        *string `json:"password,omitempty"`
	CurrentPassword *string `json:"current_password,omitempty"`
}

type userList struct {
	Users []User `json:"users"`
}

// CreateUser adds a user to a team.
func (c *Client) CreateUser(ctx context.Context, opts UserOptions) (*User, error) {
	w := createUserWire{TeamID: opts.TeamID, Email: opts.Email, Name: opts.Name, Password: opts.Password, Role: opts.Role}
	var u User
	if err := c.call(ctx, request{route: routeCreateUser, json: w}, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// ListUsers lists the users of the caller's team, or of teamID (platform admins; ""
// lists every team's).
func (c *Client) ListUsers(ctx context.Context, teamID string) ([]User, error) {
	req := request{route: routeListUsers}
	if teamID != "" {
		req.query = map[string][]string{"team_id": {teamID}}
	}
	var list userList
	if err := c.call(ctx, req, &list); err != nil {
		return nil, err
	}
	if list.Users == nil {
		list.Users = []User{}
	}
	return list.Users, nil
}

// UpdateUser changes a user and returns it.
func (c *Client) UpdateUser(ctx context.Context, id string, u UserUpdate) (*User, error) {
	var out User
	if err := c.call(ctx, request{route: routeUpdateUser, params: []string{id}, json: updateUserWire(u)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteUser removes a user.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	return c.call(ctx, request{route: routeDeleteUser, params: []string{id}}, nil)
}

// Session is a console login: a session token for one user.
type Session struct {
	// Token (ws_...) authenticates like an API key: pass it to WithAPIKey.
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      User      `json:"user"`
	Team      Team      `json:"team"`
}

type loginWire struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Login signs a user in with email and password and returns a session. It needs no
// API key. Wrong credentials are ErrAuthentication.
func (c *Client) Login(ctx context.Context, email, password string) (*Session, error) {
	var s Session
	if err := c.call(ctx, request{route: routeLogin, json: loginWire{email, password}}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Logout ends every session of the user whose session token the client uses (on
// every device). With an API key it is ErrInvalid: revoke the key instead.
func (c *Client) Logout(ctx context.Context) error {
	return c.call(ctx, request{route: routeLogout}, nil)
}

// Me describes the caller: its team, user (for a session), key and scopes.
type Me struct {
	Team Team `json:"team"`
	// User is set for a console session, KeyID for an API key.
	User   *User    `json:"user,omitempty"`
	KeyID  string   `json:"key_id,omitempty"`
	Scopes []string `json:"scopes"`
	// Admin is true for the platform admin.
	Admin bool `json:"admin"`
}

// Me returns who the client's credentials belong to.
func (c *Client) Me(ctx context.Context) (*Me, error) {
	var m Me
	if err := c.call(ctx, request{route: routeMe}, &m); err != nil {
		return nil, err
	}
	return &m, nil
}
