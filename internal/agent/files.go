package agent

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func (a *Agent) handleFiles(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		a.handleDownload(w, r)
	case http.MethodPost:
		a.handleUpload(w, r)
	default:
		methodNotAllowed(w, r, "GET, POST")
	}
}

// handleDownload serves GET /files?path=&username=: the raw bytes, with Range and
// conditional requests (http.ServeContent), gzip-encoded only if the client accepts
// gzip and asked for no range.
func (a *Agent) handleDownload(w http.ResponseWriter, r *http.Request) {
	if err := a.filesAuth(r, opRead); err != nil {
		writeJSONError(w, http.StatusUnauthorized, err.Error())
		return
	}
	q := r.URL.Query()
	u, err := a.userNamed(q.Get("username"))
	if err != nil {
		writeJSONError(w, http.StatusUnauthorized, err.Error())
		return
	}
	if q.Get("path") == "" {
		writeJSONError(w, http.StatusBadRequest, "missing path query parameter: GET /files?path=<file>")
		return
	}
	path := a.resolveFor(q.Get("path"), u)
	f, err := os.Open(path)
	if err != nil {
		writeFileError(w, err, path)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		writeFileError(w, err, path)
		return
	}
	if fi.IsDir() {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("path '%s' is a directory; use ListDir to list it", path))
		return
	}
	if !fi.Mode().IsRegular() {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("path '%s' is not a regular file", path))
		return
	}

	gz, identity := acceptedEncodings(r.Header.Get("Accept-Encoding"))
	useGzip := gz && r.Header.Get("Range") == ""
	if !useGzip && !identity {
		writeJSONError(w, http.StatusNotAcceptable, "the file can only be sent as identity or gzip, and Accept-Encoding allows neither")
		return
	}
	h := w.Header()
	ctype := mime.TypeByExtension(filepath.Ext(path))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": filepath.Base(path)}))
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Accept-Encoding")
	ew := &encodingWriter{ResponseWriter: w, gzip: useGzip}
	http.ServeContent(ew, r, filepath.Base(path), fi.ModTime(), f)
	ew.finish()
}

// writeFileError maps an error opening a file for download.
func writeFileError(w http.ResponseWriter, err error, path string) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("path '%s' does not exist", path))
	case errors.Is(err, fs.ErrPermission):
		writeJSONError(w, http.StatusForbidden, fmt.Sprintf("permission denied reading '%s'", path))
	case errors.Is(err, syscall.ENOTDIR):
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("a component of '%s' is not a directory", path))
	default:
		writeJSONError(w, http.StatusInternalServerError, fmt.Sprintf("reading '%s': %v", path, err))
	}
}

// acceptedEncodings parses Accept-Encoding: whether gzip is acceptable, and whether
// identity still is (it is unless refused with q=0, directly or through "*").
func acceptedEncodings(header string) (gzipOK, identityOK bool) {
	identityOK = true
	identitySeen, starQ := false, -1.0
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch name {
		case "gzip", "x-gzip":
			gzipOK = q > 0
		case "identity":
			identitySeen, identityOK = true, q > 0
		case "*":
			starQ = q
		}
	}
	if starQ >= 0 && !identitySeen {
		identityOK = starQ > 0
	}
	if starQ > 0 && !strings.Contains(strings.ToLower(header), "gzip") {
		gzipOK = true
	}
	return gzipOK, identityOK
}

// encodingWriter sits between http.ServeContent and the client. It gzips a 200
// body when asked to, and turns ServeContent's plain-text errors (e.g. 416) into
// the agent's JSON error bodies.
type encodingWriter struct {
	http.ResponseWriter
	gzip    bool
	gz      *gzip.Writer
	status  int
	errBody []byte // captured text body of an error response
}

func (e *encodingWriter) WriteHeader(code int) {
	if e.status != 0 {
		return
	}
	e.status = code
	h := e.Header()
	switch {
	case code >= 400:
		return // written in finish, as JSON
	case code == http.StatusOK && e.gzip:
		h.Del("Content-Length")
		h.Set("Content-Encoding", "gzip")
		e.gz = gzip.NewWriter(e.ResponseWriter)
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *encodingWriter) Write(b []byte) (int, error) {
	if e.status == 0 {
		e.WriteHeader(http.StatusOK)
	}
	switch {
	case e.status >= 400:
		e.errBody = append(e.errBody, b...)
		return len(b), nil
	case e.gz != nil:
		return e.gz.Write(b)
	}
	return e.ResponseWriter.Write(b)
}

func (e *encodingWriter) finish() {
	if e.gz != nil {
		_ = e.gz.Close()
	}
	if e.status >= 400 {
		writeJSONError(e.ResponseWriter, e.status, strings.TrimSpace(string(e.errBody)))
	}
}

// uploadedFile is one element of the POST /files response.
type uploadedFile struct {
	Path     string            `json:"path"`
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// uploadError carries the HTTP status for an upload failure.
type uploadError struct {
	status int
	msg    string
}

func (e *uploadError) Error() string { return e.msg }

func badUpload(format string, args ...any) error {
	return &uploadError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// handleUpload serves POST /files: multipart/form-data (one "file" part per file,
// the part's filename being the full destination path unless the path query is
// given) or application/octet-stream (path query required), optionally with
// Content-Encoding: gzip. Files and missing parents are owned by the user;
// X-Metadata-* headers replace the files' metadata.
func (a *Agent) handleUpload(w http.ResponseWriter, r *http.Request) {
	if err := a.filesAuth(r, opWrite); err != nil {
		writeJSONError(w, http.StatusUnauthorized, err.Error())
		return
	}
	q := r.URL.Query()
	u, err := a.userNamed(q.Get("username"))
	if err != nil {
		writeJSONError(w, http.StatusUnauthorized, err.Error())
		return
	}
	written, err := a.upload(r, u)
	if err != nil {
		var ue *uploadError
		if errors.As(err, &ue) {
			writeJSONError(w, ue.status, ue.msg)
			return
		}
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, written)
}

func (a *Agent) upload(r *http.Request, u *User) ([]uploadedFile, error) {
	md, err := metadataHeaders(r.Header)
	if err != nil {
		return nil, err
	}
	body := io.Reader(r.Body)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, badUpload("the body is not valid gzip: %v", err)
		}
		defer zr.Close()
		body = zr
	default:
		return nil, badUpload("unsupported Content-Encoding %q: send gzip or none", enc)
	}
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, badUpload("missing or invalid Content-Type: use multipart/form-data or application/octet-stream")
	}
	queryPath := r.URL.Query().Get("path")
	seen := map[string]bool{}
	var out []uploadedFile
	save := func(requested string, src io.Reader) error {
		path := a.resolveFor(requested, u)
		if seen[path] {
			return badUpload("path '%s' appears more than once in the upload", path)
		}
		seen[path] = true
		if err := writeUpload(path, src, u, md); err != nil {
			return err
		}
		out = append(out, uploadedFile{Path: path, Name: filepath.Base(path), Type: "file", Metadata: md})
		return nil
	}

	switch mediaType {
	case "application/octet-stream":
		if queryPath == "" {
			return nil, badUpload("an application/octet-stream upload needs the path query parameter")
		}
		if err := save(queryPath, body); err != nil {
			return nil, err
		}
	case "multipart/form-data":
		if params["boundary"] == "" {
			return nil, badUpload("multipart/form-data without a boundary")
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, badUpload("reading multipart body: %v", err)
			}
			if part.FormName() != "file" {
				continue
			}
			target := queryPath
			if target == "" {
				// Part.FileName drops directories; the SDK sends the full path.
				_, dp, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
				if err != nil || dp["filename"] == "" {
					return nil, badUpload("file part without a filename: set the part's filename to the destination path or pass the path query parameter")
				}
				target = dp["filename"]
			}
			if err := save(target, part); err != nil {
				return nil, err
			}
		}
		if len(out) == 0 {
			return nil, badUpload("the multipart body has no part named \"file\"")
		}
	default:
		return nil, badUpload("unsupported Content-Type %q: use multipart/form-data or application/octet-stream", mediaType)
	}
	return out, nil
}

// metadataHeaders collects X-Metadata-<key> headers; keys are lower-cased and must
// be printable ASCII.
func metadataHeaders(h http.Header) (map[string]string, error) {
	var md map[string]string
	for name, vals := range h {
		key, ok := cutPrefixFold(name, "X-Metadata-")
		if !ok {
			continue
		}
		key = strings.ToLower(key)
		if key == "" {
			return nil, badUpload("empty metadata key in header %q", name)
		}
		for _, c := range key + strings.Join(vals, "") {
			if c < 0x20 || c > 0x7e {
				return nil, badUpload("metadata header %q must be printable ASCII", name)
			}
		}
		if md == nil {
			md = map[string]string{}
		}
		md[key] = strings.Join(vals, ",")
	}
	return md, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

// writeUpload writes src to path (truncating an existing file), creating missing
// parents, and gives the file and new parents to u.
func writeUpload(path string, src io.Reader, u *User, md map[string]string) error {
	uid, gid := int(u.UID), int(u.GID)
	if err := ensureDirs(filepath.Dir(path), uid, gid); err != nil {
		return uploadFSError(err, path)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return badUpload("path '%s' is a directory", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return uploadFSError(err, path)
	}
	_, err = io.Copy(f, src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return uploadFSError(err, path)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		return uploadFSError(err, path)
	}
	if md != nil {
		if err := replaceMetadata(path, md); err != nil {
			return fmt.Errorf("storing metadata of '%s': %w", path, err)
		}
	}
	return nil
}

func uploadFSError(err error, path string) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return &uploadError{status: http.StatusInsufficientStorage, msg: fmt.Sprintf("not enough disk space to write '%s'", path)}
	case errors.Is(err, errNotDir), errors.Is(err, syscall.ENOTDIR):
		return badUpload("a parent of '%s' exists and is not a directory", path)
	case errors.Is(err, syscall.EISDIR):
		return badUpload("path '%s' is a directory", path)
	case errors.Is(err, fs.ErrPermission):
		return &uploadError{status: http.StatusForbidden, msg: fmt.Sprintf("permission denied writing '%s'", path)}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &uploadError{status: http.StatusRequestEntityTooLarge, msg: err.Error()}
	}
	return fmt.Errorf("writing '%s': %w", path, err)
}
