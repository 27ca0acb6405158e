package reports

import (
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

// Term is the term report: per contract and per contract year, scheduled against delivered.
type Term struct {
	Meta
	Contracts []TermContract `json:"contracts"`
}

// TermContract is one contract's line of the term report.
type TermContract struct {
	Code            string         `json:"code"`
	Buyer           string         `json:"buyer"`
	Supplier        string         `json:"supplier"`
	Method          ledger.Method  `json:"method"`
	TermStart       string         `json:"term_start"`
	TermEnd         string         `json:"term_end"`
	Contracted      ledger.Tonnes  `json:"contracted"`
	Replacements    ledger.Tonnes  `json:"replacements"`
	ScheduledToDate ledger.Tonnes  `json:"scheduled_to_date"`
	Delivered       ledger.Tonnes  `json:"delivered"`
	Retired         ledger.Tonnes  `json:"retired"`
	Cancelled       ledger.Tonnes  `json:"cancelled"`
	Reversed        ledger.Tonnes  `json:"reversed"`
	BufferCancelled ledger.Tonnes  `json:"buffer_cancelled"`
	Holding         ledger.Tonnes  `json:"holding"`
	Outstanding     ledger.Tonnes  `json:"outstanding"`
	Shortfall       ledger.Tonnes  `json:"shortfall"`
	Surplus         ledger.Tonnes  `json:"surplus"`
	DeliveryRate    *string        `json:"delivery_rate_percent"`
	WeightedPrice   *string        `json:"weighted_average_price"`
	Currency        string         `json:"currency,omitempty"`
	RemainingYears  int            `json:"remaining_years"`
	RunRate         *ledger.Tonnes `json:"run_rate_per_remaining_year"`
	Status          string         `json:"status"`
	TerminatedOn    string         `json:"terminated_on,omitempty"`
	Years           []TermYear     `json:"years"`
}

// TermYear is one contract year.
type TermYear struct {
	Year                int           `json:"year"`
	Start               string        `json:"start"`
	End                 string        `json:"end"`
	DueOn               string        `json:"due_on"`
	Due                 bool          `json:"due"`
	Scheduled           ledger.Tonnes `json:"scheduled"`
	Delivered           ledger.Tonnes `json:"delivered"`
	CumulativeDelivered ledger.Tonnes `json:"cumulative_delivered"`
	Shortfall           ledger.Tonnes `json:"shortfall"`
	Surplus             ledger.Tonnes `json:"surplus"`
	Retired             ledger.Tonnes `json:"retired"`
	Cancelled           ledger.Tonnes `json:"cancelled"`
	Reversed            ledger.Tonnes `json:"reversed"`
	WeightedPrice       *string       `json:"weighted_average_price"`
}

// BuildTerm builds the term report as of a date.
func BuildTerm(meta Meta, cfs []*ledger.ContractFlows, asOf time.Time) Term {
	t := Term{Meta: meta, Contracts: make([]TermContract, len(cfs))}
	eachOn(len(cfs), func(i int) { t.Contracts[i] = termContract(cfs[i], asOf) })
	return t
}

func termContract(cf *ledger.ContractFlows, asOf time.Time) TermContract {
	c := cf.Contract
	p := cf.Total.Position
	tc := TermContract{Code: c.Code, Buyer: c.Buyer, Supplier: c.Supplier, Method: c.Method,
		TermStart: ledger.FormatDate(c.TermStart), TermEnd: ledger.FormatDate(c.TermEnd),
		Contracted: p.Contracted, Replacements: p.Replacements, Delivered: p.Delivered, Retired: p.Retired,
		Cancelled: p.Cancelled, Reversed: p.Reversed, BufferCancelled: p.BufferCancelled, Holding: p.Holding,
		Outstanding: outstanding(p),
		Currency:    c.Currency, TerminatedOn: ledger.FormatDate(cf.TerminatedOn),
		WeightedPrice: weightedPrice(cf.Total.Value, cf.Total.Priced, c.Currency)}
	var cum ledger.Tonnes
	years := c.Years()
	// Flows dated before the term (year 0) carry only the signing; anything else there would
	// show as its own row rather than vanish.
	if y0 := cf.Years[0]; y0 != nil {
		q := y0.Position
		if !q.Delivered.IsZero() || !q.Retired.IsZero() || !q.Cancelled.IsZero() || !q.Reversed.IsZero() {
			tc.Years = append(tc.Years, TermYear{Year: 0, Start: "", End: ledger.FormatDate(c.TermStart.AddDate(0, 0, -1)),
				Delivered: q.Delivered, CumulativeDelivered: q.Delivered, Surplus: q.Delivered.Max(ledger.Zero), Retired: q.Retired,
				Cancelled: q.Cancelled, Reversed: q.Reversed})
			cum = q.Delivered
		}
	}
	for _, y := range years {
		var f ledger.FlowSum
		if v := cf.Years[y.N]; v != nil {
			f = *v
		}
		sched := ledger.ScheduledFor(cf.Schedule, y.N)
		due := dueOn(cf, y)
		isDue := !due.After(asOf)
		cum = cum.Add(f.Delivered)
		ty := TermYear{Year: y.N, Start: ledger.FormatDate(y.Start), End: ledger.FormatDate(y.End), DueOn: ledger.FormatDate(due),
			Due: isDue, Scheduled: sched, Delivered: f.Delivered, CumulativeDelivered: cum,
			Surplus: f.Delivered.Sub(sched).Max(ledger.Zero), Retired: f.Retired, Cancelled: f.Cancelled, Reversed: f.Reversed,
			WeightedPrice: weightedPrice(f.Value, f.Priced, c.Currency)}
		if isDue {
			ty.Shortfall = sched.Sub(f.Delivered).Max(ledger.Zero)
			tc.ScheduledToDate = tc.ScheduledToDate.Add(sched)
		}
		if !y.End.Before(asOf) {
			tc.RemainingYears++
		}
		tc.Years = append(tc.Years, ty)
	}
	tc.Shortfall = tc.ScheduledToDate.Sub(tc.Delivered).Max(ledger.Zero)
	tc.Surplus = tc.Delivered.Sub(tc.ScheduledToDate).Max(ledger.Zero)
	tc.DeliveryRate = percent(tc.Delivered, tc.ScheduledToDate)
	if tc.RemainingYears > 0 && tc.Outstanding.IsPositive() && cf.TerminatedOn.IsZero() {
		r := divTonnes(tc.Outstanding, tc.RemainingYears)
		tc.RunRate = &r
	}
	tc.Status = status(cf, tc.Outstanding, tc.ScheduledToDate)
	return tc
}

// dueOn is when contract year y's tonnes are due: its schedule line's date, else the year's end.
func dueOn(cf *ledger.ContractFlows, y ledger.ContractYear) time.Time {
	due := y.End
	for _, l := range cf.Schedule {
		if l.Year == y.N && !l.DueOn.IsZero() {
			due = l.DueOn
		}
	}
	return due
}

// status is a contract's status: terminated, complete (nothing outstanding), behind (less
// delivered and cancelled than scheduled to date) or on track.
func status(cf *ledger.ContractFlows, outstanding, scheduledToDate ledger.Tonnes) string {
	p := cf.Total.Position
	switch {
	case !cf.TerminatedOn.IsZero():
		return "terminated"
	case !outstanding.IsPositive():
		return "complete"
	case scheduledToDate.Sub(p.Delivered).Sub(p.Cancelled).IsPositive():
		return "behind"
	default:
		return "on track"
	}
}

// termStatus is termContract's status alone, without the rest of the row.
func termStatus(cf *ledger.ContractFlows, asOf time.Time) string {
	var toDate ledger.Tonnes
	for _, y := range cf.Contract.Years() {
		if !dueOn(cf, y).After(asOf) {
			toDate = toDate.Add(ledger.ScheduledFor(cf.Schedule, y.N))
		}
	}
	return status(cf, outstanding(cf.Total.Position), toDate)
}

// outstanding is what remains to deliver: contracted plus replacements, less delivered and cancelled.
func outstanding(p ledger.Position) ledger.Tonnes {
	return p.Contracted.Add(p.Replacements).Sub(p.Delivered).Sub(p.Cancelled)
}
