package reports

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"net/url"

	"github.com/shopspring/decimal"

	"github.com/carbonledger/carbonledger/ledger"
)

// The dashboard: server-rendered pages over the same report models and charts as the report
// pages, with a navigation bar, and every figure a link to the journal entries behind it
// (JournalURL). No script: every figure is in the HTML.

//go:embed dashboard.tmpl
var dashText string

func init() {
	template.Must(pages.Funcs(template.FuncMap{
		"journal":  JournalURL,
		"contract": func(code string) string { return "/contracts/" + url.PathEscape(code) },
		"short":    func(s string) string { return clip(s, 12) },
		"add":      func(a, b int) int { return a + b },
	}).Parse(dashText))
}

// JournalURL is the dashboard's page of the entries behind a figure: a contract's (or every
// contract's, for ""), of some kinds (comma-separated; "" for all), effective from from to
// to (YYYY-MM-DD; "" for no bound).
func JournalURL(contract, kinds, from, to string) string {
	q := url.Values{}
	for k, v := range map[string]string{"contract": contract, "kind": kinds, "from": from, "to": to} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return "/journal"
	}
	return "/journal?" + q.Encode()
}

// DashPage is what every dashboard page shows around its content.
type DashPage struct {
	Title   string
	Section string // the navigation entry that is current: portfolio, period, audit, journal
	User    string // the signed-in token's name ("" on the login page)
	Role    string
	CSRF    string // the token the page's forms carry
	AsOf    string
	// Downloads are the page's report in other formats.
	Downloads []DashLink
	Notice    string
}

// DashLink is a labelled link.
type DashLink struct{ Label, URL string }

// DashValue is committed and delivered value in one currency.
type DashValue struct {
	Currency             string
	Committed, Delivered string
}

// DashPortfolio is the dashboard's front page.
type DashPortfolio struct {
	DashPage
	Term      Term
	Portfolio Portfolio
	Values    []DashValue
	// Durability is each contract's durability class, by code.
	Durability map[string]string
	// Totals over the term report's contracts.
	ScheduledToDate, Shortfall ledger.Tonnes
}

// DashContract is a contract's page.
type DashContract struct {
	DashPage
	Contract    TermContract
	Entries     []DashEntry
	MoreEntries string // the link to older entries, when there are more
	Serials     []DashSerial
	Retirements []DashEntry
}

// DashEntry is a journal entry as the dashboard lists it.
type DashEntry struct {
	ID, Book, Kind, EffectiveOn, RecordedAt, RecordedBy, Description, Hash string
	Seq                                                                    int64
	Tonnes                                                                 string // what moved (the entry's positive postings)
	Beneficiary, Claim, Reason, Serials                                    string
}

// DashSerial is a serial block as the dashboard lists it.
type DashSerial struct {
	Registry, Serials, Tonnes, State, Entry string
	Vintage                                 int
}

// DashPeriod is the period report's page, with its selector.
type DashPeriod struct {
	DashPage
	Report          PeriodReport
	Year            string
	FiscalYearStart int
	By              string
	GroupKeys       []string
	Months          []string
}

// DashAudit is the audit's page.
type DashAudit struct {
	DashPage
	OK               bool
	Entries          int64
	Postings         int64
	Books            int
	Digest, KnownAt  string
	Findings         []ledger.Finding
	RecordedBy       map[string]int64
	Statement        *ledger.Statement // the last statement the API kept, if any
	StatementSigned  bool
	Extends          bool     // today's books extend it
	ExtendsFindings  []string // why not
	StatementWritten string   // when it was kept
}

// DashJournal is a list of entries behind a figure.
type DashJournal struct {
	DashPage
	Filter  string
	Entries []DashEntry
	More    string
}

// DashLogin is the sign-in page.
type DashLogin struct {
	DashPage
	Error string
}

// RenderDashboard writes one dashboard page; page is one of the Dash* page types.
func RenderDashboard(w io.Writer, page any) error {
	var name string
	switch p := page.(type) {
	case DashLogin:
		name = "dash-login"
	case DashPortfolio:
		return pages.ExecuteTemplate(w, "dash-portfolio", portfolioDash{DashPortfolio: p, Charts: portfolioCharts(p.Portfolio),
			Mix: mixDims})
	case DashContract:
		return pages.ExecuteTemplate(w, "dash-contract", contractDash{DashContract: p, Chart: termChart(p.Contract, "contract"),
			Facts: termFacts(p.Contract)})
	case DashPeriod:
		return pages.ExecuteTemplate(w, "dash-period", periodDash{DashPeriod: p, Chart: periodChart(p.Report), Rows: periodRows(p.Report)})
	case DashAudit:
		name = "dash-audit"
	case DashJournal:
		name = "dash-journal"
	default:
		return fmt.Errorf("reports: no dashboard page for %T", page)
	}
	return pages.ExecuteTemplate(w, name, page)
}

type portfolioDash struct {
	DashPortfolio
	Charts []hChart
	Mix    []string
}

// mixDims are the dimensions of the portfolio page's share charts, in order.
var mixDims = []string{"method", "durability", "supplier"}

func portfolioCharts(p Portfolio) []hChart {
	var out []hChart
	for _, dim := range mixDims {
		out = append(out, shareChart(dim, p.Shares[dim], vcW/2))
	}
	c, _ := progressChart(p.Contracts)
	return append(out, c)
}

type contractDash struct {
	DashContract
	Chart vChart
	Facts []dashFact
}

// dashFact is a figure of a contract's summary and the kinds of entry behind it.
type dashFact struct {
	Label, Value, Unit, Kinds string
}

// termFacts are the figures of a contract's summary, as the term report shows them.
func termFacts(c TermContract) []dashFact {
	return []dashFact{
		{"Contracted", c.Contracted.String(), "t", "sign,amend,reverse"},
		{"Scheduled to date", c.ScheduledToDate.String(), "t", "sign,amend"},
		{"Delivered", c.Delivered.String(), "t", "deliver"},
		{"Delivery rate", opt(c.DeliveryRate), "%", "deliver"},
		{"Shortfall", c.Shortfall.String(), "t", "deliver"},
		{"Retired", c.Retired.String(), "t", "retire,deliver"},
		{"Holding", c.Holding.String(), "t", "deliver,retire,reverse"},
		{"Cancelled", c.Cancelled.String(), "t", "cancel"},
		{"Reversed", c.Reversed.String(), "t", "reverse"},
		{"Outstanding", c.Outstanding.String(), "t", ""},
	}
}

type periodDash struct {
	DashPeriod
	Chart vChart
	Rows  []periodRow
}

func periodRows(p PeriodReport) []periodRow {
	var rows []periodRow
	for _, per := range p.Periods {
		for _, g := range per.Groups {
			rows = append(rows, periodRow{Label: per.Label, Start: per.Start, End: per.End, Group: g.Key, Measures: g.Measures})
		}
		rows = append(rows, periodRow{Label: per.Label, Start: per.Start, End: per.End, Group: "all", Measures: per.Measures, All: true})
	}
	return rows
}

// Value is tonnes times a price, at a currency's scale.
func Value(t ledger.Tonnes, price decimal.Decimal, scale int32) string {
	return t.Decimal().Mul(price).StringFixed(scale)
}
