package warren

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// integrationClient returns a client of the server named by WARREN_API_URL and
// WARREN_API_KEY (an admin key), which TestMain sets when it starts a server. Without
// them the test is skipped (-short, or outside CI); in CI (CI set) that is a failure.
func integrationClient(t testing.TB) *Client {
	t.Helper()
	if os.Getenv("WARREN_API_URL") == "" || os.Getenv("WARREN_API_KEY") == "" {
		if testing.Short() {
			t.Skip("-short: no integration tests")
		}
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but WARREN_API_URL and WARREN_API_KEY are not: the SDK's integration tests need a server")
		}
		t.Skip("set WARREN_API_URL and WARREN_API_KEY (an admin key) to run the integration tests against a server")
	}
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newSandbox creates a sandbox killed at the end of the test.
func newSandbox(t testing.TB, c *Client, template string) *Sandbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sbx, err := c.CreateSandbox(ctx, SandboxOptions{Template: template, Timeout: 10 * time.Minute,
		Metadata: map[string]string{"test": t.Name()}, Env: map[string]string{"WARREN_TEST": "1"}})
	if err != nil {
		t.Fatalf("creating a %s sandbox: %v", template, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sbx.Kill(ctx); err != nil && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
			t.Errorf("killing %s: %v", sbx.ID, err)
		}
	})
	return sbx
}

func TestIntegrationSandboxes(t *testing.T) {
	c := integrationClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sbx := newSandbox(t, c, "base")
	info := sbx.Info()
	if info.State != "running" || info.Template != "base" || info.EnvKeys[0] != "WARREN_TEST" || info.Metadata["test"] != t.Name() {
		t.Errorf("created %+v", info)
	}
	same, err := c.ConnectSandbox(ctx, sbx.ID)
	if err != nil || same.Info().CreatedAt != info.CreatedAt {
		t.Fatalf("connect: %+v %v", same, err)
	}
	if got, err := c.GetSandbox(ctx, sbx.ID); err != nil || got.ID != sbx.ID {
		t.Errorf("get: %+v %v", got, err)
	}
	page, err := c.ListSandboxes(ctx, ListOptions{Metadata: map[string]string{"test": t.Name()}, States: []string{"running"}})
	if err != nil || len(page.Sandboxes) != 1 || page.Sandboxes[0].ID != sbx.ID {
		t.Errorf("list: %+v %v", page, err)
	}
	found := false
	for s, err := range c.AllSandboxes(ctx, ListOptions{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		found = found || s.ID == sbx.ID
	}
	if !found {
		t.Error("AllSandboxes did not yield the sandbox")
	}
	before := sbx.Info().EndsAt
	ni, err := sbx.SetTimeout(ctx, 20*time.Minute)
	if err != nil || !ni.EndsAt.After(before) || !sbx.Info().EndsAt.Equal(ni.EndsAt) {
		t.Errorf("set timeout: %+v %v", ni, err)
	}
	np := NetworkPolicy{AllowOut: []string{"198.18.0.7"}, DenyOut: []string{"0.0.0.0/0"}}
	if ni, err := sbx.SetNetwork(ctx, np); err != nil || !reflect.DeepEqual(ni.Network, np) || !reflect.DeepEqual(sbx.Info().Network, np) {
		t.Errorf("set network: %+v %v", ni, err)
	}
	if _, err := sbx.SetNetwork(ctx, NetworkPolicy{AllowOut: []string{"fd00::1"}}); err == nil || !strings.Contains(err.Error(), "IPv6") {
		t.Errorf("an IPv6 entry: %v, want a refusal naming IPv6", err)
	}
	if ts, err := c.Templates(ctx); err != nil || len(ts) == 0 {
		t.Errorf("templates: %v %v", ts, err)
	}
	if h := sbx.GetHost(8080); info.Domain == "" || h != "8080-"+sbx.ID+"."+info.Domain {
		t.Errorf("GetHost = %q, domain %q", h, info.Domain)
	}
	if err := sbx.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sbx.Kill(ctx); !errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
		t.Errorf("second kill: %v", err)
	}
	if info, err := sbx.Refresh(ctx); err != nil || info.State != "stopped" || info.EndReason != "killed" {
		t.Errorf("after kill: %+v %v", info, err)
	}
	if _, err := c.ConnectSandbox(ctx, "zzzzzzzzzzzzzzzzzzzz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown sandbox: %v", err)
	}
	bad, _ := New(WithAPIKey("sk_not_a_key"))
	if _, err := bad.ListSandboxes(ctx, ListOptions{}); !errors.Is(err, ErrAuthentication) {
		t.Errorf("bad key: %v", err)
	}
}

func TestIntegrationCommands(t *testing.T) {
	c := integrationClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmds := newSandbox(t, c, "base").Commands()

	var mu sync.Mutex
	var order []string
	note := func(kind string) func([]byte) {
		return func(b []byte) { mu.Lock(); order = append(order, kind+":"+string(b)); mu.Unlock() }
	}
	res, err := cmds.Run(ctx, "echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three", RunOptions{OnStdout: note("out"), OnStderr: note("err")})
	if err != nil || res.Stdout != "one\nthree\n" || res.Stderr != "two\n" || res.PID == 0 {
		t.Errorf("run: %+v %v", res, err)
	}
	if fmt.Sprint(order) != "[out:one\n err:two\n out:three\n]" {
		t.Errorf("callback order %q", order)
	}
	res, err = cmds.Run(ctx, "echo -n \"$A $PWD $(whoami)\"", RunOptions{Env: map[string]string{"A": "x"}, Cwd: "/tmp", User: "root"})
	if err != nil || res.Stdout != "x /tmp root" {
		t.Errorf("env, cwd, user: %+v %v", res, err)
	}
	res, err = cmds.Run(ctx, "echo oops >&2; exit 3", RunOptions{})
	var ce *CommandExitError
	if !errors.As(err, &ce) || ce.ExitCode != 3 || res.Stderr != "oops\n" {
		t.Errorf("exit 3: %+v %v", res, err)
	}
	if res, err := cmds.Run(ctx, "exit 4", RunOptions{AllowNonZeroExit: true}); err != nil || res.ExitCode != 4 {
		t.Errorf("allowed exit: %+v %v", res, err)
	}
	bin := []byte{0, 0xff, 1, '\n'}
	if res, err := cmds.RunArgs(ctx, []string{"cat"}, RunOptions{Stdin: bytes.NewReader(bin)}); err != nil || res.Stdout != string(bin) {
		t.Errorf("binary stdin: %q %v", res.Stdout, err)
	}
	if res, err := cmds.Run(ctx, "tr a-z A-Z", RunOptions{Stdin: strings.NewReader("text")}); err != nil || res.Stdout != "TEXT" {
		t.Errorf("text stdin: %+v %v", res, err)
	}
	// A timeout is a result: the output until the kill comes with the error.
	start := time.Now()
	res, err = cmds.Run(ctx, "echo before; sleep 30", RunOptions{Timeout: time.Second})
	var te *CommandTimeoutError
	if !errors.As(err, &te) || !errors.Is(err, ErrTimeout) || res == nil || !res.TimedOut || res.ExitCode != -1 || res.Stdout != "before\n" || time.Since(start) > 15*time.Second {
		t.Errorf("timeout: %+v %v after %v", res, err, time.Since(start))
	}
	if res, _ := cmds.Run(ctx, "pgrep -c sleep", RunOptions{AllowNonZeroExit: true}); strings.TrimSpace(res.Stdout) != "0" {
		t.Errorf("processes left after the timeout: %q", res.Stdout)
	}
	if _, err := cmds.Run(ctx, "true", RunOptions{User: "nobody-here"}); err == nil {
		t.Error("unknown user accepted")
	}
}

// TestIntegrationProcesses: background commands with Start, their stdin, signals,
// listing and re-attaching with Connect.
func TestIntegrationProcesses(t *testing.T) {
	c := integrationClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmds := newSandbox(t, c, "base").Commands()

	// stdin: the output comes only after the input, so the handle sees all of it.
	h, err := cmds.Start(ctx, "cat", RunOptions{StdinOpen: true})
	if err != nil || h.PID == 0 {
		t.Fatalf("start: %v", err)
	}
	for _, in := range [][]byte{[]byte("hello\n"), {0, 'b', 0xff, '\n'}} {
		if err := h.SendStdin(ctx, in); err != nil {
			t.Fatalf("stdin: %v", err)
		}
	}
	if err := h.CloseStdin(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := h.Wait(ctx); err != nil || res.Stdout != "hello\n\x00b\xff\n" || res.PID != h.PID {
		t.Errorf("cat: %+v %v", res, err)
	}
	// Without StdinOpen, stdin is closed: writing is a conflict.
	h, err = cmds.Start(ctx, "sleep 0.5; echo late; exit 3", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SendStdin(ctx, []byte("x")); !errors.Is(err, ErrConflict) {
		t.Errorf("stdin of a command without StdinOpen: %v", err)
	}
	res, err := h.Wait(ctx)
	var ce *CommandExitError
	if !errors.As(err, &ce) || res.ExitCode != 3 || res.Stdout != "late\n" {
		t.Errorf("exit 3: %+v %v", res, err)
	}

	// Listed, re-attached, then TERM.
	h, err = cmds.Start(ctx, "for i in $(seq 1 600); do echo tick$i; sleep 0.1; done", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := cmds.List(ctx)
	found := false
	for _, p := range list {
		found = found || p.PID == h.PID && p.Cmd == "/bin/bash" && len(p.Args) == 2 && p.Args[0] == "-c"
	}
	if err != nil || !found {
		t.Errorf("List lacks pid %d: %+v %v", h.PID, list, err)
	}
	h.Disconnect()
	var mu sync.Mutex
	var later []string
	h2, err := cmds.Connect(ctx, h.PID, ConnectOptions{OnStdout: func(b []byte) { mu.Lock(); later = append(later, string(b)); mu.Unlock() }})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); h2.Stdout() == "" && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if err := h2.Signal(ctx, SignalTerm); err != nil {
		t.Fatal(err)
	}
	res, err = h2.Wait(ctx)
	if !errors.As(err, &ce) || res.ExitCode != -1 || !strings.HasPrefix(res.Stdout, "tick") {
		t.Errorf("after TERM: %+v %v", res, err)
	}
	mu.Lock()
	if strings.Join(later, "") != res.Stdout {
		t.Errorf("callbacks saw %q, result has %q", later, res.Stdout)
	}
	mu.Unlock()
	if _, err := cmds.Connect(ctx, 999999, ConnectOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("connect to an unknown pid: %v", err)
	}
	if err := cmds.Signal(ctx, h.PID, Signal("HUP")); !errors.Is(err, ErrInvalid) {
		t.Errorf("HUP: %v", err)
	}

	// Kill takes the process group with it.
	h, err = cmds.Start(ctx, "sleep 600 & sleep 600", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Kill(ctx); err != nil {
		t.Fatalf("kill: %v", err)
	}
	if res, err := h.Wait(ctx); !errors.As(err, &ce) || res.ExitCode != -1 {
		t.Errorf("killed: %+v %v", res, err)
	}
	if err := h.Kill(ctx); err != nil {
		t.Errorf("second kill: %v", err)
	}
	if res, _ := cmds.Run(ctx, "pgrep -c sleep", RunOptions{AllowNonZeroExit: true}); strings.TrimSpace(res.Stdout) != "0" {
		t.Errorf("processes left after Kill: %q", res.Stdout)
	}

	// A background timeout ends the command.
	start := time.Now()
	h, err = cmds.Start(ctx, "sleep 600", RunOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	res, err = h.Wait(ctx)
	if err == nil || res == nil || res.ExitCode != -1 || time.Since(start) > 15*time.Second {
		t.Errorf("background timeout: %+v %v after %v", res, err, time.Since(start))
	}
	t.Logf("a background command at its timeout ends with %+v (%T)", res, err)
}

// TestIntegrationPorts: a web server started with Start is listed by Ports and reached
// through the proxy at GetHost.
func TestIntegrationPorts(t *testing.T) {
	c := integrationClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sbx := newSandbox(t, c, "base")
	if sbx.Info().Domain == "" || !strings.HasPrefix(sbx.GetHost(8000), "8000-"+sbx.ID+".") {
		t.Fatalf("domain %q, GetHost %q", sbx.Info().Domain, sbx.GetHost(8000))
	}
	if _, err := sbx.Files().WriteBytes(ctx, "/tmp/site/index.html", []byte("served\n")); err != nil {
		t.Fatal(err)
	}
	h, err := sbx.Commands().Start(ctx, "python3 -m http.server 8000", RunOptions{Cwd: "/tmp/site"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Kill(context.WithoutCancel(ctx))
	var ports []Port
	for deadline := time.Now().Add(20 * time.Second); len(ports) == 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if ports, err = sbx.Ports(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(ports) != 1 || ports[0].Port != 8000 || ports[0].URL != "http://"+sbx.GetHost(8000)+"/" {
		t.Fatalf("ports %+v, GetHost %q", ports, sbx.GetHost(8000))
	}
	proxy := os.Getenv("WARREN_PROXY_URL")
	if proxy == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI: WARREN_PROXY_URL is unset (TestMain sets it when it starts the server)")
		}
		t.Skip("set WARREN_PROXY_URL to the server's proxy address to fetch the page through it")
	}
	// *.<domain> need not resolve here: send the host name to the proxy's address.
	req, _ := http.NewRequestWithContext(ctx, "GET", proxy+"/index.html", nil)
	req.Host = sbx.GetHost(8000)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "served\n" {
		t.Errorf("GET through the proxy: %d %q", resp.StatusCode, body)
	}
}

func TestIntegrationFiles(t *testing.T) {
	c := integrationClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sbx := newSandbox(t, c, "base")
	files := sbx.Files()
	data := make([]byte, 5<<20+3)
	rand.Read(data)
	fi, err := files.Write(ctx, "/home/user/dir/data.bin", io.MultiReader(bytes.NewReader(data[:1000]), bytes.NewReader(data[1000:])))
	if err != nil || fi.Size != int64(len(data)) || fi.Type != "file" {
		t.Fatalf("write: %+v %v", fi, err)
	}
	rc, err := files.Read(ctx, "/home/user/dir/data.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("read back %d bytes, %v", len(got), err)
	}
	if _, err := files.WriteBytes(ctx, "notes.txt", []byte("relative")); err != nil {
		t.Fatal(err)
	}
	if b, err := files.ReadBytes(ctx, "/home/user/notes.txt"); err != nil || string(b) != "relative" {
		t.Errorf("relative path: %q %v", b, err)
	}
	entries, err := files.List(ctx, "/home/user/dir")
	if err != nil || len(entries) != 1 || entries[0].Name != "data.bin" {
		t.Errorf("list: %+v %v", entries, err)
	}
	if deep, err := files.ListDepth(ctx, "/home/user", 2); err != nil || len(deep) < 3 {
		t.Errorf("list depth 2: %d entries, %v", len(deep), err)
	}
	for p, want := range map[string]bool{"/home/user/dir/data.bin": true, "/home/user/dir": true, "notes.txt": true, "/home/user/nope": false, "/nope/x": false} {
		if ok, err := files.Exists(ctx, p); err != nil || ok != want {
			t.Errorf("Exists(%q) = %v, %v", p, ok, err)
		}
	}
	if st, err := files.Stat(ctx, "/home/user/dir"); err != nil || !st.IsDir() || st.Path != "/home/user/dir" {
		t.Errorf("stat dir: %+v %v", st, err)
	}
	if _, err := files.Stat(ctx, "/home/user/nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("stat missing: %v", err)
	}
	if made, err := files.MakeDir(ctx, "/home/user/a/b"); err != nil || !made {
		t.Errorf("mkdir: %v %v", made, err)
	}
	if made, err := files.MakeDir(ctx, "/home/user/a/b"); err != nil || made {
		t.Errorf("mkdir again: %v %v", made, err)
	}
	if _, err := files.MakeDir(ctx, "/home/user/notes.txt"); !errors.Is(err, ErrConflict) {
		t.Errorf("mkdir over a file: %v", err)
	}
	if st, err := files.Stat(ctx, "/home/user/a/b"); err != nil || !st.IsDir() || st.Owner != "user" {
		t.Errorf("the new directory: %+v %v", st, err)
	}
	if fi, err := files.Rename(ctx, "notes.txt", "/home/user/a/b/c/moved.txt"); err != nil || fi.Path != "/home/user/a/b/c/moved.txt" || fi.Size != int64(len("relative")) {
		t.Errorf("rename: %+v %v", fi, err)
	}
	if ok, _ := files.Exists(ctx, "notes.txt"); ok {
		t.Error("the renamed file is still at its old path")
	}
	if _, err := files.Rename(ctx, "notes.txt", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("rename missing: %v", err)
	}
	if err := files.Remove(ctx, "/home/user/a"); err != nil {
		t.Errorf("remove: %v", err)
	}
	if err := files.Remove(ctx, "/home/user/a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove missing: %v", err)
	}
	if fi, err := files.WithUser("root").WriteBytes(ctx, "/root/secret", []byte("s")); err != nil || fi.Owner != "root" {
		t.Errorf("write as root: %+v %v", fi, err)
	}
	if st, err := files.WithUser("root").Stat(ctx, "/root/secret"); err != nil || st.Owner != "root" || st.Size != 1 {
		t.Errorf("stat as root: %+v %v", st, err)
	}
	if st, err := files.Stat(ctx, "data.bin"); err == nil || !errors.Is(err, ErrNotFound) {
		t.Errorf("stat of a relative path that does not exist: %+v %v", st, err)
	}
	if st, err := files.Stat(ctx, "dir/data.bin"); err != nil || st.Owner != "user" {
		t.Errorf("stat as the default user: %+v %v", st, err)
	}
	if _, err := files.ReadBytes(ctx, "/home/user/missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("read missing: %v", err)
	}
}

// TestIntegrationFileOwner: what the Files' user creates belongs to that user, and
// relative paths start in its home. (The user is not a permission boundary: the agent
// acts as root, as a caller who may run commands as root could anyway.)
func TestIntegrationFileOwner(t *testing.T) {
	c := integrationClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sbx := newSandbox(t, c, "base")
	for _, tc := range []struct {
		files *Files
		owner string
		home  string
	}{{sbx.Files(), "user", "/home/user"}, {sbx.Files().WithUser("root"), "root", "/root"}} {
		fi, err := tc.files.WriteBytes(ctx, "owned.txt", []byte("x"))
		if err != nil || fi.Owner != tc.owner || fi.Path != tc.home+"/owned.txt" {
			t.Errorf("write as %s: %+v %v; want %s/owned.txt owned by %s", tc.owner, fi, err, tc.home, tc.owner)
		}
		if _, err := tc.files.MakeDir(ctx, "made.d"); err != nil {
			t.Fatal(err)
		}
		if st, err := tc.files.Stat(ctx, "made.d"); err != nil || st.Owner != tc.owner || st.Type != "dir" {
			t.Errorf("mkdir as %s: %+v %v", tc.owner, st, err)
		}
	}
}

func TestIntegrationCode(t *testing.T) {
	c := integrationClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sbx := newSandbox(t, c, "code-interpreter")
	var outs []string
	ex, err := sbx.RunCode(ctx, "print('hi')\nx = 20\nx + 22", RunCodeOptions{OnStdout: func(s string) { outs = append(outs, s) }})
	if err != nil || ex.Text() != "42" || fmt.Sprint(outs) != "[hi\n]" || ex.Error != nil {
		t.Fatalf("run: %+v %v (stdout %q)", ex, err, outs)
	}
	ex, err = sbx.RunCode(ctx, "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()", RunCodeOptions{})
	if err != nil || len(ex.Results) == 0 || len(ex.Results[0].PNG) < 8 || string(ex.Results[0].PNG[1:4]) != "PNG" {
		t.Errorf("plot: %v, %d results", err, len(ex.Results))
	}
	ex, err = sbx.RunCode(ctx, "1/0", RunCodeOptions{})
	if err != nil || ex.Error == nil || ex.Error.Name != "ZeroDivisionError" {
		t.Errorf("raise: %+v %v", ex, err)
	}
	if ex, err := sbx.RunCode(ctx, "x", RunCodeOptions{}); err != nil || ex.Text() != "20" {
		t.Errorf("state kept: %+v %v", ex, err)
	}
	js, err := sbx.CreateCodeContext(ctx, CodeContextOptions{Language: "javascript"})
	if err != nil {
		t.Fatal(err)
	}
	if ex, err := sbx.RunCode(ctx, "let y = 6; y * 7", RunCodeOptions{Context: js}); err != nil || ex.Text() != "42" {
		t.Errorf("javascript: %+v %v", ex, err)
	}
	if list, err := sbx.ListCodeContexts(ctx); err != nil || len(list) == 0 {
		t.Errorf("list contexts: %v %v", list, err)
	}
	if err := sbx.RestartCodeContext(ctx, js.ID); err != nil {
		t.Error(err)
	}
	if err := sbx.RemoveCodeContext(ctx, js.ID); err != nil {
		t.Error(err)
	}
	if _, err := sbx.RunCode(ctx, "1", RunCodeOptions{Context: js}); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed context: %v", err)
	}
}

func TestIntegrationKeys(t *testing.T) {
	c := integrationClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k, err := c.CreateKey(ctx, KeyOptions{Name: "sdk-test"})
	if err != nil || !strings.HasPrefix(k.Secret, "sk_") {
		t.Fatalf("create: %+v %v", k, err)
	}
	kc, err := New(WithAPIKey(k.Secret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.Templates(ctx); err != nil {
		t.Errorf("the new key: %v", err)
	}
	keys, err := c.ListKeys(ctx)
	found := false
	for _, key := range keys {
		found = found || key.ID == k.ID && key.Name == "sdk-test"
	}
	if err != nil || !found {
		t.Errorf("list: %v %v", keys, err)
	}
	if err := c.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.Templates(ctx); !errors.Is(err, ErrAuthentication) {
		t.Errorf("revoked key: %v", err)
	}
}
