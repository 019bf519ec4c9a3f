package warren

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// fileFake stores files by path (a nil content is a directory) and serves the /v1
// files routes over them: content, listing, stat, mkdir, move and delete.
type fileFake struct {
	mu    sync.Mutex
	files map[string][]byte
}

func (ff *fileFake) handle(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p := q.Get("path")
		ff.mu.Lock()
		defer ff.mu.Unlock()
		switch {
		case r.Method == "PUT" && r.URL.Path == "/v1/sandboxes/abc/files/content":
			if r.Header.Get("Content-Type") != "application/octet-stream" {
				t.Errorf("upload Content-Type %q", r.Header.Get("Content-Type"))
			}
			b, _ := io.ReadAll(r.Body)
			ff.files[p] = b
			writeJSON(w, 200, FileInfo{Name: p[strings.LastIndexByte(p, '/')+1:], Path: p, Type: "file", Size: int64(len(b))})
		case r.Method == "GET" && r.URL.Path == "/v1/sandboxes/abc/files/content":
			b, ok := ff.files[p]
			if !ok {
				apiError(w, 404, "not_found", "path '"+p+"' does not exist")
				return
			}
			w.Write(b)
		case r.Method == "GET" && r.URL.Path == "/v1/sandboxes/abc/files":
			ff.list(w, p)
		case r.Method == "GET" && r.URL.Path == "/v1/sandboxes/abc/files/stat":
			if p == "/secret" {
				apiError(w, 403, "forbidden", "the key lacks scope sandboxes:read")
				return
			}
			b, ok := ff.files[p]
			if !ok {
				apiError(w, 404, "not_found", "path '"+p+"' does not exist")
				return
			}
			writeJSON(w, 200, ff.info(p, b))
		case r.Method == "DELETE" && r.URL.Path == "/v1/sandboxes/abc/files":
			if p == "/locked" {
				apiError(w, 403, "forbidden", "permission denied: '/locked'")
				return
			}
			if _, ok := ff.files[p]; !ok {
				apiError(w, 404, "not_found", "path '"+p+"' does not exist")
				return
			}
			delete(ff.files, p)
			w.WriteHeader(204)
		case r.Method == "POST" && r.URL.Path == "/v1/sandboxes/abc/files/dir":
			b, ok := ff.files[p]
			switch {
			case ok && b != nil:
				apiError(w, 409, "conflict", "a file is in the way: '"+p+"'")
			case ok:
				writeJSON(w, 200, ff.info(p, nil))
			default:
				ff.files[p] = nil
				writeJSON(w, 201, ff.info(p, nil))
			}
		case r.Method == "POST" && r.URL.Path == "/v1/sandboxes/abc/files/move":
			var body moveWire
			if err := jsonDecode(r.Body, &body); err != nil {
				t.Errorf("move body: %v", err)
			}
			b, ok := ff.files[body.From]
			if !ok {
				apiError(w, 404, "not_found", "path '"+body.From+"' does not exist")
				return
			}
			delete(ff.files, body.From)
			ff.files[body.To] = b
			writeJSON(w, 200, ff.info(body.To, b))
		default:
			apiError(w, 404, "not_found", "no route")
		}
	}
}

// list answers a listing: /dir holds the stored files; /file.txt is a file.
func (ff *fileFake) list(w http.ResponseWriter, p string) {
	switch p {
	case "/dir":
		entries := []FileInfo{}
		for name, b := range ff.files {
			if strings.HasPrefix(name, "/dir/") {
				entries = append(entries, FileInfo{Name: strings.TrimPrefix(name, "/dir/"), Path: name, Type: "file", Size: int64(len(b))})
			}
		}
		writeJSON(w, 200, map[string]any{"entries": entries})
	case "/":
		writeJSON(w, 200, map[string]any{"entries": []FileInfo{{Name: "dir", Path: "/dir", Type: "dir"}, {Name: "file.txt", Path: "/file.txt", Type: "file"}}})
	case "/file.txt":
		apiError(w, 400, "invalid", "path '/file.txt' is not a directory")
	default:
		apiError(w, 404, "not_found", "path '"+p+"' does not exist")
	}
}

// info describes a stored path. Preconditions: mu held.
func (ff *fileFake) info(p string, b []byte) FileInfo {
	fi := FileInfo{Name: p[strings.LastIndexByte(p, '/')+1:], Path: p, Type: "file", Size: int64(len(b))}
	if b == nil {
		fi.Type = "dir"
	}
	return fi
}

func TestFilesRoundTrip(t *testing.T) {
	ff := &fileFake{files: map[string][]byte{}}
	f := newFake(t, ff.handle(t))
	files := f.client().Sandbox("abc").Files()
	ctx := context.Background()
	data := make([]byte, 3<<20+7)
	rand.Read(data)

	// A stream that is not seekable is sent as it is read.
	fi, err := files.Write(ctx, "/dir/big.bin", io.MultiReader(bytes.NewReader(data[:100]), bytes.NewReader(data[100:])))
	if err != nil || fi.Size != int64(len(data)) || fi.Path != "/dir/big.bin" || !bytes.Equal(ff.files["/dir/big.bin"], data) {
		t.Fatalf("Write: %+v %v", fi, err)
	}
	if _, err := files.WriteBytes(ctx, "/dir/small.txt", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	rc, err := files.Read(ctx, "/dir/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("Read: %d bytes, %v", len(got), err)
	}
	if b, err := files.ReadBytes(ctx, "/dir/small.txt"); err != nil || string(b) != "hello" {
		t.Errorf("ReadBytes: %q %v", b, err)
	}
	if _, err := files.ReadBytes(ctx, "/nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
	entries, err := files.List(ctx, "/dir")
	if err != nil || len(entries) != 2 {
		t.Errorf("List: %+v %v", entries, err)
	}
	// As another user, with a depth.
	if _, err := files.WithUser("root").ListDepth(ctx, "/dir", 3); err != nil {
		t.Fatal(err)
	}
	q, _ := url.ParseQuery(f.last().query)
	if !reflect.DeepEqual(q, url.Values{"path": {"/dir"}, "user": {"root"}, "depth": {"3"}}) {
		t.Errorf("list query %v", q)
	}
}

func TestFilesStatExistsRemoveMakeDirRename(t *testing.T) {
	ff := &fileFake{files: map[string][]byte{"/dir": nil, "/dir/a": []byte("x"), "/locked": []byte("l")}}
	f := newFake(t, ff.handle(t))
	files := f.client().Sandbox("abc").Files()
	ctx := context.Background()
	for p, want := range map[string]bool{"/dir/a": true, "/dir/b": false, "/dir": true} {
		if got, err := files.Exists(ctx, p); err != nil || got != want {
			t.Errorf("Exists(%q) = %v, %v; want %v", p, got, err, want)
		}
	}
	if fi, err := files.Stat(ctx, "/dir/a"); err != nil || fi.Size != 1 || fi.IsDir() {
		t.Errorf("Stat: %+v %v", fi, err)
	}
	if r := f.last(); r.method != "GET" || r.path != "/v1/sandboxes/abc/files/stat" || r.query != "path=%2Fdir%2Fa" {
		t.Errorf("stat request %s %s?%s", r.method, r.path, r.query)
	}
	if fi, err := files.Stat(ctx, "/dir"); err != nil || !fi.IsDir() {
		t.Errorf("Stat dir: %+v %v", fi, err)
	}
	var ae *APIError
	if _, err := files.Stat(ctx, "/dir/b"); !errors.Is(err, ErrNotFound) || !errors.As(err, &ae) || ae.RequestID != "req_test" {
		t.Errorf("Stat missing: %v", err)
	}
	// An error other than "not found" is not "does not exist".
	if ok, err := files.Exists(ctx, "/secret"); ok || !errors.Is(err, ErrForbidden) {
		t.Errorf("Exists refused: %v %v", ok, err)
	}

	if err := files.Remove(ctx, "/dir/a"); err != nil || ff.files["/dir/a"] != nil {
		t.Errorf("Remove: %v", err)
	}
	if r := f.last(); r.method != "DELETE" || r.path != "/v1/sandboxes/abc/files" || r.query != "path=%2Fdir%2Fa" {
		t.Errorf("remove request %s %s?%s", r.method, r.path, r.query)
	}
	if err := files.Remove(ctx, "/dir/a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove missing: %v", err)
	}
	if err := files.WithUser("user").Remove(ctx, "/locked"); !errors.Is(err, ErrForbidden) {
		t.Errorf("Remove refused: %v", err)
	}
	if q, _ := url.ParseQuery(f.last().query); q.Get("user") != "user" {
		t.Errorf("remove as %q", q.Get("user"))
	}
	if created, err := files.MakeDir(ctx, "/new/dir"); err != nil || !created {
		t.Errorf("MakeDir: %v %v", created, err)
	}
	if r := f.last(); r.method != "POST" || r.path != "/v1/sandboxes/abc/files/dir" || len(r.body) != 0 {
		t.Errorf("mkdir request %s %s %q", r.method, r.path, r.body)
	}
	if created, err := files.MakeDir(ctx, "/new/dir"); err != nil || created {
		t.Errorf("MakeDir again: %v %v", created, err)
	}
	if _, err := files.MakeDir(ctx, "/locked"); !errors.Is(err, ErrConflict) {
		t.Errorf("MakeDir over a file: %v", err)
	}
	fi, err := files.WithUser("root").Rename(ctx, "/locked", "/moved/here")
	if err != nil || fi.Path != "/moved/here" || fi.Size != 1 || string(ff.files["/moved/here"]) != "l" {
		t.Errorf("Rename: %+v %v", fi, err)
	}
	if r := f.last(); r.path != "/v1/sandboxes/abc/files/move" || r.query != "user=root" || string(r.body) != `{"from":"/locked","to":"/moved/here"}` {
		t.Errorf("move request %s?%s %s", r.path, r.query, r.body)
	}
	if _, err := files.Rename(ctx, "/locked", "/x"); !errors.Is(err, ErrNotFound) || f.last().query != "" {
		t.Errorf("Rename missing: %v (query %q)", err, f.last().query)
	}
}

func TestReadBrokenTransfer(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "short")
	})
	b, err := f.client().Sandbox("abc").Files().ReadBytes(context.Background(), "/f")
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) || string(b) != "short" {
		t.Errorf("short body: %q, %v", b, err)
	}
}
