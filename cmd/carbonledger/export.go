package main

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/carbonledger/carbonledger/internal/export"
	"github.com/carbonledger/carbonledger/ledger"
)

func cmdExport(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("export", "export --format hledger|beancount|csv|postings [--from DATE] [--to DATE] [--output FILE]")
	format := formatFlag(fs, "", export.Formats...)
	fromS := fs.String("from", "", "only entries effective on or after this date (YYYY-MM-DD; not with --format csv)")
	toS := fs.String("to", "", "only entries effective on or before this date (YYYY-MM-DD; not with --format csv)")
	output := fs.String("output", "", "write to this file instead of stdout")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("export takes flags only (unexpected %q)", pos[0])
	}
	if *format == "" {
		return usagef("export needs --format: one of %s", strings.Join(export.Formats, ", "))
	}
	if err := checkFormat(*format, export.Formats...); err != nil {
		return err
	}
	var from, to time.Time
	if *fromS != "" {
		if from, err = ledger.ParseDate("--from", *fromS); err != nil {
			return usagef("%v", err)
		}
	}
	if *toS != "" {
		if to, err = ledger.ParseDate("--to", *toS); err != nil {
			return usagef("%v", err)
		}
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return usagef("--to %s is before --from %s", *toS, *fromS)
	}
	if *format == "csv" && (*fromS != "" || *toS != "") {
		return usagef("%v", export.ErrOperationsPeriod)
	}
	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	return a.writeOutput(*output, func(w io.Writer) error {
		return export.Write(ctx, s, w, *format, from, to)
	})
}
