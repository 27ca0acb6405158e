package reports

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/carbonledger/carbonledger/ledger"
)

// Formats are the output formats every report renders to.
var Formats = []string{"table", "csv", "json", "html"}

// Report is a built report that renders itself.
type Report interface {
	Table(w io.Writer) error
	CSV(w io.Writer) error
	HTML(w io.Writer) error
}

// Render writes r in the named format.
func Render(w io.Writer, r Report, format string) error {
	switch format {
	case "table":
		return r.Table(w)
	case "csv":
		return r.CSV(w)
	case "json":
		return writeJSON(w, r)
	case "html":
		return r.HTML(w)
	}
	return ledger.Invalid("--format", format, "is not a format ("+strings.Join(Formats, ", ")+")")
}

func opt(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func optT(t *ledger.Tonnes) string {
	if t == nil {
		return ""
	}
	return t.String()
}

func (m Meta) header(w io.Writer, title string) {
	fmt.Fprintf(w, "%s as of %s", title, m.AsOf)
	if m.KnownAt != "" {
		fmt.Fprintf(w, ", as known at %s", m.KnownAt)
	}
	fmt.Fprintln(w, " (tonnes CO2e)")
}

// Table writes the term report for a terminal.
func (t Term) Table(w io.Writer) error {
	t.Meta.header(w, "Term report")
	for _, c := range t.Contracts {
		fmt.Fprintf(w, "\n%s  %s <- %s, %s, %s to %s: %s", Inert(c.Code), Inert(c.Buyer), Inert(c.Supplier), c.Method, c.TermStart, c.TermEnd, c.Status)
		if c.TerminatedOn != "" {
			fmt.Fprintf(w, " on %s", c.TerminatedOn)
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "YEAR\tSTART\tEND\tSCHEDULED\tDELIVERED\tCUMULATIVE\tSHORTFALL\tSURPLUS\tRETIRED\tCANCELLED\tREVERSED\t")
		for _, y := range c.Years {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", y.Year, y.Start, y.End, y.Scheduled, y.Delivered,
				y.CumulativeDelivered, y.Shortfall, y.Surplus, y.Retired, y.Cancelled, y.Reversed)
		}
		fmt.Fprintf(tw, "all\t\t\t%s\t%s\t\t%s\t%s\t%s\t%s\t%s\t\n", c.ScheduledToDate, c.Delivered, c.Shortfall, c.Surplus, c.Retired, c.Cancelled, c.Reversed)
		tw.Flush()
		fmt.Fprintf(w, "  contracted %s + replacements %s; outstanding %s; holding %s", c.Contracted, c.Replacements, c.Outstanding, c.Holding)
		if c.DeliveryRate != nil {
			fmt.Fprintf(w, "; delivery rate %s%%", *c.DeliveryRate)
		}
		if c.RunRate != nil {
			fmt.Fprintf(w, "; needs %s t/year over %d remaining year(s)", c.RunRate, c.RemainingYears)
		}
		if c.WeightedPrice != nil {
			fmt.Fprintf(w, "; weighted price %s %s/t", *c.WeightedPrice, Inert(c.Currency))
		}
		fmt.Fprintln(w, "  (all: scheduled to date)")
	}
	if len(t.Contracts) == 0 {
		fmt.Fprintln(w, "\nno contracts")
	}
	return nil
}

// CSV writes one row per contract year and one row per contract (level "contract").
func (t Term) CSV(w io.Writer) error {
	c := NewCSV(w)
	c.Header("code", "level", "year", "start", "end", "scheduled", "delivered", "cumulative_delivered", "shortfall", "surplus",
		"retired", "cancelled", "reversed", "contracted", "replacements", "outstanding", "delivery_rate_percent",
		"weighted_average_price", "currency", "run_rate_per_remaining_year", "status")
	for _, k := range t.Contracts {
		for _, y := range k.Years {
			c.Row(Text(k.Code), Text("year"), Num(fmt.Sprint(y.Year)), Text(y.Start), Text(y.End), Num(y.Scheduled.String()),
				Num(y.Delivered.String()), Num(y.CumulativeDelivered.String()), Num(y.Shortfall.String()), Num(y.Surplus.String()),
				Num(y.Retired.String()), Num(y.Cancelled.String()), Num(y.Reversed.String()), Num(""), Num(""), Num(""), Num(""),
				Num(opt(y.WeightedPrice)), Text(k.Currency), Num(""), Text(""))
		}
		c.Row(Text(k.Code), Text("contract"), Num(""), Text(k.TermStart), Text(k.TermEnd), Num(k.ScheduledToDate.String()),
			Num(k.Delivered.String()), Num(k.Delivered.String()), Num(k.Shortfall.String()), Num(k.Surplus.String()),
			Num(k.Retired.String()), Num(k.Cancelled.String()), Num(k.Reversed.String()), Num(k.Contracted.String()),
			Num(k.Replacements.String()), Num(k.Outstanding.String()), Num(opt(k.DeliveryRate)), Num(opt(k.WeightedPrice)),
			Text(k.Currency), Num(optT(k.RunRate)), Text(k.Status))
	}
	return c.Flush()
}

// Table writes the period report for a terminal.
func (p PeriodReport) Table(w io.Writer) error {
	title := "Period report"
	if p.By != "" {
		title += " by " + p.By
	}
	p.Meta.header(w, title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\nPERIOD\tFROM\tTO\tGROUP\tCONTRACTED\tDELIVERED\tRETIRED\tCANCELLED\tREVERSED\tBUFFER\tREPLACEMENTS\t")
	row := func(label, start, end, group string, m Measures) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", label, start, end, Inert(group), m.Contracted, m.Delivered,
			m.Retired, m.Cancelled, m.Reversed, m.BufferCancelled, m.Replacements)
	}
	list := p.Periods
	if len(p.Periods) > 1 { // a single period is its own total
		list = append(list[:len(list):len(list)], p.Total)
	}
	for _, per := range list {
		for _, g := range per.Groups {
			row(per.Label, per.Start, per.End, g.Key, g.Measures)
		}
		row(per.Label, per.Start, per.End, "all", per.Measures)
	}
	return tw.Flush()
}

// CSV writes one row per period and group, and one per period total (group "(all)").
func (p PeriodReport) CSV(w io.Writer) error {
	c := NewCSV(w)
	c.Header("period", "start", "end", "group", "contracted", "delivered", "retired", "cancelled", "reversed",
		"buffer_cancelled", "replacements")
	row := func(per Period, group string, m Measures) {
		c.Row(Text(per.Label), Text(per.Start), Text(per.End), Text(group), Num(m.Contracted.String()), Num(m.Delivered.String()),
			Num(m.Retired.String()), Num(m.Cancelled.String()), Num(m.Reversed.String()), Num(m.BufferCancelled.String()),
			Num(m.Replacements.String()))
	}
	for _, per := range p.Periods {
		for _, g := range per.Groups {
			row(per, g.Key, g.Measures)
		}
		row(per, "(all)", per.Measures)
	}
	return c.Flush()
}

// Table writes the portfolio report for a terminal.
func (p Portfolio) Table(w io.Writer) error {
	p.Meta.header(w, "Portfolio")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\nCONTRACT\tSUPPLIER\tMETHOD\tREGION\tSTATUS\tCONTRACTED\tDELIVERED\tHOLDING\tRETIRED\tCANCELLED\tREVERSED\tOUTSTANDING\t")
	for _, l := range append(p.Contracts, p.Totals) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", Inert(l.Key), Inert(l.Supplier), Inert(l.Method), Inert(l.Region), l.Status,
			l.Contracted, l.Delivered, l.Holding, l.Retired, l.Cancelled, l.Reversed, l.Outstanding)
	}
	tw.Flush()
	for _, dim := range []string{"method", "supplier", "region", "durability"} {
		fmt.Fprintf(w, "\nBy %s\n", dim)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "KEY\tCONTRACTS\tCONTRACTED\tSHARE %\tDELIVERED\tHOLDING\tRETIRED\t")
		for _, g := range p.Shares[dim] {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", Inert(g.Key), g.Contracts, g.Contracted, opt(g.ShareContracted), g.Delivered, g.Holding, g.Retired)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nInventory (delivered, not yet retired): %s t", p.Inventory.Holding)
	if p.Inventory.AverageAgeDays != nil {
		fmt.Fprintf(w, ", average age %d days", *p.Inventory.AverageAgeDays)
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	hdr := "CONTRACT\tHOLDING\tAVG AGE (DAYS)\tOLDEST"
	for _, b := range bucketLabels {
		hdr += "\t" + strings.ToUpper(b)
	}
	fmt.Fprintln(tw, hdr+"\t")
	for _, ic := range p.Inventory.Contracts {
		age := ""
		if ic.AverageAgeDays != nil {
			age = fmt.Sprint(*ic.AverageAgeDays)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s", Inert(ic.Code), ic.Holding, age, ic.OldestMonth)
		for _, b := range ic.Buckets {
			fmt.Fprintf(tw, "\t%s", b.Tonnes)
		}
		fmt.Fprintln(tw, "\t")
	}
	fmt.Fprintf(tw, "total\t%s\t\t", p.Inventory.Holding)
	for _, b := range p.Inventory.Buckets {
		fmt.Fprintf(tw, "\t%s", b.Tonnes)
	}
	fmt.Fprintln(tw, "\t")
	return tw.Flush()
}

// CSV writes one row per contract and a total row.
func (p Portfolio) CSV(w io.Writer) error {
	c := NewCSV(w)
	c.Header("contract", "buyer", "supplier", "method", "region", "durability", "status", "contracted", "replacements",
		"delivered", "holding", "retired", "cancelled", "reversed", "outstanding")
	for _, l := range append(p.Contracts, p.Totals) {
		c.Row(Text(l.Key), Text(l.Buyer), Text(l.Supplier), Text(l.Method), Text(l.Region), Text(l.Durability), Text(l.Status),
			Num(l.Contracted.String()), Num(l.Replacements.String()), Num(l.Delivered.String()), Num(l.Holding.String()),
			Num(l.Retired.String()), Num(l.Cancelled.String()), Num(l.Reversed.String()), Num(l.Outstanding.String()))
	}
	return c.Flush()
}
