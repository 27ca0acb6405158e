package ledger

import (
	"strings"
	"testing"
)

// Text where a number belongs is told it is not a number, even when it holds an e.
func TestTonnesTextIsNoExponent(t *testing.T) {
	for s, want := range map[string]string{
		"ten": "is not a decimal number", "one": "is not a decimal number", "e3": "is not a decimal number",
		"1e3": "uses an exponent", "2.5E-2": "uses an exponent", "+1e3": "uses an exponent",
	} {
		_, err := ParseTonnes(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTonnes(%q) = %v, want %q", s, err, want)
		}
	}
}
