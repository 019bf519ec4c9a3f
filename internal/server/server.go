package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-sh/warren/internal/api/e2b"
	"github.com/warren-sh/warren/internal/api/rest"
	"github.com/warren-sh/warren/internal/auth"
	"github.com/warren-sh/warren/internal/billing"
	"github.com/warren-sh/warren/internal/console"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/ledger"
	"github.com/warren-sh/warren/internal/metering"
	"github.com/warren-sh/warren/internal/network"
	"github.com/warren-sh/warren/internal/node"
	"github.com/warren-sh/warren/internal/proxy"
	"github.com/warren-sh/warren/internal/sandbox"
	"github.com/warren-sh/warren/internal/template"
	"github.com/warren-sh/warren/internal/version"
	"github.com/warren-sh/warren/web"
)

// NewLogger builds the operator log from the config.
func NewLogger(c Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Run serves until ctx ends. out receives what a person starting the server should see
// (the admin key on first start, template build progress, the listen address).
func Run(ctx context.Context, c Config, out io.Writer, log *slog.Logger) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("warren serve must run as root (it creates network namespaces, mounts and sandboxes); try: sudo warren serve")
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	store, dbKind, err := openStore(ctx, c)
	if err != nil {
		return fmt.Errorf("opening database: %w", err)
	}
	defer store.Close()
	log.Info("database", "kind", dbKind)
	catalog, err := billing.LoadCatalog(c.PlansFile)
	if err != nil {
		return fmt.Errorf("loading pricing plans: %w", err)
	}

	secret, created, err := auth.Bootstrap(ctx, store, filepath.Join(c.DataDir, "admin.key"))
	if err != nil {
		return fmt.Errorf("creating the admin API key: %w", err)
	}
	if created {
		fmt.Fprintf(out, "\nAdmin API key (shown once; also saved to %s):\n\n    %s\n\n", filepath.Join(c.DataDir, "admin.key"), secret)
	}
	ownerFile := filepath.Join(c.DataDir, "console-admin.txt")
	email, password, ownerMade, err := auth.BootstrapOwner(ctx, store, ownerFile)
	if err != nil {
		return fmt.Errorf("creating the console's first user: %w", err)
	}
	if ownerMade {
		fmt.Fprintf(out, "Web console login (shown once; also saved to %s):\n\n    %s  %s\n\n", ownerFile, email, password)
	}

	if err := ensureBase(ctx, c, store, out, log); err != nil {
		return err
	}
	var builds sync.WaitGroup
	defer builds.Wait()
	buildCtx, stopBuilds := context.WithCancel(ctx)
	defer stopBuilds()
	if err := ensureExtras(buildCtx, c, store, out, log, &builds); err != nil {
		return err
	}

	deny := c.DenyCIDRs
	if deny == nil {
		deny = network.DefaultDenyCIDRs()
	}
	services, err := network.ServiceAddrs(ctx, c.DatabaseURL, c.RedisURL)
	if err != nil {
		return err
	}
	netm, err := network.New(network.Config{Name: c.NetworkName, Pool: c.SandboxCIDR, DenyCIDRs: append(deny, services...), Log: log})
	if err != nil {
		return err
	}
	if err := netm.Init(ctx); err != nil {
		return err
	}
	// A start that fails from here on must not leave the node's nftables table behind
	// (a later start rebuilds it and re-admits running sandboxes anyway).
	defer func() {
		if err != nil {
			if cerr := netm.Close(context.WithoutCancel(ctx)); cerr != nil {
				log.Error("removing nftables table after a failed start", "err", cerr)
			}
		}
	}()
	def, drivers, runtimes, err := buildDrivers(c, out, log)
	if err != nil {
		return err
	}
	builds.Add(1)
	go func() {
		defer builds.Done()
		prepareShifted(buildCtx, offered(drivers, runtimes), templateBuilder(c, io.Discard, log), log)
	}()
	nd, err := node.New(node.Config{Dir: filepath.Join(c.DataDir, "sandboxes"), AgentPath: c.AgentPath, Driver: def, Drivers: drivers, Network: netm, Log: log})
	if err != nil {
		return err
	}
	ldg, err := ledger.New(store, catalog, nil, log)
	if err != nil {
		return err
	}
	meter, err := metering.New(metering.Config{Store: store, Source: usageSource(nd), Interval: c.MeterInterval, Log: log})
	if err != nil {
		return err
	}
	svc, err := sandbox.New(sandbox.Config{
		Store: store, Node: nd, DefaultTimeout: c.DefaultTimeout,
		DefaultLimits: c.DefaultLimits, MaxLimits: c.MaxLimits, Log: log,
		Admit: ldg.Admit, Meter: meter, Runtimes: runtimes,
	})
	if err != nil {
		return err
	}
	files, procs, logs := sandbox.NewFiles(svc), sandbox.NewProcesses(svc), sandbox.NewLogs(svc)
	sweeper := sandbox.NewSweeper(svc)
	rep, err := sweeper.Recover(ctx)
	if err != nil {
		return fmt.Errorf("recovering sandboxes: %w", err)
	}
	log.Info("recovered", "reattached", rep.Reattached, "reaped", rep.Reaped, "orphans_removed", rep.Orphans)
	mrep, err := meter.Recover(ctx, func(ctx context.Context, id string) (*domain.Sandbox, error) { return store.GetSandbox(ctx, "", id) })
	if err != nil {
		return fmt.Errorf("recovering usage meters: %w", err)
	}
	log.Info("meters recovered", "closed", mrep.Closed, "continued", mrep.Continued)

	var ready atomic.Bool
	signer, err := auth.LoadOrCreateSigner(filepath.Join(c.DataDir, "session.key"))
	if err != nil {
		return err
	}
	limit, limiter, closeLimiter, err := rateLimiter(c, log)
	if err != nil {
		return err
	}
	defer closeLimiter()
	keys, err := auth.NewKeyService(store, auth.WithLogger(log), auth.WithSessions(signer, c.SessionTTL),
		auth.WithTeamDefaults(c.TeamQuota, "", func(id string) error { _, err := catalog.Plan(id); return err }),
		auth.WithRuntimes(runtimes), auth.WithLoginThrottle(limiter, 0, 0))
	if err != nil {
		return err
	}
	api := rest.New(svc, keys, log, rest.WithProcesses(procs), rest.WithFiles(files), rest.WithLogs(logs),
		rest.WithTerminals(sandbox.NewTerminals(svc)), rest.WithPorts(procs), rest.WithCode(sandbox.NewCode(svc)), rest.WithTeams(keys), rest.WithBilling(ldg, billing.WriteCSV),
		rest.WithRateLimit(limit), rest.WithDomain(c.Domain), rest.WithReady(func() error {
			if !ready.Load() {
				return errors.New("starting up")
			}
			return nil
		}))
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (is another warren running? set --listen)", c.Listen, err)
	}
	// One listener serves /v1, the E2B control-plane routes (E2B_API_URL points here)
	// and the web console: its session routes, and its pages and assets on everything
	// else.
	top := http.NewServeMux()
	e2b.New(svc, keys, log, e2b.Config{Domain: c.Domain, DefaultLimits: c.DefaultLimits, EnvdVersion: version.Envd,
		Audit: keys.Record, RateLimit: limit, Logs: logs}).Register(top)
	for _, p := range []string{"/v1/", "/healthz", "/readyz"} {
		top.Handle(p, api)
	}
	consoleAuth := api.ConsoleHandler()
	top.Handle("/console/login", consoleAuth)
	top.Handle("/console/logout", consoleAuth)
	pages, err := console.New(web.Dist(), log)
	if err != nil {
		ln.Close()
		return err
	}
	top.Handle("/", pages)
	srv := &http.Server{Handler: top, ReadHeaderTimeout: 10 * time.Second}
	pln, err := net.Listen("tcp", c.ProxyListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listening on %s for the sandbox proxy: %w (set --proxy-listen)", c.ProxyListen, err)
	}
	// No Read/WriteTimeout: the proxy carries long-lived streams (commands, watches).
	psrv := &http.Server{Handler: proxy.New(svc, log, proxy.Config{Domain: c.Domain}), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := psrv.Serve(pln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("sandbox proxy stopped", "err", err)
		}
	}()
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	go sweeper.Run(sweepCtx, c.SweepInterval)
	go nd.RunConsoleTrimmer(sweepCtx, time.Second, node.DefaultConsoleLogMax)
	meterDone := make(chan struct{})
	go func() { defer close(meterDone); meter.Run(sweepCtx, svc.Running) }()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	ready.Store(true)
	fmt.Fprintf(out, "warren is serving the API and the web console on http://%s and sandbox traffic on http://%s (data in %s)\n", ln.Addr(), pln.Addr(), c.DataDir)
	log.Info("serving", "listen", ln.Addr().String())

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Let in-flight requests finish briefly, then cut the rest: command streams, watches
	// and proxied connections can stay open for as long as their clients like, and they
	// must not hold up the teardown below.
	for _, hs := range []*http.Server{srv, psrv} {
		drainCtx, cancelDrain := context.WithTimeout(shutCtx, 3*time.Second)
		if err := hs.Shutdown(drainCtx); err != nil {
			_ = hs.Close()
		}
		cancelDrain()
	}
	stopSweep()
	<-meterDone
	if c.KillOnExit {
		if err := svc.KillAll(shutCtx); err != nil {
			log.Error("killing sandboxes on exit", "err", err)
		}
	}
	svc.Close()
	if svc.Live() == 0 {
		if err := netm.Close(shutCtx); err != nil {
			log.Error("removing nftables table", "err", err)
		}
		for _, d := range drivers {
			if cl, ok := d.(interface{ Cleanup() }); ok {
				cl.Cleanup()
			}
		}
	}
	return nil
}

// templateBuilder is the builder for the configured cache.
func templateBuilder(c Config, out io.Writer, log *slog.Logger) *template.Builder {
	return &template.Builder{
		CacheDir: c.TemplateCache,
		DebCache: filepath.Join(filepath.Dir(strings.TrimRight(c.TemplateCache, "/")), "debs"),
		Log:      log, Progress: out,
	}
}

// templateDescriptions are shown in template listings.
var templateDescriptions = map[string]string{
	"base": "Debian bookworm with bash, python3, curl and git; user 'user'",
}

func recordTemplate(ctx context.Context, b *template.Builder, store domain.Store, r template.Recipe, rootfs string) error {
	m, err := b.Marker(r)
	if err != nil {
		return err
	}
	return store.UpsertTemplate(ctx, &domain.Template{
		ID: r.Name, Description: templateDescriptions[r.Name], Hash: m.Hash, RootFS: rootfs,
		Ready: true, BuiltAt: m.BuiltAt, SizeBytes: m.SizeBytes, StartCmd: startCmd(m), ReadyPort: templateReadyPorts[r.Name],
		PrivatePorts: templatePrivatePorts[r.Name],
	})
}

// ensureBase builds the base template if it is not cached and records it: the server
// does not serve without it.
func ensureBase(ctx context.Context, c Config, store domain.Store, out io.Writer, log *slog.Logger) error {
	b := templateBuilder(c, out, log)
	r := template.Base()
	if _, ok := b.IsReady(r); !ok {
		fmt.Fprintf(out, "Building the base template (Debian bookworm, about 1-3 minutes; cached afterwards)...\n")
	}
	rootfs, err := b.Ensure(ctx, r)
	if err != nil {
		return fmt.Errorf("building the base template: %w", err)
	}
	return recordTemplate(ctx, b, store, r, rootfs)
}

// ensureExtras makes the other templates available: cached ones at once, the rest are
// built in the background (creating a sandbox from them answers 503 until then).
func ensureExtras(ctx context.Context, c Config, store domain.Store, out io.Writer, log *slog.Logger, wg *sync.WaitGroup) error {
	b := templateBuilder(c, out, log)
	for _, r := range extraRecipes() {
		if rootfs, ok := b.IsReady(r); ok {
			if err := recordTemplate(ctx, b, store, r, rootfs); err != nil {
				return err
			}
			continue
		}
		if err := store.UpsertTemplate(ctx, &domain.Template{ID: r.Name, Description: templateDescriptions[r.Name], Hash: r.Hash()}); err != nil {
			return err
		}
		fmt.Fprintf(out, "Building the %s template in the background (several minutes; cached afterwards)...\n", r.Name)
		wg.Add(1)
		go func(r template.Recipe) {
			defer wg.Done()
			rootfs, err := b.Ensure(ctx, r)
			if err != nil {
				if ctx.Err() == nil {
					log.Error("building template", "template", r.Name, "err", err)
				}
				return
			}
			if err := recordTemplate(context.WithoutCancel(ctx), b, store, r, rootfs); err != nil {
				log.Error("recording template", "template", r.Name, "err", err)
				return
			}
			fmt.Fprintf(out, "Template %s is ready.\n", r.Name)
		}(r)
	}
	return nil
}
