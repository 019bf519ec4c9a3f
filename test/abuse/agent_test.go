package abuse

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/test/internal/harness"
)

// The sandbox's own agent (PID 1, warren-agent) as a target from inside: its access
// token is what lets the server, and only the server, run commands in the sandbox.
func init() {
	register(
		probe{name: "escape/agent-token", run: probeAgentToken},
		probe{name: "escape/agent-init", run: probeAgentInit},
	)
}

// agentSnoop looks for the agent's config everywhere a process of the sandbox could:
// PID 1's environment, command line and memory, the config file and any copy of it,
// every process's environment, and its own.
const agentSnoop = `echo "cmdline=$(tr '\0' ' ' < /proc/1/cmdline)"
cat /proc/1/environ 2>&1 | tr '\0' '\n'
ls -la /.warren/ 2>&1
cat ` + runtime.AgentConfigPath + ` 2>&1
find / -xdev -name 'agent.json' 2>/dev/null
for f in /proc/[0-9]*/environ; do tr '\0' '\n' < "$f" 2>/dev/null; done
ps e -A -ww 2>&1 | head -c 100000
env
python3 - <<'PYEOF'
import re
try:
    maps = open("/proc/1/maps").read()
    mem = open("/proc/1/mem", "rb")
    n = 0
    for line in maps.splitlines():
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) r", line)
        if not m:
            continue
        lo, hi = int(m.group(1), 16), int(m.group(2), 16)
        if hi - lo > 1 << 30:
            continue
        try:
            mem.seek(lo)
            b = mem.read(hi - lo)
        except OSError:
            continue
        n += len(b)
        for tok in re.findall(rb"[A-Za-z0-9_-]{20,}", b):
            print("mem:" + tok.decode())
    print("pid1_mem=read %d bytes" % n)
except OSError as e:
    print("pid1_mem=" + (e.strerror or str(e)))
PYEOF
echo snoop=done`

func probeAgentToken(t *testing.T, e *env) string {
	// The token used to be in PID 1's environment (WARREN_AGENT_CONFIG), which root, and
	// on some runtimes any user, could read in /proc/1/environ. Now the node leaves the
	// config in a file the agent reads and removes before anything else runs, and the
	// agent holds a capability no other process has, so its memory stays out of reach.
	id := e.Fresh(t, nil)
	token, _ := e.envdToken(t, e.S.Key, id)
	if len(token) < 16 {
		t.Fatalf("no access token for the sandbox: %q", token)
	}
	var outcome []string
	for _, user := range []string{"user", "root"} {
		var r harness.ExecJSON
		code, raw := e.S.API("POST", "/v1/sandboxes/"+id+"/commands", map[string]any{"cmd": agentSnoop, "user": user, "timeout": 120}, &r)
		if code != 200 {
			t.Fatalf("snoop as %s: %d %s", user, code, raw)
		}
		out := r.Stdout + r.Stderr
		res := sysResults(r.Stdout)
		if res["snoop"] != "done" || !strings.Contains(res["cmdline"], runtime.AgentMountPath) {
			t.Fatalf("the snoop as %s did not run to its end: %+v", user, r)
		}
		if strings.Contains(out, token) {
			t.Errorf("as %s, the sandbox's access token was found:\n%s", user, grepLines(out, token))
		}
		if strings.Contains(out, "WARREN_AGENT_CONFIG") || strings.Contains(out, `"access_token"`) {
			t.Errorf("as %s, the agent's config was found:\n%s", user, grepLines(out, "access_token", "WARREN_AGENT_CONFIG"))
		}
		outcome = append(outcome, fmt.Sprintf("%s: PID 1 memory %s", user, res["pid1_mem"]))
	}
	// The agent is the only process holding CAP_SYS_RESOURCE (oci.AgentCap): no root
	// process has it, whichever of the agent's threads forked it (capabilities belong to
	// each thread, so the agent drops it on all of them).
	for i := 0; i < 10; i++ {
		r := rootExec(t, e, id, `grep -E '^Cap(Prm|Bnd)' /proc/self/status`, 20)
		for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
			_, v, _ := strings.Cut(line, ":")
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil || caps&(1<<24) != 0 {
				t.Fatalf("a root process holds CAP_SYS_RESOURCE or its caps are unreadable: %q", r.Stdout)
			}
		}
	}
	// The agent dropped it from the bounding, inheritable and ambient sets of every one
	// of its threads (a child forked by any thread inherits that thread's sets); the
	// agent does not walk its threads to check (it trusts AllThreadsSyscall), this does.
	r := rootExec(t, e, id, `for f in /proc/1/task/*/status; do echo "thread $f"; grep -E '^Cap(Inh|Bnd|Amb):' "$f"; done`, 20)
	threads, bounding := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if strings.HasPrefix(line, "thread ") {
			threads++
			continue
		}
		name, v, _ := strings.Cut(line, ":")
		caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil || caps&(1<<24) != 0 {
			t.Errorf("a thread of the agent keeps CAP_SYS_RESOURCE in %s (or it is unreadable): %q\n%s", name, line, r.Stdout)
		}
		if name == "CapBnd" {
			bounding++
		}
	}
	if threads < 2 || bounding != threads {
		t.Errorf("read the sets of %d threads of the agent (%d bounding sets), want 2 or more, each with one:\n%s%s", threads, bounding, r.Stdout, r.Stderr)
	}
	// Nor on the host, in the sandbox's writable layer.
	left := filepath.Join(e.S.DataDir, "sandboxes", id, "rootfs", runtime.AgentConfigPath)
	if _, err := os.Lstat(left); err == nil {
		t.Errorf("the agent's config file is still in the sandbox's root filesystem: %s", left)
	}
	return "token nowhere in /proc/1/{environ,cmdline}, " + runtime.AgentConfigPath + ", any environ, ps e (" + strings.Join(outcome, "; ") + "); no root process holds the agent's CAP_SYS_RESOURCE, and none of the agent's " + strconv.Itoa(threads) + " threads can pass it on"
}

// grepLines returns the lines of out containing any of words, for a failure message.
func grepLines(out string, words ...string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				b.WriteString(l + "\n")
				break
			}
		}
	}
	return b.String()
}

// initAttack calls the agent's POST /init from inside the sandbox without the token, with
// a wrong one, and with an attacker's token only in the body, then tries the attacker's
// token on /envs.
const initAttack = `python3 - <<'PYEOF'
import json, urllib.request, urllib.error
def call(method, path, hdrs, body=None):
    h = {"Content-Type": "application/json"}
    h.update(hdrs)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://127.0.0.1:49983" + path, data=data, headers=h, method=method)
    try:
        return urllib.request.urlopen(req, timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception as e:
        return "error:" + type(e).__name__
evil = {"accessToken": "attacker-token-0123456789", "envVars": {"PWNED": "1"}, "defaultUser": "root"}
print("init_no_token=%s" % call("POST", "/init", {}, evil))
print("init_wrong_token=%s" % call("POST", "/init", {"X-Access-Token": "wrong-token"}, evil))
print("init_token_as_new=%s" % call("POST", "/init", {"X-Access-Token": "attacker-token-0123456789"}, evil))
print("envs_attacker_token=%s" % call("GET", "/envs", {"X-Access-Token": "attacker-token-0123456789"}))
PYEOF`

func probeAgentInit(t *testing.T, e *env) string {
	// POST /init replaces the agent's token, env and default user. It used to be open,
	// so any process in the sandbox (or anyone reaching port 49983) could take the agent
	// over and lock the server out. Now it needs the current token.
	id := e.Fresh(t, nil)
	names := []string{"init_no_token", "init_wrong_token", "init_token_as_new", "envs_attacker_token"}
	for _, user := range []string{"user", "root"} {
		var r harness.ExecJSON
		code, raw := e.S.API("POST", "/v1/sandboxes/"+id+"/commands", map[string]any{"cmd": initAttack, "user": user, "timeout": 60}, &r)
		if code != 200 {
			t.Fatalf("the attack as %s: %d %s", user, code, raw)
		}
		res := sysResults(r.Stdout)
		for _, n := range names {
			if res[n] != "401" {
				t.Errorf("as %s, %s answered %q, want 401 (%+v)", user, n, res[n], r)
			}
		}
	}
	// The server still holds the sandbox: its token works and nothing was changed.
	var r harness.ExecJSON
	code, raw := e.S.API("POST", "/v1/sandboxes/"+id+"/commands", map[string]any{"cmd": `echo "pwned=[$PWNED] whoami=$(whoami)"`, "timeout": 20}, &r)
	if code != 200 || !strings.Contains(r.Stdout, "pwned=[] whoami=user") {
		t.Errorf("after the attack, the server's command answered %d %s (want pwned=[] whoami=user)", code, raw)
	}
	return "POST /init without, with a wrong or with the attacker's own token: 401 as user and root; the server still runs commands, env and default user unchanged"
}
