package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warren-sh/warren/internal/testenv"
)

// postgresDatabase creates a database of the test's own on the test PostgreSQL, dropped
// when the test ends, and returns its URL.
func postgresDatabase(t *testing.T) string {
	t.Helper()
	admin := testenv.NeedsEnv(t, "WARREN_TEST_DATABASE_URL", "run scripts/test-services.sh (make test does)")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connecting to %s: %v", admin, err)
	}
	db := fmt.Sprintf("warren_e2e_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping %s: %v", db, err)
		}
		conn.Close(context.Background())
	})
	u, _ := url.Parse(admin)
	u.Path = "/" + db
	return u.String()
}

// TestPostgresBackend runs a server on PostgreSQL (WARREN_DATABASE_URL) in a database of
// its own: teams, quotas, sandboxes, usage and a restart that finds everything again.
func TestPostgresBackend(t *testing.T) {
	env := []string{"WARREN_DATABASE_URL=" + postgresDatabase(t), "WARREN_METER_INTERVAL=1s"}

	dir, err := os.MkdirTemp("", "warren-test-data-")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverOpts{DataDir: dir, ExtraEnv: env})
	if !strings.Contains(s.Logs(), "kind=postgres") {
		t.Errorf("server log does not say it uses PostgreSQL:\n%s", s.Logs())
	}
	_, key := s.newTeam(map[string]any{"name": "pg team", "quota": map[string]any{"max_sandboxes": 2}})
	var wg sync.WaitGroup
	codes := make([]int, 6)
	ids := make([]string, 6)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sb sandboxJSON
			codes[i], _ = s.APIKey(key, "POST", "/v1/sandboxes", map[string]any{"timeout": 120}, &sb)
			ids[i] = sb.ID
		}()
	}
	wg.Wait()
	admitted := 0
	var live []string
	for i, c := range codes {
		if c == 201 {
			admitted++
			live = append(live, ids[i])
		} else if c != 429 {
			t.Errorf("create = %d; want 201 or 429", c)
		}
	}
	if admitted != 2 {
		t.Fatalf("6 concurrent creates against max_sandboxes 2 on PostgreSQL admitted %d", admitted)
	}
	var r execJSON
	if code, raw := s.APIKey(key, "POST", "/v1/sandboxes/"+live[0]+"/commands", map[string]any{"cmd": "echo pg && sleep 1.5"}, &r); code != 200 || r.Stdout != "pg\n" {
		t.Fatalf("exec: %d %s", code, raw)
	}
	s.APIKey(key, "DELETE", "/v1/sandboxes/"+live[0], nil, nil)

	// A graceful restart (which kills the rest) keeps every record.
	s.StopKeep()
	s.Start(env)
	var got sandboxJSON
	if code, raw := s.APIKey(key, "GET", "/v1/sandboxes/"+live[0], nil, &got); code != 200 || got.State != "stopped" || got.EndReason != "killed" {
		t.Errorf("after restart: %d %s", code, raw)
	}
	var us usageJSON
	s.APIKey(key, "GET", "/v1/usage?group_by=sandbox", nil, &us)
	if len(us.Rows) != 2 || us.Total.WallMS < 1500 {
		t.Errorf("usage after restart: %+v; want both sandboxes with their wall time", us)
	}
	var audit struct {
		Entries []map[string]any `json:"entries"`
	}
	s.APIKey(key, "GET", "/v1/audit?action=sandbox.create", nil, &audit)
	if len(audit.Entries) != 6 {
		t.Errorf("audit has %d sandbox.create entries; want 6 (2 admitted, 4 refused)", len(audit.Entries))
	}
}
