package reports

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
)

// The term report's own JSON writer must write exactly what encoding/json writes for the same
// report, whatever the strings hold (quotes, controls, HTML, invalid UTF-8, U+2028), whichever
// optional fields are set.
func TestTermJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	strs := []string{"", "BENCH-00001", "Microsoft", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\r\b\f\x01\x1f",
		"Guanajuato, México", "\u2028\u2029", "bad \xff utf8 \xc3", "emoji 🌱", "2026-11-29"}
	str := func() string { return strs[r.IntN(len(strs))] }
	opt := func() *string {
		if r.IntN(3) == 0 {
			return nil
		}
		s := str()
		return &s
	}
	tons := func() ledger.Tonnes { return ledger.TonnesFromKg(r.Int64N(2_000_000_000_000) - 1_000_000_000_000) }
	for n := 0; n < 300; n++ {
		term := Term{Meta: Meta{AsOf: str()}}
		if r.IntN(2) == 0 {
			term.KnownAt = str()
		}
		if r.IntN(10) > 0 {
			term.Contracts = []TermContract{}
		}
		for range r.IntN(4) {
			c := TermContract{Code: str(), Buyer: str(), Supplier: str(), Method: ledger.Method(str()), TermStart: str(), TermEnd: str(),
				Contracted: tons(), Replacements: tons(), ScheduledToDate: tons(), Delivered: tons(), Retired: tons(),
				Cancelled: tons(), Reversed: tons(), BufferCancelled: tons(), Holding: tons(), Outstanding: tons(),
				Shortfall: tons(), Surplus: tons(), DeliveryRate: opt(), WeightedPrice: opt(), Currency: str(),
				RemainingYears: r.IntN(20) - 2, Status: str(), TerminatedOn: str()}
			if r.IntN(2) == 0 {
				rr := tons()
				c.RunRate = &rr
			}
			if r.IntN(5) > 0 {
				c.Years = []TermYear{}
			}
			for range r.IntN(4) {
				c.Years = append(c.Years, TermYear{Year: r.IntN(12), Start: str(), End: str(), DueOn: str(), Due: r.IntN(2) == 0,
					Scheduled: tons(), Delivered: tons(), CumulativeDelivered: tons(), Shortfall: tons(), Surplus: tons(),
					Retired: tons(), Cancelled: tons(), Reversed: tons(), WeightedPrice: opt()})
			}
			term.Contracts = append(term.Contracts, c)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetIndent("", "  ")
		if err := enc.Encode(term); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := writeJSON(&got, term); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("report %d:\n got %s\nwant %s", n, got.Bytes(), want.Bytes())
		}
	}
}
