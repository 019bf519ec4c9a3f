package sandbox

import (
	"context"
	"errors"
	"io"
	"time"

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
	reattach   func(ctx context.Context, slot int, internet bool) error
	orphans    func(ctx context.Context, live map[string]bool) ([]string, error)
	stopOrphan func(ctx context.Context, id string) error
	openLog    func(id string) (io.ReadCloser, error)
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

func (f *fakeNode) Reattach(ctx context.Context, slot int, internet bool) error {
	if f.reattach == nil {
		return errNotSet
	}
	return f.reattach(ctx, slot, internet)
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
	getSandbox               func(ctx context.Context, teamID, id string) (*domain.Sandbox, error)
	updateSandbox            func(ctx context.Context, sb *domain.Sandbox) error
	listSandboxes            func(ctx context.Context, f domain.SandboxFilter) ([]*domain.Sandbox, string, error)
	usedSlots                func(ctx context.Context) ([]int, error)
}

var _ Store = (*fakeStore)(nil)

func (f *fakeStore) GetTeam(ctx context.Context, id string) (*domain.Team, error) {
	if f.getTeam == nil {
		return nil, errNotSet
	}
	return f.getTeam(ctx, id)
}

func (f *fakeStore) GetTemplate(ctx context.Context, id string) (*domain.Template, error) {
	if f.getTemplate == nil {
		return nil, errNotSet
	}
	return f.getTemplate(ctx, id)
}

func (f *fakeStore) ListTemplates(ctx context.Context) ([]*domain.Template, error) {
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

func (f *fakeStore) ListSandboxes(ctx context.Context, fl domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
	if f.listSandboxes == nil {
		return nil, "", errNotSet
	}
	return f.listSandboxes(ctx, fl)
}

func (f *fakeStore) UsedSlots(ctx context.Context) ([]int, error) {
	if f.usedSlots == nil {
		return nil, errNotSet
	}
	return f.usedSlots(ctx)
}

// fakeAgent is the lifecycle part of an agent connection (agent.conn); the services
// that relay to the agent (files, processes, code, terminals) are not exercised
// through it, and their parts stay nil.
type fakeAgent struct {
	waitReady     func(ctx context.Context) error
	waitPortReady func(ctx context.Context, port int) error
	metrics       func(ctx context.Context) (*domain.SandboxMetrics, error)
	closed        func()
}

var _ lifecycleAgent = (*fakeAgent)(nil)

func (f *fakeAgent) WaitReady(ctx context.Context) error {
	if f.waitReady == nil {
		return errNotSet
	}
	return f.waitReady(ctx)
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

func (f *fakeAgent) Close() {
	if f.closed != nil {
		f.closed()
	}
}

// fakeMeter is a Meter.
type fakeMeter struct {
	begin func(ctx context.Context, sb *domain.Sandbox) error
	end   func(ctx context.Context, sb *domain.Sandbox, at time.Time) error
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
