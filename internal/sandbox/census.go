package sandbox

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
)

// Count is how many sandboxes are in one state with one template, runtime and team.
type Count struct {
	State                     domain.SandboxState
	TemplateID, Runtime, Team string
	N                         int
}

// Census counts the sandboxes of s that are starting, running or paused, by template,
// runtime and team, for the metrics: the running ones from the registry, the others
// from the store (usually few rows; each metrics scrape calls it).
func Census(ctx context.Context, s *Service) ([]Count, error) {
	type key struct {
		state                   domain.SandboxState
		template, runtime, team string
	}
	sum := map[key]int{}
	for _, sb := range s.reg.rows() {
		sum[key{domain.StateRunning, sb.TemplateID, sb.RuntimeName, sb.TeamID}]++
	}
	f := domain.SandboxFilter{TeamID: domain.AnyTeam, States: []domain.SandboxState{domain.StateStarting, domain.StatePaused}, Limit: 1000}
	for pages := 0; pages < 100; pages++ {
		rows, next, err := s.cfg.Store.ListSandboxes(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, sb := range rows {
			sum[key{sb.State, sb.TemplateID, sb.RuntimeName, sb.TeamID}]++
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	out := make([]Count, 0, len(sum))
	for k, n := range sum {
		out = append(out, Count{State: k.state, TemplateID: k.template, Runtime: k.runtime, Team: k.team, N: n})
	}
	return out, nil
}
