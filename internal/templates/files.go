package templates

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/warren-sh/warren/internal/domain"
)

// teamDir is where the team's uploaded archives are kept.
func teamDir(filesDir, teamID string) string { return filepath.Join(filesDir, teamID) }

func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && h == lower(h)
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func checkHash(hash string) error {
	if !validHash(hash) {
		return domain.Invalid("hash", "%q is not a sha256 in lowercase hex (64 characters)", hash)
	}
	return nil
}

// PutFiles implements domain.TemplateService: the archive is stored under its sha256
// in the team's files directory, once, within MaxFileBytes and the team's
// TeamFilesBytes. An archive over the limit is a KindInvalid error wrapping a
// *domain.TooLargeError.
func (s *Service) PutFiles(ctx context.Context, p domain.Principal, templateID, hash string, r io.Reader) error {
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return err
	}
	if _, err := s.own(ctx, p, templateID); err != nil {
		return err
	}
	if err := checkHash(hash); err != nil {
		return err
	}
	dir := teamDir(s.cfg.FilesDir, p.TeamID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("making the team's files directory: %w", err)
	}
	used, err := dirBytes(dir)
	if err != nil {
		return err
	}
	limit := min(s.cfg.MaxFileBytes, s.cfg.TeamFilesBytes-used)
	if limit <= 0 {
		return &domain.Error{Kind: domain.KindQuotaExceeded,
			Message: fmt.Sprintf("the team's uploaded build files hold %d bytes, the most a team may keep; delete templates you no longer need", used)}
	}
	tmp, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return fmt.Errorf("storing build files: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("storing build files: %w", err)
	}
	if n > limit {
		return &domain.Error{Kind: domain.KindInvalid, Field: "files", Err: &domain.TooLargeError{Limit: limit},
			Message: fmt.Sprintf("the build files are larger than the limit of %d bytes; leave out what the build does not need (.dockerignore)", limit)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hash {
		return domain.Invalid("hash", "the uploaded bytes hash to %s, not %s: upload the archive the hash was taken of", got, hash)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("storing build files: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, hash)); err != nil {
		return fmt.Errorf("storing build files: %w", err)
	}
	return nil
}

// HasFiles implements domain.TemplateService.
func (s *Service) HasFiles(ctx context.Context, p domain.Principal, templateID, hash string) (bool, error) {
	if err := p.Need(domain.ScopeSandboxesRead); err != nil {
		return false, err
	}
	if _, err := s.own(ctx, p, templateID); err != nil {
		return false, err
	}
	if err := checkHash(hash); err != nil {
		return false, err
	}
	return hasFiles(s.cfg.FilesDir, p.TeamID, hash)
}

func hasFiles(filesDir, teamID, hash string) (bool, error) {
	_, err := os.Stat(filepath.Join(teamDir(filesDir, teamID), hash))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("looking up build files: %w", err)
}

// dirBytes sums the sizes of the files in dir.
func dirBytes(dir string) (int64, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("reading the team's files directory: %w", err)
	}
	var n int64
	for _, e := range es {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n, nil
}

// teamFiles is one team's uploaded archives, for its builds.
type teamFiles struct{ dir string }

var _ domain.BuildFiles = teamFiles{}

func (f teamFiles) Open(_ context.Context, hash string) (io.ReadCloser, error) {
	if !validHash(hash) {
		return nil, domain.NotFound("build files", hash)
	}
	r, err := os.Open(filepath.Join(f.dir, hash))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, domain.NotFound("build files", hash)
	}
	return r, err
}
