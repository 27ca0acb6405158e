package bulk

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/carbonledger/carbonledger/reports"
)

// RejectWriter receives the refused rows of one file, in its own format with their reasons,
// so that the file it writes can be fixed and imported again (the import ignores the error
// column or member).
type RejectWriter interface {
	Reject(r row, errs []RowError) error
	Close() error
}

// RejectsTo returns an Options.Rejects that writes each file's refused rows to the file
// pathFor names (a CSV file's as CSV with its header and an error column, an NDJSON file's
// as NDJSON lines with an "error" member). The file is created at the first refused row.
func RejectsTo(pathFor func(f *File) string) func(f *File) (RejectWriter, error) {
	return func(f *File) (RejectWriter, error) {
		out, err := os.Create(pathFor(f))
		if err != nil {
			return nil, err
		}
		return newRejects(out, f), nil
	}
}

func newRejects(w io.WriteCloser, f *File) RejectWriter {
	bw := bufio.NewWriter(w)
	if f.Format == "ndjson" {
		return &ndjsonRejects{w: bw, c: w}
	}
	return &csvRejects{w: csv.NewWriter(bw), bw: bw, c: w}
}

func reasons(errs []RowError) string {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		e.File, e.Line = "", 0
		msgs[i] = strings.TrimPrefix(e.Error(), ":0: ")
	}
	return strings.Join(msgs, "; ")
}

type csvRejects struct {
	w      *csv.Writer
	bw     *bufio.Writer
	c      io.Closer
	errCol int
}

func (c *csvRejects) header(h []string) error {
	c.errCol = -1
	for i, name := range h {
		if name == colError {
			c.errCol = i
		}
	}
	if c.errCol >= 0 {
		return c.w.Write(h)
	}
	return c.w.Write(append(append([]string{}, h...), colError))
}

// Reject writes the row's cells as the import read them, each neutralised for a spreadsheet
// (the reject file is for a person to fix) unless it is a plain number: the import reads the
// neutralised cell back as the same value (reports.Unneutralize).
func (c *csvRejects) Reject(r row, errs []RowError) error {
	rec := make([]string, len(r.raw))
	for i, v := range r.raw {
		if v = reports.Unneutralize(v); !plainNumber.MatchString(v) {
			v = reports.Neutralize(v)
		}
		rec[i] = v
	}
	if c.errCol >= 0 && c.errCol < len(rec) {
		rec[c.errCol] = reports.Neutralize(reasons(errs))
	} else {
		rec = append(rec, reports.Neutralize(reasons(errs)))
	}
	return c.w.Write(rec)
}

// plainNumber is a cell a spreadsheet reads as a number, not a formula: "-2.000" stays as it is.
var plainNumber = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

func (c *csvRejects) Close() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	return c.c.Close()
}

type ndjsonRejects struct {
	w *bufio.Writer
	c io.Closer
}

func (n *ndjsonRejects) Reject(r row, errs []RowError) error {
	var m map[string]json.RawMessage
	if json.Unmarshal(r.rawJSON, &m) != nil || m == nil { // a line "null" reads as no map
		m = map[string]json.RawMessage{"line": json.RawMessage(mustJSON(string(r.rawJSON)))}
	}
	m[colError] = mustJSON(reasons(errs))
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = n.w.Write(b)
	return err
}

func (n *ndjsonRejects) Close() error {
	if err := n.w.Flush(); err != nil {
		return err
	}
	return n.c.Close()
}

func mustJSON(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
