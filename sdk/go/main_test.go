package warren

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain starts a `warren serve` for the integration tests when WARREN_BIN_DIR names
// the built binaries (as `make test` does) and WARREN_API_URL and WARREN_API_KEY do
// not already name a server. It needs what the server needs (root, runsc).
func TestMain(m *testing.M) {
	flag.Parse()
	stop := func() error { return nil }
	if bin := os.Getenv("WARREN_BIN_DIR"); bin != "" && os.Getenv("WARREN_API_URL") == "" && os.Getenv("WARREN_API_KEY") == "" && !testing.Short() {
		var err error
		if stop, err = startTestServer(bin); err != nil {
			fmt.Fprintln(os.Stderr, "starting the server for the integration tests:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test server:", err)
		code = 1
	}
	os.Exit(code)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// lockedBuffer collects the server's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) add(line string) {
	b.mu.Lock()
	b.buf.WriteString(line + "\n")
	b.mu.Unlock()
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startTestServer runs bin/warren serve with its own data dir, ports, network name and
// address pool (outside the e2e suite's 10.212-231 range), sets WARREN_API_URL,
// WARREN_API_KEY and WARREN_PROXY_URL, and returns how to stop it: SIGTERM, with
// --kill-on-exit removing its sandboxes, then the data dir is deleted.
func startTestServer(bin string) (func() error, error) {
	dir, err := os.MkdirTemp("", "warren-sdk-go-")
	if err != nil {
		return nil, err
	}
	api, err := freeAddr()
	if err != nil {
		return nil, err
	}
	proxy, err := freeAddr()
	if err != nil {
		return nil, err
	}
	pid := os.Getpid()
	cmd := exec.Command(filepath.Join(bin, "warren"), "serve", "--listen", api, "--proxy-listen", proxy, "--data-dir", dir,
		"--network-name", fmt.Sprintf("wsdk%d", pid%100000), "--sandbox-cidr", fmt.Sprintf("10.%d.%d.0/24", 240+pid%10, pid%250),
		"--kill-on-exit", "--metrics-listen", "")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logs := &lockedBuffer{}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			logs.add(sc.Text())
		}
	}()
	go func() { cmd.Wait(); pw.Close(); close(exited) }()
	stop := func() error {
		defer os.RemoveAll(dir)
		select {
		case <-exited:
			return fmt.Errorf("the server had exited:\n%s", logs.String())
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			return nil
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("the server did not stop within 60s:\n%s", logs.String())
		}
	}
	if err := waitHealthy("http://"+api, exited, 10*time.Minute); err != nil {
		stop()
		return nil, fmt.Errorf("%w\n%s", err, logs.String())
	}
	key, err := os.ReadFile(filepath.Join(dir, "admin.key"))
	if err != nil {
		stop()
		return nil, err
	}
	os.Setenv("WARREN_API_URL", "http://"+api)
	os.Setenv("WARREN_API_KEY", strings.TrimSpace(string(key)))
	os.Setenv("WARREN_PROXY_URL", "http://"+proxy)
	return stop, nil
}

func waitHealthy(url string, exited <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit) // a first start may build the base template
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("warren serve exited during start-up")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("warren serve did not become healthy in %v", limit)
}
