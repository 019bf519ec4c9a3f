package cli

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestSandboxLifecycle(t *testing.T) {
	e := newTestEnv(t)
	id := e.createSandbox("--template", "python", "--timeout", "600", "--env", "TOKEN=s3cret", "--env", "A=1",
		"--metadata", "owner=alice", "--no-internet", "--cpu", "1.5", "--memory-mb", "512", "--disk-mb", "1024", "--max-processes", "64")
	no := false
	want := domain.CreateSandbox{
		TemplateID: "python", Timeout: 10 * time.Minute, Env: map[string]string{"TOKEN": "s3cret", "A": "1"},
		Metadata: map[string]string{"owner": "alice"}, Internet: &no,
		Limits: domain.Limits{CPUCores: 1.5, MemoryMB: 512, DiskMB: 1024, MaxProcesses: 64},
	}
	if !reflect.DeepEqual(e.svc.lastReq, want) {
		t.Errorf("service got %+v\nwant %+v", e.svc.lastReq, want)
	}

	sb := decode[map[string]any](t, e.ok("sandbox", "get", id, "-o", "json").stdout)
	if sb["id"] != id || sb["state"] != "running" || sb["internet"] != false || sb["template"] != "python" {
		t.Errorf("get -o json: %v", sb)
	}
	if keys := fmt.Sprint(sb["env_keys"]); keys != "[A TOKEN]" {
		t.Errorf("env_keys = %s", keys)
	}
	r := e.ok("sandbox", "get", id)
	for _, want := range []string{id, "python", "running", "internet    off", "owner=alice", "A,TOKEN", "memory 512 MiB"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("get table lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "s3cret") {
		t.Error("get shows an env value")
	}

	// Defaults: template base, internet on.
	id2 := e.createSandbox()
	if e.svc.lastReq.TemplateID != "base" || e.svc.lastReq.Internet != nil || e.svc.lastReq.Timeout != 0 {
		t.Errorf("defaults: %+v", e.svc.lastReq)
	}
	r = e.ok("sandbox", "create")
	if !strings.Contains(r.stdout, "state") || !strings.Contains(r.stderr, "warren exec") {
		t.Errorf("create table: %q / %q", r.stdout, r.stderr)
	}

	r = e.ok("sandbox", "list")
	if !strings.HasPrefix(r.stdout, "ID") || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, id2) {
		t.Errorf("list:\n%s", r.stdout)
	}
	list := decode[[]map[string]any](t, e.ok("sandbox", "list", "--metadata", "owner=alice", "-o", "json").stdout)
	if len(list) != 1 || list[0]["id"] != id {
		t.Errorf("list --metadata: %v", list)
	}

	if r := e.ok("sandbox", "timeout", id, "120"); !strings.Contains(r.stdout, "now ends at") {
		t.Errorf("timeout: %q", r.stdout)
	}
	if sb := decode[map[string]any](t, e.ok("sandbox", "timeout", id, "60", "-o", "json").stdout); sb["ends_at"] == nil {
		t.Errorf("timeout -o json: %v", sb)
	}

	if r := e.ok("sandbox", "kill", id); r.stdout != "killed "+id+"\n" {
		t.Errorf("kill: %q", r.stdout)
	}
	if r := e.run("sandbox", "kill", id); r.code != 1 || !strings.Contains(r.stderr, "already stopped (request req_") {
		t.Errorf("kill twice: %+v", r)
	}
	if k := decode[map[string]any](t, e.ok("sandbox", "kill", id2, "-o", "json").stdout); k["killed"] != true || k["id"] != id2 {
		t.Errorf("kill -o json: %v", k)
	}
	stopped := decode[[]map[string]any](t, e.ok("sandbox", "list", "--state", "stopped", "-o", "json").stdout)
	if len(stopped) != 2 || stopped[0]["end_reason"] != "killed" {
		t.Errorf("list --state stopped: %v", stopped)
	}
	if r := e.run("sandbox", "list", "--state", "sleeping"); r.code != 1 || !strings.Contains(r.stderr, `unknown state "sleeping"`) {
		t.Errorf("bad state: %+v", r)
	}
}

func TestSandboxOtherTeamAndErrors(t *testing.T) {
	e := newTestEnv(t)
	id := e.createSandbox()
	for _, args := range [][]string{
		{"sandbox", "get", id}, {"sandbox", "kill", id}, {"sandbox", "timeout", id, "10"},
		{"exec", id, "--", "echo hi"}, {"cp", id + ":/etc/passwd", "-"},
	} {
		r := e.run(append([]string{"--api-key", keyB}, args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, fmt.Sprintf("error: sandbox %q not found (request req_", id)) {
			t.Errorf("%v as team b: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if r := e.run("sandbox", "create", "--template", "nope"); r.code != 1 || !strings.Contains(r.stderr, `template "nope" not found`) {
		t.Errorf("unknown template: %+v", r)
	}
	if r := e.run("sandbox", "create", "--timeout", "100000"); r.code != 1 || !strings.Contains(r.stderr, "at most 86400") {
		t.Errorf("long timeout: %+v", r)
	}
}

func TestSandboxListPages(t *testing.T) {
	e := newTestEnv(t)
	for range 130 {
		e.createSandbox()
	}
	if all := decode[[]map[string]any](t, e.ok("sandbox", "list", "-o", "json").stdout); len(all) != 130 {
		t.Errorf("list returned %d sandboxes, want 130 (paging)", len(all))
	}
	if some := decode[[]map[string]any](t, e.ok("sandbox", "list", "--limit", "7", "-o", "json").stdout); len(some) != 7 {
		t.Errorf("--limit 7 returned %d", len(some))
	}
	if none := e.ok("sandbox", "list", "--state", "error", "-o", "json").stdout; strings.TrimSpace(none) != "[]" {
		t.Errorf("empty list = %q, want []", none)
	}
}

func TestSandboxPauseResume(t *testing.T) {
	e := newTestEnv(t)
	id := e.createSandbox("--on-timeout", "pause", "--auto-resume")
	if lc := e.svc.lastReq.Lifecycle; lc.OnTimeout != "pause" || !lc.AutoResume {
		t.Errorf("lifecycle sent: %+v", lc)
	}
	e.createSandbox("--on-timeout", "kill")
	if lc := e.svc.lastReq.Lifecycle; lc.OnTimeout != "kill" || lc.AutoResume {
		t.Errorf("--on-timeout kill sent: %+v", lc)
	}

	r := e.ok("sandbox", "pause", id)
	if r.stdout != "paused "+id+"\n" || !strings.Contains(r.stderr, "warren sandbox resume "+id) {
		t.Errorf("pause: %+v", r)
	}
	if r := e.run("sandbox", "pause", id); r.code != 1 || !strings.Contains(r.stderr, "is paused, not running: only a running sandbox can be paused (request req_") {
		t.Errorf("pause twice: %+v", r)
	}
	paused := decode[[]map[string]any](t, e.ok("sandbox", "list", "--state", "paused", "-o", "json").stdout)
	if len(paused) != 1 || paused[0]["id"] != id || paused[0]["paused_at"] == nil {
		t.Errorf("list --state paused: %v", paused)
	}
	if r := e.ok("sandbox", "get", id); !strings.Contains(r.stdout, "paused") || !strings.Contains(r.stdout, "pause (auto-resume)") {
		t.Errorf("get of a paused sandbox:\n%s", r.stdout)
	}

	if r := e.ok("sandbox", "resume", id, "--timeout", "90"); !strings.HasPrefix(r.stdout, "resumed "+id+", ends at ") || e.svc.lastResume != 90*time.Second {
		t.Errorf("resume: %+v (timeout %v)", r, e.svc.lastResume)
	}
	if r := e.run("sandbox", "resume", id); r.code != 1 || !strings.Contains(r.stderr, "not paused: there is nothing to resume") {
		t.Errorf("resume a running sandbox: %+v", r)
	}
	if sb := decode[map[string]any](t, e.ok("sandbox", "pause", id, "-o", "json").stdout); sb["state"] != "paused" {
		t.Errorf("pause -o json: %v", sb)
	}
	if sb := decode[map[string]any](t, e.ok("sandbox", "resume", id, "-o", "json").stdout); sb["state"] != "running" || e.svc.lastResume != 0 {
		t.Errorf("resume -o json: %v", sb)
	}
	for _, verb := range []string{"pause", "resume"} {
		if r := e.run("--api-key", keyB, "sandbox", verb, id); r.code != 1 || !strings.Contains(r.stderr, "not found") {
			t.Errorf("%s as another team: %+v", verb, r)
		}
	}
}

func TestSandboxNetwork(t *testing.T) {
	e := newTestEnv(t)
	id := e.createSandbox("--deny-out", "0.0.0.0/0", "--allow-out", "198.18.0.7,api.example.com", "--allow-out", "*.pkg.dev")
	want := &domain.NetworkPolicy{AllowOut: []string{"198.18.0.7", "api.example.com", "*.pkg.dev"}, DenyOut: []string{"0.0.0.0/0"}}
	if !reflect.DeepEqual(e.svc.lastReq.Network, want) {
		t.Errorf("create sent network %+v, want %+v", e.svc.lastReq.Network, want)
	}
	if r := e.ok("sandbox", "get", id); !strings.Contains(r.stdout, "allow 198.18.0.7,api.example.com,*.pkg.dev; deny 0.0.0.0/0") {
		t.Errorf("get table lacks the network:\n%s", r.stdout)
	}
	if e.createSandbox(); e.svc.lastReq.Network != nil {
		t.Errorf("create without network flags sent %+v", e.svc.lastReq.Network)
	}

	if r := e.ok("sandbox", "network", id, "--allow-out", "198.18.0.9", "--deny-out", "0.0.0.0/0"); r.stdout != "sandbox "+id+" network: allow 198.18.0.9; deny 0.0.0.0/0\n" {
		t.Errorf("network: %q", r.stdout)
	}
	sb := decode[map[string]any](t, e.ok("sandbox", "network", id, "--clear", "-o", "json").stdout)
	if n, _ := sb["network"].(map[string]any); fmt.Sprint(n["allow_out"], n["deny_out"]) != "[] []" {
		t.Errorf("network --clear -o json: %v", sb)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"sandbox", "network", id}, "or --clear"},
		{[]string{"sandbox", "network", id, "--clear", "--deny-out", "0.0.0.0/0"}, "exclude each other"},
		{[]string{"sandbox", "network", id, "--allow-out", "fd00::1"}, "IPv6"},
		{[]string{"--api-key", keyB, "sandbox", "network", id, "--clear"}, "not found"},
	} {
		if r := e.run(tc.args...); r.code == 0 || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want an error saying %q", tc.args, r.code, r.stderr, tc.msg)
		}
	}
}
