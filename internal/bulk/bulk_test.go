package bulk

import (
	"slices"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
)

// The operations columns are op, every field of every operation, and terms: no field left
// out, none twice, none that no operation has.
func TestOperationColumnsAreTheOperationsFields(t *testing.T) {
	want := map[string]bool{colOp: true, colTerms: true}
	for _, op := range ledger.Ops {
		for _, f := range ledger.OpFields(op) {
			want[f] = true
		}
	}
	seen := map[string]bool{}
	for _, c := range OperationColumns {
		if seen[c] {
			t.Errorf("column %q twice", c)
		}
		seen[c] = true
		if !want[c] {
			t.Errorf("column %q is no operation's field", c)
		}
	}
	for f := range want {
		if !slices.Contains(OperationColumns, f) {
			t.Errorf("field %q has no column", f)
		}
	}
}
