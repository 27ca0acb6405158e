package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// Scale is the number of decimal places of a tonne amount: 3, one kilogram, the finest unit
// any registry issues.
const Scale = 3

// maxIntDigits bounds the integer part (10^15 t is far beyond all CO2 ever emitted) so that
// every amount and every sum of them fits the numeric(24,3) columns with room to spare.
const maxIntDigits = 15

// maxInputLen refuses absurdly long input before any parsing work is done.
const maxInputLen = 40

// Tonnes is an exact quantity of tonnes of CO2e with at most three decimal places. The zero
// value is 0 t. It never passes through a float: it parses from and prints to fixed-scale text
// ("12.500"), which is also how it travels to and from PostgreSQL's numeric and JSON.
type Tonnes struct{ d decimal.Decimal }

// Zero is 0 t.
var Zero = Tonnes{}

// ParseTonnes parses a plain decimal number of tonnes: optional '-', digits, optional point
// and at most three decimals. Exponents, '+', separators, spaces, NaN and Inf are refused with
// an error naming the value and the rule; nothing is ever rounded.
func ParseTonnes(s string) (Tonnes, error) {
	d, err := parseDecimal("tonnes", s, Scale, "(the finest unit is 1 kg)")
	return Tonnes{d}, err
}

// parseDecimal parses the plain decimal grammar shared by tonnes and prices: an optional
// '-', digits, an optional point with digits after it, at most maxScale decimals and 15
// integer digits. why explains the scale limit in the error.
func parseDecimal(field, s string, maxScale int, why string) (decimal.Decimal, error) {
	if s == "" {
		return decimal.Zero, Invalid(field, "", "is empty; give a decimal number such as 12.500")
	}
	if len(s) > maxInputLen {
		return decimal.Zero, Invalid(field, s, fmt.Sprintf("is too long (%d characters, at most %d)", len(s), maxInputLen))
	}
	body := strings.TrimPrefix(s, "-")
	intPart, frac, hasPoint := strings.Cut(body, ".")
	lower := strings.ToLower(strings.TrimPrefix(body, "+"))
	switch {
	case lower == "nan" || lower == "inf" || lower == "infinity":
		return decimal.Zero, Invalid(field, s, "is not a finite number")
	case strings.ContainsAny(body, "eE"):
		return decimal.Zero, Invalid(field, s, "uses an exponent; write the number out in full")
	case strings.ContainsAny(s, " \t\n,_'"):
		return decimal.Zero, Invalid(field, s, "contains spaces or digit separators; write digits only, such as 1234.5")
	case intPart == "" || !allDigits(intPart) || (hasPoint && (frac == "" || !allDigits(frac))):
		return decimal.Zero, Invalid(field, s, "is not a decimal number (digits, an optional '-' and an optional point with digits after it)")
	case len(frac) > maxScale:
		return decimal.Zero, Invalid(field, s, fmt.Sprintf("has more than %d decimal places %s", maxScale, why))
	case len(strings.TrimLeft(intPart, "0")) > maxIntDigits:
		return decimal.Zero, Invalid(field, s, "is too large (at most 15 digits before the point)")
	}
	d, err := decimal.NewFromString(s)
	if err != nil { // unreachable after the checks above; kept so a library change cannot slip through
		return decimal.Zero, Invalid(field, s, "is not a decimal number")
	}
	return d, nil
}

// ParsePositiveTonnes parses like ParseTonnes and also requires the amount to be above zero,
// as every quantity moved by an operation must be.
func ParsePositiveTonnes(s string) (Tonnes, error) {
	t, err := ParseTonnes(s)
	if err != nil {
		return Zero, err
	}
	if !t.IsPositive() {
		return Zero, Invalid("tonnes", s, "must be greater than zero")
	}
	return t, nil
}

// MustTonnes parses s or panics; for constants in code and tests.
func MustTonnes(s string) Tonnes {
	t, err := ParseTonnes(s)
	if err != nil {
		panic(err)
	}
	return t
}

// TonnesFromKg returns kg/1000 t.
func TonnesFromKg(kg int64) Tonnes { return Tonnes{decimal.New(kg, -Scale)} }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// String prints the amount at fixed scale: "12.500", "-3.000", "0.000".
func (t Tonnes) String() string { return t.d.StringFixed(Scale) }

// Decimal returns the amount as a decimal.Decimal.
func (t Tonnes) Decimal() decimal.Decimal { return t.d }

// Kg returns the amount in whole kilograms. It is exact because the scale is at most 3.
func (t Tonnes) Kg() int64 { return t.d.Shift(Scale).IntPart() }

func (t Tonnes) Add(u Tonnes) Tonnes       { return Tonnes{t.d.Add(u.d)} }
func (t Tonnes) Sub(u Tonnes) Tonnes       { return Tonnes{t.d.Sub(u.d)} }
func (t Tonnes) Neg() Tonnes               { return Tonnes{t.d.Neg()} }
func (t Tonnes) Cmp(u Tonnes) int          { return t.d.Cmp(u.d) }
func (t Tonnes) Equal(u Tonnes) bool       { return t.d.Equal(u.d) }
func (t Tonnes) IsZero() bool              { return t.d.IsZero() }
func (t Tonnes) IsPositive() bool          { return t.d.IsPositive() }
func (t Tonnes) IsNegative() bool          { return t.d.IsNegative() }
func (t Tonnes) Sign() int                 { return t.d.Sign() }
func (t Tonnes) MulInt(n int64) Tonnes     { return Tonnes{t.d.Mul(decimal.NewFromInt(n))} }
func (t Tonnes) LessThan(u Tonnes) bool    { return t.d.LessThan(u.d) }
func (t Tonnes) GreaterThan(u Tonnes) bool { return t.d.GreaterThan(u.d) }

// Min returns the smaller of t and u.
func (t Tonnes) Min(u Tonnes) Tonnes {
	if t.Cmp(u) <= 0 {
		return t
	}
	return u
}

// Max returns the larger of t and u.
func (t Tonnes) Max(u Tonnes) Tonnes {
	if t.Cmp(u) >= 0 {
		return t
	}
	return u
}

// MarshalJSON writes the amount as a fixed-scale JSON string.
func (t Tonnes) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// UnmarshalJSON reads a JSON string holding a decimal number. Bare JSON numbers are refused:
// a decimal that crossed a float somewhere is exactly what this type exists to prevent.
func (t *Tonnes) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return Invalid("tonnes", "", "is null; give a decimal number as a string, such as \"12.500\"")
	}
	if len(b) == 0 || b[0] != '"' {
		return Invalid("tonnes", string(b), `must be a JSON string such as "12.500", not a bare number`)
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return Invalid("tonnes", string(b), "is not a valid JSON string")
	}
	v, err := ParseTonnes(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// MarshalText and UnmarshalText let Tonnes be used with flag.TextVar and in CSV.
func (t Tonnes) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

func (t *Tonnes) UnmarshalText(b []byte) error {
	v, err := ParseTonnes(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Scan reads a numeric column (delivered as text or []byte by lib/pq). It refuses a value with
// more than three decimals rather than round it: the database constrains the scale, so such a
// value means the schema and the code disagree.
func (t *Tonnes) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case []byte:
		s = string(v)
	case string:
		s = v
	case int64:
		*t = Tonnes{decimal.NewFromInt(v)}
		return nil
	case nil:
		*t = Zero
		return nil
	default:
		return fmt.Errorf("tonnes: cannot scan %T", src)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return fmt.Errorf("tonnes: cannot scan %q: %w", s, err)
	}
	if d.Exponent() < -Scale && !d.Equal(d.Truncate(Scale)) {
		return fmt.Errorf("tonnes: database value %q has more than 3 decimal places", s)
	}
	*t = Tonnes{d.Truncate(Scale)}
	return nil
}

// Sum adds amounts.
func Sum(ts ...Tonnes) Tonnes {
	var s Tonnes
	for _, t := range ts {
		s = s.Add(t)
	}
	return s
}

// Div10 returns a tenth of t, rounded down to the kilogram.
func (t Tonnes) Div10() Tonnes { return TonnesFromKg(t.Kg() / 10) }
