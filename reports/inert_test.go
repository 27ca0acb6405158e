package reports

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostileTexts look like SQL, HTML, spreadsheet formulas or terminal escapes; every free-text
// field of the ledger is tried with each of them.
var hostileTexts = []string{
	`'); DROP TABLE entries;--`,
	`<script>alert(1)</script>`,
	`=HYPERLINK("http://x","y")`,
	`+cmd|' /C calc'!A0`,
	`-2+3`,
	`@SUM(1)`,
	"\x1b[31mred\x1b[0m",
	"\x1b]8;;http://x\x07link\x1b]8;;\x07",
	"line one\r\nline two",
	"tab\there",
	"\u202egnp.exe",
}

func TestInert(t *testing.T) {
	cases := []struct{ in, want, lines string }{
		{"Acme, Inc.", "Acme, Inc.", "Acme, Inc."},
		{"ünïcödé “quotes” — ok", "ünïcödé “quotes” — ok", "ünïcödé “quotes” — ok"},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`, `\x1b[31mred\x1b[0m`},
		{"\x1b]8;;http://x\x07y", `\x1b]8;;http://x\x07y`, `\x1b]8;;http://x\x07y`},
		{"a\r\nb", `a\r\nb`, "a\\r\nb"},
		{"a\tb", `a\tb`, `a\tb`},
		{"del\x7f", `del\x7f`, `del\x7f`},
		{"csi\u009b2J", `csi\u009b2J`, `csi\u009b2J`},
		{"\u202egnp.exe", `\u202egnp.exe`, `\u202egnp.exe`},
		{"para\u2029graph", `para\u2029graph`, `para\u2029graph`},
		{"bad \xff byte", `bad \xff byte`, `bad \xff byte`},
		{`back\slash`, `back\slash`, `back\slash`},
	}
	for _, c := range cases {
		if got := Inert(c.in); got != c.want {
			t.Errorf("Inert(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := InertLines(c.in); got != c.lines {
			t.Errorf("InertLines(%q) = %q, want %q", c.in, got, c.lines)
		}
	}
}

// noControls fails when out holds a control character other than a line feed, or a rune
// that reorders text.
func noControls(t *testing.T, what, out string) {
	t.Helper()
	for i, r := range out {
		if (r < 0x20 && r != '\n') || r == 0x7f || unsafeRune(r) || (r == utf8.RuneError) {
			t.Errorf("%s: control %U at byte %d in:\n%s", what, r, i, out)
			return
		}
	}
}

// Every table a report writes shows hostile text escaped: no escape sequence reaches the
// terminal, no tab shifts a column, no line break starts a row of its own.
func TestReportTablesInert(t *testing.T) {
	neg := tn("-12.500")
	for _, text := range hostileTexts {
		p := Portfolio{Contracts: []PortfolioLine{{Key: text, Buyer: text, Supplier: text, Method: "biochar", Region: text,
			Contracted: tn("10"), Outstanding: neg}}, Totals: PortfolioLine{Key: "total", Outstanding: neg},
			Shares:    map[string][]PortfolioLine{"supplier": {{Key: text, Contracts: 1}}, "region": {{Key: text, Contracts: 1}}},
			Inventory: Inventory{Contracts: []InventoryContract{{Code: text}}}}
		term := Term{Contracts: []TermContract{{Code: text, Buyer: text, Supplier: text, Status: "behind", Currency: "USD",
			Years: []TermYear{{Year: 1, Start: "2025-01-01", End: "2025-12-31"}}}}}
		per := PeriodReport{By: "supplier", Periods: []Period{{Label: "2025", Start: "2025-01-01", End: "2025-12-31",
			Groups: []Group{{Key: text}}}}}
		for name, r := range map[string]Report{"portfolio": p, "term": term, "period": per} {
			var buf bytes.Buffer
			if err := r.Table(&buf); err != nil {
				t.Fatal(err)
			}
			noControls(t, name+" table of "+strings.ToValidUTF8(text, "?"), buf.String())
			if strings.ContainsAny(text, "\x1b\t\n") && !strings.Contains(buf.String(), Inert(text)) {
				t.Errorf("%s table does not show %q as %q:\n%s", name, text, Inert(text), buf.String())
			}
		}
	}
}
