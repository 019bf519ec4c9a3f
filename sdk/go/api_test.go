package warren

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

var teamJSON = map[string]any{
	"id": "team_1", "name": "acme", "created_at": t0, "plan_id": "pro", "spend_limit": "100.50",
	"quota": map[string]any{"max_sandboxes": 5, "max_cpu_cores": 2.5, "max_memory_mb": 4096, "max_disk_mb": 0, "requests_per_minute": 600},
	"usage": map[string]any{"sandboxes": 1, "cpu_cores": 0.5, "memory_mb": 512, "disk_mb": 1024},
}

var userJSON = map[string]any{"id": "u1", "team_id": "team_1", "email": "a@example.com", "name": "Ann", "role": "admin", "created_at": t0}

var invoiceJSON = map[string]any{
	"id": "inv_2026-10", "team_id": "team_1", "plan_id": "pro", "currency": "EUR", "period_start": t0.AddDate(0, -1, 0), "period_end": t0,
	"lines": []any{map[string]any{"description": "CPU", "quantity": "1.5", "unit": "hour", "unit_price": "0.04", "amount": "0.06"}},
	"total": "12.34", "final": true, "issued_at": t0,
}

// TestAPIMethods calls each method against a fake that checks the request (method,
// path, query, body) and answers a canned response, then checks the decoded value.
func TestAPIMethods(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		call   func(c *Client) (any, error)
		method string
		path   string
		query  url.Values
		body   map[string]any // nil: no body expected
		status int
		resp   any
		check  func(t *testing.T, v any)
	}{
		{"CreateSandbox", func(c *Client) (any, error) {
			no := false
			return c.CreateSandbox(ctx, SandboxOptions{Template: "python", Timeout: 90 * time.Second, Env: map[string]string{"A": "1"},
				Metadata: map[string]string{"o": "x"}, Limits: Limits{CPUCores: 1.5, MemoryMB: 512}, Internet: &no, Runtime: "runc", MinIsolation: "container"})
		}, "POST", "/v1/sandboxes", nil, map[string]any{"template": "python", "timeout": 90.0, "env": map[string]any{"A": "1"}, "metadata": map[string]any{"o": "x"},
			"internet": false, "limits": map[string]any{"cpu_cores": 1.5, "memory_mb": 512.0, "disk_mb": 0.0, "max_processes": 0.0}, "runtime": "runc", "min_isolation": "container"},
			201, map[string]any{"id": "sbx1", "state": "running", "ends_at": t0}, func(t *testing.T, v any) {
				s := v.(*Sandbox)
				if s.ID != "sbx1" || s.Info().State != "running" || !s.Info().EndsAt.Equal(t0) {
					t.Errorf("%+v", s.Info())
				}
			}},
		{"ConnectSandbox", func(c *Client) (any, error) { return c.ConnectSandbox(ctx, "sbx1") }, "GET", "/v1/sandboxes/sbx1", nil, nil,
			200, map[string]any{"id": "sbx1", "state": "running", "env_keys": []string{"A"}}, func(t *testing.T, v any) {
				if info := v.(*Sandbox).Info(); info.ID != "sbx1" || info.EnvKeys[0] != "A" {
					t.Errorf("%+v", info)
				}
			}},
		{"ListSandboxes", func(c *Client) (any, error) {
			return c.ListSandboxes(ctx, ListOptions{States: []string{"running", "stopped"}, Metadata: map[string]string{"owner": "ann"}, Limit: 5, Cursor: "c1"})
		}, "GET", "/v1/sandboxes", url.Values{"state": {"running,stopped"}, "metadata.owner": {"ann"}, "limit": {"5"}, "cursor": {"c1"}}, nil,
			200, map[string]any{"sandboxes": []any{map[string]any{"id": "s2"}}, "next_cursor": "c2"}, func(t *testing.T, v any) {
				if p := v.(*SandboxPage); len(p.Sandboxes) != 1 || p.NextCursor != "c2" {
					t.Errorf("%+v", p)
				}
			}},
		{"Kill", func(c *Client) (any, error) { return nil, c.Sandbox("sbx1").Kill(ctx) }, "DELETE", "/v1/sandboxes/sbx1", nil, nil, 204, nil, nil},
		{"SetTimeout", func(c *Client) (any, error) { return c.Sandbox("sbx1").SetTimeout(ctx, 2*time.Minute) }, "POST", "/v1/sandboxes/sbx1/timeout", nil,
			map[string]any{"timeout": 120.0}, 200, map[string]any{"id": "sbx1", "ends_at": t0}, func(t *testing.T, v any) {
				if !v.(*SandboxInfo).EndsAt.Equal(t0) {
					t.Errorf("%+v", v)
				}
			}},
		{"SetNetwork", func(c *Client) (any, error) {
			return c.Sandbox("sbx1").SetNetwork(ctx, NetworkPolicy{AllowOut: []string{"198.18.0.7"}, DenyOut: []string{"0.0.0.0/0"}})
		}, "PUT", "/v1/sandboxes/sbx1/network", nil, map[string]any{"allow_out": []any{"198.18.0.7"}, "deny_out": []any{"0.0.0.0/0"}},
			200, map[string]any{"id": "sbx1", "network": map[string]any{"allow_out": []string{"198.18.0.7"}, "deny_out": []string{"0.0.0.0/0"}}}, func(t *testing.T, v any) {
				if n := v.(*SandboxInfo).Network; len(n.AllowOut) != 1 || n.DenyOut[0] != "0.0.0.0/0" {
					t.Errorf("%+v", v)
				}
			}},
		{"Templates", func(c *Client) (any, error) { return c.Templates(ctx) }, "GET", "/v1/templates", nil, nil, 200,
			map[string]any{"templates": []any{map[string]any{"id": "base", "ready": true, "size_bytes": 7}}}, func(t *testing.T, v any) {
				if ts := v.([]Template); len(ts) != 1 || !ts[0].Ready || ts[0].SizeBytes != 7 {
					t.Errorf("%+v", ts)
				}
			}},
		{"CreateSandbox from a snapshot", func(c *Client) (any, error) {
			return c.CreateSandbox(ctx, SandboxOptions{Snapshot: "warm", Lifecycle: &Lifecycle{OnTimeout: "pause", AutoResume: true}})
		}, "POST", "/v1/sandboxes", nil, map[string]any{"snapshot": "warm", "lifecycle": map[string]any{"on_timeout": "pause", "auto_resume": true},
			"limits": map[string]any{"cpu_cores": 0.0, "memory_mb": 0.0, "disk_mb": 0.0, "max_processes": 0.0}},
			201, map[string]any{"id": "sbx2", "state": "running"}, nil},
		{"Pause", func(c *Client) (any, error) {
			s := c.Sandbox("sbx1")
			info, err := s.Pause(ctx)
			if err == nil && s.Info().State != "paused" {
				t.Errorf("handle not updated: %+v", s.Info())
			}
			return info, err
		}, "POST", "/v1/sandboxes/sbx1/pause", nil, nil, 200, map[string]any{"id": "sbx1", "state": "paused"}, func(t *testing.T, v any) {
			if v.(*SandboxInfo).State != "paused" {
				t.Errorf("%+v", v)
			}
		}},
		{"Resume", func(c *Client) (any, error) { return c.Sandbox("sbx1").Resume(ctx, 0) }, "POST", "/v1/sandboxes/sbx1/resume", nil, map[string]any{},
			200, map[string]any{"id": "sbx1", "state": "running"}, func(t *testing.T, v any) {
				if v.(*SandboxInfo).State != "running" {
					t.Errorf("%+v", v)
				}
			}},
		{"Resume with a timeout", func(c *Client) (any, error) { return c.Sandbox("sbx1").Resume(ctx, time.Minute) }, "POST", "/v1/sandboxes/sbx1/resume", nil,
			map[string]any{"timeout": 60.0}, 200, map[string]any{"id": "sbx1", "state": "running", "paused_at": t0,
				"lifecycle": map[string]any{"on_timeout": "pause", "auto_resume": true}}, func(t *testing.T, v any) {
				if i := v.(*SandboxInfo); !i.PausedAt.Equal(t0) || i.Lifecycle == nil || i.Lifecycle.OnTimeout != "pause" || !i.Lifecycle.AutoResume {
					t.Errorf("%+v", i)
				}
			}},
		{"Fork", func(c *Client) (any, error) {
			return c.Sandbox("sbx1").Fork(ctx, ForkOptions{Count: 2, Timeout: 90 * time.Second})
		},
			"POST", "/v1/sandboxes/sbx1/fork", nil, map[string]any{"count": 2.0, "timeout": 90.0}, 201,
			map[string]any{"sandboxes": []any{map[string]any{"id": "f1", "state": "running"}, map[string]any{"id": "f2", "state": "running"}}},
			func(t *testing.T, v any) {
				if fs := v.([]*Sandbox); len(fs) != 2 || fs[0].ID != "f1" || fs[1].Info().State != "running" {
					t.Errorf("%+v", fs)
				}
			}},
		{"Fork in part", func(c *Client) (any, error) {
			forks, err := c.Sandbox("sbx1").Fork(ctx, ForkOptions{Count: 2})
			var fe *ForkError
			if !errors.As(err, &fe) || len(forks) != 1 || fe.Started != 1 || fe.Failures[0].Code != "quota_exceeded" ||
				!strings.Contains(err.Error(), "1 of 2 copies did not start (copy 1: quota max_sandboxes exceeded)") {
				t.Errorf("partial fork: %v %v", forks, err)
			}
			return nil, nil
		}, "POST", "/v1/sandboxes/sbx1/fork", nil, map[string]any{"count": 2.0}, 201,
			map[string]any{"sandboxes": []any{map[string]any{"id": "f1"}}, "errors": []any{map[string]any{"index": 1, "status": 429, "code": "quota_exceeded", "message": "quota max_sandboxes exceeded"}}}, nil},
		{"Fork defaults", func(c *Client) (any, error) { return c.Sandbox("sbx1").Fork(ctx, ForkOptions{}) },
			"POST", "/v1/sandboxes/sbx1/fork", nil, map[string]any{}, 201, map[string]any{"sandboxes": []any{map[string]any{"id": "f1"}}}, nil},
		{"CreateSnapshot", func(c *Client) (any, error) { return c.Sandbox("sbx1").CreateSnapshot(ctx, "warm") },
			"POST", "/v1/sandboxes/sbx1/snapshots", nil, map[string]any{"name": "warm"}, 201,
			map[string]any{"id": "snap_1", "name": "warm", "sandbox_id": "sbx1", "template_id": "base", "runtime": "gvisor", "size_bytes": 9, "created_at": t0},
			func(t *testing.T, v any) {
				if s := v.(*Snapshot); s.ID != "snap_1" || s.Name != "warm" || s.Template != "base" || s.SizeBytes != 9 || !s.CreatedAt.Equal(t0) {
					t.Errorf("%+v", s)
				}
			}},
		{"ListSnapshots", func(c *Client) (any, error) {
			return c.ListSnapshots(ctx, SnapshotListOptions{SandboxID: "sbx1", Limit: 5, Cursor: "c1"})
		},
			"GET", "/v1/snapshots", url.Values{"sandbox_id": {"sbx1"}, "limit": {"5"}, "cursor": {"c1"}}, nil, 200,
			map[string]any{"snapshots": []any{map[string]any{"id": "snap_1"}}, "next_cursor": "c2"}, func(t *testing.T, v any) {
				if p := v.(*SnapshotPage); len(p.Snapshots) != 1 || p.NextCursor != "c2" {
					t.Errorf("%+v", p)
				}
			}},
		{"GetSnapshot", func(c *Client) (any, error) { return c.GetSnapshot(ctx, "warm") }, "GET", "/v1/snapshots/warm", nil, nil, 200,
			map[string]any{"id": "snap_1", "name": "warm"}, nil},
		{"Pools", func(c *Client) (any, error) { return c.Pools(ctx) }, "GET", "/v1/pools", nil, nil, 200,
			map[string]any{"pools": []any{map[string]any{"template_id": "base", "size": 4, "ready": 3, "starting": 1, "claims": 9, "misses": 2, "failures": 0}}},
			func(t *testing.T, v any) {
				if ps := v.([]Pool); len(ps) != 1 || ps[0].Template != "base" || ps[0].Ready != 3 || ps[0].Claims != 9 {
					t.Errorf("%+v", ps)
				}
			}},
		{"Nodes", func(c *Client) (any, error) { return c.Nodes(ctx) }, "GET", "/v1/nodes", nil, nil, 200,
			map[string]any{"nodes": []any{map[string]any{"name": "n1", "state": "ready", "sandboxes": 2, "heartbeat_at": t0,
				"free": map[string]any{"cpu_cores": 1.5, "slots": 7}, "warm_pools": map[string]any{"base": 1}}}},
			func(t *testing.T, v any) {
				if ns := v.([]Node); len(ns) != 1 || ns[0].Name != "n1" || ns[0].Sandboxes != 2 || ns[0].Free.Slots != 7 ||
					ns[0].Free.CPUCores != 1.5 || ns[0].WarmPools["base"] != 1 || !ns[0].HeartbeatAt.Equal(t0) {
					t.Errorf("%+v", ns)
				}
			}},
		{"DrainNode", func(c *Client) (any, error) { return c.DrainNode(ctx, "n 1") }, "POST", "/v1/nodes/n%201/drain", nil, nil, 200,
			map[string]any{"name": "n 1", "state": "draining"}, func(t *testing.T, v any) {
				if n := v.(*Node); n.State != "draining" {
					t.Errorf("%+v", n)
				}
			}},
		{"UndrainNode", func(c *Client) (any, error) { return c.UndrainNode(ctx, "n1") }, "POST", "/v1/nodes/n1/undrain", nil, nil, 200,
			map[string]any{"name": "n1", "state": "ready"}, nil},
		{"DeleteSnapshot", func(c *Client) (any, error) { return nil, c.DeleteSnapshot(ctx, "snap_1") }, "DELETE", "/v1/snapshots/snap_1", nil, nil, 204, nil, nil},
		{"CreateKey", func(c *Client) (any, error) {
			return c.CreateKey(ctx, KeyOptions{Name: "ci", Scopes: []string{ScopeSandboxesRead, ScopeUsageRead}, ExpiresAt: t0, TeamID: "team_2"})
		}, "POST", "/v1/keys", nil, map[string]any{"name": "ci", "scopes": []any{"sandboxes:read", "usage:read"}, "expires_at": "2026-11-01T00:00:00Z", "team_id": "team_2"},
			201, map[string]any{"id": "k1", "name": "ci", "key": "sk_secret", "scopes": []string{"sandboxes:read"}, "team_id": "team_2", "expires_at": t0}, func(t *testing.T, v any) {
				if k := v.(*CreatedKey); k.Secret != "sk_secret" || k.ID != "k1" || k.TeamID != "team_2" || !k.ExpiresAt.Equal(t0) {
					t.Errorf("%+v", k)
				}
			}},
		{"CreateKey expires_in", func(c *Client) (any, error) { return c.CreateKey(ctx, KeyOptions{ExpiresIn: 90 * time.Minute}) }, "POST", "/v1/keys", nil,
			map[string]any{"expires_in": 5400.0}, 201, map[string]any{"id": "k2", "key": "sk_2"}, nil},
		{"ListKeys", func(c *Client) (any, error) { return c.ListKeys(ctx) }, "GET", "/v1/keys", nil, nil, 200,
			map[string]any{"keys": []any{map[string]any{"id": "k1", "revoked_at": t0, "scopes": []string{"admin"}}}}, func(t *testing.T, v any) {
				if ks := v.([]Key); len(ks) != 1 || !ks[0].RevokedAt.Equal(t0) || ks[0].Scopes[0] != ScopeAdmin {
					t.Errorf("%+v", ks)
				}
			}},
		{"RevokeKey", func(c *Client) (any, error) { return nil, c.RevokeKey(ctx, "k/1") }, "DELETE", "/v1/keys/k%2F1", nil, nil, 204, nil, nil},
		{"Login", func(c *Client) (any, error) { return c.Login(ctx, "a@example.com", "pw12345678") }, "POST", "/v1/auth/login", nil,
			map[string]any{"email": "a@example.com", "password": "pw12345678"}, 200,
			map[string]any{"token": "ws_tok", "expires_at": t0, "user": userJSON, "team": teamJSON}, func(t *testing.T, v any) {
				if s := v.(*Session); s.Token != "ws_tok" || s.User.Email != "a@example.com" || s.Team.Quota.MaxCPUCores != 2.5 {
					t.Errorf("%+v", s)
				}
			}},
		{"Logout", func(c *Client) (any, error) { return nil, c.Logout(ctx) }, "POST", "/v1/auth/logout", nil, nil, 204, nil, nil},
		{"Me", func(c *Client) (any, error) { return c.Me(ctx) }, "GET", "/v1/me", nil, nil, 200,
			map[string]any{"team": teamJSON, "key_id": "k1", "scopes": []string{"admin"}, "admin": true}, func(t *testing.T, v any) {
				if m := v.(*Me); m.Team.ID != "team_1" || m.User != nil || !m.Admin || m.KeyID != "k1" {
					t.Errorf("%+v", m)
				}
			}},
		{"CreateTeam", func(c *Client) (any, error) {
			return c.CreateTeam(ctx, TeamOptions{Name: "acme", Quota: &QuotaPatch{MaxSandboxes: Ptr[int64](5), MaxCPUCores: Ptr(2.5), MaxDiskMB: Ptr[int64](0)},
				PlanID: Ptr("pro"), SpendLimit: Ptr("100.50")})
		}, "POST", "/v1/teams", nil, map[string]any{"name": "acme", "plan_id": "pro", "spend_limit": "100.50",
			"quota": map[string]any{"max_sandboxes": 5.0, "max_cpu_cores": 2.5, "max_disk_mb": 0.0}},
			201, teamJSON, func(t *testing.T, v any) {
				if tm := v.(*Team); tm.ID != "team_1" || tm.SpendLimit != "100.50" || tm.Usage == nil || tm.Usage.MemoryMB != 512 || tm.Quota.RequestsPerMinute != 600 {
					t.Errorf("%+v", tm)
				}
			}},
		{"ListTeams", func(c *Client) (any, error) { return c.ListTeams(ctx) }, "GET", "/v1/teams", nil, nil, 200, map[string]any{"teams": []any{teamJSON}},
			func(t *testing.T, v any) {
				if ts := v.([]Team); len(ts) != 1 || ts[0].Name != "acme" {
					t.Errorf("%+v", ts)
				}
			}},
		{"GetTeam", func(c *Client) (any, error) { return c.GetTeam(ctx, "team_1") }, "GET", "/v1/teams/team_1", nil, nil, 200, teamJSON, nil},
		{"UpdateTeam", func(c *Client) (any, error) { return c.UpdateTeam(ctx, "team_1", TeamUpdate{SpendLimit: Ptr("")}) }, "PATCH", "/v1/teams/team_1", nil,
			map[string]any{"spend_limit": ""}, 200, teamJSON, nil},
		{"UpdateTeam quota", func(c *Client) (any, error) {
			return c.UpdateTeam(ctx, "team_1", TeamUpdate{Quota: &QuotaPatch{RequestsPerMinute: Ptr[int64](0)}})
		}, "PATCH", "/v1/teams/team_1", nil, map[string]any{"quota": map[string]any{"requests_per_minute": 0.0}}, 200, teamJSON, nil},
		{"UpdateTeam whole quota", func(c *Client) (any, error) {
			return c.UpdateTeam(ctx, "team_1", TeamUpdate{Quota: Quota{MaxSandboxes: 2, MaxCPUCores: 1.5}.Patch()})
		}, "PATCH", "/v1/teams/team_1", nil, map[string]any{"quota": map[string]any{"max_sandboxes": 2.0, "max_cpu_cores": 1.5, "max_memory_mb": 0.0,
			"max_disk_mb": 0.0, "requests_per_minute": 0.0, "max_snapshots": 0.0, "max_templates": 0.0, "max_template_mb": 0.0}}, 200, teamJSON, nil},
		{"CreateUser", func(c *Client) (any, error) {
			return c.CreateUser(ctx, UserOptions{Email: "a@example.com", Password: "pw12345678", Role: RoleAdmin, TeamID: "team_1"})
		}, "POST", "/v1/users", nil, map[string]any{"email": "a@example.com", "password": "pw12345678", "role": "admin", "team_id": "team_1"}, 201, userJSON,
			func(t *testing.T, v any) {
				if u := v.(*User); u.ID != "u1" || u.Role != RoleAdmin || !u.LastLoginAt.IsZero() {
					t.Errorf("%+v", u)
				}
			}},
		{"ListUsers", func(c *Client) (any, error) { return c.ListUsers(ctx, "team_1") }, "GET", "/v1/users", url.Values{"team_id": {"team_1"}}, nil, 200,
			map[string]any{"users": []any{userJSON}}, nil},
		{"UpdateUser", func(c *Client) (any, error) { return c.UpdateUser(ctx, "u1", UserUpdate{Role: Ptr(RoleViewer)}) }, "PATCH", "/v1/users/u1", nil,
			map[string]any{"role": "viewer"}, 200, userJSON, nil},
		{"UpdateUser own password", func(c *Client) (any, error) {
			return c.UpdateUser(ctx, "u1", UserUpdate{Password: Ptr("new-password"), CurrentPassword: Ptr("old-password")})
		}, "PATCH", "/v1/users/u1", nil, map[string]any{"password": "new-password", "current_password": "old-password"}, 200, userJSON, nil},
		{"DeleteUser", func(c *Client) (any, error) { return nil, c.DeleteUser(ctx, "u1") }, "DELETE", "/v1/users/u1", nil, nil, 204, nil, nil},
		{"Audit", func(c *Client) (any, error) {
			return c.Audit(ctx, AuditQuery{Action: "sandbox.create", Since: t0, Until: t0.Add(time.Hour), Before: "99", Limit: 10, TeamID: "team_2"})
		}, "GET", "/v1/audit", url.Values{"action": {"sandbox.create"}, "since": {"2026-11-01T00:00:00Z"}, "until": {"2026-11-01T01:00:00Z"}, "before": {"99"}, "limit": {"10"}, "team_id": {"team_2"}}, nil,
			200, map[string]any{"entries": []any{map[string]any{"id": 98, "at": t0, "actor_type": "key", "actor_id": "k1", "action": "sandbox.create", "target": "s1",
				"status": 201, "remote_addr": "127.0.0.1", "request_id": "req_1", "details": map[string]string{"template": "base"}}}, "next": "98"},
			func(t *testing.T, v any) {
				if p := v.(*AuditPage); p.Next != "98" || p.Entries[0].ID != 98 || p.Entries[0].Details["template"] != "base" {
					t.Errorf("%+v", p)
				}
			}},
		{"Usage", func(c *Client) (any, error) {
			return c.Usage(ctx, UsageQuery{From: t0, To: t0.AddDate(0, 1, 0), GroupBy: GroupByDay, SandboxID: "s1"})
		}, "GET", "/v1/usage", url.Values{"from": {"2026-11-01T00:00:00Z"}, "to": {"2026-12-01T00:00:00Z"}, "group_by": {"day"}, "sandbox_id": {"s1"}}, nil,
			200, map[string]any{"from": t0, "to": t0, "group_by": "day", "rows": []any{map[string]any{"day": t0, "wall_ms": 1000, "cpu_us": 5, "memory_mb_s": 512,
				"disk_mb_s": 9, "net_rx_bytes": 10, "net_tx_bytes": 20}}, "total": map[string]any{"wall_ms": 1000}}, func(t *testing.T, v any) {
				if r := v.(*UsageReport); len(r.Rows) != 1 || r.Rows[0].NetTxBytes != 20 || !r.Rows[0].Day.Equal(t0) || r.Total.WallMS != 1000 {
					t.Errorf("%+v", r)
				}
			}},
		{"Plans", func(c *Client) (any, error) { return c.Plans(ctx) }, "GET", "/v1/plans", nil, nil, 200,
			map[string]any{"plans": []any{map[string]any{"id": "pro", "per_cpu_hour": "0.04", "included_concurrency": 3}}}, func(t *testing.T, v any) {
				if ps := v.([]Plan); ps[0].PerCPUHour != "0.04" || ps[0].IncludedConcurrency != 3 {
					t.Errorf("%+v", ps)
				}
			}},
		{"ListInvoices", func(c *Client) (any, error) { return c.ListInvoices(ctx) }, "GET", "/v1/invoices", nil, nil, 200,
			map[string]any{"invoices": []any{invoiceJSON}}, func(t *testing.T, v any) {
				if is := v.([]Invoice); is[0].Total != "12.34" || is[0].Lines[0].UnitPrice != "0.04" || !is[0].Final {
					t.Errorf("%+v", is)
				}
			}},
		{"GetInvoice", func(c *Client) (any, error) { return c.GetInvoice(ctx, "2026-10") }, "GET", "/v1/invoices/2026-10", nil, nil, 200, invoiceJSON, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.resp == nil {
					w.WriteHeader(tc.status)
					return
				}
				writeJSON(w, tc.status, tc.resp)
			})
			v, err := tc.call(f.client())
			if err != nil {
				t.Fatal(err)
			}
			r := f.last()
			if r.method != tc.method || r.path != tc.path {
				t.Errorf("request %s %s, want %s %s", r.method, r.path, tc.method, tc.path)
			}
			q, _ := url.ParseQuery(r.query)
			if len(q) == 0 {
				q = nil
			}
			if !reflect.DeepEqual(q, tc.query) {
				t.Errorf("query %v, want %v", q, tc.query)
			}
			if tc.body == nil && len(r.body) > 0 {
				t.Errorf("unexpected body %s", r.body)
			}
			if tc.body != nil {
				if got := decodeBody(t, r.body); !reflect.DeepEqual(got, tc.body) {
					t.Errorf("body %v\nwant %v", got, tc.body)
				}
			}
			if tc.check != nil {
				tc.check(t, v)
			}
		})
	}
}

func TestInvoiceCSV(t *testing.T) {
	const csv = "description,quantity,unit,unit_price,amount\nCPU,1.5,hour,0.04,0.06\n"
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("format") != "csv" {
			apiError(w, 400, "invalid", "want csv")
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		io.WriteString(w, csv)
	})
	rc, err := f.client().InvoiceCSV(context.Background(), "2026-10")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != csv || f.last().path != "/v1/invoices/2026-10" || f.last().header.Get("Accept") != "text/csv" {
		t.Errorf("csv %q, %v, %+v", b, err, f.last())
	}
	f.set(func(w http.ResponseWriter, r *http.Request) { apiError(w, 404, "not_found", "no invoice for 2020-01") })
	if _, err := f.client().InvoiceCSV(context.Background(), "2020-01"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing invoice: %v", err)
	}
}

// TestIterators: AllSandboxes and AllAuditEntries follow cursors, stop when the
// caller stops, and yield errors.
func TestIterators(t *testing.T) {
	ctx := context.Background()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		page := 0
		if c := q.Get("cursor") + q.Get("before"); c != "" {
			page, _ = strconv.Atoi(c)
		}
		if page == 3 {
			apiError(w, 503, "unavailable", "page 3 is gone")
			return
		}
		next := strconv.Itoa(page + 1)
		if page == 2 {
			next = ""
		}
		if r.URL.Path == "/v1/audit" {
			writeJSON(w, 200, map[string]any{"entries": []any{map[string]any{"id": page*2 + 1}, map[string]any{"id": page*2 + 2}}, "next": next})
			return
		}
		writeJSON(w, 200, map[string]any{"sandboxes": []any{map[string]any{"id": fmt.Sprint("s", page*2+1)}, map[string]any{"id": fmt.Sprint("s", page*2+2)}}, "next_cursor": next})
	})
	c := f.client(WithRetry(RetryPolicy{MaxAttempts: 1}))
	var ids []string
	for s, err := range c.AllSandboxes(ctx, ListOptions{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	if fmt.Sprint(ids) != "[s1 s2 s3 s4 s5 s6]" {
		t.Errorf("ids %v", ids)
	}
	n := 0
	for range c.AllSandboxes(ctx, ListOptions{}) {
		if n++; n == 3 {
			break
		}
	}
	reqs := len(f.requests())
	var auditIDs []int64
	for e, err := range c.AllAuditEntries(ctx, AuditQuery{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		auditIDs = append(auditIDs, e.ID)
	}
	if fmt.Sprint(auditIDs) != "[1 2 3 4 5 6]" || len(f.requests())-reqs != 3 {
		t.Errorf("audit ids %v, %d requests", auditIDs, len(f.requests())-reqs)
	}
	var gotErr error
	for _, err := range c.AllSandboxes(ctx, ListOptions{Cursor: "3"}) {
		gotErr = err
	}
	if !errors.Is(gotErr, ErrUnavailable) {
		t.Errorf("iterator error: %v", gotErr)
	}
}

// TestResponseShapes: every response type the routes decode is also the shape the
// SDK's own JSON encoding produces (stable -o json output for the CLI).
func TestResponseShapes(t *testing.T) {
	b, _ := json.Marshal(CreatedKey{Key: Key{ID: "k"}, Secret: "sk"})
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if m["key"] != "sk" || m["id"] != "k" {
		t.Errorf("CreatedKey JSON %s", b)
	}
}
