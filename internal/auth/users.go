package auth

import (
	"context"
	"fmt"
	"net/mail"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
)

var _ domain.UserService = (*Users)(nil)

// Users implements domain.UserService: a team's users, their roles and passwords.
// Changing a password or role ends the user's console sessions.
type Users struct {
	*core
}

// userTeam decides which team a user call acts on: platform admins name any team, team
// admins (team:write) act on their own.
func userTeam(p domain.Principal, teamID string, write bool) (string, error) {
	if err := needTeam(p); err != nil {
		return "", err
	}
	if p.Admin {
		if teamID == "" {
			teamID = p.TeamID
		}
		return teamID, nil
	}
	if teamID != "" && teamID != p.TeamID {
		return "", domain.NotFound("team", teamID)
	}
	need := domain.ScopeTeamRead
	if write {
		need = domain.ScopeTeamWrite
	}
	if err := p.Need(need); err != nil {
		return "", err
	}
	return p.TeamID, nil
}

// CreateUser adds a user to a team. Only platform admins create owners.
func (s *Users) CreateUser(ctx context.Context, p domain.Principal, spec domain.UserSpec) (*domain.User, error) {
	if p.Admin && spec.TeamID == "" {
		return nil, domain.Invalid("team_id", "say which team the user joins: give team_id")
	}
	teamID, err := userTeam(p, spec.TeamID, true)
	if err != nil {
		return nil, err
	}
	email := strings.ToLower(strings.TrimSpace(spec.Email))
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		return nil, domain.Invalid("email", "%q is not an email address: write it as name@example.com", spec.Email)
	}
	if err := validRole(p, spec.Role); err != nil {
		return nil, err
	}
	if err := ValidPassword(spec.Password); err != nil {
		return nil, err
	}
	if len(spec.Name) > maxNameLen {
		return nil, domain.Invalid("name", "name is %d bytes long: keep it to %d", len(spec.Name), maxNameLen)
	}
	if _, err := s.store.GetTeam(ctx, teamID); err != nil {
		return nil, err
	}
	hash, err := HashPassword(spec.Password)
	if err != nil {
		return nil, err
	}
	u := &domain.User{ID: domain.NewID(20), TeamID: teamID, Email: email, Name: strings.TrimSpace(spec.Name),
		Role: spec.Role, PasswordHash: hash, CreatedAt: s.now().UTC()}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if domain.IsKind(err, domain.KindConflict) {
			return nil, &domain.Error{Kind: domain.KindConflict, Field: "email",
				Message: fmt.Sprintf("a user with email %s already exists: log in as that user, or use another address", email), Err: err}
		}
		return nil, fmt.Errorf("creating user: %w", err)
	}
	u.PasswordHash = ""
	return u, nil
}

func validRole(p domain.Principal, r domain.Role) error {
	if !r.Valid() {
		return domain.Invalid("role", "unknown role %q: use owner, admin, member or viewer", r)
	}
	if r == domain.RoleOwner && !p.Admin {
		return domain.Errorf(domain.KindForbidden, "only platform administrators can make owners: choose admin, member or viewer")
	}
	// Nobody hands out more than they hold (a team:write-only key cannot mint admins).
	if !p.Admin && !domain.Covers(p.Scopes, domain.RoleScopes(r)) {
		return domain.Errorf(domain.KindForbidden, "cannot give the %q role: it has scopes your credential lacks", r)
	}
	return nil
}

// GetUser returns a user of the caller's team.
func (s *Users) GetUser(ctx context.Context, p domain.Principal, id string) (*domain.User, error) {
	if _, err := userTeam(p, "", false); err != nil {
		return nil, err
	}
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if !p.Admin && u.TeamID != p.TeamID {
		return nil, domain.NotFound("user", id)
	}
	u.PasswordHash = ""
	return u, nil
}

// ListUsers returns a team's users.
func (s *Users) ListUsers(ctx context.Context, p domain.Principal, teamID string) ([]*domain.User, error) {
	teamID, err := userTeam(p, teamID, false)
	if err != nil {
		return nil, err
	}
	us, err := s.store.ListUsers(ctx, teamID)
	if err != nil {
		return nil, err
	}
	for _, u := range us {
		u.PasswordHash = ""
	}
	return us, nil
}

// mayManage reports whether p may change u's role or password or remove u: only when
// p holds every scope of u's role, so that a credential can never take over an account
// worth more than itself (a team:write key resetting an admin's password and logging
// in as them). Owners hold what admins hold, so scopes alone cannot rank them: only
// platform administrators manage owners.
func mayManage(p domain.Principal, u *domain.User, what string) error {
	switch {
	case p.Admin:
		return nil
	case u.Role == domain.RoleOwner:
		return domain.Errorf(domain.KindForbidden, "only platform administrators can %s an owner", what)
	case !domain.Covers(p.Scopes, domain.RoleScopes(u.Role)):
		return domain.Errorf(domain.KindForbidden,
			"cannot %s a user with the %q role: it holds scopes your credential lacks; use a credential with all of that role's scopes", what, u.Role)
	}
	return nil
}

// UpdateUser changes a user's name, role or password. Changing another user's role or
// password needs team:write and every scope of that user's role (see mayManage); a
// new role never holds more than the caller. Users may change their own name and
// password from a session; their own password only with CurrentPassword, checked
// against the per-account login throttle. A password or role change ends every
// session of the user.
func (s *Users) UpdateUser(ctx context.Context, p domain.Principal, id string, patch domain.UserPatch) (*domain.User, error) {
	own := !p.Admin && p.UserID == id                        // the caller's own account: its session or a key it made
	selfService := own && p.KeyID == "" && patch.Role == nil // a session changing its own name or password
	if !selfService {
		if _, err := userTeam(p, "", true); err != nil {
			return nil, err
		}
	}
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if !p.Admin && u.TeamID != p.TeamID {
		return nil, domain.NotFound("user", id)
	}
	if !own || patch.Role != nil {
		if err := mayManage(p, u, "change"); err != nil {
			return nil, err
		}
	}
	if patch.Name != nil {
		if len(*patch.Name) > maxNameLen {
			return nil, domain.Invalid("name", "name is %d bytes long: keep it to %d", len(*patch.Name), maxNameLen)
		}
		u.Name = strings.TrimSpace(*patch.Name)
	}
	endSessions := false
	if patch.Role != nil {
		if err := validRole(p, *patch.Role); err != nil {
			return nil, err
		}
		endSessions = *patch.Role != u.Role
		u.Role = *patch.Role
	}
	if patch.Password != nil {
		if err := ValidPassword(*patch.Password); err != nil {
			return nil, err
		}
		if own {
			if err := s.checkCurrentPassword(ctx, u, patch.CurrentPassword); err != nil {
				return nil, err
			}
		}
		if u.PasswordHash, err = HashPassword(*patch.Password); err != nil {
			return nil, err
		}
		endSessions = true
	}
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("updating user %s: %w", id, err)
	}
	if endSessions {
		if u.SessionEpoch, err = s.store.EndSessions(ctx, id); err != nil {
			return nil, fmt.Errorf("ending the sessions of user %s: %w", id, err)
		}
	}
	u.PasswordHash = ""
	return u, nil
}

// checkCurrentPassword guards users changing their own password: whoever holds their
// session or key must also know the password. Attempts spend the account's login
// budget, so that this is no way around the login throttle.
func (s *Users) checkCurrentPassword(ctx context.Context, u *domain.User, current *string) error {
	if current == nil || *current == "" {
		return domain.Invalid("current_password", "changing your own password needs current_password: give the password you log in with now")
	}
	if err := s.throttleAccount(ctx, u.Email); err != nil {
		return err
	}
	ok, err := CheckPassword(u.PasswordHash, *current)
	if err != nil {
		return fmt.Errorf("checking password of user %s: %w", u.ID, err)
	}
	if !ok {
		s.audit(ctx, domain.Principal{TeamID: u.TeamID, UserID: u.ID}, "user.password_check_failed", u.ID)
		return &domain.Error{Kind: domain.KindForbidden, Field: "current_password",
			Message: "current_password is wrong: give the password you log in with now, or ask a team admin to reset it"}
	}
	return nil
}

// DeleteUser removes a user of the caller's team, with the same rule as changing
// them (mayManage). Their sessions and the keys they made stop working at once: the
// user's row is gone.
func (s *Users) DeleteUser(ctx context.Context, p domain.Principal, id string) error {
	if _, err := userTeam(p, "", true); err != nil {
		return err
	}
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return err
	}
	if !p.Admin && u.TeamID != p.TeamID {
		return domain.NotFound("user", id)
	}
	if err := mayManage(p, u, "remove"); err != nil {
		return err
	}
	return s.store.DeleteUser(ctx, u.TeamID, id)
}
