package sandbox

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// requestedNetwork is the normalised policy a create asks for, or inherited when it
// asks for none (nil Network).
func requestedNetwork(req domain.CreateSandbox, inherited domain.NetworkPolicy) (domain.NetworkPolicy, error) {
	if req.Network == nil {
		return inherited, nil
	}
	return domain.NewNetworkPolicy(req.Network.AllowOut, req.Network.DenyOut)
}

// networking is the part of the Service that changes sandboxes' egress policies.
type networking struct{ *Service }

// SetNetwork implements domain.SandboxService. The new policy is written first and then
// applied: to a running sandbox at once (its new connections meet it; established ones
// go on), to a paused one when it resumes (which reads its row). An update that meets a
// resume in flight waits for it and applies the policy to the resumed sandbox, so a
// resume that read the row before the write cannot leave the old policy in force.
// Updates are serialised (netMu): the last one written is the one applied.
func (s *networking) SetNetwork(ctx context.Context, p domain.Principal, id string, np domain.NetworkPolicy) (_ *domain.Sandbox, err error) {
	ctx, span := startSpan(ctx, "sandbox.set_network", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return nil, err
	}
	np, err = domain.NewNetworkPolicy(np.AllowOut, np.DenyOut)
	if err != nil {
		return nil, err
	}
	row, err := s.get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	s.netMu.Lock()
	defer s.netMu.Unlock()
	_, resuming := s.reg.resumingCh(id)
	switch {
	case row.State.Terminal():
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is %s; its network policy can no longer change", id, row.State)
	case row.State == domain.StateStarting && !resuming && !s.reg.running(id):
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is still starting; set its network policy once it runs", id)
	}
	if err := s.cfg.Store.SetSandboxNetwork(ctx, p.TeamID, id, np); err != nil {
		return nil, err
	}
	if ch, ok := s.reg.resumingCh(id); ok {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if sb, ok := s.reg.setNetwork(id, np); ok {
		if err := s.cfg.Node.Reattach(context.WithoutCancel(ctx), &sb); err != nil {
			return nil, domain.Errorf(domain.KindUnavailable, "the new network policy of sandbox %s is stored but could not be applied (%v); try again", id, err)
		}
		s.log.Info("network policy applied", logkey.SandboxID, id)
		return &sb, nil
	}
	out, err := s.cfg.Store.GetSandbox(ctx, p.TeamID, id)
	if err != nil {
		return nil, err
	}
	return out, nil
}
