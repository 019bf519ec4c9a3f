package layers

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/node"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/testenv"
)

// noSandboxes is a node that must not be used: COPY, ENV and USER steps need none.
type noSandboxes struct{ t *testing.T }

func (n noSandboxes) StartLayered(context.Context, node.LayeredSpec) (runtime.Handle, string, error) {
	n.t.Error("a sandbox was started")
	return runtime.Handle{}, "", errors.New("no sandboxes here")
}
func (noSandboxes) Halt(context.Context, string, int, *runtime.Handle) error { return nil }
func (noSandboxes) SaveLayer(context.Context, string, string) error          { return nil }
func (noSandboxes) Stop(context.Context, string, int, *runtime.Handle) error { return nil }
func (noSandboxes) Leftovers(context.Context, string) ([]string, error)      { return nil, nil }
func (noSandboxes) Slots() int                                               { return 1 }

// copyEnv is a builder over a tiny parent with one user, for COPY steps alone.
func copyEnv(t *testing.T) (*Builder, Parent, string) {
	testenv.NeedsRoot(t, "mount overlays")
	parent := t.TempDir()
	if err := os.MkdirAll(filepath.Join(parent, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1234:4321::/home/app:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "etc/group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(parent, "up")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b, err := New(Config{Dir: dir, Node: noSandboxes{t}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParentOf(parent)
	if err != nil {
		t.Fatal(err)
	}
	return b, p, dir
}

// TestCopy copies a file and a directory (with an owner, a glob, into a directory)
// from tar archives without any sandbox, and checks where the files land.
func TestCopy(t *testing.T) {
	b, p, _ := copyEnv(t)
	files := memFiles{}
	h := files.add(t, dir("src"), file("src/x.sh", "#!/bin/sh"), dir("src/d"), file("src/d/y", "why"), file("top.txt", "top"),
		file("a.note", "A"), file("b.note", "B"), &tar.Header{Typeflag: tar.TypeLink, Name: "src/hard", Linkname: "src/x.sh"})
	steps := []domain.BuildStep{
		{Kind: domain.StepWorkdir, Args: []string{"/w"}}, // metadata only here: copied into below
		{Kind: domain.StepCopy, Args: []string{"top.txt", "renamed.txt"}, FilesHash: h},
		{Kind: domain.StepCopy, Args: []string{"src", "/opt/src", "app:staff"}, FilesHash: h},
		{Kind: domain.StepCopy, Args: []string{"*.note", "/notes/"}, FilesHash: h},
		{Kind: domain.StepCopy, Args: []string{"/top.txt", "/opt/src"}, FilesHash: h},
		{Kind: domain.StepCopy, Args: []string{"src", "/mode/src", "", "0750"}, FilesHash: h},
		{Kind: domain.StepCopy, Args: []string{"top.txt", "/mode/owned", "app", "600"}, FilesHash: h},
	}
	// WORKDIR needs a sandbox; relative COPY destinations resolve against it all the
	// same, so the step is applied as metadata here.
	bd := &build{b: b, parent: p, files: files, work: t.TempDir()}
	for i, s := range steps {
		if s.Kind == domain.StepWorkdir {
			bd.meta = bd.meta.after(s)
			continue
		}
		res, err := bd.step(context.Background(), i, s, parentKey(p), false)
		if err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
		_ = res
	}
	root, _, err := bd.finish(context.Background(), "f"+strings.Repeat("0", 63))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"w/renamed.txt": "top", "opt/src/x.sh": "#!/bin/sh", "opt/src/d/y": "why",
		"opt/src/hard": "#!/bin/sh", "notes/a.note": "A", "notes/b.note": "B", "opt/src/top.txt": "top"} {
		if got := readFile(t, root, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if uid, gid := ownerOf(t, filepath.Join(root, "opt/src/d/y")); uid != 1234 || gid != 50 {
		t.Errorf("owner %d:%d, want app:staff 1234:50", uid, gid)
	}
	if uid, _ := ownerOf(t, filepath.Join(root, "notes/a.note")); uid != 0 {
		t.Errorf("owner %d, want root", uid)
	}
	// A mode applies to every copied file and directory (not to links), with or
	// without an owner; without one, files keep the archive's mode.
	for name, want := range map[string]os.FileMode{"mode/src": 0o750, "mode/src/x.sh": 0o750, "mode/src/d": 0o750,
		"mode/src/d/y": 0o750, "mode/owned": 0o600, "opt/src/x.sh": 0o644} {
		fi, err := os.Lstat(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", name, got, want)
		}
	}
	if uid, _ := ownerOf(t, filepath.Join(root, "mode/owned")); uid != 1234 {
		t.Errorf("mode/owned: owner %d, want app 1234", uid)
	}
	if uid, _ := ownerOf(t, filepath.Join(root, "mode/src/x.sh")); uid != 0 {
		t.Errorf("mode/src/x.sh: owner %d, want root", uid)
	}

	// A build on the finished root (a template built from a built template), named by
	// its last key; a COPY into /.warren (warren-agent's) leaves nothing there.
	h2 := files.add(t, file("more", "more"), dir(".warren"), file(".warren/agent.json", "{}"))
	res, err := b.BuildFrom(context.Background(), domain.BuildSpec{Steps: []domain.BuildStep{
		{Kind: domain.StepCopy, Args: []string{".", "/"}, FilesHash: h2}}}, Parent{RootFS: root, ID: "f" + strings.Repeat("0", 63)}, files, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if readFile(t, res.RootFS, "more") != "more" || readFile(t, res.RootFS, "opt/src/d/y") != "why" {
		t.Error("the chained build lacks its own or its parent's files")
	}
	if _, err := os.Stat(filepath.Join(res.RootFS, ".warren")); err == nil {
		t.Error("a COPY put files in /.warren")
	}
}

// TestCopyRefused: archives that climb out, special files, whiteout names, links out
// of the selection and missing sources are refused with a KindInvalid error naming the
// step, and nothing is written outside the build's root.
func TestCopyRefused(t *testing.T) {
	b, p, dir := copyEnv(t)
	files := memFiles{}
	for _, c := range []struct {
		name    string
		entries []*tar.Header
		src     string
		want    string
	}{
		{"dotdot", []*tar.Header{file("ok", "1"), file("../escape", "x")}, ".", "leaves the archive's root"},
		{"dotdot elsewhere", []*tar.Header{file("ok", "1"), file("x/../../escape", "x")}, "ok", "leaves the archive's root"},
		{"symlink out", []*tar.Header{{Typeflag: tar.TypeSymlink, Name: "d/l", Linkname: "../../etc"}}, "d", "points above"},
		{"device", []*tar.Header{{Typeflag: tar.TypeChar, Name: "dev", Devmajor: 1, Devminor: 3}}, ".", "device node"},
		{"fifo", []*tar.Header{{Typeflag: tar.TypeFifo, Name: "p"}}, ".", "device node"},
		{"whiteout", []*tar.Header{file("d/.wh.passwd", "")}, "d", "reserved"},
		{"hard link out", []*tar.Header{file("secret", "s"), {Typeflag: tar.TypeLink, Name: "d/l", Linkname: "secret"}}, "d", "not among"},
		{"missing", []*tar.Header{file("a", "1")}, "b", "no such file"},
	} {
		h := files.add(t, c.entries...)
		spec := domain.BuildSpec{Steps: []domain.BuildStep{{Kind: domain.StepCopy, Args: []string{c.src, "/up/tmp/x"}, FilesHash: h}}}
		_, err := b.BuildFrom(context.Background(), spec, p, files, nil, nil)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "step 1") {
			t.Errorf("%s: %v, want a KindInvalid error with %q", c.name, err, c.want)
		}
	}
	h0 := files.add(t, file("a", "1"))
	for _, mode := range []string{"999", "0x755", "u+x", "077777", "-1"} {
		spec := domain.BuildSpec{Steps: []domain.BuildStep{{Kind: domain.StepCopy, Args: []string{"a", "/a", "", mode}, FilesHash: h0}}}
		_, err := b.BuildFrom(context.Background(), spec, p, files, nil, nil)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid || !strings.Contains(err.Error(), "octal") {
			t.Errorf("mode %q: %v, want a KindInvalid error naming an octal mode", mode, err)
		}
	}
	if _, err := os.Stat("/tmp/x"); err == nil {
		t.Error("a COPY wrote to the host's /tmp/x")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "r")); len(ents) != 0 {
		t.Errorf("roots left: %v", ents)
	}
	// A destination through the parent's absolute symlink to "/" stays in the root.
	h := files.add(t, file("f", "inside"))
	res, err := b.BuildFrom(context.Background(), domain.BuildSpec{Steps: []domain.BuildStep{{Kind: domain.StepCopy, Args: []string{"f", "/up/tmp/f"}, FilesHash: h}}}, p, files, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if readFile(t, res.RootFS, "tmp/f") != "inside" {
		t.Error("the COPY through /up did not land in the root's /tmp")
	}
	if _, err := os.Stat("/tmp/f"); err == nil {
		t.Error("a COPY wrote to the host's /tmp/f")
	}
}
