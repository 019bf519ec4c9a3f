package warren

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/url"
	"strconv"
	"time"
)

// UsageRow is summed usage: of one sandbox, day or template, or the total. Day is
// midnight UTC of the day, for reports grouped by day.
type UsageRow struct {
	SandboxID  string `json:"sandbox_id,omitempty"`
	TemplateID string `json:"template_id,omitempty"`
	TeamID     string `json:"team_id,omitempty"`
	// Day is set in reports grouped by day.
	Day time.Time `json:"day,omitzero"`
	// WallMS is wall-clock time (ms) and CPUMicros CPU time (µs).
	WallMS    int64 `json:"wall_ms"`
	CPUMicros int64 `json:"cpu_us"`
	// MemoryMBSeconds and DiskMBSeconds integrate memory and disk over time (MB·s).
	MemoryMBSeconds int64 `json:"memory_mb_s"`
	DiskMBSeconds   int64 `json:"disk_mb_s"`
	// NetRxBytes went into the sandboxes and NetTxBytes out of them.
	NetRxBytes int64 `json:"net_rx_bytes"`
	NetTxBytes int64 `json:"net_tx_bytes"`
}

// UsageReport is usage over a time range.
type UsageReport struct {
	From    time.Time  `json:"from"`
	To      time.Time  `json:"to"`
	GroupBy string     `json:"group_by"`
	Rows    []UsageRow `json:"rows"`
	Total   UsageRow   `json:"total"`
}

// Groupings of a usage report.
const (
	GroupBySandbox  = "sandbox"
	GroupByDay      = "day"
	GroupByTemplate = "template"
	GroupByNone     = "none"
)

// UsageQuery selects a usage report; zero fields mean the defaults (the current
// month, grouped by the server's default).
type UsageQuery struct {
	From, To time.Time
	// GroupBy is GroupBySandbox, GroupByDay, GroupByTemplate or GroupByNone.
	GroupBy string
	// SandboxID restricts the report to one sandbox.
	SandboxID string
}

// Usage reports the team's usage.
func (c *Client) Usage(ctx context.Context, q UsageQuery) (*UsageReport, error) {
	v := url.Values{}
	setTime(v, "from", q.From)
	setTime(v, "to", q.To)
	setString(v, "group_by", q.GroupBy)
	setString(v, "sandbox_id", q.SandboxID)
	var r UsageReport
	if err := c.call(ctx, request{route: routeUsage, query: v}, &r); err != nil {
		return nil, err
	}
	if r.Rows == nil {
		r.Rows = []UsageRow{}
	}
	return &r, nil
}

func setTime(v url.Values, key string, t time.Time) {
	if !t.IsZero() {
		v.Set(key, t.UTC().Format(time.RFC3339))
	}
}

func setString(v url.Values, key, s string) {
	if s != "" {
		v.Set(key, s)
	}
}

// Plan is a pricing plan. Money and quantities are decimal strings ("" or "0": not
// charged), never floating point.
type Plan struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Currency string `json:"currency"`
	// MonthlyPrice is the flat price per month.
	MonthlyPrice string `json:"monthly_price"`
	// PerMinute is charged per sandbox-minute, with at least MinimumCharge per sandbox.
	PerMinute     string `json:"per_minute"`
	MinimumCharge string `json:"minimum_charge"`
	// PerCPUHour, PerGBHour (memory), PerGBMonthDisk and PerGBTraffic price resources.
	PerCPUHour     string `json:"per_cpu_hour"`
	PerGBHour      string `json:"per_gb_hour"`
	PerGBMonthDisk string `json:"per_gb_month_disk"`
	PerGBTraffic   string `json:"per_gb_traffic"`
	// IncludedHours of sandbox time and IncludedConcurrency sandboxes come with the plan.
	IncludedHours       string `json:"included_hours"`
	IncludedConcurrency int64  `json:"included_concurrency"`
}

type planList struct {
	Plans []Plan `json:"plans"`
}

// Plans lists the pricing plans.
func (c *Client) Plans(ctx context.Context) ([]Plan, error) {
	var list planList
	if err := c.call(ctx, request{route: routePlans}, &list); err != nil {
		return nil, err
	}
	if list.Plans == nil {
		list.Plans = []Plan{}
	}
	return list.Plans, nil
}

// InvoiceLine is one charge of an invoice; amounts are decimal strings.
type InvoiceLine struct {
	Description string `json:"description"`
	Quantity    string `json:"quantity"`
	Unit        string `json:"unit"`
	UnitPrice   string `json:"unit_price"`
	Amount      string `json:"amount"`
}

// Invoice is a team's bill for one month. Until the period ends it is a draft
// (Final false).
type Invoice struct {
	ID          string        `json:"id"`
	TeamID      string        `json:"team_id"`
	PlanID      string        `json:"plan_id"`
	Currency    string        `json:"currency"`
	PeriodStart time.Time     `json:"period_start"`
	PeriodEnd   time.Time     `json:"period_end"`
	Lines       []InvoiceLine `json:"lines"`
	// Total is a decimal amount, e.g. "12.34".
	Total    string    `json:"total"`
	Final    bool      `json:"final"`
	IssuedAt time.Time `json:"issued_at,omitzero"`
}

type invoiceList struct {
	Invoices []Invoice `json:"invoices"`
}

// ListInvoices lists the team's invoices, newest first: the issued ones and the
// current period's draft.
func (c *Client) ListInvoices(ctx context.Context) ([]Invoice, error) {
	var list invoiceList
	if err := c.call(ctx, request{route: routeInvoices}, &list); err != nil {
		return nil, err
	}
	if list.Invoices == nil {
		list.Invoices = []Invoice{}
	}
	return list.Invoices, nil
}

// GetInvoice returns the invoice of period ("YYYY-MM").
func (c *Client) GetInvoice(ctx context.Context, period string) (*Invoice, error) {
	var inv Invoice
	if err := c.call(ctx, request{route: routeGetInvoice, params: []string{period}}, &inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// InvoiceCSV streams the invoice of period ("YYYY-MM") as CSV. Close it when done.
func (c *Client) InvoiceCSV(ctx context.Context, period string) (io.ReadCloser, error) {
	req := request{route: routeInvoiceCSV, params: []string{period}, query: url.Values{"format": {"csv"}}, accept: "text/csv"}
	resp, err := c.send(ctx, req)
	if err != nil {
		return nil, err
	}
	return &readCloser{ctx: ctx, rc: resp.Body, what: "invoice " + period}, nil
}

// AuditEntry is one recorded action.
type AuditEntry struct {
	ID int64     `json:"id"`
	At time.Time `json:"at"`
	// ActorType is key, user or system; ActorID the key or user id.
	ActorType string `json:"actor_type"`
	ActorID   string `json:"actor_id"`
	// Action names what was done, e.g. sandbox.create; Target the object's id.
	Action string `json:"action"`
	Target string `json:"target"`
	// Status is the HTTP status of the request.
	Status     int               `json:"status"`
	RemoteAddr string            `json:"remote_addr"`
	RequestID  string            `json:"request_id"`
	Details    map[string]string `json:"details"`
}

// AuditQuery selects audit entries; zero fields match everything.
type AuditQuery struct {
	Action       string
	Since, Until time.Time
	// Before is AuditPage.Next of the previous page.
	Before string
	// Limit is the page size (the server's default when 0).
	Limit int
	// TeamID selects another team's log (platform admins only).
	TeamID string
}

// AuditPage is one page of the audit log, newest first.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	// Next fetches the next, older page (as AuditQuery.Before); "" on the last page.
	Next string `json:"next"`
}

// Audit returns one page of the team's audit log; see AllAuditEntries to iterate.
func (c *Client) Audit(ctx context.Context, q AuditQuery) (*AuditPage, error) {
	v := url.Values{}
	setString(v, "action", q.Action)
	setTime(v, "since", q.Since)
	setTime(v, "until", q.Until)
	setString(v, "before", q.Before)
	setString(v, "team_id", q.TeamID)
	if q.Limit < 0 {
		return nil, fmt.Errorf("warren: Audit: negative limit %d", q.Limit)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var p AuditPage
	if err := c.call(ctx, request{route: routeAudit, query: v}, &p); err != nil {
		return nil, err
	}
	if p.Entries == nil {
		p.Entries = []AuditEntry{}
	}
	return &p, nil
}

// AllAuditEntries iterates over the audit entries matching q, newest first,
// following the pages (q.Limit is the page size). An error ends the iteration after
// yielding it.
func (c *Client) AllAuditEntries(ctx context.Context, q AuditQuery) iter.Seq2[*AuditEntry, error] {
	return func(yield func(*AuditEntry, error) bool) {
		for {
			p, err := c.Audit(ctx, q)
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range p.Entries {
				if !yield(&p.Entries[i], nil) {
					return
				}
			}
			if p.Next == "" || len(p.Entries) == 0 {
				return
			}
			q.Before = p.Next
		}
	}
}
