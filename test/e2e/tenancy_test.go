package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/warren-sh/warren/internal/testenv"
)

type teamJSON struct {
	ID    string         `json:"id"`
	Name  string         `json:"name"`
	Quota map[string]any `json:"quota"`
}

type keyJSON struct {
	ID     string   `json:"id"`
	Key    string   `json:"key"`
	TeamID string   `json:"team_id"`
	Scopes []string `json:"scopes"`
}

type errJSON struct {
	Code       string  `json:"code"`
	Message    string  `json:"message"`
	Quota      string  `json:"quota"`
	Limit      float64 `json:"limit"`
	Used       float64 `json:"used"`
	RetryAfter int     `json:"retry_after"`
}

// newTeam creates a team as the platform admin and returns it with a full-access key.
func (s *server) newTeam(body map[string]any) (teamJSON, string) {
	s.T.Helper()
	var t teamJSON
	if code, raw := s.API("POST", "/v1/teams", body, &t); code != 201 {
		s.T.Fatalf("create team: %d %s", code, raw)
	}
	return t, s.newKey(t.ID, nil)
}

// newKey creates a key for a team as the platform admin.
func (s *server) newKey(teamID string, scopes []string, extra ...map[string]any) string {
	s.T.Helper()
	body := map[string]any{"name": "test", "team_id": teamID}
	if scopes != nil {
		body["scopes"] = scopes
	}
	for _, e := range extra {
		for k, v := range e {
			body[k] = v
		}
	}
	var k keyJSON
	if code, raw := s.API("POST", "/v1/keys", body, &k); code != 201 {
		s.T.Fatalf("create key: %d %s", code, raw)
	}
	return k.Key
}

func decodeErr(t *testing.T, raw []byte) errJSON {
	t.Helper()
	var e errJSON
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("error body %s: %v", raw, err)
	}
	return e
}

// TestTenantIsolation: one team's credentials never reach another team's things, roles
// and scopes limit what a member can do, and expired or revoked keys stop working.
func TestTenantIsolation(t *testing.T) {
	s := startServer(t, serverOpts{})
	teamA, keyA := s.newTeam(map[string]any{"name": "team a"})
	teamB, keyB := s.newTeam(map[string]any{"name": "team b"})

	var sbB sandboxJSON
	if code, raw := s.APIKey(keyB, "POST", "/v1/sandboxes", map[string]any{"timeout": 120}, &sbB); code != 201 {
		t.Fatalf("team B create: %d %s", code, raw)
	}
	if code, raw := s.APIKey(keyB, "PUT", "/v1/sandboxes/"+sbB.ID+"/files/content?path=/tmp/secret", "b's data", nil); code != 200 && code != 201 {
		t.Fatalf("team B write: %d %s", code, raw)
	}

	t.Run("other team's sandbox is not found", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{
			{"GET", "/v1/sandboxes/" + sbB.ID},
			{"POST", "/v1/sandboxes/" + sbB.ID + "/commands"},
			{"GET", "/v1/sandboxes/" + sbB.ID + "/files/content?path=/tmp/secret"},
			{"GET", "/v1/sandboxes/" + sbB.ID + "/files?path=/tmp"},
			{"POST", "/v1/sandboxes/" + sbB.ID + "/timeout"},
			{"DELETE", "/v1/sandboxes/" + sbB.ID},
		} {
			var body any
			switch {
			case strings.HasSuffix(c.path, "/commands"):
				body = map[string]any{"cmd": "cat /tmp/secret"}
			case strings.HasSuffix(c.path, "/timeout"):
				body = map[string]any{"timeout": 600}
			}
			if code, raw := s.APIKey(keyA, c.method, c.path, body, nil); code != 404 {
				t.Errorf("team A %s %s = %d %s; want 404", c.method, c.path, code, raw)
			}
		}
		// The E2B API is held to the same rule.
		req, _ := http.NewRequest("GET", s.URL+"/sandboxes/"+sbB.ID, nil)
		req.Header.Set("X-API-Key", keyA)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("team A E2B GET /sandboxes/%s = %d; want 404", sbB.ID, resp.StatusCode)
		}
		var list struct {
			Sandboxes []sandboxJSON `json:"sandboxes"`
		}
		s.APIKey(keyA, "GET", "/v1/sandboxes", nil, &list)
		for _, sb := range list.Sandboxes {
			if sb.ID == sbB.ID {
				t.Errorf("team A's listing shows team B's sandbox %s", sbB.ID)
			}
		}
		// B's sandbox is untouched.
		var got sandboxJSON
		if code, _ := s.APIKey(keyB, "GET", "/v1/sandboxes/"+sbB.ID, nil, &got); code != 200 || got.State != "running" {
			t.Errorf("team B's sandbox after A's attempts: %d %+v", code, got)
		}
	})

	t.Run("other team's keys, usage, users and audit are invisible", func(t *testing.T) {
		var keysA struct {
			Keys []keyJSON `json:"keys"`
		}
		s.APIKey(keyA, "GET", "/v1/keys", nil, &keysA)
		for _, k := range keysA.Keys {
			if k.TeamID != teamA.ID {
				t.Errorf("team A's key listing has a key of team %s", k.TeamID)
			}
		}
		var keysB struct {
			Keys []keyJSON `json:"keys"`
		}
		s.APIKey(keyB, "GET", "/v1/keys", nil, &keysB)
		if len(keysB.Keys) == 0 {
			t.Fatal("team B has no keys listed")
		}
		if code, raw := s.APIKey(keyA, "DELETE", "/v1/keys/"+keysB.Keys[0].ID, nil, nil); code != 404 {
			t.Errorf("team A revoking team B's key = %d %s; want 404", code, raw)
		}
		var usage struct {
			Rows []struct {
				SandboxID string `json:"sandbox_id"`
			} `json:"rows"`
		}
		if code, raw := s.APIKey(keyA, "GET", "/v1/usage?group_by=sandbox&sandbox_id="+sbB.ID, nil, &usage); code != 200 || len(usage.Rows) != 0 {
			t.Errorf("team A's usage for B's sandbox = %d %s; want 200 with no rows", code, raw)
		}
		if code, raw := s.APIKey(keyA, "GET", "/v1/usage?team_id="+teamB.ID, nil, nil); code != 404 {
			t.Errorf("team A asking for team B's usage by team_id = %d %s; want 404", code, raw)
		}
		if code, raw := s.APIKey(keyA, "GET", "/v1/invoices?team_id="+teamB.ID, nil, nil); code != 404 {
			t.Errorf("team A asking for team B's invoices by team_id = %d %s; want 404", code, raw)
		}
		// The platform admin may read any team's usage.
		if code, raw := s.API("GET", "/v1/usage?group_by=sandbox&team_id="+teamB.ID, nil, nil); code != 200 {
			t.Errorf("platform admin reading team B's usage = %d %s", code, raw)
		}
		if code, _ := s.APIKey(keyA, "GET", "/v1/teams/"+teamB.ID, nil, nil); code != 404 {
			t.Errorf("team A reading team B = %d; want 404", code)
		}
		if code, _ := s.APIKey(keyA, "GET", "/v1/users?team_id="+teamB.ID, nil, nil); code != 404 {
			t.Errorf("team A listing team B's users = %d; want 404", code)
		}
		var audit struct {
			Entries []struct {
				Action  string `json:"action"`
				Target  string `json:"target"`
				ActorID string `json:"actor_id"`
				Status  int    `json:"status"`
			} `json:"entries"`
		}
		// A's log holds A's own (refused) attempts on B's sandbox, never B's actions.
		s.APIKey(keyA, "GET", "/v1/audit?team_id="+teamB.ID, nil, &audit)
		for _, e := range audit.Entries {
			if e.ActorID == keysB.Keys[0].ID || e.Target == sbB.ID && e.Status < 300 {
				t.Errorf("team A's audit log shows team B's action %+v", e)
			}
		}
		s.APIKey(keyB, "GET", "/v1/audit?action=sandbox.create", nil, &audit)
		if len(audit.Entries) != 1 || audit.Entries[0].Target != sbB.ID {
			t.Errorf("team B's audit log for sandbox.create = %+v; want one entry for %s", audit.Entries, sbB.ID)
		}
	})

	t.Run("viewer cannot create, member can", func(t *testing.T) {
		for _, u := range []struct{ email, role string }{{"viewer@a.example", "viewer"}, {"member@a.example", "member"}} {
			if code, raw := s.API("POST", "/v1/users", map[string]any{"team_id": teamA.ID, "email": u.email, "password": "correct horse", "role": u.role}, nil); code != 201 {
				t.Fatalf("create %s: %d %s", u.role, code, raw)
			}
		}
		login := func(email string) string {
			var l struct {
				Token string `json:"token"`
			}
			if code, raw := s.APIKey("", "POST", "/v1/auth/login", map[string]any{"email": email, "password": "correct horse"}, &l); code != 200 {
				t.Fatalf("login %s: %d %s", email, code, raw)
			}
			return l.Token
		}
		viewer, member := login("viewer@a.example"), login("member@a.example")
		code, raw := s.APIKey(viewer, "POST", "/v1/sandboxes", map[string]any{}, nil)
		if code != 403 || decodeErr(t, raw).Code != "forbidden" {
			t.Errorf("viewer create = %d %s; want 403 forbidden", code, raw)
		}
		if code, _ := s.APIKey(viewer, "GET", "/v1/sandboxes", nil, nil); code != 200 {
			t.Errorf("viewer list = %d; want 200", code)
		}
		if code, raw := s.APIKey(viewer, "POST", "/v1/keys", map[string]any{"name": "sneaky"}, nil); code != 403 {
			t.Errorf("viewer creating a key = %d %s; want 403", code, raw)
		}
		var sb sandboxJSON
		if code, raw := s.APIKey(member, "POST", "/v1/sandboxes", map[string]any{"timeout": 60}, &sb); code != 201 {
			t.Fatalf("member create = %d %s; want 201", code, raw)
		}
		if code, _ := s.APIKey(viewer, "DELETE", "/v1/sandboxes/"+sb.ID, nil, nil); code != 403 {
			t.Errorf("viewer kill = %d; want 403", code)
		}
		if code, _ := s.APIKey(member, "DELETE", "/v1/sandboxes/"+sb.ID, nil, nil); code != 204 {
			t.Errorf("member kill = %d; want 204", code)
		}
		if code, raw := s.APIKey("", "POST", "/v1/auth/login", map[string]any{"email": "viewer@a.example", "password": "wrong password"}, nil); code != 401 {
			t.Errorf("login with a wrong password = %d %s; want 401", code, raw)
		}
		// A read-only key is refused writes the same way.
		ro := s.newKey(teamA.ID, []string{"sandboxes:read"})
		if code, raw := s.APIKey(ro, "POST", "/v1/sandboxes", map[string]any{}, nil); code != 403 {
			t.Errorf("sandboxes:read key create = %d %s; want 403", code, raw)
		}
	})

	t.Run("expired and revoked keys get 401", func(t *testing.T) {
		short := s.newKey(teamA.ID, nil, map[string]any{"expires_in": 1})
		if code, _ := s.APIKey(short, "GET", "/v1/sandboxes", nil, nil); code != 200 {
			t.Fatalf("fresh key = %d; want 200", code)
		}
		time.Sleep(1200 * time.Millisecond)
		code, raw := s.APIKey(short, "GET", "/v1/sandboxes", nil, nil)
		if code != 401 || !strings.Contains(decodeErr(t, raw).Message, "expired") {
			t.Errorf("expired key = %d %s; want 401 saying expired", code, raw)
		}
		doomed := s.newKey(teamA.ID, nil)
		var keys struct {
			Keys []keyJSON `json:"keys"`
		}
		s.APIKey(doomed, "GET", "/v1/keys", nil, &keys)
		last := keys.Keys[len(keys.Keys)-1]
		if code, raw := s.APIKey(keyA, "DELETE", "/v1/keys/"+last.ID, nil, nil); code != 204 {
			t.Fatalf("revoke = %d %s", code, raw)
		}
		if code, _ := s.APIKey(doomed, "GET", "/v1/sandboxes", nil, nil); code != 401 {
			t.Errorf("revoked key = %d; want 401", code)
		}
	})
	s.APIKey(keyB, "DELETE", "/v1/sandboxes/"+sbB.ID, nil, nil)
}

// TestQuotaConcurrentCreates: 50 simultaneous creates against a quota of 10 admit
// exactly 10; the refusals name the quota, its limit and the usage.
func TestQuotaConcurrentCreates(t *testing.T) {
	s := startServer(t, serverOpts{})
	_, key := s.newTeam(map[string]any{"name": "capped", "quota": map[string]any{"max_sandboxes": 10}})
	const n = 50
	var wg sync.WaitGroup
	codes := make([]int, n)
	bodies := make([][]byte, n)
	ids := make([]string, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var sb sandboxJSON
			codes[i], bodies[i] = s.APIKey(key, "POST", "/v1/sandboxes", map[string]any{"timeout": 120,
				"limits": map[string]any{"cpu_cores": 0.25, "memory_mb": 128}}, &sb)
			ids[i] = sb.ID
		}()
	}
	close(start)
	wg.Wait()
	admitted, refused := 0, 0
	for i, c := range codes {
		switch c {
		case 201:
			admitted++
		case 429:
			refused++
			e := decodeErr(t, bodies[i])
			if e.Code != "quota_exceeded" || e.Quota != "max_sandboxes" || e.Limit != 10 || e.Used != 10 {
				t.Errorf("refusal body %s; want quota_exceeded max_sandboxes limit 10 used 10", bodies[i])
			}
		default:
			t.Errorf("create %d = %d %s", i, c, bodies[i])
		}
	}
	t.Logf("50 concurrent creates against max_sandboxes 10: %d admitted, %d refused with 429", admitted, refused)
	if admitted != 10 || refused != 40 {
		t.Errorf("admitted %d, refused %d; want exactly 10 and 40", admitted, refused)
	}
	// Killing one frees a place.
	for _, id := range ids {
		if id != "" {
			s.APIKey(key, "DELETE", "/v1/sandboxes/"+id, nil, nil)
			break
		}
	}
	var sb sandboxJSON
	if code, raw := s.APIKey(key, "POST", "/v1/sandboxes", map[string]any{"timeout": 60}, &sb); code != 201 {
		t.Errorf("create after a kill = %d %s; want 201", code, raw)
	}
	ids = append(ids, sb.ID)
	for _, id := range ids {
		if id != "" {
			s.APIKey(key, "DELETE", "/v1/sandboxes/"+id, nil, nil)
		}
	}
}

// TestRateLimit: a team over its requests_per_minute gets 429 with Retry-After.
func TestRateLimit(t *testing.T) {
	s := startServer(t, serverOpts{})
	_, key := s.newTeam(map[string]any{"name": "chatty", "quota": map[string]any{"requests_per_minute": 5}})
	ok := 0
	for range 5 {
		if code, _ := s.APIKey(key, "GET", "/v1/sandboxes", nil, nil); code == 200 {
			ok++
		}
	}
	req, _ := http.NewRequest("GET", s.URL+"/v1/sandboxes", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e errJSON
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	ra := resp.Header.Get("Retry-After")
	t.Logf("5 requests admitted: %d; 6th: %d, Retry-After %q, body %+v", ok, resp.StatusCode, ra, e)
	if ok != 5 || resp.StatusCode != 429 || e.Code != "rate_limited" || ra == "" || ra == "0" || fmt.Sprint(e.RetryAfter) != ra {
		t.Errorf("want 5 admitted then 429 rate_limited with a Retry-After matching retry_after")
	}
	// Another team is not affected.
	_, other := s.newTeam(map[string]any{"name": "quiet", "quota": map[string]any{"requests_per_minute": 5}})
	if code, _ := s.APIKey(other, "GET", "/v1/sandboxes", nil, nil); code != 200 {
		t.Errorf("another team = %d; want 200", code)
	}
}

// TestRateLimitRedis: with WARREN_REDIS_URL the team's budget lives in Redis, where every
// replica of the API finds it (internal/ratelimit tests two replicas sharing one budget).
func TestRateLimitRedis(t *testing.T) {
	rurl := testenv.NeedsEnv(t, "WARREN_TEST_REDIS_URL", "run scripts/test-services.sh (make test does)")
	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_REDIS_URL=" + rurl}})
	team, key := s.newTeam(map[string]any{"name": "shared budget", "quota": map[string]any{"requests_per_minute": 4}})
	for i := range 4 {
		if code, raw := s.APIKey(key, "GET", "/v1/sandboxes", nil, nil); code != 200 {
			t.Fatalf("request %d = %d %s", i+1, code, raw)
		}
	}
	// The budget is in Redis, under the team's key.
	opts, err := redis.ParseURL(rurl)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opts)
	defer rc.Close()
	keys, err := rc.Keys(context.Background(), "warren:ratelimit:*"+team.ID+"*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("Redis keys for the team: %v %v; want one", keys, err)
	}
	code, raw := s.APIKey(key, "GET", "/v1/sandboxes", nil, nil)
	if code != 429 || decodeErr(t, raw).Code != "rate_limited" {
		t.Errorf("5th request = %d %s; want 429 rate_limited", code, raw)
	}
	// Emptying Redis gives the budget back: the state is there, not in the process.
	if err := rc.Del(context.Background(), keys...).Err(); err != nil {
		t.Fatal(err)
	}
	if code, raw := s.APIKey(key, "GET", "/v1/sandboxes", nil, nil); code != 200 {
		t.Errorf("after clearing the team's Redis key = %d %s; want 200", code, raw)
	}
}
