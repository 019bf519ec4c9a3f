package e2b

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

// The files of a build's COPY steps. The SDK asks GET /templates/{id}/files/{hash} for
// an upload link per COPY step and PUTs a (gzipped) tar archive of the files to it,
// without its API key, as it would to a presigned bucket URL. Warren serves the link
// itself: PUT /templates/{id}/files/{hash}, authorised by a one-hour upload token that
// the link's headers carry.
//
// The SDK's hash is not a hash of the archive: it is its own sha256 of "COPY src dest",
// the files' paths, modes, sizes and contents, which a server cannot recompute from the
// archive (directory sizes and the dest are not in it). So the archive is stored (with
// TemplateService.PutFiles) under the sha256 of its uncompressed bytes, and this server
// remembers, per team and template, which stored archive each SDK hash names; the COPY
// steps of the build are translated to those. After a restart that memory is gone and
// the SDK uploads again.

// UploadTokenHeader carries the upload token of an upload link.
const UploadTokenHeader = "X-Warren-Upload-Token"

// DefaultMaxUploadBytes bounds one upload, compressed and uncompressed, when
// Config.MaxUploadBytes is 0.
const DefaultMaxUploadBytes = 1 << 30

const (
	uploadTokenTTL = time.Hour
	maxTickets     = 10000
	maxRemembered  = 100000
)

// uploads is the state of the upload links and of the files uploaded through them.
type uploads struct {
	mu      sync.Mutex
	tickets map[string]ticket // by upload token
	stored  map[string]string // team, template, SDK hash → sha256 of the stored archive
	order   []string          // keys of stored, oldest first, to bound it
	origins map[string][]int  // team, build → origin of the build's steps (translated.origin)
	oorder  []string
}

// ticket is an upload link handed out: who may upload what, until when.
type ticket struct {
	p          domain.Principal
	templateID string
	hash       string
	expires    time.Time
}

func newUploads() *uploads {
	return &uploads{tickets: map[string]ticket{}, stored: map[string]string{}, origins: map[string][]int{}}
}

func uploadKey(parts ...string) string { return strings.Join(parts, "\x00") }

// issue returns a new upload token for t, or an Unavailable error when too many links
// are outstanding.
func (u *uploads) issue(t ticket, now time.Time) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making an upload token: %w", err)
	}
	tok := hex.EncodeToString(b[:])
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.tickets) >= maxTickets {
		for k, old := range u.tickets {
			if now.After(old.expires) {
				delete(u.tickets, k)
			}
		}
		if len(u.tickets) >= maxTickets {
			return "", domain.Errorf(domain.KindUnavailable, "too many uploads are pending on this server; try again in a few minutes")
		}
	}
	u.tickets[tok] = t
	return tok, nil
}

// ticket returns the unexpired ticket of tok.
func (u *uploads) ticket(tok string, now time.Time) (ticket, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.tickets[tok]
	if ok && now.After(t.expires) {
		delete(u.tickets, tok)
		return ticket{}, false
	}
	return t, ok
}

// remember records that the SDK's hash names the archive sum for team's template.
func (u *uploads) remember(team, templateID, hash, sum string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := uploadKey(team, templateID, hash)
	if _, ok := u.stored[k]; !ok {
		u.order = append(u.order, k)
	}
	u.stored[k] = sum
	for len(u.order) > maxRemembered {
		delete(u.stored, u.order[0])
		u.order = u.order[1:]
	}
}

// lookup returns the archive the SDK's hash names for team's template, or "".
func (u *uploads) lookup(team, templateID, hash string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.stored[uploadKey(team, templateID, hash)]
}

// setOrigin and origin keep a started build's step origins, for the status route.
func (u *uploads) setOrigin(team, buildID string, origin []int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := uploadKey(team, buildID)
	if _, ok := u.origins[k]; !ok {
		u.oorder = append(u.oorder, k)
	}
	u.origins[k] = origin
	for len(u.oorder) > maxRemembered {
		delete(u.origins, u.oorder[0])
		u.oorder = u.oorder[1:]
	}
}

func (u *uploads) origin(team, buildID string) []int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.origins[uploadKey(team, buildID)]
}

// fileUploadLink serves GET /templates/{id}/files/{hash}: present when the files are
// stored already, else a link to PUT them to (201, as E2B answers).
func (s *Server) fileUploadLink(w http.ResponseWriter, r *http.Request) error {
	p, svc, t, err := s.ownTemplate(r)
	if err != nil {
		return err
	}
	hash := r.PathValue("hash")
	if !filesHashRE.MatchString(hash) {
		return domain.Invalid("hash", "files hash %q is not a sha256 (64 lowercase hex digits)", hash)
	}
	if sum := s.up.lookup(p.TeamID, t.ID, hash); sum != "" {
		has, err := svc.HasFiles(r.Context(), p, t.ID, sum)
		if err != nil {
			return err
		}
		if has {
			s.edge.WriteJSON(w, r, http.StatusCreated, fileUploadJSON{Present: true})
			return nil
		}
	}
	tok, err := s.up.issue(ticket{p: p, templateID: t.ID, hash: hash, expires: s.now().Add(uploadTokenTTL)}, s.now())
	if err != nil {
		return err
	}
	link := s.baseURL(r) + "/templates/" + url.PathEscape(t.ID) + "/files/" + hash
	s.edge.WriteJSON(w, r, http.StatusCreated, fileUploadJSON{URL: link, Headers: map[string]string{UploadTokenHeader: tok}})
	return nil
}

// baseURL is where clients reach this API: Config.PublicURL, or the request's own
// scheme and host. Behind a TLS-terminating proxy that says X-Forwarded-Proto: https the
// scheme is https (a client that forges it only breaks its own upload link).
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// uploadFiles serves PUT /templates/{id}/files/{hash}, the upload link: the body is a
// tar archive, gzipped or not, of at most MaxUploadBytes either way.
func (s *Server) uploadFiles(w http.ResponseWriter, r *http.Request) error {
	tok := strings.TrimSpace(r.Header.Get(UploadTokenHeader))
	t, ok := s.up.ticket(tok, s.now())
	if tok == "" || !ok {
		return domain.Errorf(domain.KindUnauthorized, "this upload link is unknown or has expired (links last %s and end with a server restart); build again to get a new one", uploadTokenTTL)
	}
	id, hash := r.PathValue("id"), r.PathValue("hash")
	if id != t.templateID || hash != t.hash {
		return domain.Invalid("hash", "this upload link is for the files %s of template %q, not the files %s of %q; upload to the link GET /templates/{id}/files/{hash} gave for them",
			t.hash, t.templateID, hash, id)
	}
	if s.cfg.Templates == nil {
		return notImplemented("building templates", templateHint)
	}
	limit := s.cfg.MaxUploadBytes
	if limit <= 0 {
		limit = DefaultMaxUploadBytes
	}
	f, sum, err := spoolArchive(http.MaxBytesReader(w, r.Body, limit), limit, s.cfg.SpoolDir)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := s.cfg.Templates.PutFiles(r.Context(), t.p, id, sum, f); err != nil {
		return err
	}
	s.up.remember(t.p.TeamID, id, hash, sum)
	noContent(w)
	return nil
}

// spoolArchive copies an uploaded archive, gunzipped when it is gzipped, to a temporary
// file in dir and returns it (at its start) with the sha256 of its bytes. The caller
// removes it. More than limit bytes, before or after gunzip, is 413; anything but a tar
// archive of relative paths is 400.
func spoolArchive(body io.Reader, limit int64, dir string) (*os.File, string, error) {
	br := bufio.NewReader(body)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", uploadErr(err, "the upload is not a valid gzip stream")
		}
		src = zr
	}
	f, err := os.CreateTemp(dir, "e2b-upload-*.tar")
	if err != nil {
		return nil, "", fmt.Errorf("spooling an upload: %w", err)
	}
	fail := func(err error) (*os.File, string, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(src, limit+1))
	if err != nil {
		return fail(uploadErr(err, "the upload is not a valid gzip stream"))
	}
	if n > limit {
		return fail(&edge.HTTPError{Status: http.StatusRequestEntityTooLarge, Code: domain.KindInvalid.String(),
			Message: fmt.Sprintf("the files are larger than %d bytes uncompressed; copy less (a .dockerignore in the template's directory excludes files)", limit)})
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	if err := checkTar(f); err != nil {
		return fail(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return f, hex.EncodeToString(h.Sum(nil)), nil
}

// uploadErr passes an oversized body on (413) and calls anything else an invalid upload.
func uploadErr(err error, msg string) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return domain.Invalid("body", "%s: %v", msg, err)
}

// checkTar reads r as a tar archive: at least one entry, every name relative and inside.
func checkTar(r io.Reader) error {
	tr := tar.NewReader(r)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return domain.Invalid("body", "the upload is not a tar archive (gzipped or not): %v", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if path.IsAbs(h.Name) || name == ".." || strings.HasPrefix(name, "../") {
			return domain.Invalid("body", "the archive's entry %q is outside the archive; paths must be relative", h.Name)
		}
		n++
	}
	if n == 0 {
		return domain.Invalid("body", "the archive is empty")
	}
	return nil
}
