package sandbox

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// This file holds the fakes of what the services depend on (deps.go): structs whose
// methods call function fields, so that a test sets only what it exercises. An unset
// field answers errNotSet.

var errNotSet = errors.New("fake: method not set by the test")

// fakeNode is a Node.
type fakeNode struct {
	start      func(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template) (runtime.Handle, string, error)
	halt       func(ctx context.Context, id string, slot int, h *runtime.Handle) error
	stop       func(ctx context.Context, id string, slot int, h *runtime.Handle) error
	reattach   func(ctx context.Context, sb *domain.Sandbox) error
	orphans    func(ctx context.Context, live map[string]bool) ([]string, error)
	stopOrphan func(ctx context.Context, id string) error
	openLog    func(id string) (io.ReadCloser, error)
	pause      func(ctx context.Context, sb *domain.Sandbox) error
	resume     func(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template) (runtime.Handle, string, error)
	release    func(ctx context.Context, id string, slot int, h *runtime.Handle) error
	snapshot   func(ctx context.Context, sb *domain.Sandbox, dst string) error
	startFrom  func(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template, src string) (runtime.Handle, string, error)
	imageTime  func(id string) time.Time
	keepLost   func(id string) (string, error)
	// drivers are the node's drivers, the default first; slots its address slots.
	drivers []runtime.Driver
	slots   int
}

var _ Node = (*fakeNode)(nil)

func (f *fakeNode) Start(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template) (runtime.Handle, string, error) {
	if f.start == nil {
		return runtime.Handle{}, "", errNotSet
	}
	return f.start(ctx, sb, tpl)
}

func (f *fakeNode) Halt(ctx context.Context, id string, slot int, h *runtime.Handle) error {
	if f.halt == nil {
		return errNotSet
	}
	return f.halt(ctx, id, slot, h)
}

func (f *fakeNode) Stop(ctx context.Context, id string, slot int, h *runtime.Handle) error {
	if f.stop == nil {
		return errNotSet
	}
	return f.stop(ctx, id, slot, h)
}

func (f *fakeNode) Reattach(ctx context.Context, sb *domain.Sandbox) error {
	if f.reattach == nil {
		return errNotSet
	}
	return f.reattach(ctx, sb)
}

func (f *fakeNode) Orphans(ctx context.Context, live map[string]bool) ([]string, error) {
	if f.orphans == nil {
		return nil, errNotSet
	}
	return f.orphans(ctx, live)
}

func (f *fakeNode) StopOrphan(ctx context.Context, id string) error {
	if f.stopOrphan == nil {
		return errNotSet
	}
	return f.stopOrphan(ctx, id)
}

func (f *fakeNode) OpenLog(id string) (io.ReadCloser, error) {
	if f.openLog == nil {
		return nil, errNotSet
	}
	return f.openLog(id)
}

func (f *fakeNode) Pause(ctx context.Context, sb *domain.Sandbox) error {
	if f.pause == nil {
		return errNotSet
	}
	return f.pause(ctx, sb)
}

func (f *fakeNode) Resume(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template) (runtime.Handle, string, error) {
	if f.resume == nil {
		return runtime.Handle{}, "", errNotSet
	}
	return f.resume(ctx, sb, tpl)
}

func (f *fakeNode) Release(ctx context.Context, id string, slot int, h *runtime.Handle) error {
	if f.release == nil {
		return errNotSet
	}
	return f.release(ctx, id, slot, h)
}

func (f *fakeNode) Snapshot(ctx context.Context, sb *domain.Sandbox, dst string) error {
	if f.snapshot == nil {
		return errNotSet
	}
	return f.snapshot(ctx, sb, dst)
}

func (f *fakeNode) StartFrom(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template, src string) (runtime.Handle, string, error) {
	if f.startFrom == nil {
		return runtime.Handle{}, "", errNotSet
	}
	return f.startFrom(ctx, sb, tpl, src)
}

func (f *fakeNode) PausedBytes(string) int64 { return 0 }

func (f *fakeNode) RemoveLost(time.Time) (int, error) { return 0, nil }

func (f *fakeNode) KeepLost(id string) (string, error) {
	if f.keepLost == nil {
		return "", nil
	}
	return f.keepLost(id)
}

func (f *fakeNode) ImageTime(id string) time.Time {
	if f.imageTime == nil {
		return time.Time{}
	}
	return f.imageTime(id)
}

func (f *fakeNode) Drivers() []runtime.Driver { return f.drivers }

func (f *fakeNode) DriverFor(name string) (runtime.Driver, bool) {
	if name == "" && len(f.drivers) > 0 {
		return f.drivers[0], true
	}
	for _, d := range f.drivers {
		if d.Capabilities().Name == name {
			return d, true
		}
	}
	return nil, false
}

func (f *fakeNode) Slots() int { return f.slots }

// fakeDriver is a runtime.Driver with fixed capabilities whose Status is a function
// field (unset: the sandbox is gone). The node fake does the starting and stopping, so
// the other verbs are never called.
type fakeDriver struct {
	caps   runtime.Capabilities
	status func(ctx context.Context, h runtime.Handle) (runtime.Status, error)
}

var _ runtime.Driver = fakeDriver{}

func (f fakeDriver) Capabilities() runtime.Capabilities { return f.caps }
func (f fakeDriver) Start(context.Context, runtime.Spec) (runtime.Handle, error) {
	return runtime.Handle{}, errNotSet
}
func (f fakeDriver) Status(ctx context.Context, h runtime.Handle) (runtime.Status, error) {
	if f.status == nil {
		return runtime.StatusGone, nil
	}
	return f.status(ctx, h)
}
func (f fakeDriver) Destroy(context.Context, runtime.Handle) error { return errNotSet }
func (f fakeDriver) List(context.Context) ([]string, error)        { return nil, errNotSet }

// checkpointDriver is a fakeDriver that is a runtime.Checkpointer (as gVisor's is);
// the node fake does the checkpointing, so its verbs are never called.
type checkpointDriver struct{ fakeDriver }

var _ runtime.Checkpointer = checkpointDriver{}

func (checkpointDriver) Checkpoint(context.Context, runtime.Handle, string, bool) error {
	return errNotSet
}
func (checkpointDriver) Restore(context.Context, runtime.Spec, string) (runtime.Handle, error) {
	return runtime.Handle{}, errNotSet
}

var (
	gvisorFake = fakeDriver{caps: runtime.Capabilities{Name: "gvisor", Isolation: runtime.IsolationSandbox}}
	runcFake   = fakeDriver{caps: runtime.Capabilities{Name: "runc", Isolation: runtime.IsolationContainer}}
)

// fakeStore is a Store.
type fakeStore struct {
	getTeam                  func(ctx context.Context, id string) (*domain.Team, error)
	getTemplate              func(ctx context.Context, id string) (*domain.Template, error)
	listTemplates            func(ctx context.Context) ([]*domain.Template, error)
	createSandboxWithinQuota func(ctx context.Context, sb *domain.Sandbox, q domain.Quota) error
	resumeSandboxWithinQuota func(ctx context.Context, sb *domain.Sandbox, q domain.Quota) error
	getSandbox               func(ctx context.Context, teamID, id string) (*domain.Sandbox, error)
	updateSandbox            func(ctx context.Context, sb *domain.Sandbox) error
	setSandboxNetwork        func(ctx context.Context, teamID, id string, p domain.NetworkPolicy) error
	listSandboxes            func(ctx context.Context, f domain.SandboxFilter) ([]*domain.Sandbox, string, error)
	usedSlots                func(ctx context.Context) ([]int, error)
	teamUsage                func(ctx context.Context, teamID string) (domain.QuotaUsage, error)
	createSnapshot           func(ctx context.Context, s *domain.Snapshot, max int64) error
	getSnapshot              func(ctx context.Context, teamID, ref string) (*domain.Snapshot, error)
	listSnapshots            func(ctx context.Context, f domain.SnapshotFilter) ([]*domain.Snapshot, string, error)
	deleteSnapshot           func(ctx context.Context, teamID, id string) error
	reserveKey               func(ctx context.Context, k *domain.IdempotencyKey, pendingBefore, expiredBefore time.Time) (*domain.IdempotencyKey, error)
	getKey                   func(ctx context.Context, teamID, key string) (*domain.IdempotencyKey, error)
	completeKey              func(ctx context.Context, k *domain.IdempotencyKey) error
	releaseKey               func(ctx context.Context, k *domain.IdempotencyKey) error
	deleteKeys               func(ctx context.Context, before time.Time) (int64, error)
	templateTeams            sync.Map // template id → the team GetTemplate was last asked for
}

var _ Store = (*fakeStore)(nil)

func (f *fakeStore) GetTeam(ctx context.Context, id string) (*domain.Team, error) {
	if f.getTeam == nil {
		return nil, errNotSet
	}
	return f.getTeam(ctx, id)
}

// GetTemplate records the team it was asked for and leaves the scoping to the real
// stores (pinned in storetest).
func (f *fakeStore) GetTemplate(ctx context.Context, teamID, id string) (*domain.Template, error) {
	if f.getTemplate == nil {
		return nil, errNotSet
	}
	f.templateTeams.Store(id, teamID)
	return f.getTemplate(ctx, id)
}

func (f *fakeStore) ListTemplates(ctx context.Context, teamID string) ([]*domain.Template, error) {
	if f.listTemplates == nil {
		return nil, errNotSet
	}
	return f.listTemplates(ctx)
}

func (f *fakeStore) CreateSandboxWithinQuota(ctx context.Context, sb *domain.Sandbox, q domain.Quota) error {
	if f.createSandboxWithinQuota == nil {
		return errNotSet
	}
	return f.createSandboxWithinQuota(ctx, sb, q)
}

func (f *fakeStore) ResumeSandboxWithinQuota(ctx context.Context, sb *domain.Sandbox, q domain.Quota) error {
	if f.resumeSandboxWithinQuota == nil {
		return errNotSet
	}
	return f.resumeSandboxWithinQuota(ctx, sb, q)
}

func (f *fakeStore) GetSandbox(ctx context.Context, teamID, id string) (*domain.Sandbox, error) {
	if f.getSandbox == nil {
		return nil, errNotSet
	}
	return f.getSandbox(ctx, teamID, id)
}

func (f *fakeStore) UpdateSandbox(ctx context.Context, sb *domain.Sandbox) error {
	if f.updateSandbox == nil {
		return errNotSet
	}
	return f.updateSandbox(ctx, sb)
}

func (f *fakeStore) SetSandboxNetwork(ctx context.Context, teamID, id string, p domain.NetworkPolicy) error {
	if f.setSandboxNetwork == nil {
		return errNotSet
	}
	return f.setSandboxNetwork(ctx, teamID, id, p)
}

func (f *fakeStore) ListSandboxes(ctx context.Context, fl domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
	if f.listSandboxes == nil {
		return nil, "", errNotSet
	}
	return f.listSandboxes(ctx, fl)
}

func (f *fakeStore) UsedSlots(ctx context.Context, _ []string) ([]int, error) {
	if f.usedSlots == nil {
		return nil, errNotSet
	}
	return f.usedSlots(ctx)
}

func (f *fakeStore) TeamUsage(ctx context.Context, teamID string) (domain.QuotaUsage, error) {
	if f.teamUsage == nil {
		return domain.QuotaUsage{}, errNotSet
	}
	return f.teamUsage(ctx, teamID)
}

func (f *fakeStore) CreateSnapshotWithinQuota(ctx context.Context, s *domain.Snapshot, max int64) error {
	if f.createSnapshot == nil {
		return errNotSet
	}
	return f.createSnapshot(ctx, s, max)
}

func (f *fakeStore) GetSnapshot(ctx context.Context, teamID, ref string) (*domain.Snapshot, error) {
	if f.getSnapshot == nil {
		return nil, errNotSet
	}
	return f.getSnapshot(ctx, teamID, ref)
}

func (f *fakeStore) ListSnapshots(ctx context.Context, fl domain.SnapshotFilter) ([]*domain.Snapshot, string, error) {
	if f.listSnapshots == nil {
		return nil, "", errNotSet
	}
	return f.listSnapshots(ctx, fl)
}

func (f *fakeStore) DeleteSnapshot(ctx context.Context, teamID, id string) error {
	if f.deleteSnapshot == nil {
		return errNotSet
	}
	return f.deleteSnapshot(ctx, teamID, id)
}

func (f *fakeStore) ReserveIdempotencyKey(ctx context.Context, k *domain.IdempotencyKey, pendingBefore, expiredBefore time.Time) (*domain.IdempotencyKey, error) {
	if f.reserveKey == nil {
		return nil, errNotSet
	}
	return f.reserveKey(ctx, k, pendingBefore, expiredBefore)
}

func (f *fakeStore) GetIdempotencyKey(ctx context.Context, teamID, key string) (*domain.IdempotencyKey, error) {
	if f.getKey == nil {
		return nil, errNotSet
	}
	return f.getKey(ctx, teamID, key)
}

func (f *fakeStore) CompleteIdempotencyKey(ctx context.Context, k *domain.IdempotencyKey) error {
	if f.completeKey == nil {
		return errNotSet
	}
	return f.completeKey(ctx, k)
}

func (f *fakeStore) ReleaseIdempotencyKey(ctx context.Context, k *domain.IdempotencyKey) error {
	if f.releaseKey == nil {
		return errNotSet
	}
	return f.releaseKey(ctx, k)
}

func (f *fakeStore) DeleteIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	if f.deleteKeys == nil {
		return 0, errNotSet
	}
	return f.deleteKeys(ctx, before)
}

// fakeAgent is the lifecycle part of an agent connection (agent.conn); the services
// that relay to the agent (files, processes, code, terminals) are not exercised
// through it, and their parts stay nil.
type fakeAgent struct {
	waitReady     func(ctx context.Context) error
	waitPortReady func(ctx context.Context, port int) error
	metrics       func(ctx context.Context) (*domain.SandboxMetrics, error)
	init          func(ctx context.Context, r agentclient.Identity) error
	health        func(ctx context.Context) error
	closed        func()
}

var _ lifecycleAgent = (*fakeAgent)(nil)

func (f *fakeAgent) WaitReady(ctx context.Context) error {
	if f.waitReady == nil {
		return errNotSet
	}
	return f.waitReady(ctx)
}

func (f *fakeAgent) Health(ctx context.Context) error {
	if f.health == nil {
		return errNotSet
	}
	return f.health(ctx)
}

func (f *fakeAgent) WaitPortReady(ctx context.Context, port int) error {
	if f.waitPortReady == nil {
		return errNotSet
	}
	return f.waitPortReady(ctx, port)
}

func (f *fakeAgent) Metrics(ctx context.Context) (*domain.SandboxMetrics, error) {
	if f.metrics == nil {
		return nil, errNotSet
	}
	return f.metrics(ctx)
}

func (f *fakeAgent) Init(ctx context.Context, r agentclient.Identity) error {
	if f.init == nil {
		return errNotSet
	}
	return f.init(ctx, r)
}

func (f *fakeAgent) Close() {
	if f.closed != nil {
		f.closed()
	}
}

// fakeMeter is a Meter.
type fakeMeter struct {
	begin  func(ctx context.Context, sb *domain.Sandbox) error
	end    func(ctx context.Context, sb *domain.Sandbox, at time.Time) error
	paused func(ctx context.Context, sb *domain.Sandbox, at time.Time, minGap time.Duration, bytes func() int64) error
}

func (f *fakeMeter) SamplePaused(ctx context.Context, sb *domain.Sandbox, at time.Time, minGap time.Duration, bytes func() int64) error {
	if f.paused == nil {
		return nil
	}
	return f.paused(ctx, sb, at, minGap, bytes)
}

var _ Meter = (*fakeMeter)(nil)

func (f *fakeMeter) Begin(ctx context.Context, sb *domain.Sandbox) error {
	if f.begin == nil {
		return errNotSet
	}
	return f.begin(ctx, sb)
}

func (f *fakeMeter) End(ctx context.Context, sb *domain.Sandbox, at time.Time) error {
	if f.end == nil {
		return errNotSet
	}
	return f.end(ctx, sb, at)
}
