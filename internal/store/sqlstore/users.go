package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Users is the domain.UserStore.
type Users struct{ db *db }

var _ domain.UserStore = (*Users)(nil)

const userColumns = `id, team_id, email, name, role, password_hash, created_at, last_login_at, disabled_at, session_epoch`

// CreateUser inserts u with its email lower-cased. A taken id or email is KindConflict;
// an unknown team is KindNotFound.
func (s *Users) CreateUser(ctx context.Context, u *domain.User) error {
	e := encoder{d: s.db.d}
	email := strings.ToLower(u.Email)
	args := []any{u.ID, u.TeamID, email, u.Name, string(u.Role), u.PasswordHash,
		e.time("created_at", u.CreatedAt), e.time("last_login_at", u.LastLoginAt), e.time("disabled_at", u.DisabledAt),
		u.SessionEpoch}
	if e.err != nil {
		return s.db.wrap(e.err, "creating user %s", u.ID)
	}
	_, err := s.db.exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES (`+marks(10)+`)`, args...)
	if err != nil {
		return s.db.insertErr(err, u.TeamID,
			domain.Errorf(domain.KindConflict, "a user with id %q or email %q already exists", u.ID, email),
			"creating user %s", u.ID)
	}
	return nil
}

func scanUser(d Dialect, r rowScanner) (*domain.User, error) {
	var u domain.User
	if err := r.Scan(&u.ID, &u.TeamID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, scanTime(d, &u.CreatedAt),
		scanTime(d, &u.LastLoginAt), scanTime(d, &u.DisabledAt), &u.SessionEpoch); err != nil {
		return nil, err
	}
	return &u, nil
}

// GetUser returns the user with that id.
func (s *Users) GetUser(ctx context.Context, id string) (*domain.User, error) {
	return get(ctx, s.db, scanUser, "user", id, `SELECT `+userColumns+` FROM users WHERE id = ?`, id)
}

// GetUserByEmail returns the user with that email, compared case-insensitively.
func (s *Users) GetUserByEmail(ctx context.Context, email string) (*domain.User, error) {
	email = strings.ToLower(email)
	return get(ctx, s.db, scanUser, "user", email, `SELECT `+userColumns+` FROM users WHERE email = ?`, email)
}

// ListUsers returns the team's users, oldest first.
func (s *Users) ListUsers(ctx context.Context, teamID string) ([]*domain.User, error) {
	return list(ctx, s.db, scanUser, "listing users of team "+teamID,
		`SELECT `+userColumns+` FROM users WHERE team_id = ? ORDER BY created_at NULLS FIRST, id`, teamID)
}

// UpdateUser writes u's Name, Role, PasswordHash, LastLoginAt and DisabledAt. The team,
// email, creation time and session epoch stay.
func (s *Users) UpdateUser(ctx context.Context, u *domain.User) error {
	e := encoder{d: s.db.d}
	args := []any{u.Name, string(u.Role), u.PasswordHash, e.time("last_login_at", u.LastLoginAt),
		e.time("disabled_at", u.DisabledAt), u.ID}
	if e.err != nil {
		return s.db.wrap(e.err, "updating user %s", u.ID)
	}
	return s.db.update(ctx, "user", u.ID, "updating", `UPDATE users SET name = ?, role = ?, password_hash = ?,
		last_login_at = ?, disabled_at = ? WHERE id = ?`, args...)
}

// RecordLogin writes only the user's LastLoginAt.
func (s *Users) RecordLogin(ctx context.Context, id string, at time.Time) error {
	e := encoder{d: s.db.d}
	v := e.time("last_login_at", at)
	if e.err != nil {
		return s.db.wrap(e.err, "recording login of user %s", id)
	}
	return s.db.update(ctx, "user", id, "recording login of", `UPDATE users SET last_login_at = ? WHERE id = ?`, v, id)
}

// EndSessions increments the user's session epoch in one statement (so two concurrent
// calls make two steps) and returns the new epoch.
func (s *Users) EndSessions(ctx context.Context, id string) (int64, error) {
	var epoch int64
	err := s.db.writeRow(ctx, `UPDATE users SET session_epoch = session_epoch + 1 WHERE id = ? RETURNING session_epoch`, id).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, domain.NotFound("user", id)
	}
	if err != nil {
		return 0, s.db.wrap(err, "ending sessions of user %s", id)
	}
	return epoch, nil
}

// DeleteUser removes the team's user; another team's user is not found. Keys the user
// made stay (their UserID too), but GetAPIKeyByHash reads them without a Creator from
// then on, and authentication refuses such keys.
func (s *Users) DeleteUser(ctx context.Context, teamID, id string) error {
	return s.db.update(ctx, "user", id, "deleting", `DELETE FROM users WHERE id = ? AND team_id = ?`, id, teamID)
}
