package rest

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

// This file serves the file operations beyond reading, writing and listing: stat,
// mkdir -p, move and remove.

type moveRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// WithFiles serves the file routes (/files, /files/list, /files/stat, mkdir, move,
// delete) from fs. Without it those routes answer 503.
func WithFiles(fs domain.FileService) Option { return func(o *options) { o.files = fs } }

// fileOps returns the file service.
func (s *Server) fileOps() (domain.FileService, error) {
	if s.opts.files == nil {
		return nil, domain.Errorf(domain.KindUnavailable, "this server does not offer file operations")
	}
	return s.opts.files, nil
}

// userQuery reads the optional ?user= of a route that takes no other query parameter.
func userQuery(r *http.Request) (string, error) {
	q := r.URL.Query()
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name != "user" {
			return "", domain.Invalid(name, "unknown query parameter %q", name)
		}
	}
	return q.Get("user"), nil
}

// pathOp reads what every single-path file operation needs: the caller, the sandbox,
// ?path and ?user, and the service.
func (s *Server) pathOp(r *http.Request) (domain.Principal, string, fileQuery, domain.FileOps, error) {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return p, id, fileQuery{}, nil, err
	}
	fq, err := parseFileQuery(r, false)
	if err != nil {
		return p, id, fq, nil, err
	}
	fo, err := s.fileOps()
	return p, id, fq, fo, err
}

// writeFileInfo answers with fi, which a service must not leave nil without an error.
func (s *Server) writeFileInfo(w http.ResponseWriter, r *http.Request, status int, id string, fi *domain.FileInfo) error {
	if fi == nil {
		return fmt.Errorf("file operation in sandbox %s: service returned no file info", id)
	}
	s.edge.WriteJSON(w, r, status, toFileInfoJSON(*fi))
	return nil
}

func (s *Server) statFile(w http.ResponseWriter, r *http.Request) error {
	p, id, fq, fo, err := s.pathOp(r)
	if err != nil {
		return err
	}
	fi, err := fo.StatFile(r.Context(), p, id, fq.path, fq.user)
	if err != nil {
		return err
	}
	return s.writeFileInfo(w, r, http.StatusOK, id, fi)
}

// makeDir creates ?path and its parents: 201 when it created the directory, 200 when
// it already existed.
func (s *Server) makeDir(w http.ResponseWriter, r *http.Request) error {
	p, id, fq, fo, err := s.pathOp(r)
	if err != nil {
		return err
	}
	fi, created, err := fo.MakeDir(r.Context(), p, id, fq.path, fq.user)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return s.writeFileInfo(w, r, status, id, fi)
}

func (s *Server) moveFile(w http.ResponseWriter, r *http.Request) error {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	user, err := userQuery(r)
	if err != nil {
		return err
	}
	var body moveRequest
	if err := s.decodeJSON(w, r, &body); err != nil {
		return err
	}
	switch {
	case body.From == "":
		return domain.Invalid("from", "from (the path to move) is required")
	case body.To == "":
		return domain.Invalid("to", "to (the new path) is required")
	}
	fo, err := s.fileOps()
	if err != nil {
		return err
	}
	fi, err := fo.MovePath(r.Context(), p, id, body.From, body.To, user)
	if err != nil {
		return err
	}
	return s.writeFileInfo(w, r, http.StatusOK, id, fi)
}

func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request) error {
	p, id, fq, fo, err := s.pathOp(r)
	if err != nil {
		return err
	}
	if err := fo.RemovePath(r.Context(), p, id, fq.path, fq.user); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
