package warren

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// tenancyClient is integrationClient for a server with the tenancy API; an older
// server skips the test, except in CI, where the server is built from this tree.
func tenancyClient(t *testing.T, ctx context.Context) (*Client, *Me) {
	t.Helper()
	c := integrationClient(t)
	me, err := c.Me(ctx)
	if errors.Is(err, ErrNotFound) {
		if os.Getenv("CI") != "" {
			t.Fatalf("the server has no GET /v1/me: %v", err)
		}
		t.Skipf("the server predates the tenancy API (GET /v1/me: %v)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !me.Admin {
		if os.Getenv("CI") != "" {
			t.Fatal("CI: the tenancy integration test needs the platform admin key as WARREN_API_KEY (TestMain passes it)")
		}
		t.Skip("the tenancy integration test needs the platform admin key as WARREN_API_KEY")
	}
	return c, me
}

func TestIntegrationTenancy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, _ := tenancyClient(t, ctx)
	name := fmt.Sprintf("sdk-go-%d", time.Now().UnixNano())
	// The quota fields given override the server's default; the others keep it.
	defaults, err := c.CreateTeam(ctx, TeamOptions{Name: name + "-defaults"})
	if err != nil {
		t.Fatalf("create team with the default quota: %v", err)
	}
	team, err := c.CreateTeam(ctx, TeamOptions{Name: name, Quota: &QuotaPatch{MaxSandboxes: Ptr[int64](2), MaxMemoryMB: Ptr[int64](2048)}})
	wantQuota := defaults.Quota
	wantQuota.MaxSandboxes, wantQuota.MaxMemoryMB = 2, 2048
	if err != nil || team.Name != name || team.Quota != wantQuota {
		t.Fatalf("create team: %+v %v; want quota %+v", team, err, wantQuota)
	}
	if got, err := c.GetTeam(ctx, team.ID); err != nil || got.Usage == nil || got.Usage.Sandboxes != 0 {
		t.Errorf("get team: %+v %v", got, err)
	}
	teams, err := c.ListTeams(ctx)
	if err != nil || !containsFunc(teams, func(x Team) bool { return x.ID == team.ID }) {
		t.Errorf("list teams: %v", err)
	}
	// A patch changes only the fields it sets.
	wantQuota.RequestsPerMinute = 1000
	if up, err := c.UpdateTeam(ctx, team.ID, TeamUpdate{Quota: &QuotaPatch{RequestsPerMinute: Ptr[int64](1000)}, SpendLimit: Ptr("25.00")}); err != nil || up.Quota != wantQuota || up.SpendLimit == "" {
		t.Errorf("update team: %+v %v; want quota %+v", up, err, wantQuota)
	}
	wantQuota = Quota{MaxSandboxes: 3}
	if up, err := c.UpdateTeam(ctx, team.ID, TeamUpdate{Quota: wantQuota.Patch()}); err != nil || up.Quota != wantQuota {
		t.Errorf("update team with a whole quota: %+v %v", up, err)
	}
	email := name + "@example.com"
	u, err := c.CreateUser(ctx, UserOptions{Email: email, Password: "correct horse battery", Role: RoleMember, TeamID: team.ID, Name: "SDK"})
	if err != nil || u.TeamID != team.ID || u.Role != RoleMember {
		t.Fatalf("create user: %+v %v", u, err)
	}
	if users, err := c.ListUsers(ctx, team.ID); err != nil || len(users) != 1 || users[0].Email != email {
		t.Errorf("list users: %+v %v", users, err)
	}
	if up, err := c.UpdateUser(ctx, u.ID, UserUpdate{Role: Ptr(RoleViewer)}); err != nil || up.Role != RoleViewer {
		t.Errorf("update user: %+v %v", up, err)
	}
	anon, _ := New(WithAPIKey(""))
	sess, err := anon.Login(ctx, email, "correct horse battery")
	if err != nil || !strings.HasPrefix(sess.Token, "ws_") || sess.Team.ID != team.ID {
		t.Fatalf("login: %+v %v", sess, err)
	}
	if _, err := anon.Login(ctx, email, "wrong password!"); !errors.Is(err, ErrAuthentication) {
		t.Errorf("wrong password: %v", err)
	}
	viewer, _ := New(WithAPIKey(sess.Token))
	if me, err := viewer.Me(ctx); err != nil || me.User == nil || me.User.ID != u.ID || me.Admin {
		t.Errorf("me as the user: %+v %v", me, err)
	}
	if _, err := viewer.CreateSandbox(ctx, SandboxOptions{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("a viewer created a sandbox: %v", err)
	}
	k, err := c.CreateKey(ctx, KeyOptions{Name: "scoped", TeamID: team.ID, Scopes: []string{ScopeSandboxesRead}, ExpiresIn: time.Hour})
	if err != nil || k.TeamID != team.ID || k.ExpiresAt.IsZero() || len(k.Scopes) != 1 {
		t.Fatalf("scoped key: %+v %v", k, err)
	}
	kc, _ := New(WithAPIKey(k.Secret))
	if _, err := kc.ListSandboxes(ctx, ListOptions{}); err != nil {
		t.Errorf("the scoped key cannot read: %v", err)
	}
	if _, err := kc.ListKeys(ctx); !errors.Is(err, ErrForbidden) {
		t.Errorf("the scoped key listed keys: %v", err)
	}
	if err := c.DeleteUser(ctx, u.ID); err != nil {
		t.Errorf("delete user: %v", err)
	}
	if _, err := viewer.Me(ctx); err == nil {
		t.Error("the deleted user's session still works")
	}
	testIntegrationBilling(t, ctx, c)
}

func testIntegrationBilling(t *testing.T, ctx context.Context, c *Client) {
	rep, err := c.Usage(ctx, UsageQuery{GroupBy: GroupByDay})
	if err != nil || rep.GroupBy != "day" || rep.From.IsZero() {
		t.Errorf("usage: %+v %v", rep, err)
	}
	if _, err := c.Plans(ctx); err != nil {
		t.Errorf("plans: %v", err)
	}
	invs, err := c.ListInvoices(ctx)
	if err != nil || len(invs) == 0 {
		t.Fatalf("invoices: %v %v", invs, err)
	}
	period := invs[0].PeriodStart.UTC().Format("2006-01")
	if inv, err := c.GetInvoice(ctx, period); err != nil || inv.ID != invs[0].ID {
		t.Errorf("get invoice %s: %+v %v", period, inv, err)
	}
	rc, err := c.InvoiceCSV(ctx, period)
	if err != nil {
		t.Fatal(err)
	}
	csv, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !strings.Contains(string(csv), ",") {
		t.Errorf("csv: %q %v", csv, err)
	}
	page, err := c.Audit(ctx, AuditQuery{Limit: 5})
	if err != nil || len(page.Entries) == 0 {
		t.Errorf("audit: %+v %v", page, err)
	}
	n := 0
	for _, err := range c.AllAuditEntries(ctx, AuditQuery{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 5 {
			break
		}
	}
}

func containsFunc[T any](s []T, f func(T) bool) bool {
	for _, v := range s {
		if f(v) {
			return true
		}
	}
	return false
}
