package warren

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// fileFake stores files by path and lists directories, like the /v1 files routes; it
// interprets the Remove and MakeDir helper commands.
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
		case r.Method == "POST" && r.URL.Path == "/v1/sandboxes/abc/commands":
			ff.command(t, w, r)
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

// command runs the Remove and MakeDir helpers against the stored files.
func (ff *fileFake) command(t *testing.T, w http.ResponseWriter, r *http.Request) {
	var body struct {
		Args []string `json:"args"`
		User string   `json:"user"`
	}
	if err := jsonDecode(r.Body, &body); err != nil || len(body.Args) != 5 || body.Args[0] != "/bin/bash" {
		t.Errorf("helper command %+v %v", body, err)
		return
	}
	p, code := body.Args[4], 0
	switch body.Args[2] {
	case removeScript:
		if _, ok := ff.files[p]; !ok {
			code = helperMissing
		}
		delete(ff.files, p)
		if p == "/locked" {
			code = 1
		}
	case mkdirScript:
		if _, ok := ff.files[p]; ok {
			code = helperMissing
		}
		ff.files[p] = nil
	}
	events := []string{ev("start", map[string]int{"pid": 3})}
	if code == 1 {
		events = append(events, out("stderr", "rm: cannot remove '/locked': Permission denied\n"))
	}
	sse(w, append(events, ev("end", map[string]any{"exit_code": code}))...)
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

func TestFilesStatExistsRemoveMakeDir(t *testing.T) {
	ff := &fileFake{files: map[string][]byte{"/dir/a": []byte("x"), "/locked": nil}}
	f := newFake(t, ff.handle(t))
	files := f.client().Sandbox("abc").Files()
	ctx := context.Background()
	for p, want := range map[string]bool{"/dir/a": true, "/dir/b": false, "/dir": true, "/": true, "/nodir/x": false, "/file.txt/x": false, "/dir/a/": true} {
		if got, err := files.Exists(ctx, p); err != nil || got != want {
			t.Errorf("Exists(%q) = %v, %v; want %v", p, got, err, want)
		}
	}
	if fi, err := files.Stat(ctx, "/dir/a"); err != nil || fi.Size != 1 || fi.IsDir() {
		t.Errorf("Stat: %+v %v", fi, err)
	}
	var pe *fs.PathError
	if _, err := files.Stat(ctx, "/dir/b"); !errors.As(err, &pe) || !errors.Is(err, ErrNotFound) || pe.Path != "/dir/b" {
		t.Errorf("Stat missing: %v", err)
	}

	if err := files.Remove(ctx, "/dir/a"); err != nil || ff.files["/dir/a"] != nil {
		t.Errorf("Remove: %v", err)
	}
	if err := files.Remove(ctx, "/dir/a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove missing: %v", err)
	}
	if err := files.WithUser("user").Remove(ctx, "/locked"); err == nil || !strings.Contains(err.Error(), "Permission denied") || errors.Is(err, ErrNotFound) {
		t.Errorf("Remove refused: %v", err)
	}
	if b := decodeBody(t, f.last().body); b["user"] != "user" {
		t.Errorf("helper ran as %v", b["user"])
	}
	if created, err := files.MakeDir(ctx, "/new/dir"); err != nil || !created {
		t.Errorf("MakeDir: %v %v", created, err)
	}
	if created, err := files.MakeDir(ctx, "/new/dir"); err != nil || created {
		t.Errorf("MakeDir again: %v %v", created, err)
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
