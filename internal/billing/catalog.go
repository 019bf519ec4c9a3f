package billing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/warren-sh/warren/internal/domain"
)

// Catalog is the set of plans a server offers and the one teams get by default.
type Catalog struct {
	// Default is the id of the plan of teams whose PlanID is "".
	Default string `json:"default"`
	// Plans in the order they were configured.
	Plans []Plan `json:"plans"`
}

// DefaultPlanID is the default plan of the built-in catalog: nothing is charged, as
// suits a self-hosted server that does not bill its users.
const DefaultPlanID = "free"

// DefaultPlans returns the built-in plans, one of each shape:
//
//   - "free": per-minute pricing at zero, so usage is shown but costs nothing, and no
//     concurrency cap of its own.
//   - "payg": pay as you go, 0.0012 per sandbox-minute with a 0.01 minimum per sandbox.
//   - "resources": per CPU-hour, memory GB-hour, disk GB-month and traffic GB.
//   - "team": 150 a month including 3,000 sandbox-hours and 100 concurrent sandboxes,
//     then 0.001 per minute.
func DefaultPlans() []Plan {
	d := decimal.RequireFromString
	return []Plan{
		{ID: "free", Name: "Free", Currency: DefaultCurrency},
		{ID: "payg", Name: "Pay as you go", Currency: DefaultCurrency,
			PerMinute: d("0.0012"), MinimumCharge: d("0.01"), IncludedConcurrency: 20},
		{ID: "resources", Name: "Resources", Currency: DefaultCurrency,
			PerCPUHour: d("0.05"), PerGBHour: d("0.016"), PerGBMonthDisk: d("0.10"),
			PerGBTraffic: d("0.09"), IncludedConcurrency: 50},
		{ID: "team", Name: "Team", Currency: DefaultCurrency,
			MonthlyPrice: d("150"), IncludedHours: d("3000"), IncludedConcurrency: 100,
			PerMinute: d("0.001")},
	}
}

// DefaultCatalog returns the built-in catalog: DefaultPlans with DefaultPlanID.
func DefaultCatalog() *Catalog {
	return &Catalog{Default: DefaultPlanID, Plans: DefaultPlans()}
}

// NewCatalog checks plans and the default plan id and returns the catalog, with each
// plan's Name and Currency defaulted. When defaultID is "" and there is exactly one
// plan, that plan is the default. Errors are KindInvalid and say how to fix the input.
func NewCatalog(defaultID string, plans []Plan) (*Catalog, error) {
	if len(plans) == 0 {
		return nil, domain.Invalid("plans", "the plan catalog has no plans; "+
			"add at least one to \"plans\", or use the built-in plans")
	}
	c := &Catalog{Default: defaultID, Plans: make([]Plan, 0, len(plans))}
	seen := make(map[string]bool, len(plans))
	for i, p := range plans {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("plans[%d]: %w", i, err)
		}
		if seen[p.ID] {
			return nil, domain.Invalid("id", "plans[%d]: plan id %q is used twice; "+
				"give every plan its own id", i, p.ID)
		}
		seen[p.ID] = true
		c.Plans = append(c.Plans, p.withDefaults())
	}
	if c.Default == "" {
		if len(plans) > 1 {
			return nil, domain.Invalid("default", "set \"default\" to the id of the plan "+
				"teams get unless told otherwise, one of: %s", c.ids())
		}
		c.Default = plans[0].ID
	}
	if !seen[c.Default] {
		return nil, domain.Invalid("default", "default plan %q is not in the catalog; "+
			"set \"default\" to one of: %s", c.Default, c.ids())
	}
	return c, nil
}

func (c *Catalog) ids() string {
	ids := make([]string, len(c.Plans))
	for i, p := range c.Plans {
		ids[i] = p.ID
	}
	return strings.Join(ids, ", ")
}

// LoadCatalog reads the plan catalog from a JSON file of the form
//
//	{"default": "payg", "plans": [{"id": "payg", "per_minute": "0.0012", ...}, ...]}
//
// or, when path is "", returns DefaultCatalog. A malformed or invalid file is a
// KindInvalid error naming the file, the plan and the field.
func LoadCatalog(path string) (*Catalog, error) {
	if path == "" {
		return DefaultCatalog(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading plan catalog: %w", err)
	}
	var raw struct {
		Default string            `json:"default"`
		Plans   []json.RawMessage `json:"plans"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, domain.Invalid("", "plan catalog %s: %v; the file must hold one JSON "+
			"object {\"default\": \"<plan id>\", \"plans\": [...]}", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, domain.Invalid("", "plan catalog %s: unexpected data after the "+
			"JSON object; the file must hold exactly one object", path)
	}
	plans := make([]Plan, len(raw.Plans))
	for i, r := range raw.Plans {
		if err := json.Unmarshal(r, &plans[i]); err != nil {
			return nil, fmt.Errorf("plan catalog %s: plans[%d]: %w", path, i, err)
		}
	}
	c, err := NewCatalog(raw.Default, plans)
	if err != nil {
		return nil, fmt.Errorf("plan catalog %s: %w", path, err)
	}
	return c, nil
}

// Plan returns the plan with the given id, or the default plan when id is "". An
// unknown id is a KindNotFound error.
func (c *Catalog) Plan(id string) (Plan, error) {
	if id == "" {
		id = c.Default
	}
	for _, p := range c.Plans {
		if p.ID == id {
			return p, nil
		}
	}
	return Plan{}, domain.NotFound("plan", id)
}
