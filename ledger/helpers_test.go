package ledger

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// cmpOpts compares the domain's exact decimals by value: Tonnes and decimal.Decimal hold a
// big.Int that go-cmp cannot (and should not) look inside, and "12.5" equals "12.500".
var cmpOpts = cmp.Options{
	cmp.Comparer(Tonnes.Equal),
	cmp.Comparer(func(a, b decimal.Decimal) bool { return a.Equal(b) }),
}

// wantFieldError fails the test unless err is a *FieldError naming field, of the given kind
// (errors.Is), whose message contains every fragment.
func wantFieldError(t *testing.T, err error, field string, kind error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want a %s error on field %q containing %q", kind, field, fragments)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("got error %v of type %T, want a *FieldError", err, err)
	}
	if fe.Field != field {
		t.Errorf("got field %q, want %q (error: %v)", fe.Field, field, err)
	}
	if !errors.Is(err, kind) {
		t.Errorf("got errors.Is(err, %v) false, want true (error: %v)", kind, err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("got error %q, want it to contain %q", err.Error(), f)
		}
	}
}

// tn parses a tonnes literal of the test itself.
func tn(s string) Tonnes { return MustTonnes(s) }

// tp returns a pointer to the tonnes s.
func tp(s string) *Tonnes { t := MustTonnes(s); return &t }

// dp returns a pointer to the decimal s.
func dp(s string) *decimal.Decimal { d := decimal.RequireFromString(s); return &d }
