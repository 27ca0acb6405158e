// Package bench generates a synthetic but rule-abiding ledger of many contracts and millions
// of postings, loads it, and measures the reports and the audit on it.
//
// The history of each contract is built with the same ledger.Build* functions the write path
// uses, against a position simulated in effective-date order, so every entry would have been
// accepted by the store: no balance ever falls below its floor at any date. Recorded times
// trail effective dates by a few days (a few entries by weeks, as back-dated corrections do),
// and each contract's entries are chained in recorded order.
package bench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

var (
	buyers    = []string{"Microsoft", "Frontier Buyers", "Stripe", "Shopify", "JPMorgan Chase", "Google", "Airbus", "NextGen CDR"}
	countries = []string{"US", "CA", "MX", "BR", "IN", "KE", "GB", "DE", "NO", "IS", "AU", "PH"}
	registry  = []string{"car", "verra", "puro", "isometric", "gold-standard"}
	durations = []string{"40", "100", "100+", "1000", "10000+"}
)

// Contracts returns n synthetic contracts, the same for the same seed.
func Contracts(n int, seed uint64, today time.Time) []ledger.Contract {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	out := make([]ledger.Contract, 0, n)
	for i := 0; i < n; i++ {
		years := 1 + r.IntN(8)
		start := ledger.Date(2019+r.IntN(6), time.Month(1+r.IntN(12)), 1+r.IntN(28))
		end := ledger.AddYears(start, years).AddDate(0, 0, -1)
		dur, _ := ledger.ParseDurability(durations[r.IntN(len(durations))])
		c := ledger.Contract{
			Code:     fmt.Sprintf("BENCH-%05d", i+1),
			Buyer:    buyers[r.IntN(len(buyers))],
			Supplier: fmt.Sprintf("Supplier %03d", r.IntN(120)+1),
			Project:  fmt.Sprintf("Synthetic project %d", i+1),
			Method:   ledger.Methods[r.IntN(len(ledger.Methods))],
			Country:  countries[r.IntN(len(countries))], Region: fmt.Sprintf("Region %d", r.IntN(9)+1),
			Registry: registry[r.IntN(len(registry))], Standard: "synthetic",
			Durability: dur, TermStart: start, TermEnd: end, SignedOn: start.AddDate(0, 0, -r.IntN(90)),
			Tonnes:       ledger.TonnesFromKg(int64(20_000+r.IntN(480_000)) * 1000),
			DeliveryMode: ledger.DeliverTransfer,
			Notes:        "synthetic benchmark contract",
		}
		if r.IntN(10) == 0 {
			c.DeliveryMode = ledger.DeliverRetireOnDelivery
		}
		if r.IntN(10) < 7 {
			p := decimal.New(int64(8000+r.IntN(52000)), -2)
			c.PricePerTonne, c.Currency = &p, "USD"
		}
		if err := c.Validate(); err != nil {
			panic(fmt.Sprintf("bench contract %s: %v", c.Code, err))
		}
		out = append(out, c)
	}
	return out
}

// History returns a contract's sealed history of about `postings` postings, the sign entry
// first, every entry valid under the ledger's rules.
func History(c ledger.Contract, postings int, seed uint64, today time.Time) (*store.SealedHistory, error) {
	r := rand.New(rand.NewPCG(seed, uint64(len(c.Code))*7919))
	sign := ledger.BuildSign(&c, "bench:"+c.Code+":sign")
	sign.ID, sign.Request = ledger.NewID(), ledger.RequestDigest("bench", sign.Key)
	entries := []ledger.Entry{sign}
	var pos ledger.Position
	apply := func(e ledger.Entry, accountKind map[string]ledger.AccountKind) {
		for _, p := range e.Postings {
			k := e.Kind
			pos.Add(accountKind[p.Account], k, p.Amount)
		}
	}
	kinds := map[string]ledger.AccountKind{}
	for _, a := range c.Accounts().List(&c) {
		kinds[a.Code] = a.Kind
	}
	apply(sign, kinds)

	// Activity on two days a month from the term start to the end of the term (or today).
	last := c.TermEnd
	if limit := today.AddDate(0, 0, -1); last.After(limit) {
		last = limit
	}
	var days []time.Time
	for m := ledger.Date(c.TermStart.Year(), c.TermStart.Month(), 1); !m.After(last); m = m.AddDate(0, 1, 0) {
		for _, d := range []int{14, 27} {
			day := m.AddDate(0, 0, d)
			if !day.Before(c.TermStart) && !day.After(last) {
				days = append(days, day)
			}
		}
	}
	if len(days) == 0 {
		return &store.SealedHistory{Contract: c, Entries: entries}, nil
	}
	want := postings/2 - 1
	perDay := want/len(days) + 1
	posted := 2 // the sign entry's
	// deliveries take about 55% of the entries; size them so the contract lasts
	quantum := c.Tonnes.Kg() / int64(want+1)
	if quantum < 1 {
		quantum = 1
	}
	n := 0
	var delivered []ledger.Entry
	reverted := map[string]bool{}
	rod := c.DeliveryMode == ledger.DeliverRetireOnDelivery
	// The last day takes whatever the earlier days fell short of.
	final := days[len(days)-1]
	for range 4 * perDay {
		days = append(days, final)
	}
	for _, day := range days {
		// a day takes its share of entries; an operation that does not fit the position is
		// skipped and another tried, so the contract reaches its number of postings
		for made, tries := 0, 0; made < perDay && posted < postings && tries < 8*perDay; tries++ {
			var e ledger.Entry
			var err error
			key := fmt.Sprintf("bench:%s:%d", c.Code, n)
			amount := ledger.TonnesFromKg(1 + r.Int64N(2*quantum))
			x := r.IntN(100)
			switch {
			case x < 55 || (rod && x < 90):
				if amount.GreaterThan(pos.Open) {
					amount = pos.Open
				}
				if !amount.IsPositive() {
					continue
				}
				e, err = ledger.BuildDeliver(&c, c.Schedule, pos, ledger.DeliverRequest{Contract: c.Code, Tonnes: amount, Date: day,
					Vintage: day.Year() - r.IntN(2), Key: key})
			case x < 90:
				amount = amount.Min(pos.Holding)
				if !amount.IsPositive() {
					continue
				}
				e, err = ledger.BuildRetire(&c, pos, ledger.RetireRequest{Contract: c.Code, Tonnes: amount, Date: day, Beneficiary: c.Buyer,
					Reason: "synthetic claim", Claim: fmt.Sprint(day.Year()), Key: key})
			case x < 94:
				amount = amount.Min(pos.Open.Div10())
				if !amount.IsPositive() {
					continue
				}
				e, err = ledger.BuildCancel(&c, pos, ledger.CancelRequest{Contract: c.Code, Tonnes: amount, Date: day, Reason: "synthetic shortfall", Key: key})
			case x < 97:
				amount = amount.Min(pos.Delivered.Div10())
				if !amount.IsPositive() {
					continue
				}
				e, err = ledger.BuildReverse(&c, pos, ledger.ReverseRequest{Contract: c.Code, Tonnes: amount, Date: day, Reason: "synthetic reversal",
					Remedy: ledger.RemedyBuffer, Key: key})
			case x < 99:
				amount = amount.Min(pos.Holding)
				if !amount.IsPositive() {
					continue
				}
				e, err = ledger.BuildReverse(&c, pos, ledger.ReverseRequest{Contract: c.Code, Tonnes: amount, Date: day, Reason: "synthetic reversal",
					Remedy: ledger.RemedyReplace, Key: key})
			default:
				// correct an earlier delivery still fully covered by the holding
				if len(delivered) == 0 || rod {
					continue
				}
				orig := delivered[r.IntN(len(delivered))]
				if reverted[orig.ID] || deliveredAmount(orig).GreaterThan(pos.Holding) {
					continue
				}
				e, err = ledger.BuildRevert(orig, ledger.RevertRequest{Entry: orig.ID, Date: day, Reason: "synthetic correction", Key: key})
				e.Key = key
				reverted[orig.ID] = true
			}
			if err != nil {
				return nil, fmt.Errorf("bench history %s: %w", c.Code, err)
			}
			e.ID = ledger.NewID()
			e.Request = ledger.RequestDigest("bench", key)
			if err := e.Validate(); err != nil {
				return nil, fmt.Errorf("bench history %s: %w", c.Code, err)
			}
			if e.Kind == ledger.KindRevert {
				// count the correction under the kind it corrects, as the rollups do
				for _, p := range e.Postings {
					pos.Add(kinds[p.Account], ledger.KindDeliver, p.Amount)
				}
			} else {
				apply(e, kinds)
			}
			if e.Kind == ledger.KindDeliver && !rod {
				delivered = append(delivered, e)
			}
			entries = append(entries, e)
			n++
			made++
			posted += len(e.Postings)
		}
	}
	// Record each entry a little after it took effect (a few weeks for 1 in 50), never before
	// the signing nor before the entry it corrects, then chain the entries in recorded order.
	at := make([]time.Time, len(entries))
	index := map[string]int{}
	for i, e := range entries {
		index[e.ID] = i
		t := e.EffectiveOn.Add(9 * time.Hour)
		if i > 0 {
			lag := time.Duration(r.IntN(5*24*3600)) * time.Second
			if r.IntN(50) == 0 {
				lag += time.Duration(20+r.IntN(40)) * 24 * time.Hour
			}
			t = t.Add(lag)
			if t.After(today) {
				t = today.Add(-time.Duration(1+r.IntN(3600)) * time.Second)
			}
			if !t.After(at[0]) {
				t = at[0].Add(time.Second)
			}
			if e.Reverts != "" && !t.After(at[index[e.Reverts]]) {
				t = at[index[e.Reverts]].Add(time.Second)
			}
		}
		at[i] = t
	}
	idx := make([]int, len(entries))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return at[a].Compare(at[b]) })
	sealed := make([]ledger.Entry, 0, len(entries))
	prev := ledger.GenesisHash
	for seq, i := range idx {
		e := entries[i]
		if err := e.Seal(int64(seq+1), prev, at[i]); err != nil {
			return nil, err
		}
		prev = e.Hash
		sealed = append(sealed, e)
	}
	if bad := pos.Check(); len(bad) > 0 {
		return nil, fmt.Errorf("bench history %s: %v", c.Code, bad)
	}
	return &store.SealedHistory{Contract: c, Entries: sealed}, nil
}

// deliveredAmount is what a delivery entry put into the holding (or retired) account.
func deliveredAmount(e ledger.Entry) ledger.Tonnes {
	for _, p := range e.Postings {
		if p.Amount.IsPositive() {
			return p.Amount
		}
	}
	return ledger.Zero
}
