package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCrashRecovery(t *testing.T) {
	s := startServer(t, serverOpts{})
	survivor := s.Create(map[string]any{"metadata": map[string]string{"role": "survivor"}})
	victim := s.Create(map[string]any{})
	if r := s.Exec(survivor.ID, "echo precious > /home/user/keep.txt"); r.ExitCode != 0 {
		t.Fatalf("write: %+v", r)
	}

	s.Crash() // SIGKILL: no cleanup, sandboxes keep running

	// While the server is down, one sandbox dies and a stray leftover appears.
	if out, err := exec.Command("runsc", "--root", filepath.Join(s.DataDir, "runsc"), "kill", victim.ID, "KILL").CombinedOutput(); err != nil {
		t.Fatalf("killing the victim's sandbox: %v %s", err, out)
	}
	orphan := "zzzzzzzzzzzzzzzzzzz0"
	if out, err := exec.Command("ip", "netns", "add", s.Net+"-"+orphan).CombinedOutput(); err != nil {
		t.Fatalf("making an orphan namespace: %v %s", err, out)
	}
	orphanDir := filepath.Join(s.DataDir, "sandboxes", orphan)
	if err := os.MkdirAll(orphanDir, 0o700); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)

	s.Start(nil)

	if r := s.Exec(survivor.ID, "cat /home/user/keep.txt"); r.Stdout != "precious\n" {
		t.Errorf("survivor after restart: %+v", r)
	}
	var got sandboxJSON
	s.API("GET", "/v1/sandboxes/"+victim.ID, nil, &got)
	if got.State != "stopped" || !strings.HasPrefix(got.EndReason, "lost") {
		t.Errorf("victim after restart: %+v", got)
	}
	if _, err := os.Stat("/var/run/netns/" + s.Net + "-" + orphan); !os.IsNotExist(err) {
		t.Errorf("orphan namespace still there (%v)", err)
	}
	if _, err := os.Stat(orphanDir); !os.IsNotExist(err) {
		t.Errorf("orphan directory still there (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(s.DataDir, "sandboxes", victim.ID)); !os.IsNotExist(err) {
		t.Errorf("victim's directory still there (%v)", err)
	}
	// A new sandbox gets a free address next to the survivor and works.
	fresh := s.Create(map[string]any{})
	if r := s.Exec(fresh.ID, "echo fresh"); r.Stdout != "fresh\n" {
		t.Errorf("new sandbox after restart: %+v", r)
	}
	// The survivor's timer was re-armed: setting a short timeout still ends it.
	s.API("POST", "/v1/sandboxes/"+survivor.ID+"/timeout", map[string]any{"timeout": 1}, nil)
	deadline := time.Now().Add(10 * time.Second)
	for got.State = ""; got.State != "stopped" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		s.API("GET", "/v1/sandboxes/"+survivor.ID, nil, &got)
	}
	if got.State != "stopped" {
		t.Errorf("survivor did not expire after restart: %+v", got)
	}
	s.Kill(fresh.ID)
}

// TestDeadSandboxIsNoticed: a sandbox that dies behind the server's back (here its
// runtime is killed from outside) is marked stopped by the next liveness sweep, not left
// "running" until its timeout.
func TestDeadSandboxIsNoticed(t *testing.T) {
	s := startServer(t, serverOpts{})
	sb := s.Create(map[string]any{"timeout": 600})
	if out, err := exec.Command("runsc", "--root", filepath.Join(s.DataDir, "runsc"), "kill", sb.ID, "KILL").CombinedOutput(); err != nil {
		t.Fatalf("killing the sandbox from outside: %v %s", err, out)
	}
	var got sandboxJSON
	deadline := time.Now().Add(20 * time.Second)
	for got.State != "stopped" && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		s.API("GET", "/v1/sandboxes/"+sb.ID, nil, &got)
	}
	if got.State != "stopped" || !strings.HasPrefix(got.EndReason, "lost") {
		t.Fatalf("sandbox killed from outside: %+v", got)
	}
}
