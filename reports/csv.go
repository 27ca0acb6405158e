package reports

import (
	"encoding/csv"
	"io"
	"strings"
)

// CSV writes rows with one header row. Free-text cells that a spreadsheet would read as a
// formula (starting with = + - @, a tab or a carriage return) are neutralised with a leading
// apostrophe; numeric cells are written as they are, so "-12.500" stays a number.
type CSV struct {
	w *csv.Writer
}

// NewCSV returns a CSV writer on w.
func NewCSV(w io.Writer) *CSV { return &CSV{w: csv.NewWriter(w)} }

// Header writes the header row.
func (c *CSV) Header(cols ...string) error { return c.w.Write(cols) }

// Row writes one row; text cells are neutralised, number cells (see Num) are not.
func (c *CSV) Row(cells ...Cell) error {
	rec := make([]string, len(cells))
	for i, x := range cells {
		if x.num {
			rec[i] = x.s
		} else {
			rec[i] = Neutralize(x.s)
		}
	}
	return c.w.Write(rec)
}

// Flush flushes and returns any write error.
func (c *CSV) Flush() error {
	c.w.Flush()
	return c.w.Error()
}

// Cell is a CSV cell: text, or a number written verbatim.
type Cell struct {
	s   string
	num bool
}

// Text is a free-text cell.
func Text(s string) Cell { return Cell{s: s} }

// Num is a numeric cell (a decimal or an integer the program produced).
func Num(s string) Cell { return Cell{s: s, num: true} }

// Neutralize prefixes a cell that spreadsheet software would evaluate as a formula with an
// apostrophe (OWASP's advice for CSV injection).
func Neutralize(s string) string {
	if s == "" {
		return s
	}
	if strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
