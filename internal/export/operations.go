package export

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/carbonledger/carbonledger/internal/bulk"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

// OperationColumns are the columns of the operations CSV (export --format csv): the import
// format's, in its order.
var OperationColumns = bulk.OperationColumns

// OpContract is the op of a row that signs a contract: its terms (the contract file's JSON)
// and the sign entry's key. The other ops are ledger.Ops.
const OpContract = bulk.OpContract

// ErrOperationsPeriod is the refusal of a period for the operations CSV: an import replays
// each contract from its signing, so a part of the history cannot be read back.
var ErrOperationsPeriod error = periodError{}

type periodError struct{}

func (periodError) Error() string {
	return "csv export is the whole ledger (import reads it back); use --format postings for a period"
}

func (periodError) Unwrap() error { return ledger.ErrInvalid }

// opsExport writes the operations CSV: for every contract book, in chain order, one row per
// journal entry, as the operation that wrote it (the signing, then deliveries, retirements,
// cancellations, reversals, amendments and corrections). Importing the file into an empty
// ledger replays the operations, and so rebuilds the same contracts, positions and reports;
// ids and recording times are the new ledger's own, and corrections name the entry they
// revert by its idempotency key (key:KEY), which the file carries.
//
// The file is RFC 4180 CSV that is safe to open in a spreadsheet and still carries every text
// exactly: a text cell a spreadsheet would evaluate as a formula (a leading =, +, -, @, tab or
// carriage return), or one that starts with an apostrophe before such a character, is written
// with a leading apostrophe (reports.Neutralize), which the import removes again
// (reports.Unneutralize), so the value read back is the value the ledger holds. Figures are
// never prefixed. A "\r\n" inside a text is written as it is, and the import reads it back
// as "\r\n" (encoding/csv alone would read "\n").
//
// An entry of a book that is not a contract's (a plain journal book's open and transfer
// entries) is no operation: the export refuses it, naming the book; the postings export
// carries such books.
type opsExport struct {
	w       *csv.Writer
	ctx     context.Context
	src     *store.Store
	started bool
	err     error
	book    opsBook
}

// opsBook is what the export knows of the book being written beyond its entries.
type opsBook struct {
	code     string
	contract bool
	terms    string
	kinds    map[string]ledger.AccountKind    // the book's accounts' kinds, by code
	versions map[string]store.ScheduleVersion // the schedule versions, by the entry that put them in force
	reverted map[string]string                // the keys of reverted entries, by id
	labels   map[string]string                // the serials as their requests wrote them, by entry id
}

func newOperations(w io.Writer) *opsExport { return &opsExport{w: csv.NewWriter(w)} }

// useStore gives the export the store it reads each contract's terms, schedules and reverted
// keys from (Write does).
func (x *opsExport) useStore(ctx context.Context, s *store.Store) { x.ctx, x.src = ctx, s }

func (x *opsExport) start() error {
	if !x.started {
		x.started = true
		x.err = x.w.Write(OperationColumns)
	}
	return x.err
}

func (x *opsExport) Book(b store.BookInfo) error {
	if err := x.start(); err != nil {
		return err
	}
	x.book = opsBook{code: b.Code}
	if x.src == nil {
		return errors.New("export: the operations CSV reads each contract's terms from the store; write it with export.Write")
	}
	terms, err := x.src.ContractTerms(x.ctx, b.Code)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil // a plain journal book: refused at its first entry
	}
	if err != nil {
		return err
	}
	versions, err := x.src.ScheduleVersions(x.ctx, b.Code)
	if err != nil {
		return err
	}
	reverted, err := x.src.RevertedKeys(x.ctx, b.Code)
	if err != nil {
		return err
	}
	labels, err := x.src.SerialLabels(x.ctx, b.Code)
	if err != nil {
		return err
	}
	bk := opsBook{code: b.Code, contract: true, kinds: make(map[string]ledger.AccountKind, len(b.Accounts)),
		versions: make(map[string]store.ScheduleVersion, len(versions)), reverted: reverted, labels: labels}
	for _, a := range b.Accounts {
		bk.kinds[a.Code] = ledger.AccountKind(a.Kind)
	}
	signExplicit := false
	for _, v := range versions {
		bk.versions[v.EntryID] = v
		if v.Version == 1 {
			signExplicit = v.Explicit
		}
	}
	if bk.terms, err = importTerms(terms, signExplicit); err != nil {
		return fmt.Errorf("export: contract %s: terms: %w", b.Code, err)
	}
	x.book = bk
	return nil
}

// importTerms returns the terms as stored, compact, in the order stored. The terms always
// hold the schedule; when the contract was signed without one (the even split of its tonnes),
// the schedule is left out, so that the import signs it the same way: a contract file with a
// schedule has an explicit one, which an amendment must then restate. The even split is
// computed from the other terms, so both forms are the same terms (and the same digest).
func importTerms(raw json.RawMessage, scheduleExplicit bool) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", fmt.Errorf("not a JSON object")
	}
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return "", err
		}
		if name == "schedule" && !scheduleExplicit {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(name); err != nil {
			return "", err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
		b.WriteByte(':')
		if err := json.Compact(&b, v); err != nil {
			return "", err
		}
	}
	if _, err := dec.Token(); err != nil {
		return "", err
	}
	b.WriteByte('}')
	return b.String(), nil
}

func (x *opsExport) Entry(e ledger.Entry) error {
	bk := &x.book
	if !bk.contract {
		return fmt.Errorf("export: book %s is not a contract; export --format postings carries it", e.Book)
	}
	md := e.Metadata
	row := map[string]string{"op": string(e.Kind), "contract": bk.code, "key": e.Key}
	// The serials as the request wrote them (the registry's own form) when recorded and the same
	// range as the entry's metadata (the generic form), else the metadata's.
	serials := md["serials"]
	if l, ok := bk.labels[e.ID]; ok && serials != "" {
		if r, err := ledger.ParseSerials(l); err == nil && r.String() == serials {
			serials = l
		}
	}
	if e.Kind != ledger.KindSign {
		row["date"] = ledger.FormatDate(e.EffectiveOn)
	}
	moved := func(kinds ...ledger.AccountKind) error {
		t, err := bk.moved(e, kinds...)
		row["tonnes"] = t
		return err
	}
	vintage := func() {
		if e.Vintage != 0 {
			row["vintage"] = strconv.Itoa(e.Vintage)
		}
	}
	switch e.Kind {
	case ledger.KindSign:
		row["op"], row["terms"] = OpContract, bk.terms
	case ledger.KindDeliver:
		if err := moved(ledger.AccHolding, ledger.AccRetired); err != nil {
			return err
		}
		vintage()
		row["serials"], row["registry_tx"], row["price_per_tonne"], row["note"] = serials, md["registry_tx"], md["price_per_tonne"], md["note"]
		if md["late"] == "true" {
			row["allow_late"] = "true"
		}
	case ledger.KindRetire:
		if err := moved(ledger.AccRetired); err != nil {
			return err
		}
		vintage()
		row["beneficiary"], row["reason"], row["claim"], row["serials"] = md["beneficiary"], md["reason"], md["claim"], serials
		row["registry_tx"] = md["registry_tx"]
	case ledger.KindCancel:
		row["reason"] = md["reason"]
		if md["terminate"] == "true" {
			row["terminate"] = "true" // the tonnes are all that is open, which the import finds itself
		} else if err := moved(ledger.AccCancelled); err != nil {
			return err
		}
	case ledger.KindReverse:
		if err := moved(ledger.AccReversed, ledger.AccBufferCancelled); err != nil {
			return err
		}
		row["reason"], row["remedy"], row["serials"] = md["reason"], md["remedy"], serials
	case ledger.KindAmend:
		row["reason"] = md["reason"]
		before, err1 := ledger.ParseTonnes(md["tonnes_before"])
		after, err2 := ledger.ParseTonnes(md["tonnes_after"])
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("export: amendment %s of %s: tonnes before and after: %w", e.ID, bk.code, err)
		}
		if !after.Equal(before) {
			row["tonnes"] = after.String()
		}
		v, ok := bk.versions[e.ID]
		if !ok {
			return fmt.Errorf("export: amendment %s of %s put no schedule in force", e.ID, bk.code)
		}
		if v.Explicit {
			// The amend operation's own JSON form of a schedule.
			row["schedule"] = ledger.AmendRequest{Schedule: v.Lines}.Fields()["schedule"]
		}
	case ledger.KindRevert:
		key, ok := bk.reverted[e.Reverts]
		if !ok {
			return fmt.Errorf("export: correction %s of %s reverts entry %s, whose key was not found", e.ID, bk.code, e.Reverts)
		}
		row["contract"] = "" // a revert names its entry, which names the contract
		row["entry"], row["reason"] = ledger.EntryKeyPrefix+key, md["reason"]
	default:
		return fmt.Errorf("export: entry %s of contract %s is of kind %s, which no operation writes", e.ID, bk.code, e.Kind)
	}
	rec := make([]string, len(OperationColumns))
	for i, c := range OperationColumns {
		rec[i] = row[c]
		if !numericColumns[c] {
			rec[i] = reports.Neutralize(rec[i])
		}
	}
	return x.w.Write(rec)
}

// moved returns the tonnes e moved into the accounts of the given kinds: the operation's
// tonnes (a delivery into the holding, or into retired for a contract that retires on
// delivery; a reversal into reversed, or into buffer-cancelled for remedy buffer).
func (bk *opsBook) moved(e ledger.Entry, kinds ...ledger.AccountKind) (string, error) {
	t := ledger.Zero
	for _, p := range e.Postings {
		for _, k := range kinds {
			if bk.kinds[p.Account] == k && p.Amount.IsPositive() {
				t = t.Add(p.Amount)
			}
		}
	}
	if !t.IsPositive() {
		return "", fmt.Errorf("export: %s entry %s of %s moves nothing into its %v account", e.Kind, e.ID, bk.code, kinds)
	}
	return t.String(), nil
}

// numericColumns hold figures the export writes itself (never negative here); every other
// cell is text, neutralised for a spreadsheet.
var numericColumns = map[string]bool{"tonnes": true, "price_per_tonne": true, "vintage": true}

func (x *opsExport) EndBook(store.BookInfo) error { return nil }

func (x *opsExport) Close() error {
	if err := x.start(); err != nil {
		return err
	}
	x.w.Flush()
	return x.w.Error()
}
