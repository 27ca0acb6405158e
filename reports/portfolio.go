package reports

import (
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/carbonledger/carbonledger/ledger"
)

// Portfolio is the portfolio report: every contract, the totals, the shares by method,
// supplier, region and durability, and the inventory delivered but not yet retired, with its
// age.
type Portfolio struct {
	Meta
	Totals    PortfolioLine              `json:"totals"`
	Contracts []PortfolioLine            `json:"contracts"`
	Shares    map[string][]PortfolioLine `json:"shares"`
	Inventory Inventory                  `json:"inventory"`
}

// PortfolioLine is a contract, a group of contracts, or the total.
type PortfolioLine struct {
	Key             string        `json:"key"`
	Contracts       int           `json:"contracts"`
	Buyer           string        `json:"buyer,omitempty"`
	Supplier        string        `json:"supplier,omitempty"`
	Method          string        `json:"method,omitempty"`
	Region          string        `json:"region,omitempty"`
	Durability      string        `json:"durability,omitempty"`
	Status          string        `json:"status,omitempty"`
	Contracted      ledger.Tonnes `json:"contracted"`
	Replacements    ledger.Tonnes `json:"replacements"`
	Delivered       ledger.Tonnes `json:"delivered"`
	Holding         ledger.Tonnes `json:"holding"`
	Retired         ledger.Tonnes `json:"retired"`
	Cancelled       ledger.Tonnes `json:"cancelled"`
	Reversed        ledger.Tonnes `json:"reversed"`
	Outstanding     ledger.Tonnes `json:"outstanding"`
	ShareContracted *string       `json:"share_of_contracted_percent,omitempty"`
}

// Inventory is the tonnes held (delivered, not retired or reversed), aged first-in first-out
// from the month of delivery.
type Inventory struct {
	Holding        ledger.Tonnes       `json:"holding"`
	AverageAgeDays *int64              `json:"average_age_days"`
	Buckets        []AgeBucket         `json:"buckets"`
	Contracts      []InventoryContract `json:"contracts"`
}

// InventoryContract is one contract's aged holding.
type InventoryContract struct {
	Code           string        `json:"code"`
	Holding        ledger.Tonnes `json:"holding"`
	AverageAgeDays *int64        `json:"average_age_days"`
	OldestMonth    string        `json:"oldest_delivery_month,omitempty"`
	Buckets        []AgeBucket   `json:"buckets"`
}

// AgeBucket is the tonnes of an age range.
type AgeBucket struct {
	Label  string        `json:"label"`
	Tonnes ledger.Tonnes `json:"tonnes"`
}

var bucketLabels = []string{"under 6 months", "6 to 12 months", "1 to 2 years", "2 years or more"}

func bucketOf(delivered, asOf time.Time) int {
	switch {
	case !asOf.Before(delivered.AddDate(2, 0, 0)):
		return 3
	case !asOf.Before(delivered.AddDate(1, 0, 0)):
		return 2
	case !asOf.Before(delivered.AddDate(0, 6, 0)):
		return 1
	}
	return 0
}

// BuildPortfolio builds the portfolio report as of a date.
func BuildPortfolio(meta Meta, cfs []*ledger.ContractFlows, asOf time.Time) Portfolio {
	r := Portfolio{Meta: meta, Totals: PortfolioLine{Key: "total"}, Contracts: []PortfolioLine{}, Shares: map[string][]PortfolioLine{}}
	groups := map[string]map[string]*PortfolioLine{"method": {}, "supplier": {}, "region": {}, "durability": {}}
	r.Inventory.Buckets = emptyBuckets()
	var invAgeWeighted decimal.Decimal
	// each contract's status and aged inventory, on every core; then the sums, in order
	type row struct {
		status   string
		ic       InventoryContract
		weighted decimal.Decimal
	}
	rows := make([]row, len(cfs))
	eachOn(len(cfs), func(i int) {
		rows[i].status = termStatus(cfs[i], asOf)
		rows[i].ic, rows[i].weighted = age(cfs[i], asOf)
	})
	for n, cf := range cfs {
		c := cf.Contract
		line := PortfolioLine{Key: c.Code, Contracts: 1, Buyer: c.Buyer, Supplier: c.Supplier, Method: string(c.Method),
			Region: region(c), Durability: c.Durability.Class(), Status: rows[n].status}
		line.fill(cf.Total.Position)
		r.Contracts = append(r.Contracts, line)
		r.Totals.add(line)
		for dim, key := range map[string]string{"method": line.Method, "supplier": line.Supplier, "region": line.Region, "durability": line.Durability} {
			g := groups[dim][key]
			if g == nil {
				g = &PortfolioLine{Key: key}
				groups[dim][key] = g
			}
			g.add(line)
		}
		ic, weighted := rows[n].ic, rows[n].weighted
		if ic.Holding.IsZero() && len(cf.HoldingIn) == 0 {
			continue
		}
		r.Inventory.Contracts = append(r.Inventory.Contracts, ic)
		r.Inventory.Holding = r.Inventory.Holding.Add(ic.Holding)
		for i := range ic.Buckets {
			r.Inventory.Buckets[i].Tonnes = r.Inventory.Buckets[i].Tonnes.Add(ic.Buckets[i].Tonnes)
		}
		invAgeWeighted = invAgeWeighted.Add(weighted)
	}
	if aged := sumBuckets(r.Inventory.Buckets); aged.IsPositive() {
		d := invAgeWeighted.Div(aged.Decimal()).Round(0).IntPart()
		r.Inventory.AverageAgeDays = &d
	}
	for dim, m := range groups {
		list := make([]PortfolioLine, 0, len(m))
		for _, g := range m {
			list = append(list, *g)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Key < list[j].Key })
		parts := make([]ledger.Tonnes, len(list))
		for i, g := range list {
			parts[i] = g.Contracted
		}
		for i, s := range shares(parts) {
			list[i].ShareContracted = s
		}
		r.Shares[dim] = list
	}
	if r.Inventory.Contracts == nil {
		r.Inventory.Contracts = []InventoryContract{}
	}
	return r
}

func region(c ledger.Contract) string {
	if c.Region == "" {
		return c.Country
	}
	return c.Region + ", " + c.Country
}

func (l *PortfolioLine) fill(p ledger.Position) {
	l.Contracted, l.Replacements, l.Delivered, l.Holding = p.Contracted, p.Replacements, p.Delivered, p.Holding
	l.Retired, l.Cancelled, l.Reversed = p.Retired, p.Cancelled, p.Reversed
	l.Outstanding = p.Contracted.Add(p.Replacements).Sub(p.Delivered).Sub(p.Cancelled)
}

func (l *PortfolioLine) add(o PortfolioLine) {
	l.Contracts += o.Contracts
	l.Contracted, l.Replacements, l.Delivered = l.Contracted.Add(o.Contracted), l.Replacements.Add(o.Replacements), l.Delivered.Add(o.Delivered)
	l.Holding, l.Retired, l.Cancelled = l.Holding.Add(o.Holding), l.Retired.Add(o.Retired), l.Cancelled.Add(o.Cancelled)
	l.Reversed, l.Outstanding = l.Reversed.Add(o.Reversed), l.Outstanding.Add(o.Outstanding)
}

func emptyBuckets() []AgeBucket {
	b := make([]AgeBucket, len(bucketLabels))
	for i, l := range bucketLabels {
		b[i].Label = l
	}
	return b
}

func sumBuckets(bs []AgeBucket) ledger.Tonnes {
	var t ledger.Tonnes
	for _, b := range bs {
		t = t.Add(b.Tonnes)
	}
	return t
}

// age ages a contract's holding first-in first-out: what left the holding (retired or
// reversed) is taken from the oldest deliveries. It returns the aged contract and the sum of
// tonnes x age in days.
func age(cf *ledger.ContractFlows, asOf time.Time) (InventoryContract, decimal.Decimal) {
	holding := cf.Total.Holding
	ic := InventoryContract{Code: cf.Contract.Code, Holding: holding, Buckets: emptyBuckets()}
	var in ledger.Tonnes
	for _, m := range cf.HoldingIn {
		in = in.Add(m.Amount)
	}
	out := in.Sub(holding) // what left the holding, to be taken from the oldest months
	weighted := decimal.Zero
	for _, m := range cf.HoldingIn {
		left := m.Amount
		if out.IsPositive() {
			take := out.Min(left)
			left, out = left.Sub(take), out.Sub(take)
		}
		if !left.IsPositive() {
			continue
		}
		if ic.OldestMonth == "" {
			ic.OldestMonth = m.Month.Format("2006-01")
		}
		b := bucketOf(m.Month, asOf)
		ic.Buckets[b].Tonnes = ic.Buckets[b].Tonnes.Add(left)
		days := int64(asOf.Sub(m.Month) / (24 * time.Hour))
		weighted = weighted.Add(left.Decimal().Mul(decimal.NewFromInt(days)))
	}
	if aged := sumBuckets(ic.Buckets); aged.IsPositive() {
		d := weighted.Div(aged.Decimal()).Round(0).IntPart()
		ic.AverageAgeDays = &d
	}
	return ic, weighted
}
