package sandbox

import (
	"context"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// registry is the live-sandbox registry: the running sandboxes this server tracks,
// the address slots held while sandboxes start or are torn down, and the goroutines
// Close waits for. The Service owns it; Files, Processes, Code, Terminals and Logs find
// sandboxes through the Service's lookup, which reads it.
type registry struct {
	mu       sync.Mutex
	live     map[string]*liveSandbox  // running sandboxes by id, including those being ended
	reserved map[int]bool             // address slots being started or torn down
	tearing  map[string]bool          // ended sandboxes the node is still removing
	resuming map[string]chan struct{} // paused sandboxes being resumed, closed when done
	pooled   map[string]bool          // warm pool members (no row) and those being started
	nextSlot int                      // where the next slot search starts
	closed   bool
	wg       sync.WaitGroup // timers' ends, teardowns and process recorders
}

// liveSandbox is a running sandbox: its row as last written, its agent and its timer.
type liveSandbox struct {
	sb    *domain.Sandbox
	agent *agent
	// privatePorts are the template's private ports, which the proxy opens only with a
	// token (see Service.Route).
	privatePorts []int
	timer        *time.Timer
	ending       bool // being ended or paused: no new work may start in it
	// ctx ends when the sandbox ends (or the service closes), with the reason as its
	// cause, so that commands and streams running in it end too (see whileLive).
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func newRegistry() *registry {
	return &registry{live: map[string]*liveSandbox{}, reserved: map[int]bool{}, tearing: map[string]bool{},
		resuming: map[string]chan struct{}{}, pooled: map[string]bool{}}
}

// reserveSlot reserves a free address slot of n, given those the store says are held
// by sandboxes that are not terminal: the first free one after the last given out.
func (r *registry) reserveSlot(used []int, n int) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	held := make(map[int]bool, len(used)+len(r.reserved))
	for _, u := range used {
		held[u] = true
	}
	for s := range r.reserved {
		held[s] = true
	}
	// Round robin from the last slot given out: an address is reused as late as
	// possible, so nothing that still remembers a killed sandbox's address (a client's
	// keep-alive connection, a neighbour entry) meets its successor.
	for k := 0; k < n; k++ {
		i := (r.nextSlot + k) % n
		if !held[i] {
			r.reserved[i] = true
			r.nextSlot = (i + 1) % n
			return i, nil
		}
	}
	return 0, domain.Errorf(domain.KindUnavailable, "this node has no free sandbox addresses (%d in use); kill sandboxes or widen the address pool", len(held))
}

// releaseSlot gives up a reservation.
func (r *registry) releaseSlot(slot int) {
	r.mu.Lock()
	delete(r.reserved, slot)
	r.mu.Unlock()
}

// setPooled shields (on) or stops shielding a warm pool member from the sweeper: it
// has no row, so only this set says it is wanted. Its address slot stays reserved
// (reserveSlot) for as long as it is pooled.
func (r *registry) setPooled(id string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.pooled[id] = true
	} else {
		delete(r.pooled, id)
	}
}

// add tracks a running sandbox and arms its timer to call expire after endsIn.
func (r *registry) add(sb *domain.Sandbox, a *agent, privatePorts []int, endsIn time.Duration, expire func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ls := &liveSandbox{sb: sb, agent: a, privatePorts: privatePorts}
	ls.ctx, ls.cancel = context.WithCancelCause(context.Background())
	ls.timer = time.AfterFunc(endsIn, expire)
	r.live[sb.ID] = ls
}

// get returns the live sandbox id and whether it is being ended.
func (r *registry) get(id string) (ls *liveSandbox, ending, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ls, ok = r.live[id]
	return ls, ok && ls.ending, ok
}

// running reports whether id is live and not being ended.
func (r *registry) running(id string) bool {
	_, ending, ok := r.get(id)
	return ok && !ending
}

// route returns where the proxy sends traffic for id, if it is live and not being
// ended.
func (r *registry) route(id string) (*domain.Route, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ls, ok := r.live[id]
	if !ok || ls.ending {
		return nil, false
	}
	return &domain.Route{SandboxID: id, Address: ls.sb.Address, Running: true, AccessToken: ls.sb.AccessToken,
		TrafficToken: ls.sb.TrafficToken, PrivatePorts: ls.privatePorts, Done: ls.ctx.Done()}, true
}

// setEnd makes the live sandbox id end at `at`, d from now, when keep(current end)
// allows it. It returns a copy of the row, whether it changed, and false when id is
// not live (or being ended).
func (r *registry) setEnd(id string, at time.Time, d time.Duration, keep func(current time.Time) bool) (sb domain.Sandbox, changed, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ls, ok := r.live[id]
	if !ok || ls.ending {
		return domain.Sandbox{}, false, false
	}
	if keep(ls.sb.EndsAt) {
		return *ls.sb, false, true
	}
	ls.sb.EndsAt = at
	ls.timer.Reset(d)
	return *ls.sb, true, true
}

// beginEnd marks the live sandbox id as being ended: its timer stops and its context
// ends with cause. It returns false when id is not live or already being ended.
func (r *registry) beginEnd(id string, cause error) (*liveSandbox, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ls, ok := r.live[id]
	if !ok || ls.ending {
		return nil, false
	}
	ls.ending = true
	ls.timer.Stop()
	ls.cancel(cause)
	return ls, true
}

// halted moves an ended sandbox from the live set to those being torn down: its id
// stays shielded from the sweeper and its slot reserved until tornDown. It returns a
// copy of its row.
func (r *registry) halted(ls *liveSandbox) domain.Sandbox {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.live, ls.sb.ID)
	r.tearing[ls.sb.ID] = true
	r.reserved[ls.sb.Slot] = true
	return *ls.sb
}

// tornDown forgets an ended sandbox the node has removed (or failed to: the sweeper
// retries).
func (r *registry) tornDown(id string, slot int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.tearing, id)
	delete(r.reserved, slot)
}

// snapshot returns the live sandboxes, those being ended included.
func (r *registry) snapshot() []*liveSandbox {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*liveSandbox, 0, len(r.live))
	for _, ls := range r.live {
		out = append(out, ls)
	}
	return out
}

// rows returns copies of the rows of the live sandboxes that are not being ended.
func (r *registry) rows() []*domain.Sandbox {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*domain.Sandbox, 0, len(r.live))
	for _, ls := range r.live {
		if !ls.ending {
			cp := *ls.sb
			out = append(out, &cp)
		}
	}
	return out
}

// present adds to ids every sandbox that has traces on the node because of this
// server: the live ones, those being torn down and the warm pool's members.
func (r *registry) present(ids map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.live {
		ids[id] = true
	}
	for id := range r.tearing {
		ids[id] = true
	}
	for id := range r.pooled {
		ids[id] = true
	}
}

// count returns the number of live sandboxes.
func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.live)
}

// spawn runs f in a goroutine that close waits for, unless the registry is closed.
func (r *registry) spawn(f func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
	return true
}

// close stops every timer and ends every live sandbox's context with cause(id) (the
// sandboxes keep running), then waits for the goroutines spawned and the teardowns.
func (r *registry) close(cause func(id string) error) {
	r.mu.Lock()
	r.closed = true
	for id, ls := range r.live {
		ls.timer.Stop()
		ls.cancel(cause(id))
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// whileLive returns a context that ends with ctx or when the sandbox ends, whichever
// is first. Call done when the work is over.
func whileLive(ctx context.Context, ls *liveSandbox) (context.Context, func()) {
	mctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(ls.ctx, func() { cancel(context.Cause(ls.ctx)) })
	return mctx, func() {
		stop()
		cancel(nil)
	}
}

// stopped replaces err with the reason the sandbox ended, if it did: a command cut
// off by its sandbox's end failed because of that, not because of how the
// connection to the agent broke.
func (ls *liveSandbox) stopped(err error) error {
	if err != nil && ls.ctx.Err() != nil {
		return context.Cause(ls.ctx)
	}
	return err
}

// beginPause marks the live sandbox id as being paused: like being ended, no new work
// may start in it and its timer stops, but what runs in it goes on, since a pause that
// fails leaves it running (abortPause). It returns false when id is not live or is
// already being ended or paused.
func (r *registry) beginPause(id string) (*liveSandbox, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ls, ok := r.live[id]
	if !ok || ls.ending {
		return nil, false
	}
	ls.ending = true
	ls.timer.Stop()
	return ls, true
}

// abortPause takes back beginPause after a pause that failed: the sandbox runs on,
// its timer re-armed to fire after endsIn.
func (r *registry) abortPause(ls *liveSandbox, endsIn time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ls.ending = false
	ls.timer.Reset(endsIn)
}

// paused forgets a sandbox that was paused: what ran in it ends with cause. Nothing of
// it is left on the node but its directory, so no slot stays reserved.
func (r *registry) paused(ls *liveSandbox, cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ls.cancel(cause)
	delete(r.live, ls.sb.ID)
}

// beginResume makes the caller the one resuming id. It returns false, and a channel
// that is closed when that one is done, while another call is resuming it.
func (r *registry) beginResume(id string) (<-chan struct{}, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.resuming[id]; ok {
		return ch, false
	}
	ch := make(chan struct{})
	r.resuming[id] = ch
	return ch, true
}

// resumingCh returns the channel closed when the resume of id in flight is done, and
// false when none is.
func (r *registry) resumingCh(id string) (<-chan struct{}, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch, ok := r.resuming[id]
	return ch, ok
}

// setNetwork records np as the policy of the live sandbox id and returns a copy of its
// row; false when id is not live or is being ended.
func (r *registry) setNetwork(id string, np domain.NetworkPolicy) (domain.Sandbox, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ls, ok := r.live[id]
	if !ok || ls.ending {
		return domain.Sandbox{}, false
	}
	ls.sb.Network = np
	return *ls.sb, true
}

// endResume ends the caller's resume of id, which beginResume gave it.
func (r *registry) endResume(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.resuming[id])
	delete(r.resuming, id)
}

// agentCallTimeout bounds an agent call that answers once (metrics, a listing, a stat,
// a signal, a code context): the agent answers those in milliseconds, and one that
// does not answer at all (a sandbox stopped by its tenant with SIGSTOP, a network gone
// quiet) must not hold a request forever. Calls that stream (commands, file contents,
// terminals, code runs) are bounded by their own timeouts and by the sandbox's end.
const agentCallTimeout = 60 * time.Second

// agentCall is one request to a running sandbox's agent. Its ctx ends with the
// request's, when limit passes (if not 0), or when the sandbox is paused or ended
// (whileLive): a connection to a sandbox frozen by a pause never answers and never
// resets, so without this a call in flight then would wait as long as the client does.
type agentCall struct {
	ctx  context.Context
	ls   *liveSandbox
	done func()
}

// callIn begins a call to the agent of ls.
func callIn(ctx context.Context, ls *liveSandbox, limit time.Duration) agentCall {
	cancelLimit := func() {}
	if limit > 0 {
		ctx, cancelLimit = context.WithTimeout(ctx, limit)
	}
	mctx, done := whileLive(ctx, ls)
	return agentCall{ctx: mctx, ls: ls, done: func() { done(); cancelLimit() }}
}

// end ends the call and returns its error, replaced by the reason the sandbox stopped
// if it did (a KindConflict error saying it was paused or stopped while the request
// ran, instead of the broken connection's).
func (c agentCall) end(err error) error {
	c.done()
	return c.ls.stopped(err)
}
