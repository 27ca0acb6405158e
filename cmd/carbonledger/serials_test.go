package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLISerialLabels: serials show each block as its registry writes it. A delivery in the
// Climate Action Reserve's own form is shown back exactly as written; a retirement of part of
// it is shown as its own request wrote it (registry form or generic); each piece that stays
// delivered shows the delivery's registry form rebuilt for its own range; a reversal
// of part of such a piece splits it again the same way; the table keeps the generic
// range beside the label; the entry's metadata keeps the generic form.
func TestCLISerialLabels(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	file := filepath.Join(t.TempDir(), "contract.json")
	if err := os.WriteFile(file, []byte(`{"code": "SER-CAR", "buyer": "Acme Buyer", "supplier": "Good Supplier",
	  "project": "Nitric acid plant", "method": "other", "country": "US", "region": "Kansas", "registry": "car",
	  "standard": "Nitric Acid N2O", "durability_years": "100+", "term_start": "2025-01-01", "term_end": "2025-12-31",
	  "signed_on": "2024-12-01", "tonnes": "10000", "price_per_tonne": "20", "currency": "USD", "delivery_mode": "transfer"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("contract", "add", "-f", file)
	const (
		series    = "CAR-1-US-1335-31-983-KS-2025-9205"
		delivered = series + "-1 to 5000"
	)
	type block struct {
		Prefix string `json:"prefix"`
		First  int64  `json:"first"`
		Last   int64  `json:"last"`
		Label  string `json:"label"`
		State  string `json:"state"`
	}
	blocks := func() []block {
		t.Helper()
		var got struct {
			Blocks []block `json:"blocks"`
		}
		out := c.ok("serials", "SER-CAR", "--format", "json")
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("serials --format json: %v\n%s", err, out)
		}
		return got.Blocks
	}
	check := func(step string, want ...block) {
		t.Helper()
		got := blocks()
		if len(got) != len(want) {
			t.Fatalf("%s: %d blocks %+v, want %+v", step, len(got), got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: block %d = %+v, want %+v", step, i, got[i], want[i])
			}
		}
	}

	c.ok("deliver", "--contract", "SER-CAR", "--tonnes", "5000", "--date", "2025-03-01", "--vintage", "2025", "--serials", delivered)
	check("after the delivery", block{series, 1, 5000, delivered, "delivered"})

	// A retirement in the registry's form from the middle splits the block in three.
	retired := series + "-1001 to 2000"
	c.ok("retire", "--contract", "SER-CAR", "--tonnes", "1000", "--date", "2025-03-10", "--beneficiary", "Acme Buyer",
		"--reason", "2025 claim", "--serials", retired)
	check("after the first retirement",
		block{series, 1, 1000, series + "-1 to 1000", "delivered"},
		block{series, 1001, 2000, retired, "retired"},
		block{series, 2001, 5000, series + "-2001 to 5000", "delivered"})

	// A retirement written in the generic form is shown as written; what remains of the
	// delivery still shows the delivery's form.
	c.ok("retire", "--contract", "SER-CAR", "--tonnes", "500", "--date", "2025-03-11", "--beneficiary", "Acme Buyer",
		"--reason", "2025 claim", "--serials", series+":2001-2500")
	check("after the second retirement",
		block{series, 1, 1000, series + "-1 to 1000", "delivered"},
		block{series, 1001, 2000, retired, "retired"},
		block{series, 2001, 2500, series + ":2001-2500", "retired"},
		block{series, 2501, 5000, series + "-2501 to 5000", "delivered"})

	// A reversal of part of a piece splits it again: the reversed block as the reversal wrote
	// it, what remains in the delivery's form for its own range.
	c.ok("reverse", "--contract", "SER-CAR", "--tonnes", "100", "--date", "2025-04-01", "--reason", "fire",
		"--remedy", "replace", "--serials", series+"-1 to 100")
	check("after the reversal",
		block{series, 1, 100, series + "-1 to 100", "reversed"},
		block{series, 101, 1000, series + "-101 to 1000", "delivered"},
		block{series, 1001, 2000, retired, "retired"},
		block{series, 2001, 2500, series + ":2001-2500", "retired"},
		block{series, 2501, 5000, series + "-2501 to 5000", "delivered"})

	out := c.ok("serials", "SER-CAR")
	wantOut(t, out, "SERIALS", "RANGE", series+"-2501 to 5000", series+":2501-5000", retired, series+":1001-2000")

	// The entry's metadata keeps the generic form (it is sealed by the entry's hash).
	if j := c.ok("journal", "SER-CAR", "--format", "json"); !strings.Contains(j, series+":1-5000") {
		t.Errorf("journal does not keep the delivery's metadata serials %s:1-5000:\n%s", series, j)
	}
}
