package template

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ciServer is a code-interpreter server running in a private PID and mount namespace.
type ciServer struct {
	url string
	out *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ciNamespaceScript runs in new mount and PID namespaces: it puts a writable overlay
// (in memory) over the shared read-only rootfs, mounts /proc, /dev, /dev/shm and /tmp,
// and starts the server chrooted. All of it vanishes with the namespaces.
const ciNamespaceScript = `set -eu
d=$1 lower=$2
shift 2
mount -t tmpfs -o mode=0755 warren-ci "$d"
mkdir "$d/upper" "$d/work" "$d/root"
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$d/upper,workdir=$d/work" "$d/root"
mount -t proc proc "$d/root/proc"
mount --rbind /dev "$d/root/dev"
mount -t tmpfs -o mode=1777 shm "$d/root/dev/shm"
mount -t tmpfs -o mode=1777 tmp "$d/root/tmp"
exec chroot "$d/root" "$@"
`

func startCodeInterpreter(t *testing.T, rootfs string, startCmd []string) *ciServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	s := &ciServer{url: "http://127.0.0.1:" + strconv.Itoa(port), out: &syncBuffer{}}
	args := append([]string{"--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
		"/bin/sh", "-c", ciNamespaceScript, "ci-test", dir, rootfs}, startCmd...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
		"WARREN_CI_PORT=" + strconv.Itoa(port), "WARREN_CI_HOST=127.0.0.1"}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// Killing unshare kills its child (--kill-child), the namespace's init, and with it
		// every process in the namespace; the mount namespace and its mounts go too.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("server output:\n%s", s.out)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			left := processesUnder(dir)
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("processes left running in the rootfs: %v", left)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if mounts, err := mountsUnder(dir); err != nil || len(mounts) > 0 {
			t.Errorf("mounts left: %v %v", mounts, err)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(s.url + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case <-exited:
			t.Fatalf("the server exited:\n%s", s.out)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not answer /health within 60s:\n%s", s.out)
		}
	}
}

// processesUnder lists the processes whose root directory is dir or below it.
func processesUnder(dir string) []string {
	roots, _ := filepath.Glob("/proc/[0-9]*/root")
	var out []string
	for _, r := range roots {
		if target, err := os.Readlink(r); err == nil && (target == dir || strings.HasPrefix(target, dir+"/")) {
			cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(r), "cmdline"))
			out = append(out, filepath.Base(filepath.Dir(r))+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}

func (s *ciServer) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json") // as the SDK sends, even on GET and DELETE
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func (s *ciServer) createContext(t *testing.T, language, cwd string) map[string]any {
	t.Helper()
	req := map[string]string{}
	if language != "" {
		req["language"] = language
	}
	if cwd != "" {
		req["cwd"] = cwd
	}
	body, _ := json.Marshal(req)
	status, resp := s.do(t, "POST", "/contexts", string(body))
	var c map[string]any
	if status != 200 || json.Unmarshal([]byte(resp), &c) != nil || c["id"] == "" {
		t.Fatalf("POST /contexts %s = %d %q", body, status, resp)
	}
	return c
}

func (s *ciServer) listed(t *testing.T, id string) bool {
	t.Helper()
	status, body := s.do(t, "GET", "/contexts", "")
	var list []map[string]any
	if status != 200 || json.Unmarshal([]byte(body), &list) != nil {
		t.Fatalf("GET /contexts = %d %q", status, body)
	}
	for _, c := range list {
		if c["id"] == id {
			return true
		}
	}
	return false
}

// ciExec is the parsed NDJSON answer of one POST /execute.
type ciExec struct {
	lines []map[string]any
	at    []time.Duration // when each line arrived, after the request was sent
}

// execute runs code and checks the stream's framing: every line one JSON object (no
// blank line anywhere) and end_of_execution last.
func (s *ciServer) execute(t *testing.T, path string, req map[string]any) ciExec {
	t.Helper()
	if path == "" {
		path = "/execute"
	}
	body, _ := json.Marshal(req)
	start := time.Now()
	resp, err := http.Post(s.url+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		data, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s %s = %d %q", path, body, resp.StatusCode, data)
	}
	var ex ciExec
	br := bufio.NewReader(resp.Body)
	for {
		raw, err := br.ReadString('\n')
		if raw != "" {
			line := strings.TrimSuffix(raw, "\n")
			var obj map[string]any
			if strings.TrimSpace(line) == "" {
				t.Errorf("blank line in the NDJSON stream of %s", body)
			} else if err := json.Unmarshal([]byte(line), &obj); err != nil || obj["type"] == nil {
				t.Errorf("line %q is not a typed JSON object: %v", line, err)
			} else {
				ex.lines = append(ex.lines, obj)
				ex.at = append(ex.at, time.Since(start))
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
	}
	if n := len(ex.lines); n == 0 || ex.lines[n-1]["type"] != "end_of_execution" {
		t.Fatalf("stream of %s does not end with end_of_execution: %v", body, ex.lines)
	}
	return ex
}

func (e ciExec) main() map[string]any {
	for _, l := range e.lines {
		if l["type"] == "result" && l["is_main_result"] == true {
			return l
		}
	}
	return nil
}

func (e ciExec) mainText() string {
	if m := e.main(); m != nil {
		s, _ := m["text"].(string)
		return s
	}
	if el := e.errorLine(); el != nil {
		return fmt.Sprintf("<error %v: %v>", el["name"], el["value"])
	}
	return "<no result>"
}

func (e ciExec) errorLine() map[string]any {
	for _, l := range e.lines {
		if l["type"] == "error" {
			return l
		}
	}
	return nil
}

func (e ciExec) field(name string) []any {
	var out []any
	for _, l := range e.lines {
		if v, ok := l[name]; ok && l["type"] == "result" {
			out = append(out, v)
		}
	}
	return out
}

func (e ciExec) stream(kind string) string {
	var b strings.Builder
	for _, l := range e.lines {
		if l["type"] == kind {
			b.WriteString(l["text"].(string))
		}
	}
	return b.String()
}

func (e ciExec) stdout() string { return e.stream("stdout") }
func (e ciExec) stderr() string { return e.stream("stderr") }
