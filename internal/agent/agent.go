package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/envdpb/filesystem/filesystemconnect"
	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
	"github.com/warren-sh/warren/internal/logkey"
)

// Agent serves the envd protocol. Create it with [New], serve it with any
// http.Server, and call [Agent.Shutdown] to stop the processes and watchers it owns.
type Agent struct {
	log      *slog.Logger
	users    userDB
	settings *settings
	procs    *manager
	reaper   *reaper
	watchers *watcherRegistry
	oom      *oomWatchdog // nil unless Config.MemoryLimitBytes is set
	handler  http.Handler
	// sethostname applies a hostname POST /init gives; nil when the agent is not the
	// sandbox's init (then the name is only kept), so that an agent run on a host for
	// tests never renames the host.
	sethostname func(name string) error

	// ctx ends when Shutdown starts; long-lived streams that do not belong to a
	// process (WatchDir) end with it.
	ctx    context.Context
	cancel context.CancelFunc

	shutdownOnce sync.Once
	shutdownErr  error
}

// New returns an Agent for cfg. logger may be nil (no logging). New checks cfg and
// resolves the default user; it does not listen or start anything but, when
// cfg.ReapOrphans is set, the reaper.
func New(cfg Config, logger *slog.Logger) (*Agent, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Agent{log: logger, users: systemUsers()}
	a.settings = &settings{
		token:          cfg.AccessToken,
		env:            maps.Clone(cfg.Env),
		defaultUser:    a.pickDefaultUser(cfg.DefaultUser),
		defaultWorkdir: cfg.DefaultWorkdir,
		hostname:       cfg.Hostname,
	}
	if cfg.ReapOrphans {
		a.sethostname = setHostname
	}
	if a.settings.env == nil {
		a.settings.env = map[string]string{}
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.reaper = newReaper(logger.With(logkey.Subsystem, "reaper"), cfg.ReapOrphans)
	a.procs = newManager(logger.With(logkey.Subsystem, "process"), a.reaper)
	if cfg.ProcessLimit > 0 {
		mode, err := a.procs.limitProcesses(cfg.ProcessLimit)
		if err != nil {
			return nil, err
		}
		a.log.Info("processes get RLIMIT_NPROC", "limit", cfg.ProcessLimit, "how", mode)
	}
	a.watchers = newWatcherRegistry()

	mux := http.NewServeMux()
	opts := []connect.HandlerOption{connect.WithCompressMinBytes(1024)}
	mux.Handle(processconnect.NewProcessHandler(&processService{a: a}, opts...))
	mux.Handle(filesystemconnect.NewFilesystemHandler(&filesystemService{a: a}, opts...))
	mux.HandleFunc("/health", a.handleHealth)
	mux.HandleFunc("/files", a.handleFiles)
	mux.HandleFunc("/envs", a.handleEnvs)
	mux.HandleFunc("/metrics", a.handleMetrics)
	mux.HandleFunc("/init", a.handleInit)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	a.handler = a.withCORS(a.withAccessToken(mux))
	if cfg.StartCmd != "" {
		if err := a.startTemplateCommand(cfg.StartCmd); err != nil {
			// The sandbox still works without it; the failure is in the sandbox's log.
			a.log.Error("starting the template's start command", logkey.Err, err)
		}
	}
	if cfg.MemoryLimitBytes > 0 {
		// The watchdog kills any process it sees in /proc: only as the sandbox's init
		// does it see nothing but the sandbox.
		if cfg.ReapOrphans {
			a.oom = startOOMWatchdog(oomConfig{limit: cfg.MemoryLimitBytes, guard: a.reaper.whileUnreaped}, logger.With(logkey.Subsystem, "oom"))
		} else {
			a.log.Warn("memory_limit_bytes is set but the agent is not PID 1: no OOM watchdog", "limit", cfg.MemoryLimitBytes)
		}
	}
	return a, nil
}

// pickDefaultUser returns the configured default user, or "user", falling back to
// "root" when that user does not exist in this image.
func (a *Agent) pickDefaultUser(want string) string {
	if want == "" {
		want = "user"
	}
	if _, err := a.users.lookup(want); err == nil {
		return want
	}
	if want != "root" {
		a.log.Warn("default user does not exist; using root", "user", want)
	}
	return "root"
}

// ServeHTTP implements http.Handler.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// Shutdown ends watch streams, sends SIGTERM to every running process and SIGKILL
// after a few seconds, and waits for them to be reaped or for ctx to end. It is safe
// to call more than once; later calls return the first call's result.
func (a *Agent) Shutdown(ctx context.Context) error {
	a.shutdownOnce.Do(func() {
		a.cancel()
		a.oom.close()
		a.watchers.closeAll()
		a.shutdownErr = a.procs.shutdown(ctx, 3*time.Second)
		a.reaper.close()
	})
	return a.shutdownErr
}

// withCORS opens the API to browsers, as envd does.
func (a *Agent) withCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS, PATCH, HEAD")
		h.Set("Access-Control-Allow-Headers", "*")
		h.Set("Access-Control-Expose-Headers", "*")
		h.Set("Access-Control-Max-Age", "86400")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeJSONError writes the error body envd uses on plain HTTP routes:
// {"code":<status>,"message":"..."}.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Encoding")
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{status, msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeJSONError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (use %s)", r.Method, r.URL.Path, allow))
}

func (a *Agent) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "GET")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (a *Agent) handleEnvs(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, "GET")
		return
	}
	writeJSON(w, http.StatusOK, a.settings.envCopy())
}

// initRequest is the body of POST /init. Fields the agent has no use for
// (timestamp, volumeMounts, ...) are accepted and ignored.
type initRequest struct {
	EnvVars        map[string]string `json:"envVars"`
	AccessToken    *string           `json:"accessToken"`
	DefaultUser    *string           `json:"defaultUser"`
	DefaultWorkdir *string           `json:"defaultWorkdir"`
	// Hostname renames the sandbox (sethostname(2)): a sandbox restored from a
	// snapshot or a fork of another takes its own name this way.
	Hostname *string `json:"hostname"`
}

// handleInit applies POST /init. While no token is set it is open; once one is set,
// withAccessToken has already checked that X-Access-Token carries it, so that nothing
// inside the sandbox can take the agent over. envVars are merged into the sandbox-wide
// env; an empty accessToken, defaultUser or hostname changes nothing; an empty
// defaultWorkdir resets it to the user's home. A hostname is applied before anything
// else changes, so an /init that fails changes nothing.
func (a *Agent) handleInit(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, "POST")
		return
	}
	var req initRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeJSONError(w, http.StatusBadRequest, "invalid /init body: "+err.Error())
		return
	}
	// Also checked here, so that /init never becomes open by an exemption in the
	// middleware: a token in the body is no proof (it is the new token).
	if cur := a.settings.accessToken(); cur != "" && !tokenEqual(r.Header.Get(accessTokenHeader), cur) {
		writeJSONError(w, http.StatusUnauthorized, "the access token is already set: send it in X-Access-Token to re-initialise")
		return
	}
	for k := range req.EnvVars {
		if !validEnvKey(k) {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("envVars key %q is not a valid variable name", k))
			return
		}
	}
	if req.DefaultUser != nil && *req.DefaultUser != "" {
		if _, err := a.users.lookup(*req.DefaultUser); err != nil {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("defaultUser %q does not exist in the sandbox", *req.DefaultUser))
			return
		}
	}
	if req.DefaultWorkdir != nil && *req.DefaultWorkdir != "" && (*req.DefaultWorkdir)[0] != '/' {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("defaultWorkdir %q must be an absolute path", *req.DefaultWorkdir))
		return
	}
	if req.Hostname != nil && *req.Hostname != "" {
		if !validHostname(*req.Hostname) {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("hostname %q is not a valid host name (letters, digits, '-' and '.', at most 64 bytes)", *req.Hostname))
			return
		}
		if a.sethostname != nil {
			if err := a.sethostname(*req.Hostname); err != nil {
				writeJSONError(w, http.StatusInternalServerError, fmt.Sprintf("setting hostname %q: %v", *req.Hostname, err))
				return
			}
		}
	}

	s := a.settings
	s.mu.Lock()
	maps.Copy(s.env, req.EnvVars)
	if req.AccessToken != nil && *req.AccessToken != "" {
		s.token = *req.AccessToken // "" never clears the token: a zero value must not disable auth
	}
	if req.DefaultUser != nil && *req.DefaultUser != "" {
		s.defaultUser = *req.DefaultUser
	}
	if req.DefaultWorkdir != nil {
		s.defaultWorkdir = *req.DefaultWorkdir
	}
	if req.Hostname != nil && *req.Hostname != "" {
		s.hostname = *req.Hostname
	}
	s.mu.Unlock()
	a.log.Info("initialised", "env_vars", len(req.EnvVars), "token_set", req.AccessToken != nil && *req.AccessToken != "", "default_user", req.DefaultUser, "default_workdir", req.DefaultWorkdir, "hostname", req.Hostname)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
