package sandbox

import (
	"context"
	"encoding/json"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/runtime"
)

// homing is the Service's job of being one node among others (its methods are the
// Service's): which sandboxes are this node's, whether the node takes new ones, and
// letting go of those the cluster ended while the node was away.
type homing struct{ *Service }

// getHere is get for what acts on the sandbox where it runs: a live or paused sandbox
// of another node is KindUnavailable naming that node (in a cluster the forwarder sends
// such requests to their node before they get here).
func (s *homing) getHere(ctx context.Context, p domain.Principal, id string) (*domain.Sandbox, error) {
	sb, err := s.get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if err := s.onThisNode(sb); err != nil {
		return nil, err
	}
	return sb, nil
}

// onThisNode returns nil when sb is this node's (or has no node, or has ended), else
// the KindUnavailable error of getHere.
func (s *homing) onThisNode(sb *domain.Sandbox) error {
	if sb.Node == "" || sb.Node == s.cfg.NodeName || sb.State.Terminal() {
		return nil
	}
	return domain.Errorf(domain.KindUnavailable, "sandbox %q is on node %q and this server is node %q: send its requests through a control replica (warren serve --role control), or give the servers a cluster secret and --internal-listen so that they forward them",
		sb.ID, sb.Node, s.cfg.NodeName)
}

// nodeScope is the Nodes filter of this node's own sandboxes: its name and rows from
// before the node table; nil (every row) for a lone node.
func (s *homing) nodeScope() []string {
	if s.cfg.NodeName == "" {
		return nil
	}
	return []string{s.cfg.NodeName, ""}
}

// nodeOpen asks whether the node takes new sandboxes (Config.NodeOpen: not while it
// is drained).
func (s *homing) nodeOpen(ctx context.Context) error {
	if s.cfg.NodeOpen == nil {
		return nil
	}
	return s.cfg.NodeOpen(ctx)
}

// halt is end without the row: it stops the live sandbox id (its meter closed, halted
// at once, the rest removed in the background) and returns its last row; false when it
// is not live.
func (s *homing) halt(ctx context.Context, id, reason, label string) (domain.Sandbox, bool) {
	ls, ok := s.reg.beginEnd(id, domain.Errorf(domain.KindConflict, "sandbox %s was stopped (%s) while the command ran", id, reason))
	if !ok {
		return domain.Sandbox{}, false
	}
	if s.cfg.Meter != nil {
		// The last reading must be taken while the sandbox still exists.
		if err := s.cfg.Meter.End(ctx, ls.sb, s.cfg.Now().UTC()); err != nil {
			s.log.ErrorContext(ctx, "closing metering", logkey.SandboxID, id, logkey.Err, err)
		}
	}
	var h runtime.Handle
	_ = json.Unmarshal(ls.sb.RuntimeHandle, &h)
	// Halt is quick (kill + network removal); reclaiming memory, runtime state, mounts
	// and files can take a second or more and continues in the background, with the
	// address slot reserved and the id shielded from the sweeper until it is done.
	if err := s.cfg.Node.Halt(ctx, id, ls.sb.Slot, &h); err != nil {
		s.log.ErrorContext(ctx, "halting sandbox", logkey.SandboxID, id, logkey.Err, err)
	}
	ls.agent.conn.Close()
	countEnd(s.cfg.Recorder, label)
	sb := s.reg.halted(ls)
	teardown := func() {
		tctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.cfg.Node.Stop(tctx, id, sb.Slot, &h); err != nil {
			s.log.ErrorContext(ctx, "teardown incomplete; the sweeper will retry", logkey.SandboxID, id, logkey.Err, err)
		}
		s.reg.tornDown(id, sb.Slot)
	}
	if !s.reg.spawn(teardown) {
		teardown() // the service is closing: do not leave it for a goroutine nobody waits for
	}
	return sb, true
}
