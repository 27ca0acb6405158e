package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/carbonledger/carbonledger/ledger"
)

func renderHTML(t *testing.T, r Report) string {
	t.Helper()
	var buf bytes.Buffer
	if err := r.HTML(&buf); err != nil {
		t.Fatalf("HTML: %v", err)
	}
	return buf.String()
}

// fixtureHTML renders the three reports on the fixed data set.
func fixtureHTML(t *testing.T) map[string]string {
	t.Helper()
	books := fixtureBooks(t)
	cfs := allFlows(books, fixtureAsOf)
	meta := NewMeta(fixtureAsOf, fixtureKnownAt)
	specs, err := Periods([]int{2024, 2025, 2026}, 7)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"term":      renderHTML(t, BuildTerm(meta, cfs, fixtureAsOf)),
		"period":    renderHTML(t, BuildPeriod(meta, specs, 7, "", groupFlows(books, fixtureAsOf, ""))),
		"period-by": renderHTML(t, BuildPeriod(meta, specs, 7, "supplier", groupFlows(books, fixtureAsOf, "supplier"))),
		"portfolio": renderHTML(t, BuildPortfolio(meta, cfs, fixtureAsOf)),
	}
}

var (
	urlRE   = regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|https?:`)
	svgNS   = `xmlns="http://www.w3.org/2000/svg"`
	rectRE  = regexp.MustCompile(`<rect class="bar[^"]*" x="([^"]*)" y="([^"]*)" width="([^"]*)" height="([^"]*)"`)
	svgRE   = regexp.MustCompile(`<svg class="[vh]chart" viewBox="0 0 (\d+) (\d+)" role="img" aria-labelledby="([^"]+)-t ([^"]+)-d"`)
	titleRE = regexp.MustCompile(`<title>([^<]*)</title></rect>`)
)

// selfContained fails unless the page references nothing outside itself: no URL but the SVG
// namespace, no script, no external style sheet, font or image.
func selfContained(t *testing.T, name, page string) {
	t.Helper()
	rest := strings.ReplaceAll(page, svgNS, "")
	if m := urlRE.FindString(rest); m != "" {
		t.Errorf("%s: references %q; a report must open offline", name, m)
	}
	for _, bad := range []string{"<script", "javascript:", "<link", "<img", "<iframe", "<object", "<embed", "@import", "@font-face"} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("%s: contains %q; a report is one file with no script", name, bad)
		}
	}
	for rest := page; ; {
		i := strings.Index(rest, "url(")
		if i < 0 {
			break
		}
		if rest = rest[i+4:]; !strings.HasPrefix(rest, "#") {
			t.Errorf("%s: url(%s...) refers outside the page", name, rest[:min(20, len(rest))])
		}
	}
	if !strings.HasPrefix(page, "<!DOCTYPE html>\n<html lang=\"en\">") || !strings.HasSuffix(page, "</html>\n") {
		t.Errorf("%s: not one HTML5 document (starts %q)", name, page[:min(40, len(page))])
	}
	if n := strings.Count(page, "<!DOCTYPE"); n != 1 {
		t.Errorf("%s: %d doctypes, want 1", name, n)
	}
	for _, tag := range []string{"svg", "table", "section", "figure", "g", "text", "ul", "dl", "tr"} {
		open := strings.Count(page, "<"+tag+">") + strings.Count(page, "<"+tag+" ")
		if closed := strings.Count(page, "</"+tag+">"); open != closed {
			t.Errorf("%s: %d <%s> opened, %d closed", name, open, tag, closed)
		}
	}
	if strings.Contains(page, "<nil>") || strings.Contains(page, "%!") || strings.Contains(page, "ZgotmplZ") {
		t.Errorf("%s: a value did not render (<nil>, %%!, or ZgotmplZ in the page)", name)
	}
}

func TestHTMLSelfContained(t *testing.T) {
	for name, page := range fixtureHTML(t) {
		selfContained(t, name, page)
		if !strings.Contains(page, "<style>") {
			t.Errorf("%s: no inline style sheet", name)
		}
		if !strings.Contains(page, "2026-03-31") || !strings.Contains(page, "2026-04-01T12:30:00.000000Z") {
			t.Errorf("%s: the header does not show as of and known at", name)
		}
	}
}

// TestHTMLCharts: every chart is an accessible SVG (a title and a description it is labelled
// by), and every non-zero figure draws a bar of positive width and height inside its chart.
func TestHTMLCharts(t *testing.T) {
	pages := fixtureHTML(t)
	wantCharts := map[string]int{"term": 4, "period": 1, "period-by": 2, "portfolio": 6}
	for name, page := range pages {
		charts := svgRE.FindAllStringSubmatch(page, -1)
		if len(charts) != wantCharts[name] {
			t.Errorf("%s: %d charts, want %d", name, len(charts), wantCharts[name])
		}
		for _, c := range charts {
			if c[3] != c[4] || !strings.Contains(page, `<title id="`+c[3]+`-t">`) || !strings.Contains(page, `<desc id="`+c[3]+`-d">`) {
				t.Errorf("%s: chart %s lacks its <title> or <desc>", name, c[3])
			}
		}
		bars := rectRE.FindAllStringSubmatch(page, -1)
		if len(bars) == 0 {
			t.Fatalf("%s: no bars drawn", name)
		}
		for _, b := range bars {
			for i, what := range []string{"x", "y", "width", "height"} {
				v, err := decimal.NewFromString(b[i+1])
				if err != nil {
					t.Fatalf("%s: bar %s=%q is not a number", name, what, b[i+1])
				}
				if (what == "width" || what == "height") && !v.IsPositive() {
					t.Errorf("%s: bar with %s %s: %s", name, what, v, b[0])
				}
				if v.IsNegative() || v.GreaterThan(decimal.NewFromInt(vcW)) {
					t.Errorf("%s: bar %s %s outside the chart: %s", name, what, v, b[0])
				}
			}
		}
		if titles := titleRE.FindAllString(page, -1); len(titles) != len(bars) {
			t.Errorf("%s: %d bars but %d bar tooltips", name, len(bars), len(titles))
		}
		if !strings.Contains(page, `<ul class="legend">`) {
			t.Errorf("%s: no legend", name)
		}
	}
	// Term: each contract year's non-zero scheduled and delivered tonnes is a bar, its exact
	// figure in the tooltip.
	term := pages["term"]
	for _, tip := range []string{
		"Year 2 (2025-01-01 to 2025-12-31): scheduled 1000.500 t",
		"Year 2 (2025-01-01 to 2025-12-31): delivered 1100.000 t",
		"Year 3 (2026-01-01 to 2026-12-31), due 2026-12-31, not yet due: delivered 200.250 t",
		"Year 1 (2024-01-01 to 2024-12-31): delivered 450.000 t",
	} {
		if !strings.Contains(term, "<title>"+tip+"</title>") {
			t.Errorf("term: no bar with the tooltip %q", tip)
		}
	}
	if !strings.Contains(term, "axis-title") || !strings.Contains(term, "tonnes CO₂e") {
		t.Errorf("term: the chart has no axis title")
	}
	// Period: contracted, delivered and retired per period.
	for _, tip := range []string{"FY2024 (2023-07-01 to 2024-06-30): contracted 13500.000 t",
		"FY2025 (2024-07-01 to 2025-06-30): delivered 1800.000 t", "FY2026 (2025-07-01 to 2026-06-30): retired 550.125 t"} {
		if !strings.Contains(pages["period"], "<title>"+tip+"</title>") {
			t.Errorf("period: no bar with the tooltip %q", tip)
		}
	}
	// Portfolio: the method mix labelled with the shares, which add up to 100.0.
	for _, s := range []string{">69.1%<", ">20.7%<", "forestry, 69.1%: 10000.000 t", "1 to 2 years", "4500.000"} {
		if !strings.Contains(pages["portfolio"], s) {
			t.Errorf("portfolio: missing %q", s)
		}
	}
}

// TestHTMLBarsToScale: bar heights are proportional to the figures: the largest bar of the
// term chart reaches value x plot height / axis top, computed independently here.
func TestHTMLBarsToScale(t *testing.T) {
	c := barChart("x", "t", "d", "none", []series{{Name: "A", Fill: fillDelivered}, {Name: "B", Fill: fillScheduled}},
		[]vGroup{{Label: "1", Long: "one", Values: []ledger.Tonnes{tn("100"), tn("50")}},
			{Label: "2", Long: "two", Values: []ledger.Tonnes{tn("25"), tn("0.001")}}}, false)
	// max 100: step niceStep(100/5) = 20, axis top 100; plot height 320 - 24 - 56 = 240
	want := []string{"240.0", "120.0", "60.0", "1.0"}
	if len(c.Bars) != len(want) {
		t.Fatalf("%d bars, want %d", len(c.Bars), len(want))
	}
	for i, b := range c.Bars {
		if b.H != want[i] {
			t.Errorf("bar %d height %s, want %s", i, b.H, want[i])
		}
		y, _ := decimal.NewFromString(b.Y)
		h, _ := decimal.NewFromString(b.H)
		if got := y.Add(h).StringFixed(1); got != c.Bottom {
			t.Errorf("bar %d ends at %s, want the baseline %s", i, got, c.Bottom)
		}
	}
	if got := []string{c.YTicks[0].Label, c.YTicks[len(c.YTicks)-1].Label}; got[0] != "0" || got[1] != "100" {
		t.Errorf("axis from %s to %s, want 0 to 100", got[0], got[1])
	}
}

func TestAxis(t *testing.T) {
	tests := []struct {
		max, top string
		ticks    int
	}{
		{"0", "0", 1}, {"-5", "0", 1}, {"0.001", "0.001", 6}, {"1", "1", 6}, {"7", "8", 5}, {"95000", "100000", 6},
		{"234000", "250000", 6}, {"13600.5", "15000", 4}, {"17833", "20000", 5}, {"999999999999999.999", "1000000000000000", 6},
	}
	for _, tt := range tests {
		top, ticks := axis(decimal.RequireFromString(tt.max))
		if top.String() != tt.top || len(ticks) != tt.ticks {
			t.Errorf("axis(%s) = top %s with %d ticks, want top %s with %d", tt.max, top, len(ticks), tt.top, tt.ticks)
		}
		if max := decimal.RequireFromString(tt.max); top.LessThan(max) {
			t.Errorf("axis(%s) top %s is below the largest figure", tt.max, top)
		}
	}
}

func TestTickLabel(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "0.00025": "0.00025", "250": "250", "1250": "1.25k", "2500000": "2.5M"} {
		if got := tickLabel(decimal.RequireFromString(in)); got != want {
			t.Errorf("tickLabel(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestCompact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0", "0"}, {"0.125", "0.125"}, {"233.5", "233.5"}, {"999.96", "1000"}, {"1000", "1k"}, {"13600.5", "13.6k"},
		{"234000", "234k"}, {"1250000", "1.25M"}, {"2500000000", "2.5G"}, {"-12.5", "-12.5"},
	}
	for _, tt := range tests {
		if got := compact(decimal.RequireFromString(tt.in)); got != tt.want {
			t.Errorf("compact(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestHTMLEscapes: names from the ledger are text, never markup, in every report.
func TestHTMLEscapes(t *testing.T) {
	const evil = `<script>alert(1)</script>`
	b := newBook(mustContract(t, `{"code": "EVIL-1", "buyer": "\"><img src=x onerror=alert(2)>", "supplier": "<script>alert(1)</script>",
		"project": "p", "method": "biochar", "country": "US", "region": "</title><script>alert(3)</script>",
		"term_start": "2025-01-01", "term_end": "2025-12-31", "signed_on": "2025-01-01", "tonnes": "100"}`)).
		deliver("2025-02-01", "40", nil)
	books := []*book{b}
	asOf := date("2025-06-30")
	cfs := allFlows(books, asOf)
	specs, err := Periods([]int{2025}, 1)
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]string{
		"term":      renderHTML(t, BuildTerm(Meta{AsOf: "2025-06-30"}, cfs, asOf)),
		"period":    renderHTML(t, BuildPeriod(Meta{AsOf: "2025-06-30"}, specs, 1, "supplier", groupFlows(books, asOf, "supplier"))),
		"portfolio": renderHTML(t, BuildPortfolio(Meta{AsOf: "2025-06-30"}, cfs, asOf)),
	}
	for name, page := range pages {
		for _, bad := range []string{evil, "<script", "<img", "alert(3)</script>"} {
			if strings.Contains(page, bad) {
				t.Errorf("%s: the page contains %q unescaped", name, bad)
			}
		}
		if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the supplier is not shown escaped", name)
		}
		selfContained(t, name, page)
	}
}

// TestHTMLNoData: with no contracts, or nothing but zeros, every page renders (no division by
// zero), says there is nothing, and draws no bar.
func TestHTMLNoData(t *testing.T) {
	specs, err := Periods([]int{2024, 2025}, 7)
	if err != nil {
		t.Fatal(err)
	}
	zero := newBook(mustContract(t, `{"code": "ZERO", "buyer": "B", "supplier": "S", "project": "p", "method": "ocean",
		"country": "NO", "term_start": "2030-01-01", "term_end": "2031-12-31", "signed_on": "2025-01-01", "tonnes": "5"}`))
	asOf := date("2025-06-30")
	zcfs := allFlows([]*book{zero}, asOf)
	zcfs[0].Total, zcfs[0].Years = ledger.FlowSum{}, map[int]*ledger.FlowSum{} // as if the signing were reverted
	tests := []struct {
		name string
		r    Report
		want []string
	}{
		{"term without contracts", BuildTerm(Meta{AsOf: "2025-06-30"}, nil, asOf), []string{"No contracts had been signed by 2025-06-30"}},
		{"term of zeros", BuildTerm(Meta{AsOf: "2025-06-30"}, zcfs, asOf), []string{"ZERO", ": scheduled 3.000 t</title>"}},
		{"period without data", BuildPeriod(Meta{AsOf: "2025-06-30"}, specs, 7, "method", nil), []string{"No tonnes contracted, delivered or retired"}},
		{"period without periods", BuildPeriod(Meta{AsOf: "2025-06-30"}, nil, 1, "", nil), []string{"No tonnes"}},
		{"portfolio without contracts", BuildPortfolio(Meta{AsOf: "2025-06-30"}, nil, asOf), []string{"No contracted tonnes", "No inventory", "No contracts"}},
		{"portfolio of zeros", BuildPortfolio(Meta{AsOf: "2025-06-30"}, zcfs, asOf), []string{"No contracted tonnes", "No inventory"}},
	}
	for _, tt := range tests {
		page := renderHTML(t, tt.r)
		selfContained(t, tt.name, page)
		for _, w := range tt.want {
			if !strings.Contains(page, w) {
				t.Errorf("%s: missing %q", tt.name, w)
			}
		}
		want := 0
		if tt.name == "term of zeros" {
			want = 2 // the schedule of its two years; nothing delivered
		}
		if bars := rectRE.FindAllString(page, -1); len(bars) != want {
			t.Errorf("%s: %d bars drawn, want %d", tt.name, len(bars), want)
		}
	}
}

// TestNoBinaryFractions keeps the house rule: tonnes, prices and pixels in this package are
// exact decimals, never binary fractions (the before-stop hook greps for the same).
func TestNoBinaryFractions(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "html.tmpl")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "flo"+"at") {
				t.Errorf("%s:%d: %q: use decimal.Decimal or ledger.Tonnes", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// TestHTMLManyGroups: a breakdown of more keys than the palette has fills shows the largest
// seven and the rest together, whose shares still add up to 100.0.
func TestHTMLManyGroups(t *testing.T) {
	var books []*book
	for i := 0; i < 10; i++ {
		c := mustContract(t, `{"code": "M-`+string(rune('A'+i))+`", "buyer": "B", "supplier": "Supplier `+string(rune('A'+i))+`",
			"project": "p", "method": "biochar", "country": "US", "term_start": "2024-01-01", "term_end": "2024-12-31",
			"signed_on": "2024-01-01", "tonnes": "`+decimal.NewFromInt(int64(100*(i+1))).String()+`"}`)
		books = append(books, newBook(c).deliver("2024-03-01", "10", nil))
	}
	asOf := date("2024-12-31")
	p := renderHTML(t, BuildPortfolio(Meta{AsOf: "2024-12-31"}, allFlows(books, asOf), asOf))
	selfContained(t, "portfolio", p)
	// 5500 t in all; the three smallest (A, B, C: 600 t) are 10.9%
	for _, want := range []string{"3 others", "10.9% · 600.000 t", "Supplier J", "18.2%"} {
		if !strings.Contains(p, want) {
			t.Errorf("portfolio: missing %q", want)
		}
	}
	specs, err := Periods([]int{2024}, 1)
	if err != nil {
		t.Fatal(err)
	}
	q := renderHTML(t, BuildPeriod(Meta{AsOf: "2024-12-31"}, specs, 1, "supplier", groupFlows(books, asOf, "supplier")))
	selfContained(t, "period", q)
	if !strings.Contains(q, "3 others") || !strings.Contains(q, "others delivered 30.000 t") {
		t.Errorf("period: the smallest suppliers are not shown together")
	}
}
