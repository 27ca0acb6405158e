package reports

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

// PeriodSpec is one reporting period: a calendar year, or a fiscal year whose first month is
// configurable. A fiscal year is named after the calendar year it ends in (Microsoft's FY2025
// runs from 2024-07-01 to 2025-06-30).
type PeriodSpec struct {
	Label string
	Start time.Time // first day
	End   time.Time // last day, inclusive
}

// Periods returns the periods for the given years: calendar years when fyStart is 1, else
// fiscal years starting in month fyStart.
func Periods(years []int, fyStart int) ([]PeriodSpec, error) {
	if fyStart < 1 || fyStart > 12 {
		return nil, ledger.Invalid("--fiscal-year-start", fmt.Sprint(fyStart), "must be a month number from 1 to 12")
	}
	out := make([]PeriodSpec, 0, len(years))
	for _, y := range years {
		if y < 1990 || y > 2200 {
			return nil, ledger.Invalid("--year", fmt.Sprint(y), "is not a year between 1990 and 2200")
		}
		if fyStart == 1 {
			out = append(out, PeriodSpec{Label: fmt.Sprint(y), Start: ledger.Date(y, 1, 1), End: ledger.Date(y, 12, 31)})
			continue
		}
		start := ledger.Date(y-1, time.Month(fyStart), 1)
		out = append(out, PeriodSpec{Label: fmt.Sprintf("FY%d", y), Start: start, End: start.AddDate(1, 0, -1)})
	}
	return out, nil
}

// Bounds returns the cut points of the periods, ascending and without repeats: every start,
// and every day after an end. Summed between consecutive bounds (store.PeriodFlows), each
// period is one bucket, and a gap between periods a bucket no period counts.
func Bounds(specs []PeriodSpec) []time.Time {
	var out []time.Time
	for _, sp := range specs {
		out = append(out, sp.Start, sp.End.AddDate(0, 0, 1))
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return slices.CompactFunc(out, func(a, b time.Time) bool { return a.Equal(b) })
}

// Measures are the tonnes a period (or a group in it) counts.
type Measures struct {
	Contracted      ledger.Tonnes `json:"contracted"`
	Replacements    ledger.Tonnes `json:"replacements"`
	Delivered       ledger.Tonnes `json:"delivered"`
	Retired         ledger.Tonnes `json:"retired"`
	Cancelled       ledger.Tonnes `json:"cancelled"`
	Reversed        ledger.Tonnes `json:"reversed"`
	BufferCancelled ledger.Tonnes `json:"buffer_cancelled"`
}

func measures(p ledger.Position) Measures {
	return Measures{Contracted: p.Contracted, Replacements: p.Replacements, Delivered: p.Delivered, Retired: p.Retired,
		Cancelled: p.Cancelled, Reversed: p.Reversed, BufferCancelled: p.BufferCancelled}
}

func (m *Measures) add(o Measures) {
	m.Contracted, m.Replacements = m.Contracted.Add(o.Contracted), m.Replacements.Add(o.Replacements)
	m.Delivered, m.Retired, m.Cancelled = m.Delivered.Add(o.Delivered), m.Retired.Add(o.Retired), m.Cancelled.Add(o.Cancelled)
	m.Reversed, m.BufferCancelled = m.Reversed.Add(o.Reversed), m.BufferCancelled.Add(o.BufferCancelled)
}

// PeriodReport is the period report: per period, what was contracted (signed or amended),
// delivered, retired, cancelled and reversed, optionally grouped.
type PeriodReport struct {
	Meta
	By              string   `json:"by,omitempty"`
	FiscalYearStart int      `json:"fiscal_year_start_month"`
	Periods         []Period `json:"periods"`
	Total           Period   `json:"total"`
}

// Period is one period with its groups; the groups sum exactly to the period.
type Period struct {
	Label string `json:"label"`
	Start string `json:"start"`
	End   string `json:"end"`
	Measures
	Groups []Group `json:"groups"`
}

// Group is one key of a breakdown.
type Group struct {
	Key string `json:"key"`
	Measures
}

// BuildPeriod aggregates monthly group flows into the periods.
func BuildPeriod(meta Meta, specs []PeriodSpec, fyStart int, by string, rows []ledger.GroupFlows) PeriodReport {
	r := PeriodReport{Meta: meta, By: by, FiscalYearStart: fyStart, Periods: []Period{}}
	total := map[string]*Measures{}
	for _, sp := range specs {
		p := Period{Label: sp.Label, Start: ledger.FormatDate(sp.Start), End: ledger.FormatDate(sp.End), Groups: []Group{}}
		groups := map[string]*Measures{}
		for _, row := range rows {
			if row.Month.Before(sp.Start) || row.Month.After(sp.End) {
				continue
			}
			m := measures(row.Sum.Position)
			p.Measures.add(m)
			if by != "" {
				if groups[row.Key] == nil {
					groups[row.Key] = &Measures{}
				}
				groups[row.Key].add(m)
				if total[row.Key] == nil {
					total[row.Key] = &Measures{}
				}
				total[row.Key].add(m)
			}
		}
		p.Groups = sortedGroups(groups)
		r.Total.Measures.add(p.Measures)
		r.Periods = append(r.Periods, p)
	}
	if len(specs) > 0 {
		r.Total.Label = specs[0].Label
		if len(specs) > 1 {
			r.Total.Label += ".." + specs[len(specs)-1].Label
		}
		r.Total.Start, r.Total.End = ledger.FormatDate(specs[0].Start), ledger.FormatDate(specs[len(specs)-1].End)
	}
	r.Total.Groups = sortedGroups(total)
	return r
}

func sortedGroups(m map[string]*Measures) []Group {
	out := make([]Group, 0, len(m))
	for k, v := range m {
		out = append(out, Group{Key: k, Measures: *v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
