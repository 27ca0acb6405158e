package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fullContractJSON is a complete contract file (the Next 150 biochar contract's public facts;
// term, schedule, registry and price are illustrative). The schedule is deliberately out of
// order.
const fullContractJSON = `{
  "code": "TN150-2024",
  "buyer": "Microsoft",
  "supplier": "The Next 150",
  "project": "General Biochar Systems, Guanajuato",
  "method": "Biochar",
  "country": "MX",
  "region": " Guanajuato ",
  "registry": "Puro.earth",
  "standard": "Puro Standard Biochar (illustrative)",
  "durability_years": "100+",
  "term_start": "2024-04-01",
  "term_end": "2030-03-31",
  "signed_on": "2024-03-21",
  "tonnes": "95000",
  "price_per_tonne": "150.00",
  "currency": "usd",
  "delivery_mode": "retire_on_delivery",
  "over_delivery_tolerance": "500",
  "schedule": [
    {"year": 2, "tonnes": "15000", "vintage": 2025},
    {"year": 1, "tonnes": "10000", "vintage": 2024, "price_per_tonne": "145.50", "due_on": "2025-03-31"},
    {"year": 3, "tonnes": "17500"},
    {"year": 4, "tonnes": "17500"},
    {"year": 5, "tonnes": "17500"},
    {"year": 6, "tonnes": "17500.000"}
  ],
  "notes": "illustrative demo data"
}`

func TestParseContractJSONFull(t *testing.T) {
	got, err := ParseContractJSON(strings.NewReader(fullContractJSON))
	if err != nil {
		t.Fatalf("ParseContractJSON: %v", err)
	}
	want := Contract{
		Code: "TN150-2024", Buyer: "Microsoft", Supplier: "The Next 150", Project: "General Biochar Systems, Guanajuato",
		Method: MethodBiochar, Country: "MX", Region: "Guanajuato", Registry: "puro",
		Standard: "Puro Standard Biochar (illustrative)", Durability: Durability{Years: 100, AtLeast: true},
		TermStart: Date(2024, 4, 1), TermEnd: Date(2030, 3, 31), SignedOn: Date(2024, 3, 21),
		Tonnes: tn("95000"), PricePerTonne: dp("150"), Currency: "USD", DeliveryMode: DeliverRetireOnDelivery,
		OverDeliveryTolerance: tn("500"),
		Schedule: []ScheduleLine{
			{Year: 1, Tonnes: tn("10000"), Vintage: 2024, PricePerTonne: dp("145.5"), DueOn: Date(2025, 3, 31)},
			{Year: 2, Tonnes: tn("15000"), Vintage: 2025},
			{Year: 3, Tonnes: tn("17500")},
			{Year: 4, Tonnes: tn("17500")},
			{Year: 5, Tonnes: tn("17500")},
			{Year: 6, Tonnes: tn("17500")},
		},
		ScheduleGiven: true,
		Notes:         "illustrative demo data",
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("ParseContractJSON (-want +got):\n%s", diff)
	}
}

func TestParseContractJSONMinimal(t *testing.T) {
	c, err := ParseContractJSON(strings.NewReader(contractFile(t, nil)))
	if err != nil {
		t.Fatalf("ParseContractJSON: %v", err)
	}
	if c.DeliveryMode != DeliverTransfer || c.Registry != "" || c.PricePerTonne != nil || c.ScheduleGiven ||
		!c.OverDeliveryTolerance.IsZero() || c.Durability != (Durability{}) {
		t.Errorf("defaults: got mode %q registry %q price %v given %v tolerance %s durability %+v, want transfer, \"\", nil, false, 0, zero",
			c.DeliveryMode, c.Registry, c.PricePerTonne, c.ScheduleGiven, c.OverDeliveryTolerance, c.Durability)
	}
	// Without a schedule, an even split over the contract years.
	want := []ScheduleLine{{Year: 1, Tonnes: tn("15834")}, {Year: 2, Tonnes: tn("15834")}, {Year: 3, Tonnes: tn("15833")},
		{Year: 4, Tonnes: tn("15833")}, {Year: 5, Tonnes: tn("15833")}, {Year: 6, Tonnes: tn("15833")}}
	if diff := cmp.Diff(want, c.Schedule, cmpOpts); diff != "" {
		t.Errorf("even schedule (-want +got):\n%s", diff)
	}
}

// contractFile returns the minimal valid contract as JSON after applying change to its fields
// (set a key to a value, or to deleteKey to remove it).
func contractFile(t *testing.T, change map[string]any) string {
	t.Helper()
	m := map[string]any{
		"code": "TN150-2024", "buyer": "Microsoft", "supplier": "The Next 150", "project": "General Biochar Systems",
		"method": "biochar", "country": "MX", "term_start": "2024-04-01", "term_end": "2030-03-31",
		"signed_on": "2024-03-21", "tonnes": "95000",
	}
	for k, v := range change {
		if v == deleteKey {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type deleteMarker struct{}

var deleteKey = deleteMarker{}

func TestParseContractJSONRequired(t *testing.T) {
	for _, f := range []string{"code", "buyer", "supplier", "project", "method", "country", "term_start", "term_end", "signed_on", "tonnes"} {
		t.Run(f+" missing", func(t *testing.T) {
			_, err := ParseContractJSON(strings.NewReader(contractFile(t, map[string]any{f: deleteKey})))
			wantFieldError(t, err, f, ErrInvalid, f+": is required")
		})
		t.Run(f+" blank", func(t *testing.T) {
			_, err := ParseContractJSON(strings.NewReader(contractFile(t, map[string]any{f: "  "})))
			wantFieldError(t, err, f, ErrInvalid, "is required")
		})
		t.Run(f+" null", func(t *testing.T) {
			_, err := ParseContractJSON(strings.NewReader(contractFile(t, map[string]any{f: nil})))
			wantFieldError(t, err, f, ErrInvalid, "is required")
		})
	}
}

func TestParseContractJSONRejects(t *testing.T) {
	sched := func(lines ...map[string]any) []map[string]any { return lines }
	line := func(year int, tonnes string) map[string]any { return map[string]any{"year": year, "tonnes": tonnes} }
	six := func() []map[string]any {
		return sched(line(1, "15834"), line(2, "15834"), line(3, "15833"), line(4, "15833"), line(5, "15833"), line(6, "15833"))
	}
	tests := []struct {
		name   string
		change map[string]any
		field  string
		frags  []string
	}{
		{"unknown field", map[string]any{"colour": "green"}, "colour", []string{"is not a contract field (the fields are code, buyer"}},
		{"camelCase field", map[string]any{"termStart": "2024-04-01"}, "termStart", []string{"is not a contract field"}},
		{"unknown schedule field", map[string]any{"schedule": sched(map[string]any{"year": 1, "tonnes": "95000", "qty": 1})}, "qty", []string{"is not a contract field"}},
		{"code a number", map[string]any{"code": 5}, "code", []string{"is a JSON number where a string is expected"}},
		{"term_start a number", map[string]any{"term_start": 20240401}, "term_start", []string{"is a JSON"}},
		{"notes an array", map[string]any{"notes": []int{}}, "notes", []string{"is a JSON"}},
		{"schedule an object", map[string]any{"schedule": map[string]any{}}, "schedule", []string{"is a JSON"}},
		{"schedule year a string", map[string]any{"schedule": sched(map[string]any{"year": "1", "tonnes": "95000"})}, "schedule.year", []string{"is a JSON"}},
		{"schedule tonnes a number", map[string]any{"schedule": sched(map[string]any{"year": 1, "tonnes": 95000})}, "schedule.tonnes", []string{"is a JSON"}},
		{"durability a bool", map[string]any{"durability_years": true}, "durability_years", []string{"must be a whole number of years"}},
		{"tonnes a bare number", map[string]any{"tonnes": 95000}, "tonnes", []string{"is a JSON number where a string is expected"}},
		{"tonnes a bare decimal", map[string]any{"tonnes": 95000.5}, "tonnes", []string{"is a JSON"}},
		{"negative tonnes", map[string]any{"tonnes": "-95000"}, "tonnes", []string{`"-95000" must be greater than zero`}},
		{"zero tonnes", map[string]any{"tonnes": "0"}, "tonnes", []string{"must be greater than zero"}},
		{"tonnes 4 decimals", map[string]any{"tonnes": "95000.0001"}, "tonnes", []string{"has more than 3 decimal places"}},
		{"tonnes exponent", map[string]any{"tonnes": "9.5e4"}, "tonnes", []string{"uses an exponent"}},
		{"tonnes separator", map[string]any{"tonnes": "95,000"}, "tonnes", []string{"separators"}},
		{"term_end before term_start", map[string]any{"term_end": "2024-03-31"}, "term_end", []string{`"2024-03-31" is before term_start 2024-04-01`}},
		{"term over 50 years", map[string]any{"term_end": "2074-04-02"}, "term_end", []string{"more than 50 years"}},
		{"signed after term end", map[string]any{"signed_on": "2030-04-01"}, "signed_on", []string{"is after term_end 2030-03-31"}},
		{"term_start bad month", map[string]any{"term_start": "2024-13-01"}, "term_start", []string{"is not a date in the form YYYY-MM-DD"}},
		{"term_end US format", map[string]any{"term_end": "03/31/2030"}, "term_end", []string{"is not a date"}},
		{"signed_on Feb 30", map[string]any{"signed_on": "2024-02-30"}, "signed_on", []string{"is not a date"}},
		{"term_start too early", map[string]any{"term_start": "1989-01-01"}, "term_start", []string{"outside the years 1990 to 2200"}},
		{"country name", map[string]any{"country": "Mexico"}, "country", []string{`"Mexico" is not an ISO 3166-1 alpha-2 country code`}},
		{"country alpha-3", map[string]any{"country": "MEX"}, "country", []string{"ISO 3166-1"}},
		{"country unassigned", map[string]any{"country": "XX"}, "country", []string{"ISO 3166-1"}},
		{"country lower-case", map[string]any{"country": "mx"}, "country", []string{"ISO 3166-1"}},
		{"unknown method", map[string]any{"method": "tree planting by drone"}, "method", []string{"is not a method (biochar, forestry, daccs"}},
		{"unknown registry", map[string]any{"registry": "Planet Registry"}, "registry", []string{`"Planet Registry" is not a known registry (car, verra`}},
		{"price without currency", map[string]any{"price_per_tonne": "150.00"}, "currency", []string{"is required when a price is given"}},
		{"USD price 3 decimals", map[string]any{"price_per_tonne": "150.001", "currency": "USD"}, "price_per_tonne", []string{"has more than 2 decimal places (the minor unit of USD)"}},
		{"JPY price 1 decimal", map[string]any{"price_per_tonne": "15000.5", "currency": "JPY"}, "price_per_tonne", []string{"has more than 0 decimal places (the minor unit of JPY)"}},
		{"KWD price 4 decimals", map[string]any{"price_per_tonne": "45.0001", "currency": "KWD"}, "price_per_tonne", []string{"has more than 3 decimal places"}},
		{"negative price", map[string]any{"price_per_tonne": "-1", "currency": "USD"}, "price_per_tonne", []string{"must not be negative"}},
		{"price exponent", map[string]any{"price_per_tonne": "1e2", "currency": "USD"}, "price_per_tonne", []string{"uses an exponent"}},
		{"unknown currency with price", map[string]any{"price_per_tonne": "1", "currency": "XYZ"}, "currency", []string{`"XYZ" is not a supported ISO 4217 currency code`}},
		{"unknown currency", map[string]any{"currency": "BTC"}, "currency", []string{"is not a supported ISO 4217 currency code"}},
		{"delivery mode", map[string]any{"delivery_mode": "gift"}, "delivery_mode", []string{"must be transfer or retire_on_delivery"}},
		{"negative tolerance", map[string]any{"over_delivery_tolerance": "-1"}, "over_delivery_tolerance", []string{"must not be negative"}},
		{"tolerance exponent", map[string]any{"over_delivery_tolerance": "1e3"}, "over_delivery_tolerance", []string{"uses an exponent"}},
		{"durability 0", map[string]any{"durability_years": 0}, "durability_years", nil},
		{"code with space", map[string]any{"code": "TN 150"}, "code", []string{"must be 1 to 48 letters"}},
		{"buyer too long", map[string]any{"buyer": strings.Repeat("b", 201)}, "buyer", []string{"is too long"}},
		{"notes too long", map[string]any{"notes": strings.Repeat("n", 2001)}, "notes", []string{"is too long"}},

		{"schedule does not add up", map[string]any{"schedule": sched(line(1, "15834"), line(2, "15834"), line(3, "15833"), line(4, "15833"), line(5, "15833"), line(6, "15832"))},
			"schedule", []string{`"94999.000" is what the schedule's years add up to`, "must add up exactly to the contracted 95000.000 t"}},
		{"schedule over by 1 kg", map[string]any{"tonnes": "100", "term_end": "2025-03-31", "schedule": sched(line(1, "100.001"))},
			"schedule", []string{`"100.001"`, "100.000 t"}},
		{"schedule empty", map[string]any{"schedule": []map[string]any{}}, "schedule", []string{"is empty"}},
		{"schedule year 0", map[string]any{"schedule": append(six()[1:], line(0, "15834"))}, "schedule[5].year", []string{`"0" is not a contract year of this term (1 to 6)`}},
		{"schedule year 7", map[string]any{"schedule": append(six()[:5], line(7, "15833"))}, "schedule[5].year", []string{`"7" is not a contract year of this term (1 to 6)`}},
		{"schedule year negative", map[string]any{"schedule": sched(line(-1, "95000"))}, "schedule[0].year", []string{"is not a contract year"}},
		{"schedule year twice", map[string]any{"schedule": append(six()[:5], line(5, "15833"))}, "schedule[5].year", []string{`"5" appears twice`}},
		{"schedule year missing", map[string]any{"schedule": sched(map[string]any{"tonnes": "95000"})}, "schedule[0].year", []string{"is required"}},
		{"schedule tonnes missing", map[string]any{"schedule": sched(map[string]any{"year": 1})}, "schedule[0].tonnes", []string{"is required"}},
		{"schedule tonnes zero", map[string]any{"schedule": sched(line(1, "0"), line(2, "95000"))}, "schedule[0].tonnes", []string{"must be greater than zero"}},
		{"schedule tonnes 4 decimals", map[string]any{"schedule": sched(line(1, "0.0001"))}, "schedule[0].tonnes", []string{"has more than 3 decimal places"}},
		{"schedule vintage", map[string]any{"schedule": sched(map[string]any{"year": 1, "tonnes": "95000", "vintage": 24})}, "schedule[0].vintage", []string{"is not a year between 1990 and 2200"}},
		{"schedule due date", map[string]any{"schedule": sched(map[string]any{"year": 1, "tonnes": "95000", "due_on": "31.03.2025"})}, "schedule[0].due_on", []string{"is not a date"}},
		{"schedule price without currency", map[string]any{"schedule": sched(map[string]any{"year": 1, "tonnes": "95000", "price_per_tonne": "10"})}, "currency", []string{"is required when a price is given"}},
		{"schedule price decimals", map[string]any{"currency": "USD", "schedule": sched(map[string]any{"year": 1, "tonnes": "95000", "price_per_tonne": "10.125"})},
			"schedule[0].price_per_tonne", []string{"has more than 2 decimal places (the minor unit of USD)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseContractJSON(strings.NewReader(contractFile(t, tt.change)))
			if err == nil {
				t.Fatalf("ParseContractJSON: got contract %s, want an error on %s", c.Code, tt.field)
			}
			wantFieldError(t, err, tt.field, ErrInvalid, tt.frags...)
		})
	}
}

func TestParseContractJSONNotOneObject(t *testing.T) {
	one := contractFile(t, nil)
	tests := []struct {
		name, in string
		frags    []string
	}{
		{"two objects", one + "\n" + one, []string{"contract: has content after the contract object"}},
		{"object then number", one + " 1", []string{"has content after the contract object"}},
		{"object then garbage", one + " x", nil},
		{"empty", "", []string{"contract: is empty; give a JSON object"}},
		{"only spaces", "  \n ", []string{"is empty"}},
		{"syntax error", `{"code": "X",}`, []string{"is not valid JSON at byte"}},
		{"truncated", `{"code": "X"`, []string{"could not be read as JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseContractJSON(strings.NewReader(tt.in))
			wantFieldError(t, err, "contract", ErrInvalid, tt.frags...)
		})
	}
	// One object with trailing white space is fine.
	if _, err := ParseContractJSON(strings.NewReader(one + "\n\n  \t")); err != nil {
		t.Errorf("trailing white space: got %v, want nil", err)
	}
}

// Regression (found by these tests, since fixed; ledger/contract.go, ParseContractJSON, the dec.More() check): json.Decoder.More reports
// false when the next byte is ']' or '}', so a file holding one valid contract followed by a
// stray '}' or ']' is accepted as if the junk were not there. Want: refused like any other
// trailing content (the file is not one JSON value).
func TestParseContractJSONTrailingBracket(t *testing.T) {
	one := contractFile(t, nil)
	for _, junk := range []string{"}", "]", " }}", "\n]"} {
		c, err := ParseContractJSON(strings.NewReader(one + junk))
		if err == nil {
			t.Errorf("contract followed by %q: got contract %s accepted, want an error (trailing content after the JSON object)", junk, c.Code)
			continue
		}
		wantFieldError(t, err, "contract", ErrInvalid)
	}
}

// Regression (found by these tests, since fixed; ledger/contract.go, jsonError, the *json.UnmarshalTypeError branch): a file whose top
// level is not an object gets an error with an empty field name, and type errors name Go's
// internal types: `: "array" has the wrong JSON type (expected ledger.contractJSON)`,
// `schedule: "object" has the wrong JSON type (expected []ledger.scheduleLineJSON)`.
// Want: the field "contract" at the top level, and the JSON type a user wrote (an object, a
// list), not a Go type.
func TestParseContractJSONTypeErrorWording(t *testing.T) {
	for _, in := range []string{`[]`, `"TN150-2024"`, `5`} {
		_, err := ParseContractJSON(strings.NewReader(in))
		if err == nil {
			t.Errorf("ParseContractJSON(%s): got nil error, want one", in)
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "contract" {
			t.Errorf("ParseContractJSON(%s): got %q (field %q), want an error on field \"contract\"", in, err, fieldOf(err))
		}
		if strings.Contains(err.Error(), "ledger.") {
			t.Errorf("ParseContractJSON(%s): got %q, want no Go type names in a user's error", in, err)
		}
	}
	_, err := ParseContractJSON(strings.NewReader(contractFile(t, map[string]any{"schedule": map[string]any{}})))
	if err == nil || strings.Contains(err.Error(), "ledger.") {
		t.Errorf("schedule as an object: got %v, want an error that names no Go type", err)
	}
}

func fieldOf(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

func TestParseContractJSONAliases(t *testing.T) {
	methods := []struct {
		in   string
		want Method
	}{
		{"biochar", MethodBiochar},
		{"Biochar Carbon Removal", MethodBiochar},
		{"forest restoration", MethodForestry},
		{"Forest Ecosystem Restoration", MethodForestry},
		{"nature-based", MethodForestry},
		{"ARR", MethodForestry},
		{"DACCS", MethodDACCS},
		{"Direct Air Capture", MethodDACCS},
		{"BECCS", MethodBECCS},
		{"enhanced weathering", MethodEnhancedWeathering},
		{"ERW", MethodEnhancedWeathering},
		{"enhanced_weathering", MethodEnhancedWeathering},
		{"mCDR", MethodOcean},
		{" other ", MethodOther},
	}
	for _, tt := range methods {
		c, err := ParseContractJSON(strings.NewReader(contractFile(t, map[string]any{"method": tt.in})))
		if err != nil || c.Method != tt.want {
			t.Errorf("method %q: got %q, %v, want %q", tt.in, c.Method, err, tt.want)
		}
		if m, err := ParseMethod(tt.in); err != nil || m != tt.want {
			t.Errorf("ParseMethod(%q): got %q, %v, want %q", tt.in, m, err, tt.want)
		}
	}
	registries := []struct{ in, want string }{
		{"Climate Action Reserve", "car"},
		{"climate action reserve", "car"},
		{"CAR", "car"},
		{"  Reserve ", "car"},
		{"Verra", "verra"},
		{"VCS", "verra"},
		{"Gold Standard", "gold-standard"},
		{"gold-standard", "gold-standard"},
		{"Puro.earth", "puro"},
		{"Isometric", "isometric"},
		{"American Carbon Registry", "acr"},
		{"", ""},
	}
	for _, tt := range registries {
		c, err := ParseContractJSON(strings.NewReader(contractFile(t, map[string]any{"registry": tt.in})))
		if err != nil || c.Registry != tt.want {
			t.Errorf("registry %q: got %q, %v, want %q", tt.in, c.Registry, err, tt.want)
		}
	}
	for _, code := range RegistryCodes() {
		if got, ok := NormalizeRegistry(code); !ok || got != code {
			t.Errorf("NormalizeRegistry(%q): got %q, %v, want itself", code, got, ok)
		}
		if RegistryName(code) == code && code != "other" {
			t.Errorf("RegistryName(%q): got the code back, want a display name", code)
		}
	}
	if got := RegistryName("car"); got != "Climate Action Reserve" {
		t.Errorf("RegistryName(car): got %q, want Climate Action Reserve", got)
	}
	if got := RegistryName(""); got != "not public" {
		t.Errorf("RegistryName(\"\"): got %q, want \"not public\"", got)
	}
	// Prices that fit the currency; the currency is upper-cased.
	prices := []struct{ price, currency, want string }{
		{"150.00", "USD", "150"},
		{"150.5", "usd", "150.5"},
		{"15000", "JPY", "15000"},
		{"45.125", "KWD", "45.125"},
		{"0", "EUR", "0"},
	}
	for _, tt := range prices {
		c, err := ParseContractJSON(strings.NewReader(contractFile(t, map[string]any{"price_per_tonne": tt.price, "currency": tt.currency})))
		if err != nil || c.PricePerTonne == nil || c.PricePerTonne.String() != tt.want || c.Currency != strings.ToUpper(tt.currency) {
			t.Errorf("price %s %s: got %v %q, %v, want %s %s", tt.price, tt.currency, c.PricePerTonne, c.Currency, err, tt.want, strings.ToUpper(tt.currency))
		}
	}
}

func TestParsePrice(t *testing.T) {
	if d, err := ParsePrice("p", "12.12345678", "*"); err != nil || d.String() != "12.12345678" {
		t.Errorf(`ParsePrice(12.12345678, "*"): got %s, %v, want 12.12345678`, d, err)
	}
	_, err := ParsePrice("p", "12.123456789", "*")
	wantFieldError(t, err, "p", ErrInvalid, "has more than 8 decimal places")
	_, err = ParsePrice("p", "12", "")
	wantFieldError(t, err, "currency", ErrInvalid, "is required when a price is given")
	_, err = ParsePrice("p", "12", "usd") // the caller upper-cases
	wantFieldError(t, err, "currency", ErrInvalid, "is not a supported")
	for code, want := range map[string]int32{"USD": 2, "EUR": 2, "JPY": 0, "KRW": 0, "BHD": 3, "MXN": 2} {
		if got, ok := CurrencyScale(code); !ok || got != want {
			t.Errorf("CurrencyScale(%s): got %d, %v, want %d", code, got, ok, want)
		}
	}
	if _, ok := CurrencyScale("XXX"); ok {
		t.Errorf("CurrencyScale(XXX): got known, want unknown")
	}
}

func TestValidCountry(t *testing.T) {
	for _, c := range []string{"MX", "US", "ET", "CN", "VN", "GB", "DE", "BR", "ZW", "AD"} {
		if !ValidCountry(c) {
			t.Errorf("ValidCountry(%q): got false, want true", c)
		}
	}
	for _, c := range []string{"", "mx", "Mx", "MEX", "XX", "UK", "EU", " MX"} {
		if ValidCountry(c) {
			t.Errorf("ValidCountry(%q): got true, want false", c)
		}
	}
}

func TestSlug(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Microsoft", "microsoft"},
		{"The Next 150", "the-next-150"},
		{"Toroto SAPI de CV", "toroto-sapi-de-cv"},
		{"  General -- Biochar  Systems!! ", "general-biochar-systems"},
		{"Ñandú & Co.", "and-co"},
		{"", "party"},
		{"日本", "party"},
		{strings.Repeat("ab ", 40), strings.TrimSuffix(strings.Repeat("ab-", 20), "-")},
	}
	for _, tt := range tests {
		got := Slug(tt.in)
		if got != tt.want {
			t.Errorf("Slug(%q): got %q, want %q", tt.in, got, tt.want)
		}
		if len(got) > 60 {
			t.Errorf("Slug(%q): got %d characters, want at most 60", tt.in, len(got))
		}
		if err := ValidateAccountCode("buyer:" + got); err != nil {
			t.Errorf("Slug(%q)=%q is not an account component: %v", tt.in, got, err)
		}
	}
}

func sixYearContract() *Contract {
	return &Contract{TermStart: Date(2024, 4, 1), TermEnd: Date(2030, 3, 31)}
}

func TestContractYears(t *testing.T) {
	tests := []struct {
		name       string
		start, end [3]int
		want       [][2][3]int // start and end of each year
	}{
		{"6 years", [3]int{2024, 4, 1}, [3]int{2030, 3, 31}, [][2][3]int{
			{{2024, 4, 1}, {2025, 3, 31}}, {{2025, 4, 1}, {2026, 3, 31}}, {{2026, 4, 1}, {2027, 3, 31}},
			{{2027, 4, 1}, {2028, 3, 31}}, {{2028, 4, 1}, {2029, 3, 31}}, {{2029, 4, 1}, {2030, 3, 31}},
		}},
		{"1 year", [3]int{2024, 4, 15}, [3]int{2025, 4, 14}, [][2][3]int{{{2024, 4, 15}, {2025, 4, 14}}}},
		{"calendar year", [3]int{2025, 1, 1}, [3]int{2025, 12, 31}, [][2][3]int{{{2025, 1, 1}, {2025, 12, 31}}}},
		{"not whole years", [3]int{2024, 1, 1}, [3]int{2026, 6, 30}, [][2][3]int{
			{{2024, 1, 1}, {2024, 12, 31}}, {{2025, 1, 1}, {2025, 12, 31}}, {{2026, 1, 1}, {2026, 6, 30}},
		}},
		{"one day", [3]int{2025, 5, 5}, [3]int{2025, 5, 5}, [][2][3]int{{{2025, 5, 5}, {2025, 5, 5}}}},
		{"a day past a whole year", [3]int{2024, 4, 1}, [3]int{2025, 4, 1}, [][2][3]int{
			{{2024, 4, 1}, {2025, 3, 31}}, {{2025, 4, 1}, {2025, 4, 1}},
		}},
	}
	d := func(x [3]int) string { return FormatDate(Date(x[0], monthOf(x[1]), x[2])) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Contract{TermStart: Date(tt.start[0], monthOf(tt.start[1]), tt.start[2]), TermEnd: Date(tt.end[0], monthOf(tt.end[1]), tt.end[2])}
			var got, want []string
			for _, y := range c.Years() {
				got = append(got, fmt.Sprintf("%d %s..%s", y.N, FormatDate(y.Start), FormatDate(y.End)))
			}
			for i, w := range tt.want {
				want = append(want, fmt.Sprintf("%d %s..%s", i+1, d(w[0]), d(w[1])))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Years (-want +got):\n%s", diff)
			}
		})
	}
}

// TestContractYearsContiguous checks, for many terms including leap days, that the years
// tile the term: no gap, no overlap, the first starts with the term and the last ends with it.
func TestContractYearsContiguous(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		start := Date(2000+r.IntN(30), monthOf(1+r.IntN(12)), 1+r.IntN(28))
		if r.IntN(10) == 0 {
			start = Date(2024, 2, 29)
		}
		end := start.AddDate(r.IntN(12), r.IntN(12), r.IntN(60))
		c := &Contract{TermStart: start, TermEnd: end}
		ys := c.Years()
		if len(ys) == 0 || !ys[0].Start.Equal(start) || !ys[len(ys)-1].End.Equal(end) {
			t.Fatalf("term %s..%s: got years %v, want them to start and end with the term", FormatDate(start), FormatDate(end), ys)
		}
		for i, y := range ys {
			if y.N != i+1 || y.End.Before(y.Start) {
				t.Fatalf("term %s..%s: got year %+v at index %d", FormatDate(start), FormatDate(end), y, i)
			}
			if i > 0 && !ys[i-1].End.AddDate(0, 0, 1).Equal(y.Start) {
				t.Fatalf("term %s..%s: year %d ends %s but year %d starts %s", FormatDate(start), FormatDate(end), i, FormatDate(ys[i-1].End), i+1, FormatDate(y.Start))
			}
			if i < len(ys)-1 && y.End.After(y.Start.AddDate(1, 0, 0)) {
				t.Fatalf("term %s..%s: year %d runs %s..%s, longer than a year", FormatDate(start), FormatDate(end), i+1, FormatDate(y.Start), FormatDate(y.End))
			}
		}
		// YearOf agrees with Years for every boundary.
		for _, y := range ys {
			for _, day := range []int{0, 1} {
				dd := y.Start.AddDate(0, 0, day)
				if dd.After(y.End) {
					continue
				}
				if got := c.YearOf(dd); got != y.N {
					t.Fatalf("term %s..%s: YearOf(%s) got %d, want %d", FormatDate(start), FormatDate(end), FormatDate(dd), got, y.N)
				}
			}
			if got := c.YearOf(y.End); got != y.N {
				t.Fatalf("term %s..%s: YearOf(%s) got %d, want %d", FormatDate(start), FormatDate(end), FormatDate(y.End), got, y.N)
			}
		}
	}
}

func monthOf(m int) time.Month { return time.Month(m) }

func TestContractYearOf(t *testing.T) {
	c := sixYearContract()
	tests := []struct {
		d    [3]int
		want int
	}{
		{[3]int{2020, 1, 1}, 0},
		{[3]int{2024, 3, 31}, 0},
		{[3]int{2024, 4, 1}, 1},
		{[3]int{2024, 12, 31}, 1},
		{[3]int{2025, 3, 31}, 1},
		{[3]int{2025, 4, 1}, 2},
		{[3]int{2027, 7, 15}, 4},
		{[3]int{2029, 4, 1}, 6},
		{[3]int{2030, 3, 31}, 6},
		{[3]int{2030, 4, 1}, 6}, // after the term: the last year (a late delivery)
		{[3]int{2040, 1, 1}, 6},
	}
	for _, tt := range tests {
		d := Date(tt.d[0], monthOf(tt.d[1]), tt.d[2])
		if got := c.YearOf(d); got != tt.want {
			t.Errorf("YearOf(%s): got %d, want %d", FormatDate(d), got, tt.want)
		}
	}
}

func TestEvenSchedule(t *testing.T) {
	tests := []struct {
		total string
		n     int
		want  []string
	}{
		{"95000", 6, []string{"15834", "15834", "15833", "15833", "15833", "15833"}},
		{"234000", 1, []string{"234000"}},
		{"100", 4, []string{"25", "25", "25", "25"}},
		{"10", 3, []string{"4", "3", "3"}},
		{"10.001", 3, []string{"3.334", "3.334", "3.333"}}, // not whole tonnes: split in kg
		{"0.005", 2, []string{"0.003", "0.002"}},
		{"1000.5", 2, []string{"500.250", "500.250"}},
		{"2", 5, []string{"1", "1"}},             // whole tonnes are not split into kg; empty years are left out
		{"0.002", 3, []string{"0.001", "0.001"}}, // likewise in kg
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s over %d", tt.total, tt.n), func(t *testing.T) {
			lines := EvenSchedule(tn(tt.total), tt.n)
			var want []ScheduleLine
			for i, w := range tt.want {
				want = append(want, ScheduleLine{Year: i + 1, Tonnes: tn(w)})
			}
			if diff := cmp.Diff(want, lines, cmpOpts); diff != "" {
				t.Errorf("EvenSchedule (-want +got):\n%s", diff)
			}
			var sum Tonnes
			for _, l := range lines {
				sum = sum.Add(l.Tonnes)
			}
			if !sum.Equal(tn(tt.total)) {
				t.Errorf("sum: got %s, want %s", sum, tt.total)
			}
		})
	}
	for _, n := range []int{0, -1} {
		if got := EvenSchedule(tn("100"), n); got != nil {
			t.Errorf("EvenSchedule(100, %d): got %v, want nil", n, got)
		}
	}
	if got := EvenSchedule(Zero, 3); len(got) != 0 {
		t.Errorf("EvenSchedule(0, 3): got %v, want no lines", got)
	}
}

// TestEvenScheduleProperties checks, for random totals from 1 kg to 10^9 t and 1 to 50 years,
// that the parts add up exactly to the total, differ by at most one unit (a tonne for a whole
// number of tonnes, else a kilogram), and that earlier years get the larger parts.
func TestEvenScheduleProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(2024, 95000))
	for i := range 20000 {
		var kg int64
		switch i % 4 {
		case 0: // whole tonnes
			kg = (1 + r.Int64N(1_000_000_000)) * 1000
		case 1: // small
			kg = 1 + r.Int64N(200)
		default: // up to 10^12 kg
			kg = 1 + r.Int64N(1_000_000_000_000)
		}
		n := 1 + r.IntN(50)
		total := TonnesFromKg(kg)
		lines := EvenSchedule(total, n)
		unit := int64(1000)
		if kg%1000 != 0 {
			unit = 1
		}
		parts := make([]int64, n) // years without a line get zero
		var sum int64
		for j, l := range lines {
			if l.Year != j+1 {
				t.Fatalf("EvenSchedule(%s, %d): line %d is year %d, want %d", total, n, j, l.Year, j+1)
			}
			if !l.Tonnes.IsPositive() {
				t.Fatalf("EvenSchedule(%s, %d): year %d has %s, want a positive amount", total, n, l.Year, l.Tonnes)
			}
			parts[l.Year-1] = l.Tonnes.Kg()
			sum += l.Tonnes.Kg()
		}
		if sum != kg {
			t.Fatalf("EvenSchedule(%s, %d): parts add up to %d kg, want %d", total, n, sum, kg)
		}
		if !Sum(scheduleTonnes(lines)...).Equal(total) {
			t.Fatalf("EvenSchedule(%s, %d): Sum of parts differs from the total", total, n)
		}
		for j, p := range parts {
			if p%unit != 0 {
				t.Fatalf("EvenSchedule(%s, %d): year %d has %d kg, not a multiple of the %d kg unit", total, n, j+1, p, unit)
			}
			if j > 0 && p > parts[j-1] {
				t.Fatalf("EvenSchedule(%s, %d): year %d has %d kg, more than year %d's %d kg", total, n, j+1, p, j, parts[j-1])
			}
		}
		if hi, lo := slices.Max(parts), slices.Min(parts); hi-lo > unit {
			t.Fatalf("EvenSchedule(%s, %d): parts range from %d to %d kg, more than one %d kg unit apart", total, n, lo, hi, unit)
		}
	}
}

func scheduleTonnes(lines []ScheduleLine) []Tonnes {
	out := make([]Tonnes, len(lines))
	for i, l := range lines {
		out[i] = l.Tonnes
	}
	return out
}

func TestScheduledForAndFormatSchedule(t *testing.T) {
	lines := []ScheduleLine{
		{Year: 1, Tonnes: tn("15834"), Vintage: 2024, PricePerTonne: dp("150.50"), DueOn: Date(2025, 3, 31)},
		{Year: 2, Tonnes: tn("15834")},
		{Year: 3, Tonnes: tn("0.5"), Vintage: 2026},
	}
	if got := ScheduledFor(lines, 2); !got.Equal(tn("15834")) {
		t.Errorf("ScheduledFor(2): got %s, want 15834.000", got)
	}
	if got := ScheduledFor(lines, 9); !got.IsZero() {
		t.Errorf("ScheduledFor(9): got %s, want 0", got)
	}
	want := "1=15834.000@2024$150.5~2025-03-31;2=15834.000;3=0.500@2026"
	if got := FormatSchedule(lines); got != want {
		t.Errorf("FormatSchedule: got %q, want %q", got, want)
	}
	if got := FormatSchedule(nil); got != "" {
		t.Errorf("FormatSchedule(nil): got %q, want \"\"", got)
	}
}

func TestDurability(t *testing.T) {
	valid := []struct {
		in   string
		want Durability
	}{
		{`100`, Durability{Years: 100}},
		{`"100"`, Durability{Years: 100}},
		{`"100+"`, Durability{Years: 100, AtLeast: true}},
		{`"1000+"`, Durability{Years: 1000, AtLeast: true}},
		{`" 40 "`, Durability{Years: 40}},
		{`null`, Durability{}},
		{`""`, Durability{}},
		{`1`, Durability{Years: 1}},
		{`100000`, Durability{Years: 100000}},
	}
	for _, tt := range valid {
		got := Durability{Years: 7}
		if err := json.Unmarshal([]byte(tt.in), &got); err != nil || got != tt.want {
			t.Errorf("json.Unmarshal(%s): got %+v, %v, want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{`0`, `-5`, `100.5`, `"abc"`, `"100++"`, `100001`, `true`, `"+"`, `[]`, `1e2`} {
		var got Durability
		err := json.Unmarshal([]byte(in), &got)
		if err == nil {
			t.Errorf("json.Unmarshal(%s): got %+v, want an error", in, got)
			continue
		}
		wantFieldError(t, err, "durability_years", ErrInvalid)
	}
	marshal := []struct {
		d    Durability
		want string
	}{
		{Durability{Years: 100}, `100`},
		{Durability{Years: 100, AtLeast: true}, `"100+"`},
		{Durability{}, `null`},
	}
	for _, tt := range marshal {
		b, err := json.Marshal(tt.d)
		if err != nil || string(b) != tt.want {
			t.Errorf("json.Marshal(%+v): got %s, %v, want %s", tt.d, b, err, tt.want)
		}
		var back Durability
		if err := json.Unmarshal(b, &back); err != nil || back != tt.d {
			t.Errorf("round trip of %+v: got %+v, %v", tt.d, back, err)
		}
	}
	classes := []struct {
		d    Durability
		want string
	}{
		{Durability{}, "unknown"},
		{Durability{Years: 1}, "under 100 years"},
		{Durability{Years: 99, AtLeast: true}, "under 100 years"},
		{Durability{Years: 100}, "100-999 years"},
		{Durability{Years: 100, AtLeast: true}, "100-999 years"},
		{Durability{Years: 999}, "100-999 years"},
		{Durability{Years: 1000}, "1000+ years"},
		{Durability{Years: 10000, AtLeast: true}, "1000+ years"},
	}
	for _, tt := range classes {
		if got := tt.d.Class(); got != tt.want {
			t.Errorf("%+v.Class(): got %q, want %q", tt.d, got, tt.want)
		}
	}
	for d, want := range map[Durability]string{{}: "", {Years: 100}: "100", {Years: 100, AtLeast: true}: "100+"} {
		if got := d.String(); got != want {
			t.Errorf("%+v.String(): got %q, want %q", d, got, want)
		}
	}
}

func TestContractMarshalJSONRoundTrip(t *testing.T) {
	c, err := ParseContractJSON(strings.NewReader(fullContractJSON))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`"tonnes":"95000.000"`, `"term_start":"2024-04-01"`, `"durability_years":"100+"`, `"registry":"puro"`,
		`"over_delivery_tolerance":"500.000"`, `"due_on":"2025-03-31"`, `"price_per_tonne":"150"`} {
		if !strings.Contains(string(b), frag) {
			t.Errorf("json.Marshal(contract): got %s, want it to contain %s", b, frag)
		}
	}
	back, err := ParseContractJSON(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("ParseContractJSON(json.Marshal(c)): %v\n%s", err, b)
	}
	if diff := cmp.Diff(c, back, cmpOpts); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if c.TermsDigest() != back.TermsDigest() {
		t.Errorf("TermsDigest after a round trip: got %s, want %s", back.TermsDigest(), c.TermsDigest())
	}
	if len(c.TermsDigest()) != 64 {
		t.Errorf("TermsDigest: got %q, want 64 hex digits", c.TermsDigest())
	}
	changed := c
	changed.Schedule = slices.Clone(c.Schedule)
	changed.Schedule[5].Tonnes = tn("17500.001")
	if changed.TermsDigest() == c.TermsDigest() {
		t.Errorf("TermsDigest: got the same digest after the schedule changed")
	}
	changed = c
	changed.Buyer = "Microsoft Corporation"
	if changed.TermsDigest() == c.TermsDigest() {
		t.Errorf("TermsDigest: got the same digest after the buyer changed")
	}
}

func TestContractValidateDirect(t *testing.T) {
	c := Contract{Code: "TOROTO-2024", Buyer: "Microsoft", Supplier: "Toroto", Project: "Conhuás ejido, Calakmul", Method: MethodForestry,
		Country: "MX", Registry: "car", TermStart: Date(2024, 4, 15), TermEnd: Date(2025, 4, 14), SignedOn: Date(2024, 4, 15),
		Tonnes: tn("234000"), DeliveryMode: DeliverTransfer}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if diff := cmp.Diff([]ScheduleLine{{Year: 1, Tonnes: tn("234000")}}, c.Schedule, cmpOpts); diff != "" {
		t.Errorf("Validate completes the schedule (-want +got):\n%s", diff)
	}
	bad := []struct {
		name   string
		change func(*Contract)
		field  string
	}{
		{"no buyer", func(c *Contract) { c.Buyer = "" }, "buyer"},
		{"unknown method", func(c *Contract) { c.Method = "magic" }, "method"},
		{"zero tonnes", func(c *Contract) { c.Tonnes = Zero }, "tonnes"},
		{"empty mode", func(c *Contract) { c.DeliveryMode = "" }, "delivery_mode"},
		{"description NUL", func(c *Contract) { c.Project = "a\x00b" }, "project"},
		{"explicit empty schedule", func(c *Contract) { c.ScheduleGiven, c.Schedule = true, nil }, "schedule"},
	}
	for _, tt := range bad {
		x := c
		tt.change(&x)
		wantFieldError(t, x.Validate(), tt.field, ErrInvalid)
	}
}

func TestParseScheduleJSON(t *testing.T) {
	got, err := ParseScheduleJSON(strings.NewReader(`[{"year":2,"tonnes":"50","price_per_tonne":"12.12345678"},{"year":1,"tonnes":"45.5","vintage":2024,"due_on":"2025-01-31"}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []ScheduleLine{
		{Year: 2, Tonnes: tn("50"), PricePerTonne: dp("12.12345678")},
		{Year: 1, Tonnes: tn("45.5"), Vintage: 2024, DueOn: Date(2025, 1, 31)},
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("ParseScheduleJSON (-want +got):\n%s", diff)
	}
	bad := []struct{ in, field, frag string }{
		{`[{"year":1,"tonnes":"1","extra":1}]`, "schedule", "is not a contract field"},
		{`{"year":1}`, "schedule", "is a JSON"},
		{`[{"year":1,"tonnes":12}]`, "schedule", "is a JSON"},
		{`[{"year":1,"tonnes":"-1"}]`, "schedule[0].tonnes", "must be greater than zero"},
		{`[{"year":1,"tonnes":"1","price_per_tonne":"1.123456789"}]`, "schedule[0].price_per_tonne", "more than 8 decimal places"},
		{``, "schedule", "is empty"},
	}
	for _, tt := range bad {
		_, err := ParseScheduleJSON(strings.NewReader(tt.in))
		wantFieldError(t, err, tt.field, ErrInvalid, tt.frag)
	}
}

func TestContractAccounts(t *testing.T) {
	c := &Contract{Code: "TN150-2024", Buyer: "Microsoft", Supplier: "The Next 150", Registry: "gold-standard", OverDeliveryTolerance: tn("250")}
	want := ContractAccounts{
		Supply:          "supplier:the-next-150:supply:TN150-2024",
		Open:            "contract:TN150-2024:open",
		Cancelled:       "contract:TN150-2024:cancelled",
		Holding:         "buyer:microsoft:holding:TN150-2024",
		Retired:         "buyer:microsoft:retired:TN150-2024",
		Reversed:        "buyer:microsoft:reversed:TN150-2024",
		Buffer:          "registry:gold-standard:buffer:TN150-2024",
		BufferCancelled: "registry:gold-standard:buffer-cancelled:TN150-2024",
	}
	if diff := cmp.Diff(want, c.Accounts()); diff != "" {
		t.Errorf("Accounts (-want +got):\n%s", diff)
	}
	c.Registry = ""
	if got := c.Accounts().Buffer; got != "registry:unknown:buffer:TN150-2024" {
		t.Errorf("Accounts().Buffer with no registry: got %q, want registry:unknown:buffer:TN150-2024", got)
	}
	list := c.Accounts().List(c)
	zero, openFloor := Zero, tn("-250")
	wantList := []Account{
		{Code: "supplier:the-next-150:supply:TN150-2024", Book: "TN150-2024", Kind: AccSupply},
		{Code: "contract:TN150-2024:open", Book: "TN150-2024", Kind: AccOpen, Floor: &openFloor},
		{Code: "contract:TN150-2024:cancelled", Book: "TN150-2024", Kind: AccCancelled, Floor: &zero},
		{Code: "buyer:microsoft:holding:TN150-2024", Book: "TN150-2024", Kind: AccHolding, Floor: &zero},
		{Code: "buyer:microsoft:retired:TN150-2024", Book: "TN150-2024", Kind: AccRetired, Floor: &zero},
		{Code: "buyer:microsoft:reversed:TN150-2024", Book: "TN150-2024", Kind: AccReversed, Floor: &zero},
		{Code: "registry:unknown:buffer:TN150-2024", Book: "TN150-2024", Kind: AccBuffer},
		{Code: "registry:unknown:buffer-cancelled:TN150-2024", Book: "TN150-2024", Kind: AccBufferCancelled, Floor: &zero},
	}
	if diff := cmp.Diff(wantList, list, cmpOpts); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	seen := map[string]bool{}
	for _, a := range list {
		if err := ValidateAccountCode(a.Code); err != nil {
			t.Errorf("account %q: %v", a.Code, err)
		}
		if seen[a.Code] {
			t.Errorf("account %q listed twice", a.Code)
		}
		seen[a.Code] = true
		if a.Kind.MayGoNegative() != (a.Floor == nil) {
			t.Errorf("account %q: kind %s may go negative %v but floor %v", a.Code, a.Kind, a.Kind.MayGoNegative(), a.Floor)
		}
	}
	// Every registry code makes valid account codes.
	for _, r := range append(RegistryCodes(), "") {
		c.Registry = r
		for _, a := range c.Accounts().List(c) {
			if err := ValidateAccountCode(a.Code); err != nil {
				t.Errorf("registry %q: account %q: %v", r, a.Code, err)
			}
		}
	}
}

// TestContractRegistryProjectsKeepOldDigests: registry_projects is in the canonical terms only
// when a contract names projects, so the terms digest sealed into the sign entry of every
// contract signed before the field existed is unchanged (the digests below were computed
// before it was added), and naming projects changes the digest.
func TestContractRegistryProjectsKeepOldDigests(t *testing.T) {
	for _, tt := range []struct {
		name, js, want string
	}{
		{"full", fullContractJSON, "774b43bd03debce2e3a5779ff8a1f1539658190190d9456d46dc5f67f285ab5e"},
		{"minimal", contractFile(t, nil), "859e519fa8a3a068984d1dfae63faa87581356c5aeba72c6222eb46eb52a1034"},
		{"minimal, an empty list", contractFile(t, map[string]any{"registry_projects": []string{}}), "859e519fa8a3a068984d1dfae63faa87581356c5aeba72c6222eb46eb52a1034"},
		{"minimal, null", contractFile(t, map[string]any{"registry_projects": nil}), "859e519fa8a3a068984d1dfae63faa87581356c5aeba72c6222eb46eb52a1034"},
		{"minimal, no accounts", contractFile(t, map[string]any{"registry_accounts": []string{}}), "859e519fa8a3a068984d1dfae63faa87581356c5aeba72c6222eb46eb52a1034"},
	} {
		c, err := ParseContractJSON(strings.NewReader(tt.js))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := c.TermsDigest(); got != tt.want {
			t.Errorf("%s: TermsDigest %s, want %s (the digest before registry_projects existed)", tt.name, got, tt.want)
		}
		b, _ := json.Marshal(c)
		if strings.Contains(string(b), "registry_projects") || strings.Contains(string(b), "registry_accounts") {
			t.Errorf("%s: canonical terms %s name registry_projects or registry_accounts", tt.name, b)
		}
	}

	named, err := ParseContractJSON(strings.NewReader(contractFile(t, map[string]any{"registry": "car", "registry_projects": []string{" CAR1335 ", "CAR1480"}})))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(named.RegistryProjects, []string{"CAR1335", "CAR1480"}) {
		t.Errorf("RegistryProjects %q, want [CAR1335 CAR1480]", named.RegistryProjects)
	}
	b, _ := json.Marshal(named)
	if !strings.Contains(string(b), `"registry_projects":["CAR1335","CAR1480"]`) {
		t.Errorf("canonical terms %s do not carry the projects", b)
	}
	back, err := ParseContractJSON(strings.NewReader(string(b)))
	if err != nil || back.TermsDigest() != named.TermsDigest() {
		t.Errorf("round trip: %v, digest %s, want %s", err, back.TermsDigest(), named.TermsDigest())
	}
	unnamed := named
	unnamed.RegistryProjects = nil
	if unnamed.TermsDigest() == named.TermsDigest() {
		t.Error("naming registry projects does not change the terms digest")
	}
	withAccounts, err := ParseContractJSON(strings.NewReader(contractFile(t, map[string]any{"registry": "car", "registry_projects": []string{"CAR1335", "CAR1480"}, "registry_accounts": []string{" Maple Leaf Foods"}})))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(withAccounts); !strings.Contains(string(b), `"registry_accounts":["Maple Leaf Foods"]`) || withAccounts.TermsDigest() == named.TermsDigest() {
		t.Errorf("canonical terms %s do not carry the accounts, or the digest does not change with them", b)
	}

	for _, tt := range []struct {
		change map[string]any
		field  string
	}{
		{map[string]any{"registry_projects": []string{"CAR1335"}}, "registry_projects"}, // no registry
		{map[string]any{"registry": "car", "registry_projects": []string{"CAR1335", ""}}, "registry_projects[1]"},
		{map[string]any{"registry": "car", "registry_projects": []string{"CAR1335", "car1335"}}, "registry_projects[1]"},
		{map[string]any{"registry": "car", "registry_projects": []string{strings.Repeat("9", 101)}}, "registry_projects[0]"},
		{map[string]any{"registry": "car", "registry_projects": "CAR1335"}, "registry_projects"},
		{map[string]any{"registry_accounts": []string{"Maple Leaf Foods"}}, "registry_accounts"}, // no registry
		{map[string]any{"registry": "car", "registry_accounts": []string{"Maple Leaf Foods", "maple leaf foods"}}, "registry_accounts[1]"},
		{map[string]any{"registry": "car", "registry_accounts": []string{"A\nB"}}, "registry_accounts[0]"},
	} {
		_, err := ParseContractJSON(strings.NewReader(contractFile(t, tt.change)))
		if err == nil || fieldOf(err) != tt.field {
			t.Errorf("%v: got %v (field %q), want an error on %s", tt.change, err, fieldOf(err), tt.field)
		}
	}
}

// TestContractJSONMembersExact: encoding/json would take "Tonnes" for "tonnes" and the last of a
// repeated member; terms are signed as written, so both are refused, naming the member, in the
// contract and in its schedule lines.
func TestContractJSONMembersExact(t *testing.T) {
	for _, tt := range []struct{ js, field, rule string }{
		{`{"code": "X-1", "Tonnes": "10"}`, "Tonnes", `is not a field of the contract: member names are exact (write "tonnes")`},
		{`{"code": "X-1", "code": "X-2"}`, "code", "is given twice; give each member of the contract once"},
		{`{"code": "X-1", "schedule": [{"year": 1, "tonnes": "5"}, {"year": 2, "Year": 3}]}`, "schedule[1].Year", `member names are exact (write "year")`},
		{`{"code": "X-1", "schedule": [{"year": 1, "year": 2}]}`, "schedule[0].year", "is given twice"},
	} {
		_, err := ParseContractJSON(strings.NewReader(tt.js))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Rule, tt.rule) {
			t.Errorf("%s: got %v, want %s %s", tt.js, err, tt.field, tt.rule)
		}
	}
	// the durability's own reading is untouched
	if _, err := ParseContractJSON(strings.NewReader(fullContractJSON)); err != nil {
		t.Errorf("the full contract: %v", err)
	}
}
