package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warren-sh/warren/internal/domain"
)

const userColumns = `id, team_id, email, name, role, password_hash, created_at, last_login_at, disabled_at`

// CreateUser inserts u with its email lower-cased. A taken id or email is KindConflict;
// an unknown team is KindNotFound.
func (s *Store) CreateUser(ctx context.Context, u *domain.User) error {
	var e encoder
	email := strings.ToLower(u.Email)
	args := []any{u.ID, u.TeamID, email, u.Name, string(u.Role), u.PasswordHash,
		e.time("created_at", u.CreatedAt), e.time("last_login_at", u.LastLoginAt), e.time("disabled_at", u.DisabledAt)}
	if e.err != nil {
		return fmt.Errorf("creating user %s: %w", u.ID, e.err)
	}
	_, err := s.exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, args...)
	switch {
	case isUniqueViolation(err):
		return domain.Errorf(domain.KindConflict, "a user with id %q or email %q already exists", u.ID, email)
	case isForeignKeyViolation(err):
		return domain.NotFound("team", u.TeamID)
	case err != nil:
		return fmt.Errorf("creating user %s: %w", u.ID, classify(err))
	}
	return nil
}

func scanUser(r rowScanner) (*domain.User, error) {
	var u domain.User
	var role string
	var created, login, disabled *time.Time
	if err := r.Scan(&u.ID, &u.TeamID, &u.Email, &u.Name, &role, &u.PasswordHash, &created, &login, &disabled); err != nil {
		return nil, err
	}
	u.Role = domain.Role(role)
	u.CreatedAt, u.LastLoginAt, u.DisabledAt = decodeTime(created), decodeTime(login), decodeTime(disabled)
	return &u, nil
}

// GetUser returns the user with that id.
func (s *Store) GetUser(ctx context.Context, id string) (*domain.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domain.NotFound("user", id)
	}
	if err != nil {
		return nil, fmt.Errorf("getting user %s: %w", id, classify(err))
	}
	return u, nil
}

// GetUserByEmail returns the user with that email, compared case-insensitively.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*domain.User, error) {
	email = strings.ToLower(email)
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domain.NotFound("user", email)
	}
	if err != nil {
		return nil, fmt.Errorf("getting user by email: %w", classify(err))
	}
	return u, nil
}

// ListUsers returns the team's users, oldest first.
func (s *Store) ListUsers(ctx context.Context, teamID string) ([]*domain.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE team_id = $1
		ORDER BY created_at NULLS FIRST, id`, teamID)
	if err != nil {
		return nil, fmt.Errorf("listing users of team %s: %w", teamID, classify(err))
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("listing users of team %s: %w", teamID, classify(err))
	}
	return users, nil
}

// UpdateUser writes u's Name, Role, PasswordHash, LastLoginAt and DisabledAt. The team,
// email and creation time stay.
func (s *Store) UpdateUser(ctx context.Context, u *domain.User) error {
	var e encoder
	args := []any{u.Name, string(u.Role), u.PasswordHash, e.time("last_login_at", u.LastLoginAt),
		e.time("disabled_at", u.DisabledAt), u.ID}
	if e.err != nil {
		return fmt.Errorf("updating user %s: %w", u.ID, e.err)
	}
	n, err := s.exec(ctx, `UPDATE users SET name = $1, role = $2, password_hash = $3, last_login_at = $4,
		disabled_at = $5 WHERE id = $6`, args...)
	if err != nil {
		return fmt.Errorf("updating user %s: %w", u.ID, classify(err))
	}
	if n == 0 {
		return domain.NotFound("user", u.ID)
	}
	return nil
}

// DeleteUser removes the team's user; another team's user is not found. Keys the user
// made keep working (their UserID stays): revoking them is the caller's decision.
func (s *Store) DeleteUser(ctx context.Context, teamID, id string) error {
	n, err := s.exec(ctx, `DELETE FROM users WHERE id = $1 AND team_id = $2`, id, teamID)
	if err != nil {
		return fmt.Errorf("deleting user %s: %w", id, classify(err))
	}
	if n == 0 {
		return domain.NotFound("user", id)
	}
	return nil
}
