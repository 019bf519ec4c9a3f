// Package server wires one Warren node and control plane into the `warren serve` process:
// store, API keys, templates, networking, runtime, the sandbox services and the HTTP API.
// Run reads as its steps (wiring.go holds them in order): open the state, build the
// templates, set up the host, start the services, listen, serve, shut down.
package server

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/cluster"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/egress"
	"github.com/warren-sh/warren/internal/forward"
	"github.com/warren-sh/warren/internal/network"
	"github.com/warren-sh/warren/internal/node"
	"github.com/warren-sh/warren/internal/runtime/gvisor"
	"github.com/warren-sh/warren/internal/sandbox"
	"github.com/warren-sh/warren/internal/template"
	"github.com/warren-sh/warren/internal/template/oci"
)

// Config is the configuration of `warren serve`. Every field has a flag and a WARREN_
// environment variable; flags win.
type Config struct {
	// Listen is the API address (WARREN_LISTEN, default 127.0.0.1:3000).
	Listen string
	// ProxyListen is the sandbox traffic proxy's address (WARREN_PROXY_LISTEN, default
	// 127.0.0.1:3001): E2B_SANDBOX_URL points here.
	ProxyListen string
	// Domain is the sandbox domain: ports are reachable as <port>-<id>.<domain> through
	// the proxy (WARREN_DOMAIN, default localhost:<proxy port>, which curl and browsers
	// resolve to loopback).
	Domain string
	// PublicURL is the base URL clients reach the API at behind a proxy or load balancer
	// (WARREN_PUBLIC_URL, e.g. https://api.example.com): the upload links of E2B template
	// builds point there. Empty: each request's own host (and X-Forwarded-Proto).
	PublicURL string
	// DataDir holds the database, the admin key, runtime state and sandbox layers
	// (WARREN_DATA_DIR, default /var/lib/warren).
	DataDir string
	// TemplateCache holds built template root filesystems, keyed by recipe hash
	// (WARREN_TEMPLATE_CACHE, default /var/cache/warren/templates).
	TemplateCache string
	// LayerCacheKeep is how long a template build layer no build used is kept (0: for
	// ever); LayerCacheMaxBytes bounds the layers' size, least recently used removed
	// first (0: no bound). Checked hourly (internal/template/layers, prune.go).
	LayerCacheKeep     time.Duration
	LayerCacheMaxBytes int64
	// ImageCacheKeep is how long a pulled image's root and layers no pull used are kept
	// (0: for ever; see internal/template/oci, prune.go).
	ImageCacheKeep time.Duration
	// ImageCache holds pulled OCI image layers and unpacked roots, by digest
	// (WARREN_IMAGE_CACHE, default /var/cache/warren/images; see internal/template/oci).
	ImageCache string
	// RegistryMirrors are registries tried, in order, before Docker Hub when an OCI image
	// of Docker Hub is pulled, for hosts that cannot reach it (--registry-mirror,
	// repeatable or comma-separated; WARREN_REGISTRY_MIRRORS): host[:port] or an
	// http(s):// URL of one, http:// meaning plain HTTP.
	RegistryMirrors []string
	// AptMirror is the Debian mirror templates are built from (WARREN_APT_MIRROR); empty
	// means the mirror of the host's own apt sources, else deb.debian.org.
	AptMirror string
	// AgentPath is the warren-agent binary injected into sandboxes (WARREN_AGENT_PATH,
	// default: warren-agent beside the warren binary).
	AgentPath string
	// NetworkName names this node's nftables table and namespaces (WARREN_NETWORK_NAME).
	NetworkName string
	// SandboxCIDR is the pool sandbox addresses come from (WARREN_SANDBOX_CIDR).
	SandboxCIDR netip.Prefix
	// BuildCIDR is the pool of the sandboxes template builds run their steps in, on a
	// build node of their own (WARREN_BUILD_CIDR; default: a /26 of 10.250.0.0/16 chosen
	// by the network name). It must not overlap SandboxCIDR.
	BuildCIDR netip.Prefix
	// DenyCIDRs are destinations sandboxes never reach, internet or not (--deny-cidr,
	// WARREN_DENY_CIDR: a comma-separated list replacing network.DefaultDenyCIDRs;
	// "none" for no list). The database's and Redis's addresses are added to it.
	DenyCIDRs []netip.Prefix
	// EgressDNSUpstream are the name servers Warren's sandbox resolver forwards to, and
	// the egress proxy resolves names with (--egress-dns-upstream,
	// WARREN_EGRESS_DNS_UPSTREAM: comma-separated addresses, port 53 unless given);
	// empty means the host's /etc/resolv.conf.
	EgressDNSUpstream []string
	// EgressProxyPort and EgressDNSPort are the host ports of the egress proxy and the
	// sandbox resolver (--egress-proxy-port, --egress-dns-port; WARREN_EGRESS_PROXY_PORT,
	// WARREN_EGRESS_DNS_PORT); 0 takes free ones at each start.
	EgressProxyPort, EgressDNSPort int
	// Runtime is the default runtime: auto (the strongest this host can run: gVisor,
	// else runc), gvisor or runc (WARREN_RUNTIME). Sandboxes may ask for another one
	// that is available, or for a minimum isolation level.
	Runtime string
	// Runtimes are the runtimes offered to requests (WARREN_RUNTIMES, a comma list such
	// as gvisor,runc): a sandbox may ask for one of these by name, and only these serve
	// a minimum isolation level. Empty offers only the default runtime. Each must run on
	// this host, and an explicit default must be among them; with --runtime auto the
	// default is the strongest of them.
	Runtimes []string
	// Runsc is the runsc binary (WARREN_RUNSC, default from PATH); RunscPlatform its
	// platform (WARREN_RUNSC_PLATFORM, default systrap).
	Runsc         string
	RunscPlatform string
	// RunscCache is where scripts/install-deps.sh builds runsc (WARREN_RUNSC_CACHE,
	// default /var/cache/warren/runsc): while it holds the build lock there (make run
	// builds runsc beside the base template), the server waits before starting its
	// runtimes.
	RunscCache string
	// DefaultTimeout is a sandbox's lifetime when none is asked for (WARREN_DEFAULT_TIMEOUT).
	DefaultTimeout time.Duration
	// PausedRetention is how long a paused sandbox is kept before it is deleted with its
	// files (WARREN_PAUSED_RETENTION, default 7 days; 0 keeps them until killed).
	PausedRetention time.Duration
	// DefaultLimits and MaxLimits bound what a sandbox may ask for.
	DefaultLimits domain.Limits
	MaxLimits     domain.Limits
	// TemplateSnapshots makes templates with a start command (code-interpreter) start
	// their sandboxes from a snapshot of one booted sandbox, made once per template build
	// and agent binary (--template-snapshots, WARREN_TEMPLATE_SNAPSHOTS, default on;
	// gVisor only).
	TemplateSnapshots bool
	// KillOnExit ends every sandbox on shutdown instead of leaving them for the next
	// start to re-attach (WARREN_KILL_ON_EXIT).
	KillOnExit bool
	// WarmPool is how many warm sandboxes of each template the node keeps started for
	// creates to take (WARREN_WARM_POOL, "base=4,code-interpreter=2"; empty: none).
	// Members have the node's default runtime and the default limits; each holds its
	// memory and an address. See sandbox.Pool.
	WarmPool []sandbox.PoolSize
	// SweepInterval is how often runtime leftovers are looked for (default 30 s).
	SweepInterval time.Duration
	// NodeName is this node's name in the node table (--node-name, WARREN_NODE_NAME,
	// default the host name). Every server on one database needs its own.
	NodeName string
	// Advertise is where control replicas reach this node (--advertise,
	// WARREN_ADVERTISE, default the internal listen address, else the API's).
	Advertise string
	// Role is what this server does (--role, WARREN_ROLE): RoleAll (the default: one
	// host, everything), RoleControl (API, proxy, placement, billing; no sandboxes) or
	// RoleNode (sandboxes, templates, an internal API for the controls).
	Role string
	// ClusterSecret is what control replicas prove to nodes' internal listeners
	// (WARREN_CLUSTER_SECRET, or the file --cluster-secret-file); "" outside a cluster.
	ClusterSecret string
	// AdminKey is the platform admin key every server of a cluster shares
	// (WARREN_ADMIN_KEY, or the file --admin-key-file): made once in the database, and
	// no admin.key of the server's own. "" keeps one per data dir (admin.key).
	AdminKey string
	// InternalListen is where a node serves the control replicas' forwarded requests
	// and sandbox traffic, with the cluster secret (--internal-listen,
	// WARREN_INTERNAL_LISTEN; default 127.0.0.1:3100 for --role node, off for all).
	InternalListen string
	// NodeTimeout is how old a node's heartbeat may be before the node is marked down
	// and its sandboxes lost (--node-timeout, WARREN_NODE_TIMEOUT, default 15 s).
	NodeTimeout time.Duration
	// LogFormat is "text" or "json" (WARREN_LOG_FORMAT); LogLevel debug|info|warn|error.
	LogFormat string
	LogLevel  string
	// DatabaseURL selects PostgreSQL (postgres://...) instead of the embedded SQLite
	// file in DataDir (WARREN_DATABASE_URL).
	DatabaseURL string
	// RedisURL makes the request rate limiter shared through Redis, for several API
	// replicas (WARREN_REDIS_URL); empty keeps it in memory.
	RedisURL string
	// PlansFile is a JSON pricing catalog (WARREN_PLANS); empty uses the built-in plans.
	PlansFile string
	// MeterInterval is how often running sandboxes' resource use is sampled and saved
	// (WARREN_METER_INTERVAL, default 10 s): a crash loses at most this much usage.
	MeterInterval time.Duration
	// TeamQuota is the quota a new team gets for what its creator leaves out, and the
	// default team's on the first start (WARREN_TEAM_MAX_SANDBOXES, default 20;
	// _MAX_CPU_CORES, default twice the host's cores and at least 8; _MAX_MEMORY_MB,
	// default 75% of the host's memory; _MAX_DISK_MB, default 51200;
	// _REQUESTS_PER_MINUTE, default 3000; _MAX_SNAPSHOTS, default 20; _MAX_TEMPLATES,
	// default 20; _MAX_TEMPLATE_MB, default 20480; 0 = no limit).
	// See DefaultTeamQuota.
	TeamQuota domain.Quota
	// SessionTTL is how long a console login lasts (WARREN_SESSION_TTL, default 12 h).
	SessionTTL time.Duration
	// NodeMemoryReserveMB and NodeDiskReserveMB are node admission's reserves
	// (WARREN_NODE_MEMORY_RESERVE_MB, default 512; WARREN_NODE_DISK_RESERVE_MB, default
	// 1024): a sandbox starts only while the host's available memory is at least its
	// memory limit plus the memory reserve, and the data directory's free disk at least
	// its disk limit plus the disk reserve; otherwise create answers 503 node_full.
	NodeMemoryReserveMB, NodeDiskReserveMB int64
	// IdleTimeout closes keep-alive connections of both listeners that carry no
	// request for this long (WARREN_IDLE_TIMEOUT, default 120 s).
	IdleTimeout time.Duration
	// BodyReadTimeout drops a request whose body stops arriving for this long
	// (WARREN_BODY_READ_TIMEOUT, default 20 s): the read deadline moves on while bytes
	// arrive, so uploads that keep sending and long-lived streams are not cut.
	BodyReadTimeout time.Duration
	// MaxConnsPerIP caps the open connections of one client address on each listener
	// (WARREN_MAX_CONNS_PER_IP, default 256; 0 = no cap); more are closed at accept.
	MaxConnsPerIP int
	// ProxyMaxBufferedMB caps the request bodies the sandbox proxy holds in memory at
	// once, across requests (WARREN_PROXY_MAX_BUFFERED_MB, default 64); a request whose
	// body would pass it gets 503 with Retry-After.
	ProxyMaxBufferedMB int64
	// MetricsListen is where Prometheus metrics are served, at /metrics, without
	// authentication (WARREN_METRICS_LISTEN, default 127.0.0.1:9464; empty turns them
	// off). Keep it on loopback or a network only the monitoring reaches.
	MetricsListen string
	// MetricsTeamLabels adds a team label to the per-team metrics (sandboxes, creates,
	// HTTP requests, refusals): every team then multiplies their series
	// (--metrics-team-labels, WARREN_METRICS_TEAM_LABELS; default off).
	MetricsTeamLabels bool
	// Version is the running binary's version (warren_build_info); the command sets it,
	// it has no flag.
	Version string
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return v
	}
	return def
}

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}

// The roles of --role.
const (
	RoleAll     = "all"
	RoleControl = "control"
	RoleNode    = "node"
)

// parseRole checks --role and what it needs: a PostgreSQL database and the cluster
// secret for a control or a node, and a node's internal listener.
func (c *Config) parseRole(secretFile string) error {
	switch c.Role {
	case RoleAll, RoleControl, RoleNode:
	default:
		return fmt.Errorf("--role %q: use all (one host), control or node", c.Role)
	}
	var err error
	if c.ClusterSecret, err = secretFrom("WARREN_CLUSTER_SECRET", secretFile, "--cluster-secret-file"); err != nil {
		return err
	}
	if c.Role == RoleNode && c.InternalListen == "" {
		c.InternalListen = "127.0.0.1:3100"
	}
	if c.InternalListen != "" {
		if _, _, err := net.SplitHostPort(c.InternalListen); err != nil {
			return fmt.Errorf("--internal-listen %q: want host:port such as 0.0.0.0:3100: %w", c.InternalListen, err)
		}
	}
	if c.Role == RoleAll && c.ClusterSecret == "" {
		if c.InternalListen != "" {
			return errors.New("--internal-listen needs the cluster secret (WARREN_CLUSTER_SECRET or --cluster-secret-file): the listener admits only requests that carry it")
		}
		return nil
	}
	if err := forward.CheckSecret(c.ClusterSecret); err != nil {
		return fmt.Errorf("--role %s: %w", c.Role, err)
	}
	if c.Role != RoleAll && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return fmt.Errorf("--role %s needs the cluster's PostgreSQL database: set WARREN_DATABASE_URL (or --database-url) to a postgres:// URL shared by every control and node", c.Role)
	}
	if c.Role == RoleAll && c.InternalListen == "" {
		return errors.New("the cluster secret is set, so this server is one of a cluster: give --internal-listen (WARREN_INTERNAL_LISTEN), where the other servers reach it")
	}
	return nil
}

// secretFrom reads a secret given either in the environment variable envName or in the
// file (flag), not both; "" when neither is.
func secretFrom(envName, file, flag string) (string, error) {
	v := os.Getenv(envName)
	if file == "" {
		return v, nil
	}
	if v != "" {
		return "", fmt.Errorf("the secret is given twice (%s and %s): give one", envName, flag)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func hostMemoryMB() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 4096
	}
	var kb int64
	fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
	return kb / 1024
}

// DefaultTeamQuota is the quota teams get unless the operator says otherwise, sized for
// a single host with cores CPUs and memMB MiB of memory: one team alone can use the
// whole machine's memory but a quarter (the host keeps the rest), twice its cores (CPU
// limits are caps, and sandboxes mostly wait), 20 sandboxes, 50 GiB of sandbox disk,
// 3000 requests a minute (50 a second, a burst of 3000), which lets 20 busy
// sandboxes' agents work while bounding a runaway client, and 20 snapshots (each holds
// a sandbox's memory and files on disk). Node admission
// (--node-memory-reserve-mb) guards the host against all teams together.
func DefaultTeamQuota(cores int, memMB int64) domain.Quota {
	return domain.Quota{
		MaxSandboxes:      20,
		MaxCPUCores:       max(8, 2*float64(cores)),
		MaxMemoryMB:       memMB * 3 / 4,
		MaxDiskMB:         50 << 10,
		RequestsPerMinute: 3000,
		MaxSnapshots:      20,
		MaxTemplates:      20,
		MaxTemplateMB:     20 << 10,
	}
}

// parseRuntimes reads the --runtimes list: known names, each once.
func parseRuntimes(list string) ([]string, error) {
	var out []string
	for _, name := range strings.Split(list, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		switch name {
		case "":
			continue
		case "gvisor", "runc", "microvm":
		default:
			return nil, fmt.Errorf("--runtimes names %q: the runtimes are gvisor, runc and microvm", name)
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// ParseFlags fills a Config from args and the environment.
func ParseFlags(args []string) (c Config, err error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", env("WARREN_LISTEN", "127.0.0.1:3000"), "API listen address (WARREN_LISTEN)")
	fs.StringVar(&c.ProxyListen, "proxy-listen", env("WARREN_PROXY_LISTEN", "127.0.0.1:3001"), "sandbox traffic proxy address (WARREN_PROXY_LISTEN)")
	fs.StringVar(&c.PublicURL, "public-url", env("WARREN_PUBLIC_URL", ""), "base URL clients reach the API at, e.g. https://api.example.com, for the upload links of template builds (WARREN_PUBLIC_URL; default: each request's host)")
	fs.StringVar(&c.Domain, "domain", env("WARREN_DOMAIN", ""), "sandbox domain for <port>-<id>.<domain> hosts (WARREN_DOMAIN; default localhost:<proxy port>)")
	fs.StringVar(&c.DataDir, "data-dir", env("WARREN_DATA_DIR", "/var/lib/warren"), "data directory (WARREN_DATA_DIR)")
	fs.StringVar(&c.AptMirror, "apt-mirror", env("WARREN_APT_MIRROR", ""), "Debian mirror for template builds (WARREN_APT_MIRROR; default: the host's apt sources)")
	fs.StringVar(&c.TemplateCache, "template-cache", env("WARREN_TEMPLATE_CACHE", "/var/cache/warren/templates"), "template cache directory (WARREN_TEMPLATE_CACHE)")
	fs.StringVar(&c.ImageCache, "image-cache", env("WARREN_IMAGE_CACHE", DefaultImageCache), "OCI image cache directory (WARREN_IMAGE_CACHE)")
	if c.RegistryMirrors, err = oci.ParseMirrors(env("WARREN_REGISTRY_MIRRORS", "")); err != nil {
		return c, fmt.Errorf("WARREN_REGISTRY_MIRRORS: %w", err)
	}
	mirrorFlagSeen := false
	fs.Func("registry-mirror", "registry tried before Docker Hub for its images, host[:port] or http(s)://host[:port]; repeatable or comma-separated, replacing WARREN_REGISTRY_MIRRORS", func(v string) error {
		if !mirrorFlagSeen { // the flags replace the environment's list
			mirrorFlagSeen, c.RegistryMirrors = true, nil
		}
		m, err := oci.ParseMirrors(v)
		c.RegistryMirrors = append(c.RegistryMirrors, m...)
		return err
	})
	fs.StringVar(&c.AgentPath, "agent", env("WARREN_AGENT_PATH", ""), "warren-agent binary (WARREN_AGENT_PATH; default beside warren)")
	fs.StringVar(&c.NetworkName, "network-name", env("WARREN_NETWORK_NAME", "warren"), "name of this node's nftables table and namespaces (WARREN_NETWORK_NAME)")
	cidr := fs.String("sandbox-cidr", env("WARREN_SANDBOX_CIDR", "10.211.0.0/16"), "sandbox address pool (WARREN_SANDBOX_CIDR)")
	buildCIDR := fs.String("build-cidr", env("WARREN_BUILD_CIDR", ""), "address pool of template builds' step sandboxes (WARREN_BUILD_CIDR; default: a /26 of 10.250.0.0/16 chosen by --network-name)")
	deny := fs.String("deny-cidr", env("WARREN_DENY_CIDR", ""), "comma-separated IPv4 prefixes sandboxes never reach, replacing the default (private ranges, 100.64/10, link-local, 192.0.0/24, multicast); \"none\" for none (WARREN_DENY_CIDR)")
	upstream := fs.String("egress-dns-upstream", env("WARREN_EGRESS_DNS_UPSTREAM", ""), "comma-separated name servers the sandbox resolver forwards to, e.g. 192.0.2.53 or 192.0.2.53:5353 (WARREN_EGRESS_DNS_UPSTREAM; default: the host's /etc/resolv.conf)")
	fs.IntVar(&c.EgressProxyPort, "egress-proxy-port", int(envInt("WARREN_EGRESS_PROXY_PORT", 0)), "host TCP port of the egress proxy sandboxes with domain rules are redirected to; 0 = any free port (WARREN_EGRESS_PROXY_PORT)")
	fs.IntVar(&c.EgressDNSPort, "egress-dns-port", int(envInt("WARREN_EGRESS_DNS_PORT", 0)), "host UDP and TCP port of the sandbox resolver; 0 = any free port (WARREN_EGRESS_DNS_PORT)")
	fs.StringVar(&c.Runtime, "runtime", env("WARREN_RUNTIME", "auto"), "default runtime: auto, gvisor or runc (WARREN_RUNTIME)")
	runtimes := fs.String("runtimes", env("WARREN_RUNTIMES", ""), "runtimes offered to requests, comma-separated, e.g. gvisor,runc (WARREN_RUNTIMES; default: only the default runtime)")
	fs.StringVar(&c.Runsc, "runsc", env("WARREN_RUNSC", ""), "runsc binary (WARREN_RUNSC)")
	fs.StringVar(&c.RunscPlatform, "runsc-platform", env("WARREN_RUNSC_PLATFORM", "systrap"), "gVisor platform: systrap or ptrace (WARREN_RUNSC_PLATFORM)")
	fs.StringVar(&c.RunscCache, "runsc-cache", env("WARREN_RUNSC_CACHE", gvisor.DefaultBuildCache), "where scripts/install-deps.sh builds runsc; serve waits while a build there runs (WARREN_RUNSC_CACHE)")
	defTimeout := fs.Duration("default-timeout", 300*time.Second, "sandbox lifetime when none is given (WARREN_DEFAULT_TIMEOUT)")
	retention := fs.Duration("paused-retention", 7*24*time.Hour, "how long a paused sandbox is kept before it is deleted with its files; 0 = until killed (WARREN_PAUSED_RETENTION)")
	warm := fs.String("warm-pool", env("WARREN_WARM_POOL", ""), "warm sandboxes kept started per template for creates to take, e.g. base=4,code-interpreter=2 (WARREN_WARM_POOL)")
	fs.BoolVar(&c.TemplateSnapshots, "template-snapshots", env("WARREN_TEMPLATE_SNAPSHOTS", "1") != "0" && env("WARREN_TEMPLATE_SNAPSHOTS", "1") != "false",
		"start sandboxes of templates with a start command (code-interpreter) from a snapshot made once per template build (WARREN_TEMPLATE_SNAPSHOTS)")
	fs.BoolVar(&c.KillOnExit, "kill-on-exit", env("WARREN_KILL_ON_EXIT", "") == "1" || env("WARREN_KILL_ON_EXIT", "") == "true", "kill all sandboxes on shutdown (WARREN_KILL_ON_EXIT)")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", 30*time.Second, "how often runtime leftovers are removed")
	host, _ := os.Hostname()
	fs.StringVar(&c.NodeName, "node-name", env("WARREN_NODE_NAME", host), "this node's name in the node table; each server on one database needs its own (WARREN_NODE_NAME; default the host name)")
	fs.StringVar(&c.Advertise, "advertise", env("WARREN_ADVERTISE", ""), "host:port where control replicas reach this node (WARREN_ADVERTISE; default the --listen address)")
	fs.StringVar(&c.Role, "role", env("WARREN_ROLE", RoleAll), "what this server does: all (one host), control (API, proxy and placement for the nodes; no sandboxes) or node (sandboxes, for the controls) (WARREN_ROLE)")
	fs.StringVar(&c.InternalListen, "internal-listen", env("WARREN_INTERNAL_LISTEN", ""), "where a node serves the control replicas (their forwarded requests and sandbox traffic, with the cluster secret) (WARREN_INTERNAL_LISTEN; default 127.0.0.1:3100 for --role node)")
	adminKeyFile := fs.String("admin-key-file", env("WARREN_ADMIN_KEY_FILE", ""), "file holding the platform admin key (sk_...) that every server of a cluster shares, instead of an admin.key of each server's own (WARREN_ADMIN_KEY_FILE; or the key itself in WARREN_ADMIN_KEY)")
	secretFile := fs.String("cluster-secret-file", env("WARREN_CLUSTER_SECRET_FILE", ""), "file holding the cluster secret that controls and nodes share (WARREN_CLUSTER_SECRET_FILE; or the secret itself in WARREN_CLUSTER_SECRET)")
	nodeTimeout := fs.Duration("node-timeout", cluster.DefaultTimeout, "a node whose heartbeat is older is marked down and its sandboxes lost (WARREN_NODE_TIMEOUT)")
	fs.StringVar(&c.LogFormat, "log-format", env("WARREN_LOG_FORMAT", "text"), "log format: text or json (WARREN_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", env("WARREN_LOG_LEVEL", "info"), "log level (WARREN_LOG_LEVEL)")
	fs.StringVar(&c.DatabaseURL, "database-url", env("WARREN_DATABASE_URL", ""), "PostgreSQL URL; empty uses SQLite in the data dir (WARREN_DATABASE_URL)")
	fs.StringVar(&c.RedisURL, "redis-url", env("WARREN_REDIS_URL", ""), "Redis URL for a rate limiter shared by API replicas (WARREN_REDIS_URL)")
	fs.StringVar(&c.PlansFile, "plans", env("WARREN_PLANS", ""), "pricing plans JSON file; empty uses the built-in plans (WARREN_PLANS)")
	meter := fs.Duration("meter-interval", 10*time.Second, "how often sandbox usage is sampled and saved (WARREN_METER_INTERVAL)")
	sessTTL := fs.Duration("session-ttl", 12*time.Hour, "console login lifetime (WARREN_SESSION_TTL)")
	fs.Int64Var(&c.NodeMemoryReserveMB, "node-memory-reserve-mb", envInt("WARREN_NODE_MEMORY_RESERVE_MB", node.DefaultMemoryReserveMB),
		"memory (MiB) kept free beyond a new sandbox's memory limit, else create answers 503 node_full (WARREN_NODE_MEMORY_RESERVE_MB)")
	fs.Int64Var(&c.NodeDiskReserveMB, "node-disk-reserve-mb", envInt("WARREN_NODE_DISK_RESERVE_MB", node.DefaultDiskReserveMB),
		"disk (MiB) of the data dir kept free beyond a new sandbox's disk limit, else create answers 503 node_full (WARREN_NODE_DISK_RESERVE_MB)")
	idle := fs.Duration("idle-timeout", 120*time.Second, "close keep-alive connections idle this long (WARREN_IDLE_TIMEOUT)")
	bodyRead := fs.Duration("body-read-timeout", 20*time.Second, "drop a request whose body stops arriving for this long (WARREN_BODY_READ_TIMEOUT)")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", int(envInt("WARREN_MAX_CONNS_PER_IP", 256)), "open connections one client address may hold on each listener; 0 = no cap (WARREN_MAX_CONNS_PER_IP)")
	fs.Int64Var(&c.ProxyMaxBufferedMB, "proxy-max-buffered-mb", envInt("WARREN_PROXY_MAX_BUFFERED_MB", 64), "MiB of request bodies the sandbox proxy holds at once (WARREN_PROXY_MAX_BUFFERED_MB)")
	metricsListen := fs.String("metrics-listen", "127.0.0.1:9464", "Prometheus metrics address, serving /metrics without auth; empty turns metrics off (WARREN_METRICS_LISTEN)")
	if v, ok := os.LookupEnv("WARREN_METRICS_LISTEN"); ok {
		*metricsListen = v // empty is meaningful here: no metrics
	}
	fs.BoolVar(&c.MetricsTeamLabels, "metrics-team-labels", env("WARREN_METRICS_TEAM_LABELS", "") == "1" || env("WARREN_METRICS_TEAM_LABELS", "") == "true",
		"add a team label to the per-team metrics (WARREN_METRICS_TEAM_LABELS)")
	for name, d := range map[string]*time.Duration{"WARREN_METER_INTERVAL": meter, "WARREN_SESSION_TTL": sessTTL,
		"WARREN_IDLE_TIMEOUT": idle, "WARREN_BODY_READ_TIMEOUT": bodyRead, "WARREN_NODE_TIMEOUT": nodeTimeout} {
		if v := os.Getenv(name); v != "" {
			parsed, err := time.ParseDuration(v)
			if err != nil || parsed <= 0 {
				return c, fmt.Errorf("%s=%q: want a positive duration such as 10s", name, v)
			}
			*d = parsed
		}
	}
	layerKeep := fs.Duration("layer-cache-keep", 14*24*time.Hour, "how long a template build layer no build used is kept; 0 = for ever (WARREN_LAYER_CACHE_KEEP)")
	layerMaxGB := fs.Float64("layer-cache-max-gb", envFloat("WARREN_LAYER_CACHE_MAX_GB", 0), "GiB the template build layer cache is kept under, least recently used layers removed first; 0 = no bound (WARREN_LAYER_CACHE_MAX_GB)")
	imageKeep := fs.Duration("image-cache-keep", 14*24*time.Hour, "how long a pulled image no pull used is kept; 0 = for ever (WARREN_IMAGE_CACHE_KEEP)")
	for name, d := range map[string]*time.Duration{"WARREN_LAYER_CACHE_KEEP": layerKeep, "WARREN_IMAGE_CACHE_KEEP": imageKeep} {
		if v := os.Getenv(name); v != "" {
			parsed, err := time.ParseDuration(v)
			if err != nil || parsed < 0 {
				return c, fmt.Errorf("%s=%q: want a duration such as 336h (0 keeps them for ever)", name, v)
			}
			*d = parsed
		}
	}
	if v := os.Getenv("WARREN_PAUSED_RETENTION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return c, fmt.Errorf("WARREN_PAUSED_RETENTION=%q: want a duration such as 168h (0 keeps paused sandboxes until killed)", v)
		}
		*retention = d
	}
	if v := os.Getenv("WARREN_DEFAULT_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("WARREN_DEFAULT_TIMEOUT=%q: %w (use e.g. 300s)", v, err)
		}
		*defTimeout = d
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	c.DefaultTimeout = *defTimeout
	if c.NodeName = strings.TrimSpace(c.NodeName); c.NodeName == "" || len(c.NodeName) > 253 || strings.ContainsAny(c.NodeName, "/ \t\n") {
		return c, fmt.Errorf("--node-name %q: give this node a name of 1 to 253 characters without spaces or slashes (the host name is the default)", c.NodeName)
	}
	if err := c.parseRole(*secretFile); err != nil {
		return c, err
	}
	if c.AdminKey, err = secretFrom("WARREN_ADMIN_KEY", *adminKeyFile, "--admin-key-file"); err != nil {
		return c, err
	}
	if c.Advertise == "" {
		c.Advertise = cmp.Or(c.InternalListen, c.Listen)
	}
	if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
		return c, fmt.Errorf("--advertise %q: want host:port where control replicas reach this node's API: %w", c.Advertise, err)
	}
	if c.NodeTimeout = *nodeTimeout; c.NodeTimeout < 3*time.Second {
		return c, fmt.Errorf("--node-timeout %s is too short: use at least 3s (15s is the default; a node heartbeats every %s or a third of the timeout)", c.NodeTimeout, cluster.DefaultHeartbeat)
	}
	c.MetricsListen = strings.TrimSpace(*metricsListen)
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return c, fmt.Errorf("--metrics-listen %q: want host:port such as 127.0.0.1:9464, or empty to turn metrics off: %w", c.MetricsListen, err)
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return c, fmt.Errorf("--public-url %q: give an http:// or https:// URL with a host and no query, such as https://api.example.com", c.PublicURL)
		}
	}
	if *layerKeep < 0 || *layerMaxGB < 0 || *imageKeep < 0 {
		return c, fmt.Errorf("--layer-cache-keep %s, --layer-cache-max-gb %g and --image-cache-keep %s must not be negative (0: no bound)",
			*layerKeep, *layerMaxGB, *imageKeep)
	}
	c.LayerCacheKeep, c.LayerCacheMaxBytes, c.ImageCacheKeep = *layerKeep, int64(*layerMaxGB*(1<<30)), *imageKeep
	if *retention < 0 {
		return c, fmt.Errorf("--paused-retention %s: must not be negative (0 keeps paused sandboxes until killed)", *retention)
	}
	c.PausedRetention = *retention
	c.MeterInterval, c.SessionTTL = *meter, *sessTTL
	c.IdleTimeout, c.BodyReadTimeout = *idle, *bodyRead
	switch {
	case c.IdleTimeout <= 0 || c.BodyReadTimeout <= 0:
		return c, fmt.Errorf("--idle-timeout %s and --body-read-timeout %s must be positive (120s and 20s are the defaults)", c.IdleTimeout, c.BodyReadTimeout)
	case c.NodeMemoryReserveMB < 0 || c.NodeDiskReserveMB < 0 || c.MaxConnsPerIP < 0:
		return c, fmt.Errorf("--node-memory-reserve-mb, --node-disk-reserve-mb and --max-conns-per-ip must not be negative")
	case c.ProxyMaxBufferedMB < 1:
		return c, fmt.Errorf("--proxy-max-buffered-mb %d: use at least 1 (64 is the default); the proxy buffers bodies of up to 1 MiB", c.ProxyMaxBufferedMB)
	}
	if c.MeterInterval < 100*time.Millisecond {
		return c, fmt.Errorf("--meter-interval %s is too short: use at least 100ms (10s is typical)", c.MeterInterval)
	}
	def := DefaultTeamQuota(goruntime.NumCPU(), hostMemoryMB())
	c.TeamQuota = domain.Quota{
		MaxSandboxes:      envInt("WARREN_TEAM_MAX_SANDBOXES", def.MaxSandboxes),
		MaxCPUCores:       envFloat("WARREN_TEAM_MAX_CPU_CORES", def.MaxCPUCores),
		MaxMemoryMB:       envInt("WARREN_TEAM_MAX_MEMORY_MB", def.MaxMemoryMB),
		MaxDiskMB:         envInt("WARREN_TEAM_MAX_DISK_MB", def.MaxDiskMB),
		RequestsPerMinute: envInt("WARREN_TEAM_REQUESTS_PER_MINUTE", def.RequestsPerMinute),
		MaxSnapshots:      envInt("WARREN_TEAM_MAX_SNAPSHOTS", def.MaxSnapshots),
		MaxTemplates:      envInt("WARREN_TEAM_MAX_TEMPLATES", def.MaxTemplates),
		MaxTemplateMB:     envInt("WARREN_TEAM_MAX_TEMPLATE_MB", def.MaxTemplateMB),
	}
	if m := c.AptMirror; m != "" {
		if !strings.HasPrefix(m, "http://") && !strings.HasPrefix(m, "https://") && !strings.HasPrefix(m, "file:///") {
			return c, fmt.Errorf("--apt-mirror %q: use an http://, https:// or file:/// URL of a Debian archive, such as http://deb.debian.org/debian", m)
		}
		// Template recipes read the mirror when they are made, all over the server.
		template.SetMirror(m)
	}
	switch c.Runtime {
	case "auto", "gvisor", "runc", "microvm":
	default:
		return c, fmt.Errorf("--runtime %q: use auto, gvisor, runc or microvm", c.Runtime)
	}
	if c.Runtimes, err = parseRuntimes(*runtimes); err != nil {
		return c, err
	}
	if c.WarmPool, err = sandbox.ParsePoolSizes(*warm, templateNames()); err != nil {
		return c, fmt.Errorf("--warm-pool: %w", err)
	}
	if c.Runtime != "auto" && len(c.Runtimes) > 0 && !slices.Contains(c.Runtimes, c.Runtime) {
		return c, fmt.Errorf("--runtime %s is not among --runtimes %s: add it to the list, or choose a default from it (auto takes the strongest)",
			c.Runtime, strings.Join(c.Runtimes, ","))
	}
	if c.Domain == "" {
		_, port, err := net.SplitHostPort(c.ProxyListen)
		if err != nil {
			return c, fmt.Errorf("--proxy-listen %q: %w", c.ProxyListen, err)
		}
		c.Domain = "localhost:" + port
	}
	p, err := netip.ParsePrefix(*cidr)
	if err != nil {
		return c, fmt.Errorf("--sandbox-cidr %q: %w", *cidr, err)
	}
	c.SandboxCIDR = p
	if *buildCIDR != "" {
		if c.BuildCIDR, err = netip.ParsePrefix(*buildCIDR); err != nil {
			return c, fmt.Errorf("--build-cidr %q: %w", *buildCIDR, err)
		}
	}
	if *deny != "" {
		if c.DenyCIDRs, err = network.ParseCIDRs(*deny); err != nil {
			return c, fmt.Errorf("--deny-cidr: %w", err)
		}
	}
	if c.EgressDNSUpstream, err = egress.ParseUpstreams(*upstream); err != nil {
		return c, fmt.Errorf("--egress-dns-upstream: %w", err)
	}
	for _, p := range []struct {
		flag string
		v    int
	}{{"--egress-proxy-port", c.EgressProxyPort}, {"--egress-dns-port", c.EgressDNSPort}} {
		if p.v < 0 || p.v > 65535 {
			return c, fmt.Errorf("%s %d: use a port number 1-65535, or 0 for any free port", p.flag, p.v)
		}
	}
	if c.EgressProxyPort != 0 && c.EgressProxyPort == c.EgressDNSPort {
		return c, fmt.Errorf("--egress-proxy-port and --egress-dns-port are both %d: give them different ports", c.EgressProxyPort)
	}
	if c.AgentPath == "" {
		if exe, err := os.Executable(); err == nil {
			c.AgentPath = filepath.Join(filepath.Dir(exe), "warren-agent")
		}
	}
	cores := float64(goruntime.NumCPU())
	c.DefaultLimits = domain.Limits{
		CPUCores:     envFloat("WARREN_DEFAULT_CPU_CORES", 1),
		MemoryMB:     envInt("WARREN_DEFAULT_MEMORY_MB", 512),
		DiskMB:       envInt("WARREN_DEFAULT_DISK_MB", 2048),
		MaxProcesses: envInt("WARREN_DEFAULT_PROCESSES", 1024),
	}
	c.MaxLimits = domain.Limits{
		CPUCores:     envFloat("WARREN_MAX_CPU_CORES", cores),
		MemoryMB:     envInt("WARREN_MAX_MEMORY_MB", hostMemoryMB()/2),
		DiskMB:       envInt("WARREN_MAX_DISK_MB", 20480),
		MaxProcesses: envInt("WARREN_MAX_PROCESSES", 8192),
	}
	return c, nil
}
