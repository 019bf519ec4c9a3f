package rest

import (
	"sort"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// This file holds the JSON shapes of /v1. They are kept apart from the domain types so
// that the wire format changes only on purpose; openapi.json documents each of them.

// maxTimeoutSeconds bounds every timeout a client may ask for (24h).
const maxTimeoutSeconds = 24 * 60 * 60

type sandboxJSON struct {
	ID        string            `json:"id"`
	TeamID    string            `json:"team_id"`
	Template  string            `json:"template"`
	State     string            `json:"state"`
	EndReason string            `json:"end_reason,omitempty"`
	Metadata  map[string]string `json:"metadata"`
	// EnvKeys lists the names of the sandbox's environment variables; the values may be
	// secrets and are never sent back.
	EnvKeys  []string `json:"env_keys"`
	Internet bool     `json:"internet"`
	// Network is the sandbox's egress policy (empty lists: none).
	Network   networkJSON   `json:"network"`
	Limits    domain.Limits `json:"limits"`
	Runtime   string        `json:"runtime,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	StartedAt *time.Time    `json:"started_at,omitempty"`
	EndsAt    *time.Time    `json:"ends_at,omitempty"`
	StoppedAt *time.Time    `json:"stopped_at,omitempty"`
	// PausedAt is when the sandbox was last paused (absent if never).
	PausedAt  *time.Time     `json:"paused_at,omitempty"`
	Lifecycle *lifecycleJSON `json:"lifecycle,omitempty"`
	// Domain is where the sandbox's ports are reached through the proxy:
	// http://<port>-<id>.<domain>/ ("" when the server has no proxy domain).
	Domain string `json:"domain,omitempty"`
	// AllowPublicTraffic false means every port but the agent's needs TrafficToken.
	AllowPublicTraffic bool `json:"allow_public_traffic"`
	// TrafficToken (E2B-Traffic-Access-Token) opens the sandbox's ports through the proxy
	// where they need it: every port when traffic is not public, else the template's
	// private ports (the code interpreter's 49999). Only for callers with
	// sandboxes:write, on create and get (withTrafficToken).
	TrafficToken string `json:"traffic_token,omitempty"`
	// Node names the node the sandbox runs on (absent for sandboxes from before nodes).
	Node string `json:"node,omitempty"`
}

// withTrafficToken adds sb's traffic token to j when p may hold it (sandboxes:write: the
// token opens the code interpreter, which runs any code).
func withTrafficToken(j sandboxJSON, p domain.Principal, sb *domain.Sandbox) sandboxJSON {
	if p.Can(domain.ScopeSandboxesWrite) {
		j.TrafficToken = sb.PortToken()
	}
	return j
}

type portJSON struct {
	Port int    `json:"port"`
	URL  string `json:"url,omitempty"`
}

type listPortsResponse struct {
	Ports []portJSON `json:"ports"`
}

func toSandboxJSON(sb *domain.Sandbox, sandboxDomain string) sandboxJSON {
	keys := make([]string, 0, len(sb.Env))
	for k := range sb.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	md := sb.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return sandboxJSON{
		ID:        sb.ID,
		TeamID:    sb.TeamID,
		Template:  sb.TemplateID,
		State:     string(sb.State),
		EndReason: sb.EndReason,
		Metadata:  md,
		EnvKeys:   keys,
		Internet:  sb.Internet,
		Network:   toNetworkJSON(sb.Network),
		Limits:    sb.Limits,
		Runtime:   sb.RuntimeName,
		CreatedAt: sb.CreatedAt.UTC(),
		StartedAt: optTime(sb.StartedAt),
		EndsAt:    optTime(sb.EndsAt),
		StoppedAt: optTime(sb.StoppedAt),
		PausedAt:  optTime(sb.PausedAt),
		Lifecycle: toLifecycleJSON(sb.Lifecycle),
		Domain:    sandboxDomain,
		Node:      sb.Node,

		AllowPublicTraffic: sb.TrafficToken == "",
	}
}

// optTime maps the zero time to nil so that it is omitted from the JSON.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

type createSandboxRequest struct {
	Template string            `json:"template"`
	Timeout  int64             `json:"timeout"`
	Env      map[string]string `json:"env"`
	Metadata map[string]string `json:"metadata"`
	Internet *bool             `json:"internet"`
	// Network is the egress policy (absent: none, or a snapshot's).
	Network *networkJSON  `json:"network"`
	Limits  domain.Limits `json:"limits"`
	// Runtime and MinIsolation choose the runtime (see domain.CreateSandbox).
	Runtime      string `json:"runtime"`
	MinIsolation string `json:"min_isolation"`
	// AllowPublicTraffic false makes every port but the agent's need the traffic token
	// (absent: true, as in E2B).
	AllowPublicTraffic *bool `json:"allow_public_traffic"`
	// Lifecycle says what happens at the timeout and to a paused sandbox's traffic.
	Lifecycle *lifecycleJSON `json:"lifecycle"`
	// Snapshot starts the sandbox from a snapshot of the team (its id or name).
	Snapshot string `json:"snapshot"`
}

// lifecycleJSON is a sandbox's lifecycle: on_timeout "kill" (the default) or "pause",
// and whether traffic through the proxy resumes it when paused.
type lifecycleJSON struct {
	OnTimeout  string `json:"on_timeout"`
	AutoResume bool   `json:"auto_resume"`
}

// toLifecycleJSON is l on the wire; nil for the default (kill, no auto-resume).
func toLifecycleJSON(l domain.Lifecycle) *lifecycleJSON {
	if (l.OnTimeout == "" || l.OnTimeout == domain.OnTimeoutKill) && !l.AutoResume {
		return nil
	}
	on := l.OnTimeout
	if on == "" {
		on = domain.OnTimeoutKill
	}
	return &lifecycleJSON{OnTimeout: on, AutoResume: l.AutoResume}
}

// resumeRequest is the optional body of POST /v1/sandboxes/{id}/resume.
type resumeRequest struct {
	// Timeout is seconds from now until the resumed sandbox ends (0: the default).
	Timeout int64 `json:"timeout"`
}

type listSandboxesResponse struct {
	Sandboxes  []sandboxJSON `json:"sandboxes"`
	NextCursor string        `json:"next_cursor"`
}

// networkJSON is an egress policy on the wire (domain.NetworkPolicy): the body of
// PUT /v1/sandboxes/{id}/network, create's network and a sandbox's network.
type networkJSON struct {
	AllowOut []string `json:"allow_out"`
	DenyOut  []string `json:"deny_out"`
}

// toNetworkJSON is p on the wire, with empty lists rather than null.
func toNetworkJSON(p domain.NetworkPolicy) networkJSON {
	j := networkJSON{AllowOut: p.AllowOut, DenyOut: p.DenyOut}
	if j.AllowOut == nil {
		j.AllowOut = []string{}
	}
	if j.DenyOut == nil {
		j.DenyOut = []string{}
	}
	return j
}

// policy is j as the domain's (not yet validated: the service does that).
func (j *networkJSON) policy() *domain.NetworkPolicy {
	if j == nil {
		return nil
	}
	return &domain.NetworkPolicy{AllowOut: j.AllowOut, DenyOut: j.DenyOut}
}

type setTimeoutRequest struct {
	Timeout *int64 `json:"timeout"`
}

type execRequest struct {
	Cmd  string            `json:"cmd"`
	Args []string          `json:"args"`
	Env  map[string]string `json:"env"`
	Cwd  string            `json:"cwd"`
	User string            `json:"user"`
	// Stdin is text; StdinBase64 carries bytes that are not valid UTF-8. At most one.
	Stdin       *string `json:"stdin"`
	StdinBase64 *string `json:"stdin_base64"`
	Timeout     int64   `json:"timeout"`
	Stream      bool    `json:"stream"`
	// Background starts the command and answers 201 {"pid": N} at once (processes.go);
	// StdinOpen keeps its stdin open for POST .../processes/{pid}/stdin.
	Background bool `json:"background"`
	StdinOpen  bool `json:"stdin_open"`
}

// execResponse is the answer of a non-streamed command; writeExecResult writes it
// piece by piece (the tests hold the two to the same bytes).
type execResponse struct {
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	Error    string `json:"error,omitempty"`
	TimedOut bool   `json:"timed_out,omitempty"`
	// Truncated: stdout or stderr holds only the start of the output (the server keeps
	// at most 16 MiB of each stream of a command that is not streamed).
	Truncated bool `json:"truncated,omitempty"`
}

type fileInfoJSON struct {
	Name     string     `json:"name"`
	Path     string     `json:"path"`
	Type     string     `json:"type"`
	Size     int64      `json:"size"`
	Mode     uint32     `json:"mode"`
	Owner    string     `json:"owner,omitempty"`
	Group    string     `json:"group,omitempty"`
	Modified *time.Time `json:"modified,omitempty"`
}

func toFileInfoJSON(fi domain.FileInfo) fileInfoJSON {
	return fileInfoJSON{
		Name: fi.Name, Path: fi.Path, Type: fi.Type, Size: fi.Size, Mode: fi.Mode,
		Owner: fi.Owner, Group: fi.Group, Modified: optTime(fi.Modified),
	}
}

type listFilesResponse struct {
	Entries []fileInfoJSON `json:"entries"`
}

type createKeyRequest struct {
	Name   string         `json:"name"`
	Scopes []domain.Scope `json:"scopes"`
	// ExpiresAt (RFC 3339) or ExpiresIn (seconds) set when the key stops working.
	ExpiresAt *string `json:"expires_at"`
	ExpiresIn *int64  `json:"expires_in"`
	// TeamID creates the key for another team (platform admins only).
	TeamID string `json:"team_id"`
}

type createdKeyJSON struct {
	keyJSON
	// Key is the secret. It is in this response only and is never stored.
	Key string `json:"key"`
}

type keyJSON struct {
	ID         string         `json:"id"`
	TeamID     string         `json:"team_id"`
	Name       string         `json:"name"`
	Prefix     string         `json:"prefix"`
	Scopes     []domain.Scope `json:"scopes"`
	CreatedAt  time.Time      `json:"created_at"`
	LastUsedAt *time.Time     `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time     `json:"revoked_at,omitempty"`
	ExpiresAt  *time.Time     `json:"expires_at,omitempty"`
	Admin      bool           `json:"admin"`
}

func toKeyJSON(k *domain.APIKey) keyJSON {
	scopes := k.Scopes
	if len(scopes) == 0 {
		scopes = []domain.Scope{domain.ScopeAdmin}
	}
	return keyJSON{ID: k.ID, TeamID: k.TeamID, Name: k.Name, Prefix: k.Prefix, Scopes: scopes,
		CreatedAt: k.CreatedAt.UTC(), LastUsedAt: optTime(k.LastUsedAt), RevokedAt: optTime(k.RevokedAt),
		ExpiresAt: optTime(k.ExpiresAt), Admin: k.Admin}
}

type listKeysResponse struct {
	Keys []keyJSON `json:"keys"`
}

type templateJSON struct {
	ID          string     `json:"id"`
	Description string     `json:"description"`
	Ready       bool       `json:"ready"`
	BuiltAt     *time.Time `json:"built_at,omitempty"`
	SizeBytes   int64      `json:"size_bytes"`
	// BuiltIn is a template every team sees; the others are the caller's team's own.
	BuiltIn  bool   `json:"builtin"`
	StartCmd string `json:"start_cmd,omitempty"`
	// CPUCores and MemoryMB are a built template's sandbox defaults, when it sets them.
	CPUCores float64 `json:"cpu_cores,omitempty"`
	MemoryMB int64   `json:"memory_mb,omitempty"`
}

type listTemplatesResponse struct {
	Templates []templateJSON `json:"templates"`
}

type statusResponse struct {
	Status string `json:"status"`
}

// SSE event payloads.
type (
	startEvent struct {
		PID uint32 `json:"pid"`
	}
	outputEvent struct {
		Data string `json:"data"` // base64 of the raw bytes
		Text string `json:"text"` // the same bytes as UTF-8, invalid sequences replaced
	}
	endEvent struct {
		ExitCode int    `json:"exit_code"`
		Error    string `json:"error,omitempty"`
		TimedOut bool   `json:"timed_out,omitempty"`
	}
)
