package billing

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

func TestLoadCatalogFile(t *testing.T) {
	c, err := LoadCatalog("testdata/plans.json")
	if err != nil {
		t.Fatal(err)
	}
	if c.Default != "starter" || len(c.Plans) != 3 {
		t.Fatalf("catalog = %+v", c)
	}
	def, err := c.Plan("")
	if err != nil || def.ID != "starter" {
		t.Fatalf("Plan(\"\") = %+v, %v; want the default", def, err)
	}
	tests := []struct {
		id                string
		check             func(p Plan) bool
		currency, explain string
	}{
		{"starter", func(p Plan) bool {
			return p.PerMinute.Equal(d("0.0012")) && p.MinimumCharge.Equal(d("0.01")) &&
				p.IncludedConcurrency == 5 && p.MonthlyPrice.IsZero()
		}, "USD", "per-minute with minimum, currency defaulted"},
		{"metered", func(p Plan) bool {
			return p.PerCPUHour.Equal(d("0.05")) && p.PerGBHour.Equal(d("0.016")) &&
				p.PerGBMonthDisk.Equal(d("0.1")) && p.PerGBTraffic.String() == "0.09" &&
				p.MinimumCharge.IsZero()
		}, "EUR", "resources; a bare JSON number kept exact; \"\" is zero"},
		{"business", func(p Plan) bool {
			return p.MonthlyPrice.Equal(d("499")) && p.IncludedHours.Equal(d("10000")) &&
				p.IncludedConcurrency == 250 && p.PerMinute.Equal(d("0.0009"))
		}, "USD", "package"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			p, err := c.Plan(tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(p) || p.Currency != tt.currency {
				t.Errorf("%s: plan = %+v", tt.explain, p)
			}
		})
	}
	if _, err := c.Plan("gold"); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("Plan(gold) error = %v, want not found", err)
	}
}

func TestLoadCatalogDefaults(t *testing.T) {
	c, err := LoadCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewCatalog(c.Default, c.Plans); err != nil {
		t.Fatalf("built-in catalog does not validate: %v", err)
	}
	p, err := c.Plan("")
	if err != nil || p.ID != DefaultPlanID {
		t.Fatalf("default plan = %+v, %v", p, err)
	}
	// The three plan shapes are there.
	shapes := map[string]func(Plan) bool{
		"per-minute with minimum": func(p Plan) bool {
			return p.PerMinute.IsPositive() && p.MinimumCharge.IsPositive()
		},
		"resources": func(p Plan) bool {
			return p.PerCPUHour.IsPositive() && p.PerGBHour.IsPositive() &&
				p.PerGBMonthDisk.IsPositive() && p.PerGBTraffic.IsPositive()
		},
		"package": func(p Plan) bool {
			return p.MonthlyPrice.IsPositive() && p.IncludedHours.IsPositive() &&
				p.IncludedConcurrency > 0 && p.PerMinute.IsPositive()
		},
	}
	for shape, is := range shapes {
		found := false
		for _, p := range c.Plans {
			found = found || is(p)
		}
		if !found {
			t.Errorf("no built-in plan of shape %s", shape)
		}
	}
}

func TestLoadCatalogErrors(t *testing.T) {
	const good = `{"id": "payg", "per_minute": "0.01"}`
	tests := []struct {
		name      string
		json      string
		wantField string
		wantMsg   []string
	}{
		{"not JSON", `{"default": "payg", "plans": [`, "", []string{"one JSON object"}},
		{"unknown top-level field", `{"defualt": "payg", "plans": [` + good + `]}`, "",
			[]string{`unknown field "defualt"`}},
		{"trailing data", `{"default": "payg", "plans": [` + good + `]} {}`, "",
			[]string{"exactly one object"}},
		{"no plans", `{"default": "payg", "plans": []}`, "plans", []string{"at least one"}},
		{"negative price", `{"default": "payg", "plans": [{"id": "payg", "per_minute": "-0.01"}]}`,
			"per_minute", []string{`plans[0]`, `plan "payg"`, "cannot be negative", "use 0"}},
		{"bad decimal", `{"default": "payg", "plans": [{"id": "payg", "per_gb_hour": "0,01"}]}`,
			"per_gb_hour", []string{`plans[0]`, `plan "payg": per_gb_hour "0,01" is not a decimal`, `"0.0012"`}},
		{"bad number literal", `{"default": "payg", "plans": [{"id": "payg", "per_minute": 1e}]}`,
			"", []string{"invalid character"}},
		{"unknown default", `{"default": "gold", "plans": [` + good + `, {"id": "team"}]}`,
			"default", []string{`"gold"`, "one of: payg, team"}},
		{"no default of two", `{"plans": [` + good + `, {"id": "team"}]}`,
			"default", []string{"one of: payg, team"}},
		{"duplicate ids", `{"default": "payg", "plans": [` + good + `, ` + good + `]}`,
			"id", []string{`plans[1]`, `"payg" is used twice`}},
		{"unknown plan field", `{"default": "payg", "plans": [{"id": "payg", "per_minutes": "1"}]}`,
			"per_minutes", []string{`plans[0]`, `unknown field "per_minutes"`, "per_minute,"}},
		{"concurrency not a number", `{"default": "payg", "plans": [{"id": "payg", "included_concurrency": "ten"}]}`,
			"included_concurrency", []string{"whole number"}},
		{"negative concurrency", `{"default": "payg", "plans": [{"id": "payg", "included_concurrency": -1}]}`,
			"included_concurrency", []string{"cannot be negative"}},
		{"bad id", `{"default": "Team Plan", "plans": [{"id": "Team Plan"}]}`,
			"id", []string{`"Team Plan"`, "a-z"}},
		{"missing id", `{"plans": [{"name": "Nameless"}]}`, "id", []string{`plan id ""`}},
		{"bad currency", `{"default": "payg", "plans": [{"id": "payg", "currency": "usd"}]}`,
			"currency", []string{`plan "payg"`, `"usd"`, `"EUR"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "plans.json")
			if err := os.WriteFile(path, []byte(tt.json), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadCatalog(path)
			if err == nil {
				t.Fatalf("loaded %+v, want an error", c)
			}
			if !domain.IsKind(err, domain.KindInvalid) {
				t.Errorf("kind = %v, want invalid: %v", domain.KindOf(err), err)
			}
			if f := domain.FieldOf(err); f != tt.wantField {
				t.Errorf("field = %q, want %q: %v", f, tt.wantField, err)
			}
			for _, m := range append(tt.wantMsg, path) {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestLoadCatalogMissingFile(t *testing.T) {
	_, err := LoadCatalog(filepath.Join(t.TempDir(), "nope.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error = %v, want not exist", err)
	}
}

func TestNewCatalogSinglePlan(t *testing.T) {
	c, err := NewCatalog("", []Plan{{ID: "only"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Plan("")
	if err != nil || p.ID != "only" || p.Name != "only" || p.Currency != "USD" {
		t.Errorf("Plan(\"\") = %+v, %v", p, err)
	}
}

func TestPlanJSON(t *testing.T) {
	cat := DefaultCatalog()
	payg, err := cat.Plan("payg")
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(payg)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"payg","name":"Pay as you go","currency":"USD","monthly_price":"0",` +
		`"per_minute":"0.0012","minimum_charge":"0.01","per_cpu_hour":"0","per_gb_hour":"0",` +
		`"per_gb_month_disk":"0","per_gb_traffic":"0","included_hours":"0","included_concurrency":20}`
	if string(got) != want {
		t.Errorf("marshal:\n got %s\nwant %s", got, want)
	}
	// Every built-in plan survives a round trip.
	for _, p := range cat.Plans {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var back Plan
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		b2, err := json.Marshal(back)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(b2) || !back.PerGBMonthDisk.Equal(p.PerGBMonthDisk) ||
			!back.MonthlyPrice.Equal(p.MonthlyPrice) {
			t.Errorf("round trip of %s gave %s", b, b2)
		}
	}
	// null and "" are zero.
	var p Plan
	if err := json.Unmarshal([]byte(`{"id":"x","per_minute":null,"per_gb_hour":""}`), &p); err != nil {
		t.Fatal(err)
	}
	if !p.PerMinute.IsZero() || !p.PerGBHour.IsZero() {
		t.Errorf("plan = %+v", p)
	}
}
