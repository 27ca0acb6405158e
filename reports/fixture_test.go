package reports

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/carbonledger/carbonledger/ledger"
)

// The reports are built from what the store reads: per contract its flows in total, per
// contract year and (deliveries into the holding) per month; per month and group key the
// flows of a period report. These helpers build the same from a list of postings written
// by hand, the way the rollups would sum them, so that the tests need no database.

// flow is one posting as the rollups see it: the account's kind, the entry's kind, the
// effective date, the amount, and the delivery price (for weighted prices) if any.
type flow struct {
	on      time.Time
	account ledger.AccountKind
	kind    ledger.Kind
	amount  ledger.Tonnes
	price   *decimal.Decimal
	vintage int
}

// book is one contract and its postings.
type book struct {
	c          ledger.Contract
	schedule   []ledger.ScheduleLine // the schedule in force (the contract's until amended)
	flows      []flow
	terminated time.Time
}

func date(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

func tn(s string) ledger.Tonnes { return ledger.MustTonnes(s) }

func price(s string) *decimal.Decimal { d := decimal.RequireFromString(s); return &d }

// mustContract parses a contract file, failing the test on a bad fixture.
func mustContract(t testing.TB, js string) ledger.Contract {
	t.Helper()
	c, err := ledger.ParseContractJSON(strings.NewReader(js))
	if err != nil {
		t.Fatalf("fixture contract: %v\n%s", err, js)
	}
	return c
}

func newBook(c ledger.Contract) *book {
	b := &book{c: c, schedule: c.Schedule}
	b.post(c.SignedOn, ledger.KindSign, ledger.AccSupply, c.Tonnes.Neg(), ledger.AccOpen, c.Tonnes)
	return b
}

// post adds a balanced pair of postings: amount a out of one account into another.
func (b *book) post(on time.Time, k ledger.Kind, from ledger.AccountKind, out ledger.Tonnes, to ledger.AccountKind, in ledger.Tonnes) {
	b.flows = append(b.flows, flow{on: on, account: from, kind: k, amount: out}, flow{on: on, account: to, kind: k, amount: in})
}

func (b *book) deliver(on string, t string, p *decimal.Decimal) *book {
	a := tn(t)
	to := ledger.AccHolding
	if b.c.DeliveryMode == ledger.DeliverRetireOnDelivery {
		to = ledger.AccRetired
	}
	b.flows = append(b.flows, flow{on: date(on), account: ledger.AccOpen, kind: ledger.KindDeliver, amount: a.Neg()},
		flow{on: date(on), account: to, kind: ledger.KindDeliver, amount: a, price: p, vintage: date(on).Year()})
	return b
}

func (b *book) retire(on, t string) *book {
	a := tn(t)
	b.post(date(on), ledger.KindRetire, ledger.AccHolding, a.Neg(), ledger.AccRetired, a)
	return b
}

func (b *book) cancel(on, t string, terminate bool) *book {
	a := tn(t)
	b.post(date(on), ledger.KindCancel, ledger.AccOpen, a.Neg(), ledger.AccCancelled, a)
	if terminate && b.terminated.IsZero() {
		b.terminated = date(on)
	}
	return b
}

// reverseReplace is a carbon reversal the supplier makes good with new tonnes.
func (b *book) reverseReplace(on, t string) *book {
	a := tn(t)
	b.post(date(on), ledger.KindReverse, ledger.AccHolding, a.Neg(), ledger.AccReversed, a)
	b.post(date(on), ledger.KindReverse, ledger.AccSupply, a.Neg(), ledger.AccOpen, a)
	return b
}

// reverseBuffer is a carbon reversal the registry makes good from its buffer pool.
func (b *book) reverseBuffer(on, t string) *book {
	a := tn(t)
	b.post(date(on), ledger.KindReverse, ledger.AccBuffer, a.Neg(), ledger.AccBufferCancelled, a)
	return b
}

// amend changes the contracted tonnes by delta, with the schedule now in force.
func (b *book) amend(on, delta string, schedule ...ledger.ScheduleLine) *book {
	a := tn(delta)
	b.post(date(on), ledger.KindAmend, ledger.AccSupply, a.Neg(), ledger.AccOpen, a)
	b.schedule = schedule
	return b
}

func monthOf(d time.Time) time.Time { return time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC) }

func addFlow(s *ledger.FlowSum, f flow) {
	priced, value := ledger.Zero, decimal.Zero
	if f.price != nil && f.kind == ledger.KindDeliver && (f.account == ledger.AccHolding || f.account == ledger.AccRetired) {
		priced, value = f.amount, f.amount.Decimal().Mul(*f.price)
	}
	s.AddFlow(f.account, f.kind, f.amount, priced, value)
}

// flows returns what ContractReport returns for the book as of a date.
func (b *book) contractFlows(asOf time.Time) *ledger.ContractFlows {
	cf := &ledger.ContractFlows{Contract: b.c, Schedule: b.schedule, Years: map[int]*ledger.FlowSum{}}
	if !b.terminated.IsZero() && !b.terminated.After(asOf) {
		cf.TerminatedOn = b.terminated
	}
	in := map[time.Time]ledger.Tonnes{}
	for _, f := range b.flows {
		if f.on.After(asOf) {
			continue
		}
		y := b.c.YearOf(f.on)
		if cf.Years[y] == nil {
			cf.Years[y] = &ledger.FlowSum{}
		}
		addFlow(cf.Years[y], f)
		addFlow(&cf.Total, f)
		if f.account == ledger.AccHolding && f.kind == ledger.KindDeliver {
			in[monthOf(f.on)] = in[monthOf(f.on)].Add(f.amount)
		}
	}
	for m, a := range in {
		if !a.IsZero() {
			cf.HoldingIn = append(cf.HoldingIn, ledger.MonthAmount{Month: m, Amount: a})
		}
	}
	sort.Slice(cf.HoldingIn, func(i, j int) bool { return cf.HoldingIn[i].Month.Before(cf.HoldingIn[j].Month) })
	return cf
}

// groupKey mirrors the store's group expressions.
func groupKey(c ledger.Contract, f flow, by string) string {
	switch by {
	case "method":
		return string(c.Method)
	case "supplier":
		return c.Supplier
	case "buyer":
		return c.Buyer
	case "contract":
		return c.Code
	case "region":
		return region(c)
	case "registry":
		if c.Registry == "" {
			return "not public"
		}
		return c.Registry
	case "durability":
		return c.Durability.Class()
	case "vintage":
		if f.vintage == 0 {
			return "unspecified"
		}
		return decimal.NewFromInt(int64(f.vintage)).String()
	}
	return ""
}

// groupFlows returns what PeriodFlows returns for the books as of a date, ordered by month
// and key.
func groupFlows(books []*book, asOf time.Time, by string) []ledger.GroupFlows {
	type k struct {
		m   time.Time
		key string
	}
	sums := map[k]*ledger.FlowSum{}
	for _, b := range books {
		for _, f := range b.flows {
			if f.on.After(asOf) {
				continue
			}
			kk := k{monthOf(f.on), groupKey(b.c, f, by)}
			if sums[kk] == nil {
				sums[kk] = &ledger.FlowSum{}
			}
			addFlow(sums[kk], f)
		}
	}
	out := make([]ledger.GroupFlows, 0, len(sums))
	for kk, s := range sums {
		out = append(out, ledger.GroupFlows{Month: kk.m, Key: kk.key, Sum: *s})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Month.Equal(out[j].Month) {
			return out[i].Month.Before(out[j].Month)
		}
		return out[i].Key < out[j].Key
	})
	return out
}

func allFlows(books []*book, asOf time.Time) []*ledger.ContractFlows {
	out := make([]*ledger.ContractFlows, 0, len(books))
	for _, b := range books {
		if b.c.SignedOn.After(asOf) {
			continue
		}
		out = append(out, b.contractFlows(asOf))
	}
	return out
}

// The fixed data set of the golden files, as of 2026-03-31:
//
//   - ACME-DAC-2024: three contract years with an explicit schedule priced in USD and due
//     dates, signed before the term (a year-0 signing); deliveries at two prices, retirements,
//     a reversal the supplier replaces, and a delivery in the year not yet due;
//   - BIO-RETIRE: biochar retired on delivery, with an even schedule of a fractional total;
//   - FOREST-TERM: forestry priced in EUR on the contract, a reversal covered by the registry's
//     buffer, then terminated after its term with the rest cancelled;
//   - LATE-ERW: enhanced weathering amended down, with a late delivery (after the term).
//
// The supplier "=Formula Carbon" shows the CSV's formula neutralisation in the golden CSV.
var (
	fixtureAsOf    = date("2026-03-31")
	fixtureKnownAt = time.Date(2026, 4, 1, 12, 30, 0, 0, time.UTC)
)

func fixtureBooks(t testing.TB) []*book {
	acme := newBook(mustContract(t, `{
  "code": "ACME-DAC-2024", "buyer": "Acme Corp", "supplier": "=Formula Carbon",
  "project": "Direct air capture pilot", "method": "daccs", "country": "US", "region": "Wyoming",
  "registry": "Isometric", "standard": "Isometric DAC protocol", "durability_years": "1000+",
  "term_start": "2024-01-01", "term_end": "2026-12-31", "signed_on": "2023-11-15",
  "tonnes": "3000", "price_per_tonne": "600.00", "currency": "USD",
  "schedule": [
    {"year": 1, "tonnes": "800", "vintage": 2024, "price_per_tonne": "600.00", "due_on": "2024-12-31"},
    {"year": 2, "tonnes": "1000.500", "vintage": 2025, "price_per_tonne": "580.00", "due_on": "2025-12-15"},
    {"year": 3, "tonnes": "1199.500", "vintage": 2026, "price_per_tonne": "560.00", "due_on": "2026-12-31"}
  ]}`)).
		deliver("2024-06-30", "400", price("600.00")).
		deliver("2024-12-20", "500", price("600.00")).
		retire("2025-01-10", "500").
		deliver("2025-05-31", "600", price("580.00")).
		deliver("2025-11-30", "500", price("560.00")).
		reverseReplace("2025-08-15", "50").
		retire("2025-12-31", "300").
		deliver("2026-02-28", "200.250", price("560.00")).
		deliver("2026-06-30", "900", price("560.00")) // after the as-of date: not counted
	bio := newBook(mustContract(t, `{
  "code": "BIO-RETIRE", "buyer": "Acme Corp", "supplier": "Pyro Biochar GmbH",
  "project": "Pyrolysis plant", "method": "biochar", "country": "DE",
  "durability_years": 100, "term_start": "2025-01-01", "term_end": "2026-12-31", "signed_on": "2025-01-01",
  "tonnes": "1000.5", "delivery_mode": "retire_on_delivery"}`)).
		deliver("2025-03-31", "250", nil).
		deliver("2025-09-30", "150", nil).
		deliver("2026-01-31", "100.125", nil)
	forest := newBook(mustContract(t, `{
  "code": "FOREST-TERM", "buyer": "Globex", "supplier": "Selva Viva SA",
  "project": "Ejido restoration", "method": "forest restoration", "country": "MX", "region": "Campeche",
  "registry": "Climate Action Reserve", "standard": "Mexico Forest Protocol", "durability_years": 100,
  "term_start": "2024-01-01", "term_end": "2024-12-31", "signed_on": "2024-01-01",
  "tonnes": "10000", "price_per_tonne": "20.00", "currency": "EUR"}`)).
		deliver("2024-06-15", "6000", price("20.00")).
		retire("2024-09-01", "2000").
		reverseBuffer("2024-10-01", "100").
		cancel("2025-01-15", "4000", true)
	late := newBook(mustContract(t, `{
  "code": "LATE-ERW", "buyer": "Globex", "supplier": "Rockdust Ltd",
  "project": "Basalt spreading", "method": "enhanced weathering", "country": "GB", "region": "Scotland",
  "registry": "Puro", "durability_years": "1000+",
  "term_start": "2024-01-01", "term_end": "2024-12-31", "signed_on": "2023-12-01",
  "tonnes": "500"}`)).
		deliver("2024-09-30", "250", nil).
		amend("2024-10-15", "-20", ledger.ScheduleLine{Year: 1, Tonnes: tn("480")}).
		deliver("2025-02-10", "200", nil)
	return []*book{acme, bio, forest, late}
}
