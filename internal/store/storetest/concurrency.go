package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

// testConcurrentWrites has many goroutines create, update and read at once, the way
// concurrent API requests and the reaper do. Every write must succeed: a store may make
// writers wait but must not fail them for being concurrent (no SQLITE_BUSY, no
// serialization failures surfacing to callers).
func testConcurrentWrites(t *testing.T, s domain.Store) {
	const workers, updates = 20, 5
	ctx := t.Context()
	team := addTeam(t, s, "busy")

	var wg sync.WaitGroup
	errs := make(chan error, workers*(updates+4)+workers)
	sandboxes := make([]*domain.Sandbox, workers)
	for w := range workers {
		wg.Add(2)
		go func() { // writer
			defer wg.Done()
			sb := newSandbox(team.ID, at(w, 0))
			sb.State, sb.Slot = domain.StateStarting, w
			sandboxes[w] = sb
			if err := s.CreateSandbox(ctx, sb); err != nil {
				errs <- fmt.Errorf("worker %d: creating sandbox: %w", w, err)
				return
			}
			for i := range updates {
				sb.State, sb.Address = domain.StateRunning, fmt.Sprintf("10.0.%d.%d", w, i)
				sb.StartedAt = at(w, i+1)
				if err := s.UpdateSandbox(ctx, sb); err != nil {
					errs <- fmt.Errorf("worker %d: update %d: %w", w, i, err)
				}
			}
			if w%2 == 0 {
				sb.State, sb.EndReason, sb.StoppedAt = domain.StateStopped, "killed", at(w, 100)
				if err := s.UpdateSandbox(ctx, sb); err != nil {
					errs <- fmt.Errorf("worker %d: stopping: %w", w, err)
				}
			}
			k := &domain.APIKey{ID: domain.NewID(20), TeamID: team.ID, Hash: domain.NewID(40), CreatedAt: at(w, 0)}
			if err := s.CreateAPIKey(ctx, k); err != nil {
				errs <- fmt.Errorf("worker %d: creating key: %w", w, err)
				return
			}
			if err := s.TouchAPIKey(ctx, k.ID, at(w, 1)); err != nil {
				errs <- fmt.Errorf("worker %d: touching key: %w", w, err)
			}
		}()
		go func() { // reader
			defer wg.Done()
			if _, _, err := s.ListSandboxes(ctx, domain.SandboxFilter{TeamID: team.ID, Limit: 5}); err != nil {
				errs <- fmt.Errorf("reader %d: listing: %w", w, err)
			}
			if _, err := s.UsedSlots(ctx, nil); err != nil {
				errs <- fmt.Errorf("reader %d: used slots: %w", w, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	for w, want := range sandboxes {
		got, err := s.GetSandbox(ctx, team.ID, want.ID)
		must(t, fmt.Sprintf("getting sandbox of worker %d", w), err)
		same(t, fmt.Sprintf("sandbox of worker %d", w), got, want, normSandbox)
	}
	got := listAll(t, s, domain.SandboxFilter{TeamID: team.ID, Limit: 7}, nil)
	if want := expect(sandboxes, domain.SandboxFilter{TeamID: team.ID}); len(got) != workers || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listing after concurrent writes:\n got %v\nwant %v", got, want)
	}
	keys, err := s.ListAPIKeys(ctx, team.ID)
	must(t, "listing keys", err)
	if len(keys) != workers {
		t.Errorf("%d keys after %d concurrent creates", len(keys), workers)
	}
	slots, err := s.UsedSlots(ctx, nil)
	must(t, "UsedSlots", err)
	if len(slots) != workers/2 {
		t.Errorf("UsedSlots = %v, want the %d odd workers' slots", slots, workers/2)
	}
}
