package abuse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/test/internal/harness"
)

// maxBufferedOutput is what the server keeps of each stream of a command that is not
// streamed (agentclient.MaxBufferedOutput).
const maxBufferedOutput = 16 << 20

// floodRSSBoundKB is how much a flood of output may grow the server's RSS.
const floodRSSBoundKB = 100 << 10

func init() {
	register(
		probe{name: "resources/output-flood", run: outputFlood},
		probe{name: "api/tenant-asks-disabled-runtime", runtimes: []string{"gvisor"}, run: disabledRuntime},
		probe{name: "api/team-restricted-runtime", runtimes: []string{"gvisor"}, run: restrictedRuntime},
	)
}

// outputFlood: a command printing 256 MiB (16 times what is kept, more than twice the
// RSS bound, so an unbounded server fails it), not streamed, answers with the first
// 16 MiB and truncated=true; streamed and abandoned by its client after 64 MiB, it
// leaves nothing held. Either way the server's RSS stays within ~100 MiB of before.
// (2 GiB proves no more and takes minutes on gVisor, whose output runs at ~10 MB/s.)
func outputFlood(t *testing.T, e *env) string {
	id := e.Sandbox()
	pid := e.S.Pid()
	before := rssKB(pid)

	var res struct {
		ExitCode  int    `json:"exit_code"`
		Stdout    string `json:"stdout"`
		TimedOut  bool   `json:"timed_out"`
		Truncated bool   `json:"truncated"`
	}
	// gVisor moves this output at some MB/s on a busy host: the command may run for
	// minutes, and a timeout (a result, exit -1) is as good an end for this probe.
	start := time.Now()
	code, raw := e.S.API("POST", "/v1/sandboxes/"+id+"/commands", map[string]any{"cmd": "head -c 256M /dev/zero", "timeout": 600}, &res)
	took := time.Since(start).Round(100 * time.Millisecond)
	if code != 200 {
		t.Fatalf("non-streamed flood: %d %.300s", code, raw)
	}
	if !res.Truncated || len(res.Stdout) != maxBufferedOutput || (res.ExitCode != 0 && !res.TimedOut) {
		t.Errorf("non-streamed flood: exit %d (timed out %v), %d bytes of stdout, truncated %v; want exit 0, %d bytes, truncated",
			res.ExitCode, res.TimedOut, len(res.Stdout), res.Truncated, maxBufferedOutput)
	}
	raw, res.Stdout = nil, ""
	afterBuffered := rssKB(pid)

	streamed := streamAndAbandon(t, e.S, id, "head -c 256M /dev/zero", 64<<20)
	afterStreamed := rssKB(pid)
	peak := hwmKB(pid)

	for what, kb := range map[string]int64{"the non-streamed flood": afterBuffered, "the streamed flood": afterStreamed} {
		if kb-before > floodRSSBoundKB {
			t.Errorf("server RSS grew from %d to %d MiB with %s (bound: +%d MiB)", before>>10, kb>>10, what, floodRSSBoundKB>>10)
		}
	}
	return fmt.Sprintf("256 MiB: 200 in %s with 16 MiB and truncated=true; streamed %d MiB then abandoned; server RSS %d → %d → %d MiB (peak %d MiB)",
		took, streamed>>20, before>>10, afterBuffered>>10, afterStreamed>>10, peak>>10)
}

// streamAndAbandon runs cmd as an SSE stream, reads limit bytes of it and hangs up;
// it returns how many bytes it read.
func streamAndAbandon(t *testing.T, s *harness.Server, id, cmd string, limit int64) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"cmd": cmd, "stream": true, "timeout": 600})
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/v1/sandboxes/"+id+"/commands", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("streamed flood: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		t.Fatalf("streamed flood: %d %s", resp.StatusCode, b)
	}
	n, err := io.CopyN(io.Discard, resp.Body, limit)
	if err != nil {
		t.Errorf("streamed flood: the stream ended after %d bytes: %v", n, err)
	}
	cancel() // hang up mid-stream
	// The server must still answer commands in the sandbox afterwards.
	if r := s.Exec(id, "echo alive"); r.Stdout != "alive\n" {
		t.Errorf("after the abandoned stream: %+v", r)
	}
	return n
}

// hwmKB reads a process's peak resident set size in KiB.
func hwmKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// apiError is the /v1 error body.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func decodeAPIError(raw []byte) apiError {
	var e apiError
	_ = json.Unmarshal(raw, &e)
	return e
}

// disabledRuntime: on a server that enables only gVisor (though runc runs on this
// host), a tenant asking for runc is refused with 400 naming the enabled runtimes.
func disabledRuntime(t *testing.T, e *env) string {
	s := harness.Start(t, harness.Opts{ExtraEnv: []string{"WARREN_RUNTIMES=gvisor"}})
	code, raw := s.API("POST", "/v1/sandboxes", map[string]any{"runtime": "runc"}, nil)
	want := "runtime runc is not enabled on this server; enabled: gvisor (the operator enables more with --runtimes)"
	if ae := decodeAPIError(raw); code != 400 || ae.Code != "invalid" || ae.Message != want {
		t.Fatalf("runc on a gvisor-only server: %d %s; want 400 invalid %q", code, raw, want)
	}
	var list struct {
		Sandboxes []json.RawMessage `json:"sandboxes"`
	}
	if s.API("GET", "/v1/sandboxes", nil, &list); len(list.Sandboxes) != 0 {
		t.Errorf("the refused create left %d sandboxes", len(list.Sandboxes))
	}
	return "400 invalid: runc is not enabled on this server; enabled: gvisor"
}

// restrictedRuntime: a team that platform admins limited to gVisor asks for runc and
// gets 403; its own owner key cannot lift the limit.
func restrictedRuntime(t *testing.T, e *env) string {
	var team struct {
		ID              string   `json:"id"`
		AllowedRuntimes []string `json:"allowed_runtimes"`
	}
	if code, raw := e.S.API("POST", "/v1/teams", map[string]any{"name": "probe gvisor only", "allowed_runtimes": []string{"gvisor"}}, &team); code != 201 {
		t.Fatalf("creating the team: %d %s", code, raw)
	}
	var k struct {
		Key string `json:"key"`
	}
	if code, raw := e.S.API("POST", "/v1/keys", map[string]any{"name": "probe", "team_id": team.ID}, &k); code != 201 {
		t.Fatalf("creating the team's key: %d %s", code, raw)
	}
	code, raw := e.S.APIKey(k.Key, "POST", "/v1/sandboxes", map[string]any{"runtime": "runc"}, nil)
	if ae := decodeAPIError(raw); code != 403 || ae.Code != "forbidden" || !strings.Contains(ae.Message, "may not use runtime runc") {
		t.Fatalf("runc for a team limited to gvisor: %d %s; want 403 forbidden naming the reason", code, raw)
	}
	code, raw = e.S.APIKey(k.Key, "PATCH", "/v1/teams/"+team.ID, map[string]any{"allowed_runtimes": []string{}}, nil)
	if ae := decodeAPIError(raw); code != 403 || ae.Code != "forbidden" {
		t.Errorf("the team's own key lifting allowed_runtimes: %d %s; want 403", code, raw)
	}
	team.AllowedRuntimes = nil
	if e.S.API("GET", "/v1/teams/"+team.ID, nil, &team); !reflect.DeepEqual(team.AllowedRuntimes, []string{"gvisor"}) {
		t.Errorf("after the refused PATCH the team allows %v, want [gvisor]", team.AllowedRuntimes)
	}
	return "403 forbidden: team may not use runtime runc; its own key's PATCH is 403"
}
