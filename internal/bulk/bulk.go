// Package bulk imports files of contracts and operations (CSV or NDJSON) into the ledger. It
// only reads: every row becomes field values that the ledger parses (ledger.ParseOperation,
// ledger.ParseOperationJSON, ledger.ParseContractJSON), and every request is recorded by the
// store's Importer, through the same operation core as a single command.
package bulk

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

// Kinds of file.
const (
	KindContracts  = "contracts"
	KindOperations = "operations"
)

// OpContract is the op of an operations row that adds a contract: its terms column holds the
// contract's JSON (what `contract add -f` reads), as `export --format csv` writes it.
const OpContract = "contract"

// Columns an import reads besides the operations' fields: op, a contract row's terms, and
// the error column a reject file adds (ignored, so a fixed reject file imports as it is).
const (
	colOp    = "op"
	colTerms = "terms"
	colError = "error"
)

// Options says how to import.
type Options struct {
	// Kind is KindContracts or KindOperations; "" tells each file's kind from its header
	// (or, for NDJSON, each line's members).
	Kind string
	// SkipInvalid writes the good rows and reports the bad ones (to Rejects too), instead of
	// writing nothing when any row is bad. The import then commits every batch, so that an
	// interrupted run keeps what it wrote and a new run resumes after it.
	SkipInvalid bool
	// Rejects, when not nil, receives each refused row in its file's own format with its
	// reasons (an error column or member added), ready to be fixed and imported again.
	Rejects func(f *File) (RejectWriter, error)
	// Batch is the number of rows read, checked and written together (default 10,000).
	Batch int
	// OnError receives every refused row, in file order, as soon as it is known.
	OnError func(RowError)
	// OnProgress is called after every batch.
	OnProgress func(Summary)
}

// RowError is a refused row: its file, line, and the field and rule at fault.
type RowError struct {
	File  string `json:"file"`
	Line  int    `json:"line"`
	Field string `json:"field,omitempty"`
	Value string `json:"value,omitempty"`
	Rule  string `json:"rule"`
}

func (e RowError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	if e.Field != "" {
		b.WriteString(e.Field)
		if e.Value != "" {
			fmt.Fprintf(&b, " %q", e.Value)
		}
		b.WriteString(" ")
	}
	b.WriteString(e.Rule)
	return b.String()
}

// Summary counts an import's rows.
type Summary struct {
	Read    int `json:"read"`
	Written int `json:"written"`
	Present int `json:"already_present"`
	Refused int `json:"refused"`
	// Valid counts the good rows of an all-or-nothing import that wrote nothing.
	Valid   int           `json:"valid_not_written"`
	Elapsed time.Duration `json:"-"`
	// Bytes of the input read so far, of Size in all.
	Bytes, Size int64 `json:"-"`
	// Committed is true when what was written is in the ledger (false when a bad row made an
	// all-or-nothing import write nothing).
	Committed bool `json:"committed"`
}

// ErrRefused is returned when an all-or-nothing import met bad rows and wrote nothing.
var ErrRefused = errors.New("the file has bad rows; nothing was written")

// File is an input: its name (for errors and derived keys) and a way to read it, twice if
// need be (once to hash it, once to import it).
type File struct {
	Name string
	Open func() (io.ReadCloser, error)
	// Format is "csv" or "ndjson"; "" tells it from the name, else from the content.
	Format string
	digest string // the content's sha256, hex
	size   int64
}

// PathFile is a file on disk.
func PathFile(path string) *File {
	return &File{Name: path, Open: func() (io.ReadCloser, error) { return os.Open(path) }}
}

// SpoolFile copies r (stdin) to a temporary file that the import can read twice; the
// returned cleanup removes it.
func SpoolFile(name string, r io.Reader) (*File, func(), error) {
	tmp, err := os.CreateTemp("", "carbonledger-import-*")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.Remove(tmp.Name()) }
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		cleanup()
		return nil, nil, err
	}
	if err := tmp.Close(); err != nil {
		cleanup()
		return nil, nil, err
	}
	f := PathFile(tmp.Name())
	f.Name = name
	return f, cleanup, nil
}

// Import reads files in order and records their rows. With bad rows and without
// SkipInvalid it writes nothing and returns ErrRefused (after reporting every bad row);
// any other error means the import stopped, and nothing it had not committed is written.
//
// Two imports (or an import and a writer of several contracts) that lock the same contracts
// in another order can deadlock; PostgreSQL then stops one. That one starts again, up to
// three times, as long as it has reported no bad row (a retry would report it twice): what it
// had not committed is gone, and what it had committed (--skip-invalid) is found present.
func Import(ctx context.Context, s *store.Store, files []*File, opt Options) (Summary, error) {
	if opt.Batch <= 0 {
		opt.Batch = 10000
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		sum, err := importOnce(ctx, s, files, opt, start)
		if err == nil || attempt == 3 || sum.Refused > 0 || !store.Retryable(err) || ctx.Err() != nil {
			return sum, err
		}
	}
}

func importOnce(ctx context.Context, s *store.Store, files []*File, opt Options, start time.Time) (Summary, error) {
	var sum Summary
	im, err := s.BeginImport(ctx)
	if err != nil {
		return sum, err
	}
	defer func() { im.Rollback() }()
	// Every file is read once first: its hash names its rows' derived keys, and the sizes
	// let the progress say how far the import is.
	var done int64
	for _, f := range files {
		if err := inspect(f); err != nil {
			return sum, err
		}
		sum.Size += f.size
	}
	for _, f := range files {
		err := importFile(ctx, im, f, opt, &sum, start, done)
		done += f.size
		if err != nil {
			sum.Elapsed = time.Since(start)
			return sum, err
		}
	}
	sum.Elapsed = time.Since(start)
	if sum.Refused > 0 && !opt.SkipInvalid {
		sum.Valid, sum.Written = sum.Written, 0
		return sum, ErrRefused
	}
	if err := im.Commit(ctx); err != nil {
		return sum, err
	}
	sum.Committed = true
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// row is one record of a file, parsed as far as the file's own syntax goes.
type row struct {
	line    int
	op      string                     // an operation, or OpContract
	fields  map[string]string          // an operation's field values (CSV)
	json    []byte                     // a contract's JSON (a terms cell, or an NDJSON line)
	members map[string]json.RawMessage // an operation's JSON members (NDJSON)
	key     string
	raw     []string // the CSV record, for the reject file
	rawJSON []byte   // the NDJSON line, for the reject file
	err     error    // the row cannot be read at all
}

func importFile(ctx context.Context, im *store.Importer, f *File, opt Options, sum *Summary, start time.Time, before int64) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	var rd reader
	switch f.Format {
	case "csv":
		rd, err = newCSVReader(rc, f.Name, opt.Kind)
	default:
		rd = newNDJSONReader(rc, f.Name, opt.Kind)
	}
	if err != nil {
		return err
	}
	keyPrefix := "import:" + f.digest[:24] + ":"
	var rejects RejectWriter
	reject := func(r row, errs []RowError) error {
		sum.Refused++
		for _, e := range errs {
			if opt.OnError != nil {
				opt.OnError(e)
			}
		}
		if opt.Rejects == nil {
			return nil
		}
		if rejects == nil {
			if rejects, err = opt.Rejects(f); err != nil {
				return err
			}
			if cw, ok := rejects.(*csvRejects); ok {
				if err := cw.header(rd.(*csvReader).header); err != nil {
					return err
				}
			}
		}
		return rejects.Reject(r, errs)
	}
	defer func() {
		if rejects != nil {
			rejects.Close()
		}
	}()
	batch := make([]row, 0, opt.Batch)
	for {
		batch = batch[:0]
		for len(batch) < opt.Batch {
			r, ok := rd.next()
			if !ok {
				break
			}
			if r.key == "" {
				r.key = keyPrefix + strconv.Itoa(r.line)
			}
			batch = append(batch, r)
		}
		if err := rd.failed(); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		keys := make([]string, 0, len(batch))
		for _, r := range batch {
			keys = append(keys, r.key)
		}
		if err := im.Prefetch(ctx, keys); err != nil {
			return err
		}
		codes, entries := contractsOf(im, batch)
		if err := im.Lock(ctx, codes, entries); err != nil {
			return err
		}
		for _, r := range batch {
			sum.Read++
			out, err := applyRow(ctx, im, r)
			if err != nil {
				errs, ok := rowErrors(f.Name, r.line, err)
				if !ok {
					return fmt.Errorf("%s:%d: %w", f.Name, r.line, err)
				}
				if err := reject(r, errs); err != nil {
					return err
				}
				continue
			}
			switch out {
			case store.Written:
				sum.Written++
			case store.Present:
				sum.Present++
			}
		}
		if opt.SkipInvalid {
			if err := im.Checkpoint(ctx); err != nil {
				return err
			}
		}
		sum.Bytes = before + rd.offset()
		if opt.OnProgress != nil {
			s := *sum
			s.Elapsed = time.Since(start)
			opt.OnProgress(s)
		}
	}
}

// contractsOf lists the contracts a batch's operation rows name, and the entries its
// corrections name, for the importer to lock them all at once, in one order; a row whose key
// is recorded already needs none (a file imported again locks nothing).
func contractsOf(im *store.Importer, batch []row) (codes, entries []string) {
	field := func(r row, name string) string {
		if r.members != nil {
			var v string
			if json.Unmarshal(r.members[name], &v) != nil {
				return ""
			}
			return strings.TrimSpace(v)
		}
		return strings.TrimSpace(r.fields[name])
	}
	for _, r := range batch {
		if r.err != nil || r.op == OpContract || im.Recorded(r.key) {
			continue
		}
		if code := field(r, "contract"); code != "" {
			codes = append(codes, code)
		} else if entry := field(r, "entry"); entry != "" {
			entries = append(entries, entry)
		}
	}
	return codes, entries
}

// applyRow parses a row with the ledger's own parsers and has the importer record it.
func applyRow(ctx context.Context, im *store.Importer, r row) (store.ImportOutcome, error) {
	c, req, err := parseRow(r)
	if err != nil {
		return 0, err
	}
	if req == nil {
		return im.AddContract(ctx, c, r.key)
	}
	return im.Apply(ctx, req)
}

// parseRow reads a row with the ledger's own parsers, needing no database: a contract (req
// nil) or an operation's request, under the row's key.
func parseRow(r row) (ledger.Contract, ledger.Request, error) {
	if r.err != nil {
		return ledger.Contract{}, nil, r.err
	}
	if r.op == OpContract {
		if len(bytes.TrimSpace(r.json)) == 0 {
			return ledger.Contract{}, nil, ledger.Required(colTerms, "is required for a contract row (the contract's JSON)")
		}
		c, err := ledger.ParseContractJSON(bytes.NewReader(r.json))
		return c, nil, err
	}
	var req ledger.Request
	var err error
	if r.members != nil {
		r.members["key"], _ = json.Marshal(r.key)
		b, merr := json.Marshal(r.members)
		if merr != nil {
			return ledger.Contract{}, nil, merr
		}
		req, err = ledger.ParseOperationJSON(b)
	} else {
		r.fields["key"] = r.key
		req, err = ledger.ParseOperation(r.op, r.fields)
	}
	return ledger.Contract{}, req, err
}

// rowErrors turns a refusal of the ledger into the row's errors; ok is false for an error
// that is not about the row (the database went away, say).
func rowErrors(file string, line int, err error) ([]RowError, bool) {
	var fes ledger.FieldErrors
	var fe *ledger.FieldError
	var re *RowError
	switch {
	case errors.Is(err, store.ErrBatchRefused):
		return nil, false
	case errors.As(err, &re):
		return []RowError{*re}, true
	case errors.As(err, &fes):
	case errors.As(err, &fe):
		fes = ledger.FieldErrors{fe}
	default:
		var dbe *store.DBError
		if errors.As(err, &dbe) && !errors.Is(err, store.ErrBatchRefused) {
			return []RowError{{File: file, Line: line, Rule: dbe.Msg}}, true
		}
		return nil, false
	}
	out := make([]RowError, len(fes))
	for i, e := range fes {
		out[i] = RowError{File: file, Line: line, Field: e.Field, Value: e.Value, Rule: e.Rule}
	}
	return out, true
}

// inspect reads a file through once: its hash (its derived keys rest on its content), its
// size, and its format.
func inspect(f *File) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	br := bufio.NewReaderSize(rc, 1<<16)
	head, _ := br.Peek(512)
	if f.Format == "" {
		switch strings.ToLower(filepath.Ext(f.Name)) {
		case ".csv":
			f.Format = "csv"
		case ".ndjson", ".jsonl":
			f.Format = "ndjson"
		default:
			f.Format = "csv"
			if t := bytes.TrimLeft(head, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '{' {
				f.Format = "ndjson"
			}
		}
	}
	if f.size, err = io.Copy(h, br); err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	f.digest = hex.EncodeToString(h.Sum(nil))
	return nil
}

type reader interface {
	next() (row, bool)
	failed() error
	offset() int64 // bytes of the file consumed
}

// csvReader reads an operations or contracts CSV. Contract columns carry the contract JSON's
// members; a member that is not text in JSON (a number, a list) is written as its JSON.
type csvReader struct {
	r      *csv.Reader
	name   string
	header []string
	kind   string
	err    error
}

func newCSVReader(rc io.Reader, name, kind string) (*csvReader, error) {
	r := csv.NewReader(newKeepCRLF(rc))
	r.ReuseRecord = false
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: the file is empty (it needs a header line)", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for i, h := range header {
		header[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
	}
	seen := map[string]bool{}
	for _, h := range header {
		if seen[h] {
			return nil, fmt.Errorf("%s:1: column %q appears twice", name, h)
		}
		seen[h] = true
	}
	if kind == "" {
		switch {
		case seen[colOp]:
			kind = KindOperations
		case seen["code"]:
			kind = KindContracts
		default:
			return nil, fmt.Errorf("%s:1: the header names neither an op column (an operations file: %s) nor a code column (a contracts file: the contract JSON's members)",
				name, strings.Join(OperationColumns, ","))
		}
	}
	if kind == KindOperations && !seen[colOp] {
		return nil, fmt.Errorf("%s:1: an operations file needs an op column (columns: %s)", name, strings.Join(OperationColumns, ","))
	}
	return &csvReader{r: r, name: name, header: header, kind: kind}, nil
}

// OperationColumns are the columns an operations file may have, in the order `export
// --format csv` writes them: op, the fields of every operation (ledger.OpFields), and a
// contract row's terms.
var OperationColumns = []string{colOp, "contract", "tonnes", "date", "vintage", "serials", "registry_tx", "allow_late",
	"price_per_tonne", "note", "beneficiary", "reason", "claim", "remedy", "terminate", "schedule", "entry", "key", colTerms}

func (c *csvReader) failed() error { return c.err }

func (c *csvReader) offset() int64 { return c.r.InputOffset() }

func (c *csvReader) next() (row, bool) {
	rec, err := c.r.Read()
	if err == io.EOF {
		return row{}, false
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// a broken record: the reader cannot say where the next one starts
			c.err = fmt.Errorf("%s:%d: %v", c.name, pe.StartLine, pe.Err)
		} else {
			c.err = fmt.Errorf("%s: %w", c.name, err)
		}
		return row{}, false
	}
	line, _ := c.r.FieldPos(0) // only after a record was read: FieldPos panics on a broken one
	r := row{line: line, raw: rec}
	// A cell the export (or a spreadsheet user) marked as text with a leading apostrophe, so
	// that a spreadsheet does not run it as a formula, is read without that apostrophe
	// (reports.Neutralize writes it, Unneutralize reads it): the value is the text as given.
	rec = slices.Clone(rec)
	for i, v := range rec {
		rec[i] = reports.Unneutralize(v)
	}
	if len(rec) != len(c.header) {
		r.err = &RowError{File: c.name, Line: line, Rule: fmt.Sprintf("has %d cells; the header has %d columns", len(rec), len(c.header))}
		return r, true
	}
	if c.kind == KindContracts {
		r.op = OpContract
		r.json, r.err = contractJSON(c.header, rec)
		for i, h := range c.header {
			if h == "key" {
				r.key = strings.TrimSpace(rec[i])
			}
		}
		return r, true
	}
	r.fields = make(map[string]string, len(rec))
	for i, h := range c.header {
		v := rec[i]
		switch h {
		case colOp:
			r.op = strings.TrimSpace(v)
		case colError:
		case colTerms:
			r.json = []byte(v)
		case "key":
			r.key = strings.TrimSpace(v)
		default:
			if v != "" {
				r.fields[h] = v
			}
		}
	}
	if r.op != OpContract {
		if len(r.json) > 0 {
			r.err = ledger.Invalid(colTerms, "", "belongs to a contract row (op contract) only")
		}
		r.json = nil
	}
	return r, true
}

// contractJSON builds a contract's JSON from a contracts CSV record: each cell is the member
// of its column, as a JSON string (the contract JSON's members are strings, tonnes and prices
// and durability classes too), except the lists (schedule, registry_projects, registry_accounts), each written as its JSON.
func contractJSON(header, rec []string) ([]byte, error) {
	m := make(map[string]json.RawMessage, len(header))
	for i, h := range header {
		v := rec[i]
		if v == "" || h == colError || h == "key" {
			continue
		}
		if contractListMembers[h] && json.Valid([]byte(v)) {
			m[h] = json.RawMessage(v)
			continue
		}
		b, _ := json.Marshal(v) // a bad list is refused by the contract parser, naming the member
		m[h] = b
	}
	return json.Marshal(m)
}

// contractListMembers are the contract JSON's members that are not strings.
var contractListMembers = map[string]bool{"schedule": true, "registry_projects": true, "registry_accounts": true}

// ndjsonReader reads one JSON object per line: an operation (it has "op"), a contract row of
// an operations file ({"op": "contract", "terms": {...}, "key": ...}), or a contract.
type ndjsonReader struct {
	sc   *bufio.Scanner
	name string
	kind string
	line int
	read int64
	err  error
}

// maxLine bounds one NDJSON line (a contract with a fifty-year schedule is a few kilobytes).
const maxLine = 1 << 20

func newNDJSONReader(rc io.Reader, name, kind string) *ndjsonReader {
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 0, 1<<16), maxLine)
	return &ndjsonReader{sc: sc, name: name, kind: kind}
}

func (n *ndjsonReader) failed() error { return n.err }

func (n *ndjsonReader) offset() int64 { return n.read }

func (n *ndjsonReader) next() (row, bool) {
	for n.sc.Scan() {
		n.line++
		n.read += int64(len(n.sc.Bytes())) + 1
		b := bytes.TrimSpace(n.sc.Bytes())
		if len(b) == 0 {
			continue
		}
		raw := slices.Clone(b)
		r := row{line: n.line, rawJSON: raw}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			rule := "is not one JSON object: " + err.Error()
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				rule = "is a JSON " + te.Value + ", not an object; give one operation or contract per line, as a JSON object"
			}
			r.err = &RowError{File: n.name, Line: n.line, Rule: rule}
			return r, true
		}
		delete(m, colError)
		if k, ok := m["key"]; ok && string(k) != "null" {
			var s string
			if json.Unmarshal(k, &s) != nil {
				r.err = ledger.Invalid("key", string(k), "must be a JSON string")
				return r, true
			}
			r.key = strings.TrimSpace(s)
		}
		opRaw, hasOp := m[colOp]
		if n.kind == KindContracts || (n.kind == "" && !hasOp) {
			delete(m, "key")
			r.op = OpContract
			r.json, _ = json.Marshal(m)
			return r, true
		}
		if name, ok := ledger.RepeatedMember(raw); ok { // m kept only the last
			r.err = ledger.Invalid(name, "", "appears more than once")
			return r, true
		}
		if err := json.Unmarshal(opRaw, &r.op); err != nil {
			r.err = ledger.Invalid(colOp, string(opRaw), "is not a JSON string")
			return r, true
		}
		if r.op == OpContract {
			r.json = m[colTerms]
			return r, true
		}
		r.members = m
		return r, true
	}
	if err := n.sc.Err(); err != nil {
		n.err = fmt.Errorf("%s:%d: %w", n.name, n.line+1, err)
	}
	return row{}, false
}
