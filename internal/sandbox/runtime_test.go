package sandbox

import (
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// offering is a node holding def and others whose requests may use def and the
// runtimes named in enabled.
type offering struct {
	node     Node
	runtimes []string
}

func nodeWith(enabled []string, def runtime.Driver, others ...runtime.Driver) offering {
	if len(enabled) > 0 {
		enabled = append([]string{def.Capabilities().Name}, enabled...)
	}
	return offering{&fakeNode{drivers: append([]runtime.Driver{def}, others...)}, enabled}
}

func TestPickRuntime(t *testing.T) {
	both := nodeWith([]string{"runc"}, gvisorFake, runcFake)
	gvisorOnly := nodeWith(nil, gvisorFake, runcFake) // runc on the host, not enabled
	runcOnly := nodeWith(nil, runcFake)
	anyTeam := &domain.Team{ID: "t1"}
	gvisorTeam := &domain.Team{ID: "t2", AllowedRuntimes: []string{"gvisor"}}
	runcTeam := &domain.Team{ID: "t3", AllowedRuntimes: []string{"runc"}}
	cases := []struct {
		name         string
		o            offering
		team         *domain.Team
		runtime, min string
		want         string // driver name, or "" for an error
		kind         domain.Kind
		field, msg   string
	}{
		{"default", both, anyTeam, "", "", "gvisor", 0, "", ""},
		{"ask runc", both, anyTeam, "runc", "", "runc", 0, "", ""},
		{"ask gvisor", both, anyTeam, "gvisor", "sandbox", "gvisor", 0, "", ""},
		{"unknown runtime", both, anyTeam, "firecracker", "", "", domain.KindInvalid, "runtime", "not enabled on this server; enabled: gvisor, runc"},
		{"runc below min", both, anyTeam, "runc", "sandbox", "", domain.KindInvalid, "min_isolation", "less than"},
		{"default too weak, stronger exists", nodeWith([]string{"gvisor"}, runcFake, gvisorFake), anyTeam, "", "sandbox", "gvisor", 0, "", ""},
		{"default too weak, stronger not enabled", nodeWith(nil, runcFake, gvisorFake), anyTeam, "", "sandbox", "", domain.KindInvalid, "min_isolation", "no runtime"},
		{"nothing strong enough", runcOnly, anyTeam, "", "sandbox", "", domain.KindInvalid, "min_isolation", "no runtime"},
		{"microvm names what is missing", both, anyTeam, "", "microvm", "", domain.KindInvalid, "min_isolation", "hardware virtualization"},
		{"bad level", both, anyTeam, "", "vm", "", domain.KindInvalid, "min_isolation", "container, sandbox or microvm"},
		{"container is met by the default", both, anyTeam, "", "container", "gvisor", 0, "", ""},

		{"runc on the host but not enabled", gvisorOnly, anyTeam, "runc", "", "", domain.KindInvalid, "runtime",
			"runtime runc is not enabled on this server; enabled: gvisor (the operator enables more with --runtimes)"},
		{"not enabled beats team rules", gvisorOnly, runcTeam, "runc", "", "", domain.KindInvalid, "runtime", "not enabled"},
		{"default only, min container", gvisorOnly, anyTeam, "", "container", "gvisor", 0, "", ""},

		{"team limited to gvisor asks runc", both, gvisorTeam, "runc", "", "", domain.KindForbidden, "", "team t2 may not use runtime runc; it may use: gvisor"},
		{"team limited to gvisor gets the default", both, gvisorTeam, "", "", "gvisor", 0, "", ""},
		{"team limited to runc may name it", both, runcTeam, "runc", "", "runc", 0, "", ""},
		{"team limited to runc is never silently given it", both, runcTeam, "", "", "", domain.KindForbidden, "", "may not use this server's default runtime gvisor"},
		{"team limited to runc, min container", both, runcTeam, "", "container", "", domain.KindForbidden, "", "name one of its runtimes"},
		{"team limited to gvisor on a runc default gets the stronger", nodeWith([]string{"gvisor"}, runcFake, gvisorFake), gvisorTeam, "", "", "gvisor", 0, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := pickRuntime(c.o.node, c.o.runtimes, c.team, c.runtime, c.min)
			if c.want != "" {
				if err != nil || d.Capabilities().Name != c.want {
					t.Fatalf("got %v, %v; want %s", d, err, c.want)
				}
				return
			}
			if !domain.IsKind(err, c.kind) || domain.FieldOf(err) != c.field || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err %v (kind %v, field %q), want %v %s mentioning %q", err, domain.KindOf(err), domain.FieldOf(err), c.kind, c.field, c.msg)
			}
		})
	}
}
