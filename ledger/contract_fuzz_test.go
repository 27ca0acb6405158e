package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseContractJSON checks that a contract file is either refused with an ErrInvalid
// FieldError that names a field and no Go type, or read into a contract whose canonical JSON
// (the form its terms digest is taken over, and what `export` writes) reads back into the
// same contract, with the same digest and the same canonical JSON: the terms a sign entry
// seals can always be read again. An accepted contract's schedule covers its contract
// years, in order, and adds up to its tonnes.
func FuzzParseContractJSON(f *testing.F) {
	minimal := map[string]any{
		"code": "TN150-2024", "buyer": "Microsoft", "supplier": "The Next 150", "project": "General Biochar Systems",
		"method": "biochar", "country": "MX", "term_start": "2024-04-01", "term_end": "2030-03-31",
		"signed_on": "2024-03-21", "tonnes": "95000",
	}
	with := func(change map[string]any) []byte {
		m := map[string]any{}
		for k, v := range minimal {
			m[k] = v
		}
		for k, v := range change {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		b, _ := json.Marshal(m)
		return b
	}
	line := func(year int, tonnes string) map[string]any { return map[string]any{"year": year, "tonnes": tonnes} }
	for _, b := range [][]byte{
		[]byte(fullContractJSON),
		with(nil),
		with(map[string]any{"registry": "Climate Action Reserve", "registry_projects": []string{" CAR1335 ", "CAR1480"}}),
		with(map[string]any{"registry": "car", "registry_projects": []string{"CAR1335", "car1335"}}),
		with(map[string]any{"registry_projects": []string{}}),
		with(map[string]any{"method": "Direct Air Capture", "durability_years": 1000, "delivery_mode": "retire_on_delivery"}),
		with(map[string]any{"durability_years": "100+", "region": " Guanajuato ", "standard": "Puro", "notes": "n\u00e9 <b>"}),
		with(map[string]any{"price_per_tonne": "150.00", "currency": " usd "}),
		with(map[string]any{"price_per_tonne": "15000", "currency": "JPY"}),
		with(map[string]any{"price_per_tonne": "45.125", "currency": "KWD", "over_delivery_tolerance": "0.5"}),
		with(map[string]any{"price_per_tonne": "150.00"}),
		with(map[string]any{"tonnes": "0.001", "term_start": "2024-02-29", "term_end": "2028-02-28", "signed_on": "2024-02-29"}),
		with(map[string]any{"tonnes": "999999999999999.999", "term_end": "2074-03-31"}),
		with(map[string]any{"tonnes": "100", "term_end": "2025-03-31", "schedule": []any{line(1, "100")}}),
		with(map[string]any{"tonnes": "10", "term_end": "2026-03-31", "currency": "EUR",
			"schedule": []any{map[string]any{"year": 2, "tonnes": "4", "vintage": 2025, "price_per_tonne": "10.5", "due_on": "2026-03-31"}, line(1, "6")}}),
		with(map[string]any{"schedule": []any{line(1, "95000"), line(1, "0")}}),
		with(map[string]any{"schedule": []any{}}),
		with(map[string]any{"schedule": []any{map[string]any{"year": 1, "tonnes": "95000", "qty": 1}}}),
		with(map[string]any{"schedule": map[string]any{}}),
		with(map[string]any{"tonnes": 95000}),
		with(map[string]any{"tonnes": "-95000"}),
		with(map[string]any{"term_end": "2024-03-31"}),
		with(map[string]any{"signed_on": "2030-04-01"}),
		with(map[string]any{"country": "mx"}),
		with(map[string]any{"code": "TN 150"}),
		with(map[string]any{"code": nil}),
		with(map[string]any{"durability_years": true}),
		with(map[string]any{"colour": "green"}),
		with(nil)[1:],
		append(with(nil), '}'),
		append(with(nil), with(nil)...),
		[]byte(`[]`), []byte(`"TN150-2024"`), []byte(`5`), []byte(`null`), []byte(`{}`), []byte(``), []byte(`{"code": "X",}`),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseContractJSON(bytes.NewReader(in))
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Rule == "" || !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseContractJSON(%q): got %v (%T), want an ErrInvalid FieldError naming a field", in, err, err)
			}
			if strings.Contains(err.Error(), "ledger.") && !bytes.Contains(in, []byte("ledger.")) {
				t.Fatalf("ParseContractJSON(%q): got %q, want no Go type names in a user's error", in, err)
			}
			return
		}
		if err := ValidateCode("code", c.Code); err != nil || c.Tonnes.Sign() <= 0 || c.TermEnd.Before(c.TermStart) {
			t.Fatalf("ParseContractJSON(%q): accepted %+v", in, c)
		}
		years := len(c.Years())
		var sum Tonnes
		for i, l := range c.Schedule {
			if l.Year < 1 || l.Year > years || (i > 0 && l.Year <= c.Schedule[i-1].Year) || !l.Tonnes.IsPositive() {
				t.Fatalf("ParseContractJSON(%q): schedule %+v, want distinct years 1 to %d in order, each with tonnes", in, c.Schedule, years)
			}
			sum = sum.Add(l.Tonnes)
		}
		if !sum.Equal(c.Tonnes) {
			t.Fatalf("ParseContractJSON(%q): the schedule adds up to %s, want the contracted %s", in, sum, c.Tonnes)
		}
		canon, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("json.Marshal(%+v): %v", c, err)
		}
		back, err := ParseContractJSON(bytes.NewReader(canon))
		if err != nil {
			t.Fatalf("ParseContractJSON(%q) reads, but its canonical form %s is refused: %v", in, canon, err)
		}
		// A schedule left out is written out as the even split it stands for; read back, it is
		// a schedule given, with the same lines.
		if !back.ScheduleGiven {
			t.Fatalf("canonical form %s: the schedule is not read back as given", canon)
		}
		back.ScheduleGiven = c.ScheduleGiven
		if diff := cmp.Diff(c, back, cmpOpts); diff != "" {
			t.Fatalf("ParseContractJSON(%q): its canonical form %s reads back otherwise (-want +got):\n%s", in, canon, diff)
		}
		if c.TermsDigest() != back.TermsDigest() {
			t.Fatalf("ParseContractJSON(%q): terms digest %s, after a round trip %s", in, c.TermsDigest(), back.TermsDigest())
		}
		if again, _ := json.Marshal(back); !bytes.Equal(again, canon) {
			t.Fatalf("canonical form %s: written again as %s", canon, again)
		}
		if !slices.Equal(c.RegistryProjects, back.RegistryProjects) {
			t.Fatalf("registry projects %q, read back %q", c.RegistryProjects, back.RegistryProjects)
		}
	})
}
