package template

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Files are written after debootstrap and apt-get and before the script runs, with the
// right modes, and StartCmd reaches the marker.
func TestEnsureWritesFilesBeforeScript(t *testing.T) {
	f := &fakeRunner{}
	b, out := newTestBuilder(t, f)
	r := Recipe{
		Name: "files", Suite: "bookworm", Packages: []string{"bash"}, AptPackages: []string{"nodejs", "python3-zmq"},
		Files: map[string]string{
			"/usr/local/bin/server":  "#!/bin/sh\necho hi\n",
			"/usr/local/lib/x/a.txt": "a",
			"/etc/motd":              "hello\n",
		},
		Script:   "true",
		StartCmd: "/usr/local/bin/server --flag",
	}
	var seenAtScript []string
	b.Run = func(ctx context.Context, name string, args ...string) error {
		if name == "chroot" {
			rootfs := args[0]
			for p := range r.Files {
				if _, err := os.Stat(filepath.Join(rootfs, p)); err == nil {
					seenAtScript = append(seenAtScript, p)
				}
			}
		}
		return f.run(ctx, name, args...)
	}
	rootfs, err := b.Ensure(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(seenAtScript) != len(r.Files) {
		t.Errorf("files present when the script ran: %q, want all %d", seenAtScript, len(r.Files))
	}
	for p, content := range r.Files {
		fi, err := os.Stat(filepath.Join(rootfs, p))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(rootfs, p)); string(got) != content {
			t.Errorf("%s = %q, want %q", p, got, content)
		}
		want := os.FileMode(0o644)
		if strings.HasPrefix(p, "/usr/local/bin/") {
			want = 0o755
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "usr/local/lib/x")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("parent directory: %v %v", fi, err)
	}
	calls := f.callList()
	if len(calls) != 3 || !strings.HasPrefix(calls[0], "debootstrap ") || !strings.HasPrefix(calls[1], "/bin/sh -c ") || !strings.HasPrefix(calls[2], "chroot ") {
		t.Fatalf("calls = %q, want debootstrap, apt-get, chroot", calls)
	}
	if !strings.Contains(calls[0], "--include=bash ") || strings.Contains(calls[0], "nodejs") {
		t.Errorf("debootstrap call %q: AptPackages must not go to debootstrap", calls[0])
	}
	if !strings.Contains(calls[1], "install --no-install-recommends") || !strings.HasSuffix(calls[1], b.DebCache+" nodejs python3-zmq") {
		t.Errorf("apt call = %q", calls[1])
	}
	m, err := b.Marker(r)
	if err != nil {
		t.Fatal(err)
	}
	if m.StartCmd != r.StartCmd || m.Recipe.StartCmd != r.StartCmd || len(m.Recipe.Files) != 3 {
		t.Errorf("marker StartCmd %q, recipe %q, %d files", m.StartCmd, m.Recipe.StartCmd, len(m.Recipe.Files))
	}
	for _, want := range []string{"installing 2 packages with apt-get", "writing 3 files"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}
}

// A symbolic link in the new root filesystem cannot redirect a file outside it.
func TestWriteFilesStaysInRoot(t *testing.T) {
	rootfs, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(rootfs, "etc")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/bin", filepath.Join(rootfs, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := writeFiles(rootfs, map[string]string{"/etc/passwd": "evil"}); err == nil {
		t.Error("wrote through an absolute symlink")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("wrote outside the root: %v", ents)
	}
	// A relative link inside the root (Debian's merged /usr) is fine.
	if err := writeFiles(rootfs, map[string]string{"/bin/tool": "x"}); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(rootfs, "usr/bin/tool")); err != nil || string(data) != "x" {
		t.Errorf("usr/bin/tool = %q, %v", data, err)
	}
}

// A failing apt-get step fails the build with advice and cleans up.
func TestEnsureAptFailure(t *testing.T) {
	f := &fakeRunner{}
	b, _ := newTestBuilder(t, f)
	run := f.run
	b.Run = func(ctx context.Context, name string, args ...string) error {
		if name == "/bin/sh" {
			return os.ErrPermission
		}
		return run(ctx, name, args...)
	}
	r := Recipe{Name: "apt", Suite: "bookworm", AptPackages: []string{"nope"}}
	_, err := b.Ensure(context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), "apt-get install failed") || !strings.Contains(err.Error(), "every AptPackages entry exists in bookworm") {
		t.Fatalf("Ensure = %v", err)
	}
	ents, _ := os.ReadDir(b.CacheDir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".lock-") {
			t.Errorf("left behind %s", e.Name())
		}
	}
}
