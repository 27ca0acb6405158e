package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/shopspring/decimal"
)

// opFlags are the flags every operation under a contract shares.
type opFlags struct {
	contract, tonnes, date, key, format *string
}

func (a *app) opFlags(fs *flag.FlagSet, needTonnes bool) opFlags {
	o := opFlags{
		contract: fs.String("contract", "", "contract code (required)"),
		date:     fs.String("date", "", "effective date YYYY-MM-DD (required)"),
		key:      fs.String("key", "", "idempotency key: a replay returns the original entry (default: a new random key)"),
		format:   formatFlag(fs, "table", "table", "json"),
	}
	help := "tonnes, a decimal with at most 3 places"
	if needTonnes {
		help += " (required)"
	}
	o.tonnes = fs.String("tonnes", "", help)
	fs.IntVar(&a.futureDays, "future-days", 1, "how many days past today an effective date may lie")
	return o
}

// parsed are the shared values after checking.
type parsed struct {
	contract string
	tonnes   ledger.Tonnes
	date     time.Time
	key      string
}

func (o opFlags) check(fs *flag.FlagSet, args []string, needTonnes bool) (parsed, error) {
	var p parsed
	pos, err := parse(fs, args)
	if err != nil {
		return p, err
	}
	if len(pos) > 0 {
		return p, usagef("%s takes flags only (unexpected %q)", fs.Name(), pos[0])
	}
	if *o.contract == "" {
		return p, usagef("%s: --contract is required", fs.Name())
	}
	if *o.date == "" {
		return p, usagef("%s: --date is required (YYYY-MM-DD)", fs.Name())
	}
	if needTonnes && *o.tonnes == "" {
		return p, usagef("%s: --tonnes is required", fs.Name())
	}
	if err := checkFormat(*o.format, "table", "json"); err != nil {
		return p, err
	}
	p.contract, p.key = *o.contract, *o.key
	if p.date, err = ledger.ParseDate("--date", *o.date); err != nil {
		return p, err
	}
	if *o.tonnes != "" {
		if p.tonnes, err = ledger.ParsePositiveTonnes(*o.tonnes); err != nil {
			return p, ledger.Relabel(err, "--tonnes")
		}
	}
	return p, nil
}

func parseSerialsFlag(s string) (*ledger.SerialRange, error) {
	if s == "" {
		return nil, nil
	}
	r, err := ledger.ParseSerials(s)
	if err != nil {
		return nil, ledger.Relabel(err, "--serials")
	}
	return &r, nil
}

func cmdDeliver(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("deliver", "deliver --contract CODE --tonnes T --date D [--vintage YYYY] [--serials PREFIX:FIRST-LAST] [--registry-tx ID] [--allow-late] [--key K]")
	o := a.opFlags(fs, true)
	vintage := fs.Int("vintage", 0, "vintage year of the credits (default: the schedule's, if any)")
	serials := fs.String("serials", "", "registry serial range PREFIX:FIRST-LAST (both included), or the registry's own form")
	regTx := fs.String("registry-tx", "", "the registry's transaction id")
	late := fs.Bool("allow-late", false, "record a delivery after the term ended (the entry says it was late)")
	price := fs.String("price", "", "price per tonne of this delivery (default: the schedule's or the contract's)")
	note := fs.String("note", "", "free-text note")
	p, err := o.check(fs, args, true)
	if err != nil {
		return err
	}
	r := ledger.DeliverRequest{Contract: p.contract, Tonnes: p.tonnes, Date: p.date, Vintage: *vintage, RegistryTx: *regTx,
		AllowLate: *late, Note: *note, Key: p.key}
	if r.Serials, err = parseSerialsFlag(*serials); err != nil {
		return err
	}
	if *price != "" {
		d, err := decimal.NewFromString(*price)
		if err != nil || d.IsNegative() {
			return ledger.Invalid("--price", *price, "is not a non-negative decimal")
		}
		r.PricePerTonne = &d
	}
	return a.operate(ctx, *o.format, func(s *store.Store) (store.Result, error) { return s.Deliver(ctx, r) })
}

func cmdRetire(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("retire", "retire --contract CODE --tonnes T --date D --beneficiary NAME --reason TEXT [--claim PERIOD] [--serials PREFIX:FIRST-LAST] [--key K]")
	o := a.opFlags(fs, true)
	beneficiary := fs.String("beneficiary", "", "on whose behalf the credits are retired (required)")
	reason := fs.String("reason", "", "why (required)")
	claim := fs.String("claim", "", "the claim period, e.g. 2025 or FY2025")
	serials := fs.String("serials", "", "serial range to retire, PREFIX:FIRST-LAST (required for serialized credits)")
	vintage := fs.Int("vintage", 0, "vintage year (default: the delivered block's)")
	p, err := o.check(fs, args, true)
	if err != nil {
		return err
	}
	if *beneficiary == "" || *reason == "" {
		return usagef("retire: --beneficiary and --reason are required")
	}
	r := ledger.RetireRequest{Contract: p.contract, Tonnes: p.tonnes, Date: p.date, Beneficiary: *beneficiary, Reason: *reason,
		Claim: *claim, Vintage: *vintage, Key: p.key}
	if r.Serials, err = parseSerialsFlag(*serials); err != nil {
		return err
	}
	return a.operate(ctx, *o.format, func(s *store.Store) (store.Result, error) { return s.Retire(ctx, r) })
}

func cmdCancel(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("cancel", "cancel --contract CODE (--tonnes T | --terminate) --date D --reason TEXT [--key K]")
	o := a.opFlags(fs, false)
	reason := fs.String("reason", "", "why the tonnes will not be delivered (required)")
	terminate := fs.Bool("terminate", false, "terminate the contract: cancel all that is open")
	p, err := o.check(fs, args, false)
	if err != nil {
		return err
	}
	if *reason == "" {
		return usagef("cancel: --reason is required")
	}
	if !*terminate && p.tonnes.IsZero() {
		return usagef("cancel: --tonnes is required (or --terminate to cancel all that is open)")
	}
	r := ledger.CancelRequest{Contract: p.contract, Tonnes: p.tonnes, Date: p.date, Reason: *reason, Terminate: *terminate, Key: p.key}
	return a.operate(ctx, *o.format, func(s *store.Store) (store.Result, error) { return s.Cancel(ctx, r) })
}

func cmdReverse(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("reverse", "reverse --contract CODE --tonnes T --date D --reason TEXT [--remedy replace|buffer] [--serials R] [--key K]")
	o := a.opFlags(fs, true)
	reason := fs.String("reason", "", "what happened: fire, leakage, ... (required)")
	remedy := fs.String("remedy", "replace", "replace (the supplier owes the tonnes again) or buffer (the registry cancels buffer credits)")
	serials := fs.String("serials", "", "the reversed serial range, for remedy replace on serialized credits")
	p, err := o.check(fs, args, true)
	if err != nil {
		return err
	}
	if *reason == "" {
		return usagef("reverse: --reason is required")
	}
	if *remedy != "replace" && *remedy != "buffer" {
		return usagef("reverse: --remedy must be replace or buffer, not %q", *remedy)
	}
	r := ledger.ReverseRequest{Contract: p.contract, Tonnes: p.tonnes, Date: p.date, Reason: *reason, Remedy: ledger.Remedy(*remedy), Key: p.key}
	if r.Serials, err = parseSerialsFlag(*serials); err != nil {
		return err
	}
	return a.operate(ctx, *o.format, func(s *store.Store) (store.Result, error) { return s.Reverse(ctx, r) })
}

func cmdAmend(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("amend", "amend --contract CODE [--tonnes NEW_TOTAL] [--schedule FILE.json] --date D --reason TEXT [--key K]")
	o := a.opFlags(fs, false)
	reason := fs.String("reason", "", "why the contract changes (required)")
	schedFile := fs.String("schedule", "", "JSON file with the new schedule: [{\"year\":1,\"tonnes\":\"...\"}, ...]")
	p, err := o.check(fs, args, false)
	if err != nil {
		return err
	}
	if *reason == "" {
		return usagef("amend: --reason is required")
	}
	if p.tonnes.IsZero() && *schedFile == "" {
		return usagef("amend: give --tonnes (the new contracted total), --schedule FILE.json, or both")
	}
	r := ledger.AmendRequest{Contract: p.contract, Date: p.date, Reason: *reason, Key: p.key}
	if !p.tonnes.IsZero() {
		t := p.tonnes
		r.Tonnes = &t
	}
	if *schedFile != "" {
		f, err := os.Open(*schedFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if r.Schedule, err = ledger.ParseScheduleJSON(f); err != nil {
			return err
		}
	}
	return a.operate(ctx, *o.format, func(s *store.Store) (store.Result, error) { return s.Amend(ctx, r) })
}

func cmdRevert(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("revert", "revert ENTRY --reason TEXT [--date D] [--key K]")
	reason := fs.String("reason", "", "what was wrong with the entry (required)")
	date := fs.String("date", "", "effective date of the correction (default: the original's)")
	key := fs.String("key", "", "idempotency key")
	format := formatFlag(fs, "table", "table", "json")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("revert needs exactly one entry id")
	}
	if *reason == "" {
		return usagef("revert: --reason is required")
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	r := ledger.RevertRequest{Entry: pos[0], Reason: *reason, Key: *key}
	if *date != "" {
		if r.Date, err = ledger.ParseDate("--date", *date); err != nil {
			return err
		}
	}
	return a.operate(ctx, *format, func(s *store.Store) (store.Result, error) { return s.Revert(ctx, r) })
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
		return writeJSON(a.stdout, map[string]any{"entry": entryView(res.Entry), "replay": res.Replay})
	}
	if res.Replay {
		fmt.Fprintf(a.stdout, "already recorded under key %s: ", res.Entry.Key)
	}
	fmt.Fprintf(a.stdout, "%s\n  entry %s (%s #%d, effective %s)\n", res.Entry.Description, res.Entry.ID, res.Entry.Book, res.Entry.Seq, ledger.FormatDate(res.Entry.EffectiveOn))
	return nil
}

// entryJSON is the stable JSON form of a journal entry.
type entryJSON struct {
	ID          string            `json:"id"`
	Book        string            `json:"book"`
	Seq         int64             `json:"seq"`
	Kind        ledger.Kind       `json:"kind"`
	EffectiveOn string            `json:"effective_on"`
	RecordedAt  string            `json:"recorded_at"`
	Key         string            `json:"idempotency_key"`
	Description string            `json:"description"`
	Reverts     string            `json:"reverts,omitempty"`
	Vintage     int               `json:"vintage,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Postings    []ledger.Posting  `json:"postings"`
	HashVersion int               `json:"hash_version"`
	PrevHash    string            `json:"prev_hash"`
	Hash        string            `json:"hash"`
}

func entryView(e ledger.Entry) entryJSON {
	return entryJSON{ID: e.ID, Book: e.Book, Seq: e.Seq, Kind: e.Kind, EffectiveOn: ledger.FormatDate(e.EffectiveOn),
		RecordedAt: e.RecordedAt.UTC().Format("2006-01-02T15:04:05.000000Z"), Key: e.Key, Description: e.Description,
		Reverts: e.Reverts, Vintage: e.Vintage, Metadata: e.Metadata, Postings: e.Postings, HashVersion: e.HashVersion,
		PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)}
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
		vs := make([]entryJSON, len(es))
		for i, e := range es {
			vs[i] = entryView(e)
		}
		return writeJSON(a.stdout, map[string]any{"entries": vs})
	}
	return writeJournal(a.stdout, es)
}

func writeJournal(w io.Writer, es []ledger.Entry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range es {
		fmt.Fprintf(tw, "#%d\t%s\t%s\t%s\t%s\n", e.Seq, ledger.FormatDate(e.EffectiveOn), e.Kind, e.ID, e.Description)
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
	fmt.Fprintln(tw, "CONTRACT\tREGISTRY\tSERIALS\tTONNES\tSTATE\tENTRY")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\t%s:%d-%d\t%s\t%s\t%s\n", b.Contract, b.Registry, b.Prefix, b.First, b.Last, b.Tonnes, b.State, b.Entry)
	}
	return tw.Flush()
}
