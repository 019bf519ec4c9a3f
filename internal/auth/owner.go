package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// DefaultOwnerEmail is the console login Bootstrap gives the default team.
const DefaultOwnerEmail = "admin@warren.local"

// BootstrapOwner makes sure the console can be used on a new server: when the default
// team has no users, it creates an owner DefaultOwnerEmail with a random password,
// writes "email password" to path (0600) and returns them with created=true. Change the
// password in the console or with `warren users update`.
func BootstrapOwner(ctx context.Context, store Store, path string) (email, password string, created bool, err error) {
	teams, err := store.ListTeams(ctx)
	if err != nil {
		return "", "", false, fmt.Errorf("finding the default team: %w", err)
	}
	var team *domain.Team
	for _, t := range teams {
		if t.Name == DefaultTeam {
			team = t
			break
		}
	}
	if team == nil {
		return "", "", false, fmt.Errorf("the default team %q does not exist: run Bootstrap first", DefaultTeam)
	}
	users, err := store.ListUsers(ctx, team.ID)
	if err != nil || len(users) > 0 {
		return "", "", false, err
	}
	password = rand.Text()[:20]
	hash, err := HashPassword(password)
	if err != nil {
		return "", "", false, err
	}
	u := &domain.User{ID: domain.NewID(20), TeamID: team.ID, Email: DefaultOwnerEmail, Name: "Administrator",
		Role: domain.RoleOwner, PasswordHash: hash, CreatedAt: time.Now().UTC()}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", "", false, err
	}
	if err := os.WriteFile(path, []byte(DefaultOwnerEmail+" "+password+"\n"), 0o600); err != nil {
		return "", "", false, fmt.Errorf("writing the console login: %w", err)
	}
	if err := store.CreateUser(ctx, u); err != nil {
		os.Remove(path)
		if domain.IsKind(err, domain.KindConflict) {
			return "", "", false, nil // another server of the cluster made it first
		}
		return "", "", false, fmt.Errorf("creating the console owner: %w", err)
	}
	return DefaultOwnerEmail, password, true, nil
}

// forgetOwnerLogin removes the file BootstrapOwner wrote when it holds email's login
// (the user has logged in: the password has been read and should be changed, not kept
// on disk). It reports whether it removed the file.
func forgetOwnerLogin(path, email string) (bool, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 || !strings.EqualFold(f[0], email) {
		return false, nil
	}
	return true, os.Remove(path)
}
