package oci

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/testenv"
)

// startDockerRegistry runs Debian's docker-registry (the CNCF distribution registry) on
// a free loopback port with its storage in a temporary directory and htpasswd auth for
// user/password, and returns its host:port. The process is killed by PID at the end.
func startDockerRegistry(t *testing.T, user, password string) string {
	t.Helper()
	bin := testenv.NeedsTool(t, "docker-registry")
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
auth:
  htpasswd:
    realm: warren-test
    path: %s
`, filepath.Join(dir, "data"), addr, filepath.Join(dir, "htpasswd"))
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	// Ready when /v2/ answers (401: it wants credentials).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return addr
			}
		}
		select {
		case <-exited:
			t.Fatalf("docker-registry exited: %v", cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry on %s not ready after 30s: %v", addr, err)
		}
	}
}

// TestPullFromDockerRegistry pushes an image made here to a real registry (Debian's
// docker-registry, with password auth) and pulls it through the package, with the
// credentials taken from a Docker config file as `docker login` writes it.
func TestPullFromDockerRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a docker-registry process; skipped under -short")
	}
	host := startDockerRegistry(t, "builder", "s3cret")
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
