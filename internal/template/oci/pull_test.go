package oci

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/warren-sh/warren/internal/domain"
)

// testImage is two layers made here (the second deletes a file of the first) with a
// config, as a build would make it.
func testImage(t *testing.T) v1.Image {
	t.Helper()
	var layers []v1.Layer
	for _, entries := range [][]entry{
		{dir("etc/"), file("etc/os-release", "ID=warren-test\n"), file("usr/bin/hello", "#!/bin/sh\necho hi\n"), file("tmp/junk", "x")},
		{file("tmp/.wh.junk", ""), file("app/main.py", "print('hi')\n"), symlink("usr/bin/py", "python3")},
	} {
		data := layerTar(t, entries...)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/usr/bin", "APP=1"}
	cf.Config.Cmd = []string{"python3", "/app/main.py"}
	cf.Config.WorkingDir = "/app"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// wantTree is testImage unpacked.
var wantTree = []string{"app/", "app/main.py:print('hi')\n", "etc/", "etc/os-release:ID=warren-test\n", "tmp/", "usr/", "usr/bin/", "usr/bin/hello:#!/bin/sh\necho hi\n", "usr/bin/py -> python3"}

// memRegistry is go-containerregistry's in-memory registry on a loopback port; it
// counts the blob downloads.
func memRegistry(t *testing.T) (host string, blobGets *atomic.Int32) {
	t.Helper()
	blobGets = new(atomic.Int32)
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			blobGets.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), blobGets
}

func push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func TestPull(t *testing.T) {
	host, blobGets := memRegistry(t)
	img := testImage(t)
	push(t, host+"/team/app:v1", img)
	wantDigest, _ := img.Digest()

	var reports []Progress
	p := &Puller{CacheDir: t.TempDir(), Keychain: authn.NewMultiKeychain(), Progress: func(pr Progress) { reports = append(reports, pr) }}
	got, err := p.Pull(context.Background(), host+"/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != wantDigest.String() || got.Cached {
		t.Errorf("digest %s cached %v, want %s not cached", got.Digest, got.Cached, wantDigest)
	}
	if tr := tree(t, got.Root); strings.Join(tr, "|") != strings.Join(wantTree, "|") {
		t.Errorf("tree\n%q\nwant\n%q", tr, wantTree)
	}
	if strings.Join(got.Config.Cmd, " ") != "python3 /app/main.py" || got.Config.WorkingDir != "/app" || len(got.Config.Env) != 2 {
		t.Errorf("config %+v", got.Config)
	}
	// Progress: each layer downloads to its full size, then unpacks.
	layers, _ := img.Layers()
	done := map[string]int64{}
	unpacked := 0
	for _, r := range reports {
		if r.Layers != 2 || r.Image != host+"/team/app:v1" {
			t.Errorf("report %+v", r)
		}
		switch r.Phase {
		case "download":
			if r.Done > r.Total {
				t.Errorf("report %+v: done past total", r)
			}
			done[r.Digest] = r.Done
		case "unpack":
			unpacked++
		}
	}
	for _, l := range layers {
		d, _ := l.Digest()
		size, _ := l.Size()
		if done[d.String()] != size {
			t.Errorf("layer %s: last download report %d, want its size %d", d, done[d.String()], size)
		}
	}
	if unpacked != 2 {
		t.Errorf("%d unpack reports, want 2", unpacked)
	}
	if n := blobGets.Load(); n != 3 { // two layers and the config
		t.Errorf("%d blob downloads, want 3", n)
	}

	// Again: the root comes from the cache; only the manifest is fetched.
	again, err := p.Pull(context.Background(), host+"/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Root != got.Root {
		t.Errorf("second pull cached %v root %s, want the cached %s", again.Cached, again.Root, got.Root)
	}
	if n := blobGets.Load(); n != 3 {
		t.Errorf("%d blob downloads after the second pull, want still 3", n)
	}

	// A new image sharing the first layer downloads only what it lacks.
	img2, err := mutate.AppendLayers(img, mustLayer(t, file("extra", "1")))
	if err != nil {
		t.Fatal(err)
	}
	push(t, host+"/team/app:v2", img2)
	reports = nil
	if _, err := p.Pull(context.Background(), host+"/team/app:v2"); err != nil {
		t.Fatal(err)
	}
	cached := 0
	for _, r := range reports {
		if r.Phase == "cached" {
			cached++
		}
	}
	if cached != 2 {
		t.Errorf("%d layers from the blob cache, want 2", cached)
	}
	entries, _ := os.ReadDir(filepath.Join(p.CacheDir, "roots", "sha256"))
	if len(entries) != 2 {
		t.Errorf("%d cached roots, want 2 (no temporary directories left)", len(entries))
	}
}

func mustLayer(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	data := layerTar(t, entries...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPullErrors(t *testing.T) {
	host, _ := memRegistry(t)
	evil, err := mutate.AppendLayers(empty.Image, mustLayer(t, symlink("etc", "../../../etc")), mustLayer(t, file("etc/cron.d/evil", "x")))
	if err != nil {
		t.Fatal(err)
	}
	push(t, host+"/evil:1", evil)
	big, _ := random.Image(64<<10, 1)
	push(t, host+"/big:1", big)
	cf, _ := big.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Env = []string{"HUGE=" + strings.Repeat("x", 5<<20)}
	hugeConfig, err := mutate.ConfigFile(big, cf)
	if err != nil {
		t.Fatal(err)
	}
	push(t, host+"/hugeconfig:1", hugeConfig)
	for _, tc := range []struct {
		ref    string
		limits Limits
		kind   domain.Kind
		msg    string
	}{
		{"Not A Reference!", Limits{}, domain.KindInvalid, "not valid"},
		{host + "/missing:1", Limits{}, domain.KindNotFound, "the registry answered: GET http://" + host + "/v2/missing/manifests/1: NAME_UNKNOWN"},
		{host + "/evil:1", Limits{}, domain.KindInvalid, "refused"},
		{host + "/big:1", Limits{MaxImageBytes: 1 << 10}, domain.KindInvalid, "more than the limit"},
		{host + "/hugeconfig:1", Limits{}, domain.KindInvalid, "config of"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			p := &Puller{CacheDir: t.TempDir(), Keychain: authn.NewMultiKeychain(), Limits: tc.limits}
			_, err := p.Pull(context.Background(), tc.ref)
			var de *domain.Error
			// The message is what the client sees: it says what the registry answered.
			if !errors.As(err, &de) || de.Kind != tc.kind || !strings.Contains(domain.PublicMessage(err), tc.msg) {
				t.Fatalf("err = %v (public message %q), want kind %v containing %q", err, domain.PublicMessage(err), tc.kind, tc.msg)
			}
			if roots, _ := os.ReadDir(filepath.Join(p.CacheDir, "roots", "sha256")); len(roots) != 0 {
				t.Errorf("a failed pull left %d roots in the cache", len(roots))
			}
		})
	}
}

// A Docker Hub reference goes to the mirror (the in-memory registry here), never to
// Docker Hub, when the mirror has it.
func TestPullMirror(t *testing.T) {
	host, _ := memRegistry(t)
	push(t, host+"/library/debian:12", testImage(t))
	for _, mirror := range []string{host, "http://" + host + "/"} {
		p := &Puller{CacheDir: t.TempDir(), Keychain: authn.NewMultiKeychain(), Mirrors: []string{mirror}}
		got, err := p.Pull(context.Background(), "debian:12")
		if err != nil {
			t.Fatalf("mirror %s: %v", mirror, err)
		}
		if tr := tree(t, got.Root); strings.Join(tr, "|") != strings.Join(wantTree, "|") {
			t.Errorf("mirror %s: tree %q", mirror, tr)
		}
	}
	if _, err := onMirror(name.MustParseReference("debian:12"), "bad host!"); err == nil {
		t.Error("a bad mirror host was accepted")
	}
}

func TestParseMirrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{"", "", false},
		{"mirror.example:5000", "mirror.example:5000", false},
		{" https://a.example , http://127.0.0.1:5000/ ", "https://a.example|http://127.0.0.1:5000/", false},
		{"a.example/path", "", true},
		{"user@a.example", "", true},
		{"not a host", "", true},
	} {
		got, err := ParseMirrors(tc.in)
		if (err != nil) != tc.bad || strings.Join(got, "|") != tc.want {
			t.Errorf("ParseMirrors(%q) = %q, %v; want %q, bad %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// Pulls of one image at once download it once and share the root; pulls of different
// images do not wait for each other's downloads.
func TestPullConcurrent(t *testing.T) {
	host, blobGets := memRegistry(t)
	push(t, host+"/team/app:v1", testImage(t))
	other, _ := random.Image(1<<10, 1)
	push(t, host+"/team/other:v1", other)
	p := &Puller{CacheDir: t.TempDir(), Keychain: authn.NewMultiKeychain()}
	var wg sync.WaitGroup
	roots := make([]string, 6)
	errs := make([]error, 6)
	for i := range roots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := host + "/team/app:v1"
			if i%3 == 2 {
				ref = host + "/team/other:v1"
			}
			img, err := p.Pull(context.Background(), ref)
			if err == nil {
				roots[i] = img.Root
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
	}
	if roots[0] != roots[1] || roots[0] != roots[3] || roots[2] != roots[5] || roots[0] == roots[2] {
		t.Errorf("roots %q: want one per image", roots)
	}
	if tr := tree(t, roots[0]); strings.Join(tr, "|") != strings.Join(wantTree, "|") {
		t.Errorf("tree %q", tr)
	}
	if n := blobGets.Load(); n != 5 { // app: two layers and config; other: one layer and config
		t.Errorf("%d blob downloads, want 5 (each image once)", n)
	}
}

// A registry's error answer reaches the client's message, bounded however long it is.
func TestPullErrorAnswerBounded(t *testing.T) {
	body := "the registry is on fire " + strings.Repeat("x", 32<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		http.Error(w, body, http.StatusBadRequest) // not retried, unlike 5xx
	}))
	defer srv.Close()
	p := &Puller{CacheDir: t.TempDir(), Keychain: authn.NewMultiKeychain()}
	_, err := p.Pull(context.Background(), strings.TrimPrefix(srv.URL, "http://")+"/app:1")
	msg := domain.PublicMessage(err)
	if domain.KindOf(err) != domain.KindUnavailable || !strings.Contains(msg, "the registry answered") || !strings.Contains(msg, "the registry is on fire") ||
		!strings.HasSuffix(msg, "... (cut)") || len(msg) > maxAnswer+200 {
		t.Errorf("err = %v (%d bytes of public message), want unavailable with the answer's start, cut", domain.KindOf(err), len(msg))
	}
}
