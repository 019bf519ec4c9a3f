package sqlstore

import "github.com/warren-sh/warren/internal/domain"

// needTeam refuses a lookup with no team: every query of tenant rows names a team, or
// domain.AnyTeam on purpose, so a team id lost on the way fails closed.
func needTeam(teamID string) error {
	if teamID == "" {
		return domain.Invalid("team_id", "no team given for a lookup of tenant rows (name a team, or domain.AnyTeam for every team)")
	}
	return nil
}
