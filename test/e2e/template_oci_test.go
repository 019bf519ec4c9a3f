package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/warren-sh/warren/internal/testenv"
	"github.com/warren-sh/warren/internal/testregistry"
)

// TestTemplateBuildFromOCIImage makes a small image here (Debian's static busybox, a
// passwd with root and user, /tmp), pushes it to a real registry on loopback (Debian's
// docker-registry, plain HTTP), builds a template FROM it with the CLI (RUN, ENV, COPY),
// starts a sandbox of it and checks the build's results there; does the same with an
// image of busybox alone (no users: root); and checks that a FROM of an image the
// registry does not have fails the build with the registry's answer.
// It logs (does not assert) the build times, the template's size and create-to-first-
// output against the base template's.
func TestTemplateBuildFromOCIImage(t *testing.T) {
	registry := testregistry.Start(t, "", "")
	ref := registry + "/e2e/tiny:v1"
	pushBusyboxImage(t, ref, true)
	bare := registry + "/e2e/bare:v1"
	pushBusyboxImage(t, bare, false)
	// A fresh image cache: the first build pulls.
	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_IMAGE_CACHE=" + t.TempDir()}})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("hello.txt", "copied from the context\n")
	write("Dockerfile", "FROM "+ref+"\n"+
		"RUN mkdir -p /srv && echo made by RUN > /srv/made\n"+
		"ENV GREETING=hello-oci\n"+
		"COPY hello.txt /srv/hello.txt\n")
	build := func(name string) (string, int, time.Duration) {
		t.Helper()
		t0 := time.Now()
		out, errOut, code := s.CLI(ctx, nil, "template", "build", "--name", name, "-f", filepath.Join(dir, "Dockerfile"), dir)
		return out + errOut, code, time.Since(t0)
	}

	out, code, cold := build("e2e-oci")
	if code != 0 || !strings.Contains(out, "template e2e-oci is ready") {
		t.Fatalf("template build from %s: exit %d\n%s", ref, code, out)
	}
	out, code, cached := build("e2e-oci")
	if code != 0 || !strings.Contains(out, "3 steps, 3 from cache") {
		t.Errorf("rebuild of an unchanged Dockerfile: exit %d, want every step from cache\n%s", code, out)
	}
	var list struct {
		Templates []struct {
			ID        string `json:"id"`
			SizeBytes int64  `json:"size_bytes"`
		} `json:"templates"`
	}
	s.API("GET", "/v1/templates", nil, &list)
	var size int64 = -1
	for _, tpl := range list.Templates {
		if tpl.ID == "e2e-oci" {
			size = tpl.SizeBytes
		}
	}
	if size <= 0 {
		t.Errorf("template e2e-oci in the list with a size: %+v", list)
	}

	sb := s.Create(map[string]any{"template": "e2e-oci"})
	r := s.Exec(sb.ID, "cat /srv/made /srv/hello.txt; echo $GREETING; id -un; ls /bin/busybox")
	want := "made by RUN\ncopied from the context\nhello-oci\nuser\n/bin/busybox\n"
	if r.ExitCode != 0 || r.Stdout != want {
		t.Errorf("in a sandbox of the template: exit %d stdout %q stderr %q error %q; want %q", r.ExitCode, r.Stdout, r.Stderr, r.Error, want)
	}
	s.Kill(sb.ID)

	// busybox alone (no /etc/passwd, no user, no /tmp): the build's steps and the
	// sandbox's commands run as root, whom the agent knows without a passwd file.
	write("Dockerfile", "FROM "+bare+"\nRUN echo bare > /made\n")
	if out, code, _ := build("e2e-oci-bare"); code != 0 {
		t.Errorf("template build from busybox alone: exit %d\n%s", code, out)
	} else {
		sb := s.Create(map[string]any{"template": "e2e-oci-bare"})
		if r := s.Exec(sb.ID, "cat /made; id -u; pwd"); r.ExitCode != 0 || r.Stdout != "bare\n0\n/root\n" {
			t.Errorf("in a sandbox of busybox alone: exit %d stdout %q stderr %q error %q", r.ExitCode, r.Stdout, r.Stderr, r.Error)
		}
		s.Kill(sb.ID)
	}

	// An image the registry does not have: the build fails with its answer.
	write("Dockerfile", "FROM "+registry+"/e2e/tiny:missing\nRUN true\n")
	out, code, _ = build("e2e-oci-missing")
	if code == 0 || !strings.Contains(out, "MANIFEST_UNKNOWN") {
		t.Errorf("build FROM a tag the registry does not have: exit %d, want non-zero with MANIFEST_UNKNOWN\n%s", code, out)
	}

	// Figures, for people: create-to-first-output of the custom template and of base,
	// interleaved so that both see the same load.
	firstOutput := func(tpl string) time.Duration {
		t.Helper()
		t0 := time.Now()
		sb := s.Create(map[string]any{"template": tpl})
		r := s.Exec(sb.ID, "echo ready")
		d := time.Since(t0)
		if r.Stdout != "ready\n" {
			t.Errorf("first output of a %s sandbox: %+v", tpl, r)
		}
		s.Kill(sb.ID)
		return d
	}
	var custom, base []time.Duration
	for range 5 {
		custom = append(custom, firstOutput("e2e-oci"))
		base = append(base, firstOutput("base"))
	}
	pc, pb := p50(custom), p50(base)
	t.Logf("build from %s: cold %s, fully cached %s; template size %d bytes (%.1f MiB)", ref, cold.Round(time.Millisecond), cached.Round(time.Millisecond), size, float64(size)/(1<<20))
	t.Logf("create-to-first-output p50 of 5: e2e-oci %s, base %s, ratio %.2f (custom %v, base %v)", pc.Round(time.Millisecond), pb.Round(time.Millisecond), float64(pc)/float64(pb), custom, base)
}

func p50(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// pushBusyboxImage pushes to ref a one-layer image of Debian's static busybox (with a
// link per applet) and, withUsers, /etc/passwd and /etc/group with root and user
// (1000), their homes and /tmp: what a sandbox needs besides the agent, which the node
// mounts. Without them the image is busybox alone.
func pushBusyboxImage(t *testing.T, ref string, withUsers bool) {
	t.Helper()
	bin := testenv.NeedsTool(t, "busybox")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked: install Debian's busybox-static", bin)
		}
	}
	f.Close()
	body, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(bin, "--list-full").Output()
	if err != nil {
		t.Fatalf("busybox --list-full: %v", err)
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := func(h *tar.Header) {
		t.Helper()
		h.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	file := func(name string, mode int64, data []byte) {
		hdr(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg})
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	dirs := map[string]bool{}
	mkdir := func(name string, mode int64, uid int) {
		dirs[name] = true
		hdr(&tar.Header{Name: name + "/", Mode: mode, Uid: uid, Gid: uid, Typeflag: tar.TypeDir})
	}
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "home", "proc", "sys", "dev", "run", "var"} {
		mkdir(d, 0o755, 0)
	}
	file("bin/busybox", 0o755, body)
	if withUsers {
		mkdir("tmp", 0o1777, 0)
		mkdir("home/user", 0o755, 1000)
		file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"))
		file("etc/group", 0o644, []byte("root:x:0:\nuser:x:1000:\n"))
	}
	for _, applet := range strings.Fields(string(list)) {
		applet = strings.TrimPrefix(applet, "/")
		if applet == "bin/busybox" || !dirs[path.Dir(applet)] {
			continue
		}
		hdr(&tar.Header{Name: applet, Typeflag: tar.TypeSymlink, Linkname: "/bin/busybox", Mode: 0o777})
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Config = v1.Config{Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}
