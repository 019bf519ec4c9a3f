package auth

import (
	"context"
	"fmt"
	"net/mail"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
)

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
func (s *KeyService) CreateUser(ctx context.Context, p domain.Principal, spec domain.UserSpec) (*domain.User, error) {
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
func (s *KeyService) GetUser(ctx context.Context, p domain.Principal, id string) (*domain.User, error) {
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
func (s *KeyService) ListUsers(ctx context.Context, p domain.Principal, teamID string) ([]*domain.User, error) {
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

// UpdateUser changes a user's name, role or password. Owners can be changed only by
// platform admins; a user may change their own name and password.
func (s *KeyService) UpdateUser(ctx context.Context, p domain.Principal, id string, patch domain.UserPatch) (*domain.User, error) {
	self := p.KeyID == "" && p.UserID == id && patch.Role == nil // a session, not a key its user made
	if !self {
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
	if u.Role == domain.RoleOwner && !p.Admin && !self {
		return nil, domain.Errorf(domain.KindForbidden, "only platform administrators can change an owner")
	}
	if patch.Name != nil {
		if len(*patch.Name) > maxNameLen {
			return nil, domain.Invalid("name", "name is %d bytes long: keep it to %d", len(*patch.Name), maxNameLen)
		}
		u.Name = strings.TrimSpace(*patch.Name)
	}
	if patch.Role != nil {
		if err := validRole(p, *patch.Role); err != nil {
			return nil, err
		}
		u.Role = *patch.Role
	}
	if patch.Password != nil {
		if err := ValidPassword(*patch.Password); err != nil {
			return nil, err
		}
		if u.PasswordHash, err = HashPassword(*patch.Password); err != nil {
			return nil, err
		}
	}
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("updating user %s: %w", id, err)
	}
	u.PasswordHash = ""
	return u, nil
}

// DeleteUser removes a user of the caller's team; their sessions end at once.
func (s *KeyService) DeleteUser(ctx context.Context, p domain.Principal, id string) error {
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
	if u.Role == domain.RoleOwner && !p.Admin {
		return domain.Errorf(domain.KindForbidden, "only platform administrators can remove an owner")
	}
	return s.store.DeleteUser(ctx, u.TeamID, id)
}
