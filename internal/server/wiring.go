package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-sh/warren/internal/api/e2b"
	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/api/rest"
	"github.com/warren-sh/warren/internal/auth"
	"github.com/warren-sh/warren/internal/billing"
	"github.com/warren-sh/warren/internal/cluster"
	"github.com/warren-sh/warren/internal/console"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/egress"
	"github.com/warren-sh/warren/internal/forward"
	"github.com/warren-sh/warren/internal/ledger"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/metering"
	"github.com/warren-sh/warren/internal/metrics"
	"github.com/warren-sh/warren/internal/network"
	"github.com/warren-sh/warren/internal/node"
	"github.com/warren-sh/warren/internal/proxy"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/oci"
	"github.com/warren-sh/warren/internal/sandbox"
	"github.com/warren-sh/warren/internal/store/instrumented"
	"github.com/warren-sh/warren/internal/telemetry"
	"github.com/warren-sh/warren/internal/templates"
	"github.com/warren-sh/warren/internal/version"
	"github.com/warren-sh/warren/web"
)

// This file holds the steps of Run, in the order Run takes them.

// The server hands the sandbox services these implementations.
var (
	_ sandbox.Node  = (*node.Node)(nil)
	_ sandbox.Store = domain.Store(nil)
	_ sandbox.Meter = (*metering.Meter)(nil)
)

// openState opens the data directory, the database and the pricing plans, and on a
// first start creates the admin API key and the console's first user, showing both on
// out, and gives the default team the default quota.
func openState(ctx context.Context, c Config, out io.Writer, log *slog.Logger, mx *metrics.Metrics) (_ domain.Store, _ *billing.Catalog, err error) {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("creating data dir: %w", err)
	}
	store, dbKind, err := openStore(ctx, c)
	if err != nil {
		return nil, nil, fmt.Errorf("opening database: %w", err)
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	log.Info("database", "kind", dbKind)
	// A server with neither tracing nor metrics keeps the bare store.
	var hooks []instrumented.Hook
	if telemetry.Enabled() {
		system := dbKind
		if system == "postgres" {
			system = "postgresql" // OpenTelemetry's db.system.name for it
		}
		hooks = append(hooks, instrumented.Tracing(system))
	}
	if mx != nil {
		hooks = append(hooks, instrumented.Timing(mx.Store().Query))
	}
	store = instrumented.Wrap(store, hooks...)
	catalog, err := billing.LoadCatalog(c.PlansFile)
	if err != nil {
		return nil, nil, fmt.Errorf("loading pricing plans: %w", err)
	}
	created, err := bootstrapAdmin(ctx, c, store, out)
	if err != nil {
		return nil, nil, err
	}
	ownerFile := filepath.Join(c.DataDir, ownerFileName)
	email, password, ownerMade, err := auth.BootstrapOwner(ctx, store, ownerFile)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the console's first user: %w", err)
	}
	if ownerMade {
		if isTerminal(out) {
			fmt.Fprintf(out, "Web console login (shown once; also saved to %s until its first login):\n\n    %s  %s\n\n", ownerFile, email, password)
		} else {
			fmt.Fprintf(out, "Web console login for %s saved to %s until its first login (not printed: standard output is not a terminal)\n", email, ownerFile)
		}
	}
	if created { // a first start: the admin's team gets the default quota too
		if err := quotaDefaultTeam(ctx, store, c.TeamQuota); err != nil {
			return nil, nil, err
		}
	}
	return store, catalog, nil
}

// bootstrapAdmin makes sure there is a platform admin key: the cluster's own
// (Config.AdminKey) when one is given, else one in the data dir's admin.key, shown on
// out at a terminal when it is new. created reports a new one.
func bootstrapAdmin(ctx context.Context, c Config, store domain.Store, out io.Writer) (created bool, err error) {
	if c.AdminKey != "" {
		if created, err = auth.EnsureAdminKey(ctx, store, c.AdminKey); err != nil {
			return false, err
		}
		if created {
			fmt.Fprintln(out, "Admin API key: the one given (WARREN_ADMIN_KEY or --admin-key-file), now in the database")
		}
		return created, nil
	}
	keyFile := filepath.Join(c.DataDir, "admin.key")
	secret, created, err := auth.Bootstrap(ctx, store, keyFile)
	if err != nil {
		return false, fmt.Errorf("creating the admin API key: %w", err)
	}
	// Secrets go to a person at a terminal, never into captured output (a service
	// manager's journal, CI logs); the files beside hold them for everyone else.
	if created {
		if isTerminal(out) {
			fmt.Fprintf(out, "\nAdmin API key (shown once; also saved to %s):\n\n    %s\n\n", keyFile, secret)
		} else {
			fmt.Fprintf(out, "Admin API key created and saved to %s (not printed: standard output is not a terminal)\n", keyFile)
		}
	}
	return created, nil
}

// ownerFileName is the data-dir file holding the first console login until its first use.
const ownerFileName = "console-admin.txt"

// templateBuilds are the template builds running in the background.
type templateBuilds struct {
	ctx    context.Context // ends when the server stops
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// goBuild runs f in the background until it returns; stop waits for it.
func (b *templateBuilds) goBuild(f func(ctx context.Context)) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f(b.ctx)
	}()
}

// stop cancels the builds and waits for them.
func (b *templateBuilds) stop() {
	b.cancel()
	b.wg.Wait()
}

// startTemplates makes sure the base template is built (the server does not serve
// without it) and starts building the others in the background.
func startTemplates(ctx context.Context, c Config, store domain.Store, out io.Writer, log *slog.Logger, mx *metrics.Metrics) (*templateBuilds, error) {
	if err := ensureBase(ctx, c, store, out, log, mx.Templates()); err != nil {
		return nil, err
	}
	b := &templateBuilds{}
	b.ctx, b.cancel = context.WithCancel(ctx)
	if err := ensureExtras(b.ctx, c, store, out, log, &b.wg, mx.Templates()); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

// host is this machine's part: its network, its runtime drivers and the node that
// runs sandboxes with them.
type host struct {
	// deny is what sandboxes may not reach (the build node's too).
	deny    []netip.Prefix
	netm    *network.Manager
	egress  *egress.Service
	drivers []runtime.Driver
	// runtimes names the drivers requests may use (--runtimes, the default first); the
	// others serve only recovery and teardown.
	runtimes []string
	node     *node.Node
}

// startHost sets up the node's network (its nftables table, denying sandboxes the
// configured ranges and the database's and Redis's addresses) and runtimes. On error
// nothing of the network is left.
func startHost(ctx context.Context, c Config, out io.Writer, log *slog.Logger, mx *metrics.Metrics) (_ *host, err error) {
	deny := c.DenyCIDRs
	if deny == nil {
		deny = network.DefaultDenyCIDRs()
	}
	services, err := network.ServiceAddrs(ctx, c.DatabaseURL, c.RedisURL)
	if err != nil {
		return nil, err
	}
	deny = append(deny, services...)
	ecfg := egress.Config{
		ProxyPort: c.EgressProxyPort, DNSPort: c.EgressDNSPort, Upstreams: c.EgressDNSUpstream,
		Pool: c.SandboxCIDR, Deny: deny, Log: log,
	}
	if mx != nil {
		ecfg.Metrics = mx.Egress()
	}
	eg, err := egress.New(ecfg)
	if err != nil {
		return nil, err
	}
	netm, err := network.New(network.Config{Name: c.NetworkName, Pool: c.SandboxCIDR, DenyCIDRs: deny,
		EgressProxyPort: eg.ProxyPort(), EgressDNSPort: eg.DNSPort(), Log: log})
	if err != nil {
		eg.Close()
		return nil, err
	}
	eg.SetRedirector(netm)
	h := &host{netm: netm, egress: eg, deny: deny}
	if err := netm.Init(ctx); err != nil {
		eg.Close()
		return nil, err
	}
	defer func() {
		if err != nil {
			h.closeNetwork(context.WithoutCancel(ctx), log)
		}
	}()
	def, drivers, runtimes, err := buildDrivers(ctx, c, out, log)
	if err != nil {
		return nil, err
	}
	h.drivers, h.runtimes = drivers, runtimes
	ncfg := node.Config{Dir: filepath.Join(c.DataDir, "sandboxes"), AgentPath: c.AgentPath, Driver: def, Drivers: drivers, Network: netm, Egress: eg, Log: log,
		PrimeMigration: oci.PrimeMigration}
	if mx != nil {
		ncfg.Phases = mx.Sandboxes().StartPhase
	}
	h.node, err = node.New(ncfg)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// closeNetwork removes the node's nftables table and stops the egress proxy and
// resolver.
func (h *host) closeNetwork(ctx context.Context, log *slog.Logger) {
	if err := h.netm.Close(ctx); err != nil {
		log.Error("removing nftables table", logkey.Err, err)
	}
	h.closeEgress(log)
}

// The egress service is the node's hook for policies' name rules.
var _ node.Egress = (*egress.Service)(nil)

// closeEgress stops the egress proxy and resolver (once). Sandboxes left running for
// the next server keep their redirections: their proxied TCP and their DNS fail until
// it starts (closed, not open: the policy is never bypassed).
func (h *host) closeEgress(log *slog.Logger) {
	if h.egress == nil {
		return
	}
	if err := h.egress.Close(); err != nil {
		log.Error("stopping the egress proxy", logkey.Err, err)
	}
	h.egress = nil
}

// release removes what the node holds while it runs sandboxes (its nftables table and
// the drivers' parent cgroups). Call it only when no sandbox is left.
func (h *host) release(ctx context.Context, log *slog.Logger) {
	h.closeNetwork(ctx, log)
	for _, d := range h.drivers {
		if cl, ok := d.(interface{ Cleanup() }); ok {
			cl.Cleanup()
		}
	}
}

// sandboxServices are the sandbox services, each wired into the APIs that serve it.
type sandboxServices struct {
	service   *sandbox.Service
	files     *sandbox.Files
	processes *sandbox.Processes
	code      *sandbox.Code
	terminals *sandbox.Terminals
	logs      *sandbox.Logs
	sweeper   *sandbox.Sweeper
	// pool is the warm pools (nil without --warm-pool).
	pool      *sandbox.Pool
	snapshots *sandbox.Snapshots
}

// services are what the APIs and the background loops use.
type services struct {
	sandboxes    *sandboxServices
	meter        *metering.Meter
	ledger       *ledger.Service
	accounts     *auth.Services
	limit        rest.RateLimitFunc
	closeLimiter func() error
	// templates is the template service (builds answer 503 without the build node).
	templates *templates.Service
	// usage is where template storage is booked.
	usage templates.UsageStore
	// metrics is nil with metrics off (--metrics-listen "").
	metrics *metrics.Metrics
	// ready turns true once the server serves (GET /readyz).
	ready atomic.Bool
	// nodes is this server's part of the node table; locks the store's shared locks,
	// for the jobs one server runs at a time.
	nodes *nodeParts
	locks domain.LockStore
	log   *slog.Logger
	// control is a control replica's sandbox service (sandboxes is nil there), and
	// controlSnaps its snapshot service.
	control      *cluster.Sandboxes
	controlSnaps *cluster.Snapshots
	// forward sends requests to the nodes (nil outside a cluster).
	forward *forward.Forwarder
	// uploads is the spool directory of uploads.
	uploads string
}

// startServices builds the sandbox services, re-attaches to the sandboxes a previous
// server left (and closes the meters of those that died), and builds the key, team,
// billing and rate-limiting services.
func startServices(ctx context.Context, c Config, store domain.Store, catalog *billing.Catalog, h *host, log *slog.Logger, mx *metrics.Metrics) (*services, error) {
	s := &services{metrics: mx, usage: store, locks: store, log: log}
	var err error
	if s.ledger, err = ledger.New(store, catalog, nil, log); err != nil {
		return nil, err
	}
	if s.meter, err = metering.New(metering.Config{Store: store, Source: usageSource(h.node), Interval: c.MeterInterval, Log: log}); err != nil {
		return nil, err
	}
	if s.nodes, err = newNodeParts(c, store, h, s, log); err != nil {
		return nil, err
	}
	if s.sandboxes, err = startSandboxes(ctx, c, store, h, s.ledger.Admit, s.meter, s.nodes.registrar, log, mx); err != nil {
		return nil, err
	}
	// Registered once recovered: the first heartbeat reports what the node runs.
	if err := s.nodes.registrar.Heartbeat(ctx); err != nil {
		return nil, fmt.Errorf("registering node %s: %w", c.NodeName, err)
	}
	if err := s.startShared(c, store, catalog, h.runtimes, log); err != nil {
		return nil, err
	}
	return s, nil
}

// startShared builds what every role has: the console sessions' signer, the rate
// limiter, the key, team and user services, and in a cluster the forwarder.
func (s *services) startShared(c Config, store domain.Store, catalog *billing.Catalog, runtimes []string, log *slog.Logger) error {
	signer, err := sessionSigner(c)
	if err != nil {
		return err
	}
	limit, limiter, closeLimiter, err := rateLimiter(c, log)
	if err != nil {
		return err
	}
	s.limit, s.closeLimiter = limit, closeLimiter
	s.accounts, err = auth.New(store, auth.WithLogger(log), auth.WithSessions(signer, c.SessionTTL),
		auth.WithTeamDefaults(c.TeamQuota, "", func(id string) error { _, err := catalog.Plan(id); return err }),
		auth.WithRuntimes(runtimes), auth.WithLoginThrottle(limiter, 0, 0),
		auth.WithOwnerFile(filepath.Join(c.DataDir, ownerFileName)))
	if err != nil {
		s.closeLimiter()
		return err
	}
	if c.ClusterSecret != "" {
		self := c.NodeName
		if c.Role == RoleControl {
			self = ""
		}
		s.forward, err = forward.New(forward.Config{Store: store, Self: self, Secret: c.ClusterSecret,
			Place: c.Role == RoleControl, Log: log.With(logkey.Subsystem, "forward")})
		if err != nil {
			s.closeLimiter()
			return err
		}
	}
	return nil
}

// sessionSigner signs console sessions: in a cluster with a key derived from the
// cluster secret (every control replica must accept the others' sessions), else with
// the data dir's session.key.
func sessionSigner(c Config) (*auth.Signer, error) {
	if c.ClusterSecret != "" {
		k := sha256.Sum256([]byte("warren console sessions\x00" + c.ClusterSecret))
		return auth.NewSigner(k[:])
	}
	return auth.LoadOrCreateSigner(filepath.Join(c.DataDir, "session.key"))
}

// startSandboxes builds the sandbox services and recovers what a previous server left.
func startSandboxes(ctx context.Context, c Config, store domain.Store, h *host,
	admit func(context.Context, *domain.Team) (domain.Quota, error), meter *metering.Meter, reg *cluster.Registrar, log *slog.Logger, mx *metrics.Metrics) (*sandboxServices, error) {
	var rec sandbox.Recorder
	if mx != nil {
		rec = mx.Sandboxes()
	}
	svc, err := sandbox.New(sandbox.Config{Recorder: rec,
		Store: store, Node: h.node, DefaultTimeout: c.DefaultTimeout, PausedRetention: c.PausedRetention,
		DefaultLimits: c.DefaultLimits, MaxLimits: c.MaxLimits, TemplateMemoryMB: templateMemoryMB, Log: log,
		Admit: admit, Meter: meter, Runtimes: h.runtimes, SnapshotDir: filepath.Join(c.DataDir, "snapshots"),
		SnapshotKey: templateSnapshotKey(c, log), Life: ctx, NodeName: c.NodeName, NodeOpen: reg.Open,
		Room: (&node.Room{Dir: c.DataDir, MemoryReserveMB: c.NodeMemoryReserveMB, DiskReserveMB: c.NodeDiskReserveMB}).Admit,
	})
	if err != nil {
		return nil, err
	}
	s := &sandboxServices{
		service: svc, files: sandbox.NewFiles(svc), processes: sandbox.NewProcesses(svc), code: sandbox.NewCode(svc),
		terminals: sandbox.NewTerminals(svc), logs: sandbox.NewLogs(svc), sweeper: sandbox.NewSweeper(svc),
		snapshots: sandbox.NewSnapshots(svc),
	}
	rep, err := s.sweeper.Recover(ctx)
	if err != nil {
		return nil, fmt.Errorf("recovering sandboxes: %w", err)
	}
	orphanSnaps, err := s.snapshots.Recover(ctx)
	if err != nil {
		return nil, fmt.Errorf("recovering snapshots: %w", err)
	}
	log.Info("recovered", "reattached", rep.Reattached, "reaped", rep.Reaped, "paused", rep.Paused, "orphans_removed", rep.Orphans, "snapshot_files_removed", orphanSnaps)
	mrep, err := meter.Recover(ctx, func(ctx context.Context, id string) (*domain.Sandbox, error) {
		return store.GetSandbox(ctx, domain.AnyTeam, id)
	})
	if err != nil {
		return nil, fmt.Errorf("recovering usage meters: %w", err)
	}
	log.Info("meters recovered", "closed", mrep.Closed, "continued", mrep.Continued)
	if len(c.WarmPool) > 0 {
		// After Recover: its sweep must not meet members half-started.
		if s.pool, err = sandbox.NewPool(svc, sandbox.PoolConfig{Sizes: c.WarmPool}); err != nil {
			return nil, fmt.Errorf("--warm-pool: %w", err)
		}
		s.pool.Start()
	}
	return s, nil
}

// closePool removes the warm pools' sandboxes from the node, if there are any.
func (s *sandboxServices) closePool(ctx context.Context, log *slog.Logger) {
	if s.pool == nil {
		return
	}
	if err := s.pool.Close(ctx); err != nil {
		log.Error("removing warm pool sandboxes", logkey.Err, err)
	}
}

// runBackground starts the sweeper, the node's console log trimmer, the meter, the
// template storage meter, the node's heartbeat and the node monitor. stop
// ends them; done is closed once the meter has stopped (it writes to the store, which
// closes after it).
func (s *services) runBackground(c Config, nd *node.Node) (done <-chan struct{}, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	go s.sandboxes.sweeper.Run(ctx, c.SweepInterval)
	go nd.RunConsoleTrimmer(ctx, time.Second, node.DefaultConsoleLogMax)
	var wg sync.WaitGroup
	wg.Add(5)
	go func() { defer wg.Done(); s.meter.Run(ctx, s.sandboxes.service.Running) }()
	// Team templates' storage is booked as disk MB·s each minute, by one server at a
	// time: two servers on one database must not book the same minute twice.
	go func() {
		defer wg.Done()
		cluster.Singleton(ctx, s.locks, "template-storage-meter", time.Minute, func(ctx context.Context) error {
			return s.templates.MeterStorage(ctx, s.usage, time.Now())
		}, s.log)
	}()
	// The node heartbeats; the monitor (one server at a time) marks silent nodes down.
	go func() { defer wg.Done(); s.nodes.registrar.Run(ctx) }()
	go func() { defer wg.Done(); s.nodes.monitor.Run(ctx, s.nodes.every) }()
	// Template snapshots are made as templates become ready (code-interpreter is built
	// in the background); a boot under way at shutdown removes its sandbox first.
	go func() { defer wg.Done(); s.sandboxes.snapshots.RunTemplates(ctx, 10*time.Second) }()
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	return all, cancel
}

// templateSnapshotKey is what template snapshots depend on besides the template: the
// agent binary (its SHA-256). "" (template snapshots off) when they are turned off or
// the binary cannot be read.
func templateSnapshotKey(c Config, log *slog.Logger) string {
	if !c.TemplateSnapshots {
		return ""
	}
	f, err := os.Open(c.AgentPath)
	if err != nil {
		log.Warn("template snapshots are off: the agent binary cannot be read", logkey.Err, err)
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		log.Warn("template snapshots are off: the agent binary cannot be read", logkey.Err, err)
		return ""
	}
	return "agent-" + hex.EncodeToString(h.Sum(nil))
}

// handler is the API listener's handler: /v1, the E2B control-plane routes
// (E2B_API_URL points here) and the web console (its session routes, and its pages and
// assets on everything else). public is the handler of the API listener (with the rate
// limiter, and the forwarder in a cluster); the node's internal listener's has neither:
// the control that forwarded a request charged it and chose this node.
func (s *services) handler(c Config, log *slog.Logger, public bool) (http.Handler, error) {
	acc := s.accounts
	opts := []rest.Option{}
	var httpMetrics edge.Metrics
	if s.metrics != nil {
		httpMetrics = s.metrics
		opts = append(opts, rest.WithMetrics(s.metrics))
	}
	limit := s.limit
	var fw edge.Forwarder
	if !public {
		limit = nil
	} else if s.forward != nil {
		fw = s.forward
		opts = append(opts, rest.WithForwarder(fw))
	}
	ecfg := e2b.Config{Domain: c.Domain, DefaultLimits: c.DefaultLimits, TemplateMemoryMB: templateMemoryMB,
		EnvdVersion: version.Envd, Audit: acc.Audit.Record, RateLimit: limit, Metrics: httpMetrics,
		Templates: s.templates, Tags: templates.NewTags(s.templates), PublicURL: c.PublicURL, SpoolDir: s.uploads, Forward: fw}
	if sb := s.sandboxes; sb != nil { // a node's services; a control forwards what needs them
		if sb.pool != nil {
			opts = append(opts, rest.WithPools(sb.pool))
		}
		opts = append(opts, rest.WithProcesses(sb.processes), rest.WithFiles(sb.files), rest.WithLogs(sb.logs),
			rest.WithTerminals(sb.terminals), rest.WithPorts(sb.processes), rest.WithCode(sb.code), rest.WithSnapshots(sb.snapshots))
		ecfg.Logs, ecfg.Snapshots = sb.logs, sb.snapshots
	} else if s.controlSnaps != nil { // a control reads snapshots; the rest is forwarded
		opts = append(opts, rest.WithSnapshots(s.controlSnaps))
		ecfg.Snapshots = s.controlSnaps
	}
	api := rest.New(s.sandboxService(), acc.Keys, log, append(opts,
		rest.WithTeams(acc.Teams), rest.WithUsers(acc.Users),
		rest.WithSessions(acc.Sessions), rest.WithAudit(acc.Audit), rest.WithBilling(s.ledger, billing.WriteCSV),
		rest.WithRateLimit(limit), rest.WithDomain(c.Domain),
		rest.WithTemplates(s.templates, 0), rest.WithUploadDir(s.uploads), rest.WithNodes(s.nodes.service), rest.WithReady(func() error {
			if !s.ready.Load() {
				return errors.New("starting up")
			}
			return nil
		}))...)
	top := http.NewServeMux()
	e2b.New(s.sandboxService(), acc.Keys, log, ecfg).Register(top)
	for _, p := range []string{"/v1/", "/healthz", "/readyz"} {
		top.Handle(p, api)
	}
	consoleAuth := api.ConsoleHandler()
	top.Handle("/console/login", consoleAuth)
	top.Handle("/console/logout", consoleAuth)
	pages, err := console.New(web.Dist(), log)
	if err != nil {
		return nil, err
	}
	var pagesH http.Handler = pages
	if s.metrics != nil {
		pagesH = s.metrics.Instrument("console", pages)
	}
	top.Handle("/", pagesH)
	// /v1 goes to its API before the top mux can clean its path into a redirect: the
	// API answers an unclean path with a JSON error saying so.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			api.ServeHTTP(w, r)
			return
		}
		top.ServeHTTP(w, r)
	}), nil
}

// sandboxService is the sandbox service the APIs serve: the node's, or a control
// replica's reader of the database.
func (s *services) sandboxService() domain.SandboxService {
	if s.sandboxes != nil {
		return s.sandboxes.service
	}
	return s.control
}

// router is where the proxy finds sandboxes' addresses.
func (s *services) router() domain.Router {
	if s.sandboxes != nil {
		return s.sandboxes.service
	}
	return s.control
}

// makeUploads makes the spool of uploads (build contexts, E2B build files) on the data
// dir's disk, not in a /tmp that may be RAM, removing what a crash left there.
func (s *services) makeUploads(c Config) error {
	if c.DataDir == "" {
		return nil
	}
	s.uploads = filepath.Join(c.DataDir, "uploads")
	if err := os.RemoveAll(s.uploads); err != nil {
		return fmt.Errorf("clearing the upload spool: %w", err)
	}
	if err := os.MkdirAll(s.uploads, 0o700); err != nil {
		return fmt.Errorf("making the upload spool: %w", err)
	}
	return nil
}

// listeners are the API's and the sandbox proxy's (not on a node: it serves the
// controls alone), the node's internal one (in a cluster) and the metrics' (nil with
// metrics off), with their servers.
type listeners struct {
	api, proxy, internal, metrics             net.Listener
	apiSrv, proxySrv, internalSrv, metricsSrv *http.Server
}

// listen builds the handlers and opens the listeners.
func listen(c Config, s *services, log *slog.Logger) (_ *listeners, err error) {
	if err := s.makeUploads(c); err != nil {
		return nil, err
	}
	pcfg := proxy.Config{Domain: c.Domain, MaxBufferedBytes: c.ProxyMaxBufferedMB << 20}
	if s.metrics != nil {
		pcfg.Metrics = s.metrics.Proxy()
	}
	prx := proxy.New(s.router(), log, pcfg)
	ls := &listeners{}
	defer func() {
		if err != nil {
			ls.close()
		}
	}()
	// No ReadTimeout or WriteTimeout: the servers carry long-lived streams (commands,
	// watches, WebSockets) and uploads. Headers have ReadHeaderTimeout, bodies
	// bodyDeadline, idle keep-alive connections IdleTimeout.
	server := func(h http.Handler) *http.Server {
		return &http.Server{Handler: bodyDeadline(h, c.BodyReadTimeout), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: c.IdleTimeout}
	}
	if c.Role != RoleNode {
		top, err := s.handler(c, log, true)
		if err != nil {
			return nil, err
		}
		var front http.Handler = prx
		if s.forward != nil {
			front = s.forward.Proxy(prx, prx.SandboxOf)
		}
		ls.apiSrv, ls.proxySrv = server(top), server(front)
		if ls.api, err = net.Listen("tcp", c.Listen); err != nil {
			return nil, fmt.Errorf("listening on %s: %w (is another warren running? set --listen)", c.Listen, err)
		}
		if ls.proxy, err = net.Listen("tcp", c.ProxyListen); err != nil {
			return nil, fmt.Errorf("listening on %s for the sandbox proxy: %w (set --proxy-listen)", c.ProxyListen, err)
		}
		ls.api = limitPerIP(ls.api, c.MaxConnsPerIP, log.With(logkey.Subsystem, "api"))
		ls.proxy = limitPerIP(ls.proxy, c.MaxConnsPerIP, log.With(logkey.Subsystem, "proxy"))
	}
	if c.InternalListen != "" && c.Role != RoleControl {
		inner, err := s.handler(c, log, false)
		if err != nil {
			return nil, err
		}
		// No per-address cap: every control reaches the node from one address.
		ls.internalSrv = server(forward.Internal(c.ClusterSecret, inner, prx))
		if ls.internal, err = net.Listen("tcp", c.InternalListen); err != nil {
			return nil, fmt.Errorf("listening on %s for the control replicas: %w (set --internal-listen)", c.InternalListen, err)
		}
	}
	if s.metrics != nil {
		if ls.metrics, err = net.Listen("tcp", c.MetricsListen); err != nil {
			return nil, fmt.Errorf("listening on %s for metrics: %w (set --metrics-listen, or --metrics-listen \"\" to turn metrics off)", c.MetricsListen, err)
		}
		ls.metricsSrv = metricsServer(s.metrics, c)
	}
	return ls, nil
}

// close closes the listeners opened so far (a failed start).
func (ls *listeners) close() {
	for _, l := range []net.Listener{ls.api, ls.proxy, ls.internal, ls.metrics} {
		if l != nil {
			l.Close()
		}
	}
}

// serve serves every listener; the end of the main one (the API's, a node's internal
// one) is sent on the channel, the others' are logged.
func (ls *listeners) serve(log *slog.Logger) <-chan error {
	errc := make(chan error, 1)
	main := true
	for _, p := range []struct {
		name string
		l    net.Listener
		srv  *http.Server
	}{{"api", ls.api, ls.apiSrv}, {"internal", ls.internal, ls.internalSrv}, {"sandbox proxy", ls.proxy, ls.proxySrv}, {"metrics", ls.metrics, ls.metricsSrv}} {
		if p.l == nil {
			continue
		}
		if main {
			main = false
			go func() { errc <- p.srv.Serve(p.l) }()
			continue
		}
		go func() {
			if err := p.srv.Serve(p.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error(p.name+" listener stopped", logkey.Err, err)
			}
		}()
	}
	return errc
}

// addrs says where the server listens, for the person who started it.
func (ls *listeners) addrs(c Config) string {
	var parts []string
	if ls.api != nil {
		parts = append(parts, fmt.Sprintf("the API and the web console on http://%s and sandbox traffic on http://%s", ls.api.Addr(), ls.proxy.Addr()))
	}
	if ls.internal != nil {
		parts = append(parts, fmt.Sprintf("the control replicas on %s (advertised as %s)", ls.internal.Addr(), c.Advertise))
	}
	return strings.Join(parts, ", and ")
}

// drain lets in-flight requests finish briefly, then cuts the rest: command streams,
// watches and proxied connections can stay open for as long as their clients like, and
// they must not hold up the teardown that follows.
func (ls *listeners) drain(ctx context.Context) {
	for _, hs := range []*http.Server{ls.apiSrv, ls.proxySrv, ls.internalSrv, ls.metricsSrv} {
		if hs == nil {
			continue
		}
		drainCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if err := hs.Shutdown(drainCtx); err != nil {
			_ = hs.Close()
		}
		cancel()
	}
}
