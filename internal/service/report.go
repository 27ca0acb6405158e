package service

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

// ReportKinds are the reports a front end may ask for.
var ReportKinds = []string{"term", "period", "portfolio"}

// ReportFields are the parameters of a report, named as the CLI's flags in snake_case: the
// CLI's --as-of is as_of here and in the API's query string.
var ReportFields = []string{"as_of", "known_at", "contract", "year", "years", "fiscal_year_start", "by"}

// ReportParams is a report asked for, checked: what BuildReport needs.
type ReportParams struct {
	Kind            string
	Query           store.ReportQuery
	Periods         []reports.PeriodSpec // period only
	FiscalYearStart int                  // period only
	By              string               // period only
}

// ParseReport checks a report's kind and parameters (ReportFields; an empty value is a
// parameter left out) against today's date, the default as-of date. An unknown kind or
// parameter, a malformed value or a parameter of another report is an ErrInvalid
// FieldError naming the parameter.
func ParseReport(kind string, fields map[string]string, today time.Time) (ReportParams, error) {
	p := ReportParams{Kind: kind, Query: store.ReportQuery{AsOf: today, Contract: fields["contract"]}}
	if !contains(ReportKinds, kind) {
		return p, ledger.Invalid("report", kind, "is not a report ("+strings.Join(ReportKinds, ", ")+")")
	}
	for name := range fields {
		if !contains(ReportFields, name) {
			return p, ledger.Invalid(name, "", "is not a report parameter ("+strings.Join(ReportFields, ", ")+")")
		}
	}
	var err error
	if v := fields["as_of"]; v != "" {
		if p.Query.AsOf, err = ledger.ParseDate("as_of", v); err != nil {
			return p, err
		}
	}
	if v := fields["known_at"]; v != "" {
		if p.Query.KnownAt, err = ParseInstant("known_at", v); err != nil {
			return p, err
		}
	}
	if kind != "term" && fields["contract"] != "" {
		return p, ledger.Invalid("contract", fields["contract"], "applies to the term report only")
	}
	if kind != "period" {
		for _, f := range []string{"by", "year", "years", "fiscal_year_start"} {
			if fields[f] != "" {
				return p, ledger.Invalid(f, fields[f], "applies to the period report only")
			}
		}
		return p, nil
	}
	p.FiscalYearStart = 1
	if v := fields["fiscal_year_start"]; v != "" {
		if p.FiscalYearStart, err = strconv.Atoi(v); err != nil || p.FiscalYearStart < 1 || p.FiscalYearStart > 12 {
			return p, ledger.Invalid("fiscal_year_start", v, "must be a month number from 1 to 12 (7 for July)")
		}
	}
	ys, err := parseYears(fields["year"], fields["years"])
	if err != nil {
		return p, err
	}
	if p.Periods, err = reports.Periods(ys, p.FiscalYearStart); err != nil {
		return p, ledger.Invalid("years", fields["years"]+fields["year"], err.Error())
	}
	if p.By = fields["by"]; p.By != "" && !contains(store.GroupKeys, p.By) {
		return p, ledger.Invalid("by", p.By, "is not one of "+strings.Join(store.GroupKeys, ", "))
	}
	return p, nil
}

// parseYears reads year (YYYY) or years (A..B); one of them is required.
func parseYears(year, years string) ([]int, error) {
	switch {
	case year != "" && years != "":
		return nil, ledger.Invalid("years", years, "goes without year; give one of them")
	case year != "":
		y, err := strconv.Atoi(year)
		if err != nil || len(year) != 4 {
			return nil, ledger.Invalid("year", year, "is not a year (YYYY)")
		}
		return []int{y}, nil
	case years != "":
		a, b, ok := strings.Cut(years, "..")
		ya, err1 := strconv.Atoi(a)
		yb, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || len(a) != 4 || len(b) != 4 || yb < ya || yb-ya > 50 {
			return nil, ledger.Invalid("years", years, "is not a range of years such as 2024..2030 (at most 50 years)")
		}
		var out []int
		for y := ya; y <= yb; y++ {
			out = append(out, y)
		}
		return out, nil
	}
	return nil, ledger.Required("year", "is required for the period report (YYYY), or years (YYYY..YYYY)")
}

// ParseInstant reads an RFC 3339 instant, or a date meaning the end of that day (UTC).
func ParseInstant(field, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		if y := t.UTC().Year(); y < 0 || y > 9999 { // RFC 3339 cannot write it back in UTC
			return time.Time{}, ledger.Invalid(field, s, "is outside the years 0000 to 9999 in UTC")
		}
		return t.UTC(), nil
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return d.Add(24*time.Hour - time.Microsecond), nil
	}
	return time.Time{}, ledger.Invalid(field, s, "is not an instant (RFC 3339 such as 2025-07-01T00:00:00Z, or a date YYYY-MM-DD for the end of that day in UTC)")
}

// BuildReport reads and builds the report p asks for. An unknown contract is an
// ErrNotFound error.
func BuildReport(ctx context.Context, s *store.Store, p ReportParams) (reports.Report, error) {
	meta := reports.NewMeta(p.Query.AsOf, p.Query.KnownAt)
	switch p.Kind {
	case "term", "portfolio":
		q := p.Query
		q.Inventory = p.Kind == "portfolio"
		cfs, err := s.ContractReport(ctx, q)
		if err != nil {
			return nil, err
		}
		if p.Kind == "term" {
			return reports.BuildTerm(meta, cfs, q.AsOf), nil
		}
		return reports.BuildPortfolio(meta, cfs, q.AsOf), nil
	case "period":
		rows, err := s.PeriodFlows(ctx, p.Query, reports.Bounds(p.Periods), p.By)
		if err != nil {
			return nil, err
		}
		return reports.BuildPeriod(meta, p.Periods, p.FiscalYearStart, p.By, rows), nil
	}
	return nil, ledger.Invalid("report", p.Kind, "is not a report ("+strings.Join(ReportKinds, ", ")+")")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
