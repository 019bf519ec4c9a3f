// Package testregistry runs a real OCI registry for tests that push and pull images:
// Debian's docker-registry (the CNCF distribution registry) on a free loopback port,
// with its storage in the test's temporary directory, without auth or with htpasswd
// auth for one user. Tests only: it fails the test on any error.
package testregistry

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/warren-sh/warren/internal/testenv"
)

// Start runs the registry and returns its host:port once it answers. With a user, it
// wants that user and password (htpasswd, bcrypt) and its /v2/ answers 401 without
// them; with user "", it takes anything (plain HTTP, which go-containerregistry uses
// for loopback registries). The process is killed by PID when the test ends. Without
// docker-registry the test skips, or fails under CI (testenv.NeedsTool).
func Start(t *testing.T, user, password string) string {
	t.Helper()
	bin := testenv.NeedsTool(t, "docker-registry")
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	config := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	ready := http.StatusOK
	if user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		config += fmt.Sprintf("auth:\n  htpasswd:\n    realm: warren-test\n    path: %s\n", filepath.Join(dir, "htpasswd"))
		ready = http.StatusUnauthorized // it wants credentials
	}
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
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == ready {
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
