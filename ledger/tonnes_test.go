package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

func TestParseTonnesValid(t *testing.T) {
	tests := []struct {
		in   string
		want string // String() of the result
		kg   int64
	}{
		{"0", "0.000", 0},
		{"12", "12.000", 12000},
		{"12.5", "12.500", 12500},
		{"12.500", "12.500", 12500},
		{"12.05", "12.050", 12050},
		{"0.001", "0.001", 1},
		{"-3", "-3.000", -3000},
		{"-0.001", "-0.001", -1},
		{"-0", "0.000", 0},
		{"000123.4", "123.400", 123400},
		{"95000", "95000.000", 95000000},
		{"123456789012345", "123456789012345.000", 123456789012345000},                         // 15 integer digits
		{"999999999999999.999", "999999999999999.999", 999999999999999999},                     // the largest
		{"-999999999999999.999", "-999999999999999.999", -999999999999999999},                  // the smallest
		{"0000000000000000000000000000000000000001", "1.000", 1000},                            // 40 characters: leading zeros are not digits of the value
		{"0000000000000000000000123456789012345.5", "123456789012345.500", 123456789012345500}, // 15 significant digits behind zeros
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTonnes(tt.in)
			if err != nil {
				t.Fatalf("ParseTonnes(%q): got error %v, want %s", tt.in, err, tt.want)
			}
			if got.String() != tt.want {
				t.Errorf("ParseTonnes(%q).String(): got %q, want %q", tt.in, got.String(), tt.want)
			}
			if got.Kg() != tt.kg {
				t.Errorf("ParseTonnes(%q).Kg(): got %d, want %d", tt.in, got.Kg(), tt.kg)
			}
			want := decimal.RequireFromString(tt.want)
			if !got.Decimal().Equal(want) {
				t.Errorf("ParseTonnes(%q).Decimal(): got %s, want %s", tt.in, got.Decimal(), want)
			}
		})
	}
}

func TestParseTonnesRejects(t *testing.T) {
	long := strings.Repeat("1", 41)
	tests := []struct {
		in   string
		rule string
	}{
		{"1.2345", "has more than 3 decimal places (the finest unit is 1 kg)"},
		{"0.0001", "has more than 3 decimal places"},
		{"12.5000", "has more than 3 decimal places"}, // a trailing zero is still a fourth decimal: never rounded
		{"-1.2345", "has more than 3 decimal places"},
		{"1e3", "uses an exponent"},
		{"1E3", "uses an exponent"},
		{"1.5e-2", "uses an exponent"},
		{"-2E10", "uses an exponent"},
		{"NaN", "is not a finite number"},
		{"nan", "is not a finite number"},
		{"-NaN", "is not a finite number"},
		{"Inf", "is not a finite number"},
		{"-Inf", "is not a finite number"},
		{"+Inf", "is not a finite number"},
		{"inf", "is not a finite number"},
		{"infinity", "is not a finite number"},
		{"Infinity", "is not a finite number"},
		{"-infinity", "is not a finite number"},
		{"", "is empty; give a decimal number such as 12.500"},
		{long, "is too long (41 characters, at most 40)"},
		{"1,000", "contains spaces or digit separators"},
		{"1 000", "contains spaces or digit separators"},
		{"1_000", "contains spaces or digit separators"},
		{"1'000", "contains spaces or digit separators"},
		{" 12", "contains spaces or digit separators"},
		{"12 ", "contains spaces or digit separators"},
		{"12\n", "contains spaces or digit separators"},
		{"\t12", "contains spaces or digit separators"},
		{"12,5", "contains spaces or digit separators"},
		{"+1", "is not a decimal number"},
		{".5", "is not a decimal number"},
		{"-.5", "is not a decimal number"},
		{"5.", "is not a decimal number"},
		{"abc", "is not a decimal number"},
		{"-", "is not a decimal number"},
		{"--1", "is not a decimal number"},
		{"-+1", "is not a decimal number"},
		{"1.2.3", "is not a decimal number"},
		{"1-2", "is not a decimal number"},
		{"0x10", "is not a decimal number"},
		{"١٢", "is not a decimal number"}, // Arabic-Indic digits
		{"１２", "is not a decimal number"}, // full-width digits
		{"−3", "is not a decimal number"}, // U+2212 MINUS SIGN
		{"12t", "is not a decimal number"},
		{"1.-5", "is not a decimal number"},
		{"1234567890123456", "is too large (at most 15 digits before the point)"},
		{"-1234567890123456", "is too large"},
		{"1234567890123456.5", "is too large"},
		{"9999999999999999.999", "is too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTonnes(tt.in)
			if err == nil {
				t.Fatalf("ParseTonnes(%q): got %s, want an error that %s", tt.in, got, tt.rule)
			}
			frags := []string{"tonnes: ", tt.rule}
			if tt.in != "" {
				frags = append(frags, fmt.Sprintf("%q", tt.in))
			}
			wantFieldError(t, err, "tonnes", ErrInvalid, frags...)
			if !got.IsZero() {
				t.Errorf("ParseTonnes(%q) on error: got %s, want the zero value", tt.in, got)
			}
		})
	}
}

func TestParsePositiveTonnes(t *testing.T) {
	for _, in := range []string{"0.001", "1", "12.5", "95000", "999999999999999.999"} {
		got, err := ParsePositiveTonnes(in)
		if err != nil {
			t.Errorf("ParsePositiveTonnes(%q): got error %v, want %s", in, err, in)
			continue
		}
		if !got.Equal(tn(in)) {
			t.Errorf("ParsePositiveTonnes(%q): got %s, want %s", in, got, in)
		}
	}
	tests := []struct{ in, rule string }{
		{"0", "must be greater than zero"},
		{"0.000", "must be greater than zero"},
		{"-0", "must be greater than zero"},
		{"-3", "must be greater than zero"},
		{"-0.001", "must be greater than zero"},
		{"1.2345", "has more than 3 decimal places"}, // the grammar is checked first
		{"1e3", "uses an exponent"},
		{"", "is empty"},
	}
	for _, tt := range tests {
		got, err := ParsePositiveTonnes(tt.in)
		if err == nil {
			t.Errorf("ParsePositiveTonnes(%q): got %s, want an error that %s", tt.in, got, tt.rule)
			continue
		}
		wantFieldError(t, err, "tonnes", ErrInvalid, tt.rule)
		if tt.in != "" && !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)) {
			t.Errorf("ParsePositiveTonnes(%q): got error %q, want it to quote the value", tt.in, err)
		}
	}
}

func TestMustTonnesPanics(t *testing.T) {
	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !errors.Is(err, ErrInvalid) {
			t.Errorf("MustTonnes(\"1e3\"): got panic value %v, want an ErrInvalid error", r)
		}
	}()
	MustTonnes("1e3")
	t.Error("MustTonnes(\"1e3\"): got no panic, want one")
}

func TestTonnesStringFixedScale(t *testing.T) {
	tests := []struct {
		t    Tonnes
		want string
	}{
		{Zero, "0.000"},
		{Tonnes{}, "0.000"},
		{TonnesFromKg(1), "0.001"},
		{TonnesFromKg(-1), "-0.001"},
		{TonnesFromKg(12500), "12.500"},
		{TonnesFromKg(95000000), "95000.000"},
		{tn("7"), "7.000"},
		{tn("-3.1"), "-3.100"},
		{tn("0.05"), "0.050"},
		{tn("1").Sub(tn("0.999")), "0.001"},
	}
	for _, tt := range tests {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("String(): got %q, want %q", got, tt.want)
		}
		if got := fmt.Sprint(tt.t); got != tt.want {
			t.Errorf("fmt.Sprint: got %q, want %q", got, tt.want)
		}
	}
}

func TestTonnesFromKgRoundTrip(t *testing.T) {
	for _, kg := range []int64{0, 1, -1, 999, 1000, 1001, 12500, 95000000, 999999999999999999, -999999999999999999} {
		got := TonnesFromKg(kg)
		if got.Kg() != kg {
			t.Errorf("TonnesFromKg(%d).Kg(): got %d, want %d", kg, got.Kg(), kg)
		}
		back, err := ParseTonnes(got.String())
		if err != nil || !back.Equal(got) {
			t.Errorf("ParseTonnes(TonnesFromKg(%d).String()=%q): got %s, %v, want %s", kg, got.String(), back, err, got)
		}
	}
}

func TestTonnesMarshalJSON(t *testing.T) {
	tests := []struct {
		t    Tonnes
		want string
	}{
		{tn("12.5"), `"12.500"`},
		{tn("12"), `"12.000"`},
		{tn("-3"), `"-3.000"`},
		{Zero, `"0.000"`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.t)
		if err != nil || string(b) != tt.want {
			t.Errorf("json.Marshal(%s): got %s, %v, want %s", tt.t, b, err, tt.want)
		}
	}
	// In a struct and through a pointer, too.
	v := struct {
		A Tonnes  `json:"a"`
		B *Tonnes `json:"b"`
	}{tn("1.5"), tp("2")}
	b, err := json.Marshal(v)
	if want := `{"a":"1.500","b":"2.000"}`; err != nil || string(b) != want {
		t.Errorf("json.Marshal(struct): got %s, %v, want %s", b, err, want)
	}
}

func TestTonnesUnmarshalJSON(t *testing.T) {
	valid := []struct{ in, want string }{
		{`"12.5"`, "12.500"},
		{`"12.500"`, "12.500"},
		{`"12"`, "12.000"},
		{`"-3"`, "-3.000"},
		{`"0"`, "0.000"},
		{` "7.25" `, "7.250"},
		{`"\u0031\u0032"`, "12.000"}, // a JSON escape is still a string
	}
	for _, tt := range valid {
		var got Tonnes
		if err := json.Unmarshal([]byte(tt.in), &got); err != nil || got.String() != tt.want {
			t.Errorf("json.Unmarshal(%s): got %s, %v, want %s", tt.in, got, err, tt.want)
		}
	}
	refused := []struct{ in, rule string }{
		{`12.5`, `must be a JSON string such as "12.500", not a bare number`},
		{`12`, "not a bare number"},
		{`-3`, "not a bare number"},
		{`1e3`, "not a bare number"},
		{`null`, "is null"},
		{`true`, "must be a JSON string"},
		{`"12.3456"`, "has more than 3 decimal places"},
		{`"1e3"`, "uses an exponent"},
		{`"abc"`, "is not a decimal number"},
		{`""`, "is empty"},
		{`"1,000"`, "contains spaces or digit separators"},
		{`"NaN"`, "is not a finite number"},
		{`" 12"`, "contains spaces or digit separators"},
	}
	for _, tt := range refused {
		got := tn("99")
		err := json.Unmarshal([]byte(tt.in), &got)
		if err == nil {
			t.Errorf("json.Unmarshal(%s): got %s, want an error that %s", tt.in, got, tt.rule)
			continue
		}
		wantFieldError(t, err, "tonnes", ErrInvalid, tt.rule)
		if !got.Equal(tn("99")) {
			t.Errorf("json.Unmarshal(%s) on error: got the value changed to %s, want it left at 99.000", tt.in, got)
		}
	}
	// A malformed JSON string handed straight to the method (encoding/json would catch it first).
	var x Tonnes
	wantFieldError(t, x.UnmarshalJSON([]byte(`"12.5`)), "tonnes", ErrInvalid, "is not a valid JSON string")
	wantFieldError(t, x.UnmarshalJSON(nil), "tonnes", ErrInvalid, "must be a JSON string")
}

func TestTonnesJSONInStruct(t *testing.T) {
	type req struct {
		Tonnes Tonnes `json:"tonnes"`
	}
	var r req
	if err := json.Unmarshal([]byte(`{"tonnes":"95000"}`), &r); err != nil || !r.Tonnes.Equal(tn("95000")) {
		t.Errorf("got %s, %v, want 95000.000", r.Tonnes, err)
	}
	err := json.Unmarshal([]byte(`{"tonnes":95000.1}`), &r)
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
		t.Errorf("a bare number inside an object: got %v, want a FieldError of kind ErrInvalid", err)
	}
}

func TestTonnesText(t *testing.T) {
	b, err := tn("12.5").MarshalText()
	if err != nil || string(b) != "12.500" {
		t.Errorf("MarshalText: got %q, %v, want %q", b, err, "12.500")
	}
	var got Tonnes
	if err := got.UnmarshalText([]byte("4.2")); err != nil || !got.Equal(tn("4.2")) {
		t.Errorf("UnmarshalText(4.2): got %s, %v, want 4.200", got, err)
	}
	got = tn("1")
	wantFieldError(t, got.UnmarshalText([]byte("4.2345")), "tonnes", ErrInvalid, "has more than 3 decimal places")
	if !got.Equal(tn("1")) {
		t.Errorf("UnmarshalText on error: got the value changed to %s, want 1.000", got)
	}
}

func TestTonnesScan(t *testing.T) {
	tests := []struct {
		name string
		src  any
		want string
	}{
		{"bytes", []byte("12.5"), "12.500"},
		{"bytes fixed", []byte("12.500"), "12.500"},
		{"string", "95000.000", "95000.000"},
		{"negative string", "-3.250", "-3.250"},
		{"int64", int64(7), "7.000"},
		{"negative int64", int64(-2), "-2.000"},
		{"nil", nil, "0.000"},
		{"numeric with a 4th zero decimal", "12.3450", "12.345"}, // representable: nothing is lost
		{"numeric(24,6) zeros", []byte("1.000000"), "1.000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tn("42") // Scan must overwrite, nil included
			if err := got.Scan(tt.src); err != nil {
				t.Fatalf("Scan(%#v): got error %v, want %s", tt.src, err, tt.want)
			}
			if got.String() != tt.want {
				t.Errorf("Scan(%#v): got %s, want %s", tt.src, got, tt.want)
			}
		})
	}
	refused := []struct {
		name string
		src  any
		want string
	}{
		{"4 decimals", "12.3456", `tonnes: database value "12.3456" has more than 3 decimal places`},
		{"4 decimals bytes", []byte("0.0001"), "has more than 3 decimal places"},
		{"not a number", "abc", `tonnes: cannot scan "abc"`},
		{"float64", 12.5, "tonnes: cannot scan float64"},
		{"bool", true, "tonnes: cannot scan bool"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			got := tn("42")
			err := got.Scan(tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Scan(%#v): got %v, want an error containing %q", tt.src, err, tt.want)
			}
			if !got.Equal(tn("42")) {
				t.Errorf("Scan(%#v) on error: got the value changed to %s, want 42.000", tt.src, got)
			}
		})
	}
}

// ScanText reads the text of a numeric exactly as Scan does, errors included, and allocates
// nothing on the fast path.
func TestTonnesScanText(t *testing.T) {
	for _, src := range []string{"12.5", "12.500", "-3.250", "0", "12.3450", "1.000000", "999999999999999.999",
		"12.3456", "0.0001", "abc", "", "-", "1e3", "1000000000000000"} {
		want, got := tn("42"), tn("42")
		wantErr, gotErr := want.Scan([]byte(src)), got.ScanText([]byte(src))
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !got.Equal(want) {
			t.Errorf("ScanText(%q) = %s, %v; Scan gives %s, %v", src, got, gotErr, want, wantErr)
		}
	}
	b := []byte("-1234.567")
	var v Tonnes
	if n := testing.AllocsPerRun(100, func() { _ = v.ScanText(b) }); n != 0 {
		t.Errorf("ScanText allocates %v times per call, want 0", n)
	}
}

func TestTonnesArithmetic(t *testing.T) {
	a, b := tn("12.5"), tn("0.75")
	checks := []struct {
		name string
		got  Tonnes
		want string
	}{
		{"Add", a.Add(b), "13.250"},
		{"Sub", a.Sub(b), "11.750"},
		{"Sub below zero", b.Sub(a), "-11.750"},
		{"Neg", a.Neg(), "-12.500"},
		{"Neg Neg", a.Neg().Neg(), "12.500"},
		{"Neg zero", Zero.Neg(), "0.000"},
		{"MulInt", b.MulInt(4), "3.000"},
		{"MulInt negative", b.MulInt(-3), "-2.250"},
		{"MulInt zero", a.MulInt(0), "0.000"},
		{"Min", a.Min(b), "0.750"},
		{"Min other way", b.Min(a), "0.750"},
		{"Max", a.Max(b), "12.500"},
		{"Max other way", b.Max(a), "12.500"},
		{"Max zero", a.Neg().Max(Zero), "0.000"},
		{"Sum", Sum(a, b, a.Neg(), tn("0.001")), "0.751"},
		{"Sum none", Sum(), "0.000"},
		{"Sum kg exact", Sum(tn("0.1"), tn("0.2")), "0.300"}, // no float drift
		{"TonnesFromKg", TonnesFromKg(1500), "1.500"},
	}
	for _, c := range checks {
		if c.got.String() != c.want {
			t.Errorf("%s: got %s, want %s", c.name, c.got, c.want)
		}
	}

	preds := []struct {
		name      string
		got, want bool
	}{
		{"Equal same value different scale", tn("12.5").Equal(tn("12.500")), true},
		{"Equal different", a.Equal(b), false},
		{"IsZero zero", Zero.IsZero(), true},
		{"IsZero -0", tn("-0").IsZero(), true},
		{"IsZero 0.001", tn("0.001").IsZero(), false},
		{"IsPositive", a.IsPositive(), true},
		{"IsPositive zero", Zero.IsPositive(), false},
		{"IsPositive negative", a.Neg().IsPositive(), false},
		{"IsNegative", a.Neg().IsNegative(), true},
		{"IsNegative zero", Zero.IsNegative(), false},
		{"LessThan", b.LessThan(a), true},
		{"LessThan equal", a.LessThan(tn("12.500")), false},
		{"GreaterThan", a.GreaterThan(b), true},
		{"GreaterThan by 1 kg", tn("100.001").GreaterThan(tn("100")), true},
		{"GreaterThan equal", a.GreaterThan(tn("12.500")), false},
	}
	for _, p := range preds {
		if p.got != p.want {
			t.Errorf("%s: got %v, want %v", p.name, p.got, p.want)
		}
	}

	ints := []struct {
		name      string
		got, want int
	}{
		{"Cmp less", b.Cmp(a), -1},
		{"Cmp equal", a.Cmp(tn("12.500")), 0},
		{"Cmp greater", a.Cmp(b), 1},
		{"Sign positive", a.Sign(), 1},
		{"Sign zero", Zero.Sign(), 0},
		{"Sign negative", a.Neg().Sign(), -1},
	}
	for _, c := range ints {
		if c.got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, c.got, c.want)
		}
	}

	// The operands are values: arithmetic never changes them.
	if a.String() != "12.500" || b.String() != "0.750" {
		t.Errorf("operands after arithmetic: got %s and %s, want 12.500 and 0.750", a, b)
	}
}

func TestFieldError(t *testing.T) {
	_, err := ParseTonnes("1.23456")
	if want := `tonnes: "1.23456" has more than 3 decimal places (the finest unit is 1 kg)`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("got %T, want *FieldError", err)
	}
	if diff := cmp.Diff(&FieldError{Field: "tonnes", Value: "1.23456", Rule: "has more than 3 decimal places (the finest unit is 1 kg)"}, fe); diff != "" {
		t.Errorf("FieldError (-want +got):\n%s", diff)
	}
	for _, k := range []error{ErrNotFound, ErrConflict, ErrInsufficient, ErrImmutable} {
		if errors.Is(err, k) {
			t.Errorf("errors.Is(err, %v): got true, want false", k)
		}
	}

	// Relabel renames the field and leaves the original alone.
	re := Relabel(err, "--tonnes")
	wantFieldError(t, re, "--tonnes", ErrInvalid, `--tonnes: "1.23456" has more than 3 decimal places`)
	if fe.Field != "tonnes" {
		t.Errorf("Relabel changed the original: got field %q, want %q", fe.Field, "tonnes")
	}
	plain := errors.New("boom")
	if got := Relabel(plain, "x"); got != plain {
		t.Errorf("Relabel(non-FieldError): got %v, want the same error", got)
	}
	if Relabel(nil, "x") != nil {
		t.Errorf("Relabel(nil): got non-nil, want nil")
	}

	// Insufficient is its own kind, not ErrInvalid.
	ins := Insufficient("tonnes", "5", "is more than held")
	if !errors.Is(ins, ErrInsufficient) || errors.Is(ins, ErrInvalid) {
		t.Errorf("Insufficient: got Is(ErrInsufficient)=%v Is(ErrInvalid)=%v, want true, false", errors.Is(ins, ErrInsufficient), errors.Is(ins, ErrInvalid))
	}

	// The value is omitted when empty and shortened when long.
	if got, want := Invalid("date", "", "is required").Error(), "date: is required"; got != want {
		t.Errorf("empty value: got %q, want %q", got, want)
	}
	long := strings.Repeat("x", 100)
	got := Invalid("note", long, "is too long").Error()
	if want := `note: "` + strings.Repeat("x", 61) + `..." is too long`; got != want {
		t.Errorf("long value: got %q, want %q", got, want)
	}
}
