package abuse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Account-security probes (issue 13): a team:write key taking over an owner's or
// admin's account, sessions that outlive a password change or logout, keys that outlive
// their creator's role or account, and password guessing spread over many addresses.
// None needs a sandbox, so they run on one runtime.
var digits = regexp.MustCompile(`[0-9]+`)

func init() {
	gvisor := []string{"gvisor"}
	register(
		probe{name: "api/auth-team-write-resets-owner", runtimes: gvisor, run: probeTeamWriteResetsOwner},
		probe{name: "api/auth-session-after-password-change", runtimes: gvisor, run: probeSessionAfterPasswordChange},
		probe{name: "api/auth-key-of-demoted-user", runtimes: gvisor, run: probeKeyOfDemotedUser},
		probe{name: "api/auth-login-throttle-per-account", runtimes: gvisor, run: probeLoginThrottlePerAccount},
	)
}

const probePassword = "correct horse battery"

// authProbeSeq makes emails and client addresses unique across probes and runs.
var authProbeSeq atomic.Int32

// reply is one API answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) obj() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	return m
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body)) }

// call sends one JSON request with credential cred ("" for none) from the loopback
// address from ("" for the default), with extra headers.
func call(t *testing.T, e *env, from, cred, method, path string, body any, headers ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.S.URL+path, rd)
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if from != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
		client.Transport = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

// freshAddr is a loopback address no other request of this test binary used (all of
// 127/8 is the host's own), so that the API's per-address login limit stays out of the
// way of the per-account one.
func freshAddr() string {
	n := authProbeSeq.Add(1)
	return fmt.Sprintf("127.%d.%d.%d", 60+n/65000, (n/250)%250+1, n%250+1)
}

// authTeam makes a team for one probe and returns its id.
func authTeam(t *testing.T, e *env, name string) string {
	t.Helper()
	r := call(t, e, "", e.S.Key, "POST", "/v1/teams", map[string]any{"name": name})
	if r.status != 201 {
		t.Fatalf("creating team %s: %s", name, r)
	}
	return r.obj()["id"].(string)
}

// authUser adds a user with probePassword and returns its id and email.
func authUser(t *testing.T, e *env, team, role string) (id, email string) {
	t.Helper()
	email = fmt.Sprintf("%s-%d-%d@probe.example", role, authProbeSeq.Add(1), time.Now().UnixNano()%1e6)
	r := call(t, e, "", e.S.Key, "POST", "/v1/users", map[string]any{"team_id": team, "email": email,
		"password": probePassword, "role": role})
	if r.status != 201 {
		t.Fatalf("creating %s %s: %s", role, email, r)
	}
	return r.obj()["id"].(string), email
}

// login logs in from a fresh address.
func login(t *testing.T, e *env, email, password string) reply {
	t.Helper()
	return call(t, e, freshAddr(), "", "POST", "/v1/auth/login", map[string]any{"email": email, "password": password})
}

// session logs in and returns the token, failing the probe if that does not work.
func session(t *testing.T, e *env, email, password string) string {
	t.Helper()
	r := login(t, e, email, password)
	if r.status != 200 {
		t.Fatalf("login of %s: %s", email, r)
	}
	return r.obj()["token"].(string)
}

// probeTeamWriteResetsOwner: a key holding only team:write tries to reset the owner's
// and an admin's password (and so log in as them with every scope).
func probeTeamWriteResetsOwner(t *testing.T, e *env) string {
	team := authTeam(t, e, "probe-team-write")
	owner, ownerEmail := authUser(t, e, team, "owner")
	admin, adminEmail := authUser(t, e, team, "admin")
	k := call(t, e, "", e.S.Key, "POST", "/v1/keys", map[string]any{"name": "team-write-only", "team_id": team, "scopes": []string{"team:write"}})
	if k.status != 201 {
		t.Fatalf("creating the team:write key: %s", k)
	}
	key := k.obj()["key"].(string)
	const stolen = "attacker chose this"
	var got []string
	for _, v := range []struct{ id, email, role string }{{owner, ownerEmail, "owner"}, {admin, adminEmail, "admin"}} {
		r := call(t, e, "", key, "PATCH", "/v1/users/"+v.id, map[string]any{"password": stolen})
		if r.status != 403 {
			t.Errorf("team:write key resetting the %s's password: %s, want 403", v.role, r)
		}
		if r := call(t, e, "", key, "PATCH", "/v1/users/"+v.id, map[string]any{"role": "viewer"}); r.status != 403 {
			t.Errorf("team:write key demoting the %s: %s, want 403", v.role, r)
		}
		if r := call(t, e, "", key, "DELETE", "/v1/users/"+v.id, nil); r.status != 403 {
			t.Errorf("team:write key removing the %s: %s, want 403", v.role, r)
		}
		if r := login(t, e, v.email, stolen); r.status == 200 {
			t.Errorf("the attacker's password logs in as the %s", v.role)
		}
		if r := login(t, e, v.email, probePassword); r.status != 200 {
			t.Errorf("the %s cannot log in with their own password any more: %s", v.role, r)
		}
		got = append(got, fmt.Sprintf("%s %d", v.role, r.status))
	}
	return "team:write key resetting passwords: " + strings.Join(got, ", ") + "; owner and admin still log in with their own"
}

// probeSessionAfterPasswordChange: a session token stolen before its user changed the
// password (or logged out) must stop working.
func probeSessionAfterPasswordChange(t *testing.T, e *env) string {
	team := authTeam(t, e, "probe-sessions")
	id, email := authUser(t, e, team, "member")
	stolen, own := session(t, e, email, probePassword), session(t, e, email, probePassword)
	if r := call(t, e, "", stolen, "GET", "/v1/me", nil); r.status != 200 {
		t.Fatalf("a fresh session does not work: %s", r)
	}
	// Changing one's own password needs the current one.
	if r := call(t, e, "", stolen, "PATCH", "/v1/users/"+id, map[string]any{"password": "thief's password"}); r.status != 400 {
		t.Errorf("own password change without current_password: %s, want 400", r)
	}
	if r := call(t, e, "", stolen, "PATCH", "/v1/users/"+id, map[string]any{"password": "thief's password", "current_password": "a guess"}); r.status != 403 {
		t.Errorf("own password change with a wrong current_password: %s, want 403", r)
	}
	const next = "a brand new password"
	if r := call(t, e, "", own, "PATCH", "/v1/users/"+id, map[string]any{"password": next, "current_password": probePassword}); r.status != 200 {
		t.Fatalf("the user changing their password: %s", r)
	}
	for name, tok := range map[string]string{"stolen": stolen, "own": own} {
		if r := call(t, e, "", tok, "GET", "/v1/me", nil); r.status != 401 {
			t.Errorf("%s session after the password change: %s, want 401", name, r)
		}
	}
	// Logout ends the sessions too.
	a, b := session(t, e, email, next), session(t, e, email, next)
	if r := call(t, e, "", a, "POST", "/v1/auth/logout", nil); r.status != 204 {
		t.Fatalf("logout: %s", r)
	}
	for name, tok := range map[string]string{"logged-out": a, "other device's": b} {
		if r := call(t, e, "", tok, "GET", "/v1/sandboxes", nil); r.status != 401 {
			t.Errorf("%s session after logout: %s, want 401", name, r)
		}
	}
	return "sessions after a password change: 401; after logout (both devices): 401; own change without/with wrong current password: 400/403"
}

// probeKeyOfDemotedUser: an owner makes a key, is demoted to member, then removed; the
// key must follow.
func probeKeyOfDemotedUser(t *testing.T, e *env) string {
	team := authTeam(t, e, "probe-demoted")
	owner, email := authUser(t, e, team, "owner")
	tok := session(t, e, email, probePassword)
	k := call(t, e, "", tok, "POST", "/v1/keys", map[string]any{"name": "owner's"})
	if k.status != 201 {
		t.Fatalf("owner creating a key: %s", k)
	}
	key := k.obj()["key"].(string)
	if r := call(t, e, "", key, "GET", "/v1/audit", nil); r.status != 200 {
		t.Fatalf("owner's key reading the audit log before the demotion: %s", r)
	}
	if r := call(t, e, "", e.S.Key, "PATCH", "/v1/users/"+owner, map[string]any{"role": "member"}); r.status != 200 {
		t.Fatalf("demoting the owner: %s", r)
	}
	// Owner-only things (team:write, audit:read, admin) are gone; member things stay.
	me := call(t, e, "", key, "GET", "/v1/me", nil)
	scopes := fmt.Sprint(me.obj()["scopes"])
	if me.status != 200 || strings.Contains(scopes, "admin") || strings.Contains(scopes, "team:write") || strings.Contains(scopes, "audit:read") {
		t.Errorf("demoted owner's key: /v1/me %s", me)
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/audit", nil},
		{"POST", "/v1/users", map[string]any{"email": "x@probe.example", "password": probePassword, "role": "admin"}},
		{"POST", "/v1/keys", map[string]any{"name": "escalate", "scopes": []string{"admin"}}},
	} {
		if r := call(t, e, "", key, c.method, c.path, c.body); r.status != 403 {
			t.Errorf("demoted owner's key: %s %s = %s, want 403", c.method, c.path, r)
		}
	}
	if r := call(t, e, "", key, "GET", "/v1/sandboxes", nil); r.status != 200 {
		t.Errorf("demoted owner's key lost member rights too: GET /v1/sandboxes = %s", r)
	}
	// Removed: the key is dead.
	if r := call(t, e, "", e.S.Key, "DELETE", "/v1/users/"+owner, nil); r.status != 204 {
		t.Fatalf("removing the user: %s", r)
	}
	if r := call(t, e, "", key, "GET", "/v1/sandboxes", nil); r.status != 401 {
		t.Errorf("deleted user's key: GET /v1/sandboxes = %s, want 401", r)
	}
	return "demoted owner's key has " + scopes + " (audit, users, admin keys: 403); deleted user's key: 401"
}

// probeLoginThrottlePerAccount: password guesses at one account, each from another
// client address and with a made-up X-Forwarded-For, must still be throttled.
func probeLoginThrottlePerAccount(t *testing.T, e *env) string {
	team := authTeam(t, e, "probe-throttle")
	_, victim := authUser(t, e, team, "admin")
	_, bystander := authUser(t, e, team, "member")
	guess := func(email, password string, i int) reply {
		return call(t, e, freshAddr(), "", "POST", "/v1/auth/login", map[string]any{"email": email, "password": password},
			"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i%250+1), "X-Real-Ip", fmt.Sprintf("203.0.113.%d", i%250+1))
	}
	// The limit is 10 attempts per account (auth.DefaultLoginAttempts); allow slack so
	// that the probe does not pin the exact number.
	const maxTries = 30
	throttleAt := func(email string) (int, reply) {
		for i := 1; i <= maxTries; i++ {
			r := guess(email, fmt.Sprintf("guess-%d", i), i)
			switch r.status {
			case 401:
				continue
			case 429:
				return i, r
			default:
				t.Fatalf("guess %d at %s: %s", i, email, r)
			}
		}
		return 0, reply{}
	}
	n, r := throttleAt(victim)
	if n == 0 {
		t.Fatalf("%d guesses at one account from %d addresses were never throttled", maxTries, maxTries)
	}
	m := r.obj()
	if r.header.Get("Retry-After") == "" || m["quota"] != "login_attempts" {
		t.Errorf("throttled login: Retry-After %q, body %s", r.header.Get("Retry-After"), r.body)
	}
	// Throttled means throttled: the right password is refused too (no oracle).
	if r := guess(victim, probePassword, 999); r.status != 429 {
		t.Errorf("right password on a throttled account: %s, want 429", r)
	}
	// An unknown account is throttled the same way, with the same answer.
	un, ur := throttleAt(fmt.Sprintf("nobody-%d@probe.example", time.Now().UnixNano()))
	um := ur.obj()
	// The messages name the wait ("try again in 1m30s"), which ticks between the two
	// throttlings: compare them with the numbers taken out.
	if un != n || um["code"] != m["code"] || digits.ReplaceAllString(fmt.Sprint(um["message"]), "N") != digits.ReplaceAllString(fmt.Sprint(m["message"]), "N") {
		t.Errorf("unknown account throttled after %d guesses with %s; the real one after %d with %s", un, ur, n, r)
	}
	// Other accounts are not locked out.
	if r := login(t, e, bystander, probePassword); r.status != 200 {
		t.Errorf("another account's login after the attack: %s", r)
	}
	return fmt.Sprintf("429 %v/%v after %d guesses from %d addresses and X-Forwarded-For values; right password then 429; unknown account alike; others unaffected",
		m["code"], m["quota"], n-1, n)
}
