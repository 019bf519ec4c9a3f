// Command warren-agent is the in-sandbox daemon: it runs as PID 1 in every sandbox
// and serves E2B's envd protocol (see package internal/agent). Its configuration is
// the JSON in the WARREN_AGENT_CONFIG environment variable, which it removes from its
// environment before starting anything.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/warren-sh/warren/internal/agent"
	"github.com/warren-sh/warren/internal/logkey"
)

// configEnv names the environment variable holding the agent's JSON config.
const configEnv = "WARREN_AGENT_CONFIG"

func main() {
	os.Exit(run())
}

func run() int {
	// No subsystem here: the agent's parts (reaper, process, oom, ...) name themselves.
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	raw := os.Getenv(configEnv)
	_ = os.Unsetenv(configEnv) // children must never see the access token
	cfg, err := agent.ParseConfig([]byte(raw))
	if err != nil {
		log.Error("invalid configuration", "env", configEnv, logkey.Err, err)
		return 2
	}
	cfg.ReapOrphans = os.Getpid() == 1
	// The runtimes set the hostname from the spec already; runc's seccomp profile (like
	// Docker's) refuses sethostname, so only try when it differs.
	if cur, _ := os.Hostname(); cfg.ReapOrphans && cfg.Hostname != "" && cur != cfg.Hostname {
		if err := syscall.Sethostname([]byte(cfg.Hostname)); err != nil {
			log.Warn("setting hostname", "hostname", cfg.Hostname, logkey.Err, err)
		}
	}

	// Subscribe before anything can send them, so a SIGTERM is never lost.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	a, err := agent.New(cfg, log)
	if err != nil {
		log.Error("starting agent", logkey.Err, err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("listening", "addr", cfg.Listen, logkey.Err, err)
		_ = a.Shutdown(context.Background())
		return 1
	}
	srv := &http.Server{Handler: a, ReadHeaderTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "version", agent.Version, "pid1", cfg.ReapOrphans)

	code := 0
	select {
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
	case err := <-served:
		log.Error("server stopped", logkey.Err, err)
		code = 1
	}

	// Stop the processes first: their streams end, so the server can drain.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		log.Warn("stopping processes", logkey.Err, err)
	}
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("closing connections", logkey.Err, err)
		_ = srv.Close()
	}
	return code
}
