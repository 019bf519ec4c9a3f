package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelpAndUsageErrors(t *testing.T) {
	e := newTestEnv(t)
	r := e.ok("help")
	for _, verb := range []string{"sandbox create", "sandbox list", "sandbox pause", "sandbox fork", "snapshot create", "snapshot delete", "exec", "cp", "keys revoke", "templates", "WARREN_API_KEY"} {
		if !strings.Contains(r.stdout, verb) {
			t.Errorf("help lacks %q:\n%s", verb, r.stdout)
		}
	}
	var buf bytes.Buffer
	Usage(&buf)
	if !strings.Contains(r.stdout, buf.String()) {
		t.Error("help does not include Usage")
	}
	if r := e.ok("sandbox", "create", "--help"); !strings.Contains(r.stdout, "-memory-mb") {
		t.Errorf("create --help:\n%s", r.stdout)
	}
	if r := e.ok("exec", "--help"); !strings.Contains(r.stdout, "-cwd") {
		t.Errorf("exec --help:\n%s", r.stdout)
	}

	cases := []struct {
		args []string
		msg  string
	}{
		{nil, "Usage: warren"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"sandbox"}, "needs a subcommand"},
		{[]string{"sandbox", "explode"}, `subcommand "explode" is unknown`},
		{[]string{"sandbox", "get"}, "usage: warren sandbox get ID"},
		{[]string{"sandbox", "get", "a", "b"}, "usage: warren sandbox get ID"},
		{[]string{"sandbox", "create", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"sandbox", "create", "--env", "NOEQUALS"}, "is not KEY=VALUE"},
		{[]string{"sandbox", "create", "--timeout", "-5"}, "must not be negative"},
		{[]string{"sandbox", "timeout", "x", "soon"}, "SECONDS must be"},
		{[]string{"sandbox", "create", "--template", "base", "--snapshot", "warm"}, "--template and --snapshot exclude each other"},
		{[]string{"sandbox", "create", "--on-timeout", "sleep"}, `--on-timeout "sleep": use kill or pause`},
		{[]string{"sandbox", "pause"}, "usage: warren sandbox pause ID"},
		{[]string{"sandbox", "resume", "a", "b"}, "usage: warren sandbox resume ID"},
		{[]string{"sandbox", "resume", "x", "--timeout", "-3"}, "must not be negative"},
		{[]string{"sandbox", "fork", "x", "--count", "0"}, "--count must be between 1 and 20; got 0"},
		{[]string{"sandbox", "fork", "x", "--count", "21"}, "--count must be between 1 and 20; got 21"},
		{[]string{"sandbox", "fork", "x", "--timeout", "-1"}, "must not be negative"},
		{[]string{"snapshot"}, `"snapshot" needs a subcommand: snapshot create, snapshot list, snapshot get, snapshot delete`},
		{[]string{"snapshot", "create"}, "usage: warren snapshot create SANDBOX_ID"},
		{[]string{"snapshot", "delete"}, "usage: warren snapshot delete ID|NAME"},
		{[]string{"snapshot", "list", "extra"}, "usage: warren snapshot list"},
		{[]string{"templates", "-o", "yaml"}, "the formats are json and table"},
		{[]string{"exec", "abcdefghij0123456789"}, "usage: warren exec"},
		{[]string{"cp", "a", "b"}, "one of SRC and DST must be a sandbox path"},
		{[]string{"cp", "x:/a", "y:/b"}, "between two sandboxes"},
		{[]string{"--api-url", "ftp://nope", "templates"}, "must look like http://host:port"},
	}
	for _, c := range cases {
		r := e.run(c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("warren %v: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, c.msg)
		}
	}
}

func TestHandles(t *testing.T) {
	for verb, want := range map[string]bool{"sandbox": true, "snapshot": true, "exec": true, "cp": true, "keys": true, "templates": true, "help": true, "serve": false, "doctor": false, "bench": false} {
		if Handles(verb) != want {
			t.Errorf("Handles(%q) = %v", verb, !want)
		}
	}
}

func TestMissingAndBadKey(t *testing.T) {
	e := newTestEnv(t)
	delete(e.vars, "WARREN_API_KEY")
	r := e.run("sandbox", "list")
	if r.code != 2 || !strings.Contains(r.stderr, "WARREN_API_KEY") || !strings.Contains(r.stderr, "/var/lib/warren/admin.key") {
		t.Errorf("missing key: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("--api-key", "sk_wrong", "sandbox", "list")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: invalid API key (request req_") || !strings.Contains(r.stderr, "admin.key") {
		t.Errorf("bad key: exit %d, stderr %q", r.code, r.stderr)
	}
	// Flags win over the environment, before or after the verb.
	e.vars["WARREN_API_KEY"] = "sk_wrong"
	e.ok("templates", "--api-key", keyA)
	e.vars["WARREN_API_URL"] = "http://127.0.0.1:1"
	e.ok("--api-url", e.url, "templates", "--api-key", keyA)
}

func TestTemplates(t *testing.T) {
	e := newTestEnv(t)
	r := e.ok("templates")
	if !strings.Contains(r.stdout, "ID") || !strings.Contains(r.stdout, "700.0 MiB") || !strings.Contains(r.stdout, "Python data stack") {
		t.Errorf("templates table:\n%s", r.stdout)
	}
	ts := decode[[]map[string]any](t, e.ok("templates", "-o", "json").stdout)
	if len(ts) != 2 || ts[0]["id"] != "base" || ts[0]["ready"] != true {
		t.Errorf("templates json: %v", ts)
	}
}

func TestKeys(t *testing.T) {
	e := newTestEnv(t)
	k := decode[map[string]any](t, e.ok("keys", "create", "--name", "ci", "-o", "json").stdout)
	secret, _ := k["key"].(string)
	id, _ := k["id"].(string)
	if !strings.HasPrefix(secret, "sk_") || k["name"] != "ci" || id == "" {
		t.Fatalf("keys create -o json: %v", k)
	}
	// The new key works.
	e.ok("templates", "--api-key", secret)

	r := e.ok("keys", "create")
	if !strings.Contains(r.stdout, "sk_") || !strings.Contains(r.stderr, "only time the key is shown") {
		t.Errorf("keys create table: %q %q", r.stdout, r.stderr)
	}
	r = e.ok("keys", "list")
	if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "LAST USED") || strings.Contains(r.stdout, secret) {
		t.Errorf("keys list:\n%s", r.stdout)
	}
	if r := e.ok("keys", "revoke", id); r.stdout != "revoked "+id+"\n" {
		t.Errorf("keys revoke: %q", r.stdout)
	}
	for _, key := range decode[[]map[string]any](t, e.ok("keys", "list", "-o", "json").stdout) {
		if key["id"] == id && key["revoked_at"] == nil {
			t.Errorf("revoked key has no revoked_at: %v", key)
		}
	}
	if r := e.run("templates", "--api-key", secret); r.code != 1 {
		t.Errorf("revoked key still works: %+v", r)
	}
	if r := e.run("keys", "revoke", "key_nope"); r.code != 1 || !strings.Contains(r.stderr, `error: API key "key_nope" not found (request `) {
		t.Errorf("revoke unknown: %+v", r)
	}
	if r := decode[map[string]any](t, e.ok("keys", "revoke", "key_b", "--api-key", keyB, "-o", "json").stdout); r["revoked"] != true {
		t.Errorf("revoke -o json: %v", r)
	}
}
