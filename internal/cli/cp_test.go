package cli

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCpRoundTrip(t *testing.T) {
	e := newTestEnv(t)
	id := e.createSandbox()
	dir := t.TempDir()
	data := make([]byte, 10<<20+123) // 10 MiB and change, random
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "data.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}

	r := e.ok("cp", src, id+":/home/user/data.bin")
	if !strings.Contains(r.stdout, "10.0 MiB") || !bytes.Equal(e.svc.files[id+":/home/user/data.bin"], data) {
		t.Fatalf("upload: %q, stored %d bytes", r.stdout, len(e.svc.files[id+":/home/user/data.bin"]))
	}
	dst := filepath.Join(dir, "back.bin")
	e.ok("cp", id+":/home/user/data.bin", dst)
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatalf("download differs: %d bytes, want %d", len(got), len(data))
	}
	// Into a directory, and to stdout.
	sub := filepath.Join(dir, "sub")
	_ = os.Mkdir(sub, 0o755)
	e.ok("cp", id+":/home/user/data.bin", sub)
	if got, _ := os.ReadFile(filepath.Join(sub, "data.bin")); !bytes.Equal(got, data) {
		t.Error("download into a directory differs")
	}
	if r := e.ok("cp", id+":/home/user/data.bin", "-"); r.stdout != string(data) {
		t.Errorf("download to stdout: %d bytes", len(r.stdout))
	}
	// From stdin; a remote directory takes the local file's name.
	if r := e.runIn(bytes.NewReader(data[:1000]), "cp", "-", id+":/tmp/stdin.bin"); r.code != 0 || !bytes.Equal(e.svc.files[id+":/tmp/stdin.bin"], data[:1000]) {
		t.Errorf("upload from stdin: %+v", r)
	}
	e.ok("cp", src, id+":/tmp/")
	if len(e.svc.files[id+":/tmp/data.bin"]) != len(data) {
		t.Error("upload into a remote directory did not use the file's name")
	}
}

func TestCpJSONAndErrors(t *testing.T) {
	e := newTestEnv(t)
	id := e.createSandbox()
	dir := t.TempDir()
	src := filepath.Join(dir, "a.txt")
	_ = os.WriteFile(src, []byte("hello"), 0o644)

	fi := decode[map[string]any](t, e.ok("cp", "-o", "json", src, id+":/a.txt").stdout)
	if fi["path"] != "/a.txt" || fi["size"] != float64(5) || fi["type"] != "file" {
		t.Errorf("upload -o json: %v", fi)
	}
	dl := decode[map[string]any](t, e.ok("cp", id+":/a.txt", filepath.Join(dir, "b.txt"), "-o", "json").stdout)
	if dl["bytes"] != float64(5) || dl["path"] != filepath.Join(dir, "b.txt") {
		t.Errorf("download -o json: %v", dl)
	}

	// A missing remote file: an API error, and no file (or temp file) left behind.
	r := e.run("cp", id+":/nope", filepath.Join(dir, "nope"))
	if r.code != 1 || !strings.Contains(r.stderr, `error: file "/nope" not found (request req_`) {
		t.Errorf("missing remote file: %+v", r)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("files left behind: %v", entries)
	}

	usage := []struct {
		args []string
		msg  string
	}{
		{[]string{"cp", dir, id + ":/x"}, "is a directory"},
		{[]string{"cp", "-", id + ":/tmp/"}, "give a file name for stdin"},
		{[]string{"cp", id + ":", "-"}, "give a path after the sandbox id"},
		{[]string{"cp", "-o", "json", id + ":/a.txt", "-"}, "cannot be combined"},
	}
	for _, u := range usage {
		if r := e.run(u.args...); r.code != 2 || !strings.Contains(r.stderr, u.msg) {
			t.Errorf("%v: %+v, want exit 2 and %q", u.args, r, u.msg)
		}
	}
	if r := e.run("cp", filepath.Join(dir, "missing"), id+":/x"); r.code != 1 || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("missing local file: %+v", r)
	}
}

func TestCpUploadRejectedEarly(t *testing.T) {
	// The server answers 404 without reading a large body; the client must still
	// report the API's error, not a broken pipe.
	e := newTestEnv(t)
	id := e.createSandbox()
	src := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(src, make([]byte, 20<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r := e.run("--api-key", keyB, "cp", src, id+":/big")
		if r.code != 1 || !strings.Contains(r.stderr, "not found (request req_") {
			t.Errorf("upload to another team's sandbox: %+v", r)
		}
	}
}
