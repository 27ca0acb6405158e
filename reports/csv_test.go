package reports

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
)

func TestNeutralize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"Acme", "Acme"},
		{"=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"},
		{"+1 Carbon", "'+1 Carbon"},
		{"-Minus Ltd", "'-Minus Ltd"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tTabbed", "'\tTabbed"},
		{"\rReturn", "'\rReturn"},
		{"A=B", "A=B"},
		{"'quoted", "'quoted"},
	}
	for _, tt := range tests {
		if got := Neutralize(tt.in); got != tt.want {
			t.Errorf("Neutralize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// readCSV parses the output and checks it has exactly one header row: the first, and no other
// row equal to it.
func readCSV(t *testing.T, out string) [][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("output is not valid CSV: %v\n%s", err, out)
	}
	if len(recs) == 0 {
		t.Fatalf("no header row in %q", out)
	}
	for i, r := range recs[1:] {
		if strings.Join(r, ",") == strings.Join(recs[0], ",") {
			t.Fatalf("row %d repeats the header", i+2)
		}
	}
	return recs
}

func col(t *testing.T, header []string, name string) int {
	t.Helper()
	for i, h := range header {
		if h == name {
			return i
		}
	}
	t.Fatalf("no column %q in %v", name, header)
	return -1
}

// TestCSVNeutralisesText: buyer, supplier, contract and group texts that a spreadsheet would
// run as a formula get a leading apostrophe; figures, negative ones included, do not.
func TestCSVNeutralisesText(t *testing.T) {
	neg := tn("-12.500")
	hostile := map[string]string{"=cmd|' /C calc'!A0": "'=cmd|' /C calc'!A0", "+SUM(1)": "'+SUM(1)", "-2+3": "'-2+3", "@A1": "'@A1"}
	for text, want := range hostile {
		p := Portfolio{Contracts: []PortfolioLine{{Key: text, Buyer: text, Supplier: text, Method: "biochar", Region: text,
			Contracted: tn("10"), Delivered: tn("22.500"), Outstanding: neg}}, Totals: PortfolioLine{Key: "total", Outstanding: neg}}
		var buf bytes.Buffer
		if err := p.CSV(&buf); err != nil {
			t.Fatal(err)
		}
		recs := readCSV(t, buf.String())
		if len(recs) != 3 {
			t.Fatalf("portfolio CSV has %d rows, want a header, a contract and the total", len(recs))
		}
		h, row := recs[0], recs[1]
		for _, c := range []string{"contract", "buyer", "supplier", "region"} {
			if got := row[col(t, h, c)]; got != want {
				t.Errorf("portfolio %s cell = %q, want %q", c, got, want)
			}
		}
		if got := row[col(t, h, "outstanding")]; got != "-12.500" {
			t.Errorf("portfolio outstanding = %q, want the number -12.500 as it is", got)
		}
		if got := recs[2][col(t, h, "outstanding")]; got != "-12.500" {
			t.Errorf("portfolio total outstanding = %q, want -12.500", got)
		}

		term := Term{Contracts: []TermContract{{Code: text, Buyer: text, Supplier: text, Status: "behind", Outstanding: neg,
			Years: []TermYear{{Year: 1, Start: "2025-01-01", End: "2025-12-31", Delivered: neg, CumulativeDelivered: neg}}}}}
		buf.Reset()
		if err := term.CSV(&buf); err != nil {
			t.Fatal(err)
		}
		recs = readCSV(t, buf.String())
		if len(recs) != 3 {
			t.Fatalf("term CSV has %d rows, want a header, a year and the contract", len(recs))
		}
		h = recs[0]
		for _, r := range recs[1:] {
			if got := r[col(t, h, "code")]; got != want {
				t.Errorf("term code cell = %q, want %q", got, want)
			}
		}
		if got := recs[1][col(t, h, "delivered")]; got != "-12.500" {
			t.Errorf("term year delivered = %q, want -12.500", got)
		}
		if got := recs[2][col(t, h, "outstanding")]; got != "-12.500" {
			t.Errorf("term outstanding = %q, want -12.500", got)
		}

		per := PeriodReport{Periods: []Period{{Label: "2025", Start: "2025-01-01", End: "2025-12-31",
			Measures: Measures{Contracted: neg}, Groups: []Group{{Key: text, Measures: Measures{Contracted: neg}}}}}}
		buf.Reset()
		if err := per.CSV(&buf); err != nil {
			t.Fatal(err)
		}
		recs = readCSV(t, buf.String())
		if len(recs) != 3 {
			t.Fatalf("period CSV has %d rows, want a header, a group and the period", len(recs))
		}
		h = recs[0]
		if got := recs[1][col(t, h, "group")]; got != want {
			t.Errorf("period group cell = %q, want %q", got, want)
		}
		if got := recs[1][col(t, h, "contracted")]; got != "-12.500" {
			t.Errorf("period contracted = %q, want -12.500", got)
		}
	}
}

// TestCSVOneHeaderRow: every CSV report has one header row, also with no data, and a row per
// record after it.
func TestCSVOneHeaderRow(t *testing.T) {
	books := fixtureBooks(t)
	cfs := allFlows(books, fixtureAsOf)
	specs, err := Periods([]int{2024, 2025}, 7)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		r    Report
		rows int
	}{
		{"term", BuildTerm(Meta{}, cfs, fixtureAsOf), 11},
		{"term without contracts", BuildTerm(Meta{}, nil, fixtureAsOf), 0},
		{"period", BuildPeriod(Meta{}, specs, 7, "method", groupFlows(books, fixtureAsOf, "method")), 9},
		{"period without data", BuildPeriod(Meta{}, specs, 7, "", nil), 2},
		{"portfolio", BuildPortfolio(Meta{}, cfs, fixtureAsOf), 5},
		{"portfolio without contracts", BuildPortfolio(Meta{}, []*ledger.ContractFlows{}, fixtureAsOf), 1},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := tt.r.CSV(&buf); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		recs := readCSV(t, buf.String())
		if got := len(recs) - 1; got != tt.rows {
			t.Errorf("%s: %d rows after the header, want %d", tt.name, got, tt.rows)
		}
		for i, r := range recs {
			if len(r) != len(recs[0]) {
				t.Errorf("%s: row %d has %d cells, the header %d", tt.name, i+1, len(r), len(recs[0]))
			}
		}
	}
}
