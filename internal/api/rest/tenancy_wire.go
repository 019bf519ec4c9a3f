package rest

import (
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// JSON shapes of teams, users, logins and the audit log.

type teamJSON struct {
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	CreatedAt  time.Time    `json:"created_at"`
	Quota      domain.Quota `json:"quota"`
	PlanID     string       `json:"plan_id"`
	SpendLimit string       `json:"spend_limit"`
	// AllowedRuntimes is [] (not null) when the team may use every enabled runtime.
	AllowedRuntimes []string           `json:"allowed_runtimes"`
	Usage           *domain.QuotaUsage `json:"usage,omitempty"`
}

func toTeamJSON(t *domain.Team, u *domain.QuotaUsage) teamJSON {
	runtimes := t.AllowedRuntimes
	if runtimes == nil {
		runtimes = []string{}
	}
	return teamJSON{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt.UTC(), Quota: t.Quota,
		PlanID: t.PlanID, SpendLimit: t.SpendLimit, AllowedRuntimes: runtimes, Usage: u}
}

type teamRequest struct {
	Name       string             `json:"name"`
	Quota      *domain.QuotaPatch `json:"quota"`
	PlanID     *string            `json:"plan_id"`
	SpendLimit *string            `json:"spend_limit"`
	// AllowedRuntimes: absent or null keeps the list; [] allows every runtime.
	AllowedRuntimes *[]string `json:"allowed_runtimes"`
}

func (r teamRequest) spec() domain.TeamSpec {
	return domain.TeamSpec{Name: r.Name, Quota: r.Quota, PlanID: r.PlanID, SpendLimit: r.SpendLimit, AllowedRuntimes: r.AllowedRuntimes}
}

type listTeamsResponse struct {
	Teams []teamJSON `json:"teams"`
}

type userJSON struct {
	ID          string      `json:"id"`
	TeamID      string      `json:"team_id"`
	Email       string      `json:"email"`
	Name        string      `json:"name"`
	Role        domain.Role `json:"role"`
	CreatedAt   time.Time   `json:"created_at"`
	LastLoginAt *time.Time  `json:"last_login_at,omitempty"`
}

func toUserJSON(u *domain.User) userJSON {
	return userJSON{ID: u.ID, TeamID: u.TeamID, Email: u.Email, Name: u.Name, Role: u.Role,
		CreatedAt: u.CreatedAt.UTC(), LastLoginAt: optTime(u.LastLoginAt)}
}

type createUserRequest struct {
	TeamID   string      `json:"team_id"`
	Email    string      `json:"email"`
	Name     string      `json:"name"`
	Password string      `json:"password"`
	Role     domain.Role `json:"role"`
}

type updateUserRequest struct {
	Name     *string      `json:"name"`
	Role     *domain.Role `json:"role"`
	Password *string      `json:"password"`
	// CurrentPassword must accompany Password when users change their own.
	CurrentPassword *string `json:"current_password"`
}

type listUsersResponse struct {
	Users []userJSON `json:"users"`
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type loginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      userJSON  `json:"user"`
	Team      teamJSON  `json:"team"`
}

type meResponse struct {
	Team   teamJSON       `json:"team"`
	User   *userJSON      `json:"user,omitempty"`
	KeyID  string         `json:"key_id,omitempty"`
	Scopes []domain.Scope `json:"scopes"`
	Admin  bool           `json:"admin"`
}

type auditJSON struct {
	ID         int64             `json:"id"`
	At         time.Time         `json:"at"`
	ActorType  string            `json:"actor_type"`
	ActorID    string            `json:"actor_id"`
	Action     string            `json:"action"`
	Target     string            `json:"target"`
	Status     int               `json:"status"`
	RemoteAddr string            `json:"remote_addr"`
	RequestID  string            `json:"request_id"`
	Details    map[string]string `json:"details"`
}

type listAuditResponse struct {
	Entries []auditJSON `json:"entries"`
	// Next is the `before` value of the next (older) page, "" on the last page.
	Next string `json:"next"`
}
