package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/carbonledger/carbonledger/internal/service"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

// opFlags registers the flags every operation under a contract shares and returns --format.
// The flags only carry field values: the ledger parses and checks them (ledger.ParseOperation),
// as it does an import row's or an HTTP body's.
func (a *app) opFlags(fs *flag.FlagSet, needTonnes bool) (format *string) {
	fs.String("contract", "", "contract code (required)")
	fs.String("date", "", "effective date YYYY-MM-DD (required)")
	fs.String("key", "", "idempotency key: a replay returns the original entry (default: a new random key)")
	format = formatFlag(fs, "table", "table", "json")
	help := "tonnes, a decimal with at most 3 places"
	if needTonnes {
		help += " (required)"
	}
	fs.String("tonnes", "", help)
	fs.IntVar(&a.futureDays, "future-days", 1, "how many days past today an effective date may lie")
	return format
}

// flagFields maps the flags that carry an operation's fields to the ledger's field names.
// The other flags (--db, --format, --future-days, --schedule FILE) belong to the command.
var flagFields = map[string]string{
	"contract": "contract", "tonnes": "tonnes", "date": "date", "key": "key", "vintage": "vintage",
	"serials": "serials", "registry-tx": "registry_tx", "allow-late": "allow_late", "price": "price_per_tonne",
	"note": "note", "beneficiary": "beneficiary", "reason": "reason", "claim": "claim", "remedy": "remedy",
	"terminate": "terminate", "schedule": "schedule",
}

// fieldFlags is flagFields the other way round, to name flags in the ledger's errors.
var fieldFlags = func() map[string]string {
	m := make(map[string]string, len(flagFields))
	for fl, f := range flagFields {
		m[f] = fl
	}
	return m
}()

// runOp parses an operation's command line, has the ledger turn the flags that were given
// into a request, and runs it. positional handles the positional arguments and adds fields
// that do not come from a flag (revert's ENTRY, amend's schedule file); nil refuses any.
func (a *app) runOp(ctx context.Context, fs *flag.FlagSet, args []string, format *string,
	positional func(pos []string, fields map[string]string) error) error {
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	fields := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		if name, ok := flagFields[f.Name]; ok && name != "schedule" {
			fields[name] = f.Value.String()
		}
	})
	if positional != nil {
		err = positional(pos, fields)
	} else if len(pos) > 0 {
		err = usagef("%s takes flags only (unexpected %q)", fs.Name(), pos[0])
	}
	if err != nil {
		return err
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	r, err := ledger.ParseOperation(fs.Name(), fields)
	if err != nil {
		return flagErrors(fs.Name(), err)
	}
	if err := r.Check(a.now(), time.Duration(a.futureDays)*24*time.Hour); err != nil {
		return flagErrors(fs.Name(), err)
	}
	return a.operate(ctx, *format, func(s *store.Store) (store.Result, error) { return s.Submit(ctx, r) })
}

// flagErrors names flags instead of fields in the ledger's errors. A field left out, or a
// value outside an enumerated flag's choices, is a usage error (exit 2), as a flag the flag
// package refuses is.
func flagErrors(cmd string, err error) error {
	var fes ledger.FieldErrors
	var fe *ledger.FieldError
	switch {
	case errors.As(err, &fes):
	case errors.As(err, &fe):
		fes = ledger.FieldErrors{fe}
	default:
		return err
	}
	usage := false
	for _, e := range fes {
		usage = usage || errors.Is(e, ledger.ErrRequired) || e.Field == "remedy"
	}
	fes = fes.Rename(func(field string) string {
		if fl, ok := fieldFlags[field]; ok {
			return "--" + fl
		}
		return field
	})
	if !usage {
		return fes
	}
	msgs := make([]string, len(fes))
	for i, e := range fes {
		msgs[i] = e.Error()
		if errors.Is(e, ledger.ErrRequired) {
			msgs[i] = e.Field + " " + e.Rule // "--date is required (YYYY-MM-DD)"
		}
	}
	return usagef("%s: %s", cmd, strings.Join(msgs, "; "))
}

func cmdDeliver(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("deliver", "deliver --contract CODE --tonnes T --date D [--vintage YYYY] [--serials PREFIX:FIRST-LAST] [--registry-tx ID] [--allow-late] [--key K]")
	format := a.opFlags(fs, true)
	fs.Int("vintage", 0, "vintage year of the credits (default: the schedule's, if any)")
	fs.String("serials", "", "registry serial range PREFIX:FIRST-LAST (both included), or the registry's own form")
	fs.String("registry-tx", "", "the registry's transaction id")
	fs.Bool("allow-late", false, "record a delivery after the term ended (the entry says it was late)")
	fs.String("price", "", "price per tonne of this delivery (default: the schedule's or the contract's)")
	fs.String("note", "", "free-text note")
	return a.runOp(ctx, fs, args, format, nil)
}

func cmdRetire(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("retire", "retire --contract CODE --tonnes T --date D --beneficiary NAME --reason TEXT [--claim PERIOD] [--serials PREFIX:FIRST-LAST] [--registry-tx ID] [--key K]")
	format := a.opFlags(fs, true)
	fs.String("beneficiary", "", "on whose behalf the credits are retired (required)")
	fs.String("reason", "", "why (required)")
	fs.String("claim", "", "the claim period, e.g. 2025 or FY2025")
	fs.String("serials", "", "serial range to retire, PREFIX:FIRST-LAST (required for serialized credits)")
	fs.Int("vintage", 0, "vintage year (default: the delivered block's)")
	fs.String("registry-tx", "", "the registry's id of the retirement (such as Isometric's ret_...), which reconcile matches")
	return a.runOp(ctx, fs, args, format, nil)
}

func cmdCancel(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("cancel", "cancel --contract CODE (--tonnes T | --terminate) --date D --reason TEXT [--key K]")
	format := a.opFlags(fs, false)
	fs.String("reason", "", "why the tonnes will not be delivered (required)")
	fs.Bool("terminate", false, "terminate the contract: cancel all that is open")
	return a.runOp(ctx, fs, args, format, nil)
}

func cmdReverse(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("reverse", "reverse --contract CODE --tonnes T --date D --reason TEXT [--remedy replace|buffer] [--serials R] [--key K]")
	format := a.opFlags(fs, true)
	fs.String("reason", "", "what happened: fire, leakage, ... (required)")
	fs.String("remedy", "replace", "replace (the supplier owes the tonnes again) or buffer (the registry cancels buffer credits)")
	fs.String("serials", "", "the reversed serial range, for remedy replace on serialized credits")
	return a.runOp(ctx, fs, args, format, nil)
}

// maxScheduleFile bounds a schedule file (a 50-year schedule is a few kilobytes).
const maxScheduleFile = 1 << 20

func cmdAmend(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("amend", "amend --contract CODE [--tonnes NEW_TOTAL] [--schedule FILE.json] --date D --reason TEXT [--key K]")
	format := a.opFlags(fs, false)
	fs.String("reason", "", "why the contract changes (required)")
	schedFile := fs.String("schedule", "", "JSON file with the new schedule: [{\"year\":1,\"tonnes\":\"...\"}, ...]")
	return a.runOp(ctx, fs, args, format, func(pos []string, fields map[string]string) error {
		if len(pos) > 0 {
			return usagef("amend takes flags only (unexpected %q)", pos[0])
		}
		if *schedFile == "" {
			return nil
		}
		f, err := os.Open(*schedFile)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxScheduleFile+1))
		switch {
		case err != nil:
			return err
		case len(b) > maxScheduleFile:
			return ledger.Invalid("--schedule", *schedFile, "is larger than 1 MiB")
		case len(bytes.TrimSpace(b)) == 0:
			return ledger.Invalid("--schedule", *schedFile, "is empty; give a JSON list such as [{\"year\":1,\"tonnes\":\"500\"}]")
		}
		fields["schedule"] = string(b) // the file's errors name the schedule's lines, such as schedule[1].tonnes
		return nil
	})
}

func cmdRevert(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("revert", "revert ENTRY --reason TEXT [--date D] [--key K]")
	fs.String("reason", "", "what was wrong with the entry (required)")
	fs.String("date", "", "effective date of the correction (default: the original's)")
	fs.String("key", "", "idempotency key")
	format := formatFlag(fs, "table", "table", "json")
	return a.runOp(ctx, fs, args, format, func(pos []string, fields map[string]string) error {
		if len(pos) != 1 {
			return usagef("revert needs exactly one entry id")
		}
		fields["entry"] = pos[0]
		return nil
	})
}

// operate opens the store, runs one operation and prints its entry.
func (a *app) operate(ctx context.Context, format string, op func(*store.Store) (store.Result, error)) error {
	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := op(s)
	if err != nil {
		return err
	}
	if format == "json" {
		return writeJSON(a.stdout, map[string]any{"entry": service.EntryView(res.Entry), "replay": res.Replay})
	}
	if res.Replay {
		fmt.Fprintf(a.stdout, "already recorded under key %s: ", reports.Inert(res.Entry.Key))
	}
	fmt.Fprintf(a.stdout, "%s\n  entry %s (%s #%d, effective %s)\n", reports.Inert(res.Entry.Description), res.Entry.ID, res.Entry.Book, res.Entry.Seq, ledger.FormatDate(res.Entry.EffectiveOn))
	return nil
}

func cmdJournal(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("journal", "journal CODE [--format table|json]")
	format := formatFlag(fs, "table", "table", "json")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("journal needs exactly one contract (book) code")
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	es, err := s.Entries(ctx, pos[0])
	if err != nil {
		return err
	}
	if len(es) == 0 {
		return &ledger.FieldError{Field: "book", Value: pos[0], Rule: "has no entries (is the code right? see `carbonledger contract list`)", Kind: ledger.ErrNotFound}
	}
	if *format == "json" {
		vs := make([]service.EntryJSON, len(es))
		for i, e := range es {
			vs[i] = service.EntryView(e)
		}
		return writeJSON(a.stdout, map[string]any{"entries": vs})
	}
	return writeJournal(a.stdout, es)
}

func writeJournal(w io.Writer, es []ledger.Entry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range es {
		fmt.Fprintf(tw, "#%d\t%s\t%s\t%s\t%s%s\n", e.Seq, ledger.FormatDate(e.EffectiveOn), e.Kind, e.ID, reports.Inert(e.Description),
			prefixed(" (by ", reports.Inert(e.Metadata[ledger.MetaRecordedBy]))+map[bool]string{true: ")"}[e.Metadata[ledger.MetaRecordedBy] != ""])
		for _, p := range e.Postings {
			fmt.Fprintf(tw, "\t\t\t  %s\t%12s\n", p.Account, p.Amount)
		}
	}
	return tw.Flush()
}

func cmdSerials(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("serials", "serials [CODE] [--format table|json]")
	format := formatFlag(fs, "table", "table", "json")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("serials takes at most one contract code")
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	code := ""
	if len(pos) == 1 {
		code = pos[0]
	}
	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	bs, err := s.SerialBlocks(ctx, code)
	if err != nil {
		return err
	}
	if *format == "json" {
		return writeJSON(a.stdout, map[string]any{"blocks": bs})
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	// SERIALS as the registry writes them; RANGE in the generic form, series and numbers as the
	// ledger compares them.
	fmt.Fprintln(tw, "CONTRACT\tREGISTRY\tSERIALS\tRANGE\tTONNES\tSTATE\tENTRY")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Contract, b.Registry, reports.Inert(b.Label), ledger.FormatSerials(b.Prefix, b.First, b.Last), b.Tonnes, b.State, b.Entry)
	}
	return tw.Flush()
}
