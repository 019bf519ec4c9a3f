package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/telemetry"
)

// NewLogger builds the operator log from the config.
func NewLogger(c Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	// Lines logged in a request's or an operation's context carry its trace_id and
	// span_id (the request_id the callers add).
	if c.LogFormat == "json" {
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts)))
}

// Run serves until ctx ends. out receives what a person starting the server should see
// (the admin key on first start, template build progress, the listen address).
func Run(ctx context.Context, c Config, out io.Writer, log *slog.Logger) (err error) {
	if os.Geteuid() != 0 && c.Role != RoleControl {
		return errors.New("warren serve must run as root (it creates network namespaces, mounts and sandboxes); try: sudo warren serve (a control replica, --role control, runs no sandboxes and needs no root)")
	}
	tracing, err := telemetry.Setup(ctx, log)
	if err != nil {
		return err
	}
	// Deferred first, so it runs last: the spans of the shutdown are sent too.
	defer flushTraces(tracing, log)
	mx := newMetrics(c)
	store, catalog, err := openState(ctx, c, out, log, mx)
	if err != nil {
		return err
	}
	defer store.Close()
	if c.Role == RoleControl {
		return runControl(ctx, c, out, log, mx, store, catalog)
	}
	builds, err := startTemplates(ctx, c, store, out, log, mx)
	if err != nil {
		return err
	}
	defer builds.stop()
	h, err := startHost(ctx, c, out, log, mx)
	if err != nil {
		return err
	}
	// A start that fails from here on must not leave the node's nftables table behind
	// (a later start rebuilds it and re-admits running sandboxes anyway).
	defer func() {
		if err != nil {
			h.closeNetwork(context.WithoutCancel(ctx), log)
		}
	}()
	svcs, err := startServices(ctx, c, store, catalog, h, log, mx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil { // a normal shutdown closes the pools in shutdownSandboxes
			svcs.sandboxes.closePool(context.WithoutCancel(ctx), log)
		}
	}()
	defer svcs.closeLimiter()
	bh, berr := startBuilder(ctx, c, h.deny, log)
	if berr != nil {
		fmt.Fprintf(out, "warning: template builds are off: %v\n", berr)
		log.Warn("template builds are off", logkey.Err, berr)
	}
	defer bh.close(context.WithoutCancel(ctx), log) // after the template service stops its builds
	if svcs.templates, err = startTemplateService(ctx, c, store, bh, log); err != nil {
		return err
	}
	defer svcs.templates.Close()
	ls, err := listen(c, svcs, log)
	if err != nil {
		return err
	}
	svcs.watch(log)
	svcs.watchHost(c, h)
	background, stopBackground := svcs.runBackground(c, h.node)
	defer stopBackground()
	svcs.ready.Store(true)
	fmt.Fprintf(out, "warren (--role %s, node %s) is serving %s (data in %s)\n", c.Role, c.NodeName, ls.addrs(c), c.DataDir)
	if err := ls.wait(ctx, out, log); err != nil {
		return err
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ls.drain(shutCtx)
	stopBackground()
	<-background
	shutdownSandboxes(shutCtx, c, svcs.sandboxes, h, log)
	return nil
}

// wait tells where metrics are served and serves until ctx ends (nil) or the main
// listener fails.
func (ls *listeners) wait(ctx context.Context, out io.Writer, log *slog.Logger) error {
	errc := ls.serve(log)
	if ls.metrics != nil {
		fmt.Fprintf(out, "Prometheus metrics on http://%s/metrics\n", ls.metrics.Addr())
	}
	log.Info("serving")
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	log.Info("shutting down")
	return nil
}

// flushTraces sends the spans still queued to the collector, waiting for it at most
// 5 seconds.
func flushTraces(t *telemetry.Tracing, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("flushing traces", logkey.Err, err)
	}
}

// shutdownSandboxes removes the warm pools' sandboxes, ends the others with
// --kill-on-exit, else leaves them running for the next server to re-attach, and
// releases the node's network and cgroups when no sandbox is left.
func shutdownSandboxes(ctx context.Context, c Config, sbs *sandboxServices, h *host, log *slog.Logger) {
	sbs.closePool(ctx, log)
	svc := sbs.service
	if c.KillOnExit {
		if err := svc.KillAll(ctx); err != nil {
			log.Error("killing sandboxes on exit", logkey.Err, err)
		}
	}
	svc.Close()
	if svc.Live() == 0 {
		h.release(ctx, log)
	}
	h.closeEgress(log)
}
