package domain

import "time"

// UsageDelta is resource use of one sandbox measured over one sampling interval, added
// to the sandbox's bucket for Day. Quantities are integers so that billing on them is
// exact: memory and disk are integrated over time (MB·s), CPU is in microseconds.
type UsageDelta struct {
	SandboxID  string
	TeamID     string
	TemplateID string
	// Day is the UTC day (midnight) the interval is booked on.
	Day           time.Time
	WallMS        int64
	CPUMicros     int64
	MemMBSeconds  int64
	DiskMBSeconds int64
	NetRxBytes    int64
	NetTxBytes    int64
}

// Meter is the running state of one sandbox's metering: when it was last sampled and
// the cumulative counter readings at that time, so that a restarted server continues
// where the last durable sample left off.
type Meter struct {
	SandboxID string
	TeamID    string
	// StartedAt is when metering began (the sandbox's start).
	StartedAt time.Time
	SampledAt time.Time
	// Cumulative counters as last read from the runtime and the network.
	CPUMicros  int64
	NetRxBytes int64
	NetTxBytes int64
	// ClosedAt is set once the sandbox ended and its final interval was booked.
	ClosedAt time.Time
}

// UsageRow is summed usage: of one sandbox on one day, or of a group of them.
type UsageRow struct {
	SandboxID     string
	TeamID        string
	TemplateID    string
	Day           time.Time
	WallMS        int64
	CPUMicros     int64
	MemMBSeconds  int64
	DiskMBSeconds int64
	NetRxBytes    int64
	NetTxBytes    int64
}

// Add adds o's quantities to u.
func (u *UsageRow) Add(o UsageRow) {
	u.WallMS += o.WallMS
	u.CPUMicros += o.CPUMicros
	u.MemMBSeconds += o.MemMBSeconds
	u.DiskMBSeconds += o.DiskMBSeconds
	u.NetRxBytes += o.NetRxBytes
	u.NetTxBytes += o.NetTxBytes
}

// UsageFilter selects usage buckets: a team's (every team's with AnyTeam; "" is refused),
// with Day in [From, To) when set, of one sandbox when SandboxID is set.
type UsageFilter struct {
	TeamID    string
	SandboxID string
	From      time.Time
	To        time.Time
}

// Invoice is a team's bill for one billing period. Money amounts are decimal strings
// ("12.34"), never floating point. The JSON tags are the form the stores keep an issued
// invoice in; /v1's body is its own type (api/rest).
type Invoice struct {
	ID          string        `json:"id"`
	TeamID      string        `json:"team_id"`
	PlanID      string        `json:"plan_id"`
	Currency    string        `json:"currency"`
	PeriodStart time.Time     `json:"period_start"`
	PeriodEnd   time.Time     `json:"period_end"`
	Lines       []InvoiceLine `json:"lines"`
	Total       string        `json:"total"`
	// Final is true once the period has ended and the invoice was issued; open periods
	// show a draft that still grows.
	Final    bool      `json:"final"`
	IssuedAt time.Time `json:"issued_at,omitzero"`
}

// InvoiceLine is one charge: quantity x unit price, rounded to the cent.
type InvoiceLine struct {
	Description string `json:"description"`
	Quantity    string `json:"quantity"`
	Unit        string `json:"unit"`
	UnitPrice   string `json:"unit_price"`
	Amount      string `json:"amount"`
}
