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
	// Reattach restores the node's state of a sandbox that survived a server restart
	// (its address in the internet set).
	Reattach(ctx context.Context, slot int, internet bool) error
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
	// OpenLog opens the sandbox's console log from its start; a log not written yet is
	// an error satisfying errors.Is(err, fs.ErrNotExist). Reading past its end returns
	// io.EOF until more is written.
	OpenLog(id string) (io.ReadCloser, error)
}

// Store is what the sandbox services keep in the database (a domain.Store has it all).
type Store interface {
	GetTeam(ctx context.Context, id string) (*domain.Team, error)
	GetTemplate(ctx context.Context, id string) (*domain.Template, error)
	ListTemplates(ctx context.Context) ([]*domain.Template, error)
	// CreateSandboxWithinQuota inserts sb unless the team's live sandboxes plus sb
	// exceed q, which is a KindQuotaExceeded error.
	CreateSandboxWithinQuota(ctx context.Context, sb *domain.Sandbox, q domain.Quota) error
	// GetSandbox returns a sandbox of any team when teamID is "".
	GetSandbox(ctx context.Context, teamID, id string) (*domain.Sandbox, error)
	UpdateSandbox(ctx context.Context, sb *domain.Sandbox) error
	ListSandboxes(ctx context.Context, f domain.SandboxFilter) ([]*domain.Sandbox, string, error)
	// UsedSlots returns the address slots held by sandboxes that are not terminal.
	UsedSlots(ctx context.Context) ([]int, error)
}

var _ Store = domain.Store(nil)

// Meter records a sandbox's resource use (package metering).
type Meter interface {
	// Begin starts metering a sandbox that just started running.
	Begin(ctx context.Context, sb *domain.Sandbox) error
	// End takes a last reading (while the sandbox still exists) and closes its record.
	End(ctx context.Context, sb *domain.Sandbox, at time.Time) error
}

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
	// WaitReady waits until the agent answers; WaitPortReady until the server on port
	// inside the sandbox answers /health.
	WaitReady(ctx context.Context) error
	WaitPortReady(ctx context.Context, port int) error
	Metrics(ctx context.Context) (*domain.SandboxMetrics, error)
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
	c := agentclient.New(net.JoinHostPort(address, strconv.Itoa(runtime.AgentPort)), token)
	return &agent{conn: c, files: c.Files(), procs: c.Processes(), code: c.Code(), terms: c.Processes()}
}
