package rest

import (
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// JSON shapes of usage, plans and invoices. The domain types carry JSON tags of their
// own, for the stores that keep invoices as JSON; /v1's contract is these, so that a
// change to what is stored never changes the API unnoticed.

type usageRowJSON struct {
	SandboxID     string    `json:"sandbox_id,omitempty"`
	TeamID        string    `json:"team_id,omitempty"`
	TemplateID    string    `json:"template_id,omitempty"`
	Day           time.Time `json:"day,omitzero"`
	WallMS        int64     `json:"wall_ms"`
	CPUMicros     int64     `json:"cpu_us"`
	MemMBSeconds  int64     `json:"memory_mb_s"`
	DiskMBSeconds int64     `json:"disk_mb_s"`
	NetRxBytes    int64     `json:"net_rx_bytes"`
	NetTxBytes    int64     `json:"net_tx_bytes"`
}

func toUsageRowJSON(u domain.UsageRow) usageRowJSON {
	return usageRowJSON{SandboxID: u.SandboxID, TeamID: u.TeamID, TemplateID: u.TemplateID, Day: u.Day.UTC(),
		WallMS: u.WallMS, CPUMicros: u.CPUMicros, MemMBSeconds: u.MemMBSeconds, DiskMBSeconds: u.DiskMBSeconds,
		NetRxBytes: u.NetRxBytes, NetTxBytes: u.NetTxBytes}
}

type usageResponse struct {
	From    time.Time      `json:"from"`
	To      time.Time      `json:"to"`
	GroupBy string         `json:"group_by"`
	Rows    []usageRowJSON `json:"rows"`
	Total   usageRowJSON   `json:"total"`
}

func toUsageResponse(rep *domain.UsageReport) usageResponse {
	out := usageResponse{From: rep.From.UTC(), To: rep.To.UTC(), GroupBy: rep.GroupBy,
		Rows: make([]usageRowJSON, 0, len(rep.Rows)), Total: toUsageRowJSON(rep.Total)}
	for _, row := range rep.Rows {
		out.Rows = append(out.Rows, toUsageRowJSON(row))
	}
	return out
}

// planJSON is a pricing plan; money is decimal strings, never floating point.
type planJSON struct {
	ID                  string `json:"id"`
	Name                string `json:"name"`
	Currency            string `json:"currency"`
	MonthlyPrice        string `json:"monthly_price"`
	PerMinute           string `json:"per_minute"`
	MinimumCharge       string `json:"minimum_charge"`
	PerCPUHour          string `json:"per_cpu_hour"`
	PerGBHour           string `json:"per_gb_hour"`
	PerGBMonthDisk      string `json:"per_gb_month_disk"`
	PerGBTraffic        string `json:"per_gb_traffic"`
	IncludedHours       string `json:"included_hours"`
	IncludedConcurrency int64  `json:"included_concurrency"`
}

func toPlanJSON(p domain.PlanInfo) planJSON {
	return planJSON{ID: p.ID, Name: p.Name, Currency: p.Currency, MonthlyPrice: p.MonthlyPrice,
		PerMinute: p.PerMinute, MinimumCharge: p.MinimumCharge, PerCPUHour: p.PerCPUHour, PerGBHour: p.PerGBHour,
		PerGBMonthDisk: p.PerGBMonthDisk, PerGBTraffic: p.PerGBTraffic, IncludedHours: p.IncludedHours,
		IncludedConcurrency: p.IncludedConcurrency}
}

type listPlansResponse struct {
	Plans []planJSON `json:"plans"`
}

// invoiceJSON is a team's bill for one period; money is decimal strings.
type invoiceJSON struct {
	ID          string            `json:"id"`
	TeamID      string            `json:"team_id"`
	PlanID      string            `json:"plan_id"`
	Currency    string            `json:"currency"`
	PeriodStart time.Time         `json:"period_start"`
	PeriodEnd   time.Time         `json:"period_end"`
	Lines       []invoiceLineJSON `json:"lines"`
	Total       string            `json:"total"`
	Final       bool              `json:"final"`
	IssuedAt    time.Time         `json:"issued_at,omitzero"`
}

type invoiceLineJSON struct {
	Description string `json:"description"`
	Quantity    string `json:"quantity"`
	Unit        string `json:"unit"`
	UnitPrice   string `json:"unit_price"`
	Amount      string `json:"amount"`
}

func toInvoiceJSON(inv *domain.Invoice) invoiceJSON {
	out := invoiceJSON{ID: inv.ID, TeamID: inv.TeamID, PlanID: inv.PlanID, Currency: inv.Currency,
		PeriodStart: inv.PeriodStart.UTC(), PeriodEnd: inv.PeriodEnd.UTC(), Lines: make([]invoiceLineJSON, 0, len(inv.Lines)),
		Total: inv.Total, Final: inv.Final, IssuedAt: inv.IssuedAt.UTC()}
	for _, l := range inv.Lines {
		out.Lines = append(out.Lines, invoiceLineJSON{Description: l.Description, Quantity: l.Quantity, Unit: l.Unit,
			UnitPrice: l.UnitPrice, Amount: l.Amount})
	}
	return out
}

type listInvoicesResponse struct {
	Invoices []invoiceJSON `json:"invoices"`
}
