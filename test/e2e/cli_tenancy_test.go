package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestCLITenancy drives the scripting contract of the tenancy verbs against a real
// server: teams create -o json prints an object with "id", keys create --team prints an
// object with "key", users create makes a user who can log in, usage and invoices answer.
func TestCLITenancy(t *testing.T) {
	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_METER_INTERVAL=1s"}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := func(env []string, args ...string) string {
		t.Helper()
		out, errOut, code := s.CLIEnv(ctx, env, args...)
		if code != 0 {
			t.Fatalf("warren %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	var team struct {
		ID    string `json:"id"`
		Quota struct {
			MaxSandboxes int `json:"max_sandboxes"`
		} `json:"quota"`
	}
	if err := json.Unmarshal([]byte(run(nil, "teams", "create", "cli team", "--max-sandboxes", "1", "-o", "json")), &team); err != nil || team.ID == "" || team.Quota.MaxSandboxes != 1 {
		t.Fatalf("teams create -o json: %+v %v", team, err)
	}
	var key struct {
		Key    string   `json:"key"`
		Scopes []string `json:"scopes"`
	}
	out := run(nil, "keys", "create", "ci", "--team", team.ID, "--scope", "sandboxes:read", "--scope", "sandboxes:write", "--scope", "usage:read", "-o", "json")
	if err := json.Unmarshal([]byte(out), &key); err != nil || !strings.HasPrefix(key.Key, "sk_") || len(key.Scopes) != 3 {
		t.Fatalf("keys create --team -o json: %s %v", out, err)
	}
	run(nil, "users", "create", "--email", "dev@cli.example", "--password", "long enough", "--team", team.ID, "--role", "member")
	users := run(nil, "users", "list", "--team", team.ID)
	if !strings.Contains(users, "dev@cli.example") || !strings.Contains(users, "member") {
		t.Errorf("users list:\n%s", users)
	}
	teamEnv := []string{"WARREN_API_KEY=" + key.Key}
	var sb struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(run(teamEnv, "sandbox", "create", "-o", "json")), &sb)
	if sb.ID == "" {
		t.Fatal("sandbox create as the team printed no id")
	}
	// The quota of 1 refuses a second one, and the CLI says which quota.
	_, errOut, code := s.CLIEnv(ctx, teamEnv, "sandbox", "create")
	if code == 0 || !strings.Contains(errOut, "max_sandboxes") {
		t.Errorf("second create: exit %d, stderr %q; want a refusal naming max_sandboxes", code, errOut)
	}
	run(teamEnv, "exec", sb.ID, "--", "sleep", "1")
	run(teamEnv, "sandbox", "kill", sb.ID)
	usage := run(teamEnv, "usage", "--by", "sandbox", "-o", "json")
	if !strings.Contains(usage, sb.ID) {
		t.Errorf("usage -o json lacks the sandbox:\n%s", usage)
	}
	inv := run(teamEnv, "invoices", "get", time.Now().UTC().Format("2006-01"), "-o", "csv")
	if !strings.HasPrefix(inv, "description,quantity,unit,unit_price,amount") {
		t.Errorf("invoices get -o csv:\n%s", inv)
	}
	// The member's session works like a key.
	var login struct {
		Token string `json:"token"`
	}
	out = run([]string{"WARREN_API_KEY="}, "login", "--email", "dev@cli.example", "--password", "long enough", "-o", "json")
	if err := json.Unmarshal([]byte(out), &login); err != nil || !strings.HasPrefix(login.Token, "ws_") {
		t.Fatalf("login -o json printed %q (%v); want an object with a ws_ token", out, err)
	}
	tok := login.Token
	if list := run([]string{"WARREN_API_KEY=" + tok}, "sandbox", "list", "-o", "json"); !strings.Contains(list, sb.ID) {
		t.Errorf("sandbox list as the logged-in member lacks %s:\n%s", sb.ID, list)
	}
}
