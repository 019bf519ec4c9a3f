package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/testenv"
)

// entry is one tar entry of a crafted layer.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func file(name, body string) entry {
	return entry{name: name, body: body, typ: tar.TypeReg, mode: 0o644}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, link: target, typ: tar.TypeSymlink, mode: 0o777}
}

func layerTar(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tree lists a directory: "path" for files (with ":body"), "path/" for directories,
// "path -> target" for symlinks.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		case d.IsDir():
			out = append(out, rel+"/")
		default:
			b, _ := os.ReadFile(p)
			out = append(out, rel+":"+string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestUnpack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		layers  [][]entry
		want    []string // the tree, when the layers apply
		inside  string   // a path the root's tree must have (OUTSIDE: the test's directory)
		unsafe  bool     // ErrUnsafe expected
		outside bool     // check nothing appeared beside the root
		limits  Limits
		skipped int
	}{{
		name:   "files, dirs and links",
		layers: [][]entry{{dir("etc/"), file("etc/hostname", "box"), file("./usr/bin/tool", "x"), symlink("bin", "usr/bin"), {name: "etc/hn", link: "etc/hostname", typ: tar.TypeLink}}},
		want:   []string{"bin -> usr/bin", "etc/", "etc/hn:box", "etc/hostname:box", "usr/", "usr/bin/", "usr/bin/tool:x"},
	}, {
		name:   "whiteout removes a lower file",
		layers: [][]entry{{file("a/b", "1"), file("a/c", "2")}, {file("a/.wh.b", "")}},
		want:   []string{"a/", "a/c:2"},
	}, {
		name:   "whiteout of a lower directory",
		layers: [][]entry{{file("a/b/c", "1")}, {file("a/.wh.b", "")}},
		want:   []string{"a/"},
	}, {
		name:   "opaque directory hides the lower layers only",
		layers: [][]entry{{file("d/x", "1"), file("d/sub/y", "2"), file("e", "3")}, {dir("d/"), file("d/new", "4"), file("d/.wh..wh..opq", ""), file("d/sub2/z", "5")}},
		want:   []string{"d/", "d/new:4", "d/sub2/", "d/sub2/z:5", "e:3"},
	}, {
		name:   "a file replaces a symlink instead of writing through it",
		layers: [][]entry{{symlink("f", "/etc/passwd")}, {file("f", "mine")}},
		want:   []string{"f:mine"},
	}, {
		name:    "device nodes and fifos are skipped",
		layers:  [][]entry{{{name: "dev/null", typ: tar.TypeChar, mode: 0o666}, {name: "dev/sda", typ: tar.TypeBlock, mode: 0o660}, {name: "p", typ: tar.TypeFifo, mode: 0o600}, file("ok", "1")}},
		want:    []string{"dev/", "ok:1"},
		skipped: 3,
	}, {
		name:    "dot-dot path",
		layers:  [][]entry{{file("../evil", "x")}},
		unsafe:  true,
		outside: true,
	}, {
		name:    "dot-dot inside a path",
		layers:  [][]entry{{file("a/../../evil", "x")}},
		unsafe:  true,
		outside: true,
	}, {
		// An absolute symlink means the root's own directory, as in the container: the
		// write through it lands inside the root, never at the host's path.
		name:    "absolute symlink, then a write through it",
		layers:  [][]entry{{symlink("link", "OUTSIDE")}, {file("link/evil", "x")}},
		inside:  "OUTSIDE/evil:x",
		outside: true,
	}, {
		name:   "Debian's absolute /var/run -> /run, then a directory beneath it",
		layers: [][]entry{{dir("run/"), dir("var/"), symlink("var/run", "/run")}, {dir("var/run/sshd/"), file("var/run/sshd/pid", "1")}},
		want:   []string{"run/", "run/sshd/", "run/sshd/pid:1", "var/", "var/run -> /run"},
	}, {
		name:   "relative symlink inside the root, and a chain of them",
		layers: [][]entry{{dir("usr/lib/"), symlink("lib", "usr/lib"), symlink("usr/l2", "../lib")}, {file("usr/l2/x.so", "elf"), {name: "usr/l2/y.so", link: "lib/x.so", typ: tar.TypeLink}}},
		want:   []string{"lib -> usr/lib", "usr/", "usr/l2 -> ../lib", "usr/lib/", "usr/lib/x.so:elf", "usr/lib/y.so:elf"},
	}, {
		name:   "symlink loop",
		layers: [][]entry{{symlink("a", "b"), symlink("b", "a"), file("a/x", "1")}},
		unsafe: true,
	}, {
		name:    "relative symlink out of the root, then a write through it",
		layers:  [][]entry{{symlink("up", "../"), file("up/evil", "x")}},
		unsafe:  true,
		outside: true,
	}, {
		name:    "whiteout through an escaping symlink",
		layers:  [][]entry{{symlink("up", "../"), file("up/.wh.victim", "")}},
		unsafe:  true,
		outside: true,
	}, {
		name:    "hard link to a file outside",
		layers:  [][]entry{{{name: "hl", link: "../victim", typ: tar.TypeLink}}},
		unsafe:  true,
		outside: true,
	}, {
		name:   "over the size limit",
		layers: [][]entry{{file("big", strings.Repeat("x", 64<<10))}},
		limits: Limits{MaxImageBytes: 16 << 10},
		unsafe: true,
	}, {
		name:   "over the entry limit",
		layers: [][]entry{{file("a", ""), file("b", ""), file("c", "")}},
		limits: Limits{MaxEntries: 2},
		unsafe: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			victim := filepath.Join(base, "victim")
			if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			u, err := newUnpacker(root, tc.limits)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			var applyErr error
			for _, l := range tc.layers {
				for i := range l {
					l[i].link = strings.ReplaceAll(l[i].link, "OUTSIDE", base)
				}
				if applyErr = u.Apply(context.Background(), bytes.NewReader(layerTar(t, l...))); applyErr != nil {
					break
				}
			}
			if tc.unsafe {
				if !errors.Is(applyErr, ErrUnsafe) {
					t.Fatalf("err = %v, want ErrUnsafe", applyErr)
				}
			} else if applyErr != nil {
				t.Fatal(applyErr)
			}
			if tc.outside {
				got := tree(t, base)
				var beside []string
				for _, p := range got {
					if !strings.HasPrefix(p, "root") {
						beside = append(beside, p)
					}
				}
				if strings.Join(beside, "|") != "victim:keep" {
					t.Errorf("outside the root: %q, want only the untouched victim", beside)
				}
			}
			if tc.inside != "" {
				want := strings.TrimPrefix(strings.ReplaceAll(tc.inside, "OUTSIDE", base), "/")
				if got := tree(t, root); !slices.Contains(got, want) {
					t.Errorf("tree %q lacks %q", got, want)
				}
			}
			if tc.want != nil {
				if got := tree(t, root); strings.Join(got, "|") != strings.Join(tc.want, "|") {
					t.Errorf("tree\n%q\nwant\n%q", got, tc.want)
				}
			}
			if u.stats.Skipped != tc.skipped {
				t.Errorf("skipped %d, want %d", u.stats.Skipped, tc.skipped)
			}
		})
	}
}

func TestUnpackModes(t *testing.T) {
	root := t.TempDir()
	u, err := newUnpacker(root, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	layer := layerTar(t, entry{name: "su", typ: tar.TypeReg, mode: 0o4755, body: "#!"}, entry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777})
	if err := u.Apply(context.Background(), bytes.NewReader(layer)); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{"su": 0o755 | fs.ModeSetuid, "tmp": 0o777 | fs.ModeSticky | fs.ModeDir} {
		fi, err := os.Lstat(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s mode %v, want %v", name, fi.Mode(), want)
		}
	}
}

// File capabilities (Debian's ping has cap_net_raw instead of setuid) survive; other
// extended attributes of the layer are dropped.
func TestUnpackFileCapabilities(t *testing.T) {
	testenv.NeedsRoot(t, "sets security.capability, which needs CAP_SETFCAP")
	root := t.TempDir()
	u, err := newUnpacker(root, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	// struct vfs_cap_data, revision 2: permitted = cap_net_raw (13), effective flag set.
	caps := string([]byte{0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "bin/ping", Typeflag: tar.TypeReg, Mode: 0o755, Uid: 0, Size: 3, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": caps, "SCHILY.xattr.user.note": "dropped"}},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("elf"))
	}
	tw.Close()
	if err := u.Apply(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "bin/ping")
	got := make([]byte, 64)
	n, err := unix.Getxattr(p, "security.capability", got)
	if err != nil || string(got[:n]) != caps {
		t.Errorf("security.capability = % x, %v; want % x", got[:max(n, 0)], err, caps)
	}
	if _, err := unix.Getxattr(p, "user.note", got); err == nil {
		t.Error("user.note was kept")
	}
}
