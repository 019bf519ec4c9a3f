package warren

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// FileInfo describes a file or directory in a sandbox.
type FileInfo struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Type is file, dir or symlink.
	Type string `json:"type"`
	Size int64  `json:"size"`
	// Mode holds the Unix permission bits.
	Mode     uint32    `json:"mode"`
	Owner    string    `json:"owner,omitempty"`
	Group    string    `json:"group,omitempty"`
	Modified time.Time `json:"modified,omitzero"`
}

// IsDir reports whether the entry is a directory.
func (fi *FileInfo) IsDir() bool { return fi.Type == "dir" }

type fileList struct {
	Entries []FileInfo `json:"entries"`
}

// Files reads and writes a sandbox's files; get it with Sandbox.Files. Paths are
// absolute, or relative to the user's home directory.
type Files struct {
	s    *Sandbox
	user string
}

// Files returns the sandbox's file access, acting as the template's default user.
func (s *Sandbox) Files() *Files { return &Files{s: s} }

// WithUser returns a Files acting as user: what it creates is owned by that user and
// relative paths start in its home. It is not a permission check (the agent acts as
// root, as a caller who may run commands as root could anyway).
func (f *Files) WithUser(user string) *Files { return &Files{s: f.s, user: user} }

func (f *Files) query(p string) url.Values {
	q := url.Values{"path": {p}}
	if f.user != "" {
		q.Set("user", f.user)
	}
	return q
}

// Write creates or replaces the file at p with r's content, making parent
// directories, and returns the written file. The content is streamed, so any size
// works. A refused request (429, 503) is retried only if r is an io.ReadSeeker (such
// as an *os.File or *bytes.Reader), which is rewound for it.
func (f *Files) Write(ctx context.Context, p string, r io.Reader) (*FileInfo, error) {
	var fi FileInfo
	req := request{route: routeWriteFile, params: []string{f.s.ID}, query: f.query(p), body: r, contentType: "application/octet-stream"}
	if err := f.s.c.call(ctx, req, &fi); err != nil {
		return nil, err
	}
	return &fi, nil
}

// WriteBytes writes data to the file at p; see Write.
func (f *Files) WriteBytes(ctx context.Context, p string, data []byte) (*FileInfo, error) {
	return f.Write(ctx, p, bytes.NewReader(data))
}

// Read opens the file at p for streaming. Close the reader when done. A transfer that
// breaks part-way makes Read return an error, never a silently short file.
func (f *Files) Read(ctx context.Context, p string) (io.ReadCloser, error) {
	resp, err := f.s.c.send(ctx, request{route: routeReadFile, params: []string{f.s.ID}, query: f.query(p), accept: "application/octet-stream"})
	if err != nil {
		return nil, err
	}
	return &readCloser{ctx: ctx, rc: resp.Body, what: p}, nil
}

// readCloser classifies a download's read errors (timeouts become ErrTimeout).
type readCloser struct {
	ctx  context.Context
	rc   io.ReadCloser
	what string
	n    int64
}

func (r *readCloser) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.n += int64(n)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("warren: reading %s after %d bytes: %w", r.what, r.n, transportError(r.ctx, err))
	}
	return n, err
}

func (r *readCloser) Close() error { return r.rc.Close() }

// ReadBytes reads the whole file at p.
func (f *Files) ReadBytes(ctx context.Context, p string) ([]byte, error) {
	rc, err := f.Read(ctx, p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// List returns the entries of the directory at p.
func (f *Files) List(ctx context.Context, p string) ([]FileInfo, error) {
	return f.ListDepth(ctx, p, 1)
}

// ListDepth returns the entries of the directory at p and of its subdirectories,
// depth levels down (1: just its children; at most 100).
func (f *Files) ListDepth(ctx context.Context, p string, depth int) ([]FileInfo, error) {
	q := f.query(p)
	if depth > 1 {
		q.Set("depth", strconv.Itoa(depth))
	}
	var list fileList
	if err := f.s.c.call(ctx, request{route: routeListFiles, params: []string{f.s.ID}, query: q}, &list); err != nil {
		return nil, err
	}
	if list.Entries == nil {
		list.Entries = []FileInfo{}
	}
	return list.Entries, nil
}

// Stat describes the file or directory at p without following a final symlink (a
// symlink to a file or directory reports its target's type). A missing p is
// ErrNotFound.
func (f *Files) Stat(ctx context.Context, p string) (*FileInfo, error) {
	var fi FileInfo
	if err := f.s.c.call(ctx, request{route: routeStatFile, params: []string{f.s.ID}, query: f.query(p)}, &fi); err != nil {
		return nil, err
	}
	return &fi, nil
}

// Exists reports whether a file or directory exists at p.
func (f *Files) Exists(ctx context.Context, p string) (bool, error) {
	_, err := f.Stat(ctx, p)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Remove removes the file, or the directory with everything in it, at p. A missing p
// is ErrNotFound.
func (f *Files) Remove(ctx context.Context, p string) error {
	return f.s.c.call(ctx, request{route: routeDeleteFile, params: []string{f.s.ID}, query: f.query(p)}, nil)
}

// MakeDir creates the directory p and its missing parents (mkdir -p), owned by the
// Files' user. It returns false if p already was a directory; a file in the way is
// ErrConflict.
func (f *Files) MakeDir(ctx context.Context, p string) (bool, error) {
	resp, err := f.s.c.send(ctx, request{route: routeMakeDir, params: []string{f.s.ID}, query: f.query(p)})
	if err != nil {
		return false, err
	}
	drain(resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusCreated, nil
}

type moveWire struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Rename moves the file or directory at from to to, creating to's missing parents,
// and describes it at its new path. A missing from is ErrNotFound.
func (f *Files) Rename(ctx context.Context, from, to string) (*FileInfo, error) {
	var q url.Values
	if f.user != "" {
		q = url.Values{"user": {f.user}}
	}
	var fi FileInfo
	req := request{route: routeMoveFile, params: []string{f.s.ID}, query: q, json: moveWire{From: from, To: to}}
	if err := f.s.c.call(ctx, req, &fi); err != nil {
		return nil, err
	}
	return &fi, nil
}
