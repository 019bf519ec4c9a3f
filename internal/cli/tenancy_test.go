package cli

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// patchJSON shows the fields a quota patch sets ("null" for no patch).
func patchJSON(p *domain.QuotaPatch) string {
	b, _ := json.Marshal(p)
	return string(b)
}

func TestTeamsVerbs(t *testing.T) {
	e, st := newTenancyEnv(t)
	tm := decode[map[string]any](t, e.ok("teams", "create", "acme", "--max-sandboxes", "3", "--rpm", "100", "--plan", "pro", "--spend-limit", "50", "-o", "json").stdout)
	id, _ := tm["id"].(string)
	q, _ := tm["quota"].(map[string]any)
	if id == "" || tm["name"] != "acme" || tm["plan_id"] != "pro" || tm["spend_limit"] != "50" ||
		q["max_sandboxes"] != 3.0 || q["requests_per_minute"] != 100.0 || q["max_cpu_cores"] != 8.0 {
		t.Fatalf("teams create -o json: %v", tm)
	}
	// One request: the quota options given override the server's default quota, the
	// others keep it.
	if q := patchJSON(st.createSpec.Quota); q != `{"max_sandboxes":3,"requests_per_minute":100}` || *st.createSpec.PlanID != "pro" || len(st.patches) != 0 {
		t.Errorf("create spec %+v, quota %s, patches %+v", st.createSpec, q, st.patches)
	}
	r := e.ok("teams", "create", "plain")
	if !strings.Contains(r.stdout, "plain") || len(st.patches) != 0 || st.createSpec.Quota != nil || st.createSpec.PlanID != nil || st.createSpec.SpendLimit != nil {
		t.Errorf("teams create without options: %q, spec %+v", r.stdout, st.createSpec)
	}

	r = e.ok("teams", "list")
	if !strings.HasPrefix(r.stdout, "ID") || !strings.Contains(r.stdout, "acme") || !strings.Contains(r.stdout, "plain") || !strings.Contains(r.stdout, "no limit") {
		t.Errorf("teams list:\n%s", r.stdout)
	}
	if list := decode[[]map[string]any](t, e.ok("teams", "list", "-o", "json").stdout); len(list) != 2 {
		t.Errorf("teams list -o json: %v", list)
	}
	r = e.ok("teams", "get", id)
	for _, want := range []string{"acme", "1 of 3", "512 of 16384", "requests/min  100", "50"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("teams get lacks %q:\n%s", want, r.stdout)
		}
	}
	got := decode[map[string]any](t, e.ok("teams", "update", id, "--max-cpu", "2.5", "--name", "acme2", "-o", "json").stdout)
	q, _ = got["quota"].(map[string]any)
	if got["name"] != "acme2" || q["max_cpu_cores"] != 2.5 || q["max_sandboxes"] != 3.0 {
		t.Errorf("teams update: %v", got)
	}
	// Only the options given are sent: the server merges the quota field by field.
	last := st.patches[len(st.patches)-1]
	if len(st.patches) != 1 || last.PlanID != nil || last.SpendLimit != nil || patchJSON(last.Quota) != `{"max_cpu_cores":2.5}` {
		t.Errorf("update patch %+v, quota %s", last, patchJSON(last.Quota))
	}
	got = decode[map[string]any](t, e.ok("teams", "update", id, "--rpm", "0", "-o", "json").stdout)
	last = st.patches[len(st.patches)-1]
	if q, _ := got["quota"].(map[string]any); patchJSON(last.Quota) != `{"requests_per_minute":0}` || last.Name != "" || q["requests_per_minute"] != 0.0 || q["max_cpu_cores"] != 2.5 {
		t.Errorf("removing the rate limit: %+v, quota %s, answer %v", last, patchJSON(last.Quota), got)
	}
	e.ok("teams", "update", id, "--spend-limit", "")
	if last := st.patches[len(st.patches)-1]; last.Quota != nil || last.SpendLimit == nil || *last.SpendLimit != "" {
		t.Errorf("clearing the spend limit: %+v", last)
	}

	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"teams", "create"}, 2, "usage: warren teams create NAME"},
		{[]string{"teams", "create", "x", "--max-sandboxes", "-1"}, 2, "must not be negative"},
		{[]string{"teams", "update", id}, 2, "nothing to change"},
		{[]string{"teams", "get", "team_nope"}, 1, `error: team "team_nope" not found (request req_`},
		{[]string{"teams", "frob"}, 2, `subcommand "frob" is unknown`},
	} {
		if r := e.run(c.args...); r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("warren %v: exit %d, stderr %q; want %d and %q", c.args, r.code, r.stderr, c.code, c.msg)
		}
	}
}

func TestUsersAndLogin(t *testing.T) {
	e, st := newTenancyEnv(t)
	u := decode[map[string]any](t, e.ok("users", "create", "--email", "ann@example.com", "--password", "hunter2hunter2", "--team", "team_a", "--role", "admin", "-o", "json").stdout)
	uid, _ := u["id"].(string)
	if uid == "" || u["email"] != "ann@example.com" || u["role"] != "admin" ||
		st.userSpec != (domain.UserSpec{TeamID: "team_a", Email: "ann@example.com", Password: "hunter2hunter2", Role: domain.RoleAdmin}) {
		t.Fatalf("users create: %v, spec %+v", u, st.userSpec)
	}
	// The password may come from standard input; the role defaults to member.
	r := e.runIn(strings.NewReader("from-stdin-pw\n"), "users", "create", "--email", "bob@example.com", "--team", "team_b")
	if r.code != 0 || st.userSpec.Password != "from-stdin-pw" || st.userSpec.Role != domain.RoleMember || !strings.Contains(r.stdout, "bob@example.com") {
		t.Errorf("password from stdin: %+v, spec %+v", r, st.userSpec)
	}
	r = e.ok("users", "list", "--team", "team_a")
	if !strings.Contains(r.stdout, "ann@example.com") || strings.Contains(r.stdout, "bob@example.com") || !strings.Contains(r.stdout, "LAST LOGIN") {
		t.Errorf("users list --team:\n%s", r.stdout)
	}
	if all := decode[[]map[string]any](t, e.ok("users", "list", "-o", "json").stdout); len(all) != 2 {
		t.Errorf("users list -o json: %v", all)
	}
	if up := decode[map[string]any](t, e.ok("users", "update", uid, "--role", "viewer", "-o", "json").stdout); up["role"] != "viewer" || st.userPatch.Name != nil {
		t.Errorf("users update: %v, patch %+v", up, st.userPatch)
	}

	// login needs no API key; the password comes from stdin.
	delete(e.vars, "WARREN_API_KEY")
	r = e.runIn(strings.NewReader("hunter2hunter2\n"), "login", "--email", "ann@example.com")
	if r.code != 0 || !strings.Contains(r.stdout, "ws_session_token") || !strings.Contains(r.stderr, "export WARREN_API_KEY=ws_session_token") {
		t.Errorf("login: %+v", r)
	}
	s := decode[map[string]any](t, e.ok("login", "--email", "ann@example.com", "--password", "hunter2hunter2", "-o", "json").stdout)
	if s["token"] != "ws_session_token" || s["user"].(map[string]any)["email"] != "ann@example.com" {
		t.Errorf("login -o json: %v", s)
	}
	if r := e.run("login", "--email", "ann@example.com", "--password", "wrong"); r.code != 1 || !strings.Contains(r.stderr, "wrong email or password") {
		t.Errorf("wrong password: %+v", r)
	}
	e.vars["WARREN_API_KEY"] = keyA

	if r := e.ok("users", "delete", uid); r.stdout != "deleted "+uid+"\n" {
		t.Errorf("users delete: %q", r.stdout)
	}
	for _, c := range []struct {
		args  []string
		stdin string
		code  int
		msg   string
	}{
		{[]string{"users", "create", "--password", "x"}, "", 2, "--email is required"},
		{[]string{"users", "create", "--email", "c@example.com"}, "", 2, "no password"},
		{[]string{"login"}, "", 2, "--email is required"},
		{[]string{"users", "update", uid}, "", 2, "nothing to change"},
		{[]string{"users", "delete", uid}, "", 1, "not found"},
	} {
		if r := e.runIn(strings.NewReader(c.stdin), c.args...); r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("warren %v: exit %d, stderr %q; want %d and %q", c.args, r.code, r.stderr, c.code, c.msg)
		}
	}
}

func TestKeysCreateOptions(t *testing.T) {
	e := newTestEnv(t)
	before := time.Now()
	k := decode[map[string]any](t, e.ok("keys", "create", "ci", "--scope", "sandboxes:read,usage:read", "--scope", "audit:read", "--expires", "30d", "--team", "team_x", "-o", "json").stdout)
	spec := e.svc.lastKey
	wantScopes := []domain.Scope{domain.ScopeSandboxesRead, domain.ScopeUsageRead, domain.ScopeAuditRead}
	if k["name"] != "ci" || !strings.HasPrefix(k["key"].(string), "sk_") || spec.Name != "ci" || spec.TeamID != "team_x" || !reflect.DeepEqual(spec.Scopes, wantScopes) {
		t.Errorf("keys create: %v, spec %+v", k, spec)
	}
	if exp := spec.ExpiresAt.Sub(before); exp < 30*24*time.Hour-time.Minute || exp > 30*24*time.Hour+time.Minute {
		t.Errorf("--expires 30d: expires in %v", exp)
	}
	e.ok("keys", "create", "--name", "dated", "--scope", "keys:read", "--expires", "2099-01-31")
	if want := time.Date(2099, 1, 31, 0, 0, 0, 0, time.UTC); !e.svc.lastKey.ExpiresAt.Equal(want) {
		t.Errorf("--expires date: %v", e.svc.lastKey.ExpiresAt)
	}
	e.ok("keys", "create", "--expires", "90m")
	if exp := time.Until(e.svc.lastKey.ExpiresAt); exp < 89*time.Minute || exp > 91*time.Minute {
		t.Errorf("--expires 90m: expires in %v", exp)
	}
	r := e.ok("keys", "list")
	if !strings.Contains(r.stdout, "SCOPES") || !strings.Contains(r.stdout, "keys:read") || !strings.Contains(r.stdout, "dated") {
		t.Errorf("keys list:\n%s", r.stdout)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"keys", "create", "--expires", "soon"}, "give a duration"},
		{[]string{"keys", "create", "--expires", "2001-01-01"}, "in the past"},
		{[]string{"keys", "create", "--expires", "-5m"}, "must be positive"},
		{[]string{"keys", "create", "a", "--name", "b"}, "give the name once"},
		{[]string{"keys", "create", "a", "b"}, "usage: warren keys create"},
	} {
		if r := e.run(c.args...); r.code != 2 || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("warren %v: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, c.msg)
		}
	}
}

func TestUsageVerb(t *testing.T) {
	e, st := newTenancyEnv(t)
	r := e.ok("usage", "--by", "sandbox")
	for _, want := range []string{"Usage from 2026-11-01 00:00:00 to 2026-12-01 00:00:00 (UTC)", "SANDBOX", "WALL TIME", "sbx1", "1h0m0s", "1.5s", "0.500", "1.000 ", "2.0 KiB", "1.0 MiB", "TOTAL"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("usage table lacks %q:\n%s", want, r.stdout)
		}
	}
	rep := decode[map[string]any](t, e.ok("usage", "--from", "2026-11-01", "--to", "2026-11-05T12:00:00Z", "--by", "day", "--sandbox", "sbx1", "-o", "json").stdout)
	want := domain.UsageQuery{From: tt0, To: time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC), GroupBy: "day", SandboxID: "sbx1"}
	if rep["group_by"] != "day" || len(rep["rows"].([]any)) != 1 || rep["total"] == nil || !st.usageQ.From.Equal(want.From) || !st.usageQ.To.Equal(want.To) || st.usageQ.GroupBy != "day" || st.usageQ.SandboxID != "sbx1" {
		t.Errorf("usage -o json: %v, query %+v", rep, st.usageQ)
	}
	if r := e.ok("usage", "--by", "day"); !strings.Contains(r.stdout, "2026-11-01") || !strings.Contains(r.stdout, "DAY") {
		t.Errorf("usage by day:\n%s", r.stdout)
	}
	if r := e.ok("usage", "--by", "none"); strings.Contains(r.stdout, "SANDBOX") || !strings.Contains(r.stdout, "WALL TIME") {
		t.Errorf("usage by none:\n%s", r.stdout)
	}
	for _, c := range [][]string{{"usage", "--by", "week"}, {"usage", "--from", "yesterday"}} {
		if r := e.run(c...); r.code != 2 {
			t.Errorf("warren %v: %+v", c, r)
		}
	}
}

func TestInvoicesAndPlans(t *testing.T) {
	e, _ := newTenancyEnv(t)
	for _, args := range [][]string{{"invoices"}, {"invoices", "list"}, {"invoices", "--api-key", keyA}} {
		r := e.ok(args...)
		if !strings.HasPrefix(r.stdout, "PERIOD") || !strings.Contains(r.stdout, "2026-10") || !strings.Contains(r.stdout, "draft") || !strings.Contains(r.stdout, "final") {
			t.Errorf("%v:\n%s", args, r.stdout)
		}
	}
	if list := decode[[]map[string]any](t, e.ok("invoices", "list", "-o", "json").stdout); len(list) != 2 || list[0]["total"] != "20.50" {
		t.Errorf("invoices -o json: %v", list)
	}
	r := e.ok("invoices", "get", "2026-10")
	for _, want := range []string{"inv_2026-10", "final", "2026-10-01 to 2026-11-01", "cpu-hour", "TOTAL (EUR)", "20.50"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("invoices get lacks %q:\n%s", want, r.stdout)
		}
	}
	if inv := decode[map[string]any](t, e.ok("invoices", "get", "2026-10", "-o", "json").stdout); inv["id"] != "inv_2026-10" || len(inv["lines"].([]any)) != 2 {
		t.Errorf("invoices get -o json: %v", inv)
	}
	wantCSV := "description,quantity,unit,unit_price,amount\nPro plan,1,month,20.00,20.00\nCPU,12.5,cpu-hour,0.04,0.50\nTotal,,,,20.50\n"
	if r := e.ok("invoices", "get", "2026-10", "-o", "csv"); r.stdout != wantCSV {
		t.Errorf("invoices get -o csv:\n%q\nwant\n%q", r.stdout, wantCSV)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"invoices", "get", "2020-01"}, 1, `invoice "2020-01" not found`},
		{[]string{"invoices", "get", "2020-01", "-o", "csv"}, 1, `invoice "2020-01" not found`},
		{[]string{"invoices", "get", "october"}, 2, "give a month as YYYY-MM"},
		{[]string{"invoices", "get", "2026-10", "-o", "xml"}, 2, "the formats are json, table and csv"},
		{[]string{"invoices", "list", "-o", "csv"}, 2, "the formats are json and table"},
		{[]string{"invoices", "2026-10"}, 2, `subcommand "2026-10" is unknown; use one of: invoices list, invoices get`},
	} {
		if r := e.run(c.args...); r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("warren %v: exit %d, stderr %q; want %d and %q", c.args, r.code, r.stderr, c.code, c.msg)
		}
	}
	r = e.ok("plans")
	if !strings.Contains(r.stdout, "PER CPU-HOUR") || !strings.Contains(r.stdout, "0.04") || !strings.Contains(r.stdout, "Pro") {
		t.Errorf("plans:\n%s", r.stdout)
	}
	if ps := decode[[]map[string]any](t, e.ok("plans", "-o", "json").stdout); len(ps) != 1 || ps[0]["included_concurrency"] != 5.0 {
		t.Errorf("plans -o json: %v", ps)
	}
}

func TestAuditVerb(t *testing.T) {
	e, st := newTenancyEnv(t)
	r := e.ok("audit")
	if !strings.HasPrefix(r.stdout, "ID") || strings.Count(r.stdout, "\n") != 6 || !strings.Contains(r.stdout, "key key_a") || !strings.Contains(r.stdout, "req_5") {
		t.Errorf("audit:\n%s", r.stdout)
	}
	// --limit follows pages of at most that size until it has enough.
	entries := decode[[]map[string]any](t, e.ok("audit", "--limit", "2", "-o", "json").stdout)
	if len(entries) != 2 || entries[0]["id"] != 5.0 || entries[1]["id"] != 4.0 {
		t.Errorf("audit --limit 2: %v", entries)
	}
	st.auditF = nil
	entries = decode[[]map[string]any](t, e.ok("audit", "--action", "sandbox.kill", "--since", "2026-11-01", "--limit", "1", "-o", "json").stdout)
	if len(entries) != 1 || entries[0]["action"] != "sandbox.kill" || len(st.auditF) != 1 || st.auditF[0].Action != "sandbox.kill" || !st.auditF[0].Since.Equal(tt0) {
		t.Errorf("audit --action: %v, filters %+v", entries, st.auditF)
	}
	st.auditF = nil
	all := decode[[]map[string]any](t, e.ok("audit", "--action", "sandbox.create", "--limit", "50", "-o", "json").stdout)
	if len(all) != 2 || len(st.auditF) != 1 {
		t.Errorf("audit --action sandbox.create: %d entries, %d pages", len(all), len(st.auditF))
	}
	if r := e.run("audit", "--limit", "0"); r.code != 2 {
		t.Errorf("--limit 0: %+v", r)
	}
}

func TestTenancyHelp(t *testing.T) {
	e := newTestEnv(t)
	r := e.ok("help")
	for _, verb := range []string{"teams create", "users create", "login", "usage", "invoices get", "plans", "audit"} {
		if !strings.Contains(r.stdout, verb) {
			t.Errorf("help lacks %q", verb)
		}
	}
	for _, verb := range []string{"teams", "users", "login", "usage", "invoices", "plans", "audit"} {
		if !Handles(verb) {
			t.Errorf("Handles(%q) = false", verb)
		}
	}
	if r := e.ok("teams", "create", "--help"); !strings.Contains(r.stdout, "-max-memory-mb") || !strings.Contains(r.stdout, "-spend-limit") {
		t.Errorf("teams create --help:\n%s", r.stdout)
	}
}
