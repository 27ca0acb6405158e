package ledger

import "testing"

// Position.Add is a hand-written switch (the audit calls it for every rollup row); it must add
// exactly what Measures says, for every account kind and entry kind.
func TestPositionAddIsMeasures(t *testing.T) {
	one := MustTonnes("1")
	for _, ak := range AccountKinds {
		for _, k := range Kinds {
			var p Position
			p.Add(ak, k, one)
			got := map[string]Tonnes{"contracted": p.Contracted, "replacements": p.Replacements, "open": p.Open,
				"delivered": p.Delivered, "holding": p.Holding, "retired": p.Retired, "cancelled": p.Cancelled,
				"reversed": p.Reversed, "buffer_cancelled": p.BufferCancelled}
			for _, m := range Measures {
				g, ok := got[m.Name]
				if !ok {
					continue // holding_in is no field of a position
				}
				want := Zero
				if m.Counts(ak, k) {
					want = one
				}
				if !g.Equal(want) {
					t.Errorf("Position.Add(%s, %s, 1): %s = %s, Measures say %s", ak, k, m.Name, g, want)
				}
			}
		}
	}
}
