// Package export writes the journal in formats that tools the project did not write can
// check: an hledger journal, a beancount ledger, and CSV with one row per posting
// (format postings); and the operations CSV (format csv), one row per contract signing and
// per operation, which `carbonledger import` reads back into another ledger.
//
// Every writer is a store.JournalVisitor fed by one journal walk (one snapshot), and streams:
// memory is bounded by the accounts of the ledger (for the operations CSV, by one contract's
// schedule versions and corrections), never by the number of entries. The hledger and
// beancount files declare every account and the commodity, so that `hledger check -s` and
// `bean-check` accept them; the beancount file ends each book with a balance assertion per
// account, so bean-check itself proves the totals.
//
// Both CSV files neutralise text a spreadsheet would evaluate as a formula with a leading
// apostrophe (reports.Neutralize); the operations CSV still carries every text exactly,
// because the import removes that apostrophe again (reports.Unneutralize).
// hledger and beancount have their own syntax: the beancount file escapes its strings and
// loses nothing; the hledger file must keep a description on one line without ';' (which
// starts a comment there) and a tag value without ',' (which ends it), so it replaces line
// breaks and control characters by spaces, ';' in a description by ',' and ',' in a tag
// value by ';'.
package export

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// Formats lists the export formats.
var Formats = []string{"hledger", "beancount", "csv", "postings"}

// Writer is an export in progress: feed it a journal walk, then Close it to write what
// follows the last book and flush.
type Writer interface {
	store.JournalVisitor
	Close() error
}

// New returns a writer of format on w that exports the entries effective from from to to,
// both inclusive; a zero time leaves that end open. The operations CSV (csv) is always the
// whole ledger (a period is ErrOperationsPeriod), and reads each contract's terms from the
// store: write it with Write.
func New(w io.Writer, format string, from, to time.Time) (Writer, error) {
	p := period{from: from, to: to}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return nil, ledger.Invalid("to", ledger.FormatDate(to), "is before the start of the period "+ledger.FormatDate(from))
	}
	switch format {
	case "hledger":
		return newHledger(w, p), nil
	case "beancount":
		return newBeancount(w, p), nil
	case "csv":
		if p.set() {
			return nil, ErrOperationsPeriod
		}
		return newOperations(w), nil
	case "postings":
		return newCSV(w, p), nil
	}
	return nil, ledger.Invalid("format", format, "is not an export format ("+strings.Join(Formats, ", ")+")")
}

// Write exports the whole journal (or the period from..to) of s to w in format.
func Write(ctx context.Context, s *store.Store, w io.Writer, format string, from, to time.Time) error {
	x, err := New(w, format, from, to)
	if err != nil {
		return err
	}
	if o, ok := x.(*opsExport); ok {
		o.useStore(ctx, s)
	}
	if err := s.WalkJournal(ctx, nil, x); err != nil {
		return err
	}
	return x.Close()
}

// period is the range of effective dates exported; zero ends are open.
type period struct{ from, to time.Time }

func (p period) has(d time.Time) bool {
	return (p.from.IsZero() || !d.Before(p.from)) && (p.to.IsZero() || !d.After(p.to))
}

func (p period) set() bool { return !p.from.IsZero() || !p.to.IsZero() }

// String describes the period for a file's header comment.
func (p period) String() string {
	if !p.set() {
		return "all entries"
	}
	from, to := "the first entry", "the last entry"
	if !p.from.IsZero() {
		from = ledger.FormatDate(p.from)
	}
	if !p.to.IsZero() {
		to = ledger.FormatDate(p.to)
	}
	return "entries effective from " + from + " to " + to + ", both inclusive"
}

// out is a buffered writer that keeps its first error, so that a writer can print freely and
// check once per visitor call.
type out struct {
	b   *bufio.Writer
	err error
}

func newOut(w io.Writer) *out { return &out{b: bufio.NewWriterSize(w, 64<<10)} }

func (o *out) printf(format string, args ...any) {
	if o.err == nil {
		_, o.err = fmt.Fprintf(o.b, format, args...)
	}
}

func (o *out) flush() error {
	if o.err == nil {
		o.err = o.b.Flush()
	}
	return o.err
}

// tag is one piece of an entry's metadata as exported: the entry's own fields first, then
// its metadata.
type tag struct{ key, value string }

// reserved are the tag names the export gives the entry's own fields, and those beancount
// sets itself (filename, lineno). A metadata key among them is exported as "meta-KEY": a
// metadata key never holds '-', so the renamed key cannot meet a real one.
var reserved = map[string]bool{
	"entry": true, "book": true, "seq": true, "kind": true, "key": true, "recorded": true,
	"reverts": true, "vintage": true, "hash": true, "filename": true, "lineno": true,
}

// tags lists an entry's fields and metadata (sorted by key) in a fixed order.
func tags(e *ledger.Entry) []tag {
	ts := []tag{
		{"entry", e.ID}, {"book", e.Book}, {"seq", strconv.FormatInt(e.Seq, 10)}, {"kind", string(e.Kind)},
		{"key", e.Key}, {"recorded", recorded(e.RecordedAt)},
	}
	if e.Reverts != "" {
		ts = append(ts, tag{"reverts", e.Reverts})
	}
	if e.Vintage != 0 {
		ts = append(ts, tag{"vintage", strconv.Itoa(e.Vintage)})
	}
	if len(e.Hash) > 0 {
		ts = append(ts, tag{"hash", hex.EncodeToString(e.Hash)})
	}
	keys := make([]string, 0, len(e.Metadata))
	for k := range e.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		name := k
		if reserved[k] {
			name = "meta-" + k
		}
		ts = append(ts, tag{name, e.Metadata[k]})
	}
	return ts
}

// recorded formats the instant an entry was recorded, as the hash's canonical form does.
func recorded(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// oneLine replaces line breaks and other control characters by spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

// checkAccount refuses an account code the formats with account names cannot carry; the
// ledger only ever creates valid ones, so this fires only on a damaged database.
func checkAccount(code string) error {
	if err := ledger.ValidateAccountCode(code); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
