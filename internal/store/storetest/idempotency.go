package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Idempotency keys: a key is held per team; ReserveIdempotencyKey takes a free,
// expired or abandoned (pending past pendingBefore) key and otherwise returns its
// holder; Complete and Release act only on the caller's own reservation (its Token);
// DeleteIdempotencyKeys removes records created before a time.

func newKey(teamID, key, token string, created time.Time) *domain.IdempotencyKey {
	return &domain.IdempotencyKey{TeamID: teamID, Key: key, RequestHash: "hash-" + token, Token: token, CreatedAt: created}
}

func normIdem(k domain.IdempotencyKey) domain.IdempotencyKey {
	k.CreatedAt = normTime(k.CreatedAt)
	return k
}

func testIdempotencyKeys(t *testing.T, s domain.Store) {
	ctx := t.Context()
	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")
	never := at(-100000, 0) // nothing is older than this
	first := newKey(a.ID, "k1", "t1", at(10, 1))
	if held, err := s.ReserveIdempotencyKey(ctx, first, never, never); err != nil || held != nil {
		t.Fatalf("reserving a free key = %v, %v; want nil, nil", held, err)
	}
	got, err := s.GetIdempotencyKey(ctx, a.ID, "k1")
	must(t, "GetIdempotencyKey", err)
	same(t, "reserved key", got, first, normIdem)
	// The same key again, of the same team: the holder comes back, unchanged.
	held, err := s.ReserveIdempotencyKey(ctx, newKey(a.ID, "k1", "t2", at(11, 0)), never, never)
	must(t, "reserving a held key", err)
	same(t, "holder of a pending key", held, first, normIdem)
	// Another team's key of the same name is its own.
	if held, err := s.ReserveIdempotencyKey(ctx, newKey(b.ID, "k1", "t3", at(11, 0)), never, never); err != nil || held != nil {
		t.Fatalf("reserving team b's k1 = %v, %v; want nil, nil", held, err)
	}
	_, err = s.GetIdempotencyKey(ctx, a.ID, "nope")
	wantKind(t, "GetIdempotencyKey of an unknown key", err, domain.KindNotFound)

	// Only the reservation's holder completes it, once.
	wrong := *first
	wrong.Token, wrong.SandboxID = "t2", "sb-wrong"
	wantKind(t, "CompleteIdempotencyKey with another token", s.CompleteIdempotencyKey(ctx, &wrong), domain.KindConflict)
	first.SandboxID = "sb-1"
	must(t, "CompleteIdempotencyKey", s.CompleteIdempotencyKey(ctx, first))
	again := *first
	again.SandboxID = "sb-2"
	wantKind(t, "a second CompleteIdempotencyKey", s.CompleteIdempotencyKey(ctx, &again), domain.KindConflict)
	// A completed key is not abandoned, however old: only expiry frees it; Release
	// leaves it alone.
	held, err = s.ReserveIdempotencyKey(ctx, newKey(a.ID, "k1", "t4", at(20, 0)), at(15, 0), never)
	must(t, "reserving a completed key", err)
	same(t, "holder of a completed key", held, first, normIdem)
	must(t, "ReleaseIdempotencyKey of a completed key", s.ReleaseIdempotencyKey(ctx, first))
	got, err = s.GetIdempotencyKey(ctx, a.ID, "k1")
	must(t, "GetIdempotencyKey after Release of a completed key", err)
	same(t, "completed key after Release", got, first, normIdem)
	taker := newKey(a.ID, "k1", "t5", at(30, 0))
	if held, err := s.ReserveIdempotencyKey(ctx, taker, never, at(10, 2)); err != nil || held != nil {
		t.Fatalf("reserving an expired key = %v, %v; want nil, nil", held, err)
	}
	got, err = s.GetIdempotencyKey(ctx, a.ID, "k1")
	must(t, "GetIdempotencyKey after taking an expired key", err)
	same(t, "taken expired key", got, taker, normIdem)

	// A pending key created before pendingBefore is abandoned: it is taken over.
	pend := newKey(a.ID, "k2", "p1", at(40, 0))
	must(t, "reserving k2", nilHeld(s.ReserveIdempotencyKey(ctx, pend, never, never)))
	held, err = s.ReserveIdempotencyKey(ctx, newKey(a.ID, "k2", "p2", at(41, 0)), at(40, 0), never)
	must(t, "reserving k2 pending exactly at pendingBefore", err)
	same(t, "holder of k2", held, pend, normIdem)
	over := newKey(a.ID, "k2", "p3", at(42, 0))
	must(t, "taking over an abandoned k2", nilHeld(s.ReserveIdempotencyKey(ctx, over, at(40, 1), never)))
	// The first holder lost it: its Complete and Release change nothing.
	pend.SandboxID = "sb-late"
	wantKind(t, "CompleteIdempotencyKey after a takeover", s.CompleteIdempotencyKey(ctx, pend), domain.KindConflict)
	must(t, "ReleaseIdempotencyKey after a takeover", s.ReleaseIdempotencyKey(ctx, pend))
	got, err = s.GetIdempotencyKey(ctx, a.ID, "k2")
	must(t, "GetIdempotencyKey k2", err)
	same(t, "k2 after the old holder's calls", got, over, normIdem)
	// Its holder releases it: the key is free again.
	must(t, "ReleaseIdempotencyKey", s.ReleaseIdempotencyKey(ctx, over))
	_, err = s.GetIdempotencyKey(ctx, a.ID, "k2")
	wantKind(t, "GetIdempotencyKey of a released key", err, domain.KindNotFound)

	// DeleteIdempotencyKeys removes what was created before the time.
	n, err := s.DeleteIdempotencyKeys(ctx, at(30, 0))
	must(t, "DeleteIdempotencyKeys", err)
	if n != 1 { // team b's k1 (at 11 s); team a's k1 was retaken at 30 s
		t.Errorf("DeleteIdempotencyKeys removed %d, want 1", n)
	}
	_, err = s.GetIdempotencyKey(ctx, b.ID, "k1")
	wantKind(t, "GetIdempotencyKey of a deleted key", err, domain.KindNotFound)
	if _, err := s.GetIdempotencyKey(ctx, a.ID, "k1"); err != nil {
		t.Errorf("team a's k1 after the sweep: %v", err)
	}
}

func nilHeld(held *domain.IdempotencyKey, err error) error {
	if err == nil && held != nil {
		return domain.Errorf(domain.KindConflict, "key held by token %s", held.Token)
	}
	return err
}

// testIdempotencyRace reserves one key from many goroutines: exactly one gets it, and
// every other sees that one as the holder.
func testIdempotencyRace(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "race")
	const n = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		holders = map[string]int{}
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := newKey(team.ID, "race", domain.NewID(8), at(i, 0))
			held, err := s.ReserveIdempotencyKey(ctx, k, at(-1000, 0), at(-1000, 0))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("reserving: %v", err)
			case held == nil:
				winners = append(winners, k.Token)
			default:
				holders[held.Token]++
			}
		}()
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d reservations won, want exactly 1: %v", len(winners), winners)
	}
	if holders[winners[0]] != n-1 || len(holders) != 1 {
		t.Errorf("losers saw holders %v, want %s %d times", holders, winners[0], n-1)
	}
}
