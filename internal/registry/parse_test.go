package registry

import (
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

// samplesDir is where the real registry exports live: $CARBONLEDGER_REGISTRY_EXPORTS, else the
// copy in testdata/ at the repository root. A test without them fails; it never skips.
func samplesDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CARBONLEDGER_REGISTRY_EXPORTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "testdata", "registry-exports")
	}
	if _, err := os.Stat(filepath.Join(dir, "car-retirements.csv")); err != nil {
		t.Fatalf("the real registry exports are not at %s (set CARBONLEDGER_REGISTRY_EXPORTS): %v", dir, err)
	}
	return dir
}

// samplePath is the path of one real export: in $CARBONLEDGER_REGISTRY_EXPORTS when it is set,
// else in testdata/registry-exports at the repository root, else in this package's
// testdata/registry-exports (unchanged copies of the samples the root folder does not hold
// yet). A missing file fails the test; it never skips.
func samplePath(t testing.TB, file string) string {
	t.Helper()
	dirs := []string{filepath.Join("..", "..", "testdata", "registry-exports")}
	if dir := os.Getenv("CARBONLEDGER_REGISTRY_EXPORTS"); dir != "" {
		dirs = []string{dir}
	}
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, file)); err == nil {
			return filepath.Join(dir, file)
		}
	}
	t.Fatalf("the real registry export %s is in none of %s (set CARBONLEDGER_REGISTRY_EXPORTS)", file, strings.Join(dirs, ", "))
	return ""
}

func parseFile(t *testing.T, path, registry string) *Export {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exp, err := Parse(f, registry)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return exp
}

// csvRows counts a file's data rows with the standard library alone.
func csvRows(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	all, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return len(all) - 1
}

func TestParseRealExports(t *testing.T) {
	for _, tt := range []struct {
		file     string
		kind     Kind
		rows     int
		serials  bool
		statuses map[Status]int
	}{
		{"car-retirements.csv", CARRetirements, 100, true, map[Status]int{StatusRetired: 100}},
		{"car-issuances.csv", CARIssuances, 100, false, map[Status]int{StatusIssued: 100}},
		// every row cancelled (for ARB or WA ECO compliance), none retired
		{"car-cancellations.csv", CARCancellations, 50, true, map[Status]int{StatusCancelled: 50}},
		{"verra-transactions.csv", VerraTransactions, 200, true,
			map[Status]int{StatusIssued: 100, StatusRetired: 87, StatusRetiredOrCancelled: 13}},
		{"gold-standard-issuances.csv", GSIssuances, 100, true, map[Status]int{StatusIssued: 100}},
		// Credit Status Retired or Canceled; the cancelled rows are never retired
		{"gold-standard-retirements.csv", GSRetirements, 100, true, map[Status]int{StatusRetired: 94, StatusCancelled: 6}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			path := samplePath(t, tt.file)
			exp := parseFile(t, path, "")
			if exp.Kind != tt.kind || exp.Registry != tt.kind.Registry() {
				t.Errorf("kind: got %s (%s), want %s", exp.Kind, exp.Registry, tt.kind)
			}
			if n := csvRows(t, path); n != tt.rows || len(exp.Records) != n {
				t.Errorf("rows: got %d records, the file has %d data rows, the README says %d", len(exp.Records), n, tt.rows)
			}
			if n := exp.Unreadable(); n != 0 {
				t.Errorf("got %d unreadable rows, want 0", n)
			}
			statuses := map[Status]int{}
			lastLine := 1
			for _, r := range exp.Records {
				if r.Err != "" || r.Problem != "" {
					t.Errorf("line %d: error %q, problem %q", r.Line, r.Err, r.Problem)
				}
				if r.Line <= lastLine {
					t.Errorf("line %d follows line %d", r.Line, lastLine)
				}
				lastLine = r.Line
				statuses[r.Status]++
				if r.HasSerials() != tt.serials {
					t.Errorf("line %d: has serials %v, want %v", r.Line, r.HasSerials(), tt.serials)
				}
				if r.Count <= 0 || !r.Quantity.Equal(ledger.TonnesFromKg(r.Count*1000)) {
					t.Errorf("line %d: count %d, quantity %s", r.Line, r.Count, r.Quantity)
				}
				if tt.serials && (r.Serials.Count() != r.Count || !r.Serials.Tonnes().Equal(r.Quantity)) {
					t.Errorf("line %d: range %s holds %d serials, quantity %d", r.Line, r.Serials, r.Serials.Count(), r.Count)
				}
				if r.Date.IsZero() || r.Date.Year() < 2000 || r.Project == "" || r.Vintage == "" {
					t.Errorf("line %d: date %v, project %q, vintage %q", r.Line, r.Date, r.Project, r.Vintage)
				}
				// a cancellation reason only on a cancelled row, and on every cancelled row that
				// gives a reason (Gold Standard's SACCI cancellations give none)
				if (r.Status != StatusCancelled && r.Cancellation != CancelUnstated) || (r.Status == StatusCancelled && r.Reason != "" && r.Cancellation == CancelUnstated) ||
					(tt.kind == CARCancellations && r.Cancellation != CancelCompliance) {
					t.Errorf("line %d: status %s, cancellation %q (reason %q)", r.Line, r.Status, r.Cancellation, r.Reason)
				}
				if tt.kind == CARRetirements || tt.kind == CARCancellations {
					// the series names the project and vintage the row's own columns give
					p, v, ok := carProjectVintage(r.Serials.Prefix)
					if !ok || p != r.Project || v != r.Vintage {
						t.Errorf("line %d: series %s read as project %q vintage %q (%v), the row says %q %q", r.Line, r.Serials.Prefix, p, v, ok, r.Project, r.Vintage)
					}
				}
			}
			for s, n := range tt.statuses {
				if statuses[s] != n {
					t.Errorf("status %q: got %d rows, want %d (all: %v)", s, statuses[s], n, statuses)
				}
			}
		})
	}
}

func TestParseRealRows(t *testing.T) {
	dir := samplesDir(t)
	car := parseFile(t, filepath.Join(dir, "car-retirements.csv"), "car")
	verra := parseFile(t, filepath.Join(dir, "verra-transactions.csv"), "verra")
	iss := parseFile(t, filepath.Join(dir, "car-issuances.csv"), "car")
	cx := parseFile(t, samplePath(t, "car-cancellations.csv"), "car")
	gsi := parseFile(t, samplePath(t, "gold-standard-issuances.csv"), "gold-standard")
	gsr := parseFile(t, samplePath(t, "gold-standard-retirements.csv"), "gold-standard")
	at := func(exp *Export, line int) Record {
		for _, r := range exp.Records {
			if r.Line == line {
				return r
			}
		}
		t.Fatalf("no record at line %d", line)
		return Record{}
	}
	for _, tt := range []struct {
		name string
		got  Record
		want Record
	}{
		{"car line 2", at(car, 2), Record{Line: 2, Registry: "car", Kind: CARRetirements,
			Serials: ledger.SerialRange{Prefix: "CAR-1-US-1335-31-983-KS-2025-9205", First: 1, Last: 5000, Label: "CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000"},
			Count:   5000, Quantity: ledger.MustTonnes("5000"), Status: StatusRetired, Date: ledger.Date(2025, 10, 27),
			Beneficiary: "ClimeCo Corp MCK NAP2, LLC.", Reason: "On Behalf of Third Party", Details: "Retired on behalf of Kinaxis Inc. F2024 period",
			Owner: "ClimeCo Corp MCK NAP2, LLC.", Project: "CAR1335", Vintage: "2025"}},
		{"verra thousands separator", at(verra, 4), Record{Line: 4, Registry: "verra", Kind: VerraTransactions,
			Serials: ledger.SerialRange{Prefix: "VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0", First: 941412555, Last: 941441125,
				Label: "19381-941412555-941441125-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0"},
			Count: 28571, Quantity: ledger.MustTonnes("28571"), Status: StatusRetired, Date: ledger.Date(2026, 4, 6),
			Beneficiary: "Lindblad Expeditions Family of Companies", Reason: "Environmental Benefit",
			Details: "Retired on behalf of the Lindblad Expeditions family of companies 2025 emissions.",
			Project: "3005", Vintage: "2022-01-01 to 2022-10-31"}},
		{"verra no beneficiary", at(verra, 2), Record{Line: 2, Registry: "verra", Kind: VerraTransactions,
			Serials: ledger.SerialRange{Prefix: "VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1", First: 941467007, Last: 941467431,
				Label: "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1"},
			Count: 425, Quantity: ledger.MustTonnes("425"), Status: StatusRetiredOrCancelled, Date: ledger.Date(2026, 4, 10),
			Project: "1340", Vintage: "2020-01-01 to 2020-12-31"}},
		{"car cancellation", at(cx, 22), Record{Line: 22, Registry: "car", Kind: CARCancellations,
			Serials: ledger.SerialRange{Prefix: "CAR-ROC-US-2211-202-2559-OH-2025-9609", First: 1, Last: 39953, Label: "CAR-ROC-US-2211-202-2559-OH-2025-9609-1 to 39953"},
			Count:   39953, Quantity: ledger.MustTonnes("39953"), Status: StatusCancelled, Date: ledger.Date(2026, 1, 28),
			Reason: "WA ECO", Cancellation: CancelCompliance, Project: "CAR2211", Vintage: "2025"}},
		{"car issuance", at(iss, 2), Record{Line: 2, Registry: "car", Kind: CARIssuances,
			Count: 9166, Quantity: ledger.MustTonnes("9166"), Status: StatusIssued, Date: ledger.Date(2026, 3, 19),
			Project: "CAR2264", Vintage: "2026"}},
		// an issuance date with a time of day keeps its day
		{"gold standard issuance", at(gsi, 2), Record{Line: 2, Registry: "gold-standard", Kind: GSIssuances,
			Serials: ledger.SerialRange{Prefix: "GS1-1-UG-GS11236-16-2024-30307", First: 1, Last: 19149, Label: "GS1-1-UG-GS11236-16-2024-30307-1-19149"},
			Count:   19149, Quantity: ledger.MustTonnes("19149"), Status: StatusIssued, Date: ledger.Date(2026, 4, 13),
			Project: "11236", Vintage: "2024"}},
		{"gold standard carried over", at(gsi, 84), Record{Line: 84, Registry: "gold-standard", Kind: GSIssuances,
			Serials: ledger.SerialRange{Prefix: "RW-5-2-2-0-7014", First: 1459975, Last: 1460107, Label: "RW-5-1459975-2-2-0-7014 - RW-5-1460107-2-2-0-7014"},
			Count:   133, Quantity: ledger.MustTonnes("133"), Status: StatusIssued, Date: ledger.Date(2026, 3, 26),
			Project: "4823", Vintage: "2017"}},
		// the Note spans two lines (it ends in a line break, dropped)
		{"gold standard retirement", at(gsr, 2), Record{Line: 2, Registry: "gold-standard", Kind: GSRetirements,
			Serials: ledger.SerialRange{Prefix: "GS1-1-KE-GS11603-16-2025-30256", First: 110, Last: 5463, Label: "GS1-1-KE-GS11603-16-2025-30256-110-5463"},
			Count:   5354, Quantity: ledger.MustTonnes("5354"), Status: StatusRetired, Date: ledger.Date(2026, 4, 10),
			Beneficiary: "Hilti Corporation", Reason: "Voluntary",
			Details: "Retirement on behalf of Hilti Corporation for the compensation of Scope 1 2 and business travel emissions of the year 2025.",
			Project: "11603", Vintage: "2025"}},
		{"gold standard cancellation, transferred to another registry", at(gsr, 97), Record{Line: 97, Registry: "gold-standard", Kind: GSRetirements,
			Serials: ledger.SerialRange{Prefix: "GS1-1-ZW-GS11551-16-2024-29957", First: 1, Last: 334563, Label: "GS1-1-ZW-GS11551-16-2024-29957-1-334563"},
			Count:   334563, Quantity: ledger.MustTonnes("334563"), Status: StatusCancelled, Date: ledger.Date(2026, 1, 6),
			Reason: "Transferred to Zimbabwe Carbon Registry in accordance with Carbon Trading (General) Regulations 2025", Cancellation: CancelTransfer,
			Project: "11551", Vintage: "2024"}},
		{"gold standard cancellation without a reason", at(gsr, 47), Record{Line: 47, Registry: "gold-standard", Kind: GSRetirements,
			Serials: ledger.SerialRange{Prefix: "GS1-1-ZW-GS12875-16-2024-29978", First: 1, Last: 41158, Label: "GS1-1-ZW-GS12875-16-2024-29978-1-41158"},
			Count:   41158, Quantity: ledger.MustTonnes("41158"), Status: StatusCancelled, Date: ledger.Date(2026, 1, 16),
			Project: "12875", Vintage: "2024"}},
	} {
		if !recordsEqual(tt.got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, tt.got, tt.want)
		}
	}
	// an active block: no retirement date, dated by its issuance
	for _, r := range verra.Records {
		if r.Status == StatusIssued && (r.Beneficiary != "" || r.Reason != "" || r.Date.IsZero()) {
			t.Errorf("line %d: issued block with beneficiary %q reason %q date %v", r.Line, r.Beneficiary, r.Reason, r.Date)
		}
	}
}

func recordsEqual(a, b Record) bool {
	qa, qb := a.Quantity, b.Quantity
	a.Quantity, b.Quantity = ledger.Tonnes{}, ledger.Tonnes{}
	return qa.Equal(qb) && a == b
}

const carHeader = "Vintage,Offset Credit Serial Numbers,Quantity of Offset Credits,Status Effective,Project ID,Account Holder,Retirement Reason,Retirement Reason Details\n"
const gsHeader = "Vintage,Credit Status,Quantity,GSID,Issuance Date,Retirement Date,Serial Number,Use Case,Using Entity,Note\n"
const verraHeader = "Issuance Date,Vintage Start,Vintage End,ID,Quantity Issued,Serial Number,Retirement/Cancellation Date,Retirement Beneficiary,Retirement Reason,Retirement Details\n"

func TestParseEdgeCases(t *testing.T) {
	type want struct {
		line    int
		err     string // "" for a readable row; else a part of the reason
		count   int64
		problem string
		date    time.Time
		status  Status
	}
	for _, tt := range []struct {
		name, input string
		want        []want
	}{
		{"BOM and CRLF", "\xef\xbb\xbf" + strings.ReplaceAll(carHeader, "\n", "\r\n") +
			"2025,CAR-1-US-1-2-3-KS-2025-9-1 to 5000,\"5,000\",10/27/2025,CAR1,\"Acme, Inc.\",Other,\r\n" +
			"2025,CAR-1-US-1-2-3-KS-2025-9-5001 to 5001,1,1/2/2026,CAR1,x,Other,\r\n",
			[]want{{line: 2, count: 5000, date: ledger.Date(2025, 10, 27), status: StatusRetired},
				{line: 3, count: 1, date: ledger.Date(2026, 1, 2), status: StatusRetired}}},
		{"thousands separators and a spreadsheet's .0", carHeader +
			"2025,CAR-1-US-1-2-3-KS-2025-9-1 to 1234567,\"1,234,567\",10/27/2025,CAR1,x,Other,\n" +
			"2025,CAR-1-US-1-2-3-KS-2025-9-1 to 100,100.0,10/27/2025,CAR1,x,Other,\n",
			[]want{{line: 2, count: 1234567, date: ledger.Date(2025, 10, 27), status: StatusRetired},
				{line: 3, count: 100, date: ledger.Date(2025, 10, 27), status: StatusRetired}}},
		{"bad rows keep their line numbers", carHeader +
			"2025,CAR-1-US-1-2-3-KS-2025-9-1 to 10,10,10/27/2025,CAR1,x,Other,\n" +
			"2025,CAR-1-US-1-2-3-KS-2025-9-11 to twenty,10,10/27/2025,CAR1,x,Other,\n" +
			"2025,CAR-1-US-1-2-3-KS-2025-9-21 to 30,\"1,0\",10/27/2025,CAR1,x,Other,\n" +
			"2025,CAR-1-US-1-2-3-KS-2025-9-31 to 40,10,10/27/2025,CAR1\n" +
			"2025,CAR-1-US-1-2-3-KS-2025-9-41 to 50,10,2025-10-27,CAR1,x,Other,\n" +
			"2025,CAR-1-US-1-2-3-KS-2025-9-60 to 51,10,10/27/2025,CAR1,x,Other,\n" +
			"2025,,10,10/27/2025,CAR1,x,Other,\n" +
			"2025,CAR-1-US-1-2-3-KS-2025-9-61 to 70,-10,13/27/2025,CAR1,x,Other,\n" +
			",,,,,,,\n" +
			"2025,19385-1-10-VCS-VCU-1,10,10/27/2025,CAR1,x,Other,\n" +
			"2025,CAR-1-US-1-2-3-KS-2025-9-71 to 80,10,10/27/2025,CAR1,x,Other,\n",
			[]want{{line: 2, count: 10, date: ledger.Date(2025, 10, 27), status: StatusRetired},
				{line: 3, err: `Offset Credit Serial Numbers "CAR-1-US-1-2-3-KS-2025-9-11 to twenty" is not a serial range in the registry's form`},
				{line: 4, err: `Quantity of Offset Credits "1,0" is not a whole number`},
				{line: 5, err: "has 5 fields where the header has 8"},
				{line: 6, err: `Status Effective "2025-10-27" is not a date in the registry's form MM/DD/YYYY`},
				{line: 7, err: "ends before it starts"},
				{line: 8, err: "Offset Credit Serial Numbers \"\" is empty"},
				{line: 9, err: `"-10" is negative; Status Effective "13/27/2025" is not a date`},
				{line: 10, err: "is empty (every field is blank)"},
				{line: 11, err: "is not a serial range in the registry's form \"CAR-...-FIRST to LAST\""},
				{line: 12, count: 10, date: ledger.Date(2025, 10, 27), status: StatusRetired}}},
		{"quoted commas and a quoted line break keep later line numbers right", carHeader +
			"2025,CAR-1-US-1-2-3-KS-2025-9-1 to 10,10,10/27/2025,CAR1,\"Acme, Inc.\",Other,\"first line\nsecond line, with a comma\"\n" +
			"2025,CAR-1-US-1-2-3-KS-2025-9-11 to 20,10,10/27/2025,CAR1,x,Other,\n",
			[]want{{line: 2, count: 10, date: ledger.Date(2025, 10, 27), status: StatusRetired},
				{line: 4, count: 10, date: ledger.Date(2025, 10, 27), status: StatusRetired}}},
		{"a quantity that disagrees with its own range", carHeader +
			"2025,CAR-1-US-1-2-3-KS-2025-9-1 to 5000,4999,10/27/2025,CAR1,x,Other,\n",
			[]want{{line: 2, count: 4999, problem: "the quantity 4999 disagrees with its serial range 1-5000, which holds 5000 serials", date: ledger.Date(2025, 10, 27), status: StatusRetired}}},
		{"a broken quote is one unreadable row, and reading goes on", carHeader +
			"2025,CAR-1-US-1-2-3-KS-2025-9-1 to 10,10,10/27/2025,CAR1,Acme \"the\" Inc,Other,\n" +
			"2025,CAR-1-US-1-2-3-KS-2025-9-11 to 20,10,10/27/2025,CAR1,x,Other,\n",
			[]want{{line: 2, err: "is not valid CSV (line 2, column"},
				{line: 3, count: 10, date: ledger.Date(2025, 10, 27), status: StatusRetired}}},
		{"a CAR cancellation is cancelled, never retired", "Vintage,Offset Credit Serial Numbers,Quantity of Offset Credits,Status Effective,Project ID,Cancellation Reason\n" +
			"2025,CAR-ROC-US-2055-129-2284-PA-2025-8928-1 to 5937,5937,11/14/2025,CAR2055,ARB\n" +
			"2025,CAR-ROC-US-2055-129-2284-PA-2025-8928-5938 to 5940,3,11/14/2025,CAR2055,\n",
			[]want{{line: 2, count: 5937, date: ledger.Date(2025, 11, 14), status: StatusCancelled},
				{line: 3, count: 3, date: ledger.Date(2025, 11, 14), status: StatusCancelled}}},
		{"Verra dates and statuses", verraHeader +
			"2026-04-03,2020-01-01,2020-12-31,1340,\"1,710\",19368-940602844-940604553-VCS-VCU-1289-VER-VN-1-1975-01022023-31122023-0,,,,\n" +
			"2026-04-03,2020-01-01,2020-12-31,1340,10,1-11-20-VCS-VCU-1,2026-04-10,Acme,,\n" +
			"2026-04-03,2020-01-01,2020-12-31,1340,10,1-21-30-VCS-VCU-1,2026-04-10,,,\n" +
			"2026-04-03,2020-01-01,2020-12-31,1340,10,1-31-40-VCS-VCU-1,2026-04-10,,Cancelled for buffer,\n" +
			"04/03/2026,2020-01-01,2020-12-31,1340,10,1-41-50-VCS-VCU-1,2026-02-30,,,\n" +
			"2026-04-03,2020-01-01,2020-12-31,1340,10,CAR-1-US-1-2-3-KS-2025-9-1 to 10,,,,\n",
			[]want{{line: 2, count: 1710, date: ledger.Date(2026, 4, 3), status: StatusIssued},
				{line: 3, count: 10, date: ledger.Date(2026, 4, 10), status: StatusRetired},
				{line: 4, count: 10, date: ledger.Date(2026, 4, 10), status: StatusRetiredOrCancelled},
				{line: 5, count: 10, date: ledger.Date(2026, 4, 10), status: StatusCancelled},
				{line: 6, err: `Issuance Date "04/03/2026" is not a date in the registry's form YYYY-MM-DD; Retirement/Cancellation Date "2026-02-30" is not a date`},
				{line: 7, err: `"BLOCK-FIRST-LAST-VCS-..."`}}},
		{"Gold Standard statuses, dates and serials", gsHeader +
			"2025,Retired,10,11603,2026-03-31,2026-04-10,GS1-1-KE-GS11603-16-2025-30256-1-10,Voluntary,Acme,Note\n" +
			"2025,Canceled,10,11603,2026-03-31,,GS1-1-KE-GS11603-16-2025-30256-11-20,,,Cancelled for buffer\n" +
			"2025,Cancelled,10,11603,2026-03-31,2026-04-02,GS1-1-KE-GS11603-16-2025-30256-21-30,,,\n" +
			"2025,Issued,10,11603,2026-03-31T12:35:58.842275,,GS1-1-KE-GS11603-16-2025-30256-31-40,,,\n" +
			"2025,Pending,10,11603,2026-03-31,,GS1-1-KE-GS11603-16-2025-30256-41-50,,,\n" +
			"2025,Retired,10,11603,2026-03-31,,GS1-1-KE-GS11603-16-2025-30256-51-60,,,\n" +
			"2025,Retired,10,11603,2026-03-31T25:00:00,2026-04-10,GS1-1-KE-GS11603-16-2025-30256-61-70,,,\n" +
			"2025,Retired,10,11603,2026-03-31,2026-04-10,GS1-1-KE-GS11603-16-2025-30256-71,,,\n" +
			"2025,Retired,10,11603,2026-03-31,2026-04-10,RW-5-1-2-2-0-7014 - RW-5-10-2-2-0-7015,,,\n" +
			"2025,Retired,10,11603,2026-03-31,2026-04-10,CAR-1-US-1-2-3-KS-2025-9-1 to 10,,,\n" +
			"2025,Retired,9,11603,2026-03-31,2026-04-10,GS1-1-KE-GS11603-16-2025-30256-81-90,,,\n" +
			"2025,,10,11603,2026-03-31,2026-04-10,GS1-1-KE-GS11603-16-2025-30256-91-100,,,\n",
			[]want{{line: 2, count: 10, date: ledger.Date(2026, 4, 10), status: StatusRetired},
				{line: 3, count: 10, date: ledger.Date(2026, 3, 31), status: StatusCancelled},
				{line: 4, count: 10, date: ledger.Date(2026, 4, 2), status: StatusCancelled},
				{line: 5, count: 10, date: ledger.Date(2026, 3, 31), status: StatusIssued},
				{line: 6, err: `Credit Status "Pending" is not one of Issued, Retired, Canceled`},
				{line: 7, err: "Retirement Date is empty"},
				{line: 8, err: `Issuance Date "2026-03-31T25:00:00" is not a date in the registry's form YYYY-MM-DD (optionally with a time, THH:MM:SS)`},
				{line: 9, err: `Serial Number "GS1-1-KE-GS11603-16-2025-30256-71" is not a serial range in Gold Standard's form`},
				{line: 10, err: "joins serials of two series (RW-5-2-2-0-7014 and RW-5-2-2-0-7015"},
				{line: 11, err: `is not a serial range in the registry's form "GS1-...-BATCH-FIRST-LAST"`},
				{line: 12, count: 9, problem: "the quantity 9 disagrees with its serial range 81-90", date: ledger.Date(2026, 4, 10), status: StatusRetired},
				{line: 13, err: "Credit Status is empty"}}},
		{"a Gold Standard issuances export with a retired row", "Vintage,Credit Status,Quantity,GSID,Issuance Date,Serial Number\n" +
			"2025,Retired,10,11603,2026-03-31,GS1-1-KE-GS11603-16-2025-30256-1-10\n",
			[]want{{line: 2, err: `Credit Status "Retired" has no Retirement Date column in an issuances export`}}},
		{"header only", carHeader, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			exp, err := Parse(strings.NewReader(tt.input), "")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(exp.Records) != len(tt.want) {
				t.Fatalf("got %d records, want %d: %+v", len(exp.Records), len(tt.want), exp.Records)
			}
			for i, w := range tt.want {
				r := exp.Records[i]
				if r.Line != w.line {
					t.Errorf("record %d: line %d, want %d", i, r.Line, w.line)
				}
				if w.err != "" {
					if !strings.Contains(r.Err, w.err) {
						t.Errorf("line %d: error %q, want it to say %q", r.Line, r.Err, w.err)
					}
					continue
				}
				if r.Err != "" || r.Count != w.count || !r.Date.Equal(w.date) || r.Status != w.status || !strings.Contains(r.Problem, w.problem) || (w.problem == "") != (r.Problem == "") {
					t.Errorf("line %d: got err %q count %d date %v status %q problem %q, want count %d date %v status %q problem %q",
						r.Line, r.Err, r.Count, r.Date, r.Status, r.Problem, w.count, w.date, w.status, w.problem)
				}
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tt := range []struct {
		name, input, registry string
		kind                  error
		says                  []string
	}{
		{"unknown header", "Date,Amount,Memo\n2025-01-01,10,x\n", "", ErrUnknownExport,
			[]string{`the header ("Date", "Amount", "Memo"...) is none of`, "Climate Action Reserve retirements export", `"Offset Credit Serial Numbers"`, "Verra VCU transactions export"}},
		{"a header that lacks a column", "Serial Number,Quantity Issued,Issuance Date\n", "", ErrUnknownExport,
			[]string{"looks like a Verra VCU transactions export but lacks the column(s) \"Retirement/Cancellation Date\""}},
		{"empty file", "", "", ErrUnknownExport, []string{"the file is empty"}},
		{"another registry's export", verraHeader, "car", ErrWrongRegistry,
			[]string{"the file is a Verra VCU transactions export (registry verra), not an export of car"}},
		{"CAR issuances named verra", "Date Issued,Project ID,Vintage,Total Offset Credits Issued\n", "verra", ErrWrongRegistry,
			[]string{"Climate Action Reserve issuances export"}},
		{"a Gold Standard export named car", gsHeader, "car", ErrWrongRegistry,
			[]string{"the file is a Gold Standard retirements export (registry gold-standard), not an export of car"}},
		{"a Gold Standard header that lacks a column", "Vintage,Credit Status,Quantity,GSID,Serial Number,Retirement Date\n", "", ErrUnknownExport,
			[]string{`looks like a Gold Standard retirements export but lacks the column(s) "Issuance Date"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.input), tt.registry)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("got %v, want %v", err, tt.kind)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
	if _, err := Parse(strings.NewReader(carHeader), "gold-standard"); err == nil {
		t.Error("Parse with registry gold-standard: got no error")
	}
	for h, want := range map[string]Kind{
		carHeader: CARRetirements,
		"Vintage,Offset Credit Serial Numbers,Quantity of Offset Credits,Status Effective,Project ID,Cancellation Reason,Export Notes\n": CARCancellations,
		// the columns in another order still tell a cancellations report
		"Cancellation Reason,Status Effective,Quantity of Offset Credits,Offset Credit Serial Numbers\n": CARCancellations,
	} {
		if exp, err := Parse(strings.NewReader(h), "car"); err != nil || exp.Kind != want {
			t.Errorf("header %q: got %v, want a %s", h, err, want)
		}
	}
	for h, want := range map[string]Kind{
		gsHeader: GSRetirements,
		"Vintage,Credit Status,Quantity,GSID,Issuance Date,Serial Number\n": GSIssuances,
		// the columns in another order, and in another case
		"serial number,issuance date,gsid,quantity,retirement date,credit status\n": GSRetirements,
	} {
		if exp, err := Parse(strings.NewReader(h), "gold-standard"); err != nil || exp.Kind != want {
			t.Errorf("header %q: got %v, want a %s", h, err, want)
		}
	}
	if _, err := Parse(strings.NewReader(gsHeader), "isometric"); !errors.Is(err, ErrWrongRegistry) {
		t.Errorf("Parse of a Gold Standard file with registry isometric: got %v, want %v", err, ErrWrongRegistry)
	}
	if _, err := Parse(strings.NewReader(gsHeader), "acr"); err == nil || !strings.Contains(err.Error(), `registry "acr": exports of car, verra, gold-standard, isometric, puro are read`) {
		t.Errorf("Parse with registry acr: got %v", err)
	}
	if _, err := Parse(strings.NewReader(gsHeader), "puro"); !errors.Is(err, ErrWrongRegistry) {
		t.Errorf("Parse of a Gold Standard file with registry puro: got %v, want %v", err, ErrWrongRegistry)
	}
	for _, h := range []string{carHeader, verraHeader, "Date Issued,Project ID,Vintage,Total Offset Credits Issued\n"} {
		if _, err := Parse(strings.NewReader(h), ""); err != nil {
			t.Errorf("header %q: %v", h, err)
		}
	}
}

func TestParseCount(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""}, {"5000", 5000, ""}, {"28,571", 28571, ""}, {"1,454,054", 1454054, ""}, {"100.00", 100, ""},
		{"", 0, "is empty"}, {"1,23", 0, "not a whole number"}, {"12,3456", 0, "not a whole number"}, {",123", 0, "not a whole number"},
		{"1.5", 0, "not a whole number"}, {"-3", 0, "negative"}, {"1e3", 0, "not a whole number"}, {"9999999999999999", 0, "too large"},
	} {
		got, err := parseCount(tt.in)
		if tt.err == "" && (err != nil || got != tt.want) {
			t.Errorf("parseCount(%q): got %d, %v, want %d", tt.in, got, err, tt.want)
		}
		if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("parseCount(%q): got %d, %v, want an error saying %q", tt.in, got, err, tt.err)
		}
	}
}

func TestCARProjectVintage(t *testing.T) {
	for _, tt := range []struct {
		prefix, project, vintage string
		ok                       bool
	}{
		{"CAR-1-US-1335-31-983-KS-2025-9205", "CAR1335", "2025", true},
		{"CAR-1-MX-1642-34-101-CM-2024-9001", "CAR1642", "2024", true},
		{"VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0", "", "", false},
		{"CAR-1-US-X-31-983-KS-2025-9205", "", "", false},
		{"CAR-1-US", "", "", false},
	} {
		p, v, ok := carProjectVintage(tt.prefix)
		if p != tt.project || v != tt.vintage || ok != tt.ok {
			t.Errorf("carProjectVintage(%q): got %q %q %v, want %q %q %v", tt.prefix, p, v, ok, tt.project, tt.vintage, tt.ok)
		}
	}
}

// FuzzParse: whatever the input, CSV or JSON, Parse does not panic; a file it refuses is refused as not a
// known export; every row it reads is one record, in file order, with a line number after the
// header; a record read without error has a status, a date (a UTC day) and a quantity of
// whole credits, its serial range reads back from its label, and a quantity that disagrees
// with the range is its problem; naming the file's own registry reads the same records, and
// naming another refuses the file as another registry's; and reconciling the records accounts
// for each exactly once. Seeded with the head of every real export sample (each registry's
// headers, the ones read and the one not read yet) and with the rows of the edge cases.
func FuzzParse(f *testing.F) {
	f.Add(carHeader + "2025,CAR-1-US-1-2-3-KS-2025-9-1 to 5000,\"5,000\",10/27/2025,CAR1,x,Other,\n")
	f.Add("\xef\xbb\xbf" + verraHeader + "2026-04-03,2020-01-01,2020-12-31,1340,10,1-11-20-VCS-VCU-1,2026-04-10,Acme,,\r\n")
	f.Add("Date Issued,Project ID,Vintage,Total Offset Credits Issued\n03/19/2026,CAR2264,2026,\"9,166\"\n")
	f.Add(carHeader + "2025,\"CAR-1 to 2\n,3,\"\"\n")
	f.Add("a,b\n1,2\n")
	f.Add(gsHeader + "2025,Retired,10,11603,2026-03-31T12:00:00.5,2026-04-10,GS1-1-KE-GS11603-16-2025-30256-1-10,Voluntary,Acme,\"a\nb\"\n")
	f.Add(gsHeader + "2019,Canceled,133,4823,2026-03-26,,RW-5-1459975-2-2-0-7014 - RW-5-1460107-2-2-0-7014,,,Transferred\n")
	// Puro's JSON
	for _, file := range []string{"puro-certificates.json", "puro-transactions.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(`{"type": "Retirement", "completedOn": "2025-01-01", "volume": 3, "bundles": [{"certificates": "PURO_PR_X_FI_1_2024_u_1-2", "volume": 2}, 7]}`)
	f.Add(`[{"type": "Withdrawal", "completedOn": "2025-01-01T00:00:00Z", "withdrawalDetails": {"reason": 5}, "bundles": [{"certificates": null, "volume": "2"}]}, {"type"`)
	f.Add(gsHeader + "2025,Issued,5000,11603,2026-03-31,,CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000,,,\n")
	f.Add(carHeader + "2025,X:1-5,5,10/27/2025,CAR1,x,Other,\n")
	f.Add(verraHeader + "2026-04-03,2020-01-01,2020-12-31,1340,10,1-11-20-GS1-1-KE-GS11603-16-2025-30256-1-10,,,,\n")
	// The head of each real export: its header and first rows, cut at a record's end.
	entries, err := os.ReadDir(samplesDir(f))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".csv" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(samplesDir(f), e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		r := csv.NewReader(strings.NewReader(string(b)))
		r.FieldsPerRecord = -1
		for range 4 {
			if _, err := r.Read(); err != nil {
				break
			}
		}
		f.Add(string(b[:r.InputOffset()]))
	}
	f.Fuzz(func(t *testing.T, in string) {
		exp, err := Parse(strings.NewReader(in), "")
		if err != nil {
			if !errors.Is(err, ErrUnknownExport) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		json := exp.Kind == PuroCertificates || exp.Kind == PuroTransactions
		if exp.Registry != exp.Kind.Registry() || !slices.Contains(Registries, exp.Registry) {
			t.Fatalf("a %s read as registry %q", exp.Kind.Name(), exp.Registry)
		}
		last := 1
		if json {
			last = 0 // a JSON record may start on line 1, and records may share a line
		}
		for _, r := range exp.Records {
			if r.Line < last || (!json && r.Line == last) {
				t.Fatalf("record at line %d after line %d", r.Line, last)
			}
			last = r.Line
			if r.Registry != exp.Registry || r.Kind != exp.Kind {
				t.Fatalf("line %d: a record of %s %s in a %s", r.Line, r.Registry, r.Kind, exp.Kind)
			}
			if r.Err != "" {
				continue
			}
			want := ledger.TonnesFromKg(r.Count * 1000)
			if exp.Registry == "isometric" {
				want = ledger.TonnesFromKg(r.Count) // Isometric counts kilograms
			}
			if !r.Quantity.Equal(want) || r.Count < 0 {
				t.Fatalf("line %d: quantity %s for count %d", r.Line, r.Quantity, r.Count)
			}
			if r.Status == "" || r.Date.IsZero() || !r.Date.Equal(ledger.Date(r.Date.Date())) {
				t.Fatalf("line %d: read without error, with status %q and date %v", r.Line, r.Status, r.Date)
			}
			if r.HasSerials() {
				if back, err := ledger.ParseSerials(r.Serials.Label); err != nil || back != r.Serials {
					t.Fatalf("line %d: range %+v, whose label reads back as %+v, %v", r.Line, r.Serials, back, err)
				}
				// a Puro bundle may also have a problem of its transaction's (its volume)
				if r.Serials.Count() != r.Count && r.Problem == "" || !json && r.Serials.Count() == r.Count && r.Problem != "" {
					t.Fatalf("line %d: range %s, count %d, problem %q", r.Line, r.Serials, r.Count, r.Problem)
				}
			}
		}
		for _, reg := range append([]string{"acr"}, Registries...) {
			named, err := Parse(strings.NewReader(in), reg)
			switch {
			case reg == exp.Registry:
				if err != nil || !reflect.DeepEqual(named, exp) {
					t.Fatalf("read naming its registry %s: %v, want the same records as without", reg, err)
				}
			case reg == "acr":
				if err == nil || !strings.Contains(err.Error(), `registry "acr"`) {
					t.Fatalf("read naming registry acr, whose exports are not read: %v", err)
				}
			case !errors.Is(err, ErrWrongRegistry):
				t.Fatalf("a %s read naming registry %s: %v, want %v", exp.Kind.Name(), reg, err, ErrWrongRegistry)
			}
		}
		res := Reconcile(exp.Records, nil)
		if n := rowItems(res); n != len(exp.Records) {
			t.Fatalf("%d records, %d row items", len(exp.Records), n)
		}
	})
}

func TestCancelReasonOf(t *testing.T) {
	for in, want := range map[string]CancelReason{
		"ARB":                              CancelCompliance,
		"WA ECO":                           CancelCompliance,
		"Converted to compliance (CORSIA)": CancelCompliance,
		"Cancelled for transfer to another registry": CancelTransfer,
		"Transfer to Other Registry":                 CancelTransfer,
		"Cancelled for buffer":                       CancelBuffer,
		"Reversal":                                   CancelReversal,
		"Cancelled: reversed":                        CancelReversal,
		"":                                           CancelUnstated,
		"Other":                                      CancelUnstated,
		"barb wire":                                  CancelUnstated, // "arb" only as a word
	} {
		if got := cancelReasonOf(in); got != want {
			t.Errorf("cancelReasonOf(%q): got %q, want %q", in, got, want)
		}
	}
}

// TestParseRefusesUnreadSamplesNamingTheirRegistry: each real sample no reader knows yet is
// refused as not a known export, naming the registry and export it looks most like (never
// "a Verra VCU transactions export", which a Gold Standard file shares two columns with) and
// the columns each export that is read requires.
func TestParseRefusesUnreadSamplesNamingTheirRegistry(t *testing.T) {
	for _, tt := range []struct {
		file, looksLike, registry string
		has                       []string // columns of the file the message names as its evidence
	}{
		{"isometric-projects.csv", "an Isometric projects export", "isometric", []string{`"short_code"`, `"issued_credits_total.credit_kgs"`}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(samplePath(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			exp, err := Parse(f, "")
			if !errors.Is(err, ErrUnknownExport) {
				t.Fatalf("got %v (%v), want %v", exp, err, ErrUnknownExport)
			}
			msg := err.Error()
			for _, s := range append([]string{
				"the header looks most like " + tt.looksLike + " (registry " + tt.registry + ")",
				"which reconcile does not read yet",
				// the columns expected of the exports that are read
				`Climate Action Reserve retirements export (columns "Offset Credit Serial Numbers", "Quantity of Offset Credits", "Status Effective")`,
				`Verra VCU transactions export (columns "Serial Number", "Quantity Issued", "Issuance Date", "Retirement/Cancellation Date")`,
			}, tt.has...) {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not say %q", msg, s)
				}
			}
			if strings.Contains(msg, "looks like a Verra") || strings.Contains(msg, "looks most like a Verra") {
				t.Errorf("error %q takes the file for a Verra export", msg)
			}
		})
	}
}
