package timed_test

import (
	"context"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlite"
	"github.com/warren-sh/warren/internal/store/timed"
)

// TestWrap runs calls through a timed SQLite store: each is reported once under its
// role.method name, errors included, and the answers are the store's.
func TestWrap(t *testing.T) {
	ctx := context.Background()
	inner, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ops []string
	st := timed.Wrap(inner, func(op string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if d <= 0 {
			t.Errorf("%s took %v", op, d)
		}
		ops = append(ops, op)
	})
	defer st.Close()
	if err := st.CreateTeam(ctx, &domain.Team{ID: "team1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetTeam(ctx, "team1"); err != nil || got.Name != "one" {
		t.Fatalf("GetTeam = %+v, %v", got, err)
	}
	if _, err := st.GetTeam(ctx, "nope"); !domain.IsKind(err, domain.KindNotFound) {
		t.Fatalf("GetTeam(nope) = %v, want not found", err)
	}
	if _, _, err := st.ListSandboxes(ctx, domain.SandboxFilter{TeamID: domain.AnyTeam}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UsedSlots(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"teams.create", "teams.get", "teams.get", "sandboxes.list", "sandboxes.used_slots"}
	if !reflect.DeepEqual(ops, want) {
		t.Errorf("ops %q, want %q", ops, want)
	}
}
