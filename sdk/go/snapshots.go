package warren

import (
	"context"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Lifecycle says what happens to a sandbox at its timeout, and to a paused one when
// traffic comes for it through the proxy.
type Lifecycle struct {
	// OnTimeout is "kill" (the default) or "pause": a sandbox paused at its timeout
	// keeps its files, memory and processes until it is resumed or deleted.
	OnTimeout string `json:"on_timeout,omitempty"`
	// AutoResume makes a request through the proxy to the paused sandbox resume it.
	AutoResume bool `json:"auto_resume,omitempty"`
}

// Pause saves the running sandbox's memory, files and processes and stops it: a paused
// sandbox uses no CPU, holds no memory and does not count toward the team's sandbox
// quota. It keeps its id; Resume starts it again where it was. It returns the sandbox
// as the server describes it (State "paused"). A sandbox that is not running is
// ErrConflict, and so is one whose runtime cannot checkpoint (runc).
func (s *Sandbox) Pause(ctx context.Context) (*SandboxInfo, error) {
	var info SandboxInfo
	if err := s.c.call(ctx, request{route: routePauseSandbox, params: []string{s.ID}}, &info); err != nil {
		return nil, err
	}
	s.setInfo(&info)
	return &info, nil
}

type resumeWire struct {
	Timeout int64 `json:"timeout,omitempty"`
}

// Resume starts a paused sandbox again with the memory, files and processes it had
// when it was paused: a process that was serving goes on serving at the same URL. It
// then ends timeout from now (rounded up to whole seconds; 0: the server's default).
// It returns the sandbox (State "running"). A sandbox that is not paused is
// ErrConflict.
func (s *Sandbox) Resume(ctx context.Context, timeout time.Duration) (*SandboxInfo, error) {
	var info SandboxInfo
	r := request{route: routeResumeSandbox, params: []string{s.ID}, json: resumeWire{seconds(timeout)}}
	if err := s.c.call(ctx, r, &info); err != nil {
		return nil, err
	}
	s.setInfo(&info)
	return &info, nil
}

// ForkOptions describe a fork. Zero fields mean the defaults.
type ForkOptions struct {
	// Count is how many sandboxes to start (1 to 20; 0 means 1).
	Count int
	// Timeout is how long each new sandbox lives (rounded up to whole seconds; 0: the
	// server's default).
	Timeout time.Duration
}

type forkWire struct {
	Count   int   `json:"count,omitempty"`
	Timeout int64 `json:"timeout,omitempty"`
}

type forkList struct {
	Sandboxes []SandboxInfo `json:"sandboxes"`
	Errors    []ForkFailure `json:"errors"`
}

// ForkFailure is a copy of a fork that did not start: each copy is admitted like a
// create, so one may find the team's quota full or the node without room while the
// others run.
type ForkFailure struct {
	// Index is the copy's position among those asked for, from 0.
	Index int `json:"index"`
	// Status, Code and Message are the error a create would have answered.
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ForkError is returned by Fork, beside the copies that started, when some did not.
type ForkError struct {
	// Failures are the copies that did not start.
	Failures []ForkFailure
	// Started is how many did.
	Started int
}

// Error says how many copies did not start, and why.
func (e *ForkError) Error() string {
	msgs := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		msgs[i] = fmt.Sprintf("copy %d: %s", f.Index, f.Message)
	}
	return fmt.Sprintf("warren: fork: %d of %d copies did not start (%s)", len(e.Failures), len(e.Failures)+e.Started, strings.Join(msgs, "; "))
}

// Fork starts opts.Count new sandboxes, each a copy of this running sandbox's memory
// and files taken at one instant, with its own id, network address, hostname and
// timeout. What a fork writes is seen neither by the parent nor by its siblings; the
// parent keeps running. A sandbox that is not running is ErrConflict.
//
// When some copies start and others do not, Fork returns the ones that started (they
// run: kill them when done) with a *ForkError saying why the others did not. When
// none starts, it returns the error of the first.
func (s *Sandbox) Fork(ctx context.Context, opts ForkOptions) ([]*Sandbox, error) {
	var list forkList
	w := forkWire{Count: opts.Count, Timeout: seconds(opts.Timeout)}
	if err := s.c.call(ctx, request{route: routeForkSandbox, params: []string{s.ID}, json: w}, &list); err != nil {
		return nil, err
	}
	out := make([]*Sandbox, len(list.Sandboxes))
	for i, info := range list.Sandboxes {
		out[i] = &Sandbox{ID: info.ID, c: s.c, info: info}
	}
	if len(list.Errors) > 0 {
		return out, &ForkError{Failures: list.Errors, Started: len(out)}
	}
	return out, nil
}

// Snapshot is a sandbox saved at one instant, memory and files, which new sandboxes
// start from (SandboxOptions.Snapshot). Deleting it does not affect them.
type Snapshot struct {
	ID string `json:"id"`
	// Name is unique in the team; creates may give it instead of the id ("" = none).
	Name string `json:"name,omitempty"`
	// SandboxID is the sandbox it was taken of; Template and Runtime are that
	// sandbox's, and a sandbox started from it uses the same.
	SandboxID string `json:"sandbox_id"`
	Template  string `json:"template_id"`
	Runtime   string `json:"runtime"`
	// SizeBytes is what it takes on the server's disk.
	SizeBytes int64     `json:"size_bytes"`
	CreatedAt time.Time `json:"created_at"`
}

type createSnapshotWire struct {
	Name string `json:"name,omitempty"`
}

// SnapshotPage is one page of a snapshot listing, newest first.
type SnapshotPage struct {
	// Snapshots are the page's snapshots.
	Snapshots []Snapshot `json:"snapshots"`
	// NextCursor fetches the next page (as SnapshotListOptions.Cursor); "" on the last.
	NextCursor string `json:"next_cursor,omitempty"`
}

// SnapshotListOptions filter a snapshot listing; empty fields match everything.
type SnapshotListOptions struct {
	// SandboxID keeps the snapshots taken of this sandbox.
	SandboxID string
	// Limit is the page size (the server's default when 0).
	Limit int
	// Cursor is SnapshotPage.NextCursor of the previous page.
	Cursor string
}

// CreateSnapshot saves the running sandbox, memory and files, as a snapshot the team
// keeps (counted against its max_snapshots quota); name ("" for none) must be unique
// in the team. The sandbox keeps running. A sandbox that is not running is ErrConflict.
func (s *Sandbox) CreateSnapshot(ctx context.Context, name string) (*Snapshot, error) {
	var snap Snapshot
	err := s.c.call(ctx, request{route: routeCreateSnapshot, params: []string{s.ID}, json: createSnapshotWire{Name: name}}, &snap)
	if err != nil {
		return nil, err
	}
	return &snap, nil
}

// ListSnapshots returns one page of the team's snapshots; see AllSnapshots to iterate
// over every page.
func (c *Client) ListSnapshots(ctx context.Context, opts SnapshotListOptions) (*SnapshotPage, error) {
	q := url.Values{}
	if opts.SandboxID != "" {
		q.Set("sandbox_id", opts.SandboxID)
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	var page SnapshotPage
	if err := c.call(ctx, request{route: routeListSnapshots, query: q}, &page); err != nil {
		return nil, err
	}
	if page.Snapshots == nil {
		page.Snapshots = []Snapshot{}
	}
	return &page, nil
}

// AllSnapshots iterates over the team's snapshots matching opts, following the pages
// (opts.Limit is the page size). An error ends the iteration after yielding it.
func (c *Client) AllSnapshots(ctx context.Context, opts SnapshotListOptions) iter.Seq2[*Snapshot, error] {
	return func(yield func(*Snapshot, error) bool) {
		for {
			page, err := c.ListSnapshots(ctx, opts)
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range page.Snapshots {
				if !yield(&page.Snapshots[i], nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			opts.Cursor = page.NextCursor
		}
	}
}

// GetSnapshot describes one of the team's snapshots, by id or name.
func (c *Client) GetSnapshot(ctx context.Context, ref string) (*Snapshot, error) {
	var snap Snapshot
	if err := c.call(ctx, request{route: routeGetSnapshot, params: []string{ref}}, &snap); err != nil {
		return nil, err
	}
	return &snap, nil
}

// DeleteSnapshot removes one of the team's snapshots (by id or name) and its files.
// Sandboxes started from it are not affected.
func (c *Client) DeleteSnapshot(ctx context.Context, ref string) error {
	return c.call(ctx, request{route: routeDeleteSnapshot, params: []string{ref}}, nil)
}

// Pool is one template's warm pool on the server's node: sandboxes started ahead of any
// request, which a create of that template with the pool's profile takes instead of
// starting one.
type Pool struct {
	Template string `json:"template_id"`
	// Size is how many members the pool keeps; Ready how many wait now; Starting is 1
	// while one is being started.
	Size     int `json:"size"`
	Ready    int `json:"ready"`
	Starting int `json:"starting"`
	// Claims counts creates a member served; Misses creates of the template that
	// started cold; Failures members that could not start or take a claim's identity.
	Claims   int64 `json:"claims"`
	Misses   int64 `json:"misses"`
	Failures int64 `json:"failures"`
}

type poolList struct {
	Pools []Pool `json:"pools"`
}

// Pools lists the server's warm pools (platform admins only; ErrNotFound when the
// server keeps none).
func (c *Client) Pools(ctx context.Context) ([]Pool, error) {
	var list poolList
	if err := c.call(ctx, request{route: routePools}, &list); err != nil {
		return nil, err
	}
	if list.Pools == nil {
		list.Pools = []Pool{}
	}
	return list.Pools, nil
}
