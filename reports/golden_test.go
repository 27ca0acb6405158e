package reports

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden from the current output")

// goldenReports are the reports of the golden files: every report on the fixed data set, and
// every report on no data at all.
func goldenReports(t *testing.T) map[string]Report {
	t.Helper()
	books := fixtureBooks(t)
	meta := NewMeta(fixtureAsOf, fixtureKnownAt)
	calendar, err := Periods([]int{2023, 2024, 2025, 2026}, 1)
	if err != nil {
		t.Fatal(err)
	}
	fiscal, err := Periods([]int{2024, 2025, 2026}, 7)
	if err != nil {
		t.Fatal(err)
	}
	cfs := allFlows(books, fixtureAsOf)
	empty := NewMeta(fixtureAsOf, fixtureKnownAt)
	return map[string]Report{
		"term":              BuildTerm(meta, cfs, fixtureAsOf),
		"period":            BuildPeriod(meta, calendar, 1, "", groupFlows(books, fixtureAsOf, "")),
		"period-by-method":  BuildPeriod(meta, fiscal, 7, "method", groupFlows(books, fixtureAsOf, "method")),
		"portfolio":         BuildPortfolio(meta, cfs, fixtureAsOf),
		"empty-term":        BuildTerm(empty, nil, fixtureAsOf),
		"empty-period":      BuildPeriod(empty, fiscal[:1], 7, "supplier", nil),
		"empty-portfolio":   BuildPortfolio(empty, nil, fixtureAsOf),
		"term-one-contract": BuildTerm(NewMeta(fixtureAsOf, fixtureKnownAt.AddDate(0, 0, -400)), cfs[2:3], fixtureAsOf),
	}
}

var goldenExt = map[string]string{"table": "txt", "csv": "csv", "json": "json", "html": "html"}

// TestGolden renders every report in every format and compares the output byte for byte with
// testdata/golden. Run `go test ./reports -run TestGolden -update` to accept a change, then
// read the diff of the golden files before committing it.
func TestGolden(t *testing.T) {
	for name, r := range goldenReports(t) {
		for _, format := range Formats {
			file := filepath.Join("testdata", "golden", name+"."+goldenExt[format])
			t.Run(name+"/"+format, func(t *testing.T) {
				var buf bytes.Buffer
				if err := Render(&buf, r, format); err != nil {
					t.Fatalf("Render(%s, %s): %v", name, format, err)
				}
				if *update {
					if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("%v (run `go test ./reports -run TestGolden -update` to create it)", err)
				}
				if d := lineDiff(string(want), buf.String()); d != "" {
					t.Errorf("%s differs from the golden file (-want +got; rerun with -update to accept):\n%s", file, d)
				}
			})
		}
	}
}

// lineDiff returns "" when a and b are equal, else the first differing lines of each with
// their line numbers and a little context: enough to see what changed without a diff tool.
func lineDiff(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	first := 0
	for first < len(w) && first < len(g) && w[first] == g[first] {
		first++
	}
	var b strings.Builder
	if first > 0 {
		fmt.Fprintf(&b, "  %4d  %s\n", first, w[first-1])
	}
	shown := 0
	for i := first; i < first+8 && (i < len(w) || i < len(g)); i++ {
		if i < len(w) && (i >= len(g) || w[i] != g[i]) {
			fmt.Fprintf(&b, "- %4d  %s\n", i+1, w[i])
			shown++
		}
		if i < len(g) && (i >= len(w) || w[i] != g[i]) {
			fmt.Fprintf(&b, "+ %4d  %s\n", i+1, g[i])
			shown++
		}
		if i < len(w) && i < len(g) && w[i] == g[i] {
			fmt.Fprintf(&b, "  %4d  %s\n", i+1, w[i])
		}
	}
	fmt.Fprintf(&b, "(want %d lines, got %d; first difference at line %d)", len(w), len(g), first+1)
	return b.String()
}

func TestLineDiff(t *testing.T) {
	if d := lineDiff("a\nb\n", "a\nb\n"); d != "" {
		t.Errorf("lineDiff of equal texts = %q, want empty", d)
	}
	d := lineDiff("a\nb\nc\n", "a\nB\nc\n")
	for _, want := range []string{"-    2  b", "+    2  B", "first difference at line 2"} {
		if !strings.Contains(d, want) {
			t.Errorf("lineDiff = %q, want it to contain %q", d, want)
		}
	}
}

// A term report of many contracts is built on every core: row for row what building it one
// contract after another gives.
func TestBuildTermInParallel(t *testing.T) {
	asOf := date("2026-11-29")
	many := manyContracts(t, asOf)
	got := BuildTerm(Meta{}, many, asOf)
	for i, cf := range many {
		if want := termContract(cf, asOf); !reflect.DeepEqual(got.Contracts[i], want) {
			t.Fatalf("contract %d (%s): got %+v, want %+v", i, cf.Contract.Code, got.Contracts[i], want)
		}
	}
}

// A portfolio of many contracts ages their inventories on every core: the same report as one
// contract after another would give.
func TestBuildPortfolioInParallel(t *testing.T) {
	asOf := date("2026-11-29")
	many := manyContracts(t, asOf)
	got := BuildPortfolio(Meta{}, many, asOf)
	var want Portfolio
	want.Inventory.Buckets = emptyBuckets()
	for _, cf := range many { // one at a time: each contract's portfolio of one, merged by hand
		p := BuildPortfolio(Meta{}, []*ledger.ContractFlows{cf}, asOf)
		want.Contracts = append(want.Contracts, p.Contracts...)
		want.Inventory.Contracts = append(want.Inventory.Contracts, p.Inventory.Contracts...)
	}
	if !reflect.DeepEqual(got.Contracts, want.Contracts) || !reflect.DeepEqual(got.Inventory.Contracts, want.Inventory.Contracts) {
		t.Fatalf("built in parallel, the contracts or their inventories differ from one at a time")
	}
}

// manyContracts repeats the fixture's contracts past the count that is shared out between cores.
func manyContracts(t *testing.T, asOf time.Time) []*ledger.ContractFlows {
	one := allFlows(fixtureBooks(t), asOf)
	var many []*ledger.ContractFlows
	for len(many) < 450 {
		many = append(many, one...)
	}
	return many
}
