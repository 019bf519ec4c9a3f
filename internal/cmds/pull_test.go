package cmds

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestTemplatePull(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(3<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials of the machine's user
	cache := t.TempDir()
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), append([]string{"template", "pull", "--image-cache", cache}, args...), nil, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run(host + "/team/app:v1")
	d, _ := img.Digest()
	if code != 0 || !strings.Contains(out, "pulled "+host+"/team/app:v1") || !strings.Contains(out, d.String()) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	// Progress: each 3 MB layer is reported while it downloads, then unpacked.
	if n := strings.Count(out, ": unpacked"); n != 2 || !strings.Contains(out, "layer 1/2") || !strings.Contains(out, "of 3.1 MB") {
		t.Errorf("progress lines missing:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(cache, "roots", "sha256", d.Hex, "rootfs")); err != nil {
		t.Errorf("root not in the cache: %v", err)
	}
	if code, out, _ := run(host + "/team/app:v1"); code != 0 || !strings.HasPrefix(out, "cached ") {
		t.Errorf("second pull: exit %d\n%s", code, out)
	}
	if code, _, errOut := run("Bad Ref"); code != 2 || !strings.Contains(errOut, "is not valid") {
		t.Errorf("bad reference: exit %d, %s", code, errOut)
	}
	if code, _, errOut := run(host + "/team/missing:1"); code != 1 || !strings.Contains(errOut, "the registry answered") {
		t.Errorf("missing image: exit %d, %s", code, errOut)
	}
	if code, _, errOut := run(); code != 2 || !strings.Contains(errOut, "usage: warren template pull") {
		t.Errorf("no image: exit %d, %s", code, errOut)
	}
}
