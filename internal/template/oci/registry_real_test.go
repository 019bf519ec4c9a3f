package oci

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/testregistry"
)

// TestPullFromDockerRegistry pushes an image made here to a real registry (Debian's
// docker-registry, with password auth) and pulls it through the package, with the
// credentials taken from a Docker config file as `docker login` writes it.
func TestPullFromDockerRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a docker-registry process; skipped under -short")
	}
	host := testregistry.Start(t, "builder", "s3cret")
	ref := host + "/warren/app:v1"
	img := testImage(t)
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: "builder", Password: "s3cret"})); err != nil {
		t.Fatal(err)
	}

	// Without credentials the registry refuses, and the error says so.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	p := &Puller{CacheDir: t.TempDir()}
	_, err = p.Pull(context.Background(), ref)
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindUnauthorized || !strings.Contains(domain.PublicMessage(err), "UNAUTHORIZED") {
		t.Fatalf("pull without credentials: %v, want unauthorized with the registry's answer", err)
	}

	// With them in $DOCKER_CONFIG/config.json (authn.DefaultKeychain).
	cfgDir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("builder:s3cret"))
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfgDir)
	var downloads int
	p.Progress = func(pr Progress) {
		if pr.Phase == "download" {
			downloads++
		}
	}
	got, err := p.Pull(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if tr := tree(t, got.Root); strings.Join(tr, "|") != strings.Join(wantTree, "|") {
		t.Errorf("tree\n%q\nwant\n%q", tr, wantTree)
	}
	want, _ := img.Digest()
	if got.Digest != want.String() {
		t.Errorf("digest %s, want %s", got.Digest, want)
	}
	if downloads < 2 {
		t.Errorf("%d download reports, want at least one per layer", downloads)
	}
	// By digest, from the cache.
	byDigest, err := p.Pull(context.Background(), host+"/warren/app@"+want.String())
	if err != nil || !byDigest.Cached || byDigest.Root != got.Root {
		t.Errorf("pull by digest: %+v, %v; want the cached root", byDigest, err)
	}
	// A tag the registry does not have: not found, with its answer.
	if _, err := p.Pull(context.Background(), host+"/warren/app:nope"); !errors.As(err, &de) || de.Kind != domain.KindNotFound || !strings.Contains(domain.PublicMessage(err), "MANIFEST_UNKNOWN") {
		t.Errorf("missing tag: %v, want not found with MANIFEST_UNKNOWN", err)
	}
}
