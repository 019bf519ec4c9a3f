package e2b

import (
	"encoding/json"
	"math"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

// This file holds E2B's JSON shapes (camelCase, as in e2b-dev/infra spec/openapi.yml and
// the types compiled into the JS SDK) and the conversions from domain types.

// codeInterpreterTemplate is Warren's template for @e2b/code-interpreter, which asks for
// "code-interpreter-v1" by default.
const codeInterpreterTemplate = "code-interpreter"

// templateAliases maps E2B template names to Warren template ids; any other name is
// taken as a Warren template id.
var templateAliases = map[string]string{"code-interpreter-v1": codeInterpreterTemplate}

func resolveTemplate(name string) string {
	if id, ok := templateAliases[name]; ok {
		return id
	}
	return name
}

// templateNames lists the names a Warren template answers to, its id first.
func templateNames(id string) []string {
	names := []string{id}
	for alias, target := range templateAliases {
		if target == id {
			names = append(names, alias)
		}
	}
	return names
}

// newSandboxRequest is NewSandboxV2 (and the v1 NewSandbox, which adds "secure").
// Every field E2B defines is declared, so that one Warren cannot honour is refused by name
// (checkUnsupported) instead of slipping through or failing as "unknown".
type newSandboxRequest struct {
	TemplateID          string            `json:"templateID"`
	Timeout             *int64            `json:"timeout"`
	Metadata            map[string]string `json:"metadata"`
	EnvVars             map[string]string `json:"envVars"`
	AllowInternetAccess *bool             `json:"allow_internet_access"`
	Network             *networkRequest   `json:"network"`
	// Secure is v1's flag for access-token-protected envd; Warren always issues one.
	Secure          *bool             `json:"secure"`
	AutoPause       *bool             `json:"autoPause"`
	AutoPauseMemory *bool             `json:"autoPauseMemory"`
	AutoResume      *autoResumeJSON   `json:"autoResume"`
	MCP             json.RawMessage   `json:"mcp"`
	IAM             json.RawMessage   `json:"iam"`
	VolumeMounts    []json.RawMessage `json:"volumeMounts"`
}

type networkRequest struct {
	AllowPublicTraffic *bool                      `json:"allowPublicTraffic"`
	AllowOut           []string                   `json:"allowOut"`
	DenyOut            []string                   `json:"denyOut"`
	Rules              map[string]json.RawMessage `json:"rules"`
	EgressProxy        json.RawMessage            `json:"egressProxy"`
	MaskRequestHost    *string                    `json:"maskRequestHost"`
	HTTPSPorts         []int                      `json:"httpsPorts"`
}

type autoResumeJSON struct {
	Enabled bool `json:"enabled"`
}

// present reports whether a raw JSON member was given as something other than null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

type connectRequest struct {
	Timeout *int64 `json:"timeout"`
	Memory  *bool  `json:"memory"`
}

// pauseRequest is POST /sandboxes/{id}/pause's body; memory false (a pause without
// the memory) is accepted, and the memory kept anyway.
type pauseRequest struct {
	Memory *bool `json:"memory"`
}

// resumeRequest is the deprecated POST /sandboxes/{id}/resume's body.
type resumeRequest struct {
	Timeout   *int64 `json:"timeout"`
	AutoPause *bool  `json:"autoPause"`
	Memory    *bool  `json:"memory"`
}

type timeoutRequest struct {
	Timeout *int64 `json:"timeout"`
}

type refreshRequest struct {
	Duration *int64 `json:"duration"`
}

// sandboxRef is what all of E2B's sandbox shapes begin with: which sandbox, of which
// template, for which (deprecated) client.
type sandboxRef struct {
	SandboxID  string `json:"sandboxID"`
	TemplateID string `json:"templateID"`
	Alias      string `json:"alias,omitempty"`
	ClientID   string `json:"clientID"`
}

// ref describes sb; templateID is what the client asked for ("" = sb's template).
func (s *Server) ref(sb *domain.Sandbox, templateID string) sandboxRef {
	if templateID == "" {
		templateID = sb.TemplateID
	}
	return sandboxRef{SandboxID: sb.ID, TemplateID: templateID, Alias: templateID, ClientID: s.cfg.ClientID}
}

// sandboxJSON is E2B's Sandbox, answered by create and connect.
type sandboxJSON struct {
	sandboxRef
	EnvdVersion        string  `json:"envdVersion"`
	EnvdAccessToken    string  `json:"envdAccessToken,omitempty"`
	TrafficAccessToken *string `json:"trafficAccessToken"`
	Domain             *string `json:"domain"`
}

// toSandbox converts sb for the caller p; templateID is what the client asked for ("" =
// sb's template).
//
// The tokens go only to callers who may change the sandbox (sandboxes:write): the access
// token runs commands as root through the agent, past scopes and the audit log, and the
// traffic token opens the code interpreter. trafficAccessToken is therefore set for
// public sandboxes too (domain.PortToken): the code-interpreter SDK sends it on every
// call, and its /contexts calls carry nothing else.
func (s *Server) toSandbox(p domain.Principal, sb *domain.Sandbox, templateID string) sandboxJSON {
	out := sandboxJSON{
		sandboxRef:  s.ref(sb, templateID),
		EnvdVersion: s.cfg.EnvdVersion,
		Domain:      optString(s.cfg.Domain),
	}
	if mayHoldTokens(p) {
		out.EnvdAccessToken = sb.AccessToken
		out.TrafficAccessToken = optString(sb.PortToken())
	}
	return out
}

// mayHoldTokens reports whether p may be given a sandbox's access and traffic tokens:
// holding them is as good as sandboxes:write (and more: no scope or audit applies).
func mayHoldTokens(p domain.Principal) bool { return p.Can(domain.ScopeSandboxesWrite) }

func optString(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// listedSandboxJSON is E2B's ListedSandbox.
type listedSandboxJSON struct {
	sandboxRef
	StartedAt   time.Time         `json:"startedAt"`
	EndAt       time.Time         `json:"endAt"`
	CPUCount    int               `json:"cpuCount"`
	MemoryMB    int64             `json:"memoryMB"`
	DiskSizeMB  int64             `json:"diskSizeMB"`
	EnvdVersion string            `json:"envdVersion"`
	State       string            `json:"state"`
	Metadata    map[string]string `json:"metadata"`
}

// toListed converts a running or paused sandbox; E2B lists those only.
func (s *Server) toListed(sb *domain.Sandbox) listedSandboxJSON {
	started := sb.StartedAt
	if started.IsZero() {
		started = sb.CreatedAt
	}
	md := sb.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return listedSandboxJSON{
		sandboxRef:  s.ref(sb, ""),
		StartedAt:   started.UTC(),
		EndAt:       sb.EndsAt.UTC(),
		CPUCount:    cpuCount(sb.Limits.CPUCores),
		MemoryMB:    sb.Limits.MemoryMB,
		DiskSizeMB:  sb.Limits.DiskMB,
		EnvdVersion: s.cfg.EnvdVersion,
		State:       e2bState(sb.State),
		Metadata:    md,
	}
}

// e2bState is E2B's name of a listed sandbox's state: running or paused.
func e2bState(st domain.SandboxState) string {
	if st == domain.StatePaused {
		return "paused"
	}
	return "running"
}

// cpuCount reports fractional cores as whole ones (E2B's cpuCount is an integer >= 1).
func cpuCount(cores float64) int {
	if cores <= 0 {
		return 0
	}
	return int(math.Ceil(cores))
}

// sandboxDetailJSON is E2B's SandboxDetail: ListedSandbox plus connection details.
type sandboxDetailJSON struct {
	listedSandboxJSON
	Domain              *string       `json:"domain"`
	EnvdAccessToken     string        `json:"envdAccessToken,omitempty"`
	AllowInternetAccess *bool         `json:"allowInternetAccess"`
	Network             networkJSON   `json:"network"`
	Lifecycle           lifecycleJSON `json:"lifecycle"`
}

type networkJSON struct {
	AllowPublicTraffic bool     `json:"allowPublicTraffic"`
	AllowOut           []string `json:"allowOut,omitempty"`
	DenyOut            []string `json:"denyOut,omitempty"`
}

type lifecycleJSON struct {
	OnTimeout  string `json:"onTimeout"`
	AutoResume bool   `json:"autoResume"`
}

// toDetail converts sb for the caller p: envdAccessToken only for sandboxes:write (a
// viewer or a read-only key must not get root in the sandbox from a GET).
func (s *Server) toDetail(p domain.Principal, sb *domain.Sandbox) sandboxDetailJSON {
	internet := sb.Internet
	out := sandboxDetailJSON{
		listedSandboxJSON:   s.toListed(sb),
		Domain:              optString(s.cfg.Domain),
		AllowInternetAccess: &internet,
		Network:             networkJSON{AllowPublicTraffic: sb.TrafficToken == "", AllowOut: sb.Network.AllowOut, DenyOut: sb.Network.DenyOut},
		Lifecycle:           lifecycleJSON{OnTimeout: "kill", AutoResume: sb.Lifecycle.AutoResume},
	}
	if sb.Lifecycle.OnTimeout == domain.OnTimeoutPause {
		out.Lifecycle.OnTimeout = "pause"
	}
	if mayHoldTokens(p) {
		out.EnvdAccessToken = sb.AccessToken
	}
	return out
}

// metricJSON is E2B's SandboxMetric.
type metricJSON struct {
	Timestamp     time.Time `json:"timestamp"`
	TimestampUnix int64     `json:"timestampUnix"`
	CPUCount      int       `json:"cpuCount"`
	CPUUsedPct    float64   `json:"cpuUsedPct"`
	MemUsed       int64     `json:"memUsed"`
	MemTotal      int64     `json:"memTotal"`
	MemCache      int64     `json:"memCache"`
	DiskUsed      int64     `json:"diskUsed"`
	DiskTotal     int64     `json:"diskTotal"`
}

func toMetric(m *domain.SandboxMetrics) metricJSON {
	ts := m.Timestamp.UTC()
	if ts.IsZero() {
		ts = time.Now().UTC()
	}
	return metricJSON{
		Timestamp: ts.Truncate(time.Second), TimestampUnix: ts.Unix(),
		CPUCount: m.CPUCount, CPUUsedPct: m.CPUUsedPct,
		MemUsed: m.MemUsed, MemTotal: m.MemTotal, MemCache: m.MemCache,
		DiskUsed: m.DiskUsed, DiskTotal: m.DiskTotal,
	}
}

type metricsManyResponse struct {
	Sandboxes map[string]metricJSON `json:"sandboxes"`
}

// logLineJSON is v1's SandboxLog: the raw line.
type logLineJSON struct {
	Timestamp time.Time `json:"timestamp"`
	Line      string    `json:"line"`
}

// rawLine rebuilds the agent's slog JSON line (time, level, msg and the fields), which is
// what E2B's v1 "line" carries.
func rawLine(e domain.LogEntry) string {
	m := make(map[string]string, len(e.Fields)+3)
	for k, v := range e.Fields {
		m[k] = v
	}
	m["time"] = e.Timestamp.UTC().Format(time.RFC3339Nano)
	m["level"] = e.Level
	m["msg"] = e.Message
	b, _ := json.Marshal(m) // a map of strings always encodes
	return string(b)
}

type logsV1Response struct {
	Logs       []logLineJSON   `json:"logs"`
	LogEntries []edge.LogEntry `json:"logEntries"`
}

type logsV2Response struct {
	Logs []edge.LogEntry `json:"logs"`
}

// templateJSON is E2B's Template.
type templateJSON struct {
	TemplateID    string     `json:"templateID"`
	BuildID       string     `json:"buildID"`
	CPUCount      int        `json:"cpuCount"`
	MemoryMB      int64      `json:"memoryMB"`
	DiskSizeMB    int64      `json:"diskSizeMB"`
	Public        bool       `json:"public"`
	Aliases       []string   `json:"aliases"`
	Names         []string   `json:"names"`
	CreatedAt     *time.Time `json:"createdAt"`
	UpdatedAt     *time.Time `json:"updatedAt"`
	CreatedBy     *struct{}  `json:"createdBy"` // always null: Warren does not record it
	LastSpawnedAt *time.Time `json:"lastSpawnedAt"`
	SpawnCount    int64      `json:"spawnCount"`
	BuildCount    int        `json:"buildCount"`
	EnvdVersion   string     `json:"envdVersion"`
	BuildStatus   string     `json:"buildStatus"`
}

func (s *Server) toTemplate(t *domain.Template) templateJSON {
	var built *time.Time
	if !t.BuiltAt.IsZero() {
		b := t.BuiltAt.UTC()
		built = &b
	}
	status, builds := "building", 0
	if t.Ready {
		status, builds = "ready", 1
	}
	buildID := t.Hash
	if buildID == "" {
		buildID = t.ID
	}
	names := templateNames(t.ID)
	cpu, mem := s.cfg.DefaultLimits.CPUCores, s.cfg.DefaultLimits.MemoryMB
	if t.TeamID == "" {
		mem = max(mem, s.cfg.TemplateMemoryMB[t.ID])
	}
	if t.Limits.CPUCores > 0 {
		cpu = t.Limits.CPUCores
	}
	if t.Limits.MemoryMB > 0 {
		mem = t.Limits.MemoryMB
	}
	return templateJSON{
		TemplateID: t.ID, BuildID: buildID,
		CPUCount: cpuCount(cpu), MemoryMB: mem,
		DiskSizeMB: s.cfg.DefaultLimits.DiskMB,
		Public:     t.TeamID == "", Aliases: names, Names: names,
		CreatedAt: built, UpdatedAt: built,
		BuildCount: builds, EnvdVersion: s.cfg.EnvdVersion, BuildStatus: status,
	}
}

type templateAliasJSON struct {
	TemplateID string `json:"templateID"`
	Public     bool   `json:"public"`
}
