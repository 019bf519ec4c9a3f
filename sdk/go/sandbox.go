package warren

import (
	"context"
	"fmt"
	"iter"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits are the resources a sandbox may use; zero means the server's default.
type Limits struct {
	CPUCores     float64 `json:"cpu_cores"`
	MemoryMB     int64   `json:"memory_mb"`
	DiskMB       int64   `json:"disk_mb"`
	MaxProcesses int64   `json:"max_processes"`
}

// SandboxInfo is a sandbox as the API describes it. Times the server omits are zero.
type SandboxInfo struct {
	ID     string `json:"id"`
	TeamID string `json:"team_id"`
	// Template is the template the sandbox started from.
	Template string `json:"template"`
	// State is starting, running, paused, stopped or error; the last two are terminal.
	State string `json:"state"`
	// EndReason says why a terminal sandbox ended: killed, timeout, lost, "error: ...".
	EndReason string            `json:"end_reason,omitempty"`
	Metadata  map[string]string `json:"metadata"`
	// EnvKeys are the names of the sandbox's environment variables (never the values).
	EnvKeys  []string `json:"env_keys"`
	Internet bool     `json:"internet"`
	// Network is the sandbox's egress policy (empty lists: none).
	Network NetworkPolicy `json:"network"`
	Limits  Limits        `json:"limits"`
	// Runtime is the runtime running it: gvisor, runc, ...
	Runtime   string    `json:"runtime,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	StartedAt time.Time `json:"started_at,omitzero"`
	EndsAt    time.Time `json:"ends_at,omitzero"`
	StoppedAt time.Time `json:"stopped_at,omitzero"`
	// PausedAt is when the sandbox was last paused (zero if never).
	PausedAt time.Time `json:"paused_at,omitzero"`
	// Lifecycle is what happens at the timeout; nil means the default (killed).
	Lifecycle *Lifecycle `json:"lifecycle,omitempty"`
	// Domain is where the sandbox's ports are reached through the server's proxy:
	// http://<port>-<id>.<domain>/ ("" when the server has no proxy domain).
	Domain string `json:"domain,omitempty"`
	// Node names the node the sandbox was created on ("" for sandboxes from before
	// the server kept a node table).
	Node string `json:"node,omitempty"`
}

// SandboxOptions describe a sandbox to create. Zero fields mean the server's defaults.
type SandboxOptions struct {
	// Template is the template id (default "base"); see Client.Templates.
	Template string
	// Timeout is how long the sandbox lives before it is stopped, rounded up to whole
	// seconds (at most 24h); see Sandbox.SetTimeout.
	Timeout time.Duration
	// Env is set for every command in the sandbox.
	Env map[string]string
	// Metadata are labels to filter listings by.
	Metadata map[string]string
	// Limits are the sandbox's resources.
	Limits Limits
	// Internet: nil means the default (on).
	Internet *bool
	// Network is the egress policy (nil: none, or a snapshot's); see NetworkPolicy.
	Network *NetworkPolicy
	// Runtime ("gvisor", "runc") and MinIsolation ("container", "sandbox", "microvm")
	// choose the runtime; empty means the server's default. A stronger isolation than
	// the server can give is refused, never silently weakened.
	Runtime      string
	MinIsolation string
	// Snapshot starts the sandbox from a snapshot (its id or name; see
	// Sandbox.CreateSnapshot) instead of a template: with the snapshot's memory, files
	// and running processes. Template is then left empty.
	Snapshot string
	// Lifecycle says what happens at the timeout (nil: the sandbox is killed).
	Lifecycle *Lifecycle
}

type createSandboxWire struct {
	Template     string            `json:"template,omitempty"`
	Timeout      int64             `json:"timeout,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	Internet     *bool             `json:"internet,omitempty"`
	Network      *NetworkPolicy    `json:"network,omitempty"`
	Limits       Limits            `json:"limits"`
	Runtime      string            `json:"runtime,omitempty"`
	MinIsolation string            `json:"min_isolation,omitempty"`
	Snapshot     string            `json:"snapshot,omitempty"`
	Lifecycle    *Lifecycle        `json:"lifecycle,omitempty"`
}

// NetworkPolicy says where a sandbox may connect. Entries are IPv4 addresses, IPv4 CIDR
// prefixes, domain names ("example.com") or wildcards ("*.example.com"). Allow beats
// deny: DenyOut ["0.0.0.0/0"] with an AllowOut list means "only these"; what neither
// list names follows the sandbox's internet access (and with internet off, AllowOut
// entries still pass). The server's own deny list (private ranges) always holds.
type NetworkPolicy struct {
	// AllowOut are destinations always allowed (the server's deny list aside).
	AllowOut []string `json:"allow_out"`
	// DenyOut are destinations denied unless AllowOut names them.
	DenyOut []string `json:"deny_out"`
}

type timeoutWire struct {
	Timeout int64 `json:"timeout"`
}

// seconds rounds d up to whole seconds, the API's unit.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

// Sandbox is a handle on one sandbox. Its methods are safe for concurrent use.
type Sandbox struct {
	// ID is the sandbox id.
	ID string

	c    *Client
	mu   sync.Mutex
	info SandboxInfo
}

// CreateSandbox starts a sandbox and returns it once it runs.
func (c *Client) CreateSandbox(ctx context.Context, opts SandboxOptions) (*Sandbox, error) {
	wire := createSandboxWire{
		Template: opts.Template, Timeout: seconds(opts.Timeout), Env: opts.Env, Metadata: opts.Metadata,
		Internet: opts.Internet, Network: opts.Network, Limits: opts.Limits, Runtime: opts.Runtime, MinIsolation: opts.MinIsolation,
		Snapshot: opts.Snapshot, Lifecycle: opts.Lifecycle,
	}
	var info SandboxInfo
	if err := c.call(ctx, request{route: routeCreateSandbox, json: wire}, &info); err != nil {
		return nil, err
	}
	return &Sandbox{ID: info.ID, c: c, info: info}, nil
}

// ConnectSandbox returns a handle on an existing sandbox of the caller's team, after
// checking that it exists (ErrNotFound otherwise).
func (c *Client) ConnectSandbox(ctx context.Context, id string) (*Sandbox, error) {
	s := c.Sandbox(id)
	if _, err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Sandbox returns a handle on sandbox id without contacting the server: its methods
// fail with ErrNotFound if there is no such sandbox. Info is empty until Refresh.
func (c *Client) Sandbox(id string) *Sandbox {
	return &Sandbox{ID: id, c: c, info: SandboxInfo{ID: id}}
}

// GetSandbox describes one sandbox of the caller's team.
func (c *Client) GetSandbox(ctx context.Context, id string) (*SandboxInfo, error) {
	var info SandboxInfo
	if err := c.call(ctx, request{route: routeGetSandbox, params: []string{id}}, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// Info returns the sandbox as the server last described it to this handle (at
// create, connect, SetTimeout or Refresh).
func (s *Sandbox) Info() SandboxInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

func (s *Sandbox) setInfo(info *SandboxInfo) {
	s.mu.Lock()
	s.info = *info
	s.mu.Unlock()
}

// Refresh fetches the sandbox's current description.
func (s *Sandbox) Refresh(ctx context.Context) (*SandboxInfo, error) {
	info, err := s.c.GetSandbox(ctx, s.ID)
	if err != nil {
		return nil, err
	}
	s.setInfo(info)
	return info, nil
}

// Kill stops the sandbox for good. Killing a sandbox that already ended is an error
// (ErrNotFound or ErrConflict, depending on the server's version).
func (s *Sandbox) Kill(ctx context.Context) error {
	return s.c.call(ctx, request{route: routeKillSandbox, params: []string{s.ID}}, nil)
}

// SetTimeout makes the sandbox end d from now (rounded up to whole seconds; at least
// 1s, at most 24h) and returns its new description.
func (s *Sandbox) SetTimeout(ctx context.Context, d time.Duration) (*SandboxInfo, error) {
	var info SandboxInfo
	err := s.c.call(ctx, request{route: routeSetTimeout, params: []string{s.ID}, json: timeoutWire{seconds(d)}}, &info)
	if err != nil {
		return nil, err
	}
	s.setInfo(&info)
	return &info, nil
}

// SetNetwork replaces the sandbox's egress policy (the zero policy clears it). A running
// sandbox's new connections meet it at once; a paused one gets it when resumed.
func (s *Sandbox) SetNetwork(ctx context.Context, p NetworkPolicy) (*SandboxInfo, error) {
	var info SandboxInfo
	err := s.c.call(ctx, request{route: routeSetNetwork, params: []string{s.ID}, json: p}, &info)
	if err != nil {
		return nil, err
	}
	s.setInfo(&info)
	return &info, nil
}

// GetHost returns the host name under which port inside the sandbox is reachable
// through the server's traffic proxy: "<port>-<id>.<domain>". The domain is the
// client's override (WithSandboxDomain, WARREN_DOMAIN) if set, else the one the server
// gave with the sandbox (SandboxInfo.Domain). It is "" when neither is known: a handle
// from Client.Sandbox that was not refreshed, or a server without a proxy domain.
func (s *Sandbox) GetHost(port int) string {
	d := s.c.domain
	if d == "" {
		d = s.Info().Domain
	}
	if d == "" {
		return ""
	}
	return fmt.Sprintf("%d-%s.%s", port, s.ID, d)
}

// Port is a TCP port listening inside a sandbox.
type Port struct {
	// Port is the TCP port number.
	Port int `json:"port"`
	// URL reaches it through the server's proxy: http://<port>-<id>.<domain>/ ("" when
	// the server has no proxy domain).
	URL string `json:"url,omitempty"`
}

type portList struct {
	Ports []Port `json:"ports"`
}

// Ports lists the TCP ports listening inside the running sandbox, with their proxy
// URLs. A sandbox that is not running is ErrConflict.
func (s *Sandbox) Ports(ctx context.Context) ([]Port, error) {
	var list portList
	if err := s.c.call(ctx, request{route: routeListPorts, params: []string{s.ID}}, &list); err != nil {
		return nil, err
	}
	if list.Ports == nil {
		list.Ports = []Port{}
	}
	return list.Ports, nil
}

// ListOptions filter a sandbox listing; empty fields match everything.
type ListOptions struct {
	// States keeps these states only: starting, running, stopped, error.
	States []string
	// Metadata keeps sandboxes that have all these labels.
	Metadata map[string]string
	// Limit is the page size (the server's default when 0; at most 1000).
	Limit int
	// Cursor is SandboxPage.NextCursor of the previous page.
	Cursor string
}

// SandboxPage is one page of a listing, newest first.
type SandboxPage struct {
	Sandboxes []SandboxInfo `json:"sandboxes"`
	// NextCursor fetches the next page (as ListOptions.Cursor); "" on the last page.
	NextCursor string `json:"next_cursor"`
}

// ListSandboxes returns one page of the team's sandboxes; see AllSandboxes to iterate
// over every page.
func (c *Client) ListSandboxes(ctx context.Context, opts ListOptions) (*SandboxPage, error) {
	q := url.Values{}
	if len(opts.States) > 0 {
		q.Set("state", strings.Join(opts.States, ","))
	}
	for k, v := range opts.Metadata {
		q.Set("metadata."+k, v)
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	var page SandboxPage
	if err := c.call(ctx, request{route: routeListSandboxes, query: q}, &page); err != nil {
		return nil, err
	}
	if page.Sandboxes == nil {
		page.Sandboxes = []SandboxInfo{}
	}
	return &page, nil
}

// AllSandboxes iterates over the team's sandboxes matching opts, following the pages
// (opts.Limit is the page size). An error ends the iteration after yielding it.
func (c *Client) AllSandboxes(ctx context.Context, opts ListOptions) iter.Seq2[*SandboxInfo, error] {
	return func(yield func(*SandboxInfo, error) bool) {
		for {
			page, err := c.ListSandboxes(ctx, opts)
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range page.Sandboxes {
				if !yield(&page.Sandboxes[i], nil) {
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
