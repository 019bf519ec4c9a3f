package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCrashDuringFork: the server is killed (SIGKILL) while a fork of 4 is starting its
// copies. After the restart the fork's own snapshot is gone, every copy the server had
// recorded as running is re-attached and works, every other copy's row is ended with
// nothing of it left on the node, and the parent runs on; the harness's leak check at
// the end proves the rest.
func TestCrashDuringFork(t *testing.T) {
	s := startServer(t, serverOpts{})
	parent := s.Create(map[string]any{"timeout": 600})
	if r := s.Exec(parent.ID, "echo parent > /home/user/p"); r.ExitCode != 0 {
		t.Fatalf("write: %+v", r)
	}
	// The fork's request dies with the server: send it without the harness's helpers,
	// which fail the test on a broken connection.
	go func() {
		req, _ := http.NewRequest("POST", s.URL+"/v1/sandboxes/"+parent.ID+"/fork", bytes.NewReader([]byte(`{"count":4}`)))
		req.Header.Set("Authorization", "Bearer "+s.Key)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	forkDirs := func() []string {
		m, _ := filepath.Glob(filepath.Join(s.DataDir, "snapshots", "fork-*"))
		return m
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(forkDirs()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the fork's snapshot did not appear in 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // copies are being restored
	s.Crash()
	if len(forkDirs()) == 0 {
		t.Log("the fork finished before the crash; the restart still checks its copies")
	}
	s.Start(nil)

	if d := forkDirs(); len(d) != 0 {
		t.Errorf("the fork's snapshot is still there after the restart: %v", d)
	}
	var list struct {
		Sandboxes []sandboxJSON `json:"sandboxes"`
	}
	s.API("GET", "/v1/sandboxes?limit=100", nil, &list)
	var running []string
	for _, sb := range list.Sandboxes {
		if sb.ID == parent.ID {
			continue
		}
		dir := filepath.Join(s.DataDir, "sandboxes", sb.ID)
		switch sb.State {
		case "running":
			running = append(running, sb.ID)
			if r := s.Exec(sb.ID, "cat /home/user/p; hostname"); r.Stdout != "parent\n"+sb.ID+"\n" {
				t.Errorf("copy %s re-attached after the restart: %+v", sb.ID, r)
			}
		case "stopped", "error":
			deadline := time.Now().Add(30 * time.Second)
			for {
				if _, err := os.Stat(dir); os.IsNotExist(err) {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("copy %s is %s but its directory is still on the node", sb.ID, sb.State)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		default:
			t.Errorf("copy %s is %s after the restart", sb.ID, sb.State)
		}
	}
	t.Logf("after the crash: %d of the copies running", len(running))
	if r := s.Exec(parent.ID, "cat /home/user/p"); r.Stdout != "parent\n" {
		t.Errorf("the parent after the restart: %+v", r)
	}
	for _, id := range append(running, parent.ID) {
		s.Kill(id)
	}
	deadline = time.Now().Add(30 * time.Second)
	for len(s.sandboxDirs()) != 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := s.sandboxDirs(); len(left) != 0 {
		t.Errorf("sandbox directories left: %v", left)
	}
}
