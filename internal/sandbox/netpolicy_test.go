package sandbox

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

var onlyThese = domain.NetworkPolicy{AllowOut: []string{"198.18.0.7", "*.example.com"}, DenyOut: []string{"0.0.0.0/0"}}

// TestCreateWithNetwork: a create's policy is normalised, stored with the row and given
// to the node with the sandbox it starts; a bad entry is refused before anything starts.
func TestCreateWithNetwork(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	var started []domain.NetworkPolicy
	start := w.node.start
	w.node.start = func(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template) (runtime.Handle, string, error) {
		started = append(started, sb.Network)
		return start(ctx, sb, tpl)
	}
	sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{Network: &domain.NetworkPolicy{
		AllowOut: []string{"198.18.0.7", "*.Example.COM."}, DenyOut: []string{"0.0.0.0/0"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sb.Network, onlyThese) || !reflect.DeepEqual(w.row(sb.ID).Network, onlyThese) {
		t.Errorf("created %+v, stored %+v; want %+v", sb.Network, w.row(sb.ID).Network, onlyThese)
	}
	if len(started) != 1 || !reflect.DeepEqual(started[0], onlyThese) {
		t.Errorf("node started with %+v", started)
	}
	_, err = w.svc.Create(ctx, writer, domain.CreateSandbox{Network: &domain.NetworkPolicy{DenyOut: []string{"10.0.0.0/8", "fd00::/8"}}})
	if !domain.IsKind(err, domain.KindInvalid) || !strings.Contains(err.Error(), "network.deny_out[1]") || !strings.Contains(err.Error(), "IPv6") {
		t.Errorf("create with an IPv6 entry: %v, want invalid naming network.deny_out[1]", err)
	}
	if len(started) != 1 {
		t.Errorf("a refused create reached the node")
	}
}

// TestSetNetwork: an update of a running sandbox is stored and applied by the node at
// once; it needs sandboxes:write and the sandbox's team; a bad policy changes nothing.
func TestSetNetwork(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	other := domain.Principal{TeamID: "team_b", Scopes: writer.Scopes}
	refused := []struct {
		name string
		p    domain.Principal
		id   string
		np   domain.NetworkPolicy
		kind domain.Kind
	}{
		{"read-only key", reader, sb.ID, onlyThese, domain.KindForbidden},
		{"another team", other, sb.ID, onlyThese, domain.KindNotFound},
		{"unknown sandbox", writer, domain.NewID(20), onlyThese, domain.KindNotFound},
		{"bad entry", writer, sb.ID, domain.NetworkPolicy{AllowOut: []string{"198.18.0.7", "not a host"}}, domain.KindInvalid},
	}
	for _, tc := range refused {
		if _, err := w.svc.SetNetwork(ctx, tc.p, tc.id, tc.np); !domain.IsKind(err, tc.kind) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.kind)
		}
	}
	if got := w.called("node.reattach"); len(got) != 0 || !w.row(sb.ID).Network.IsZero() {
		t.Fatalf("refused updates reached the node (%q) or the row (%+v)", got, w.row(sb.ID).Network)
	}

	got, err := w.svc.SetNetwork(ctx, writer, sb.ID, domain.NetworkPolicy{AllowOut: []string{"198.18.0.7", "*.EXAMPLE.com"}, DenyOut: []string{"0.0.0.0/0"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Network, onlyThese) || !reflect.DeepEqual(w.row(sb.ID).Network, onlyThese) {
		t.Errorf("after the update: returned %+v, stored %+v", got.Network, w.row(sb.ID).Network)
	}
	want := fmt.Sprintf("node.reattach %d true allow=%v deny=%v", sb.Slot, onlyThese.AllowOut, onlyThese.DenyOut)
	if calls := w.called("node.reattach"); !slices.Equal(calls, []string{want}) {
		t.Errorf("node calls: %q, want %q", calls, want)
	}
	// The empty policy clears it.
	if got, err := w.svc.SetNetwork(ctx, writer, sb.ID, domain.NetworkPolicy{}); err != nil || !got.Network.IsZero() {
		t.Errorf("clearing: %+v, %v", got, err)
	}
	if calls := w.called("node.reattach"); len(calls) != 2 || calls[1] != fmt.Sprintf("node.reattach %d true", sb.Slot) {
		t.Errorf("node calls after clearing: %q", calls)
	}
	// A failure to apply is reported (and the policy stays stored: the next update or
	// a restart applies it).
	w.node.reattach = func(context.Context, *domain.Sandbox) error { return fmt.Errorf("nft: boom") }
	if _, err := w.svc.SetNetwork(ctx, writer, sb.ID, onlyThese); !domain.IsKind(err, domain.KindUnavailable) || !strings.Contains(err.Error(), "try again") {
		t.Errorf("apply failure: %v, want unavailable", err)
	}

	if err := w.svc.Kill(ctx, writer, sb.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.SetNetwork(ctx, writer, sb.ID, onlyThese); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("update of a killed sandbox: %v, want a conflict", err)
	}
}

// TestSetNetworkPaused: a paused sandbox's update is stored, not applied; the resume
// starts it with the new policy.
func TestSetNetworkPaused(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Pause(ctx, writer, sb.ID); err != nil {
		t.Fatal(err)
	}
	got, err := w.svc.SetNetwork(ctx, writer, sb.ID, onlyThese)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != domain.StatePaused || !reflect.DeepEqual(got.Network, onlyThese) {
		t.Errorf("paused sandbox after the update: %+v", got)
	}
	if calls := w.called("node.reattach"); len(calls) != 0 {
		t.Errorf("a paused sandbox's policy went to the node: %q", calls)
	}
	var resumedWith domain.NetworkPolicy
	resume := w.node.resume
	w.node.resume = func(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template) (runtime.Handle, string, error) {
		resumedWith = sb.Network
		return resume(ctx, sb, tpl)
	}
	r, err := w.svc.Resume(ctx, writer, sb.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(resumedWith, onlyThese) || !reflect.DeepEqual(r.Network, onlyThese) {
		t.Errorf("resumed with %+v (returned %+v), want %+v", resumedWith, r.Network, onlyThese)
	}
	// Once resumed, an update applies live again.
	if _, err := w.svc.SetNetwork(ctx, writer, sb.ID, domain.NetworkPolicy{DenyOut: []string{"198.18.0.0/15"}}); err != nil {
		t.Fatal(err)
	}
	if calls := w.called("node.reattach"); len(calls) != 1 || !strings.Contains(calls[0], "deny=[198.18.0.0/15]") {
		t.Errorf("node calls after resume: %q", calls)
	}
}

// TestRecoverReappliesNetwork: a restarted server re-applies a surviving sandbox's
// policy along with its internet access (the node's table was rebuilt without it).
func TestRecoverReappliesNetwork(t *testing.T) {
	w := newWorld(t)
	now := time.Now().UTC()
	id := domain.NewID(20)
	w.addRow(&domain.Sandbox{
		ID: id, TeamID: teamID, TemplateID: "base", State: domain.StateRunning, RuntimeName: "gvisor", Slot: 2,
		Address: "10.0.0.2", AccessToken: "tok", Internet: false, Network: onlyThese,
		CreatedAt: now.Add(-time.Minute), StartedAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour),
		RuntimeHandle: []byte(fmt.Sprintf(`{"id":%q,"driver":"gvisor","pid":102}`, id)),
	})
	if rep, err := w.sweeper.Recover(context.Background()); err != nil || rep.Reattached != 1 {
		t.Fatalf("recover: %+v, %v", rep, err)
	}
	want := fmt.Sprintf("node.reattach 2 false allow=%v deny=%v", onlyThese.AllowOut, onlyThese.DenyOut)
	if calls := w.called("node.reattach"); !slices.Equal(calls, []string{want}) {
		t.Errorf("reattach calls: %q, want %q", calls, want)
	}
}

// TestNetworkInherited: a fork keeps its parent's policy; a sandbox started from a
// snapshot keeps the snapshot's unless its create asks for one.
func TestNetworkInherited(t *testing.T) {
	parent := &domain.Sandbox{ID: domain.NewID(20), TeamID: teamID, Internet: true, Network: onlyThese}
	if child := forkOf(parent, time.Now(), time.Minute); !reflect.DeepEqual(child.Network, onlyThese) {
		t.Errorf("fork's policy %+v, want the parent's", child.Network)
	}
	cases := []struct {
		name    string
		req     *domain.NetworkPolicy
		want    domain.NetworkPolicy
		wantErr bool
	}{
		{"none asked: inherited", nil, onlyThese, false},
		{"asked: replaces", &domain.NetworkPolicy{DenyOut: []string{"198.19.0.0/16"}}, domain.NetworkPolicy{DenyOut: []string{"198.19.0.0/16"}}, false},
		{"asked empty: none", &domain.NetworkPolicy{}, domain.NetworkPolicy{}, false},
		{"asked bad", &domain.NetworkPolicy{AllowOut: []string{"*"}}, domain.NetworkPolicy{}, true},
	}
	for _, c := range cases {
		got, err := requestedNetwork(domain.CreateSandbox{Network: c.req}, onlyThese)
		if (err != nil) != c.wantErr || !c.wantErr && !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
}
