package cli

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	warren "github.com/warren-sh/warren/sdk/go"
)

func (a *app) usage(args []string) error {
	fs := a.newFlags()
	from := fs.String("from", "", "start: a date (2026-11-01, UTC) or an RFC 3339 time (default: the start of this month)")
	to := fs.String("to", "", "end, exclusive, as --from (default: now)")
	by := fs.String("by", "", "group by: sandbox, day, template or none (default: the server's)")
	sandbox := fs.String("sandbox", "", "only this sandbox")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	q := warren.UsageQuery{GroupBy: *by, SandboxID: *sandbox}
	if *by != "" && !slices.Contains([]string{warren.GroupBySandbox, warren.GroupByDay, warren.GroupByTemplate, warren.GroupByNone}, *by) {
		return usagef("--by %q: group by sandbox, day, template or none", *by)
	}
	for _, d := range []struct {
		flag, v string
		dst     *time.Time
	}{{"from", *from, &q.From}, {"to", *to, &q.To}} {
		if d.v == "" {
			continue
		}
		t, err := parseDate(d.v)
		if err != nil {
			return usagef("--%s %q: give a date (2026-11-01) or an RFC 3339 time (2026-11-01T12:00:00Z)", d.flag, d.v)
		}
		*d.dst = t
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	rep, err := c.Usage(a.ctx, q)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(rep)
	}
	fmt.Fprintf(a.stdout, "Usage from %s to %s (UTC)\n\n", rep.From.UTC().Format(time.DateTime), rep.To.UTC().Format(time.DateTime))
	key := map[string]string{warren.GroupBySandbox: "SANDBOX", warren.GroupByDay: "DAY", warren.GroupByTemplate: "TEMPLATE"}[rep.GroupBy]
	header := []string{"WALL TIME", "CPU TIME", "MEMORY GiB·h", "DISK GiB·h", "NET IN", "NET OUT"}
	if key != "" {
		header = append([]string{key}, header...)
	}
	rows := make([][]string, 0, len(rep.Rows)+1)
	for _, r := range append(slices.Clone(rep.Rows), rep.Total) {
		row := usageCells(r)
		if key != "" {
			name := map[string]string{"SANDBOX": r.SandboxID, "TEMPLATE": r.TemplateID, "DAY": r.Day.UTC().Format(time.DateOnly)}[key]
			if len(rows) == len(rep.Rows) {
				name = "TOTAL"
			}
			row = append([]string{orDash(name)}, row...)
		}
		rows = append(rows, row)
	}
	return a.table(header, rows)
}

// usageCells formats a usage row for people.
func usageCells(r warren.UsageRow) []string {
	gibHours := func(mbSeconds int64) string { return strconv.FormatFloat(float64(mbSeconds)/1024/3600, 'f', 3, 64) }
	return []string{
		(time.Duration(r.WallMS) * time.Millisecond).Round(time.Second).String(),
		(time.Duration(r.CPUMicros) * time.Microsecond).Round(time.Millisecond).String(),
		gibHours(r.MemoryMBSeconds), gibHours(r.DiskMBSeconds), fmtBytes(r.NetRxBytes), fmtBytes(r.NetTxBytes),
	}
}

func (a *app) invoicesList(args []string) error {
	if _, err := a.parse(a.newFlags(), args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	invs, err := c.ListInvoices(a.ctx)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(invs)
	}
	rows := make([][]string, 0, len(invs))
	for _, inv := range invs {
		rows = append(rows, []string{inv.PeriodStart.UTC().Format("2006-01"), inv.ID, orDash(inv.PlanID), inv.Total, inv.Currency, invoiceState(&inv), fmtTime(inv.IssuedAt)})
	}
	return a.table([]string{"PERIOD", "ID", "PLAN", "TOTAL", "CURRENCY", "STATE", "ISSUED"}, rows)
}

func invoiceState(inv *warren.Invoice) string {
	if inv.Final {
		return "final"
	}
	return "draft"
}

func (a *app) invoicesGet(args []string) error {
	a.formats = []string{"csv"}
	pos, err := a.parse(a.newFlags(), args, 1, 1)
	if err != nil {
		return err
	}
	period := pos[0]
	if _, err := time.Parse("2006-01", period); err != nil {
		return usagef("PERIOD %q: give a month as YYYY-MM, e.g. %s", period, time.Now().UTC().Format("2006-01"))
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if a.output == "csv" {
		rc, err := c.InvoiceCSV(a.ctx, period)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(a.stdout, rc)
		return err
	}
	inv, err := c.GetInvoice(a.ctx, period)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(inv)
	}
	if err := a.fields([][2]string{
		{"invoice", inv.ID}, {"team", inv.TeamID}, {"plan", orDash(inv.PlanID)}, {"state", invoiceState(inv)},
		{"period", inv.PeriodStart.UTC().Format(time.DateOnly) + " to " + inv.PeriodEnd.UTC().Format(time.DateOnly)},
		{"issued", fmtTime(inv.IssuedAt)},
	}); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	rows := make([][]string, 0, len(inv.Lines)+1)
	for _, l := range inv.Lines {
		rows = append(rows, []string{l.Description, l.Quantity, l.Unit, l.UnitPrice, l.Amount})
	}
	rows = append(rows, []string{"TOTAL (" + inv.Currency + ")", "", "", "", inv.Total})
	return a.table([]string{"DESCRIPTION", "QUANTITY", "UNIT", "UNIT PRICE", "AMOUNT"}, rows)
}

func (a *app) plans(args []string) error {
	if _, err := a.parse(a.newFlags(), args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	plans, err := c.Plans(a.ctx)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(plans)
	}
	rows := make([][]string, 0, len(plans))
	for _, p := range plans {
		rows = append(rows, []string{p.ID, p.Name, p.Currency, orDash(p.MonthlyPrice), orDash(p.PerMinute), orDash(p.MinimumCharge),
			orDash(p.PerCPUHour), orDash(p.PerGBHour), orDash(p.PerGBMonthDisk), orDash(p.PerGBTraffic),
			orDash(p.IncludedHours), strconv.FormatInt(p.IncludedConcurrency, 10)})
	}
	return a.table([]string{"ID", "NAME", "CURRENCY", "MONTHLY", "PER MINUTE", "MINIMUM", "PER CPU-HOUR", "PER GB-HOUR",
		"PER GB-MONTH DISK", "PER GB TRAFFIC", "INCLUDED HOURS", "INCLUDED CONCURRENCY"}, rows)
}

func (a *app) audit(args []string) error {
	fs := a.newFlags()
	action := fs.String("action", "", "only this action, e.g. sandbox.create")
	since := fs.String("since", "", "entries at or after this date or RFC 3339 time")
	until := fs.String("until", "", "entries before this date or RFC 3339 time")
	team := fs.String("team", "", "another team's log (platform admin)")
	limit := fs.Int("limit", 50, "show at most N entries, newest first")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *limit < 1 {
		return usagef("--limit must be at least 1")
	}
	q := warren.AuditQuery{Action: *action, TeamID: *team, Limit: min(*limit, 500)}
	for _, d := range []struct {
		flag, v string
		dst     *time.Time
	}{{"since", *since, &q.Since}, {"until", *until, &q.Until}} {
		if d.v == "" {
			continue
		}
		t, err := parseDate(d.v)
		if err != nil {
			return usagef("--%s %q: give a date (2026-11-01) or an RFC 3339 time", d.flag, d.v)
		}
		*d.dst = t
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	entries := []warren.AuditEntry{}
	for e, err := range c.AllAuditEntries(a.ctx, q) {
		if err != nil {
			return err
		}
		entries = append(entries, *e)
		if len(entries) >= *limit {
			break
		}
	}
	if a.json() {
		return a.printJSON(entries)
	}
	rows := make([][]string, 0, len(entries))
	for _, e := range entries {
		actor := e.ActorType
		if e.ActorID != "" {
			actor += " " + e.ActorID
		}
		rows = append(rows, []string{strconv.FormatInt(e.ID, 10), fmtTime(e.At), actor, e.Action, orDash(e.Target), strconv.Itoa(e.Status), orDash(e.RemoteAddr), orDash(e.RequestID)})
	}
	return a.table([]string{"ID", "AT", "ACTOR", "ACTION", "TARGET", "STATUS", "FROM", "REQUEST"}, rows)
}
