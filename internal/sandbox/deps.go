package sandbox

import (
	"context"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// This file holds what the sandbox services need of the rest of the system, as
// interfaces: the node that runs sandboxes, the rows in the store, the agent inside each
// sandbox and the meter. Tests give them fakes; the server gives them node.Node, a
// domain.Store, agentclient and metering.

// Node runs sandboxes on this host (package node).
type Node interface {
	// Start prepares and starts sb (its id, runtime, slot, limits, internet access,
	// access token and env) on tpl's root filesystem, and returns the driver's handle
	// and the sandbox's address. On error nothing of it is left.
	Start(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template) (h runtime.Handle, address string, err error)
	// Halt makes a sandbox stop at once (processes killed, network removed); Stop must
	// follow to reclaim the rest, and until then its slot must stay reserved.
	Halt(ctx context.Context, id string, slot int, h *runtime.Handle) error
	// Stop removes everything of a sandbox; h is nil when the handle is unknown. It
	// succeeds on a sandbox that is already gone.
	Stop(ctx context.Context, id string, slot int, h *runtime.Handle) error
	// Reattach puts the node's state of a running sandbox in line with its row (its
	// address in the internet set, or not, and its egress policy sb.Network): after a
	// server restart, when a warm pool member, started with internet on and no policy,
	// is claimed by a request that wants otherwise, and when the policy changes.
	Reattach(ctx context.Context, sb *domain.Sandbox) error
	// Orphans returns the ids of sandboxes with any trace on this host that are not in
	// live; StopOrphan removes one.
	Orphans(ctx context.Context, live map[string]bool) ([]string, error)
	StopOrphan(ctx context.Context, id string) error
	// Drivers returns every runtime driver of the node, the default first; DriverFor
	// finds one by name ("" = the default).
	Drivers() []runtime.Driver
	DriverFor(name string) (runtime.Driver, bool)
	// Slots is the number of address slots: sandboxes that can exist at once.
	Slots() int
	// Pause checkpoints the running sandbox sb into its directory and takes the rest
	// down (processes, network: its slot is free afterwards, mounts); its directory
	// stays. When it fails the sandbox runs on as before. A runtime that cannot
	// checkpoint is a KindConflict error.
	Pause(ctx context.Context, sb *domain.Sandbox) error
	// Resume restores the paused sb at address slot sb.Slot (reserved by the caller)
	// and returns its new handle and address. On error its directory stays as it was.
	Resume(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template) (h runtime.Handle, address string, err error)
	// Release takes down a sandbox's runtime (by id when h is nil), network (slot -1:
	// by name) and mounts, and keeps its directory: for a resume a crash cut off.
	Release(ctx context.Context, id string, slot int, h *runtime.Handle) error
	// Snapshot saves the running sb's memory and files into dst (dst/image,
	// dst/upper); sb runs on.
	Snapshot(ctx context.Context, sb *domain.Sandbox, dst string) error
	// StartFrom starts the new sandbox sb from the snapshot in src, on its own copy of
	// the snapshot's files and its own network. On error nothing of it is left.
	StartFrom(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template, src string) (h runtime.Handle, address string, err error)
	// PausedBytes is the disk a paused sandbox holds (image and files).
	PausedBytes(id string) int64
	// KeepLost moves the checkpoint image of a sandbox that failed to resume aside for
	// inspection, and returns where ("" if it had none).
	KeepLost(id string) (string, error)
	// RemoveLost removes the images kept since before t of sandboxes that failed to
	// resume, and returns how many it removed.
	RemoveLost(t time.Time) (int, error)
	// ImageTime is when the sandbox's checkpoint image (of its last pause) was written;
	// zero when it has none.
	ImageTime(id string) time.Time
	// OpenLog opens the sandbox's console log from its start; a log not written yet is
	// an error satisfying errors.Is(err, fs.ErrNotExist). Reading past its end returns
	// io.EOF until more is written.
	OpenLog(id string) (io.ReadCloser, error)
}

// Store is what the sandbox services keep in the database (a domain.Store has it all).
type Store interface {
	GetTeam(ctx context.Context, id string) (*domain.Team, error)
	// GetTemplate returns template id as the team sees it (its own, else a built-in;
	// "" the built-ins alone); ListTemplates lists them likewise.
	GetTemplate(ctx context.Context, teamID, id string) (*domain.Template, error)
	ListTemplates(ctx context.Context, teamID string) ([]*domain.Template, error)
	// CreateSandboxWithinQuota inserts sb unless the team's live sandboxes plus sb
	// exceed q, which is a KindQuotaExceeded error.
	CreateSandboxWithinQuota(ctx context.Context, sb *domain.Sandbox, q domain.Quota) error
	// ResumeSandboxWithinQuota writes sb (a paused sandbox being resumed) unless the
	// team's live sandboxes plus sb exceed q, which is a KindQuotaExceeded error.
	ResumeSandboxWithinQuota(ctx context.Context, sb *domain.Sandbox, q domain.Quota) error
	// GetSandbox returns a sandbox of any team when teamID is "".
	GetSandbox(ctx context.Context, teamID, id string) (*domain.Sandbox, error)
	UpdateSandbox(ctx context.Context, sb *domain.Sandbox) error
	// SetSandboxNetwork replaces only the sandbox's network policy (team-scoped).
	SetSandboxNetwork(ctx context.Context, teamID, id string, p domain.NetworkPolicy) error
	ListSandboxes(ctx context.Context, f domain.SandboxFilter) ([]*domain.Sandbox, string, error)
	// UsedSlots returns the address slots held by live (starting or running) sandboxes.
	UsedSlots(ctx context.Context, nodes []string) ([]int, error)
	// TeamUsage sums what the team's live sandboxes hold and counts its snapshots.
	TeamUsage(ctx context.Context, teamID string) (domain.QuotaUsage, error)
	domain.SnapshotStore
	domain.IdempotencyStore
}

var _ Store = domain.Store(nil)

// Meter records a sandbox's resource use (package metering).
type Meter interface {
	// Begin starts metering a sandbox that just started running.
	Begin(ctx context.Context, sb *domain.Sandbox) error
	// End takes a last reading (while the sandbox still exists) and closes its record.
	End(ctx context.Context, sb *domain.Sandbox, at time.Time) error
	// SamplePaused books the storage a paused sandbox holds (bytes()) since its last
	// booking up to at, unless that was less than minGap ago.
	SamplePaused(ctx context.Context, sb *domain.Sandbox, at time.Time, minGap time.Duration, bytes func() int64) error
}

// Recorder counts what happens to sandboxes, for the operator's metrics (package
// metrics implements it). Config.Recorder nil records nothing. Its labels never take a
// sandbox id.
type Recorder interface {
	// Created records a create by path (cold, warm: a pool claim, restore: from a
	// snapshot) that took d; ok says whether it ended with a running sandbox.
	Created(template, path, teamID string, d time.Duration, ok bool)
	// StartPhase records a phase of a start: agent_ready here (the node records
	// prepare and runtime_start).
	StartPhase(phase, runtime string, d time.Duration)
	// Killed counts a sandbox ended for reason: request, timeout, shutdown or retention.
	Killed(reason string)
	// Lost counts a sandbox that ended without being asked to.
	Lost(reason string)
	// Lifecycle records a pause, resume, fork or snapshot that took d.
	Lifecycle(op string, d time.Duration, ok bool)
}

// nopRecorder records nothing.
type nopRecorder struct{}

func (nopRecorder) Created(string, string, string, time.Duration, bool) {}
func (nopRecorder) StartPhase(string, string, time.Duration)            {}
func (nopRecorder) Killed(string)                                       {}
func (nopRecorder) Lost(string)                                         {}
func (nopRecorder) Lifecycle(string, time.Duration, bool)               {}

// agent is the connection to one sandbox's warren-agent, one part per job: an
// agentclient.Client and the Files, Processes and Code made from it (dialAgent), or
// fakes in tests. Each service uses its own part.
type agent struct {
	conn  lifecycleAgent
	files fileAgent
	procs processAgent
	code  codeAgent
	terms terminalAgent
}

var (
	_ lifecycleAgent = (*agentclient.Client)(nil)
	_ fileAgent      = agentclient.Files{}
	_ processAgent   = agentclient.Processes{}
	_ codeAgent      = agentclient.Code{}
	_ terminalAgent  = agentclient.Processes{}
)

// lifecycleAgent is what starting, recovering, ending and observing a sandbox need.
type lifecycleAgent interface {
	// WaitReady waits until the agent answers, asking every few ms; WaitPortReady
	// until the server on port inside the sandbox answers /health.
	WaitReady(ctx context.Context) error
	// Health asks the agent once whether it answers.
	Health(ctx context.Context) error
	WaitPortReady(ctx context.Context, port int) error
	Metrics(ctx context.Context) (*domain.SandboxMetrics, error)
	// Init gives the sandbox a new identity (the agent's POST /init): env, access token, hostname.
	// The connection keeps the old token; dial anew with the new one.
	Init(ctx context.Context, r agentclient.Identity) error
	// Close drops the connection's idle connections.
	Close()
}

// fileAgent reads and changes files.
type fileAgent interface {
	WriteFile(ctx context.Context, path, user string, r io.Reader) (*domain.FileInfo, error)
	ReadFile(ctx context.Context, path, user string, w io.Writer) error
	ListDir(ctx context.Context, path, user string, depth int) ([]domain.FileInfo, error)
	Stat(ctx context.Context, path, user string) (*domain.FileInfo, error)
	MakeDir(ctx context.Context, path, user string) (*domain.FileInfo, bool, error)
	Move(ctx context.Context, from, to, user string) (*domain.FileInfo, error)
	Remove(ctx context.Context, path, user string) error
}

// processAgent runs commands and background processes.
type processAgent interface {
	Exec(ctx context.Context, req domain.ExecRequest, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error)
	StartFollowed(ctx, life context.Context, req domain.ExecRequest, stdinOpen bool) (*agentclient.Started, error)
	AttachLifetime(ctx context.Context, pid uint32, life agentclient.Lifetime, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error)
	ListProcesses(ctx context.Context) ([]domain.ProcessInfo, error)
	SendStdin(ctx context.Context, pid uint32, data []byte) error
	CloseStdin(ctx context.Context, pid uint32) error
	Signal(ctx context.Context, pid uint32, signal string) error
}

// codeAgent runs code on the template's code interpreter.
type codeAgent interface {
	RunCode(ctx context.Context, req domain.RunCode, onEvent func(domain.CodeEvent) error) error
	CreateCodeContext(ctx context.Context, language, cwd string) (*domain.CodeContext, error)
	ListCodeContexts(ctx context.Context) ([]domain.CodeContext, error)
	RestartCodeContext(ctx context.Context, id string) error
	DeleteCodeContext(ctx context.Context, id string) error
}

// terminalAgent opens pseudo-terminals.
type terminalAgent interface {
	StartPTY(ctx context.Context, req agentclient.PTYRequest) (*agentclient.PTY, error)
}

// dialAgent connects to the agent of a sandbox at address with its access token.
func dialAgent(address, token string) *agent {
	return agentOf(agentclient.New(net.JoinHostPort(address, strconv.Itoa(runtime.AgentPort)), token))
}

// agentOf is the agent of a connection.
func agentOf(c *agentclient.Client) *agent {
	return &agent{conn: c, files: c.Files(), procs: c.Processes(), code: c.Code(), terms: c.Processes()}
}
