package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTemplateBuildCLI builds a team template from a Dockerfile and a context
// directory with the warren CLI on a real server (real layer builder, real gVisor),
// rebuilds it with the last step changed (only that step runs), fails a build (exit 1
// with the step's output; the previous build stays what sandboxes start from), starts
// a sandbox from it, and checks another team neither sees nor starts it.
func TestTemplateBuildCLI(t *testing.T) {
	s := startServer(t, serverOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("app.py", "print('hello from the template')\n")
	write("notes.tmp", "left out by .dockerignore\n")
	write(".dockerignore", "*.tmp\nDockerfile\n")
	dockerfile := func(marker string) string {
		return "FROM base\nRUN mkdir -p /srv && echo built > /srv/first\nWORKDIR /srv\nCOPY . /srv/\nENV GREETING=hi\nRUN echo " + marker + " > /srv/marker\n"
	}
	build := func(wantCode int, name string, flags ...string) string {
		t.Helper()
		out, errOut, code := s.CLI(ctx, nil, append(append([]string{"template", "build", "--name", name}, flags...), dir)...)
		if code != wantCode {
			t.Fatalf("template build: exit %d, want %d\nstdout: %s\nstderr: %s", code, wantCode, out, errOut)
		}
		return out + errOut
	}

	write("Dockerfile", dockerfile("v1"))
	out := build(0, "e2e-app")
	if !strings.Contains(out, "template e2e-app is ready") || !strings.Contains(out, "5 steps") {
		t.Errorf("first build:\n%s", out)
	}
	write("Dockerfile", dockerfile("v2"))
	// Its sandboxes' default size comes with the build and changes no step's cache key.
	out = build(0, "e2e-app", "--cpu-cores", "0.5", "--memory-mb", "384")
	if !strings.Contains(out, "5 steps, 4 from cache") {
		t.Errorf("a rebuild with the last step changed should take the others from cache:\n%s", out)
	}
	write("Dockerfile", dockerfile("v3")+"RUN echo the step fails; exit 3\n")
	out = build(1, "e2e-app")
	if !strings.Contains(out, "exit code 3") || !strings.Contains(out, "the step fails") {
		t.Errorf("a failed build says the step, its exit code and its output:\n%s", out)
	}

	out, errOut, code := s.CLI(ctx, nil, "sandbox", "create", "--template", "e2e-app", "-o", "json")
	var sb sandboxJSON
	if code != 0 || json.Unmarshal([]byte(out), &sb) != nil || sb.ID == "" {
		t.Fatalf("sandbox create --template e2e-app: %d %s %s", code, out, errOut)
	}
	defer s.CLI(context.Background(), nil, "sandbox", "kill", sb.ID)
	var sized struct {
		Limits struct {
			CPUCores float64 `json:"cpu_cores"`
			MemoryMB int64   `json:"memory_mb"`
		} `json:"limits"`
	}
	if json.Unmarshal([]byte(out), &sized) != nil || sized.Limits.CPUCores != 0.5 || sized.Limits.MemoryMB != 384 {
		t.Errorf("a sandbox of a template built with --cpu-cores 0.5 --memory-mb 384 got %+v, want those limits", sized.Limits)
	}
	out, errOut, code = s.CLI(ctx, nil, "exec", sb.ID, "--", "python3 /srv/app.py; cat /srv/first /srv/marker; echo $GREETING; pwd; ls /srv")
	// .dockerignore left the Dockerfile and notes.tmp out of the context
	want := "hello from the template\nbuilt\nv2\nhi\n/srv\n" // its ENV and WORKDIR are the sandbox's defaults
	if code != 0 || !strings.HasPrefix(out, want) || strings.Contains(out, "notes.tmp") || strings.Contains(out, "Dockerfile") {
		t.Errorf("in a sandbox of the template (the last ready build, v2): %d %q %s", code, out, errOut)
	}
	if _, errOut, code := s.CLI(ctx, nil, "template", "delete", "e2e-app"); code == 0 || !strings.Contains(errOut, "kill them first") {
		t.Errorf("deleting a template a sandbox runs: %d %s", code, errOut)
	}

	// Another team: neither listed nor startable nor deletable.
	var team struct {
		ID string `json:"id"`
	}
	out, _, _ = s.CLI(ctx, nil, "teams", "create", "other team", "-o", "json")
	if err := json.Unmarshal([]byte(out), &team); err != nil || team.ID == "" {
		t.Fatalf("teams create: %s", out)
	}
	var key struct {
		Key string `json:"key"`
	}
	out, _, _ = s.CLI(ctx, nil, "keys", "create", "b", "--team", team.ID, "--scope", "sandboxes:read", "--scope", "sandboxes:write", "-o", "json")
	if err := json.Unmarshal([]byte(out), &key); err != nil || key.Key == "" {
		t.Fatalf("keys create: %s", out)
	}
	other := []string{"WARREN_API_KEY=" + key.Key}
	if out, _, code := s.CLIEnv(ctx, other, "template", "list"); code != 0 || strings.Contains(out, "e2e-app") {
		t.Errorf("the other team's list: %d\n%s", code, out)
	}
	if _, errOut, code := s.CLIEnv(ctx, other, "sandbox", "create", "--template", "e2e-app"); code == 0 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("the other team starting it: %d %s", code, errOut)
	}
	if _, errOut, code := s.CLIEnv(ctx, other, "template", "delete", "e2e-app"); code == 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("the other team deleting it: %d %s", code, errOut)
	}
	s.CLI(ctx, nil, "sandbox", "kill", sb.ID)
	if _, errOut, code := s.CLI(ctx, nil, "template", "delete", "e2e-app"); code != 0 {
		t.Errorf("deleting the template: %d %s", code, errOut)
	}
}
