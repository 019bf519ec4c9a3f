package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/api/rest"
	"github.com/warren-sh/warren/internal/domain"
)

// memService is an in-memory domain.SandboxService and domain.KeyService, enough to
// drive the CLI end to end through the real REST handler. Commands are interpreted by a
// tiny script language (see exec).
type memService struct {
	// What the CLI tests do not drive: background processes, the file operations beyond
	// read, write and list, and following logs. Calling one panics on the nil interface.
	domain.ProcessService
	domain.FileOps
	domain.LogFollower

	mu        sync.Mutex
	sandboxes map[string]*domain.Sandbox
	files     map[string][]byte // id + ":" + path
	keys      map[string]*domain.APIKey
	secrets   map[string]string // secret -> key id
	lastExec  domain.ExecRequest
	lastReq   domain.CreateSandbox
	// lastResume is the timeout of the last Resume.
	lastResume time.Duration
	lastKey    domain.KeySpec
	seq        int
	snapshots  map[string]*domain.Snapshot // by id
	// forkMax, when positive, makes copies past the first forkMax of a fork fail as
	// over the team's quota.
	forkMax int
}

var (
	_ domain.SandboxService = (*memService)(nil)
	_ domain.ProcessService = (*memService)(nil)
	_ domain.FileService    = (*memService)(nil)
	_ domain.LogService     = (*memService)(nil)
	_ domain.KeyService     = (*memService)(nil)
)

// restServer is the real /v1 handler over svc, with opts.
func restServer(svc *memService, opts ...rest.Option) *rest.Server {
	services := []rest.Option{rest.WithProcesses(svc), rest.WithFiles(svc), rest.WithLogs(svc), rest.WithSnapshots(svc)}
	return rest.New(svc, svc, nil, append(services, opts...)...)
}

const (
	keyA = "sk_team_a_secret"
	keyB = "sk_team_b_secret"
)

func newMemService() *memService {
	m := &memService{
		sandboxes: map[string]*domain.Sandbox{},
		files:     map[string][]byte{},
		keys:      map[string]*domain.APIKey{},
		secrets:   map[string]string{},
		snapshots: map[string]*domain.Snapshot{},
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	m.keys["key_a"] = &domain.APIKey{ID: "key_a", TeamID: "team_a", Name: "admin", Prefix: "sk_team_a", Admin: true, CreatedAt: t0}
	m.keys["key_b"] = &domain.APIKey{ID: "key_b", TeamID: "team_b", Name: "b", Prefix: "sk_team_b", CreatedAt: t0, Scopes: []domain.Scope{domain.ScopeAdmin}}
	m.secrets[keyA], m.secrets[keyB] = "key_a", "key_b"
	return m
}

func (m *memService) lookup(p domain.Principal, id string) (*domain.Sandbox, error) {
	sb, ok := m.sandboxes[id]
	if !ok || sb.TeamID != p.TeamID {
		return nil, domain.NotFound("sandbox", id)
	}
	return sb, nil
}

func (m *memService) Create(_ context.Context, p domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastReq = req
	if req.Snapshot != "" {
		snap, err := m.snapshotLocked(p, req.Snapshot)
		if err != nil {
			return nil, err
		}
		req.TemplateID = snap.TemplateID
	}
	if req.TemplateID != "base" && req.TemplateID != "python" {
		return nil, domain.NotFound("template", req.TemplateID)
	}
	return m.createLocked(p, req), nil
}

// createLocked makes a running sandbox. Preconditions: m.mu held.
func (m *memService) createLocked(p domain.Principal, req domain.CreateSandbox) *domain.Sandbox {
	m.seq++
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(m.seq) * time.Second)
	timeout := req.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	var network domain.NetworkPolicy
	if req.Network != nil {
		network = *req.Network
	}
	sb := &domain.Sandbox{
		ID: domain.NewID(20), TeamID: p.TeamID, TemplateID: req.TemplateID, State: domain.StateRunning, Network: network,
		Metadata: req.Metadata, Env: req.Env, Limits: req.Limits, Internet: req.Internet == nil || *req.Internet,
		RuntimeName: "fake", CreatedAt: now, StartedAt: now, EndsAt: now.Add(timeout), Lifecycle: req.Lifecycle,
	}
	m.sandboxes[sb.ID] = sb
	cp := *sb
	return &cp
}

func (m *memService) Get(_ context.Context, p domain.Principal, id string) (*domain.Sandbox, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, err := m.lookup(p, id)
	if err != nil {
		return nil, err
	}
	cp := *sb
	return &cp, nil
}

func (m *memService) List(_ context.Context, p domain.Principal, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []*domain.Sandbox
	for _, sb := range m.sandboxes {
		if sb.TeamID != p.TeamID {
			continue
		}
		if len(f.States) > 0 && !contains(f.States, sb.State) {
			continue
		}
		match := true
		for k, v := range f.Metadata {
			match = match && sb.Metadata[k] == v
		}
		if match {
			cp := *sb
			all = append(all, &cp)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].CreatedAt.After(all[j].CreatedAt) })
	start, _ := strconv.Atoi(f.Cursor)
	limit := f.Limit
	if limit == 0 {
		limit = 50
	}
	end := min(start+limit, len(all))
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return all[start:end], next, nil
}

func contains(states []domain.SandboxState, s domain.SandboxState) bool {
	for _, v := range states {
		if v == s {
			return true
		}
	}
	return false
}

func (m *memService) Kill(_ context.Context, p domain.Principal, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, err := m.lookup(p, id)
	if err != nil {
		return err
	}
	if sb.State.Terminal() {
		return domain.Errorf(domain.KindConflict, "sandbox %s is already %s", id, sb.State)
	}
	sb.State, sb.EndReason, sb.StoppedAt = domain.StateStopped, "killed", sb.StartedAt.Add(time.Minute)
	return nil
}

func (m *memService) SetNetwork(_ context.Context, p domain.Principal, id string, np domain.NetworkPolicy) (*domain.Sandbox, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, err := m.lookup(p, id)
	if err != nil {
		return nil, err
	}
	if np, err = domain.NewNetworkPolicy(np.AllowOut, np.DenyOut); err != nil {
		return nil, err
	}
	sb.Network = np
	cp := *sb
	return &cp, nil
}

func (m *memService) SetTimeout(_ context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, err := m.lookup(p, id)
	if err != nil {
		return nil, err
	}
	sb.EndsAt = sb.StartedAt.Add(d)
	cp := *sb
	return &cp, nil
}

// Exec interprets the command: "echo WORDS", "err WORDS" (to stderr), "cat" (stdin to
// stdout), "exit N", "killed" (ends by a signal), "timeout" (killed at its timeout
// after some output), "break" (fails after some output).
func (m *memService) Exec(_ context.Context, p domain.Principal, id string, req domain.ExecRequest, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	m.mu.Lock()
	_, err := m.lookup(p, id)
	m.lastExec = req
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	words := req.Args
	if req.Cmd != "" {
		words = strings.Fields(req.Cmd)
	}
	res := &domain.ExecResult{}
	emit := func(ev domain.ExecEvent) error {
		if onEvent == nil {
			return nil
		}
		return onEvent(ev)
	}
	if err := emit(domain.ExecEvent{PID: 100}); err != nil {
		return nil, err
	}
	out := func(stderr bool, b []byte) error {
		if stderr {
			res.Stderr = append(res.Stderr, b...)
			return emit(domain.ExecEvent{Stderr: b})
		}
		res.Stdout = append(res.Stdout, b...)
		return emit(domain.ExecEvent{Stdout: b})
	}
	switch words[0] {
	case "echo", "err":
		err = out(words[0] == "err", []byte(strings.Join(words[1:], " ")+"\n"))
	case "cat":
		err = out(false, req.Stdin)
	case "exit":
		res.ExitCode, _ = strconv.Atoi(words[1])
		if res.ExitCode != 0 {
			res.Error = "exit status " + words[1]
		}
	case "killed":
		res.ExitCode, res.Error = -1, "signal: killed"
	case "timeout":
		err = out(false, []byte("partial\n"))
		res.ExitCode, res.TimedOut = -1, true
		res.Error = fmt.Sprintf("command timed out after %s and was killed", req.Timeout)
	case "break":
		if err := out(false, []byte("partial\n")); err != nil {
			return nil, err
		}
		return nil, domain.Errorf(domain.KindUnavailable, "sandbox agent connection lost")
	default:
		res.ExitCode, res.Error = 127, "exit status 127"
		err = out(true, []byte(words[0]+": command not found\n"))
	}
	if err != nil {
		return nil, err
	}
	return res, emit(domain.ExecEvent{End: res})
}

func (m *memService) WriteFile(_ context.Context, p domain.Principal, id, fpath, _ string, r io.Reader) (*domain.FileInfo, error) {
	m.mu.Lock()
	_, err := m.lookup(p, id)
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.files[id+":"+fpath] = b
	m.mu.Unlock()
	return &domain.FileInfo{Name: path.Base(fpath), Path: fpath, Type: "file", Size: int64(len(b)), Mode: 0o644}, nil
}

func (m *memService) ReadFile(_ context.Context, p domain.Principal, id, fpath, _ string, w io.Writer) error {
	m.mu.Lock()
	_, err := m.lookup(p, id)
	b, ok := m.files[id+":"+fpath]
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if !ok {
		return domain.NotFound("file", fpath)
	}
	_, err = io.CopyBuffer(w, bytes.NewReader(b), make([]byte, 32<<10))
	return err
}

func (m *memService) ListFiles(_ context.Context, p domain.Principal, id, dir, _ string, _ int) ([]domain.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.lookup(p, id); err != nil {
		return nil, err
	}
	var out []domain.FileInfo
	for k, b := range m.files {
		if fp, ok := strings.CutPrefix(k, id+":"); ok && path.Dir(fp) == dir {
			out = append(out, domain.FileInfo{Name: path.Base(fp), Path: fp, Type: "file", Size: int64(len(b))})
		}
	}
	return out, nil
}

func (m *memService) Templates(context.Context) ([]*domain.Template, error) {
	return []*domain.Template{
		{ID: "base", Description: "Ubuntu with Python and Node", Ready: true, BuiltAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), SizeBytes: 734003200},
		{ID: "python", Description: "Python data stack"},
	}, nil
}

func (m *memService) Authenticate(_ context.Context, secret string) (domain.Principal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[m.secrets[secret]]
	if !ok || !k.RevokedAt.IsZero() {
		return domain.Principal{}, domain.Errorf(domain.KindUnauthorized, "invalid API key")
	}
	return domain.Principal{TeamID: k.TeamID, KeyID: k.ID, Admin: k.Admin, Scopes: k.Scopes}, nil
}

func (m *memService) CreateKey(_ context.Context, p domain.Principal, spec domain.KeySpec) (*domain.APIKey, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastKey = spec
	secret := "sk_" + domain.NewID(32)
	team, scopes := p.TeamID, spec.Scopes
	if spec.TeamID != "" {
		team = spec.TeamID
	}
	if len(scopes) == 0 {
		scopes = []domain.Scope{domain.ScopeAdmin}
	}
	k := &domain.APIKey{ID: "key_" + domain.NewID(8), TeamID: team, Name: spec.Name, Prefix: secret[:9], CreatedAt: time.Now(),
		Scopes: scopes, ExpiresAt: spec.ExpiresAt}
	m.keys[k.ID], m.secrets[secret] = k, k.ID
	return k, secret, nil
}

func (m *memService) ListKeys(_ context.Context, p domain.Principal) ([]*domain.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*domain.APIKey
	for _, k := range m.keys {
		if k.TeamID == p.TeamID {
			cp := *k
			out = append(out, &cp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *memService) RevokeKey(_ context.Context, p domain.Principal, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok || k.TeamID != p.TeamID {
		return domain.NotFound("API key", id)
	}
	if !k.RevokedAt.IsZero() {
		return domain.Errorf(domain.KindConflict, "API key %s is already revoked", id)
	}
	k.RevokedAt = time.Now()
	return nil
}

func (m *memService) Connect(_ context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	return nil, errors.New("memService: Connect is not used by the CLI")
}

func (m *memService) Pause(_ context.Context, p domain.Principal, id string) (*domain.Sandbox, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, err := m.lookup(p, id)
	if err != nil {
		return nil, err
	}
	if sb.State != domain.StateRunning {
		return nil, domain.Errorf(domain.KindConflict, "sandbox %s is %s, not running: only a running sandbox can be paused", id, sb.State)
	}
	sb.State, sb.PausedAt = domain.StatePaused, sb.StartedAt.Add(time.Minute)
	cp := *sb
	return &cp, nil
}

func (m *memService) Resume(_ context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, err := m.lookup(p, id)
	if err != nil {
		return nil, err
	}
	if sb.State != domain.StatePaused {
		return nil, domain.Errorf(domain.KindConflict, "sandbox %s is %s, not paused: there is nothing to resume", id, sb.State)
	}
	m.lastResume = d
	sb.State = domain.StateRunning
	cp := *sb
	return &cp, nil
}

func (m *memService) Metrics(_ context.Context, p domain.Principal, id string) (*domain.SandboxMetrics, error) {
	return nil, errors.New("memService: Metrics is not used by the CLI")
}

func (m *memService) Logs(_ context.Context, p domain.Principal, id string, q domain.LogQuery) ([]domain.LogEntry, error) {
	return nil, errors.New("memService: Logs is not used by the CLI")
}
