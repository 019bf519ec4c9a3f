package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLI drives the warren binary as a user would: create, exec, cp both ways, keys,
// pause and resume, fork, snapshots, kill.
func TestCLI(t *testing.T) {
	s := startServer(t, serverOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	out, errOut, code := s.CLI(ctx, nil, "sandbox", "create", "--template", "base", "--metadata", "via=cli", "-o", "json")
	var sb sandboxJSON
	if code != 0 || json.Unmarshal([]byte(out), &sb) != nil || sb.ID == "" {
		t.Fatalf("sandbox create: code %d out %q err %q", code, out, errOut)
	}

	t.Run("exec prints and propagates exit codes", func(t *testing.T) {
		out, errOut, code := s.CLI(ctx, nil, "exec", sb.ID, "--", "python3", "-c", "print(6*7)")
		if code != 0 || out != "42\n" {
			t.Errorf("exec python: code %d out %q err %q", code, out, errOut)
		}
		_, _, code = s.CLI(ctx, nil, "exec", sb.ID, "--", "sh -c 'echo to-stderr >&2; exit 7'")
		if code != 7 {
			t.Errorf("exit code %d, want 7", code)
		}
		out, _, code = s.CLI(ctx, nil, "exec", "-o", "json", sb.ID, "--", "echo json")
		var r execJSON
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Stdout != "json\n" {
			t.Errorf("exec -o json: code %d out %q", code, out)
		}
	})

	t.Run("cp round-trips 10 MB byte-identical", func(t *testing.T) {
		dir := t.TempDir()
		data := make([]byte, 10<<20)
		rand.Read(data)
		src, back := filepath.Join(dir, "src.bin"), filepath.Join(dir, "back.bin")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, errOut, code := s.CLI(ctx, nil, "cp", src, sb.ID+":/home/user/big.bin"); code != 0 {
			t.Fatalf("cp up: %d %s", code, errOut)
		}
		if _, errOut, code := s.CLI(ctx, nil, "cp", sb.ID+":/home/user/big.bin", back); code != 0 {
			t.Fatalf("cp down: %d %s", code, errOut)
		}
		got, _ := os.ReadFile(back)
		if !bytes.Equal(got, data) {
			t.Fatalf("round trip differs: %d bytes back, want %d", len(got), len(data))
		}
		out, _, _ := s.CLI(ctx, nil, "exec", sb.ID, "--", "stat -c '%s %U' /home/user/big.bin")
		if out != "10485760 user\n" {
			t.Errorf("in the sandbox: %q", out)
		}
	})

	t.Run("list and get", func(t *testing.T) {
		out, _, code := s.CLI(ctx, nil, "sandbox", "list", "--metadata", "via=cli", "-o", "json")
		if code != 0 || !strings.Contains(out, sb.ID) {
			t.Errorf("list: %d %q", code, out)
		}
		out, _, code = s.CLI(ctx, nil, "sandbox", "get", sb.ID)
		if code != 0 || !strings.Contains(out, "running") {
			t.Errorf("get: %d %q", code, out)
		}
	})

	t.Run("keys", func(t *testing.T) {
		out, errOut, code := s.CLI(ctx, nil, "keys", "create", "--name", "ci", "-o", "json")
		var k struct{ ID, Key string }
		if code != 0 || json.Unmarshal([]byte(out), &k) != nil || !strings.HasPrefix(k.Key, "sk_") {
			t.Fatalf("keys create: %d %q %q", code, out, errOut)
		}
		// The new key works, then stops working once revoked.
		if code, _ := s.APIKey(k.Key, "GET", "/v1/sandboxes", nil, nil); code != 200 {
			t.Errorf("new key: %d", code)
		}
		if out, _, code := s.CLI(ctx, nil, "keys", "list"); code != 0 || !strings.Contains(out, "ci") {
			t.Errorf("keys list: %d %q", code, out)
		}
		if _, errOut, code := s.CLI(ctx, nil, "keys", "revoke", k.ID); code != 0 {
			t.Errorf("keys revoke: %d %s", code, errOut)
		}
		if code, _ := s.APIKey(k.Key, "GET", "/v1/sandboxes", nil, nil); code != 401 {
			t.Errorf("revoked key: %d, want 401", code)
		}
	})

	t.Run("pause, resume, fork and snapshots", func(t *testing.T) {
		cli := func(args ...string) string {
			t.Helper()
			out, errOut, code := s.CLI(ctx, nil, args...)
			if code != 0 {
				t.Fatalf("warren %s: code %d, stderr %q", strings.Join(args, " "), code, errOut)
			}
			return out
		}
		cat := func(id string) string {
			t.Helper()
			return cli("exec", id, "--", "cat /home/user/kept.txt")
		}
		cli("exec", sb.ID, "--", "echo kept > /home/user/kept.txt")
		if out := cli("sandbox", "pause", sb.ID); out != "paused "+sb.ID+"\n" {
			t.Errorf("pause: %q", out)
		}
		if _, errOut, code := s.CLI(ctx, nil, "sandbox", "pause", sb.ID); code != 1 || !strings.HasPrefix(errOut, "error: ") || !strings.Contains(errOut, "(request ") {
			t.Errorf("second pause: code %d, stderr %q", code, errOut)
		}
		if out := cli("sandbox", "list", "--state", "paused", "-o", "json"); !strings.Contains(out, sb.ID) {
			t.Errorf("list --state paused: %q", out)
		}
		cli("sandbox", "resume", sb.ID)
		if got := cat(sb.ID); got != "kept\n" {
			t.Errorf("file after resume: %q", got)
		}

		var forks []sandboxJSON
		if err := json.Unmarshal([]byte(cli("sandbox", "fork", sb.ID, "--count", "2", "-o", "json")), &forks); err != nil || len(forks) != 2 {
			t.Fatalf("fork --count 2: %v %+v", err, forks)
		}
		for _, f := range forks {
			if got := cat(f.ID); got != "kept\n" || f.ID == sb.ID {
				t.Errorf("fork %s: file %q", f.ID, got)
			}
			cli("sandbox", "kill", f.ID)
		}

		name := fmt.Sprintf("cli-%d", time.Now().UnixNano())
		var snap struct {
			ID        string `json:"id"`
			Name      string `json:"name"`
			SandboxID string `json:"sandbox_id"`
		}
		if err := json.Unmarshal([]byte(cli("snapshot", "create", sb.ID, "--name", name, "-o", "json")), &snap); err != nil || snap.Name != name || snap.SandboxID != sb.ID {
			t.Fatalf("snapshot create: %v %+v", err, snap)
		}
		var from sandboxJSON
		if err := json.Unmarshal([]byte(cli("sandbox", "create", "--snapshot", name, "-o", "json")), &from); err != nil || from.ID == "" {
			t.Fatalf("sandbox create --snapshot: %v", err)
		}
		if got := cat(from.ID); got != "kept\n" {
			t.Errorf("sandbox from the snapshot: file %q", got)
		}
		cli("sandbox", "kill", from.ID)
		if out := cli("snapshot", "list", "--sandbox", sb.ID); !strings.Contains(out, snap.ID) || !strings.Contains(out, name) {
			t.Errorf("snapshot list --sandbox:\n%s", out)
		}
		if out := cli("snapshot", "delete", name); out != "deleted snapshot "+name+"\n" {
			t.Errorf("snapshot delete: %q", out)
		}
		if _, errOut, code := s.CLI(ctx, nil, "snapshot", "get", name); code != 1 || !strings.Contains(errOut, "not found") {
			t.Errorf("get a deleted snapshot: code %d, stderr %q", code, errOut)
		}
	})

	t.Run("kill leaves nothing behind", func(t *testing.T) {
		if _, errOut, code := s.CLI(ctx, nil, "sandbox", "kill", sb.ID); code != 0 {
			t.Fatalf("kill: %d %s", code, errOut)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			_, err1 := os.Stat(filepath.Join(s.DataDir, "sandboxes", sb.ID))
			_, err2 := os.Stat("/var/run/netns/" + s.Net + "-" + sb.ID)
			if os.IsNotExist(err1) && os.IsNotExist(err2) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sandbox directory or namespace still there 20 s after kill")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if m, _ := filepath.Glob("/sys/fs/cgroup/*/" + s.Net + "/" + sb.ID); len(m) > 0 {
			t.Errorf("cgroups left: %v", m)
		}
		if _, _, code := s.CLI(ctx, nil, "exec", sb.ID, "--", "true"); code == 0 {
			t.Errorf("exec in a killed sandbox succeeded")
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		if _, errOut, code := s.CLI(ctx, nil, "sandbox", "get"); code != 2 || errOut == "" {
			t.Errorf("missing id: code %d err %q", code, errOut)
		}
		cmdNoKey := func() (string, int) {
			_, e, c := s.CLIEnv(ctx, []string{"WARREN_API_KEY="}, "sandbox", "list")
			return e, c
		}
		if e, c := cmdNoKey(); c == 0 || !strings.Contains(e, "admin.key") {
			t.Errorf("no key: code %d err %q", c, e)
		}
	})
}
