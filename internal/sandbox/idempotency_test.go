package sandbox

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// memKeys gives the world's store idempotency keys in memory, with the real stores'
// rules (storetest pins them): a key held unless expired or abandoned, Complete and
// Release only by the reservation's token. It returns the map, keyed by team/key.
func (w *world) memKeys() map[string]*domain.IdempotencyKey {
	keys := map[string]*domain.IdempotencyKey{}
	id := func(team, key string) string { return team + "/" + key }
	w.store.reserveKey = func(_ context.Context, k *domain.IdempotencyKey, pendingBefore, expiredBefore time.Time) (*domain.IdempotencyKey, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if h, ok := keys[id(k.TeamID, k.Key)]; ok && !h.CreatedAt.Before(expiredBefore) && (h.SandboxID != "" || !h.CreatedAt.Before(pendingBefore)) {
			c := *h
			return &c, nil
		}
		c := *k
		keys[id(k.TeamID, k.Key)] = &c
		w.calls = append(w.calls, "keys.reserve "+k.Key)
		return nil, nil
	}
	w.store.completeKey = func(_ context.Context, k *domain.IdempotencyKey) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		h, ok := keys[id(k.TeamID, k.Key)]
		if !ok || h.Token != k.Token || h.SandboxID != "" {
			return domain.Errorf(domain.KindConflict, "not yours")
		}
		h.SandboxID = k.SandboxID
		return nil
	}
	w.store.releaseKey = func(_ context.Context, k *domain.IdempotencyKey) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if h, ok := keys[id(k.TeamID, k.Key)]; ok && h.Token == k.Token && h.SandboxID == "" {
			delete(keys, id(k.TeamID, k.Key))
			w.calls = append(w.calls, "keys.release "+k.Key)
		}
		return nil
	}
	return keys
}

// TestCreateIdempotent: concurrent creates with one key and one request start one
// sandbox and all get it; a retry gets it as it is now; another request with the key is
// a conflict; another key creates another.
func TestCreateIdempotent(t *testing.T) {
	w := newWorld(t)
	w.memKeys()
	release := make(chan struct{})
	start := w.node.start
	w.node.start = func(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template) (runtime.Handle, string, error) {
		<-release // the others arrive while the first is being created
		return start(ctx, sb, tpl)
	}
	req := domain.CreateSandbox{Metadata: map[string]string{"k": "v"}, IdempotencyKey: "order-1"}
	const n = 10
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sb, err := w.svc.Create(context.Background(), writer, req)
			errs[i] = err
			if sb != nil {
				ids[i] = sb.ID
			}
		}()
	}
	waitFor(t, "the first create to reserve the key", func() bool { return len(w.called("keys.reserve")) == 1 })
	time.Sleep(3 * idempotencyPoll) // let the others poll the pending key
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] || ids[0] == "" {
			t.Fatalf("create %d = %q, %v; want %q", i, ids[i], errs[i], ids[0])
		}
	}
	if got := w.called("node.start"); len(got) != 1 {
		t.Fatalf("node starts: %q; want one", got)
	}

	// A retry later gets the sandbox as it is now.
	w.mu.Lock()
	w.rows[ids[0]].State, w.rows[ids[0]].EndReason = domain.StateStopped, "killed"
	w.mu.Unlock()
	sb, err := w.svc.Create(context.Background(), writer, req)
	if err != nil || sb.ID != ids[0] || sb.State != domain.StateStopped {
		t.Fatalf("retry = %+v, %v; want %s as stopped", sb, err, ids[0])
	}

	// The same key with another request is refused, naming the key.
	other := req
	other.Metadata = map[string]string{"k": "other"}
	_, err = w.svc.Create(context.Background(), writer, other)
	if !domain.IsKind(err, domain.KindConflict) || !strings.Contains(err.Error(), `"order-1"`) || !strings.Contains(err.Error(), "different request") {
		t.Fatalf("another request with the key: %v; want a conflict naming it", err)
	}
	// Another key is another create.
	other.IdempotencyKey = "order-2"
	sb2, err := w.svc.Create(context.Background(), writer, other)
	if err != nil || sb2.ID == ids[0] {
		t.Fatalf("another key = %+v, %v; want a new sandbox", sb2, err)
	}
	if got := w.called("node.start"); len(got) != 2 {
		t.Fatalf("node starts: %q; want two", got)
	}
}

// TestCreateIdempotentFailure: a create that fails releases its key, so that a retry
// creates.
func TestCreateIdempotentFailure(t *testing.T) {
	w := newWorld(t)
	keys := w.memKeys()
	start := w.node.start
	w.node.start = func(context.Context, *domain.Sandbox, *domain.Template) (runtime.Handle, string, error) {
		return runtime.Handle{}, "", errors.New("runsc: boom")
	}
	req := domain.CreateSandbox{IdempotencyKey: "k"}
	if _, err := w.svc.Create(context.Background(), writer, req); !domain.IsKind(err, domain.KindUnavailable) {
		t.Fatalf("failed create: %v", err)
	}
	if len(keys) != 0 || len(w.called("keys.release k")) != 1 {
		t.Fatalf("keys after a failed create: %v; want it released", keys)
	}
	w.node.start = start
	sb, err := w.svc.Create(context.Background(), writer, req)
	if err != nil || keys[teamID+"/k"].SandboxID != sb.ID {
		t.Fatalf("retry = %+v, %v; key %+v", sb, err, keys[teamID+"/k"])
	}
}

// TestCreateIdempotentAbandoned: a key reserved by a create whose server died (pending
// past the lease) is taken over; one still within it makes the retry wait, and answer
// a conflict saying to retry when the wait is over.
func TestCreateIdempotentAbandoned(t *testing.T) {
	w := newWorld(t)
	keys := w.memKeys()
	req := domain.CreateSandbox{IdempotencyKey: "k"}
	plain := req
	plain.IdempotencyKey = ""
	hash, err := requestHash(plain)
	if err != nil {
		t.Fatal(err)
	}
	keys[teamID+"/k"] = &domain.IdempotencyKey{TeamID: teamID, Key: "k", RequestHash: hash, Token: "dead",
		CreatedAt: time.Now().Add(-idempotent{w.svc}.createLease() - time.Second)}
	sb, err := w.svc.Create(context.Background(), writer, req)
	if err != nil || keys[teamID+"/k"].SandboxID != sb.ID || keys[teamID+"/k"].Token == "dead" {
		t.Fatalf("create over an abandoned key = %+v, %v; key %+v", sb, err, keys[teamID+"/k"])
	}

	// A create in progress elsewhere that never finishes: the retry waits for the lease
	// (a clock that runs a minute per reading), then says to retry.
	keys[teamID+"/busy"] = &domain.IdempotencyKey{TeamID: teamID, Key: "busy", RequestHash: hash, Token: "other", CreatedAt: time.Now().Add(time.Hour)}
	var mu sync.Mutex
	clock := time.Now()
	w.svc.cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(time.Minute); return clock }
	req.IdempotencyKey = "busy"
	_, err = w.svc.Create(context.Background(), writer, req)
	if !domain.IsKind(err, domain.KindConflict) || !strings.Contains(err.Error(), "in progress") {
		t.Fatalf("create while another is in progress: %v; want a conflict saying to retry", err)
	}
}

// TestCreateIdempotencyKeyInvalid: keys too long or not printable ASCII
// are refused naming the header, before anything is reserved.
func TestCreateIdempotencyKeyInvalid(t *testing.T) {
	w := newWorld(t) // no memKeys: a reservation would fail with errNotSet
	for _, key := range []string{strings.Repeat("a", 256), "a\nb", "caf\u00e9", "tab\there"} {
		_, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{IdempotencyKey: key})
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Field != "Idempotency-Key" {
			t.Errorf("key %q: %v; want invalid Idempotency-Key", key, err)
		}
	}
	if err := domain.CheckIdempotencyKey(strings.Repeat("~", 255)); err != nil {
		t.Errorf("a 255-character key: %v", err)
	}
	if _, err := w.svc.Create(context.Background(), reader, domain.CreateSandbox{IdempotencyKey: "k"}); !domain.IsKind(err, domain.KindForbidden) {
		t.Errorf("a reader's create with a key: %v; want forbidden before any reservation", err)
	}
}

// TestExpireIdempotencyKeys: the sweep removes keys older than a day.
func TestExpireIdempotencyKeys(t *testing.T) {
	w := newWorld(t)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	w.svc.cfg.Now = func() time.Time { return now }
	var got time.Time
	w.store.deleteKeys = func(_ context.Context, before time.Time) (int64, error) { got = before; return 2, nil }
	if n, err := (idempotent{w.svc}).expireIdempotencyKeys(context.Background()); err != nil || n != 2 || !got.Equal(now.Add(-24*time.Hour)) {
		t.Fatalf("expire = %d, %v, before %v; want 2 before %v", n, err, got, now.Add(-24*time.Hour))
	}
}
