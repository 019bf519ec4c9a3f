package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	warren "github.com/warren-sh/warren/sdk/go"
)

func (a *app) keysCreate(args []string) error {
	fs := a.newFlags()
	name := fs.String("name", "", "a label to tell the key apart (or give NAME)")
	team := fs.String("team", "", "create the key for this team (platform admin)")
	var scopes listFlag
	fs.Var(&scopes, "scope", "what the key may do (repeatable or comma-separated): "+strings.Join(allScopes, ", ")+"; default: the creator's scopes")
	expires := fs.String("expires", "", "when the key stops working: a duration (90m, 12h, 30d) or a time (2027-01-31 or RFC 3339)")
	pos, err := a.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		if *name != "" && *name != pos[0] {
			return usagef("give the name once: NAME or --name")
		}
		*name = pos[0]
	}
	opts := warren.KeyOptions{Name: *name, Scopes: scopes, TeamID: *team}
	if *expires != "" {
		if opts.ExpiresIn, opts.ExpiresAt, err = parseExpiry(*expires, time.Now()); err != nil {
			return err
		}
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	k, err := c.CreateKey(a.ctx, opts)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(k)
	}
	if err := a.fields([][2]string{
		{"id", k.ID}, {"name", orDash(k.Name)}, {"team", orDash(k.TeamID)}, {"prefix", k.Prefix},
		{"scopes", orDash(strings.Join(k.Scopes, ","))}, {"created", fmtTime(k.CreatedAt)}, {"expires", fmtTime(k.ExpiresAt)}, {"key", k.Secret},
	}); err != nil {
		return err
	}
	fmt.Fprintln(a.stderr, "\nThis is the only time the key is shown; store it now.")
	return nil
}

var allScopes = []string{warren.ScopeSandboxesRead, warren.ScopeSandboxesWrite, warren.ScopeKeysRead, warren.ScopeKeysWrite,
	warren.ScopeUsageRead, warren.ScopeTeamRead, warren.ScopeTeamWrite, warren.ScopeAuditRead, warren.ScopeAdmin}

// parseExpiry reads --expires: a duration (Go syntax, plus whole days as "30d") or a
// time (a date, midnight UTC, or RFC 3339).
func parseExpiry(s string, now time.Time) (time.Duration, time.Time, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, time.Time{}, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return 0, time.Time{}, usagef("--expires %q: the duration must be positive", s)
		}
		return d, time.Time{}, nil
	}
	t, err := parseDate(s)
	if err != nil {
		return 0, time.Time{}, usagef("--expires %q: give a duration (90m, 12h, 30d) or a time (2027-01-31, 2027-01-31T12:00:00Z)", s)
	}
	if !t.After(now) {
		return 0, time.Time{}, usagef("--expires %q is in the past", s)
	}
	return 0, t, nil
}

// parseDate reads a date (YYYY-MM-DD, midnight UTC) or an RFC 3339 time.
func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

func (a *app) keysList(args []string) error {
	if _, err := a.parse(a.newFlags(), args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	keys, err := c.ListKeys(a.ctx)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(keys)
	}
	rows := make([][]string, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, []string{k.ID, orDash(k.Name), k.Prefix, fmtTime(k.CreatedAt), fmtTime(k.LastUsedAt), fmtTime(k.RevokedAt),
			strconv.FormatBool(k.Admin), orDash(strings.Join(k.Scopes, ",")), fmtTime(k.ExpiresAt)})
	}
	return a.table([]string{"ID", "NAME", "PREFIX", "CREATED", "LAST USED", "REVOKED", "ADMIN", "SCOPES", "EXPIRES"}, rows)
}

func (a *app) keysRevoke(args []string) error {
	return a.removeByID(args, "revoked", "", func(c *warren.Client, id string) error { return c.RevokeKey(a.ctx, id) })
}

func (a *app) templates(args []string) error {
	if _, err := a.parse(a.newFlags(), args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	ts, err := c.Templates(a.ctx)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(ts)
	}
	rows := make([][]string, 0, len(ts))
	for _, t := range ts {
		size := "-"
		if t.SizeBytes > 0 {
			size = fmtBytes(t.SizeBytes)
		}
		owner := "team"
		if t.BuiltIn {
			owner = "built-in"
		}
		rows = append(rows, []string{t.ID, owner, strconv.FormatBool(t.Ready), fmtTime(t.BuiltAt), size, orDash(t.Description)})
	}
	return a.table([]string{"ID", "OWNER", "READY", "BUILT", "SIZE", "DESCRIPTION"}, rows)
}
