package rest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func newHTTPServer(t *testing.T, h *harness) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h.srv)
	t.Cleanup(srv.Close)
	return srv
}

func TestWriteFile(t *testing.T) {
	h := newHarness(t, WithMaxJSONBytes(16)) // uploads are not capped
	var gotPath, gotUser string
	var gotBody []byte
	h.svc.writeFile = func(_ context.Context, _ domain.Principal, id, path, user string, r io.Reader) (*domain.FileInfo, error) {
		if err := notFoundUnless(id); err != nil {
			return nil, err
		}
		gotPath, gotUser = path, user
		gotBody, _ = io.ReadAll(r)
		return &domain.FileInfo{Name: "f.bin", Path: path, Type: "file", Size: int64(len(gotBody)), Mode: 0o644,
			Owner: "user", Group: "user", Modified: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, nil
	}
	data := bytes.Repeat([]byte{0, 1, 2, 0xff}, 1000)
	res := h.do("PUT", "/v1/sandboxes/"+sbID+"/files/content?path=/home/user/f.bin&user=root", data)
	if res.Status != 200 || !bytes.Equal(gotBody, data) || gotPath != "/home/user/f.bin" || gotUser != "root" {
		t.Fatalf("upload: %d %s; path %q user %q, %d bytes", res.Status, res.Body, gotPath, gotUser, len(gotBody))
	}
	if m := res.Obj(t); m["size"] != float64(4000) || m["type"] != "file" {
		t.Errorf("file info: %s", res.Body)
	}
	h.wantError(h.do("PUT", "/v1/sandboxes/"+sbID+"/files/content", "x"), 400, "invalid", "path")
	h.wantError(h.do("PUT", "/v1/sandboxes/"+sbID+"/files/content?path=/a&depth=2", "x"), 400, "invalid", "depth")
	h.wantError(h.do("PUT", "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz/files/content?path=/a", "x"), 404, "not_found", "")
}

func TestReadFile(t *testing.T) {
	h := newHarness(t)
	content := bytes.Repeat([]byte("0123456789"), 10000)
	h.svc.readFile = func(_ context.Context, _ domain.Principal, id, path, _ string, w io.Writer) error {
		if err := notFoundUnless(id); err != nil {
			return err
		}
		switch path {
		case "/missing":
			return domain.NotFound("file", path)
		case "/empty":
			return nil
		}
		for i := 0; i < len(content); i += 4096 {
			if _, err := w.Write(content[i:min(i+4096, len(content))]); err != nil {
				return err
			}
		}
		return nil
	}
	res := h.do("GET", "/v1/sandboxes/"+sbID+"/files/content?path=/data/big.txt", nil)
	if res.Status != 200 || !bytes.Equal(res.Body, content) {
		t.Fatalf("download: %d, %d bytes", res.Status, len(res.Body))
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cd := res.Header.Get("Content-Disposition"); cd != `attachment; filename=big.txt` {
		t.Errorf("Content-Disposition = %q", cd)
	}
	res = h.do("GET", "/v1/sandboxes/"+sbID+"/files/content?path=/empty", nil)
	if res.Status != 200 || len(res.Body) != 0 || res.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("empty file: %d %v", res.Status, res.Header)
	}
	h.wantError(h.do("GET", "/v1/sandboxes/"+sbID+"/files/content?path=/missing", nil), 404, "not_found", "")
	h.wantError(h.do("GET", "/v1/sandboxes/"+sbID+"/files/content", nil), 400, "invalid", "path")
}

func TestReadFileBreaksMidway(t *testing.T) {
	h := newHarness(t)
	h.svc.readFile = func(_ context.Context, _ domain.Principal, _, _, _ string, w io.Writer) error {
		_, _ = w.Write([]byte(strings.Repeat("x", 100_000))) // past net/http's buffer: headers are out
		return errors.New("agent connection reset")
	}
	srv := newHTTPServer(t, h)
	req, _ := http.NewRequest("GET", srv.URL+"/v1/sandboxes/"+sbID+"/files/content?path=/f", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("a broken download read cleanly; the client cannot tell it is short")
	}
	if !strings.Contains(h.logs.String(), "agent connection reset") {
		t.Errorf("mid-way failure not logged:\n%s", h.logs)
	}
}

func TestListFiles(t *testing.T) {
	h := newHarness(t)
	var gotDepth int
	h.svc.listFiles = func(_ context.Context, _ domain.Principal, id, path, _ string, depth int) ([]domain.FileInfo, error) {
		gotDepth = depth
		return []domain.FileInfo{{Name: "a", Path: path + "/a", Type: "dir", Mode: 0o755}, {Name: "b", Path: path + "/b", Type: "file", Size: 3}}, nil
	}
	res := h.do("GET", "/v1/sandboxes/"+sbID+"/files?path=/home/user", nil)
	if res.Status != 200 || gotDepth != 1 || len(res.Obj(t)["entries"].([]any)) != 2 {
		t.Fatalf("list: %d %s depth %d", res.Status, res.Body, gotDepth)
	}
	h.do("GET", "/v1/sandboxes/"+sbID+"/files?path=/home/user&depth=3", nil)
	if gotDepth != 3 {
		t.Errorf("depth = %d, want 3", gotDepth)
	}
	for _, q := range []string{"depth=0&path=/", "depth=x&path=/", "depth=101&path=/"} {
		h.wantError(h.do("GET", "/v1/sandboxes/"+sbID+"/files?"+q, nil), 400, "invalid", "depth")
	}
	h.wantError(h.do("GET", "/v1/sandboxes/"+sbID+"/files", nil), 400, "invalid", "path")
}
