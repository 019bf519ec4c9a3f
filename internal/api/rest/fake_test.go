package rest

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// fakeSandboxes is a domain.SandboxService whose methods are function fields, plus the
// commands and file reads and writes that procFake completes into a
// domain.ProcessService and domain.FileService. A nil field answers with an internal
// error, so a test only sets what it exercises.
type fakeSandboxes struct {
	create     func(ctx context.Context, p domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error)
	get        func(ctx context.Context, p domain.Principal, id string) (*domain.Sandbox, error)
	list       func(ctx context.Context, p domain.Principal, f domain.SandboxFilter) ([]*domain.Sandbox, string, error)
	kill       func(ctx context.Context, p domain.Principal, id string) error
	setTimeout func(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error)
	setNetwork func(ctx context.Context, p domain.Principal, id string, np domain.NetworkPolicy) (*domain.Sandbox, error)
	exec       func(ctx context.Context, p domain.Principal, id string, req domain.ExecRequest, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error)
	writeFile  func(ctx context.Context, p domain.Principal, id, path, user string, r io.Reader) (*domain.FileInfo, error)
	readFile   func(ctx context.Context, p domain.Principal, id, path, user string, w io.Writer) error
	listFiles  func(ctx context.Context, p domain.Principal, id, path, user string, depth int) ([]domain.FileInfo, error)
	templates  func(ctx context.Context) ([]*domain.Template, error)
	pause      func(ctx context.Context, p domain.Principal, id string) (*domain.Sandbox, error)
	resume     func(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error)
}

func (f *fakeSandboxes) SetNetwork(ctx context.Context, p domain.Principal, id string, np domain.NetworkPolicy) (*domain.Sandbox, error) {
	if f.setNetwork == nil {
		return nil, errNotSet
	}
	return f.setNetwork(ctx, p, id, np)
}

func (f *fakeSandboxes) Pause(ctx context.Context, p domain.Principal, id string) (*domain.Sandbox, error) {
	if f.pause == nil {
		return nil, errNotSet
	}
	return f.pause(ctx, p, id)
}

func (f *fakeSandboxes) Resume(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	if f.resume == nil {
		return nil, errNotSet
	}
	return f.resume(ctx, p, id, d)
}

var _ domain.SandboxService = (*fakeSandboxes)(nil)

var errNotSet = errors.New("fake: method not set by the test")

func (f *fakeSandboxes) Create(ctx context.Context, p domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
	if f.create == nil {
		return nil, errNotSet
	}
	return f.create(ctx, p, req)
}

func (f *fakeSandboxes) Get(ctx context.Context, p domain.Principal, id string) (*domain.Sandbox, error) {
	if f.get == nil {
		return nil, errNotSet
	}
	return f.get(ctx, p, id)
}

func (f *fakeSandboxes) List(ctx context.Context, p domain.Principal, fl domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
	if f.list == nil {
		return nil, "", errNotSet
	}
	return f.list(ctx, p, fl)
}

func (f *fakeSandboxes) Kill(ctx context.Context, p domain.Principal, id string) error {
	if f.kill == nil {
		return errNotSet
	}
	return f.kill(ctx, p, id)
}

func (f *fakeSandboxes) SetTimeout(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	if f.setTimeout == nil {
		return nil, errNotSet
	}
	return f.setTimeout(ctx, p, id, d)
}

func (f *fakeSandboxes) Exec(ctx context.Context, p domain.Principal, id string, req domain.ExecRequest, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	if f.exec == nil {
		return nil, errNotSet
	}
	return f.exec(ctx, p, id, req, onEvent)
}

func (f *fakeSandboxes) WriteFile(ctx context.Context, p domain.Principal, id, path, user string, r io.Reader) (*domain.FileInfo, error) {
	if f.writeFile == nil {
		return nil, errNotSet
	}
	return f.writeFile(ctx, p, id, path, user, r)
}

func (f *fakeSandboxes) ReadFile(ctx context.Context, p domain.Principal, id, path, user string, w io.Writer) error {
	if f.readFile == nil {
		return errNotSet
	}
	return f.readFile(ctx, p, id, path, user, w)
}

func (f *fakeSandboxes) ListFiles(ctx context.Context, p domain.Principal, id, path, user string, depth int) ([]domain.FileInfo, error) {
	if f.listFiles == nil {
		return nil, errNotSet
	}
	return f.listFiles(ctx, p, id, path, user, depth)
}

func (f *fakeSandboxes) Templates(ctx context.Context) ([]*domain.Template, error) {
	if f.templates == nil {
		return nil, errNotSet
	}
	return f.templates(ctx)
}

// fakeKeys is a domain.KeyService with function fields. With authenticate nil, the
// secret testKey belongs to testPrincipal and every other secret is rejected.
type fakeKeys struct {
	authenticate func(ctx context.Context, secret string) (domain.Principal, error)
	createKey    func(ctx context.Context, p domain.Principal, spec domain.KeySpec) (*domain.APIKey, string, error)
	listKeys     func(ctx context.Context, p domain.Principal) ([]*domain.APIKey, error)
	revokeKey    func(ctx context.Context, p domain.Principal, id string) error
}

var _ domain.KeyService = (*fakeKeys)(nil)

const testKey = "sk_test_0123456789"

var testPrincipal = domain.Principal{TeamID: "team_a", KeyID: "key_a"}

func (f *fakeKeys) Authenticate(ctx context.Context, secret string) (domain.Principal, error) {
	if f.authenticate != nil {
		return f.authenticate(ctx, secret)
	}
	if secret == testKey {
		return testPrincipal, nil
	}
	return domain.Principal{}, domain.Errorf(domain.KindUnauthorized, "invalid API key")
}

func (f *fakeKeys) CreateKey(ctx context.Context, p domain.Principal, spec domain.KeySpec) (*domain.APIKey, string, error) {
	if f.createKey == nil {
		return nil, "", errNotSet
	}
	return f.createKey(ctx, p, spec)
}

func (f *fakeKeys) ListKeys(ctx context.Context, p domain.Principal) ([]*domain.APIKey, error) {
	if f.listKeys == nil {
		return nil, errNotSet
	}
	return f.listKeys(ctx, p)
}

func (f *fakeKeys) RevokeKey(ctx context.Context, p domain.Principal, id string) error {
	if f.revokeKey == nil {
		return errNotSet
	}
	return f.revokeKey(ctx, p, id)
}

func (f *fakeSandboxes) Connect(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	return nil, errNotSet
}

func (f *fakeSandboxes) Metrics(ctx context.Context, p domain.Principal, id string) (*domain.SandboxMetrics, error) {
	return nil, errNotSet
}
