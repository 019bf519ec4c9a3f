package rest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// fakeFS is a tiny in-memory tree for the file operation fakes: path -> is a directory.
type fakeFS map[string]bool

func (fs fakeFS) info(path string) *domain.FileInfo {
	typ := "file"
	if fs[path] {
		typ = "dir"
	}
	name := path[strings.LastIndex(path, "/")+1:]
	return &domain.FileInfo{Name: name, Path: path, Type: typ, Mode: 0o755, Owner: "user", Group: "user",
		Modified: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (fs fakeFS) missing(path string) error {
	return domain.Errorf(domain.KindNotFound, "path '%s' does not exist", path)
}

// newFSHarness serves a fakeFS holding /home/user (dir) and /home/user/a.txt (file).
func newFSHarness(t *testing.T) (*harness, *procFake, fakeFS) {
	h, f := newProcHarness(t)
	fs := fakeFS{"/home/user": true, "/home/user/a.txt": false}
	f.statFile = func(_ context.Context, p domain.Principal, id, path, _ string) (*domain.FileInfo, error) {
		if err := scoped(p, id, domain.ScopeSandboxesRead); err != nil {
			return nil, err
		}
		if _, ok := fs[path]; !ok {
			return nil, fs.missing(path)
		}
		return fs.info(path), nil
	}
	f.makeDir = func(_ context.Context, p domain.Principal, id, path, _ string) (*domain.FileInfo, bool, error) {
		if err := scoped(p, id, domain.ScopeSandboxesWrite); err != nil {
			return nil, false, err
		}
		if dir, ok := fs[path]; ok {
			if !dir {
				return nil, false, domain.Errorf(domain.KindConflict, "cannot create directory %s: path '%s' already exists and is not a directory", path, path)
			}
			return fs.info(path), false, nil
		}
		fs[path] = true
		return fs.info(path), true, nil
	}
	f.movePath = func(_ context.Context, p domain.Principal, id, from, to, _ string) (*domain.FileInfo, error) {
		if err := scoped(p, id, domain.ScopeSandboxesWrite); err != nil {
			return nil, err
		}
		dir, ok := fs[from]
		if !ok {
			return nil, fs.missing(from)
		}
		delete(fs, from)
		fs[to] = dir
		return fs.info(to), nil
	}
	f.removePath = func(_ context.Context, p domain.Principal, id, path, _ string) error {
		if err := scoped(p, id, domain.ScopeSandboxesWrite); err != nil {
			return err
		}
		if _, ok := fs[path]; !ok {
			return fs.missing(path)
		}
		delete(fs, path)
		return nil
	}
	return h, f, fs
}

func TestFileOps(t *testing.T) {
	h, _, fs := newFSHarness(t)
	base := "/v1/sandboxes/" + sbID + "/files"
	cases := []struct {
		name         string
		method, path string
		body         any
		status       int
		wantPath     string // of the FileInfo answered
		wantType     string
	}{
		{"stat a file", "GET", base + "/stat?path=/home/user/a.txt", nil, 200, "/home/user/a.txt", "file"},
		{"stat a dir as root", "GET", base + "/stat?path=/home/user&user=root", nil, 200, "/home/user", "dir"},
		{"mkdir", "POST", base + "/dir?path=/home/user/new", nil, 201, "/home/user/new", "dir"},
		{"mkdir again", "POST", base + "/dir?path=/home/user/new", nil, 200, "/home/user/new", "dir"},
		{"move", "POST", base + "/move", `{"from":"/home/user/a.txt","to":"/home/user/new/b.txt"}`, 200, "/home/user/new/b.txt", "file"},
		{"move with user", "POST", base + "/move?user=user", `{"from":"/home/user/new/b.txt","to":"/home/user/c.txt"}`, 200, "/home/user/c.txt", "file"},
		{"delete", "DELETE", base + "?path=/home/user/new", nil, 204, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := h.do(c.method, c.path, c.body)
			if res.Status != c.status {
				t.Fatalf("%d %s, want %d", res.Status, res.Body, c.status)
			}
			if c.wantPath == "" {
				if len(res.Body) != 0 {
					t.Errorf("body %q, want none", res.Body)
				}
				return
			}
			m := res.Obj(t)
			if m["path"] != c.wantPath || m["type"] != c.wantType {
				t.Errorf("file info %s, want path %s type %s", res.Body, c.wantPath, c.wantType)
			}
		})
	}
	if _, ok := fs["/home/user/new"]; ok {
		t.Error("the deleted directory is still there")
	}
	if _, ok := fs["/home/user/c.txt"]; !ok {
		t.Error("the moved file is not at its new path")
	}
}

func TestFileOpsErrors(t *testing.T) {
	h, _, _ := newFSHarness(t)
	base := "/v1/sandboxes/" + sbID + "/files"
	cases := []struct {
		name         string
		method, path string
		body         any
		status       int
		code, field  string
		msg          string
	}{
		{"stat missing", "GET", base + "/stat?path=/nope", nil, 404, "not_found", "", "does not exist"},
		{"delete missing", "DELETE", base + "?path=/nope", nil, 404, "not_found", "", "does not exist"},
		{"move missing", "POST", base + "/move", `{"from":"/nope","to":"/x"}`, 404, "not_found", "", "does not exist"},
		{"mkdir over a file", "POST", base + "/dir?path=/home/user/a.txt", nil, 409, "conflict", "", "not a directory"},
		{"stat without path", "GET", base + "/stat", nil, 400, "invalid", "path", "required"},
		{"delete without path", "DELETE", base, nil, 400, "invalid", "path", "required"},
		{"mkdir with depth", "POST", base + "/dir?path=/a&depth=2", nil, 400, "invalid", "depth", "unknown query parameter"},
		{"move without from", "POST", base + "/move", `{"to":"/x"}`, 400, "invalid", "from", "required"},
		{"move without to", "POST", base + "/move", `{"from":"/x"}`, 400, "invalid", "to", "required"},
		{"move with path query", "POST", base + "/move?path=/x", `{"from":"/x","to":"/y"}`, 400, "invalid", "path", "unknown query parameter"},
		{"move unknown field", "POST", base + "/move", `{"from":"/x","to":"/y","force":true}`, 400, "invalid", "force", "unknown field"},
		{"other team", "GET", "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz/files/stat?path=/x", nil, 404, "not_found", "", "sandbox"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := h.wantError(h.do(c.method, c.path, c.body), c.status, c.code, c.field)
			if !strings.Contains(m["message"].(string), c.msg) {
				t.Errorf("message %q lacks %q", m["message"], c.msg)
			}
		})
	}
}

func TestFileOpsScopes(t *testing.T) {
	h, _, _ := newFSHarness(t)
	h.keys.authenticate = func(context.Context, string) (domain.Principal, error) {
		return domain.Principal{TeamID: testPrincipal.TeamID, KeyID: "key_v", Scopes: []domain.Scope{domain.ScopeSandboxesRead}}, nil
	}
	base := "/v1/sandboxes/" + sbID + "/files"
	if res := h.do("GET", base+"/stat?path=/home/user", nil); res.Status != 200 {
		t.Errorf("a viewer's stat: %d %s", res.Status, res.Body)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", base + "/dir?path=/home/user/x", ""},
		{"POST", base + "/move", `{"from":"/home/user/a.txt","to":"/b"}`},
		{"DELETE", base + "?path=/home/user/a.txt", ""},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		h.wantError(h.do(c.method, c.path, body), 403, "forbidden", "")
	}
}
