package reports

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/carbonledger/carbonledger/ledger"
)

// The HTML pages are html/template text (html.tmpl) so that every name from the ledger is
// escaped; the charts are SVG laid out here with exact decimals (no binary fractions in this
// package) and drawn by small templates. See the package comment for why.

//go:embed html.tmpl
var htmlText string

var pages = template.Must(template.New("reports").Funcs(template.FuncMap{
	"opt":        opt,
	"optInt":     optInt,
	"statusSlug": statusSlug,
}).Parse(htmlText))

func optInt(p *int64) string {
	if p == nil {
		return ""
	}
	return fmt.Sprint(*p)
}

// page is what every report page shares: its title, the history it counts, a short lead.
type page struct {
	Title string
	Meta  Meta
	Lead  string
}

// fact is one labelled figure of a summary.
type fact struct {
	Label, Value, Unit string
}

// Fills are the SVG pattern ids the charts paint with (defined once per page in html.tmpl).
// Each pairs a colour with a texture, so that no series is told apart by colour alone.
const (
	fillScheduled   = "f-sched"
	fillDelivered   = "f-deliv"
	fillRetired     = "f-retired"
	fillHolding     = "f-holding"
	fillCancelled   = "f-cancel"
	fillReversed    = "f-reversed"
	fillOutstanding = "f-outst"
)

// categorical are the fills of keys (methods, suppliers, ...): a colour-blind-safe palette
// (Okabe and Ito), each colour with its own texture.
var categorical = []string{"f-c0", "f-c1", "f-c2", "f-c3", "f-c4", "f-c5", "f-c6", "f-c7"}

// --- layout arithmetic, all in exact decimals, rounded to a tenth of a pixel on output ---

func dn(n int) decimal.Decimal { return decimal.NewFromInt(int64(n)) }

// coord formats a coordinate or a length in pixels.
func coord(v decimal.Decimal) string { return v.StringFixed(1) }

var (
	tenth = decimal.New(1, -1)
	two   = dn(2)
)

// barLen is the length in pixels of value v on an axis of span pixels that ends at top: v x
// span / top, rounded to a tenth of a pixel; zero for zero, negative or an empty axis, and at
// least a pixel for any positive value so that a small figure still shows.
func barLen(v, span, top decimal.Decimal) decimal.Decimal {
	if !top.IsPositive() || !v.IsPositive() {
		return decimal.Zero
	}
	l := v.Mul(span).DivRound(top, 1)
	if l.LessThan(decimal.NewFromInt(1)) {
		return decimal.NewFromInt(1)
	}
	return l
}

// niceStep is the smallest of 1, 2, 2.5 and 5 times a power of ten that is at least x (> 0).
func niceStep(x decimal.Decimal) decimal.Decimal {
	p := decimal.NewFromInt(1)
	for p.Shift(1).LessThanOrEqual(x) {
		p = p.Shift(1)
	}
	for p.GreaterThan(x) {
		p = p.Shift(-1)
	}
	for _, m := range []decimal.Decimal{decimal.NewFromInt(1), two, decimal.New(25, -1), decimal.NewFromInt(5), decimal.NewFromInt(10)} {
		if s := p.Mul(m); s.GreaterThanOrEqual(x) {
			return s
		}
	}
	return p.Shift(1)
}

// axis returns the top of a value axis that holds max, and its ticks from zero: between two
// and five steps of a round size. An axis for nothing (max not positive) is the tick 0 alone.
func axis(max decimal.Decimal) (decimal.Decimal, []decimal.Decimal) {
	if !max.IsPositive() {
		return decimal.Zero, []decimal.Decimal{decimal.Zero}
	}
	step := niceStep(max.Div(dn(5)))
	n := max.Div(step).Ceil().IntPart()
	ticks := make([]decimal.Decimal, 0, n+1)
	for i := int64(0); i <= n; i++ {
		ticks = append(ticks, step.Mul(decimal.NewFromInt(i)))
	}
	return ticks[len(ticks)-1], ticks
}

// compact writes tonnes for a chart label: 234k, 13.6k, 1.25M, 233.5. Tables and tooltips
// carry the exact figures.
func compact(v decimal.Decimal) string {
	a := v.Abs()
	switch {
	case a.GreaterThanOrEqual(decimal.New(1, 9)):
		return v.Shift(-9).Round(2).String() + "G"
	case a.GreaterThanOrEqual(decimal.New(1, 6)):
		return v.Shift(-6).Round(2).String() + "M"
	case a.GreaterThanOrEqual(decimal.New(1, 3)):
		return v.Shift(-3).Round(1).String() + "k"
	case a.GreaterThanOrEqual(decimal.NewFromInt(1)) || a.IsZero():
		return v.Round(1).String()
	}
	return v.Round(3).String()
}

// tickLabel writes an axis tick like compact, but exactly: 1.25k, not 1.3k.
func tickLabel(v decimal.Decimal) string {
	a := v.Abs()
	switch {
	case a.GreaterThanOrEqual(decimal.New(1, 9)):
		return v.Shift(-9).String() + "G"
	case a.GreaterThanOrEqual(decimal.New(1, 6)):
		return v.Shift(-6).String() + "M"
	case a.GreaterThanOrEqual(decimal.New(1, 3)):
		return v.Shift(-3).String() + "k"
	}
	return v.String()
}

// clip shortens a label for a chart to n characters; the full text is in the tooltip.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// --- charts ---

// legendItem is one entry of a chart's legend: a swatch of the fill, a name and a note.
type legendItem struct {
	Fill, Name, Note string
	Muted            bool
}

// vChart is a vertical bar chart: grouped bars (one per series, side by side) or stacked
// bars, over groups along the x axis.
type vChart struct {
	ID, Title, Desc string
	W, H            int
	Left, Right     string // the plot's x extent
	TickX           string // where the y axis' tick labels end
	Top, Bottom     string // the plot's y extent (Bottom is the zero line)
	AxisX, AxisY    string // where the y axis title is drawn (rotated)
	YTicks          []tick
	XLabels         []xLabel
	Bars            []vBar
	Labels          []valueLabel
	Legend          []legendItem
	Empty           string // shown instead of bars when there is nothing to draw
	EmptyX, EmptyY  string
}

type tick struct{ Y, Label string }

type xLabel struct{ X, Y, Text, Sub string }

// vBar is one bar, or one segment of a stacked bar, with its exact figure as a tooltip.
type vBar struct {
	X, Y, W, H, Fill, Title string
	Muted                   bool
}

// valueLabel is a bar's figure written above it (or inside a stacked segment), when there is
// room for one; a zero gets its "0" on the axis so that it does not read as missing.
type valueLabel struct {
	X, Y, Text string
	Inside     bool
}

// series is one measure of a chart: its legend name, its fill, how a tooltip names it (the
// name in lower case when empty), and whether its bars are drawn lighter in a muted group.
type series struct {
	Name, Fill, Tip string
	Mutes           bool
}

// vGroup is one position on the x axis: its label, a longer description for tooltips, and a
// value per series.
type vGroup struct {
	Label, Sub, Long string
	Values           []ledger.Tonnes
	Muted            bool // the bars of series that mute are drawn lighter: not yet due
}

const (
	vcW, vcH                             = 960, 320
	vcLeft, vcRight, vcTop, vcBottomPads = 72, 12, 24, 56
	maxBarPx                             = 44
	maxStackPx                           = 72
	labelRoom                            = 30 // a bar this wide or wider carries its label
)

// barChart lays out a vertical bar chart. Negative figures (which a consistent ledger does not
// produce) draw no bar; the tables show them.
func barChart(id, title, desc, empty string, ss []series, groups []vGroup, stacked bool) vChart {
	c := vChart{ID: id, Title: title, Desc: desc, W: vcW, H: vcH}
	for _, s := range ss {
		c.Legend = append(c.Legend, legendItem{Fill: s.Fill, Name: s.Name})
	}
	left, right := dn(vcLeft), dn(vcW-vcRight)
	top, bottom := dn(vcTop), dn(vcH-vcBottomPads)
	c.Left, c.Right, c.Top, c.Bottom = coord(left), coord(right), coord(top), coord(bottom)
	c.TickX = coord(left.Sub(dn(8)))
	c.AxisX, c.AxisY = "16", coord(top.Add(bottom).Div(two))
	max := decimal.Zero
	for _, g := range groups {
		sum := decimal.Zero
		for _, v := range g.Values {
			if !v.IsPositive() {
				continue
			}
			if stacked {
				sum = sum.Add(v.Decimal())
			} else {
				max = decimal.Max(max, v.Decimal())
			}
		}
		max = decimal.Max(max, sum)
	}
	axisTop, ticks := axis(max)
	plotH, plotW := bottom.Sub(top), right.Sub(left)
	for _, t := range ticks {
		c.YTicks = append(c.YTicks, tick{Y: coord(bottom.Sub(barLen(t, plotH, axisTop))), Label: tickLabel(t)})
	}
	if !max.IsPositive() {
		c.Empty = empty
		c.EmptyX, c.EmptyY = coord(left.Add(plotW.Div(two))), coord(top.Add(plotH.Div(two)))
	}
	if len(groups) == 0 {
		return c
	}
	gw := plotW.Div(dn(len(groups)))
	perGroup := len(ss)
	limit := dn(maxBarPx)
	if stacked {
		perGroup, limit = 1, dn(maxStackPx)
	}
	bw := decimal.Min(gw.Mul(decimal.New(72, -2)).Div(dn(perGroup)), limit)
	every := (len(groups) + 15) / 16 // at most 16 labels on the x axis
	room := bw.GreaterThanOrEqual(dn(labelRoom)) && c.Empty == ""
	for i, g := range groups {
		cx := left.Add(gw.Mul(dn(i))).Add(gw.Div(two))
		x0 := cx.Sub(bw.Mul(dn(perGroup)).Div(two))
		base := bottom
		for j, v := range g.Values {
			h := barLen(v.Decimal(), plotH, axisTop)
			x, y := x0.Add(bw.Mul(dn(j))), bottom.Sub(h)
			if stacked {
				x, y = x0, base.Sub(h)
			}
			mid := coord(x.Add(bw.Div(two)))
			if h.IsZero() {
				if room && !stacked && v.IsZero() {
					c.Labels = append(c.Labels, valueLabel{X: mid, Y: coord(bottom.Sub(dn(4))), Text: "0"})
				}
				continue
			}
			base = y
			tip := ss[j].Tip
			if tip == "" {
				tip = strings.ToLower(ss[j].Name)
			}
			c.Bars = append(c.Bars, vBar{X: coord(x), Y: coord(y), W: coord(bw), H: coord(h), Fill: ss[j].Fill, Muted: g.Muted && ss[j].Mutes,
				Title: fmt.Sprintf("%s: %s %s t", g.Long, tip, v)})
			switch {
			case stacked && room && h.GreaterThanOrEqual(dn(16)):
				c.Labels = append(c.Labels, valueLabel{X: mid, Y: coord(y.Add(h.Div(two)).Add(dn(4))), Text: compact(v.Decimal()), Inside: true})
			case !stacked && room:
				c.Labels = append(c.Labels, valueLabel{X: mid, Y: coord(y.Sub(dn(4))), Text: compact(v.Decimal())})
			}
		}
		if i%every == 0 {
			c.XLabels = append(c.XLabels, xLabel{X: coord(cx), Y: coord(bottom.Add(dn(18))), Text: g.Label, Sub: g.Sub})
		}
	}
	return c
}

// hChart is a horizontal bar chart: rows of bars, each bar a stack of segments.
type hChart struct {
	ID, Title, Desc string
	W, H            int
	LabelX          string // where row labels end (text-anchor end)
	Rows            []hRow
	Legend          []legendItem
	Empty           string
	EmptyX, EmptyY  string
}

type hRow struct {
	Label, LabelY  string
	Title          string // the row's tooltip
	Y, H           string
	TrackX, TrackW string // a faint full-length track behind the bar ("" for none)
	Segs           []hSeg
	Value          string
	ValueX, ValueY string
}

type hSeg struct {
	X, W, Fill, Title string
	Text, TextX       string
}

// hSpec is one row to lay out: its segments' values and fills, in order from the left.
type hSpec struct {
	Label, Title, Value string
	Values              []ledger.Tonnes
	Names               []string
	Fills               []string
	Texts               []string // a label inside each segment, shown when it fits
}

// hbars lays out rows of stacked horizontal bars on one scale (the largest row fills the
// width). Each segment's edges are placed from the running total, so the segments of a row
// meet exactly and end where the row's total ends.
func hbars(id, title, desc, empty string, width, labelW, valueW, rowH int, specs []hSpec) hChart {
	const pad = 12
	c := hChart{ID: id, Title: title, Desc: desc, W: width}
	c.H = pad*2 + rowH*len(specs)
	if len(specs) == 0 {
		c.H = pad*2 + rowH
	}
	left := dn(labelW)
	if labelW > 0 {
		left = left.Add(dn(8))
	}
	span := dn(width - valueW - pad).Sub(left)
	c.LabelX = coord(dn(labelW))
	max := decimal.Zero
	for _, s := range specs {
		sum := decimal.Zero
		for _, v := range s.Values {
			if v.IsPositive() {
				sum = sum.Add(v.Decimal())
			}
		}
		max = decimal.Max(max, sum)
	}
	if !max.IsPositive() {
		c.Empty, c.H = empty, pad*2+rowH
		c.EmptyX, c.EmptyY = coord(left.Add(span.Div(two))), coord(dn(c.H).Div(two).Add(dn(4)))
		return c
	}
	barH := dn(rowH).Mul(decimal.New(62, -2))
	for i, s := range specs {
		y := dn(pad + rowH*i).Add(dn(rowH).Sub(barH).Div(two))
		r := hRow{Label: s.Label, Title: s.Title, Y: coord(y), H: coord(barH),
			LabelY: coord(y.Add(barH.Div(two)).Add(dn(4))), Value: s.Value}
		if len(specs) > 1 {
			r.TrackX, r.TrackW = coord(left), coord(span)
		}
		cum := decimal.Zero
		x := left
		for j, v := range s.Values {
			if !v.IsPositive() {
				continue
			}
			cum = cum.Add(v.Decimal())
			end := left.Add(cum.Mul(span).DivRound(max, 1))
			w := end.Sub(x)
			if !w.IsPositive() {
				continue
			}
			seg := hSeg{X: coord(x), W: coord(w), Fill: s.Fills[j], Title: s.Names[j] + ": " + v.String() + " t"}
			if j < len(s.Texts) && s.Texts[j] != "" && w.GreaterThanOrEqual(dn(7*len(s.Texts[j])+10)) {
				seg.Text, seg.TextX = s.Texts[j], coord(x.Add(w.Div(two)))
			}
			r.Segs = append(r.Segs, seg)
			x = end
		}
		r.ValueX, r.ValueY = coord(x.Add(dn(6))), r.LabelY
		c.Rows = append(c.Rows, r)
	}
	return c
}

// --- term ---

type termView struct {
	page
	Contracts []termContractView
}

type termContractView struct {
	TermContract
	Anchor      string
	StatusClass string
	HasPrice    bool // a weighted price to show, in the contract or a year
	Facts       []fact
	Chart       vChart
}

// HTML renders the term report as one self-contained page: a summary of the contracts, then
// per contract its figures, a chart of scheduled against delivered tonnes per contract year,
// and the table of its years.
func (t Term) HTML(w io.Writer) error {
	v := termView{page: page{Title: "Term report", Meta: t.Meta,
		Lead: "Per contract and contract year: scheduled against delivered tonnes, shortfall, retirements, cancellations and reversals."}}
	for i, c := range t.Contracts {
		cv := termContractView{TermContract: c, Anchor: fmt.Sprintf("contract-%d", i+1), StatusClass: statusClass(c.Status),
			HasPrice: c.WeightedPrice != nil}
		for _, y := range c.Years {
			cv.HasPrice = cv.HasPrice || y.WeightedPrice != nil
		}
		cv.Facts = []fact{
			{"Contracted", c.Contracted.String(), "t"},
			{"Scheduled to date", c.ScheduledToDate.String(), "t"},
			{"Delivered", c.Delivered.String(), "t"},
			{"Delivery rate", opt(c.DeliveryRate), "%"},
			{"Shortfall", c.Shortfall.String(), "t"},
			{"Outstanding", c.Outstanding.String(), "t"},
			{"Retired", c.Retired.String(), "t"},
			{"Holding", c.Holding.String(), "t"},
		}
		if !c.Replacements.IsZero() {
			cv.Facts = append(cv.Facts, fact{"Replacements owed", c.Replacements.String(), "t"})
		}
		if !c.Surplus.IsZero() {
			cv.Facts = append(cv.Facts, fact{"Surplus", c.Surplus.String(), "t"})
		}
		if !c.Cancelled.IsZero() {
			cv.Facts = append(cv.Facts, fact{"Cancelled", c.Cancelled.String(), "t"})
		}
		if !c.Reversed.IsZero() {
			cv.Facts = append(cv.Facts, fact{"Reversed", c.Reversed.String(), "t"})
		}
		if !c.BufferCancelled.IsZero() {
			cv.Facts = append(cv.Facts, fact{"Buffer cancelled", c.BufferCancelled.String(), "t"})
		}
		if c.RunRate != nil {
			cv.Facts = append(cv.Facts, fact{fmt.Sprintf("Run-rate needed (%d yr left)", c.RemainingYears), c.RunRate.String(), "t/yr"})
		}
		if c.WeightedPrice != nil {
			cv.Facts = append(cv.Facts, fact{"Weighted avg. price", *c.WeightedPrice, c.Currency + "/t"})
		}
		cv.Chart = termChart(c, cv.Anchor)
		v.Contracts = append(v.Contracts, cv)
	}
	return pages.ExecuteTemplate(w, "term", v)
}

// termChart draws a contract's scheduled against delivered tonnes per contract year.
func termChart(c TermContract, anchor string) vChart {
	groups := make([]vGroup, 0, len(c.Years))
	muted := false
	for _, y := range c.Years {
		g := vGroup{Label: fmt.Sprintf("Year %d", y.Year), Sub: yearSpan(y.Start, y.End),
			Values: []ledger.Tonnes{y.Scheduled, y.Delivered}, Muted: !y.Due && y.Year > 0}
		muted = muted || g.Muted
		g.Long = fmt.Sprintf("Year %d (%s to %s)", y.Year, y.Start, y.End)
		if y.Year == 0 {
			g.Label, g.Sub, g.Long = "Before", "term", "Before the term (to "+y.End+")"
		} else if !y.Due {
			g.Long += ", due " + y.DueOn + ", not yet due"
		}
		groups = append(groups, g)
	}
	chart := barChart(anchor+"-chart", "Scheduled and delivered tonnes per contract year, "+c.Code,
		fmt.Sprintf("Grouped bars for %d contract years: scheduled tonnes (hatched) beside delivered tonnes (solid). The schedule of years not yet due is drawn lighter. The table below lists every figure.", len(groups)),
		"Nothing scheduled or delivered", []series{{Name: "Scheduled", Fill: fillScheduled, Mutes: true}, {Name: "Delivered", Fill: fillDelivered}}, groups, false)
	if muted {
		chart.Legend = append(chart.Legend, legendItem{Fill: fillScheduled, Name: "Scheduled, not yet due", Muted: true})
	}
	return chart
}

// yearSpan labels a contract year by the calendar years it spans: "2024" or "2024–25".
func yearSpan(start, end string) string {
	if len(start) < 4 || len(end) < 4 {
		return ""
	}
	if start[:4] == end[:4] {
		return start[:4]
	}
	return start[:4] + "–" + end[2:4]
}

func statusClass(s string) string { return "st-" + statusSlug(s) }

func statusSlug(s string) string { return strings.ReplaceAll(s, " ", "-") }

// --- period ---

type periodView struct {
	page
	By        string
	FiscalFY  string
	Chart     vChart
	ByChart   *vChart
	Rows      []periodRow
	HasGroups bool
}

type periodRow struct {
	Label, Start, End, Group string
	Measures
	All, Total bool
}

// HTML renders the period report as one self-contained page: contracted, delivered and retired
// tonnes per period as grouped bars, delivered tonnes per group when the report is grouped,
// and the table.
func (p PeriodReport) HTML(w io.Writer) error {
	title := "Period report"
	if p.By != "" {
		title += " by " + p.By
	}
	v := periodView{page: page{Title: title, Meta: p.Meta,
		Lead: "Per reporting period: tonnes contracted (signed or amended), delivered, retired, cancelled and reversed."},
		By: p.By, HasGroups: p.By != ""}
	if p.FiscalYearStart > 1 && p.FiscalYearStart <= 12 {
		v.FiscalFY = fmt.Sprintf("Fiscal years start on 1 %s and are named after the calendar year they end in.", time.Month(p.FiscalYearStart))
	}
	v.Chart = periodChart(p)
	if p.By != "" {
		c := periodByChart(p)
		v.ByChart = &c
	}
	list := p.Periods
	if len(p.Periods) > 1 { // a single period is its own total
		list = append(list[:len(list):len(list)], p.Total)
	}
	for i, per := range list {
		total := len(p.Periods) > 1 && i == len(list)-1
		for _, g := range per.Groups {
			v.Rows = append(v.Rows, periodRow{Label: per.Label, Start: per.Start, End: per.End, Group: g.Key, Measures: g.Measures, Total: total})
		}
		v.Rows = append(v.Rows, periodRow{Label: per.Label, Start: per.Start, End: per.End, Group: "all", Measures: per.Measures, All: true, Total: total})
	}
	return pages.ExecuteTemplate(w, "period", v)
}

// periodChart draws contracted, delivered and retired tonnes per period.
func periodChart(p PeriodReport) vChart {
	groups := make([]vGroup, 0, len(p.Periods))
	for _, per := range p.Periods {
		groups = append(groups, vGroup{Label: per.Label, Long: fmt.Sprintf("%s (%s to %s)", per.Label, per.Start, per.End),
			Values: []ledger.Tonnes{per.Contracted, per.Delivered, per.Retired}})
	}
	return barChart("period-chart", "Contracted, delivered and retired tonnes per period",
		fmt.Sprintf("Grouped bars for %d periods: contracted (hatched), delivered (solid) and retired (dotted) tonnes. The table below lists every figure.", len(groups)),
		"No tonnes contracted, delivered or retired in these periods",
		[]series{{Name: "Contracted", Fill: fillScheduled}, {Name: "Delivered", Fill: fillDelivered}, {Name: "Retired", Fill: fillRetired}}, groups, false)
}

// periodByChart stacks each period's delivered tonnes by group: the seven largest groups over
// the whole range, and the rest together.
func periodByChart(p PeriodReport) vChart {
	const shown = 7
	keys := make([]Group, len(p.Total.Groups))
	copy(keys, p.Total.Groups)
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].Delivered.GreaterThan(keys[j].Delivered) })
	slot := map[string]int{}
	var ss []series
	for i, g := range keys {
		if i == shown && len(keys) > shown+1 {
			ss = append(ss, series{Name: fmt.Sprintf("%d others", len(keys)-shown), Fill: categorical[shown], Tip: "others delivered"})
			break
		}
		slot[g.Key] = i
		ss = append(ss, series{Name: g.Key, Fill: categorical[i%len(categorical)], Tip: g.Key + " delivered"})
	}
	groups := make([]vGroup, 0, len(p.Periods))
	for _, per := range p.Periods {
		vals := make([]ledger.Tonnes, len(ss))
		for _, g := range per.Groups {
			i, ok := slot[g.Key]
			if !ok {
				i = len(ss) - 1
			}
			vals[i] = vals[i].Add(g.Delivered)
		}
		groups = append(groups, vGroup{Label: per.Label, Long: fmt.Sprintf("%s (%s to %s)", per.Label, per.Start, per.End), Values: vals})
	}
	return barChart("period-by-chart", "Delivered tonnes per period by "+p.By,
		fmt.Sprintf("Stacked bars for %d periods: each period's delivered tonnes split by %s. The table below lists every figure.", len(groups), p.By),
		"No tonnes delivered in these periods", ss, groups, true)
}

// --- portfolio ---

type portfolioView struct {
	page
	R        Portfolio
	Cards    []fact
	Mix      []shareView
	Progress hChart
	Shown    string
	Age      hChart
	Dims     []dimView
}

type shareView struct {
	Dim   string
	Chart hChart
}

type dimView struct {
	Name  string
	Lines []PortfolioLine
}

// HTML renders the portfolio report as one self-contained page: the totals, the mix of
// contracted tonnes by method (and by supplier, region and durability), where each contract's
// tonnes stand, the inventory by age, and the tables.
func (p Portfolio) HTML(w io.Writer) error {
	v := portfolioView{page: page{Title: "Portfolio", Meta: p.Meta,
		Lead: "Every contract: totals, the mix of contracted tonnes, and the inventory delivered but not yet retired, by age."},
		R: p}
	t := p.Totals
	v.Cards = []fact{
		{"Contracts", fmt.Sprint(t.Contracts), ""},
		{"Contracted", t.Contracted.String(), "t"},
		{"Delivered", t.Delivered.String(), "t"},
		{"Retired", t.Retired.String(), "t"},
		{"Holding", t.Holding.String(), "t"},
		{"Outstanding", t.Outstanding.String(), "t"},
	}
	for i, dim := range []string{"method", "supplier", "region", "durability"} {
		width := vcW
		if i > 0 { // the other dimensions sit side by side, smaller
			width = vcW / 2
		}
		v.Mix = append(v.Mix, shareView{Dim: dim, Chart: shareChart(dim, p.Shares[dim], width)})
		v.Dims = append(v.Dims, dimView{Name: dim, Lines: p.Shares[dim]})
	}
	v.Progress, v.Shown = progressChart(p.Contracts)
	v.Age = ageChart(p.Inventory)
	return pages.ExecuteTemplate(w, "portfolio", v)
}

// shareChart is one 100% bar of contracted tonnes by the keys of a dimension, labelled with
// the shares (which add up to exactly 100.0): the seven largest keys, and the rest together.
func shareChart(dim string, lines []PortfolioLine, width int) hChart {
	const shown = 7
	sorted := make([]PortfolioLine, len(lines))
	copy(sorted, lines)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Contracted.GreaterThan(sorted[j].Contracted) })
	spec := hSpec{Label: "", Title: "Contracted tonnes by " + dim}
	var legend []legendItem
	for i := 0; i < len(sorted); i++ {
		l := sorted[i]
		name, share, tonnes := l.Key, opt(l.ShareContracted), l.Contracted
		if i == shown && len(sorted) > shown+1 {
			// the rest together: their tonnes and their shares added, so the labels still
			// add up to exactly 100.0
			tonnes, rest := ledger.Zero, decimal.Zero
			for _, o := range sorted[shown:] {
				tonnes = tonnes.Add(o.Contracted)
				if o.ShareContracted != nil {
					rest = rest.Add(decimal.RequireFromString(*o.ShareContracted))
				}
			}
			name, share = fmt.Sprintf("%d others", len(sorted)-shown), rest.StringFixed(1)
			if l.ShareContracted == nil {
				share = ""
			}
			i = len(sorted)
		}
		fill := categorical[len(spec.Values)%len(categorical)]
		label := name
		if name == "" {
			label = "(none)"
		}
		legend = append(legend, legendItem{Fill: fill, Name: label, Note: tonnes.String() + " t"})
		if share != "" {
			legend[len(legend)-1].Note = share + "% · " + legend[len(legend)-1].Note
		}
		spec.Values = append(spec.Values, tonnes)
		if share != "" {
			label += ", " + share + "%"
		}
		spec.Names = append(spec.Names, label)
		spec.Fills = append(spec.Fills, fill)
		text := ""
		if share != "" {
			text = share + "%"
		}
		spec.Texts = append(spec.Texts, text)
	}
	c := hbars("mix-"+dim, "Contracted tonnes by "+dim,
		fmt.Sprintf("A bar of all contracted tonnes split by %s, %d segments labelled with their share in percent; the legend and the table below list every figure.", dim, len(spec.Values)),
		"No contracted tonnes", width, 0, 12, 44, []hSpec{spec})
	c.Legend = legend
	return c
}

// progressChart shows where each contract's tonnes stand: retired, holding, reversed,
// cancelled and outstanding, which together are its contracted tonnes plus replacements. It
// shows the 20 largest contracts; the table lists all.
func progressChart(lines []PortfolioLine) (hChart, string) {
	const shown = 20
	sorted := make([]PortfolioLine, len(lines))
	copy(sorted, lines)
	sort.SliceStable(sorted, func(i, j int) bool {
		return sorted[i].Contracted.Add(sorted[i].Replacements).GreaterThan(sorted[j].Contracted.Add(sorted[j].Replacements))
	})
	note := ""
	if len(sorted) > shown {
		note = fmt.Sprintf("The %d largest of %d contracts; the table lists all.", shown, len(sorted))
		sorted = sorted[:shown]
	}
	names := []string{"Retired", "Holding", "Reversed", "Cancelled", "Outstanding"}
	fills := []string{fillRetired, fillHolding, fillReversed, fillCancelled, fillOutstanding}
	specs := make([]hSpec, 0, len(sorted))
	for _, l := range sorted {
		owed := l.Contracted.Add(l.Replacements)
		value := ""
		if r := percent(l.Delivered, owed); r != nil {
			value = *r + "% delivered"
		}
		specs = append(specs, hSpec{Label: clip(l.Key, 24), Title: l.Key, Value: value,
			Values: []ledger.Tonnes{l.Retired, l.Holding, l.Reversed, l.Cancelled, l.Outstanding}, Names: names, Fills: fills})
	}
	c := hbars("progress", "Where each contract's tonnes stand",
		fmt.Sprintf("One bar per contract (%d shown), its contracted tonnes plus replacements split into retired, holding, reversed, cancelled and outstanding; labelled with the share delivered.", len(specs)),
		"No contracts", vcW, 200, 120, 34, specs)
	for i, n := range names {
		c.Legend = append(c.Legend, legendItem{Fill: fills[i], Name: n})
	}
	return c, note
}

// ageChart shows the inventory (delivered, not yet retired) by age.
func ageChart(inv Inventory) hChart {
	specs := make([]hSpec, 0, len(inv.Buckets))
	for _, b := range inv.Buckets {
		specs = append(specs, hSpec{Label: b.Label, Title: b.Label, Value: compact(b.Tonnes.Decimal()) + " t",
			Values: []ledger.Tonnes{b.Tonnes}, Names: []string{"Held " + b.Label}, Fills: []string{fillHolding}})
	}
	return hbars("inventory-age", "Inventory by age",
		"Horizontal bars of the tonnes held (delivered, not yet retired) by time since delivery: under 6 months, 6 to 12 months, 1 to 2 years, 2 years or more.",
		"No inventory: nothing delivered is waiting to be retired", vcW, 130, 90, 36, specs)
}
