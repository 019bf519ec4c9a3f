package template

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// frontProc is the browser template's front (warren-browser) running on the host
// with testdata/fake-chromium in place of Chromium.
type frontProc struct {
	url  string // http://127.0.0.1:<front port>
	data string // the fake's user data dir
	out  *syncBuffer
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startFrontProc(t *testing.T) *frontProc {
	t.Helper()
	py := pythonWith(t, "asyncio, http.server")
	dir := t.TempDir()
	front := filepath.Join(dir, "warren-browser")
	fake, err := os.ReadFile(filepath.Join("testdata", "fake-chromium"))
	if err != nil {
		t.Fatal(err)
	}
	// The fake runs with the python the test found, whatever env python3 would be.
	fake = []byte("#!" + py + "\n" + string(fake))
	if err := os.WriteFile(front, []byte(Browser().Files[BrowserBin]), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fake-chromium"), fake, 0o755); err != nil {
		t.Fatal(err)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	f := &frontProc{data: filepath.Join(dir, "data"), out: &syncBuffer{}}
	// A profile lock left by a killed Chromium must not survive into the next start.
	if err := os.MkdirAll(f.data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.data, "SingletonLock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	port := freeLoopbackPort(t)
	f.url = "http://127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(py, front)
	cmd.Env = append(os.Environ(), "WARREN_CDP_PORT="+strconv.Itoa(port),
		"WARREN_CHROMIUM_PORT="+strconv.Itoa(freeLoopbackPort(t)),
		"WARREN_CHROMIUM="+filepath.Join(dir, "fake-chromium"), "WARREN_CHROMIUM_DATA="+f.data,
		"WARREN_BROWSER_USER="+me.Username)
	cmd.Stdout, cmd.Stderr = f.out, f.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// The front ends its Chromium on SIGTERM; the fake runs in a session of its own.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("the front did not exit on SIGTERM")
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("front output:\n%s", f.out)
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("the front did not listen within 20s:\n%s", f.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get does one GET with the given Host and extra headers.
func (f *frontProc) get(t *testing.T, path, host string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.url+path, nil)
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

func (f *frontProc) waitHealthy(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if code, _ := f.get(t, "/health", "x", nil); code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health did not answer 200 within 20s:\n%s", f.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// raw sends request bytes on a new connection and returns the answer's status line.
func (f *frontProc) raw(t *testing.T, request string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go io.WriteString(c, request) // an oversized request may not be read to its end
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestBrowserFront drives the browser template's front against a fake Chromium:
// readiness, Host and URL rewriting, the WebSocket splice, restarts, and bad input.
func TestBrowserFront(t *testing.T) {
	f := startFrontProc(t)
	if code, body := f.get(t, "/health", "x", nil); code != 503 {
		t.Errorf("/health before Chromium answers = %d %q, want 503", code, body)
	}
	if err := os.WriteFile(filepath.Join(f.data, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f.waitHealthy(t)

	starts := func() []struct {
		Args     []string `json:"args"`
		LockLeft bool     `json:"lock_left"`
	} {
		b, _ := os.ReadFile(filepath.Join(f.data, "starts"))
		var out []struct {
			Args     []string `json:"args"`
			LockLeft bool     `json:"lock_left"`
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var s struct {
				Args     []string `json:"args"`
				LockLeft bool     `json:"lock_left"`
			}
			if json.Unmarshal([]byte(line), &s) == nil {
				out = append(out, s)
			}
		}
		return out
	}
	if s := starts(); len(s) != 1 || s[0].LockLeft {
		t.Errorf("Chromium starts = %+v; want one, without the old profile lock", s)
	} else {
		args := strings.Join(s[0].Args, " ")
		for _, want := range []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1", "--user-data-dir=" + f.data} {
			if !strings.Contains(args, want) {
				t.Errorf("Chromium started without %s: %s", want, args)
			}
		}
	}

	t.Run("urls name the host the client used", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			host string
			hdr  map[string]string
			want string
		}{
			{"direct", "127.0.0.1:9222", nil, "ws://127.0.0.1:9222/devtools/browser/b1"},
			{"proxied", "10.0.0.2:9222", map[string]string{"X-Forwarded-Host": "9222-sbx.example.test", "X-Forwarded-Proto": "http"}, "ws://9222-sbx.example.test/devtools/browser/b1"},
			{"proxied over https", "10.0.0.2:9222", map[string]string{"X-Forwarded-Host": "9222-sbx.example.test", "X-Forwarded-Proto": "https"}, "wss://9222-sbx.example.test/devtools/browser/b1"},
		} {
			code, body := f.get(t, "/json/version/", tc.host, tc.hdr)
			var v struct {
				WS string `json:"webSocketDebuggerUrl"`
			}
			if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil || v.WS != tc.want {
				t.Errorf("%s: /json/version = %d %s; want webSocketDebuggerUrl %s", tc.name, code, body, tc.want)
			}
		}
		code, body := f.get(t, "/json/list", "10.0.0.2:9222", map[string]string{"X-Forwarded-Host": "9222-sbx.example.test", "X-Forwarded-Proto": "https"})
		var l []struct {
			WS       string `json:"webSocketDebuggerUrl"`
			Frontend string `json:"devtoolsFrontendUrl"`
		}
		if err := json.Unmarshal([]byte(body), &l); code != 200 || err != nil || len(l) != 1 ||
			l[0].WS != "wss://9222-sbx.example.test/devtools/page/P1" || !strings.HasSuffix(l[0].Frontend, "?wss=9222-sbx.example.test/devtools/page/P1") {
			t.Errorf("/json/list = %d %s", code, body)
		}
	})

	t.Run("websocket splice", func(t *testing.T) {
		c, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		// A browser's Origin would make Chromium refuse; the front drops it.
		io.WriteString(c, "GET /devtools/browser/b1 HTTP/1.1\r\nHost: 9222-sbx.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Origin: https://evil.example\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		r := bufio.NewReader(c)
		line, _ := r.ReadString('\n')
		if !strings.HasPrefix(line, "HTTP/1.1 101") {
			rest, _ := io.ReadAll(io.LimitReader(r, 4096))
			t.Fatalf("upgrade answered %q %s", line, rest)
		}
		for line != "\r\n" && line != "" {
			line, _ = r.ReadString('\n')
		}
		for _, msg := range []string{"frame one", strings.Repeat("z", 200_000)} {
			io.WriteString(c, msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(r, got); err != nil || string(got) != msg {
				t.Fatalf("echo of %d bytes: %v (got %d bytes)", len(msg), err, len(got))
			}
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct{ name, req, want string }{
			{"garbage", "GARBAGE\r\n\r\n", "HTTP/1.1 400"},
			{"header without colon", "GET /json HTTP/1.1\r\nnope\r\n\r\n", "HTTP/1.1 400"},
			{"head too large", "GET /json HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n", "HTTP/1.1 400"},
			{"body too large", "PUT /json/new HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n", "HTTP/1.1 400"},
			{"chunked body", "PUT /json/new HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400"},
			{"bad content length", "PUT /json/new HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", "HTTP/1.1 400"},
			{"host with a quote", "GET /json/version HTTP/1.1\r\nHost: a\"b\r\n\r\n", "HTTP/1.1 400"},
			{"answer too large", "GET /json/big HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 502"},
		} {
			if got := f.raw(t, tc.req); !strings.HasPrefix(got, tc.want) {
				t.Errorf("%s: answered %q, want %s", tc.name, got, tc.want)
			}
		}
		if code, _ := f.get(t, "/health", "x", nil); code != 200 {
			t.Errorf("/health after bad input = %d", code)
		}
	})

	t.Run("chromium is restarted", func(t *testing.T) {
		f.get(t, "/exit", "x", nil)
		for deadline := time.Now().Add(20 * time.Second); len(starts()) < 2; {
			if time.Now().After(deadline) {
				t.Fatalf("Chromium was not restarted within 20s:\n%s", f.out)
			}
			time.Sleep(50 * time.Millisecond)
		}
		f.waitHealthy(t)
		if s := starts(); s[1].LockLeft {
			t.Errorf("the restarted Chromium found the old profile lock")
		}
	})
}
