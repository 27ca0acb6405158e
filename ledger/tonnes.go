package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
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
// ("12.500"), which is also how it travels to and from PostgreSQL's numeric and JSON, and it
// converts exactly to and from decimal.Decimal.
//
// Inside, it is a whole number of kilograms in an int64: the scale is fixed, so that is exact,
// and it makes the arithmetic the audit does tens of millions of times free of allocation.
// Every amount is below 10^15 t (10^18 kg, inside int64's 9.2 x 10^18); a sum that would
// leave int64 panics rather than wrap.
type Tonnes struct{ kg int64 }

// Zero is 0 t.
var Zero = Tonnes{}

// ParseTonnes parses a plain decimal number of tonnes: optional '-', digits, optional point
// and at most three decimals. Exponents, '+', separators, spaces, NaN and Inf are refused with
// an error naming the value and the rule; nothing is ever rounded.
func ParseTonnes(s string) (Tonnes, error) {
	d, err := parseDecimal("tonnes", s, Scale, "(the finest unit is 1 kg)")
	if err != nil {
		return Zero, err
	}
	return fromDecimal(d), nil
}

// fromDecimal converts a decimal with at most 3 places and 15 integer digits.
func fromDecimal(d decimal.Decimal) Tonnes { return Tonnes{d.Shift(Scale).IntPart()} }

// TonnesFromDecimal converts d exactly, or reports why it cannot: more than 3 decimal places,
// or too large.
func TonnesFromDecimal(d decimal.Decimal) (Tonnes, error) {
	if !d.Equal(d.Truncate(Scale)) {
		return Zero, Invalid("tonnes", d.String(), "has more than 3 decimal places (the finest unit is 1 kg)")
	}
	if d.Abs().GreaterThanOrEqual(decimal.New(1, 15)) {
		return Zero, Invalid("tonnes", d.String(), "is too large (at most 15 digits before the point)")
	}
	return fromDecimal(d), nil
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
	case isExponent(strings.TrimPrefix(body, "+")):
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
func TonnesFromKg(kg int64) Tonnes { return Tonnes{kg} }

// isExponent reports whether s is a number in exponent form (1e3, 1.5E-2): a mantissa of
// digits with an optional point, e or E, an optional sign and digits. Text that merely holds
// an e ("ten") is no number at all, and is told so.
func isExponent(s string) bool {
	i := strings.IndexAny(s, "eE")
	if i <= 0 {
		return false
	}
	m, x := s[:i], strings.TrimLeft(s[i+1:], "+-")
	intPart, frac, _ := strings.Cut(m, ".")
	return (allDigits(intPart) || allDigits(frac)) && (intPart == "" || allDigits(intPart)) &&
		(frac == "" || allDigits(frac)) && len(s[i+1:])-len(x) <= 1 && allDigits(x)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// String prints the amount at fixed scale: "12.500", "-3.000", "0.000".
func (t Tonnes) String() string { return string(t.Append(make([]byte, 0, 24))) }

// Append appends the fixed-scale text of t to b.
func (t Tonnes) Append(b []byte) []byte {
	kg := t.kg
	if kg < 0 {
		b = append(b, '-')
	}
	u := uint64(kg)
	if kg < 0 {
		u = uint64(-kg)
	}
	b = strconv.AppendUint(b, u/1000, 10)
	f := u % 1000
	return append(b, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}

// Decimal returns the amount as a decimal.Decimal.
func (t Tonnes) Decimal() decimal.Decimal { return decimal.New(t.kg, -Scale) }

// Kg returns the amount in whole kilograms.
func (t Tonnes) Kg() int64 { return t.kg }

// Add returns t+u; it panics if the sum leaves the range of int64 kilograms (9.2 x 10^15 t),
// which no ledger of real tonnes can reach.
func (t Tonnes) Add(u Tonnes) Tonnes {
	r := t.kg + u.kg
	if (t.kg > 0 && u.kg > 0 && r < 0) || (t.kg < 0 && u.kg < 0 && r >= 0) {
		panic("tonnes: sum overflows 9.2e15 t")
	}
	return Tonnes{r}
}

func (t Tonnes) Sub(u Tonnes) Tonnes { return t.Add(u.Neg()) }
func (t Tonnes) Neg() Tonnes         { return Tonnes{-t.kg} }
func (t Tonnes) Cmp(u Tonnes) int {
	switch {
	case t.kg < u.kg:
		return -1
	case t.kg > u.kg:
		return 1
	}
	return 0
}
func (t Tonnes) Equal(u Tonnes) bool       { return t.kg == u.kg }
func (t Tonnes) IsZero() bool              { return t.kg == 0 }
func (t Tonnes) IsPositive() bool          { return t.kg > 0 }
func (t Tonnes) IsNegative() bool          { return t.kg < 0 }
func (t Tonnes) Sign() int                 { return t.Cmp(Zero) }
func (t Tonnes) LessThan(u Tonnes) bool    { return t.kg < u.kg }
func (t Tonnes) GreaterThan(u Tonnes) bool { return t.kg > u.kg }

// MulInt returns t*n; it panics on overflow.
func (t Tonnes) MulInt(n int64) Tonnes {
	hi, lo := bits.Mul64(uint64(abs(t.kg)), uint64(abs(n)))
	if hi != 0 || lo > 1<<63-1 {
		panic("tonnes: product overflows 9.2e15 t")
	}
	return Tonnes{t.kg * n}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

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

// MarshalText writes the amount at fixed scale. It also makes encoding/json write Tonnes as
// a JSON string ("12.500"): a MarshalJSON would have its output re-validated and compacted on
// every value, which cost a third of encoding a large report. MarshalText and UnmarshalText
// also let Tonnes be used with flag.TextVar and in CSV.
func (t Tonnes) MarshalText() ([]byte, error) { return t.Append(make([]byte, 0, 24)), nil }

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
	var str string
	switch v := src.(type) {
	case []byte:
		if kg, ok := scanKg(v); ok { // (without making a string of every amount)
			*t = Tonnes{kg}
			return nil
		}
		str = string(v)
	case string:
		str = v
	case int64:
		*t = Tonnes{v * 1000}
		return nil
	case nil:
		*t = Zero
		return nil
	default:
		return fmt.Errorf("tonnes: cannot scan %T", src)
	}
	if kg, ok := scanKg(str); ok {
		*t = Tonnes{kg}
		return nil
	}
	d, err := decimal.NewFromString(str)
	if err != nil {
		return fmt.Errorf("tonnes: cannot scan %q: %w", str, err)
	}
	if !d.Equal(d.Truncate(Scale)) {
		return fmt.Errorf("tonnes: database value %q has more than 3 decimal places", str)
	}
	v, err := TonnesFromDecimal(d)
	if err != nil {
		return fmt.Errorf("tonnes: database value %q is out of range: %w", str, err)
	}
	*t = v
	return nil
}

// ScanText is Scan of a numeric's text, for readers that hold it as bytes: passing a []byte as
// Scan's interface argument costs a heap allocation, 18 million times in an audit.
func (t *Tonnes) ScanText(b []byte) error {
	if kg, ok := scanKg(b); ok {
		*t = Tonnes{kg}
		return nil
	}
	return t.Scan(b)
}

// scanKg reads PostgreSQL's text of a numeric ("-12.5", "100", "0.001000") as kilograms
// without allocating; ok is false for anything else (more places than 3 that are not zeros,
// too many digits), which Scan then handles through decimal.
func scanKg[T string | []byte](s T) (int64, bool) {
	neg := false
	if len(s) > 0 && s[0] == '-' {
		neg, s = true, s[1:]
	}
	intPart, frac := s, s[len(s):]
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			intPart, frac = s[:i], s[i+1:]
			break
		}
	}
	if len(intPart) == 0 || len(intPart) > 15 {
		return 0, false
	}
	var kg int64
	for i := 0; i < len(intPart); i++ {
		c := intPart[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		kg = kg*10 + int64(c-'0')
	}
	for i := 0; i < 3; i++ {
		kg *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			kg += int64(c - '0')
		}
	}
	for i := 3; i < len(frac); i++ {
		if frac[i] != '0' {
			return 0, false
		}
	}
	if neg {
		kg = -kg
	}
	return kg, true
}

// Sum adds amounts.
func Sum(ts ...Tonnes) Tonnes {
	var s Tonnes
	for _, t := range ts {
		s = s.Add(t)
	}
	return s
}

// Div10 returns a tenth of t, rounded toward zero to the kilogram.
func (t Tonnes) Div10() Tonnes { return Tonnes{t.kg / 10} }
