package reports

import (
	"encoding/csv"
	"io"
)

// CSV writes rows with one header row. Free-text cells that a spreadsheet would read as a
// formula (starting with = + - @, a tab or a carriage return) are neutralised with a leading
// apostrophe (Neutralize); numeric cells are written as they are, so "-12.500" stays a number.
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
// apostrophe (OWASP's advice for CSV injection): a cell starting with =, +, -, @, a tab or a
// carriage return. So that the prefix can be told from the text, a cell that starts with an
// apostrophe followed by one of those (or by another apostrophe) gets one too: Unneutralize
// then gives every cell back exactly, and files read back (import) lose nothing.
func Neutralize(s string) string {
	if s == "" {
		return s
	}
	if formulaLead(s[0]) || (s[0] == '\'' && len(s) > 1 && (formulaLead(s[1]) || s[1] == '\'')) {
		return "'" + s
	}
	return s
}

// Unneutralize undoes Neutralize: it drops the leading apostrophe of a cell whose next
// character is =, +, -, @, a tab, a carriage return or another apostrophe, and leaves any
// other cell as it is. A spreadsheet, too, reads such an apostrophe as "this is text", not as
// part of the value.
func Unneutralize(s string) string {
	if len(s) > 1 && s[0] == '\'' && (formulaLead(s[1]) || s[1] == '\'') {
		return s[1:]
	}
	return s
}

func formulaLead(c byte) bool {
	switch c {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}
