package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/carbonledger/carbonledger/internal/service"
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
	fs.String("as-of", "", "count what had effectively happened by this date (YYYY-MM-DD; default today)")
	fs.String("known-at", "", "count only what the ledger had recorded by this instant (RFC 3339, or a date for its end)")
	output := fs.String("output", "", "write to this file instead of stdout")
	fs.String("contract", "", "term: only this contract")
	fs.String("year", "", "period: the year (YYYY), the fiscal year's end year with --fiscal-year-start")
	fs.String("years", "", "period: several years side by side, e.g. 2024..2030")
	fs.String("fiscal-year-start", "1", "period: the first month of the fiscal year (1-12; 7 for July)")
	fs.String("by", "", "period: group by "+strings.Join(store.GroupKeys, "|"))
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
	// The flags carry the report's parameters; service.ParseReport checks them, as it does
	// the API's query string. A mistake in them is a mistake in the call: exit 2.
	fields := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		if name := strings.ReplaceAll(f.Name, "-", "_"); slices.Contains(service.ReportFields, name) {
			fields[name] = f.Value.String()
		}
	})
	p, err := service.ParseReport(kind, fields, ledger.Date(a.now().UTC().Date()))
	if err != nil {
		return usagef("%v", flagNamed(err))
	}
	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := service.BuildReport(ctx, s, p)
	if errors.Is(err, ledger.ErrNotFound) {
		return usagef("%v", flagNamed(err)) // an unknown --contract is a mistake in the call: exit 2
	}
	if err != nil {
		return err
	}
	return a.writeOutput(*output, func(w io.Writer) error { return reports.Render(w, r, *format) })
}

// flagNamed names the flag (--as-of) instead of the field (as_of) in a FieldError.
func flagNamed(err error) error {
	var fe *ledger.FieldError
	if errors.As(err, &fe) {
		return ledger.Relabel(err, "--"+strings.ReplaceAll(fe.Field, "_", "-"))
	}
	return err
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
