package auth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// DefaultTeam is the name of the team Bootstrap creates.
const DefaultTeam = "default"

// Bootstrap makes sure the file at path holds a working admin key, so that a fresh
// installation can be used at all.
//
// If the file exists and its key authenticates, Bootstrap returns that secret and
// created=false. Otherwise (first start, file deleted, key revoked, database replaced)
// it creates an admin key for the team named "default", creating that team if there is
// none, writes the secret to path (mode 0600; missing parents 0700) and returns it with
// created=true. Regenerating is safe: whoever can delete or read the file already
// controls the server.
//
// A store error while checking the existing key is returned, not taken as "the key is
// gone": an outage must not rotate the operator's key.
func Bootstrap(ctx context.Context, store Store, path string) (secret string, created bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		s := strings.TrimSpace(string(b))
		c := &core{store: store, now: time.Now}
		_, err := c.lookup(ctx, s)
		if err == nil {
			return s, false, nil
		}
		if !domain.IsKind(err, domain.KindUnauthorized) {
			return "", false, fmt.Errorf("checking the admin key in %s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("reading the admin key: %w", err)
	}

	// Stage the file first, so that an unwritable path fails before the store changes.
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("creating the directory for the admin key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return "", false, fmt.Errorf("writing the admin key: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("writing the admin key: %w", err)
	}

	team, key, secret, err := createAdminKey(ctx, store)
	if err != nil {
		tmp.Close()
		return "", false, err
	}
	if err := writeAndRename(tmp, path, secret); err != nil {
		// Nobody will ever know this key's secret; make sure it cannot be used.
		if rerr := store.RevokeAPIKey(ctx, team.ID, key.ID, time.Now().UTC()); rerr != nil {
			err = errors.Join(err, fmt.Errorf("revoking the unwritten admin key %s: %w", key.ID, rerr))
		}
		return "", false, err
	}
	return secret, true, nil
}

// createAdminKey creates an admin key for the oldest team named DefaultTeam, creating
// the team if needed.
func createAdminKey(ctx context.Context, store Store) (*domain.Team, *domain.APIKey, string, error) {
	now := time.Now().UTC()
	teams, err := store.ListTeams(ctx)
	if err != nil {
		return nil, nil, "", fmt.Errorf("bootstrapping: %w", err)
	}
	var team *domain.Team
	for _, t := range teams {
		if t.Name == DefaultTeam {
			team = t
			break
		}
	}
	if team == nil {
		team = &domain.Team{ID: domain.NewID(20), Name: DefaultTeam, CreatedAt: now}
		if err := store.CreateTeam(ctx, team); err != nil {
			return nil, nil, "", fmt.Errorf("bootstrapping: creating team %q: %w", DefaultTeam, err)
		}
	}
	secret, prefix := NewSecret()
	key := &domain.APIKey{
		ID:        domain.NewID(20),
		TeamID:    team.ID,
		Name:      "bootstrap admin",
		Prefix:    prefix,
		Hash:      Hash(secret),
		Admin:     true,
		CreatedAt: now,
	}
	if err := store.CreateAPIKey(ctx, key); err != nil {
		return nil, nil, "", fmt.Errorf("bootstrapping: creating the admin key: %w", err)
	}
	return team, key, secret, nil
}

// writeAndRename writes the secret to the staged file, syncs it and moves it into
// place, so that path never holds a partial key.
func writeAndRename(tmp *os.File, path, secret string) error {
	_, err := tmp.WriteString(secret + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("writing the admin key to %s: %w", path, err)
	}
	return nil
}
