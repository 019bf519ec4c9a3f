package agent

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"sync"
)

// DefaultListen is the address envd listens on in E2B sandboxes.
const DefaultListen = ":49983"

// Config configures an [Agent]. cmd/warren-agent reads it as JSON from the file named
// by --config, which it removes at once (or, from older nodes, from the
// WARREN_AGENT_CONFIG environment variable); every field is optional.
type Config struct {
	// Listen is the TCP address cmd/warren-agent serves on. Default [DefaultListen].
	// The Agent itself does not listen; it is only an http.Handler.
	Listen string `json:"listen"`
	// AccessToken, when non-empty, must be sent as X-Access-Token on every request
	// except GET /health and /files (which also accept a signed URL). POST /init may
	// set it later, and once it is set, replace it only with the current one in
	// X-Access-Token.
	AccessToken string `json:"access_token"`
	// Env holds sandbox-wide environment variables given to every process, after
	// PATH/HOME/USER/LOGNAME and before the request's own envs. POST /init adds to it.
	Env map[string]string `json:"env"`
	// DefaultUser is the user for requests that name none. Empty means "user",
	// falling back to "root" when the image has no such user.
	DefaultUser string `json:"default_user"`
	// DefaultWorkdir is the working directory for processes that ask for none and
	// the base for relative paths. Empty means the user's home directory.
	DefaultWorkdir string `json:"default_workdir"`
	// StartCmd, when set, is a shell command line the agent starts at boot as root with
	// tag "start" (a template's start command, e.g. its code-interpreter server). Its
	// output goes to the agent's log; it is not restarted if it exits.
	StartCmd string `json:"start_cmd"`
	// Hostname, when set, is applied with sethostname(2) by cmd/warren-agent when it
	// runs as PID 1; the Agent keeps it as the sandbox's name, which POST /init may
	// change (and then applies itself, as PID 1).
	Hostname string `json:"hostname"`
	// MemoryLimitBytes, when positive, is the sandbox's memory limit for runtimes that
	// cannot kill a single process at it (gVisor): the agent then watches the sandbox's
	// memory use and kills the largest process when it nears the limit (see oom.go).
	// The node sets it; the host limit of such a sandbox has headroom above it.
	MemoryLimitBytes int64 `json:"memory_limit_bytes"`
	// ProcessLimit, when positive, is the RLIMIT_NPROC (soft and hard) of every process
	// the agent starts, in place before the program runs. The limit never binds the
	// agent itself, so a fork bomb, even as root, cannot take its threads (see
	// limitProcesses). The node sets it for drivers whose pids limit would end the
	// whole sandbox (runtime.ProcessLimiter).
	ProcessLimit uint64 `json:"process_limit"`
	// ReapOrphans makes the agent reap every child with wait4(-1), which it must do
	// when it is PID 1 (or a child subreaper). When false (tests, or running under
	// another init) each started process is waited for individually and nothing else
	// is touched. cmd/warren-agent sets it when its pid is 1.
	ReapOrphans bool `json:"-"`
}

// ParseConfig decodes the JSON form of Config (as found in the --config file),
// fills defaults and validates it. Empty input yields the defaults. Unknown fields are
// ignored so that a newer server can configure an older agent.
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	if len(data) > 0 {
		if err := json.Unmarshal(data, &cfg); err != nil {
			return Config{}, fmt.Errorf("parsing agent config: %w (want a JSON object like {\"listen\":\":49983\"})", err)
		}
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports the first problem with cfg, phrased for the operator.
func (c Config) Validate() error {
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("agent config: listen %q is not host:port (e.g. \":49983\"): %w", c.Listen, err)
		}
	}
	if c.DefaultWorkdir != "" && !filepath.IsAbs(c.DefaultWorkdir) {
		return fmt.Errorf("agent config: default_workdir %q must be an absolute path", c.DefaultWorkdir)
	}
	if c.MemoryLimitBytes < 0 {
		return fmt.Errorf("agent config: memory_limit_bytes %d must not be negative (0 = no watchdog)", c.MemoryLimitBytes)
	}
	for k := range c.Env {
		if !validEnvKey(k) {
			return fmt.Errorf("agent config: env key %q is not a valid variable name", k)
		}
	}
	return nil
}

func validEnvKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r == '=' || r == 0 {
			return false
		}
	}
	return true
}

// settings is the part of the configuration that POST /init may change at run time.
type settings struct {
	mu             sync.RWMutex
	token          string
	env            map[string]string
	defaultUser    string
	defaultWorkdir string
	hostname       string
}

func (s *settings) accessToken() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.token
}

func (s *settings) envCopy() map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.env)
}

func (s *settings) defaults() (user, workdir string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.defaultUser, s.defaultWorkdir
}

// hostnameValue returns the sandbox's host name as the agent knows it ("" when it
// was never given one).
func (s *settings) hostnameValue() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.hostname
}

// validHostname reports whether name may be given to sethostname(2) as a host name:
// 1 to 64 bytes of letters, digits, '-' and '.', not starting with '-' or '.'.
func validHostname(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '-' || name[0] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
