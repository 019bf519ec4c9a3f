package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/envdpb/filesystem"
	"github.com/warren-sh/warren/internal/envdpb/filesystem/filesystemconnect"
	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
)

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func asUser[T any](msg *T, user string) *connect.Request[T] {
	r := connect.NewRequest(msg)
	if user != "" {
		r.Header().Set("Authorization", basicAuth(user))
	}
	return r
}

func TestStat(t *testing.T) {
	e := newTestEnv(t, Config{})
	file := filepath.Join(e.dir, "a.txt")
	mustWrite(t, file, "hello")
	if err := unix.Setxattr(file, metadataXattrPrefix+"owner", []byte("me"), 0); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e.dir, "d")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(e.dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(e.dir, "dangling")
	if err := os.Symlink("/no/such/target", dangling); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path  string
		typ         filesystem.FileType
		perms       string
		owner       string
		size        int64
		target      string
		metadata    map[string]string
		code        connect.Code
		requestUser string
	}{
		{name: "file", path: file, typ: filesystem.FileType_FILE_TYPE_FILE, perms: "-rw-r--r--", owner: "root", size: 5, metadata: map[string]string{"owner": "me"}},
		{name: "directory", path: dir, typ: filesystem.FileType_FILE_TYPE_DIRECTORY, perms: "drwxr-x---", owner: "nobody"},
		{name: "symlink to file", path: link, typ: filesystem.FileType_FILE_TYPE_FILE, perms: "Lrwxrwxrwx", owner: "root", target: file},
		{name: "dangling symlink", path: dangling, typ: filesystem.FileType_FILE_TYPE_SYMLINK, perms: "Lrwxrwxrwx", owner: "root", target: "/no/such/target"},
		{name: "missing", path: filepath.Join(e.dir, "nope"), code: connect.CodeNotFound},
		{name: "unknown user", path: file, code: connect.CodeUnauthenticated, requestUser: "no-such-user-xyz"},
	}
	e.codecs(t, func(t *testing.T, _ processconnect.ProcessClient, fc filesystemconnect.FilesystemClient) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := fc.Stat(context.Background(), asUser(&filesystem.StatRequest{Path: tc.path}, tc.requestUser))
				if tc.code != 0 {
					wantCode(t, err, tc.code)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				en := resp.Msg.GetEntry()
				if en.GetPath() != tc.path || en.GetName() != filepath.Base(tc.path) || en.GetType() != tc.typ ||
					en.GetPermissions() != tc.perms || en.GetOwner() != tc.owner || en.GetModifiedTime() == nil {
					t.Fatalf("entry %v", en)
				}
				if tc.size != 0 && en.GetSize() != tc.size {
					t.Errorf("size %d, want %d", en.GetSize(), tc.size)
				}
				if en.GetSymlinkTarget() != tc.target || (tc.target == "") != (en.SymlinkTarget == nil) {
					t.Errorf("symlink target %v, want %q", en.SymlinkTarget, tc.target)
				}
				if len(tc.metadata) > 0 && en.GetMetadata()["owner"] != tc.metadata["owner"] {
					t.Errorf("metadata %v, want %v", en.GetMetadata(), tc.metadata)
				}
			})
		}
	})
	t.Run("tilde and relative paths", func(t *testing.T) {
		e.a.settings.mu.Lock()
		e.a.settings.defaultWorkdir = e.dir
		e.a.settings.mu.Unlock()
		for path, want := range map[string]string{"a.txt": file, "~": "/root", "d/..": e.dir} {
			resp, err := e.fs.Stat(context.Background(), connect.NewRequest(&filesystem.StatRequest{Path: path}))
			if err != nil || resp.Msg.GetEntry().GetPath() != want {
				t.Errorf("Stat(%q) = %v, %v; want path %q", path, resp.Msg.GetEntry(), err, want)
			}
		}
	})
}

func ownerOf(t *testing.T, path string) uint32 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid
}

func TestMakeDir(t *testing.T) {
	e := newTestEnv(t, Config{})
	mustWrite(t, filepath.Join(e.dir, "file"), "")
	if err := os.Mkdir(filepath.Join(e.dir, "exists"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, user string
		code             connect.Code
		uid              uint32
	}{
		{name: "nested as nobody", path: "a/b/c", user: "nobody", uid: 65534},
		{name: "as root", path: "r", user: "root", uid: 0},
		{name: "existing directory", path: "exists", code: connect.CodeAlreadyExists},
		{name: "existing file", path: "file", code: connect.CodeInvalidArgument},
		{name: "parent is a file", path: "file/sub", code: connect.CodeInvalidArgument},
	}
	e.codecs(t, func(t *testing.T, _ processconnect.ProcessClient, fc filesystemconnect.FilesystemClient) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				base := filepath.Join(e.dir, strings.ReplaceAll(t.Name(), "/", "_"))
				path := filepath.Join(e.dir, tc.path)
				if tc.code == 0 {
					path = filepath.Join(base, tc.path)
				}
				resp, err := fc.MakeDir(context.Background(), asUser(&filesystem.MakeDirRequest{Path: path}, tc.user))
				if tc.code != 0 {
					wantCode(t, err, tc.code)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if en := resp.Msg.GetEntry(); en.GetPath() != path || en.GetType() != filesystem.FileType_FILE_TYPE_DIRECTORY {
					t.Fatalf("entry %v", en)
				}
				// Every directory created is owned by the user; existing ones are not touched.
				for p := path; p != e.dir; p = filepath.Dir(p) {
					if got := ownerOf(t, p); got != tc.uid {
						t.Errorf("%s owned by %d, want %d", p, got, tc.uid)
					}
				}
				if ownerOf(t, e.dir) != 0 {
					t.Errorf("existing parent %s changed owner", e.dir)
				}
			})
		}
	})
}

func TestMove(t *testing.T) {
	e := newTestEnv(t, Config{})
	e.codecs(t, func(t *testing.T, _ processconnect.ProcessClient, fc filesystemconnect.FilesystemClient) {
		src := filepath.Join(e.dir, t.Name(), "src.txt")
		mustWrite(t, src, "data")
		dst := filepath.Join(e.dir, t.Name(), "new", "dir", "dst.txt")
		resp, err := fc.Move(context.Background(), asUser(&filesystem.MoveRequest{Source: src, Destination: dst}, "nobody"))
		if err != nil {
			t.Fatal(err)
		}
		if en := resp.Msg.GetEntry(); en.GetPath() != dst || en.GetName() != "dst.txt" || en.GetSize() != 4 {
			t.Fatalf("entry %v", en)
		}
		if _, err := os.Stat(src); !os.IsNotExist(err) {
			t.Fatalf("source still there: %v", err)
		}
		if ownerOf(t, filepath.Dir(dst)) != 65534 {
			t.Error("created destination parent not owned by the user")
		}
		_, err = fc.Move(context.Background(), connect.NewRequest(&filesystem.MoveRequest{Source: src, Destination: dst + ".2"}))
		wantCode(t, err, connect.CodeNotFound)
	})
}

func TestListDir(t *testing.T) {
	e := newTestEnv(t, Config{})
	root := filepath.Join(e.dir, "tree")
	mustWrite(t, filepath.Join(root, "a.txt"), "a")
	mustWrite(t, filepath.Join(root, "sub", "b.txt"), "b")
	mustWrite(t, filepath.Join(root, "sub", "deep", "c.txt"), "c")
	if err := os.Symlink(filepath.Join(root, "sub"), filepath.Join(root, "subLink")); err != nil {
		t.Fatal(err)
	}
	viaLink := filepath.Join(e.dir, "treeLink")
	if err := os.Symlink(root, viaLink); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		path  string
		depth uint32
		want  []string // paths relative to e.dir
		code  connect.Code
	}{
		{name: "depth 0 means 1", path: root, want: []string{"tree/a.txt", "tree/sub", "tree/subLink"}},
		{name: "depth 1", path: root, depth: 1, want: []string{"tree/a.txt", "tree/sub", "tree/subLink"}},
		{name: "depth 2 does not follow symlinks", path: root, depth: 2, want: []string{"tree/a.txt", "tree/sub", "tree/sub/b.txt", "tree/sub/deep", "tree/subLink"}},
		{name: "depth 3", path: root, depth: 3, want: []string{"tree/a.txt", "tree/sub", "tree/sub/b.txt", "tree/sub/deep", "tree/sub/deep/c.txt", "tree/subLink"}},
		{name: "paths based on the requested symlink", path: viaLink, depth: 1, want: []string{"treeLink/a.txt", "treeLink/sub", "treeLink/subLink"}},
		{name: "missing", path: filepath.Join(e.dir, "nope"), code: connect.CodeNotFound},
		{name: "not a directory", path: filepath.Join(root, "a.txt"), code: connect.CodeInvalidArgument},
	}
	e.codecs(t, func(t *testing.T, _ processconnect.ProcessClient, fc filesystemconnect.FilesystemClient) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := fc.ListDir(context.Background(), connect.NewRequest(&filesystem.ListDirRequest{Path: tc.path, Depth: tc.depth}))
				if tc.code != 0 {
					wantCode(t, err, tc.code)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, en := range resp.Msg.GetEntries() {
					rel, _ := filepath.Rel(e.dir, en.GetPath())
					got = append(got, rel)
					if en.GetType() == filesystem.FileType_FILE_TYPE_UNSPECIFIED || en.GetName() != filepath.Base(en.GetPath()) {
						t.Errorf("bad entry %v", en)
					}
					if en.GetName() == "subLink" && (en.GetType() != filesystem.FileType_FILE_TYPE_DIRECTORY || en.GetSymlinkTarget() == "") {
						t.Errorf("symlink entry %v", en)
					}
				}
				slices.Sort(got)
				if !slices.Equal(got, tc.want) {
					t.Fatalf("entries %q, want %q", got, tc.want)
				}
			})
		}
	})
}

func TestRemove(t *testing.T) {
	e := newTestEnv(t, Config{})
	e.codecs(t, func(t *testing.T, _ processconnect.ProcessClient, fc filesystemconnect.FilesystemClient) {
		dir := filepath.Join(e.dir, t.Name())
		mustWrite(t, filepath.Join(dir, "x", "y", "z.txt"), "z")
		mustWrite(t, filepath.Join(dir, "f.txt"), "f")
		for _, p := range []string{filepath.Join(dir, "f.txt"), filepath.Join(dir, "x"), filepath.Join(dir, "missing")} {
			if _, err := fc.Remove(context.Background(), connect.NewRequest(&filesystem.RemoveRequest{Path: p})); err != nil {
				t.Fatalf("Remove(%s): %v", p, err)
			}
			if _, err := os.Lstat(p); !os.IsNotExist(err) {
				t.Fatalf("%s still exists", p)
			}
		}
		_, err := fc.Remove(context.Background(), connect.NewRequest(&filesystem.RemoveRequest{Path: "/"}))
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}
