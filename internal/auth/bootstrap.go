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

// defaultTeamID is the id a new default team gets: one id for every server, so that
// servers of a cluster starting at once on an empty database make one default team (the
// second insert fails on the key and finds the first's), not one each.
const defaultTeamID = "defaultteam000000000"

// defaultTeam returns the oldest team named DefaultTeam, creating it if there is none.
func defaultTeam(ctx context.Context, store Store) (*domain.Team, error) {
	find := func() (*domain.Team, error) {
		teams, err := store.ListTeams(ctx)
		if err != nil {
			return nil, fmt.Errorf("bootstrapping: %w", err)
		}
		for _, t := range teams {
			if t.Name == DefaultTeam {
				return t, nil
			}
		}
		return nil, nil
	}
	if t, err := find(); t != nil || err != nil {
		return t, err
	}
	team := &domain.Team{ID: defaultTeamID, Name: DefaultTeam, CreatedAt: time.Now().UTC()}
	if err := store.CreateTeam(ctx, team); err != nil {
		// Another server made it first.
		if t, ferr := store.GetTeam(ctx, defaultTeamID); ferr == nil {
			return t, nil
		}
		return nil, fmt.Errorf("bootstrapping: creating team %q: %w", DefaultTeam, err)
	}
	return team, nil
}

// createAdminKey creates an admin key for the oldest team named DefaultTeam, creating
// the team if needed.
func createAdminKey(ctx context.Context, store Store) (*domain.Team, *domain.APIKey, string, error) {
	now := time.Now().UTC()
	team, err := defaultTeam(ctx, store)
	if err != nil {
		return nil, nil, "", err
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

// EnsureAdminKey makes sure secret (the operator's, given to every server of a cluster
// as WARREN_ADMIN_KEY) is a working admin key: an existing one is kept, a new one is
// created for the team named "default" (creating the team if needed), so that servers
// sharing a database share one admin key instead of each making its own. A secret that
// is not a well-formed key, or one that is revoked or not an admin's, is an error
// saying what to do. created reports whether the key was made now.
func EnsureAdminKey(ctx context.Context, store Store, secret string) (created bool, err error) {
	if !wellFormed(secret) {
		return false, fmt.Errorf("the admin key (WARREN_ADMIN_KEY or --admin-key-file) must be %q followed by %d letters and digits; make one with: printf 'sk_%%s' \"$(openssl rand -base64 60 | tr -dc A-Za-z0-9 | head -c %d)\"",
			SecretPrefix, secretRandLen, secretRandLen)
	}
	k, err := store.GetAPIKeyByHash(ctx, Hash(secret))
	switch {
	case err == nil && !k.RevokedAt.IsZero():
		return false, errors.New("the admin key given (WARREN_ADMIN_KEY or --admin-key-file) was revoked: give the servers a new one")
	case err == nil && !k.Admin:
		return false, errors.New("the key given as the admin key (WARREN_ADMIN_KEY or --admin-key-file) is a team's key, not a platform admin's: give the servers a key of their own")
	case err == nil:
		return false, nil
	case !domain.IsKind(err, domain.KindNotFound):
		return false, fmt.Errorf("checking the admin key: %w", err)
	}
	team, err := defaultTeam(ctx, store)
	if err != nil {
		return false, err
	}
	key := &domain.APIKey{ID: domain.NewID(20), TeamID: team.ID, Name: "cluster admin", Prefix: secret[:len(SecretPrefix)+shownLen],
		Hash: Hash(secret), Admin: true, CreatedAt: time.Now().UTC()}
	if err := store.CreateAPIKey(ctx, key); err != nil {
		// Another server of the cluster may have made it meanwhile.
		if k, gerr := store.GetAPIKeyByHash(ctx, key.Hash); gerr == nil && k.Admin && k.RevokedAt.IsZero() {
			return false, nil
		}
		return false, fmt.Errorf("creating the admin key: %w", err)
	}
	return true, nil
}
