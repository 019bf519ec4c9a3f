package cli

import (
	"flag"
	"strconv"

	warren "github.com/warren-sh/warren/sdk/go"
)

// quotaFlags are the quota options of teams create and teams update.
type quotaFlags struct {
	fs                                                           *flag.FlagSet
	sandboxes, memory, disk, requests, snapshots, tpls, tplBytes *int64
	cpu                                                          *float64
}

func addQuotaFlags(fs *flag.FlagSet) *quotaFlags {
	return &quotaFlags{
		fs:        fs,
		sandboxes: fs.Int64("max-sandboxes", 0, "most sandboxes at once (0: no limit)"),
		cpu:       fs.Float64("max-cpu", 0, "most CPU cores at once (0: no limit)"),
		memory:    fs.Int64("max-memory-mb", 0, "most memory in MiB at once (0: no limit)"),
		disk:      fs.Int64("max-disk-mb", 0, "most disk in MiB at once (0: no limit)"),
		requests:  fs.Int64("rpm", 0, "API requests per minute (0: no limit)"),
		snapshots: fs.Int64("max-snapshots", 0, "most snapshots kept (0: no limit)"),
		tpls:      fs.Int64("max-templates", 0, "most templates of its own kept (0: no limit)"),
		tplBytes:  fs.Int64("max-template-mb", 0, "most MiB its own templates hold (0: no limit)"),
	}
}

// patch returns the quota options given on the command line as a patch, or nil when
// none was given.
func (f *quotaFlags) patch() (*warren.QuotaPatch, error) {
	var p warren.QuotaPatch
	given := false
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "max-sandboxes":
			p.MaxSandboxes = f.sandboxes
		case "max-cpu":
			p.MaxCPUCores = f.cpu
		case "max-memory-mb":
			p.MaxMemoryMB = f.memory
		case "max-disk-mb":
			p.MaxDiskMB = f.disk
		case "rpm":
			p.RequestsPerMinute = f.requests
		case "max-snapshots":
			p.MaxSnapshots = f.snapshots
		case "max-templates":
			p.MaxTemplates = f.tpls
		case "max-template-mb":
			p.MaxTemplateMB = f.tplBytes
		default:
			return
		}
		given = true
	})
	if *f.sandboxes < 0 || *f.cpu < 0 || *f.memory < 0 || *f.disk < 0 || *f.requests < 0 || *f.snapshots < 0 ||
		*f.tpls < 0 || *f.tplBytes < 0 {
		return nil, usagef("quota values must not be negative (0 means no limit)")
	}
	if !given {
		return nil, nil
	}
	return &p, nil
}

// given reports whether the option name was on the command line.
func given(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(fl *flag.Flag) { found = found || fl.Name == name })
	return found
}

func (a *app) teamsCreate(args []string) error {
	fs := a.newFlags()
	quota := addQuotaFlags(fs)
	plan := fs.String("plan", "", "pricing plan id (see \"warren plans\"; default: the server's)")
	spend := fs.String("spend-limit", "", "most the team may spend per month, a decimal amount (default: none)")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	// Quota options not given keep the server's default quota.
	q, err := quota.patch()
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	opts := warren.TeamOptions{Name: pos[0], Quota: q}
	if given(fs, "plan") {
		opts.PlanID = plan
	}
	if given(fs, "spend-limit") {
		opts.SpendLimit = spend
	}
	team, err := c.CreateTeam(a.ctx, opts)
	if err != nil {
		return err
	}
	return a.showTeam(team)
}

func (a *app) teamsList(args []string) error {
	if _, err := a.parse(a.newFlags(), args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	teams, err := c.ListTeams(a.ctx)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(teams)
	}
	rows := make([][]string, 0, len(teams))
	for _, t := range teams {
		q := t.Quota
		rows = append(rows, []string{t.ID, t.Name, orDash(t.PlanID), orDash(t.SpendLimit), limitText(q.MaxSandboxes), floatLimit(q.MaxCPUCores),
			limitText(q.MaxMemoryMB), limitText(q.MaxDiskMB), limitText(q.RequestsPerMinute), limitText(q.MaxSnapshots), fmtTime(t.CreatedAt)})
	}
	return a.table([]string{"ID", "NAME", "PLAN", "SPEND LIMIT", "SANDBOXES", "CPU", "MEMORY MIB", "DISK MIB", "RPM", "SNAPSHOTS", "CREATED"}, rows)
}

func (a *app) teamsGet(args []string) error {
	pos, err := a.parse(a.newFlags(), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	team, err := c.GetTeam(a.ctx, pos[0])
	if err != nil {
		return err
	}
	return a.showTeam(team)
}

func (a *app) teamsUpdate(args []string) error {
	fs := a.newFlags()
	name := fs.String("name", "", "new name")
	quota := addQuotaFlags(fs)
	plan := fs.String("plan", "", "pricing plan id")
	spend := fs.String("spend-limit", "", "most the team may spend per month (\"\" for none)")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	// Only the quota options given change; the server keeps the others.
	q, err := quota.patch()
	if err != nil {
		return err
	}
	u := warren.TeamUpdate{Quota: q}
	if given(fs, "name") {
		u.Name = name
	}
	if given(fs, "plan") {
		u.PlanID = plan
	}
	if given(fs, "spend-limit") {
		u.SpendLimit = spend
	}
	if u == (warren.TeamUpdate{}) {
		return usagef("nothing to change: give --name, a quota option, --plan or --spend-limit")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	team, err := c.UpdateTeam(a.ctx, pos[0], u)
	if err != nil {
		return err
	}
	return a.showTeam(team)
}

func (a *app) showTeam(t *warren.Team) error {
	if a.json() {
		return a.printJSON(t)
	}
	q := t.Quota
	var u warren.QuotaUsage
	if t.Usage != nil {
		u = *t.Usage
	}
	return a.fields([][2]string{
		{"id", t.ID}, {"name", t.Name}, {"plan", orDash(t.PlanID)}, {"spend limit", orDash(t.SpendLimit)},
		{"sandboxes", usageOf(strconv.FormatInt(u.Sandboxes, 10), limitText(q.MaxSandboxes), t.Usage != nil)},
		{"cpu cores", usageOf(strconv.FormatFloat(u.CPUCores, 'g', -1, 64), floatLimit(q.MaxCPUCores), t.Usage != nil)},
		{"memory MiB", usageOf(strconv.FormatInt(u.MemoryMB, 10), limitText(q.MaxMemoryMB), t.Usage != nil)},
		{"disk MiB", usageOf(strconv.FormatInt(u.DiskMB, 10), limitText(q.MaxDiskMB), t.Usage != nil)},
		{"requests/min", limitText(q.RequestsPerMinute)},
		{"snapshots", usageOf(strconv.FormatInt(u.Snapshots, 10), limitText(q.MaxSnapshots), t.Usage != nil)},
		{"templates", usageOf(strconv.FormatInt(u.Templates, 10), limitText(q.MaxTemplates), t.Usage != nil)},
		{"template MiB", usageOf(strconv.FormatInt(u.TemplateMB, 10), limitText(q.MaxTemplateMB), t.Usage != nil)},
		{"created", fmtTime(t.CreatedAt)},
	})
}

// usageOf shows "used of limit" ("used (no limit)"), or the limit alone when usage is
// unknown (an update's answer has none).
func usageOf(used, limit string, known bool) string {
	switch {
	case !known:
		return limit
	case limit == "no limit":
		return used + " (no limit)"
	}
	return used + " of " + limit
}

func limitText(n int64) string {
	if n == 0 {
		return "no limit"
	}
	return strconv.FormatInt(n, 10)
}

func floatLimit(f float64) string {
	if f == 0 {
		return "no limit"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
