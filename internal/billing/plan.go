package billing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/warren-sh/warren/internal/domain"
)

// DefaultCurrency is the currency of a plan that names none.
const DefaultCurrency = "USD"

// Plan is a price list. Zero prices are not charged. One plan can mix every kind of
// charge; the built-in plans show the three usual shapes: per-minute with a minimum
// charge ("free", "payg"), per resource ("resources") and a monthly package with
// included hours and per-minute overage ("team").
//
// In JSON every price is a decimal string ("0.0012"); "" or a missing field means 0.
type Plan struct {
	// ID names the plan in configuration and in a team's plan_id.
	ID string
	// Name is shown to people; it defaults to ID.
	Name string
	// Currency is an ISO 4217 code, DefaultCurrency when empty.
	Currency string
	// MonthlyPrice is the package price per billing period.
	MonthlyPrice decimal.Decimal
	// PerMinute is the price of one sandbox-minute of wall time beyond IncludedHours.
	PerMinute decimal.Decimal
	// MinimumCharge is the least a sandbox with billable minutes costs in a period
	// (applies to the per-minute component only; see the package documentation).
	MinimumCharge decimal.Decimal
	// PerCPUHour is the price of one hour of CPU time.
	PerCPUHour decimal.Decimal
	// PerGBHour is the price of one GB (1,024 MB) of memory held for one hour.
	PerGBHour decimal.Decimal
	// PerGBMonthDisk is the price of one GB (1,024 MB) of disk held for 30 days.
	PerGBMonthDisk decimal.Decimal
	// PerGBTraffic is the price of one GB (1,024³ bytes) of network traffic, in + out.
	PerGBTraffic decimal.Decimal
	// IncludedHours are sandbox-hours covered by MonthlyPrice each period.
	IncludedHours decimal.Decimal
	// IncludedConcurrency is how many sandboxes the plan lets a team run at once (the
	// server turns it into the team's max_sandboxes quota); 0 sets no cap.
	IncludedConcurrency int64
}

// planJSON is the wire form of a Plan: decimals as strings so that they round-trip
// exactly and so that a bad one can be reported by field name.
type planJSON struct {
	ID                  string  `json:"id"`
	Name                string  `json:"name"`
	Currency            string  `json:"currency"`
	MonthlyPrice        decText `json:"monthly_price"`
	PerMinute           decText `json:"per_minute"`
	MinimumCharge       decText `json:"minimum_charge"`
	PerCPUHour          decText `json:"per_cpu_hour"`
	PerGBHour           decText `json:"per_gb_hour"`
	PerGBMonthDisk      decText `json:"per_gb_month_disk"`
	PerGBTraffic        decText `json:"per_gb_traffic"`
	IncludedHours       decText `json:"included_hours"`
	IncludedConcurrency int64   `json:"included_concurrency"`
}

// planFields lists the JSON fields of a plan, for error messages.
const planFields = "id, name, currency, monthly_price, per_minute, minimum_charge, " +
	"per_cpu_hour, per_gb_hour, per_gb_month_disk, per_gb_traffic, included_hours, " +
	"included_concurrency"

// decText is the text of a decimal in JSON: a string, or a bare number literal (kept as
// written, never converted to floating point).
type decText string

// UnmarshalJSON accepts "1.5", 1.5 and null.
func (t *decText) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case string(data) == "null":
		*t = ""
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*t = decText(s)
	case len(data) > 0 && (data[0] == '-' || data[0] >= '0' && data[0] <= '9'):
		*t = decText(data)
	default:
		return fmt.Errorf("%s is not a decimal number", data)
	}
	return nil
}

// decField ties a plan's decimal to its JSON name.
type decField struct {
	name string
	text *decText
	val  *decimal.Decimal
}

func (p *Plan) decFields(w *planJSON) []decField {
	return []decField{
		{"monthly_price", &w.MonthlyPrice, &p.MonthlyPrice},
		{"per_minute", &w.PerMinute, &p.PerMinute},
		{"minimum_charge", &w.MinimumCharge, &p.MinimumCharge},
		{"per_cpu_hour", &w.PerCPUHour, &p.PerCPUHour},
		{"per_gb_hour", &w.PerGBHour, &p.PerGBHour},
		{"per_gb_month_disk", &w.PerGBMonthDisk, &p.PerGBMonthDisk},
		{"per_gb_traffic", &w.PerGBTraffic, &p.PerGBTraffic},
		{"included_hours", &w.IncludedHours, &p.IncludedHours},
	}
}

// MarshalJSON writes the plan with its decimals as strings ("0.0012", "0" when free).
func (p Plan) MarshalJSON() ([]byte, error) {
	w := planJSON{ID: p.ID, Name: p.Name, Currency: p.Currency,
		IncludedConcurrency: p.IncludedConcurrency}
	for _, f := range p.decFields(&w) {
		*f.text = decText(f.val.String())
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads a plan, rejecting unknown fields and malformed decimals with an
// error that names the field (KindInvalid). It does not check the values; see Validate.
func (p *Plan) UnmarshalJSON(data []byte) error {
	var w planJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return planDecodeError(err)
	}
	np := Plan{ID: w.ID, Name: w.Name, Currency: w.Currency,
		IncludedConcurrency: w.IncludedConcurrency}
	for _, f := range np.decFields(&w) {
		s := strings.TrimSpace(string(*f.text))
		if s == "" {
			continue
		}
		d, err := decimal.NewFromString(s)
		if err != nil {
			return domain.Invalid(f.name, "plan %q: %s %q is not a decimal number; "+
				"write it as a string of digits with an optional point, such as \"0.0012\"",
				w.ID, f.name, s)
		}
		*f.val = d
	}
	*p = np
	return nil
}

// planDecodeError explains a JSON error inside one plan object.
func planDecodeError(err error) error {
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return domain.Invalid(name, "plan: unknown field %q; the known fields are %s",
			name, planFields)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return domain.Invalid(te.Field, "plan: %s must be a JSON %s, not a %s",
			te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return domain.Invalid("", "plan: %v", err)
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"):
		return "whole number"
	case goKind == "string":
		return "string"
	}
	return goKind
}

var (
	planIDPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// withDefaults fills in the Name and Currency a plan may leave out.
func (p Plan) withDefaults() Plan {
	if p.Name == "" {
		p.Name = p.ID
	}
	if p.Currency == "" {
		p.Currency = DefaultCurrency
	}
	return p
}

// Validate checks that the plan can be billed on: a well-formed id and currency and no
// negative amounts. Errors are KindInvalid, name the field and say how to fix it.
func (p Plan) Validate() error {
	if !planIDPattern.MatchString(p.ID) {
		return domain.Invalid("id", "plan id %q must be 1-64 characters of a-z, 0-9, '-' "+
			"and '_', starting with a letter or digit, such as \"team\"", p.ID)
	}
	if p.Currency != "" && !currencyPattern.MatchString(p.Currency) {
		return domain.Invalid("currency", "plan %q: currency %q must be a three-letter "+
			"upper-case ISO 4217 code such as \"USD\" or \"EUR\"", p.ID, p.Currency)
	}
	var w planJSON
	for _, f := range p.decFields(&w) {
		if f.val.IsNegative() {
			return domain.Invalid(f.name, "plan %q: %s is %s, but it cannot be negative; "+
				"use 0 (or leave the field out) for no charge", p.ID, f.name, f.val.String())
		}
	}
	if p.IncludedConcurrency < 0 {
		return domain.Invalid("included_concurrency", "plan %q: included_concurrency is %d, "+
			"but it cannot be negative; use 0 for no cap", p.ID, p.IncludedConcurrency)
	}
	return nil
}
