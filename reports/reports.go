// Package reports builds the term, period and portfolio reports from the rollup sums the
// store reads, and renders them as an aligned table, CSV, JSON or a self-contained HTML page
// with SVG charts.
//
// Every figure is an exact decimal. The store sums the rollups in SQL; this package only
// combines those sums (differences, shares, rates), so the report's totals re-add: the groups
// of a period sum to the period, the periods to the range, the contract years to the
// contract. Percentages are rounded to one decimal by the largest-remainder rule, so the
// shares of a breakdown add up to exactly 100.0.
//
// Definitions (what a demanding reader will ask):
//   - a contract year's tonnes fall due on its schedule line's due date, or else on the
//     year's last day; "scheduled to date" is the sum of the years due by the as-of date;
//   - shortfall = scheduled to date - delivered, never negative (a waived shortfall still
//     shows here, and again under cancelled); surplus = delivered - scheduled to date, never
//     negative;
//   - outstanding = contracted + replacements - delivered - cancelled (the open balance);
//   - delivery rate = delivered / scheduled to date, in percent;
//   - run-rate = outstanding / the contract years not yet ended (counting the current one);
//   - status: terminated; complete (nothing outstanding); behind (delivered + cancelled is
//     less than scheduled to date); else on track;
//   - weighted average price = sum(tonnes x price) / tonnes, over deliveries with a price,
//     rounded half-even to the currency's minor unit.
//
// HTML pages are one self-contained file each (html.go, html.tmpl): inline CSS, charts as
// inline SVG, no script and no URL to fetch, so a report opens offline, prints, and can be
// mailed to an auditor or archived as it is. The charts are small SVG templates of our own
// rather than a library. go-echarts draws with JavaScript loaded from an assets host;
// wcharczuk/go-chart is archived; its maintained fork (go-analyze/charts) and gonum/plot do
// write SVG without script, but lay out in binary fractions (which this package does not
// use), bring their own font handling and dependencies, and leave little control over
// accessibility and byte-stable output. The charts needed (grouped and stacked bars,
// horizontal stacked bars) take a few hundred lines, and owning them keeps every
// coordinate an exact decimal (figure x pixels / axis top, rounded to a tenth of a pixel),
// every name escaped by html/template, and the output stable for golden tests. Each series
// is told apart by colour and texture (Okabe-Ito colours, a pattern each), every bar carries
// its exact figure as a tooltip, every chart a title and a description, and the tables
// beside the charts carry the same figures as the other formats.
package reports

import (
	"runtime"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/carbonledger/carbonledger/ledger"
)

// Meta says what history a report counts.
type Meta struct {
	AsOf    string `json:"as_of"`
	KnownAt string `json:"known_at,omitempty"`
}

// NewMeta formats the as-of date and known-at instant.
func NewMeta(asOf, knownAt time.Time) Meta {
	m := Meta{AsOf: ledger.FormatDate(asOf)}
	if !knownAt.IsZero() {
		m.KnownAt = knownAt.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	return m
}

var hundred = decimal.NewFromInt(100)

// percent returns part/whole in percent with one decimal, rounded down (a contract that has
// delivered 99.97% of its schedule shows 99.9, never 100.0), or nil when whole is zero.
func percent(part, whole ledger.Tonnes) *string {
	if whole.IsZero() {
		return nil
	}
	s := part.Decimal().Mul(hundred).DivRound(whole.Decimal(), 8).RoundDown(1).StringFixed(1)
	return &s
}

// shares returns each part's share of the whole in percent with one decimal, rounded by the
// largest-remainder rule so that they sum to exactly 100.0 (when the whole is not zero).
func shares(parts []ledger.Tonnes) []*string {
	out := make([]*string, len(parts))
	var whole ledger.Tonnes
	for _, p := range parts {
		whole = whole.Add(p)
	}
	if whole.IsZero() || !whole.IsPositive() {
		return out
	}
	// work in tenths of a percent: 1000 units in all
	type rem struct {
		i int
		r decimal.Decimal
	}
	units := make([]int64, len(parts))
	rems := make([]rem, len(parts))
	var used int64
	for i, p := range parts {
		exact := p.Decimal().Mul(decimal.NewFromInt(1000)).Div(whole.Decimal())
		fl := exact.Floor()
		units[i] = fl.IntPart()
		used += units[i]
		rems[i] = rem{i, exact.Sub(fl)}
	}
	// hand the remaining units to the largest remainders, earliest first on ties
	for left := 1000 - used; left > 0; left-- {
		best := -1
		for j := range rems {
			if best == -1 || rems[j].r.GreaterThan(rems[best].r) {
				best = j
			}
		}
		units[rems[best].i]++
		rems[best].r = decimal.NewFromInt(-1)
	}
	for i, u := range units {
		s := decimal.New(u, -1).StringFixed(1)
		out[i] = &s
	}
	return out
}

// weightedPrice is value/priced rounded to the currency's minor unit, or nil.
func weightedPrice(value decimal.Decimal, priced ledger.Tonnes, currency string) *string {
	if !priced.IsPositive() {
		return nil
	}
	scale, ok := ledger.CurrencyScale(currency)
	if !ok {
		scale = 2
	}
	s := value.Div(priced.Decimal()).RoundBank(scale).StringFixed(scale)
	return &s
}

// divTonnes divides t by n, rounded half-up to the kilogram.
func divTonnes(t ledger.Tonnes, n int) ledger.Tonnes {
	q := t.Decimal().DivRound(decimal.NewFromInt(int64(n)), ledger.Scale)
	v, _ := ledger.ParseTonnes(q.StringFixed(ledger.Scale))
	return v
}

// eachOn calls fn(i) for i in [0, n), sharing large n out between the cores: the rows of a
// report are independent of one another, and a thousand contracts' worth of decimal
// arithmetic and formatting is a tenth of a report's time.
func eachOn(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n/100)
	if workers < 2 {
		for i := range n {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				fn(i)
			}
		}()
	}
	wg.Wait()
}
