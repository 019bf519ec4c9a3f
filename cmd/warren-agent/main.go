// Command warren-agent is the in-sandbox daemon: it runs as PID 1 in every sandbox
// and serves E2B's envd protocol (see package internal/agent). Its configuration is
// JSON (agent.Config) in the file named by --config, which it reads once and removes
// before starting anything, so that no process of the sandbox, root included, can read
// the access token in it. For older nodes and tests it also takes the JSON from the
// WARREN_AGENT_CONFIG environment variable; it then re-executes itself without that
// variable (the config passed on a memfd), since /proc/1/environ shows the environment
// a process started with, whatever it unsets later.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/agent"
	"github.com/warren-sh/warren/internal/logkey"
)

// configEnv names the environment variable holding the agent's JSON config.
const configEnv = "WARREN_AGENT_CONFIG"

// configFDFlag is how the agent, re-executed without WARREN_AGENT_CONFIG, finds the
// memfd holding it.
const configFDFlag = "config-fd"

// maxConfigBytes bounds the config read from a file or fd.
const maxConfigBytes = 4 << 20

func main() {
	// First: the exec step that sets a started process's RLIMIT_NPROC never returns.
	agent.RunExecHelper(os.Args)
	os.Exit(run())
}

func run() int {
	// No subsystem here: the agent's parts (reaper, process, oom, ...) name themselves.
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	raw, err := loadConfig(os.Args[1:], log)
	if err != nil {
		log.Error("reading configuration", logkey.Err, err)
		return 2
	}
	cfg, err := agent.ParseConfig(raw)
	if err != nil {
		log.Error("invalid configuration", logkey.Err, err)
		return 2
	}
	cfg.ReapOrphans = os.Getpid() == 1
	if cfg.ReapOrphans {
		// Before anything else starts: no process of the sandbox may share the agent's
		// CAP_SYS_RESOURCE (see agent.DropAgentCap).
		if err := agent.DropAgentCap(); err != nil {
			log.Error("dropping CAP_SYS_RESOURCE from the sandbox's processes", logkey.Err, err)
			return 2
		}
	}
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
	// agentclient.ServingMark: the node waits for this line before it asks the agent.
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

// loadConfig returns the agent's JSON config: from --config (read, then removed), from
// --config-fd (read, then closed), or from WARREN_AGENT_CONFIG, which it first moves
// out of the process's environment by re-executing itself (see scrubConfigEnv). No
// config at all yields the defaults.
func loadConfig(args []string, log *slog.Logger) ([]byte, error) {
	fs := flag.NewFlagSet("warren-agent", flag.ContinueOnError)
	path := fs.String("config", "", "JSON config file; read once and removed")
	fd := fs.Int(configFDFlag, -1, "internal: fd of the JSON config (after re-executing without "+configEnv+")")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if raw, ok := os.LookupEnv(configEnv); ok {
		err := scrubConfigEnv(raw)
		// Still here: the re-exec failed. Go on without the variable for children.
		_ = os.Unsetenv(configEnv)
		log.Warn("could not re-execute without "+configEnv+"; /proc/1/environ still shows it (pass --config instead)", logkey.Err, err)
		if *path == "" && *fd < 0 {
			return []byte(raw), nil
		}
	}
	switch {
	case *fd >= 0:
		f := os.NewFile(uintptr(*fd), "agent-config")
		defer f.Close()
		if *path != "" {
			_ = os.Remove(*path) // given both: the file must not stay behind either
		}
		return readBounded(f)
	case *path != "":
		f, err := os.Open(*path)
		if err != nil {
			return nil, fmt.Errorf("opening the config file: %w", err)
		}
		defer f.Close()
		// Removed before anything else runs in the sandbox: nothing else may read it.
		if err := os.Remove(*path); err != nil {
			return nil, fmt.Errorf("removing the config file %s after opening it (it holds the access token): %w", *path, err)
		}
		return readBounded(f)
	}
	return nil, nil
}

func readBounded(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	if len(b) > maxConfigBytes {
		return nil, fmt.Errorf("the config is larger than %d bytes", maxConfigBytes)
	}
	return b, nil
}

// scrubConfigEnv re-executes the agent with raw on a memfd (--config-fd) and an
// environment without WARREN_AGENT_CONFIG. It returns only when that fails.
func scrubConfigEnv(raw string) error {
	fd, err := unix.MemfdCreate("warren-agent-config", 0) // no CLOEXEC: the new image reads it
	if err != nil {
		return fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "agent-config")
	if _, err := io.WriteString(f, raw); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, configEnv+"=") {
			env = append(env, kv)
		}
	}
	self, err := os.Executable()
	if err != nil {
		f.Close()
		return err
	}
	args := []string{os.Args[0], "--" + configFDFlag + "=" + strconv.Itoa(fd)}
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(strings.TrimLeft(a, "-"), configFDFlag) {
			args = append(args, a)
		}
	}
	err = syscall.Exec(self, args, env)
	f.Close()
	return fmt.Errorf("re-executing %s: %w", self, err)
}
