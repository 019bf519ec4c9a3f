package rest

import (
	"log/slog"
	"mime"
	"net/http"
	"path"
	"sort"
	"strconv"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// fileQuery holds the query parameters of the file routes.
type fileQuery struct {
	path  string
	user  string
	depth int
}

// parseFileQuery reads ?path=P[&user=U][&depth=N]; depth is accepted only when withDepth.
func parseFileQuery(r *http.Request, withDepth bool) (fileQuery, error) {
	q := r.URL.Query()
	fq := fileQuery{path: q.Get("path"), user: q.Get("user"), depth: 1}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		switch {
		case name == "path" || name == "user":
		case name == "depth" && withDepth:
			v := q.Get("depth")
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100 {
				return fq, domain.Invalid("depth", "depth must be an integer from 1 to 100, got %q", v)
			}
			fq.depth = n
		default:
			return fq, domain.Invalid(name, "unknown query parameter %q", name)
		}
	}
	if fq.path == "" {
		return fq, domain.Invalid("path", "query parameter \"path\" is required, e.g. ?path=/home/user/file.txt")
	}
	return fq, nil
}

// writeFile stores the raw request body at ?path. The body is streamed, not capped.
func (s *Server) writeFile(w http.ResponseWriter, r *http.Request) error {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	fq, err := parseFileQuery(r, false)
	if err != nil {
		return err
	}
	fs, err := s.fileOps()
	if err != nil {
		return err
	}
	fi, err := fs.WriteFile(r.Context(), p, id, fq.path, fq.user, r.Body)
	if err != nil {
		return err
	}
	return s.writeFileInfo(w, r, http.StatusOK, id, fi)
}

// readFile streams the file at ?path as application/octet-stream. Errors before the
// first byte are JSON; a failure mid-way aborts the connection so that the client sees
// a broken transfer instead of a silently short file.
func (s *Server) readFile(w http.ResponseWriter, r *http.Request) error {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	fq, err := parseFileQuery(r, false)
	if err != nil {
		return err
	}
	fs, err := s.fileOps()
	if err != nil {
		return err
	}
	body := &lazyBody{w: w, name: path.Base(fq.path)}
	if err := fs.ReadFile(r.Context(), p, id, fq.path, fq.user, body); err != nil {
		if !body.started {
			return err
		}
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "file download broke mid-way",
			slog.String(logkey.RequestID, edge.RequestID(r.Context())), slog.String(logkey.SandboxID, id),
			slog.Int64("bytes_sent", body.n), slog.Any(logkey.Err, err))
		panic(http.ErrAbortHandler)
	}
	body.begin() // an empty file still gets its headers
	return nil
}

// lazyBody sends the download headers on the first non-empty write.
type lazyBody struct {
	w       http.ResponseWriter
	name    string
	started bool
	n       int64
}

func (b *lazyBody) begin() {
	if b.started {
		return
	}
	h := b.w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Content-Type-Options", "nosniff")
	if b.name != "" && b.name != "/" && b.name != "." {
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": b.name}))
	}
	b.w.WriteHeader(http.StatusOK)
	b.started = true
}

func (b *lazyBody) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b.begin()
	n, err := b.w.Write(p)
	b.n += int64(n)
	return n, err
}

func (s *Server) listFiles(w http.ResponseWriter, r *http.Request) error {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	fq, err := parseFileQuery(r, true)
	if err != nil {
		return err
	}
	fs, err := s.fileOps()
	if err != nil {
		return err
	}
	entries, err := fs.ListFiles(r.Context(), p, id, fq.path, fq.user, fq.depth)
	if err != nil {
		return err
	}
	resp := listFilesResponse{Entries: make([]fileInfoJSON, 0, len(entries))}
	for _, fi := range entries {
		resp.Entries = append(resp.Entries, toFileInfoJSON(fi))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}
