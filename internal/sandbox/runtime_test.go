package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/network"
	"github.com/warren-sh/warren/internal/node"
	"github.com/warren-sh/warren/internal/runtime"
)

// fakeDriver is a runtime.Driver that only has capabilities.
type fakeDriver struct{ caps runtime.Capabilities }

func (f fakeDriver) Capabilities() runtime.Capabilities { return f.caps }
func (f fakeDriver) Start(context.Context, runtime.Spec) (runtime.Handle, error) {
	return runtime.Handle{}, nil
}
func (f fakeDriver) Status(context.Context, runtime.Handle) (runtime.Status, error) {
	return runtime.StatusGone, nil
}
func (f fakeDriver) Destroy(context.Context, runtime.Handle) error { return nil }
func (f fakeDriver) List(context.Context) ([]string, error)        { return nil, nil }

var (
	gvisorFake = fakeDriver{runtime.Capabilities{Name: "gvisor", Isolation: runtime.IsolationSandbox}}
	runcFake   = fakeDriver{runtime.Capabilities{Name: "runc", Isolation: runtime.IsolationContainer}}
)

func serviceWith(t *testing.T, def runtime.Driver, others ...runtime.Driver) *Service {
	t.Helper()
	dir := t.TempDir()
	agent := filepath.Join(dir, "warren-agent")
	os.WriteFile(agent, []byte("#!/bin/true\n"), 0o755)
	netm, err := network.New(network.Config{Name: "wtunit"})
	if err != nil {
		t.Fatal(err)
	}
	var ds []runtime.Driver
	ds = append(ds, others...)
	nd, err := node.New(node.Config{Dir: filepath.Join(dir, "sandboxes"), AgentPath: agent, Driver: def, Drivers: ds, Network: netm})
	if err != nil {
		t.Fatal(err)
	}
	return &Service{cfg: Config{Node: nd}}
}

func TestPickRuntime(t *testing.T) {
	both := serviceWith(t, gvisorFake, runcFake)
	runcOnly := serviceWith(t, runcFake)
	cases := []struct {
		name         string
		s            *Service
		runtime, min string
		want         string // driver name, or "" for an error
		field, msg   string
	}{
		{"default", both, "", "", "gvisor", "", ""},
		{"ask runc", both, "runc", "", "runc", "", ""},
		{"ask gvisor", both, "gvisor", "sandbox", "gvisor", "", ""},
		{"unknown runtime", both, "firecracker", "", "", "runtime", "not available"},
		{"runc below min", both, "runc", "sandbox", "", "min_isolation", "less than"},
		{"default too weak, stronger exists", serviceWith(t, runcFake, gvisorFake), "", "sandbox", "gvisor", "", ""},
		{"nothing strong enough", runcOnly, "", "sandbox", "", "min_isolation", "no runtime"},
		{"microvm names what is missing", both, "", "microvm", "", "min_isolation", "hardware virtualization"},
		{"bad level", both, "", "vm", "", "min_isolation", "container, sandbox or microvm"},
		{"container is met by the default", both, "", "container", "gvisor", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := c.s.pickRuntime(c.runtime, c.min)
			if c.want != "" {
				if err != nil || d.Capabilities().Name != c.want {
					t.Fatalf("got %v, %v; want %s", d, err, c.want)
				}
				return
			}
			if !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != c.field || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err %v (field %q), want invalid %s mentioning %q", err, domain.FieldOf(err), c.field, c.msg)
			}
		})
	}
}
