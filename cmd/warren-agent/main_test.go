package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"fmt"
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

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/envdpb/process"
	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
	"github.com/warren-sh/warren/internal/testenv"
)

const module = "github.com/warren-sh/warren/"

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	testenv.NeedsTool(t, "go")
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

// TestDeps keeps the in-sandbox agent small and free of server code: the binary may
// only use Warren's agent and generated envd packages, the log key constants and the
// version constants (internal/logkey and internal/version, which import nothing), and
// the agent package may use nothing else from internal/.
func TestDeps(t *testing.T) {
	allowed := func(pkg string, self string) bool {
		rel := strings.TrimPrefix(pkg, module)
		return pkg == self ||
			rel == "internal/agent" || strings.HasPrefix(rel, "internal/agent/") ||
			strings.HasPrefix(rel, "internal/envdpb/") || rel == "internal/logkey" || rel == "internal/version"
	}
	for _, target := range []string{module + "cmd/warren-agent", module + "internal/agent/..."} {
		for _, dep := range goList(t, "-deps", target) {
			if strings.HasPrefix(dep, module) && !allowed(dep, module+"cmd/warren-agent") {
				t.Errorf("%s depends on %s: the agent may only import internal/agent/..., internal/envdpb/..., internal/logkey and internal/version", target, dep)
			}
			for _, heavy := range []string{"modernc.org/", "github.com/vishvananda/", "database/sql"} {
				if strings.HasPrefix(dep, heavy) {
					t.Errorf("%s depends on %s, which is server-side code", target, dep)
				}
			}
		}
	}
	// internal/version is shared with the server, so it must stay a leaf.
	if imps := goList(t, "-f", `{{join .Imports " "}}`, module+"internal/version"); len(imps) > 0 {
		t.Errorf("internal/version imports %v; it must import nothing", imps)
	}
	// The reaper owns every wait(2) on children; os/exec's Wait would race it.
	for _, imp := range goList(t, "-f", `{{join .Imports " "}}`, module+"internal/agent/...") {
		if imp == "os/exec" {
			t.Error("internal/agent imports os/exec: start processes through the reaper instead")
		}
	}
}

// TestConfigEnvCompat starts the agent with its config in WARREN_AGENT_CONFIG, as older
// nodes and the driver contract tests do: it must re-execute itself so that its
// /proc/<pid>/environ no longer holds the variable, and still apply the config.
func TestConfigEnvCompat(t *testing.T) {
	bin := buildAgent(t)
	port := freePort(t)
	const token = "env-compat-token-0123456789"
	cfg, _ := json.Marshal(map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", port), "access_token": token})
	var logs bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = []string{"WARREN_AGENT_CONFIG=" + string(cfg), "PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		// The node waits for this line in the console log before it asks the agent
		// (sandbox.waitServing): without it every create would knock slowly.
		if !bytes.Contains(logs.Bytes(), agentclient.ServingMark) {
			t.Errorf("the agent's log does not hold %s once it serves", agentclient.ServingMark)
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHealthy(t, base)
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(environ, []byte("WARREN_AGENT_CONFIG")) || bytes.Contains(environ, []byte(token)) {
		t.Errorf("the agent's environment still holds its config: %q", environ)
	}
	for _, c := range []struct {
		token string
		want  int
	}{{"", 401}, {token, 200}} {
		req, _ := http.NewRequest("GET", base+"/envs", nil)
		if c.token != "" {
			req.Header.Set("X-Access-Token", c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET /envs with token %q: %d, want %d (the config was not applied)", c.token, resp.StatusCode, c.want)
		}
	}
}

// buildAgent builds the static agent binary as the brief's command does.
func buildAgent(t *testing.T) string {
	t.Helper()
	testenv.NeedsTool(t, "go")
	bin := filepath.Join(t.TempDir(), "warren-agent")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the agent binary is dynamically linked; it must be static (CGO_ENABLED=0)")
		}
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// zombieChildren lists the children of pid and those of them that are zombies.
func zombieChildren(pid int) (children, zombies []string) {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, c := range strings.Fields(string(b)) {
			children = append(children, c)
			stat, _ := os.ReadFile("/proc/" + c + "/stat")
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
				zombies = append(zombies, c)
			}
		}
	}
	return children, zombies
}

// TestPID1 runs the real binary as PID 1 of a new PID namespace, as in a sandbox:
// exit statuses must reach the processes the agent started even while it reaps
// orphans with wait4(-1), orphans must not stay zombies, and SIGTERM must stop it.
func TestPID1(t *testing.T) {
	testenv.NeedsRoot(t, "create a PID namespace")
	bin := buildAgent(t)
	port := freePort(t)
	const token = "pid1-token"
	marker := strconv.FormatInt(time.Now().UnixNano(), 36)
	cfg, _ := json.Marshal(map[string]any{
		"listen": fmt.Sprintf("127.0.0.1:%d", port), "access_token": token,
		"env": map[string]string{"PID1_TEST_MARKER": marker},
	})
	cfgFile := filepath.Join(t.TempDir(), "agent.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--config", cfgFile)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot create a PID namespace here (%v); CI runs this as root", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHealthy(t, base)
	if _, err := os.Stat(cfgFile); !os.IsNotExist(err) {
		t.Errorf("the config file is still there after the start: %v", err)
	}

	hc := &http.Client{Transport: &tokenTransport{token: token}}
	pc := processconnect.NewProcessClient(hc, base, connect.WithProtoJSON())
	run := func(script string) (string, *process.ProcessEvent_EndEvent, error) {
		f := false
		s, err := pc.Start(context.Background(), connect.NewRequest(&process.StartRequest{
			Process: &process.ProcessConfig{Cmd: "/bin/sh", Args: []string{"-c", script}}, Stdin: &f,
		}))
		if err != nil {
			return "", nil, err
		}
		defer s.Close()
		var out strings.Builder
		var end *process.ProcessEvent_EndEvent
		for s.Receive() {
			ev := s.Msg().GetEvent()
			out.Write(ev.GetData().GetStdout())
			if ev.GetEnd() != nil {
				end = ev.GetEnd()
			}
		}
		if end == nil {
			return out.String(), nil, fmt.Errorf("no end event (stream error %v)", s.Err())
		}
		return out.String(), end, s.Err()
	}

	t.Run("exit statuses with orphans being reaped", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// The background sleeps outlive the shell and are re-parented to the agent.
				_, end, err := run(fmt.Sprintf("sleep 0.2 & (sleep 0.1 &); exit %d", i+1))
				if err != nil {
					t.Errorf("process %d: %v", i+1, err)
					return
				}
				if end.GetExitCode() != int32(i+1) {
					t.Errorf("process %d ended with %v", i+1, end)
				}
			}()
		}
		wg.Wait()
		var children, zombies []string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if children, zombies = zombieChildren(cmd.Process.Pid); len(children) == 0 {
				break
			}
		}
		if len(children) != 0 {
			t.Fatalf("agent still has children %v (zombies %v): orphans are not reaped", children, zombies)
		}
	})
	t.Run("is PID 1 and hides its config", func(t *testing.T) {
		out, _, err := run(`echo "ppid=$PPID"; env; tr '\0' '\n' < /proc/1/environ`)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "ppid=1\n") || strings.Contains(out, "WARREN_AGENT_CONFIG") || strings.Contains(out, token) || !strings.Contains(out, "PID1_TEST_MARKER="+marker) {
			t.Fatalf("output %q", out)
		}
		// The agent's processes never hold CAP_SYS_RESOURCE (agent.DropAgentCap), whichever
		// of the agent's threads forks them: no thread keeps it in its bounding set.
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", cmd.Process.Pid))
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
					if bnd, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64); bnd&(1<<24) != 0 {
						t.Errorf("agent thread %s keeps CAP_SYS_RESOURCE in its bounding set (%s)", f, strings.TrimSpace(v))
					}
				}
			}
		}
		if len(tasks) < 2 {
			t.Errorf("found %d agent threads", len(tasks))
		}
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, _, err := run(`grep CapBnd /proc/self/status`)
				if err != nil {
					t.Error(err)
					return
				}
				v, _ := strings.CutPrefix(strings.TrimSpace(out), "CapBnd:")
				bnd, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if bnd == 0 || bnd&(1<<24) != 0 {
					t.Errorf("a started process's bounding set is %#x (%q): want CAP_SYS_RESOURCE (bit 24) dropped", bnd, out)
				}
			}()
		}
		wg.Wait()
	})
	t.Run("SIGTERM stops the agent and its processes", func(t *testing.T) {
		f := false
		s, err := pc.Start(context.Background(), connect.NewRequest(&process.StartRequest{
			Process: &process.ProcessConfig{Cmd: "/bin/sleep", Args: []string{"100"}}, Stdin: &f,
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if !s.Receive() || s.Msg().GetEvent().GetStart() == nil {
			t.Fatalf("no start event: %v", s.Err())
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("agent exited with %v, want 0", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("agent did not exit within 15s of SIGTERM")
		}
		for s.Receive() {
			if end := s.Msg().GetEvent().GetEnd(); end != nil && end.GetStatus() != "signal: terminated" {
				t.Errorf("sleep ended with %v, want terminated", end)
			}
		}
		if left := processesWithEnv("PID1_TEST_MARKER=" + marker); len(left) > 0 {
			t.Fatalf("processes survived the agent: %v", left)
		}
	})
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("agent not healthy within 10s")
}

type tokenTransport struct{ token string }

func (tt *tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Access-Token", tt.token)
	r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("root:")))
	return http.DefaultTransport.RoundTrip(r)
}

func processesWithEnv(kv string) []string {
	var out []string
	envs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range envs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(kv)) {
			out = append(out, filepath.Base(filepath.Dir(p)))
		}
	}
	return out
}
