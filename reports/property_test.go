package reports

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/carbonledger/carbonledger/ledger"
)

// The property tests build random ledgers (a fixed seed, so a failure reproduces) and check
// the identities the package documents after every build: the parts of a report re-add
// exactly to its totals.

const iterations = 300

func newRand(t *testing.T) *rand.Rand {
	t.Helper()
	return rand.New(rand.NewPCG(20250701, uint64(len(t.Name()))))
}

// randTonnes returns a random amount in (0, max] kg, as tonnes.
func randTonnes(r *rand.Rand, maxKg int64) ledger.Tonnes {
	return ledger.TonnesFromKg(1 + r.Int64N(maxKg))
}

// randSigned returns a random amount of either sign (or zero), as the rollups of an
// inconsistent or corrected ledger could sum to.
func randSigned(r *rand.Rand) ledger.Tonnes {
	if r.IntN(5) == 0 {
		return ledger.Zero
	}
	return ledger.TonnesFromKg(r.Int64N(2_000_000_000) - 500_000_000)
}

var (
	methods  = []string{"biochar", "forestry", "daccs", "beccs", "enhanced weathering", "ocean"}
	parties  = []string{"Acme", "Globex", "Initech", "=Formula", "Umbrella", "Stark"}
	places   = []struct{ country, region string }{{"MX", "Campeche"}, {"US", ""}, {"DE", "Bavaria"}, {"KE", ""}, {"MX", ""}}
	durables = []string{`null`, `100`, `"100+"`, `1000`, `"1000+"`, `40`}
)

// randContract returns a random valid contract: a term of one to eight years starting on any
// day between 2020 and 2027 (29 February included), an explicit or even schedule.
func randContract(t *testing.T, r *rand.Rand, i int) ledger.Contract {
	t.Helper()
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(8*365))
	if r.IntN(10) == 0 {
		start = date("2024-02-29")
	}
	years := 1 + r.IntN(8)
	end := ledger.AddYears(start, years).AddDate(0, 0, -1-r.IntN(200))
	if end.Before(start) {
		end = start
	}
	signed := start.AddDate(0, 0, -r.IntN(120))
	total := randTonnes(r, 50_000_000)
	p := places[r.IntN(len(places))]
	mode := "transfer"
	if r.IntN(4) == 0 {
		mode = "retire_on_delivery"
	}
	schedule := ""
	n := len((&ledger.Contract{TermStart: start, TermEnd: end}).Years())
	if r.IntN(2) == 0 {
		// an explicit schedule: random positive parts that add up exactly to the total
		total = ledger.TonnesFromKg(int64(n) + r.Int64N(50_000_000))
		left := total.Kg()
		schedule = `, "schedule": [`
		for j := 0; j < n; j++ {
			part := left
			if j < n-1 {
				part = 1 + r.Int64N(left-int64(n-1-j))
				if r.IntN(2) == 0 { // keep most of it for the later years
					part = 1 + (part-1)/int64(n-j)
				}
			}
			left -= part
			due := ""
			if r.IntN(2) == 0 {
				due = fmt.Sprintf(`, "due_on": %q`, ledger.FormatDate(start.AddDate(0, 0, r.IntN(years*400))))
			}
			if j > 0 {
				schedule += ","
			}
			schedule += fmt.Sprintf(`{"year": %d, "tonnes": %q%s}`, j+1, ledger.TonnesFromKg(part).String(), due)
		}
		schedule += "]"
	}
	js := fmt.Sprintf(`{"code": "C-%03d", "buyer": %q, "supplier": %q, "project": "p", "method": %q, "country": %q,
		"region": %q, "durability_years": %s, "term_start": %q, "term_end": %q, "signed_on": %q, "tonnes": %q,
		"delivery_mode": %q, "price_per_tonne": "12.50", "currency": "USD"%s}`,
		i, parties[r.IntN(len(parties))], parties[r.IntN(len(parties))], methods[r.IntN(len(methods))], p.country, p.region,
		durables[r.IntN(len(durables))], ledger.FormatDate(start), ledger.FormatDate(end), ledger.FormatDate(signed),
		total.String(), mode, schedule)
	return mustContract(t, js)
}

// randBook returns a contract with a random but consistent history: nothing is delivered
// beyond what is open, retired or reversed beyond what is held; dates move forward from
// the signing to at most a year after the term.
func randBook(t *testing.T, r *rand.Rand, i int) *book {
	t.Helper()
	b := newBook(randContract(t, r, i))
	c := b.c
	open, holding := c.Tonnes, ledger.Zero
	on := c.SignedOn
	if c.TermStart.After(on) {
		on = c.TermStart
	}
	last := c.TermEnd.AddDate(1, 0, 0)
	take := func(avail ledger.Tonnes) (ledger.Tonnes, bool) {
		if !avail.IsPositive() {
			return ledger.Zero, false
		}
		kg := avail.Kg()
		return ledger.TonnesFromKg(1 + r.Int64N(kg)), true
	}
	for step := r.IntN(25); step > 0; step-- {
		on = on.AddDate(0, 0, r.IntN(90))
		if on.After(last) || !b.terminated.IsZero() {
			break
		}
		d := ledger.FormatDate(on)
		switch op := r.IntN(10); {
		case op < 4:
			if a, ok := take(open); ok {
				var p *decimal.Decimal
				if r.IntN(2) == 0 {
					p = price(fmt.Sprintf("%d.%02d", 5+r.IntN(900), r.IntN(100)))
				}
				b.deliver(d, a.String(), p)
				open = open.Sub(a)
				if c.DeliveryMode == ledger.DeliverTransfer {
					holding = holding.Add(a)
				}
			}
		case op < 6:
			if a, ok := take(holding); ok {
				b.retire(d, a.String())
				holding = holding.Sub(a)
			}
		case op == 6:
			if a, ok := take(holding); ok {
				b.reverseReplace(d, a.String())
				holding, open = holding.Sub(a), open.Add(a)
			} else {
				b.reverseBuffer(d, randTonnes(r, 100_000).String())
			}
		case op == 7:
			if a, ok := take(open); ok {
				b.cancel(d, a.String(), false)
				open = open.Sub(a)
			}
		case op == 8:
			a := randTonnes(r, 1_000_000)
			b.amend(d, a.String(), b.schedule...) // more contracted; the schedule stays
			open = open.Add(a)
		default:
			if open.IsPositive() && r.IntN(3) == 0 {
				b.cancel(d, open.String(), true)
				open = ledger.Zero
			}
		}
	}
	return b
}

func randBooks(t *testing.T, r *rand.Rand) []*book {
	books := make([]*book, r.IntN(12))
	for i := range books {
		books[i] = randBook(t, r, i)
	}
	return books
}

func randAsOf(r *rand.Rand) time.Time {
	return time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(14*365))
}

func sumMeasures(ms ...Measures) Measures {
	var out Measures
	for _, m := range ms {
		out.add(m)
	}
	return out
}

func equalMeasures(a, b Measures) bool {
	return a.Contracted.Equal(b.Contracted) && a.Replacements.Equal(b.Replacements) && a.Delivered.Equal(b.Delivered) &&
		a.Retired.Equal(b.Retired) && a.Cancelled.Equal(b.Cancelled) && a.Reversed.Equal(b.Reversed) &&
		a.BufferCancelled.Equal(b.BufferCancelled)
}

// TestPeriodIdentities: the groups of every period add up exactly to the period, the periods
// to the total, the total's groups to the total; and each period counts exactly the rows
// of its months.
func TestPeriodIdentities(t *testing.T) {
	r := newRand(t)
	bys := []string{"", "method", "supplier", "region", "registry", "vintage", "durability", "contract"}
	for it := 0; it < iterations; it++ {
		var rows []ledger.GroupFlows
		if it%2 == 0 { // a random consistent ledger
			rows = groupFlows(randBooks(t, r), randAsOf(r), bys[r.IntN(len(bys))])
		} else { // arbitrary sums of either sign
			for n := r.IntN(60); n > 0; n-- {
				var s ledger.FlowSum
				s.Contracted, s.Replacements, s.Delivered = randSigned(r), randSigned(r), randSigned(r)
				s.Retired, s.Cancelled, s.Reversed, s.BufferCancelled = randSigned(r), randSigned(r), randSigned(r), randSigned(r)
				rows = append(rows, ledger.GroupFlows{Month: time.Date(2020+r.IntN(10), time.Month(1+r.IntN(12)), 1, 0, 0, 0, 0, time.UTC),
					Key: fmt.Sprint("k", r.IntN(5)), Sum: s})
			}
		}
		by := ""
		if rows != nil && r.IntN(4) != 0 {
			by = "key"
		}
		fy := 1 + r.IntN(12)
		first := 2019 + r.IntN(10)
		years := make([]int, 1+r.IntN(6))
		for i := range years {
			years[i] = first + i
		}
		specs, err := Periods(years, fy)
		if err != nil {
			t.Fatal(err)
		}
		rep := BuildPeriod(Meta{}, specs, fy, by, rows)
		if len(rep.Periods) != len(specs) {
			t.Fatalf("iteration %d: got %d periods, want %d", it, len(rep.Periods), len(specs))
		}
		var all []Measures
		for i, p := range rep.Periods {
			var want Measures
			for _, row := range rows {
				if !row.Month.Before(specs[i].Start) && !row.Month.After(specs[i].End) {
					want.add(measures(row.Sum.Position))
				}
			}
			if !equalMeasures(p.Measures, want) {
				t.Fatalf("iteration %d: period %s = %+v, want the sum of its months' rows %+v", it, p.Label, p.Measures, want)
			}
			if by == "" {
				if len(p.Groups) != 0 {
					t.Fatalf("iteration %d: period %s has %d groups without --by", it, p.Label, len(p.Groups))
				}
			} else {
				gs := make([]Measures, len(p.Groups))
				for j, g := range p.Groups {
					gs[j] = g.Measures
					if j > 0 && p.Groups[j-1].Key >= g.Key {
						t.Fatalf("iteration %d: period %s groups not in key order: %q then %q", it, p.Label, p.Groups[j-1].Key, g.Key)
					}
				}
				if got := sumMeasures(gs...); !equalMeasures(got, p.Measures) {
					t.Fatalf("iteration %d: period %s: groups add up to %+v, want the period's %+v", it, p.Label, got, p.Measures)
				}
			}
			all = append(all, p.Measures)
		}
		if got := sumMeasures(all...); !equalMeasures(got, rep.Total.Measures) {
			t.Fatalf("iteration %d: periods add up to %+v, want the total %+v", it, got, rep.Total.Measures)
		}
		if by != "" {
			gs := make([]Measures, len(rep.Total.Groups))
			for j, g := range rep.Total.Groups {
				gs[j] = g.Measures
			}
			if got := sumMeasures(gs...); !equalMeasures(got, rep.Total.Measures) {
				t.Fatalf("iteration %d: the total's groups add up to %+v, want the total %+v", it, got, rep.Total.Measures)
			}
		}
	}
}

// TestTermIdentities: a contract's years add up to the contract; the cumulative delivered ends
// at the contract's delivered; shortfall and surplus are never negative; scheduled to date is
// at most the whole schedule; the status agrees with its definition.
func TestTermIdentities(t *testing.T) {
	r := newRand(t)
	for it := 0; it < iterations; it++ {
		books := randBooks(t, r)
		asOf := randAsOf(r)
		cfs := allFlows(books, asOf)
		if it%3 == 2 { // arbitrary year sums, as an inconsistent ledger could hold
			for _, cf := range cfs {
				cf.Total = ledger.FlowSum{}
				for y := range cf.Years {
					s := &ledger.FlowSum{}
					s.Contracted, s.Delivered, s.Retired = randSigned(r), randSigned(r), randSigned(r)
					s.Cancelled, s.Reversed, s.Replacements = randSigned(r), randSigned(r), randSigned(r)
					cf.Years[y] = s
					cf.Total.Merge(*s)
				}
			}
		}
		term := BuildTerm(Meta{}, cfs, asOf)
		if len(term.Contracts) != len(cfs) {
			t.Fatalf("iteration %d: got %d contracts, want %d", it, len(term.Contracts), len(cfs))
		}
		for i, c := range term.Contracts {
			name := fmt.Sprintf("iteration %d, %s as of %s", it, c.Code, ledger.FormatDate(asOf))
			var delivered, retired, cancelled, reversed, scheduled ledger.Tonnes
			for _, y := range c.Years {
				delivered, retired = delivered.Add(y.Delivered), retired.Add(y.Retired)
				cancelled, reversed = cancelled.Add(y.Cancelled), reversed.Add(y.Reversed)
				scheduled = scheduled.Add(y.Scheduled)
				if y.Shortfall.IsNegative() || y.Surplus.IsNegative() {
					t.Fatalf("%s: year %d shortfall %s, surplus %s: want neither negative", name, y.Year, y.Shortfall, y.Surplus)
				}
			}
			for _, p := range []struct {
				what      string
				got, want ledger.Tonnes
			}{{"delivered", delivered, c.Delivered}, {"retired", retired, c.Retired}, {"cancelled", cancelled, c.Cancelled},
				{"reversed", reversed, c.Reversed}} {
				if !p.got.Equal(p.want) {
					t.Fatalf("%s: the years' %s add up to %s, want the contract's %s", name, p.what, p.got, p.want)
				}
			}
			if n := len(c.Years); n > 0 && !c.Years[n-1].CumulativeDelivered.Equal(c.Delivered) {
				t.Fatalf("%s: cumulative delivered ends at %s, want the contract's delivered %s", name, c.Years[n-1].CumulativeDelivered, c.Delivered)
			}
			if c.Shortfall.IsNegative() || c.Surplus.IsNegative() {
				t.Fatalf("%s: shortfall %s, surplus %s: want neither negative", name, c.Shortfall, c.Surplus)
			}
			if !c.Shortfall.IsZero() && !c.Surplus.IsZero() {
				t.Fatalf("%s: both a shortfall %s and a surplus %s", name, c.Shortfall, c.Surplus)
			}
			if c.ScheduledToDate.GreaterThan(scheduled) {
				t.Fatalf("%s: scheduled to date %s is more than the whole schedule %s", name, c.ScheduledToDate, scheduled)
			}
			if want := ledger.Sum(c.Contracted, c.Replacements).Sub(c.Delivered).Sub(c.Cancelled); !c.Outstanding.Equal(want) {
				t.Fatalf("%s: outstanding %s, want contracted + replacements - delivered - cancelled = %s", name, c.Outstanding, want)
			}
			if c.ScheduledToDate.Sub(c.Delivered).Max(ledger.Zero).Sub(c.Shortfall).Sign() != 0 {
				t.Fatalf("%s: shortfall %s, want max(scheduled to date %s - delivered %s, 0)", name, c.Shortfall, c.ScheduledToDate, c.Delivered)
			}
			wantStatus := "on track"
			switch {
			case !cfs[i].TerminatedOn.IsZero():
				wantStatus = "terminated"
			case !c.Outstanding.IsPositive():
				wantStatus = "complete"
			case c.ScheduledToDate.Sub(c.Delivered).Sub(c.Cancelled).IsPositive():
				wantStatus = "behind"
			}
			if c.Status != wantStatus {
				t.Fatalf("%s: status %q, want %q", name, c.Status, wantStatus)
			}
			if c.RunRate != nil && c.RunRate.MulInt(int64(c.RemainingYears)).Sub(c.Outstanding).Decimal().Abs().GreaterThan(decimal.New(int64(c.RemainingYears), -3)) {
				t.Fatalf("%s: run-rate %s x %d years does not make the outstanding %s", name, c.RunRate, c.RemainingYears, c.Outstanding)
			}
		}
	}
}

// TestPortfolioIdentities: the contract lines add up to the totals, each breakdown's groups
// add up to the totals, the shares add up to exactly 100.0, and the inventory's age buckets
// add up to the holding.
func TestPortfolioIdentities(t *testing.T) {
	r := newRand(t)
	for it := 0; it < iterations; it++ {
		books := randBooks(t, r)
		asOf := randAsOf(r)
		p := BuildPortfolio(Meta{}, allFlows(books, asOf), asOf)
		name := fmt.Sprintf("iteration %d as of %s", it, ledger.FormatDate(asOf))
		sum := PortfolioLine{Key: "total"}
		for _, l := range p.Contracts {
			sum.add(l)
		}
		if d := diffLines(sum, p.Totals); d != "" {
			t.Fatalf("%s: the contract lines add up to other totals: %s", name, d)
		}
		for _, dim := range []string{"method", "supplier", "region", "durability"} {
			groups, ok := p.Shares[dim]
			if !ok {
				t.Fatalf("%s: no shares by %s", name, dim)
			}
			g := PortfolioLine{Key: "total"}
			pct := decimal.Zero
			for _, l := range groups {
				g.add(l)
				if l.ShareContracted != nil {
					pct = pct.Add(decimal.RequireFromString(*l.ShareContracted))
				}
			}
			if d := diffLines(g, p.Totals); d != "" {
				t.Fatalf("%s: the groups by %s add up to other totals: %s", name, dim, d)
			}
			if p.Totals.Contracted.IsPositive() {
				if got := pct.StringFixed(1); got != "100.0" {
					t.Fatalf("%s: the shares by %s add up to %s%%, want exactly 100.0", name, dim, got)
				}
			} else if !pct.IsZero() {
				t.Fatalf("%s: shares by %s of nothing contracted: %s%%", name, dim, pct)
			}
		}
		if !sumBuckets(p.Inventory.Buckets).Equal(p.Inventory.Holding) {
			t.Fatalf("%s: the inventory's buckets add up to %s, want its holding %s", name, sumBuckets(p.Inventory.Buckets), p.Inventory.Holding)
		}
		if !p.Inventory.Holding.Equal(p.Totals.Holding) {
			t.Fatalf("%s: inventory %s, want the portfolio's holding %s", name, p.Inventory.Holding, p.Totals.Holding)
		}
		var held ledger.Tonnes
		for _, ic := range p.Inventory.Contracts {
			held = held.Add(ic.Holding)
			if !sumBuckets(ic.Buckets).Equal(ic.Holding) {
				t.Fatalf("%s: %s: buckets add up to %s, want its holding %s", name, ic.Code, sumBuckets(ic.Buckets), ic.Holding)
			}
			if ic.Holding.IsPositive() && ic.AverageAgeDays == nil {
				t.Fatalf("%s: %s holds %s t with no average age", name, ic.Code, ic.Holding)
			}
		}
		if !held.Equal(p.Inventory.Holding) {
			t.Fatalf("%s: the inventory's contracts add up to %s, want %s", name, held, p.Inventory.Holding)
		}
	}
}

func diffLines(a, b PortfolioLine) string {
	for _, f := range []struct {
		name string
		x, y ledger.Tonnes
	}{{"contracted", a.Contracted, b.Contracted}, {"replacements", a.Replacements, b.Replacements},
		{"delivered", a.Delivered, b.Delivered}, {"holding", a.Holding, b.Holding}, {"retired", a.Retired, b.Retired},
		{"cancelled", a.Cancelled, b.Cancelled}, {"reversed", a.Reversed, b.Reversed}, {"outstanding", a.Outstanding, b.Outstanding}} {
		if !f.x.Equal(f.y) {
			return fmt.Sprintf("%s %s, want %s", f.name, f.x, f.y)
		}
	}
	if a.Contracts != b.Contracts {
		return fmt.Sprintf("contracts %d, want %d", a.Contracts, b.Contracts)
	}
	return ""
}

// TestSharesAddUp: the largest-remainder rule hands out exactly 1000 tenths of a percent,
// whatever the parts, including parts that divide awkwardly and a total near the largest
// amount a tonnes figure can hold.
func TestSharesAddUp(t *testing.T) {
	r := newRand(t)
	cases := [][]ledger.Tonnes{
		{tn("1"), tn("1"), tn("1")},
		{tn("0.001"), tn("999999999999.999")},
		{tn("1"), tn("0"), tn("2")},
		{tn("333.333"), tn("333.333"), tn("333.334")},
	}
	for it := 0; it < iterations; it++ {
		parts := make([]ledger.Tonnes, 1+r.IntN(30))
		for i := range parts {
			parts[i] = ledger.TonnesFromKg(r.Int64N(1 << (1 + r.IntN(60))))
		}
		cases = append(cases, parts)
	}
	for i, parts := range cases {
		got := shares(parts)
		var whole ledger.Tonnes
		for _, p := range parts {
			whole = whole.Add(p)
		}
		sum := decimal.Zero
		for j, s := range got {
			if s == nil {
				if whole.IsPositive() {
					t.Fatalf("case %d: share %d is nil with a whole of %s", i, j, whole)
				}
				continue
			}
			v := decimal.RequireFromString(*s)
			exact := parts[j].Decimal().Mul(hundred).Div(whole.Decimal())
			if v.Sub(exact).Abs().GreaterThanOrEqual(decimal.New(1, -1)) {
				t.Fatalf("case %d: share %d = %s, want within 0.1 of %s", i, j, *s, exact)
			}
			sum = sum.Add(v)
		}
		if whole.IsPositive() && sum.StringFixed(1) != "100.0" {
			t.Fatalf("case %d: shares %v add up to %s, want 100.0", i, got, sum)
		}
	}
}
