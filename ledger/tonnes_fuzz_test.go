package ledger

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
)

var fixedScaleRE = regexp.MustCompile(`^-?(0|[1-9][0-9]{0,14})\.[0-9]{3}$`)

// FuzzParseTonnes checks that whatever ParseTonnes accepts survives every way an amount
// travels (text, JSON, kilograms) unchanged, and that whatever it refuses is refused with a
// FieldError a user can act on. It must never panic.
func FuzzParseTonnes(f *testing.F) {
	for _, s := range []string{
		"0", "-0", "0.000", "-0.000", "00", "12", "12.5", "12.500", "12.05", "0.001", "-0.001", "-3",
		"000123.4", "95000", "234000", "123456789012345", "999999999999999.999", "-999999999999999.999",
		"1234567890123456", "0000000000000000000000000000000000000001", strings.Repeat("9", 41),
		"1.2345", "12.5000", "1e3", "1E3", "1e-3", "NaN", "nan", "-NaN", "Inf", "+Inf", "-Inf", "infinity",
		"Infinity", "", " ", "1,000", "1 000", "1_000", "1'000", " 12", "12 ", "\t1", "+1", ".5", "-.5",
		"5.", "abc", "-", "--1", "1.2.3", "0x10", "١٢", "１２", "−3", "\x00", "1\x00", "\xff", "12t",
		"\"12\"", "1.", "-0.0001", "9223372036854775807", "-9223372036854775808", "18446744073709551616",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTonnes(s)
		pos, perr := ParsePositiveTonnes(s)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseTonnes(%q): got error %v of type %T, want *FieldError", s, err, err)
			}
			if fe.Field != "tonnes" || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "tonnes") {
				t.Fatalf("ParseTonnes(%q): got %q (field %q), want an ErrInvalid error naming tonnes", s, err, fe.Field)
			}
			if !got.IsZero() {
				t.Fatalf("ParseTonnes(%q) on error: got %s, want zero", s, got)
			}
			if perr == nil {
				t.Fatalf("ParsePositiveTonnes(%q): got %s, want an error as ParseTonnes refuses it", s, pos)
			}
		} else {
			if len(s) > maxInputLen {
				t.Fatalf("ParseTonnes(%q): accepted %d characters, want at most %d", s, len(s), maxInputLen)
			}
			str := got.String()
			if !fixedScaleRE.MatchString(str) {
				t.Fatalf("ParseTonnes(%q).String(): got %q, want fixed scale 3 with at most 15 integer digits", s, str)
			}
			again, err := ParseTonnes(str)
			if err != nil || !again.Equal(got) || again.String() != str {
				t.Fatalf("ParseTonnes(%q).String()=%q: reparsed as %s, %v, want the same amount", s, str, again, err)
			}
			b, err := json.Marshal(got)
			if err != nil || string(b) != `"`+str+`"` {
				t.Fatalf("json.Marshal(%s): got %s, %v, want %q", str, b, err, str)
			}
			var fromJSON Tonnes
			if err := json.Unmarshal(b, &fromJSON); err != nil || !fromJSON.Equal(got) {
				t.Fatalf("json.Unmarshal(%s): got %s, %v, want %s", b, fromJSON, err, str)
			}
			if back := TonnesFromKg(got.Kg()); !back.Equal(got) || back.String() != str {
				t.Fatalf("TonnesFromKg(%d): got %s, want %s", got.Kg(), back, str)
			}
			var scanned Tonnes
			if err := scanned.Scan([]byte(str)); err != nil || !scanned.Equal(got) {
				t.Fatalf("Scan(%q): got %s, %v, want %s", str, scanned, err, str)
			}
			if got.IsPositive() != (perr == nil) {
				t.Fatalf("ParsePositiveTonnes(%q): got %s, %v; want acceptance exactly when %s > 0", s, pos, perr, str)
			}
			if perr == nil && !pos.Equal(got) {
				t.Fatalf("ParsePositiveTonnes(%q): got %s, want %s", s, pos, got)
			}
		}
		// Any bytes at all through the JSON path: an error or a value, never a panic.
		var u Tonnes
		if err := u.UnmarshalJSON([]byte(s)); err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), "tonnes") {
				t.Fatalf("UnmarshalJSON(%q): got %v (%T), want a FieldError naming tonnes", s, err, err)
			}
		}
	})
}
