package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBuiltTemplateSnapshot: a team's template built with a start command and a ready
// check is booted once after its build and saved once the check passes; its sandboxes
// are then restored from that snapshot (the server logs path=restore), with the build's
// files, the ready file and the start command's process, still counting, in place.
func TestBuiltTemplateSnapshot(t *testing.T) {
	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_TEMPLATE_SNAPSHOTS=1"}})
	// The start command counts seconds into a file; it is ready once /tmp/ready exists.
	start := "sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; [ $i -ge 3 ] && touch /tmp/ready; sleep 1; done'"
	var started struct {
		Build struct {
			ID string `json:"id"`
		} `json:"build"`
	}
	code, raw := s.API("POST", "/v1/templates", map[string]any{
		"name": "e2e-snap", "from_template": "base",
		"steps":     []map[string]any{{"type": "RUN", "args": []string{"echo built > /etc/e2e-snap"}}},
		"start_cmd": start, "ready": map[string]any{"file": "/tmp/ready", "timeout": 60},
	}, &started)
	if code != 202 && code != 201 {
		t.Fatalf("starting the build: %d %s", code, raw)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var b struct{ State, Reason string }
		if code, raw := s.API("GET", "/v1/templates/e2e-snap/builds/"+started.Build.ID, nil, &b); code != 200 {
			t.Fatalf("build status: %d %s", code, raw)
		}
		if b.State == "ready" {
			break
		}
		if b.State == "error" || time.Now().After(deadline) {
			t.Fatalf("build %s: %s %s", started.Build.ID, b.State, b.Reason)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The snapshot is made in the background (every 10 s the server looks for templates
	// without one).
	for !strings.Contains(s.Logs(), `msg="template snapshot ready" subsystem=sandbox template=e2e-snap`) {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot of e2e-snap; the server's log:\n%s", s.Logs())
		}
		time.Sleep(time.Second)
	}
	sb := s.Create(map[string]any{"template": "e2e-snap"})
	defer s.Kill(sb.ID)
	created := s.WaitLog(regexp.MustCompile(`msg="sandbox created" subsystem=sandbox sandbox_id=`+sb.ID+` .* path=(\w+)`), 10*time.Second)
	if created == nil || created[1] != "restore" {
		t.Errorf("the sandbox was not restored from the template's snapshot: %v", created)
	}
	r := s.Exec(sb.ID, "cat /etc/e2e-snap; test -e /tmp/ready && echo ready; cat /tmp/count")
	lines := strings.Fields(r.Stdout)
	if r.ExitCode != 0 || len(lines) != 3 || lines[0] != "built" || lines[1] != "ready" {
		t.Fatalf("the restored sandbox: %+v", r)
	}
	// The boot waited for the count to reach 3 before saving; the counter goes on from
	// there, and the process still runs ([t]rue: not the pgrep's own shell).
	if n, err := strconv.Atoi(lines[2]); err != nil || n < 3 {
		t.Errorf("the start command's counter is %s, want at least 3 (the snapshot was taken after the ready check)", lines[2])
	}
	if r := s.Exec(sb.ID, "pgrep -f 'while [t]rue' >/dev/null && echo running"); strings.TrimSpace(r.Stdout) != "running" {
		t.Errorf("the start command is not running in the restored sandbox: %+v", r)
	}
}
