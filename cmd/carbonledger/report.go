package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

func cmdReport(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return usagef("report needs a kind: term, period or portfolio")
	}
	kind := args[0]
	if isHelp(kind) {
		return a.subcommandHelp("report term|period|portfolio [flags]", "report KIND -h")
	}
	if kind != "term" && kind != "period" && kind != "portfolio" {
		return usagef("report: unknown report %q (term, period, portfolio)", kind)
	}
	fs := a.newFlags("report "+kind, "report term|period|portfolio [--format table|csv|json|html] [--as-of DATE] [--known-at TIME] [--output FILE]")
	format := formatFlag(fs, "table", reports.Formats...)
	asOf := fs.String("as-of", "", "count what had effectively happened by this date (YYYY-MM-DD; default today)")
	knownAt := fs.String("known-at", "", "count only what the ledger had recorded by this instant (RFC 3339, or a date for its end)")
	output := fs.String("output", "", "write to this file instead of stdout")
	contract := fs.String("contract", "", "term: only this contract")
	year := fs.String("year", "", "period: the year (YYYY), the fiscal year's end year with --fiscal-year-start")
	years := fs.String("years", "", "period: several years side by side, e.g. 2024..2030")
	fyStart := fs.String("fiscal-year-start", "1", "period: the first month of the fiscal year (1-12; 7 for July)")
	by := fs.String("by", "", "period: group by "+strings.Join(store.GroupKeys, "|"))
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("report %s takes flags only (unexpected %q)", kind, pos[0])
	}
	if err := checkFormat(*format, reports.Formats...); err != nil {
		return err
	}
	q := store.ReportQuery{Contract: *contract}
	today := ledger.Date(a.now().UTC().Date())
	q.AsOf = today
	if *asOf != "" {
		if q.AsOf, err = ledger.ParseDate("--as-of", *asOf); err != nil {
			return usagef("%v", err)
		}
	}
	if *knownAt != "" {
		if q.KnownAt, err = parseInstant(*knownAt); err != nil {
			return usagef("%v", err)
		}
	}
	if kind != "term" && *contract != "" {
		return usagef("--contract applies to the term report only")
	}
	var specs []reports.PeriodSpec
	var fy int
	if kind == "period" {
		if fy, err = strconv.Atoi(*fyStart); err != nil || fy < 1 || fy > 12 {
			return usagef("--fiscal-year-start %q must be a month number from 1 to 12", *fyStart)
		}
		ys, err := parseYears(*year, *years)
		if err != nil {
			return err
		}
		if specs, err = reports.Periods(ys, fy); err != nil {
			return usagef("%v", err)
		}
		if _, err := groupOK(*by); err != nil {
			return err
		}
	} else if *by != "" || *year != "" || *years != "" {
		return usagef("--by, --year and --years apply to the period report only")
	}

	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	meta := reports.NewMeta(q.AsOf, q.KnownAt)
	var r reports.Report
	switch kind {
	case "term", "portfolio":
		q.Inventory = kind == "portfolio"
		cfs, err := s.ContractReport(ctx, q)
		if errors.Is(err, ledger.ErrNotFound) {
			return usagef("%v", err) // an unknown --contract is a mistake in the call: exit 2
		}
		if err != nil {
			return err
		}
		if kind == "term" {
			r = reports.BuildTerm(meta, cfs, q.AsOf)
		} else {
			r = reports.BuildPortfolio(meta, cfs, q.AsOf)
		}
	case "period":
		rows, err := s.PeriodFlows(ctx, q, reports.Bounds(specs), *by)
		if err != nil {
			return err
		}
		r = reports.BuildPeriod(meta, specs, fy, *by, rows)
	}
	return a.writeOutput(*output, func(w io.Writer) error { return reports.Render(w, r, *format) })
}

func groupOK(by string) (string, error) {
	if by == "" {
		return "", nil
	}
	for _, k := range store.GroupKeys {
		if by == k {
			return by, nil
		}
	}
	return "", usagef("--by %q is not one of %s", by, strings.Join(store.GroupKeys, ", "))
}

// parseYears reads --year YYYY or --years A..B (one of them is required).
func parseYears(year, years string) ([]int, error) {
	switch {
	case year != "" && years != "":
		return nil, usagef("give --year or --years, not both")
	case year != "":
		y, err := strconv.Atoi(year)
		if err != nil || len(year) != 4 {
			return nil, usagef("--year %q is not a year (YYYY)", year)
		}
		return []int{y}, nil
	case years != "":
		a, b, ok := strings.Cut(years, "..")
		ya, err1 := strconv.Atoi(a)
		yb, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || len(a) != 4 || len(b) != 4 || yb < ya || yb-ya > 50 {
			return nil, usagef("--years %q is not a range of years such as 2024..2030 (at most 50 years)", years)
		}
		var out []int
		for y := ya; y <= yb; y++ {
			out = append(out, y)
		}
		return out, nil
	}
	return nil, usagef("report period needs --year YYYY or --years YYYY..YYYY")
}

// parseInstant reads an RFC 3339 instant, or a date meaning the end of that day (UTC).
func parseInstant(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return d.Add(24*time.Hour - time.Microsecond), nil
	}
	return time.Time{}, ledger.Invalid("--known-at", s, "is not an instant (RFC 3339 such as 2025-07-01T00:00:00Z, or a date YYYY-MM-DD for the end of that day in UTC)")
}

// writeOutput writes to the file, if one is named, or to stdout. A file is written whole or
// not at all (a temporary file renamed into place).
func (a *app) writeOutput(path string, write func(io.Writer) error) error {
	if path == "" {
		return write(a.stdout)
	}
	f, err := os.CreateTemp(dirOf(path), ".carbonledger-*")
	if err != nil { // (named by the file asked for, not by the temporary one)
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	fmt.Fprintf(a.stderr, "wrote %s\n", path)
	return nil
}

func dirOf(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[:i+1]
	}
	return "."
}
