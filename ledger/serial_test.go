package ledger

import (
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSerials(t *testing.T) {
	tests := []struct {
		in    string
		want  SerialRange
		count int64
	}{
		{"CAR-1-MX-1234-22-101-2024:1-5000", SerialRange{Prefix: "CAR-1-MX-1234-22-101-2024", First: 1, Last: 5000, Label: "CAR-1-MX-1234-22-101-2024:1-5000"}, 5000},
		{"X:7-7", SerialRange{Prefix: "X", First: 7, Last: 7, Label: "X:7-7"}, 1},
		{"puro/BCR.2024_a:0-0", SerialRange{Prefix: "puro/BCR.2024_a", First: 0, Last: 0, Label: "puro/BCR.2024_a:0-0"}, 1},
		{"  X:1-2\n", SerialRange{Prefix: "X", First: 1, Last: 2, Label: "X:1-2"}, 2},
		{"X:000010-000019", SerialRange{Prefix: "X", First: 10, Last: 19, Label: "X:000010-000019"}, 10},
		{"X:1-999999999999999", SerialRange{Prefix: "X", First: 1, Last: 999999999999999, Label: "X:1-999999999999999"}, 999999999999999},
		// Climate Action Reserve's own form.
		{"CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000",
			SerialRange{Prefix: "CAR-1-US-1335-31-983-KS-2025-9205", First: 1, Last: 5000, Label: "CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000"}, 5000},
		{"CAR-1-US-1335-31-983-KS-2025-9659-43177 to 43276",
			SerialRange{Prefix: "CAR-1-US-1335-31-983-KS-2025-9659", First: 43177, Last: 43276, Label: "CAR-1-US-1335-31-983-KS-2025-9659-43177 to 43276"}, 100},
		// The American Carbon Registry's and ART's forms: "SERIES-FIRST to LAST" and "SERIES-FIRST-LAST".
		{"ACR-US-192-2010-203-1 to 5000", SerialRange{Prefix: "ACR-US-192-2010-203", First: 1, Last: 5000, Label: "ACR-US-192-2010-203-1 to 5000"}, 5000},
		{"ACR-US-192-2010-203-1-5000", SerialRange{Prefix: "ACR-US-192-2010-203", First: 1, Last: 5000, Label: "ACR-US-192-2010-203-1-5000"}, 5000},
		{"ART-TREES-GY-1-2017-101-200", SerialRange{Prefix: "ART-TREES-GY-1-2017", First: 101, Last: 200, Label: "ART-TREES-GY-1-2017-101-200"}, 100},
		{"ART-TREES-GY-1-2017-101 to 200", SerialRange{Prefix: "ART-TREES-GY-1-2017", First: 101, Last: 200, Label: "ART-TREES-GY-1-2017-101 to 200"}, 100},
		// Verra's own form: the block number leads, the series follows the range.
		{"19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",
			SerialRange{Prefix: "VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1", First: 941467007, Last: 941467431,
				Label: "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1"}, 425},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSerials(tt.in)
			if err != nil {
				t.Fatalf("ParseSerials(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseSerials(%q) (-want +got):\n%s", tt.in, diff)
			}
			if got.Count() != tt.count {
				t.Errorf("Count: got %d, want %d", got.Count(), tt.count)
			}
			if want := TonnesFromKg(tt.count * 1000); !got.Tonnes().Equal(want) {
				t.Errorf("Tonnes: got %s, want %s", got.Tonnes(), want)
			}
			if err := got.RequireCount(TonnesFromKg(tt.count * 1000)); err != nil {
				t.Errorf("RequireCount(%d): got %v, want nil", tt.count, err)
			}
			// The generic form of any range parses back to the same range.
			back, err := ParseSerials(got.String())
			if err != nil || back.Prefix != got.Prefix || back.First != got.First || back.Last != got.Last {
				t.Errorf("ParseSerials(String()=%q): got %+v, %v, want the same range", got.String(), back, err)
			}
		})
	}
}

func TestParseSerialsRejects(t *testing.T) {
	tests := []struct{ in, rule string }{
		{"", "is empty; write PREFIX:FIRST-LAST"},
		{"   ", "is empty"},
		{"X:5-1", "ends before it starts"},
		{"CAR-1-US-1335-31-983-KS-2025-9205-5000 to 1", "ends before it starts"},
		{"19385-941467431-941467007-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1", "ends before it starts"},
		{"hello", "is not a serial range"},
		{"X:1-", "is not a serial range"},
		{"X:-1-2", "is not a serial range"},
		{":1-2", "is not a serial range"},
		{"X:1", "is not a serial range"},
		{"X:1-2-3", "is not a serial range"},
		{"X:a-b", "is not a serial range"},
		{"X 1-2", "is not a serial range"},
		{"-X:1-2", "is not a serial range"},
		{"X:1 - 2", "is not a serial range"},
		{"X:" + strings.Repeat("9", 41) + "-" + strings.Repeat("9", 41), "is not a serial range"}, // 41 digits
		{"X:" + strings.Repeat("9", 39) + "-" + strings.Repeat("9", 39), "has a serial number of 39 digits (at most 38)"},
		{"X:999999999999999-1000000000000000", "spans more than one block of 10^15 serials (serial numbers wider than 15 digits are kept exact by the block they lie in): record it as one range per block, the first ending at 999999999999999"},
		{"X:1234567890123456-1234567890123455", "ends before it starts"},
		{"X:2000000000000000-1999999999999999", "ends before it starts"},
		{"CAR-1-US-1335-31-983-KS-2025-9205-1 - 5000", "is not a serial range"},
		{"CAR-1-US-1335-31-983-KS-2025-9205-1 to", "is not a serial range"},
		{"19385-941467007-941467431-GS-VER-1", "is not a serial range"},
		{"X:" + strings.Repeat("1", 299), "is too long (at most 300 characters)"},
		{strings.Repeat("P", 201) + ":1-2", "is not a serial range"}, // prefix over 200 characters
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSerials(tt.in)
			if err == nil {
				t.Fatalf("ParseSerials(%q): got %+v, want an error that %s", tt.in, got, tt.rule)
			}
			wantFieldError(t, err, "serials", ErrInvalid, tt.rule)
			if got != (SerialRange{}) {
				t.Errorf("ParseSerials(%q) on error: got %+v, want the zero range", tt.in, got)
			}
		})
	}
}

func TestSerialRangeContains(t *testing.T) {
	r := SerialRange{Prefix: "P", First: 100, Last: 199}
	tests := []struct {
		o    SerialRange
		want bool
	}{
		{SerialRange{Prefix: "P", First: 100, Last: 199}, true},
		{SerialRange{Prefix: "P", First: 100, Last: 100}, true},
		{SerialRange{Prefix: "P", First: 199, Last: 199}, true},
		{SerialRange{Prefix: "P", First: 120, Last: 150}, true},
		{SerialRange{Prefix: "P", First: 99, Last: 150}, false},
		{SerialRange{Prefix: "P", First: 150, Last: 200}, false},
		{SerialRange{Prefix: "P", First: 50, Last: 250}, false},
		{SerialRange{Prefix: "P", First: 300, Last: 400}, false},
		{SerialRange{Prefix: "Q", First: 120, Last: 150}, false},
		{SerialRange{Prefix: "", First: 120, Last: 150}, false},
	}
	for _, tt := range tests {
		if got := r.Contains(tt.o); got != tt.want {
			t.Errorf("%s.Contains(%s): got %v, want %v", r, tt.o, got, tt.want)
		}
	}
	if got := r.String(); got != "P:100-199" {
		t.Errorf("String: got %q, want P:100-199", got)
	}
}

func TestSerialRangeRequireCount(t *testing.T) {
	r, err := ParseSerials("CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RequireCount(tn("5000")); err != nil {
		t.Errorf("RequireCount(5000): got %v, want nil", err)
	}
	for _, s := range []string{"4999", "5001", "5000.001", "4999.999", "0", "-5000"} {
		err := r.RequireCount(tn(s))
		wantFieldError(t, err, "serials", ErrInvalid, "holds 5000 serials (both ends included) but the tonnes are "+tn(s).String(),
			"CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000")
	}
}

// registryExports is where the real registry export samples live, relative to this package.
const registryExports = "../testdata/registry-exports" // a copy of ../shared/data/registry-exports

// readExport reads a registry CSV export and returns, for each row, the values of the named
// columns.
func readExport(t *testing.T, file string, columns ...string) [][]string {
	t.Helper()
	path := filepath.Join(registryExports, file)
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s (the registry export samples, from %s): %v", path, mustWd(t), err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if len(records) < 2 {
		t.Fatalf("%s: got %d records, want a header and rows", path, len(records))
	}
	idx := make([]int, len(columns))
	for i, c := range columns {
		idx[i] = -1
		for j, h := range records[0] {
			if strings.TrimSpace(h) == c {
				idx[i] = j
			}
		}
		if idx[i] < 0 {
			t.Fatalf("%s: no column %q in header %q", path, c, records[0])
		}
	}
	var out [][]string
	for _, rec := range records[1:] {
		row := make([]string, len(columns))
		for i, j := range idx {
			row[i] = rec[j]
		}
		out = append(out, row)
	}
	return out
}

func mustWd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// TestRegistryExportSerials parses every serial range in the real Climate Action Reserve and
// Verra exports and checks that each range holds exactly the row's quantity.
func TestRegistryExportSerials(t *testing.T) {
	tests := []struct {
		file, serial, quantity string
		rows                   int
		prefix                 string
	}{
		{"car-retirements.csv", "Offset Credit Serial Numbers", "Quantity of Offset Credits", 100, "CAR-"},
		{"verra-transactions.csv", "Serial Number", "Quantity Issued", 200, "VCS-"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			rows := readExport(t, tt.file, tt.serial, tt.quantity)
			if len(rows) != tt.rows {
				t.Errorf("%s: got %d rows, want %d", tt.file, len(rows), tt.rows)
			}
			var total int64
			for i, row := range rows {
				serial, qty := row[0], row[1]
				want, err := strconv.ParseInt(strings.ReplaceAll(qty, ",", ""), 10, 64)
				if err != nil {
					t.Fatalf("row %d: quantity %q: %v", i+2, qty, err)
				}
				r, err := ParseSerials(serial)
				if err != nil {
					t.Errorf("row %d: ParseSerials(%q): %v", i+2, serial, err)
					continue
				}
				if r.Count() != want {
					t.Errorf("row %d: %q: got Count %d, want the row's quantity %d", i+2, serial, r.Count(), want)
				}
				if err := r.RequireCount(TonnesFromKg(want * 1000)); err != nil {
					t.Errorf("row %d: RequireCount(%d): %v", i+2, want, err)
				}
				if !strings.HasPrefix(r.Prefix, tt.prefix) || r.Label != serial {
					t.Errorf("row %d: got prefix %q label %q, want a %s prefix and the registry's text as label", i+2, r.Prefix, r.Label, tt.prefix)
				}
				total += r.Count()
			}
			if total <= 0 {
				t.Errorf("%s: got %d serials in all, want some", tt.file, total)
			}
		})
	}
}

// The serial state machine, without a database: what a block of serials may do next.
func TestSerialStateMachine(t *testing.T) {
	d := Date(2025, 3, 1)
	blk := func(first, last int64, contract string, st SerialState) SerialBlock {
		return SerialBlock{First: first, Last: last, Contract: contract, State: st, Entry: "e-" + contract, Date: d}
	}
	r := SerialRange{Prefix: "CAR", First: 10, Last: 19, Label: "CAR:10-19"}
	for _, tc := range []struct {
		name   string
		blocks []SerialBlock
		state  SerialState
		want   error  // nil: found
		rule   string // part of the reason
	}{
		{"held whole", []SerialBlock{blk(1, 30, "C", SerialDelivered)}, SerialDelivered, nil, ""},
		{"held exactly", []SerialBlock{blk(10, 19, "C", SerialDelivered)}, SerialDelivered, nil, ""},
		{"never delivered", nil, SerialDelivered, ErrInvalid, "were never delivered under contract C"},
		{"another contract's", []SerialBlock{blk(1, 30, "D", SerialDelivered)}, SerialDelivered, ErrConflict, "belong (in part) to contract D"},
		{"already retired", []SerialBlock{blk(1, 12, "C", SerialDelivered), blk(13, 30, "C", SerialRetired)}, SerialDelivered, ErrConflict, "already retired"},
		{"reversed", []SerialBlock{blk(1, 30, "C", SerialReversed)}, SerialDelivered, ErrConflict, "are (in part) reversed"},
		{"partly held", []SerialBlock{blk(12, 30, "C", SerialDelivered)}, SerialDelivered, ErrConflict, "only partly held"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FindSerialBlock(tc.blocks, "C", r, tc.state)
			if tc.want == nil {
				if err != nil || got.First > r.First || got.Last < r.Last {
					t.Fatalf("got %+v, %v; want the block holding %s", got, err, r.Label)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.rule) {
				t.Fatalf("got %v; want %v saying %q", err, tc.want, tc.rule)
			}
		})
	}
	if err := CheckSerialsFree([]SerialBlock{blk(15, 40, "D", SerialRetired)}, r); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "already delivered under contract D") {
		t.Errorf("delivering over a retired block: %v", err)
	}
	if err := CheckSerialsFree(nil, r); err != nil {
		t.Errorf("delivering fresh serials: %v", err)
	}
	for _, tc := range []struct {
		b    SerialBlock
		want [][2]int64
	}{
		{blk(10, 19, "C", SerialDelivered), nil},
		{blk(1, 19, "C", SerialDelivered), [][2]int64{{1, 9}}},
		{blk(10, 30, "C", SerialDelivered), [][2]int64{{20, 30}}},
		{blk(1, 30, "C", SerialDelivered), [][2]int64{{1, 9}, {20, 30}}},
	} {
		if got := tc.b.Rest(r); !slices.Equal(got, tc.want) {
			t.Errorf("block %d-%d less %s: %v, want %v", tc.b.First, tc.b.Last, r.Label, got, tc.want)
		}
	}
	if err := CheckRetireAfterDelivery(blk(1, 30, "C", SerialDelivered), r, d.AddDate(0, 0, -1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("retiring the day before delivery: %v, want ErrInvalid", err)
	}
	if err := CheckRetireAfterDelivery(blk(1, 30, "C", SerialDelivered), r, d); err != nil {
		t.Errorf("retiring on the day of delivery: %v", err)
	}
}

// TestParseGoldStandardSerials: real serial numbers of gold-standard-issuances.csv and
// gold-standard-retirements.csv, each with its row's quantity: the series is everything before
// the last two numbers, which are the inclusive range; the label is the text as written.
// Credits carried over from the CDM ("RW-5-... - RW-5-...") are two whole serials whose third
// field is the serial number.
func TestParseGoldStandardSerials(t *testing.T) {
	tests := []struct {
		in            string
		prefix        string
		first, last   int64
		count         int64 // the row's Quantity
		file, context string
	}{
		{"GS1-1-KE-GS11603-16-2025-30256-110-5463", "GS1-1-KE-GS11603-16-2025-30256", 110, 5463, 5354, "retirements", "line 2, Hilti"},
		{"GS1-1-KE-GS11603-16-2024-30255-485-12623", "GS1-1-KE-GS11603-16-2024-30255", 485, 12623, 12139, "retirements", "a range not from 1"},
		{"GS1-1-CR-GS2913-22-2025-30184-3-3", "GS1-1-CR-GS2913-22-2025-30184", 3, 3, 1, "retirements", "one credit"},
		{"GS1-1-CR-GS2913-22-2025-30184-1-1", "GS1-1-CR-GS2913-22-2025-30184", 1, 1, 1, "retirements", "the first credit"},
		{"GS1-1-ZW-GS12875-16-2023-29977-1-250382", "GS1-1-ZW-GS12875-16-2023-29977", 1, 250382, 250382, "retirements", "Canceled"},
		{"GS1-1-UG-GS11236-16-2024-30307-1-19149", "GS1-1-UG-GS11236-16-2024-30307", 1, 19149, 19149, "issuances", "line 2"},
		{"GS1-1-RW-GS7454-16-2024-30242-1-8683", "GS1-1-RW-GS7454-16-2024-30242", 1, 8683, 8683, "issuances", "Rwanda, not carried over"},
		{"RW-5-1463953-2-2-0-7014 - RW-5-1467609-2-2-0-7014", "RW-5-2-2-0-7014", 1463953, 1467609, 3657, "issuances", "carried over"},
		{"RW-5-1459975-2-2-0-7014 - RW-5-1460107-2-2-0-7014", "RW-5-2-2-0-7014", 1459975, 1460107, 133, "issuances", "carried over"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			want := SerialRange{Prefix: tt.prefix, First: tt.first, Last: tt.last, Label: tt.in}
			got, err := ParseSerials(tt.in)
			if err != nil {
				t.Fatalf("ParseSerials(%q) (%s, %s): %v", tt.in, tt.file, tt.context, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ParseSerials(%q) (-want +got):\n%s", tt.in, diff)
			}
			if got.Count() != tt.count {
				t.Errorf("Count: got %d, want the row's quantity %d", got.Count(), tt.count)
			}
			if err := got.RequireCount(TonnesFromKg(tt.count * 1000)); err != nil {
				t.Errorf("RequireCount(%d): %v", tt.count, err)
			}
			if err := got.RequireCount(TonnesFromKg((tt.count + 1) * 1000)); err == nil {
				t.Errorf("RequireCount(%d): got nil, want the count refused", tt.count+1)
			}
			// the generic form is the same range
			back, err := ParseSerials(got.String())
			if err != nil || back.Prefix != got.Prefix || back.First != got.First || back.Last != got.Last {
				t.Errorf("ParseSerials(String()=%q): got %+v, %v, want the same range", got.String(), back, err)
			}
			// surrounding space is not part of the label
			if pad, err := ParseSerials(" " + tt.in + "\t"); err != nil || pad != got {
				t.Errorf("ParseSerials with surrounding space: got %+v, %v, want %+v", pad, err, got)
			}
		})
	}
	// the carried-over ranges of one project are one series, so an overlap between them is seen
	a, _ := ParseSerials("RW-5-1460108-2-2-0-7014 - RW-5-1463952-2-2-0-7014")
	b, _ := ParseSerials("RW-5-1463953-2-2-0-7014 - RW-5-1467609-2-2-0-7014")
	if a.Prefix != b.Prefix || a.Last+1 != b.First {
		t.Errorf("carried-over ranges %+v and %+v: want one series, adjacent", a, b)
	}
}

func TestParseGoldStandardSerialsRejects(t *testing.T) {
	const gsRule = "is not a serial range in Gold Standard's form SERIES-FIRST-LAST, such as GS1-1-KE-GS11603-16-2025-30256-110-5463"
	tests := []struct{ in, rule string }{
		{"GS1-1-KE-GS11603-16-2025-30256-5463-110", "ends before it starts; the range is FIRST-LAST with FIRST <= LAST, both included"},
		{"GS1-1-KE-GS11603-16-2025-30256-110", gsRule},       // one number: no last serial
		{"GS1-1-KE-GS11603-16-2025-110-5463", gsRule},        // no issuance batch
		{"GS1-1-KE-GS11603-16-25-30256-110-5463", gsRule},    // a vintage of two digits
		{"GS1-1-KEN-GS11603-16-2025-30256-110-5463", gsRule}, // a country of three letters
		{"GS1-1-KE-11603-16-2025-30256-110-5463", gsRule},    // a project without GS
		{"GS1-1-KE-GS11603-16-2025-30256-110-5463x", gsRule},
		{"GS1-1-KE-GS11603-16-2025-30256-110 to 5463", gsRule},
		{"GS1-1-KE-GS11603-16-2025-30256-110 - 5463", gsRule},
		{"GS1-1-KE-GS11603-16-2025-30256--110-5463", gsRule},
		{"gs1-1-ke-gs11603-16-2025-30256-110-5463", gsRule},
		{"GS1-1-KE-GS11603-16-2025-30256-1-1234567890123456", "spans more than one block of 10^15 serials"},
		{"RW-5-1467609-2-2-0-7014 - RW-5-1463953-2-2-0-7014", "ends before it starts"},
		{"RW-5-1463953-2-2-0-7014 - RW-5-1467609-2-2-0-7015", "joins serials of two series (RW-5-2-2-0-7014 and RW-5-2-2-0-7015, the serial field left out)"},
		{"RW-5-1463953-2-2-0-7014 - UG-5-1467609-2-2-0-7014", "joins serials of two series"},
		{"RW-5-1463953-2-2-0-7014 - 1467609", `has a last serial "1467609" that is not a whole serial, in Gold Standard's form for carried-over credits`},
		{"RW-5-1463953 - RW-5-1467609-2-2-0-7014", `has a first serial "RW-5-1463953" that is not a whole serial`},
		{"RW-5-1463953-2-2-0-7014 - RW-5-12345678901234567-2-2-0-7014", "spans more than one block of 10^15 serials"},
		{"RW-5-1463953-2-2-0-7014-RW-5-1467609-2-2-0-7014", "is not a serial range: write PREFIX:FIRST-LAST"},
		{"RW-5-1463953-2-2-0-7014", "is not a serial range: write PREFIX:FIRST-LAST"}, // one serial, no range
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSerials(tt.in)
			if err == nil {
				t.Fatalf("ParseSerials(%q): got %+v, want an error that %s", tt.in, got, tt.rule)
			}
			wantFieldError(t, err, "serials", ErrInvalid, tt.rule)
			if got != (SerialRange{}) {
				t.Errorf("ParseSerials(%q) on error: got %+v, want the zero range", tt.in, got)
			}
		})
	}
}

// TestGoldStandardExportSerials parses every serial number of the real Gold Standard exports:
// each range holds exactly its row's Quantity, keeps the registry's text as its label, and its
// series names the row's own project (GSID) and vintage.
func TestGoldStandardExportSerials(t *testing.T) {
	for _, tt := range []struct {
		file              string
		rows, carriedOver int
	}{
		{"gold-standard-issuances.csv", 100, 3},
		{"gold-standard-retirements.csv", 100, 0},
	} {
		t.Run(tt.file, func(t *testing.T) {
			rows := readExport(t, tt.file, "Serial Number", "Quantity", "GSID", "Vintage")
			if len(rows) != tt.rows {
				t.Errorf("got %d rows, want %d", len(rows), tt.rows)
			}
			carried := 0
			for i, row := range rows {
				serial, qty, gsid, vintage := row[0], row[1], row[2], row[3]
				want, err := strconv.ParseInt(qty, 10, 64)
				if err != nil {
					t.Fatalf("row %d: quantity %q: %v", i+2, qty, err)
				}
				r, err := ParseSerials(serial)
				if err != nil {
					t.Errorf("row %d: ParseSerials(%q): %v", i+2, serial, err)
					continue
				}
				if r.Count() != want || r.Label != serial {
					t.Errorf("row %d: %q: got count %d label %q, want the row's quantity %d and its text", i+2, serial, r.Count(), r.Label, want)
				}
				if strings.HasPrefix(serial, "GS") {
					f := strings.Split(r.Prefix, "-")
					if len(f) != 7 || f[3] != "GS"+gsid || f[5] != vintage {
						t.Errorf("row %d: series %q does not name the row's project GS%s and vintage %s", i+2, r.Prefix, gsid, vintage)
					}
				} else {
					carried++
					if !strings.Contains(serial, " - ") || !strings.HasPrefix(r.Prefix, "RW-5-") {
						t.Errorf("row %d: %q read as %+v", i+2, serial, r)
					}
				}
			}
			if carried != tt.carriedOver {
				t.Errorf("got %d carried-over ranges, want %d", carried, tt.carriedOver)
			}
		})
	}
}

// TestSerialRangePiece: a piece of a delivered range is labelled in the registry's own form
// when that form names its ends alone, the whole range keeps its label exactly as written, and
// a form whose label cannot be rebuilt (Verra's block number) falls back to the generic form.
func TestSerialRangePiece(t *testing.T) {
	for _, c := range []struct {
		label       string
		first, last int64
		want        string
	}{
		{"CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000", 1, 5000, "CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000"},
		{"CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000", 1, 1000, "CAR-1-US-1335-31-983-KS-2025-9205-1 to 1000"},
		{"CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000", 1001, 5000, "CAR-1-US-1335-31-983-KS-2025-9205-1001 to 5000"},
		{"GS1-1-KE-GS11603-16-2025-30256-110-5463", 200, 300, "GS1-1-KE-GS11603-16-2025-30256-200-300"},
		{"RW-5-1459975-2-2-0-7014 - RW-5-1460107-2-2-0-7014", 1459980, 1460000, "RW-5-1459980-2-2-0-7014 - RW-5-1460000-2-2-0-7014"},
		{"19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1", 941467007, 941467100, "VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1:941467007-941467100"},
		{"19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1", 941467007, 941467431, "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1"},
		{"CAR-1-MX-1234-22-101-2024:1-5000", 10, 20, "CAR-1-MX-1234-22-101-2024:10-20"},
	} {
		r, err := ParseSerials(c.label)
		if err != nil {
			t.Fatalf("ParseSerials(%q): %v", c.label, err)
		}
		p := r.Piece(c.first, c.last)
		if p.Label != c.want || p.Prefix != r.Prefix || p.First != c.first || p.Last != c.last {
			t.Errorf("%q.Piece(%d, %d) = %+v, want label %q", c.label, c.first, c.last, p, c.want)
		}
	}
	// A range with no label known (recorded before labels were kept) shows the generic form.
	if got := (SerialRange{Prefix: "X", First: 1, Last: 9}).Piece(1, 9).Label; got != "X:1-9" {
		t.Errorf("unlabelled piece = %q, want X:1-9", got)
	}
}

// puroSeries is a Puro certificate series constructed from Puro's documented form
// PURO_PR_<type>_<country>_<facility>_<vintage>_<issuance uuid>_<first>-<last> (the
// registry-exports README, after docs.api.puro.earth), not copied from an export: the facility
// and uuid are made up.
const puroSeries = "PURO_PR_BIOCHAR_FI_CARBOFEX-NOKIA_2024_3f2b8c1e-6a4d-4e1b-9c7f-2d5e8a1b0c93"

// TestParsePuroSerials: Puro's certificate ranges (constructed from its documented form, not
// copied from an export) are the series, everything before the final _FIRST-LAST, then an
// inclusive range; the label is the text as written, and a piece is rebuilt in Puro's form.
func TestParsePuroSerials(t *testing.T) {
	const corc = "PURO_PR_CORC100+_SE_STOCKHOLM-EXERGI_2023_0b7e9d42-51c3-4f8a-a6e2-9d1c7b3e5f60"
	tests := []struct {
		in          string
		prefix      string
		first, last int64
	}{
		{puroSeries + "_1-100", puroSeries, 1, 100},
		{puroSeries + "_101-101", puroSeries, 101, 101},
		{corc + "_1-100", corc, 1, 100},
		{corc + "_0-0", corc, 0, 0},
		{puroSeries + "_000010-000019", puroSeries, 10, 19},
		{puroSeries + "_1-999999999999999", puroSeries, 1, 999999999999999}, // 15 digits
		{"PURO_PR_ENHANCED-WEATHERING_GB_UNDO-1_2025_c4e1a7b2-0d3f-4b6a-8e9c-1f2a3b4c5d6e_5001-7500",
			"PURO_PR_ENHANCED-WEATHERING_GB_UNDO-1_2025_c4e1a7b2-0d3f-4b6a-8e9c-1f2a3b4c5d6e", 5001, 7500},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			want := SerialRange{Prefix: tt.prefix, First: tt.first, Last: tt.last, Label: tt.in}
			got, err := ParseSerials(tt.in)
			if err != nil {
				t.Fatalf("ParseSerials(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ParseSerials(%q) (-want +got):\n%s", tt.in, diff)
			}
			if n := tt.last - tt.first + 1; got.RequireCount(TonnesFromKg(n*1000)) != nil {
				t.Errorf("RequireCount(%d): want nil", n)
			}
			// the generic form is the same range, '+' and all
			back, err := ParseSerials(got.String())
			if err != nil || back.Prefix != got.Prefix || back.First != got.First || back.Last != got.Last {
				t.Errorf("ParseSerials(String()=%q): got %+v, %v, want the same range", got.String(), back, err)
			}
			if pad, err := ParseSerials(" " + tt.in + "\n"); err != nil || pad != got {
				t.Errorf("ParseSerials with surrounding space: got %+v, %v, want %+v", pad, err, got)
			}
		})
	}

	// The generic form wins where the text has a ':'.
	for _, c := range []struct{ in, prefix string }{
		{puroSeries + ":1-100", puroSeries},
		{corc + ":1-100", corc},
		{puroSeries + "_1-100:5-10", puroSeries + "_1-100"},
	} {
		got, err := ParseSerials(c.in)
		if err != nil || got.Prefix != c.prefix || got.Label != c.in {
			t.Errorf("ParseSerials(%q) = %+v, %v; want the generic form, prefix %q", c.in, got, err, c.prefix)
		}
	}

	// Pieces are rebuilt in Puro's form, and parse back to exactly the piece.
	for _, c := range []struct {
		label       string
		first, last int64
		want        string
	}{
		{corc + "_1-100", 1, 100, corc + "_1-100"},
		{corc + "_1-100", 1, 40, corc + "_1-40"},
		{corc + "_1-100", 41, 100, corc + "_41-100"},
		{puroSeries + "_000010-000019", 12, 12, puroSeries + "_12-12"},
		{puroSeries + "_000010-000019", 10, 19, puroSeries + "_000010-000019"},
	} {
		r, err := ParseSerials(c.label)
		if err != nil {
			t.Fatalf("ParseSerials(%q): %v", c.label, err)
		}
		p := r.Piece(c.first, c.last)
		if p.Label != c.want || p.Prefix != r.Prefix || p.First != c.first || p.Last != c.last {
			t.Errorf("%q.Piece(%d, %d) = %+v, want label %q", c.label, c.first, c.last, p, c.want)
		}
		if q, err := ParseSerials(p.Label); err != nil || q.Prefix != p.Prefix || q.First != p.First || q.Last != p.Last {
			t.Errorf("piece label %q parses to %+v, %v; want the piece", p.Label, q, err)
		}
	}
	// Ranges of two issuances are two series, so equal numbers do not overlap.
	a, _ := ParseSerials(puroSeries + "_1-100")
	b, _ := ParseSerials(corc + "_1-100")
	if a.Prefix == b.Prefix {
		t.Errorf("two issuances share the series %q", a.Prefix)
	}
}

func TestParsePuroSerialsRejects(t *testing.T) {
	const puroRule = "is not a serial range in Puro's form SERIES_FIRST-LAST"
	legacy := "643002406000000001" + "000000000001" // an 18-digit GSRN, a 12-digit sequence
	legacyLast := "643002406000000001" + "000000000100"
	tests := []struct{ in, rule string }{
		{puroSeries + "_100-1", "ends before it starts; the range is FIRST-LAST with FIRST <= LAST, both included"},
		{puroSeries + "_1-1234567890123456", "spans more than one block of 10^15 serials"},
		{puroSeries + "_1-" + strings.Repeat("1", 39), "has a serial number of 39 digits (at most 38) in Puro's form"},
		{legacyLast + " - " + legacy, "ends before it starts"},
		{"643002406000000999999999999999 - 643002406000001000000000000000", "spans more than one block of 10^15 serials"},
		{puroSeries + "_1", puroRule},            // one number: no last serial
		{puroSeries + "_1-", puroRule},           // no last serial
		{puroSeries + "-1-100", puroRule},        // no '_' before the range
		{puroSeries + "_1 - 100", puroRule},      // spaces
		{puroSeries + "_1 to 100", puroRule},     // the Reserve's "to"
		{puroSeries + "__1-100", puroRule},       // an empty part
		{"PURO_1-100", puroRule},                 // no series after PURO_
		{"PURO__X_1-100", puroRule},              // an empty part
		{"PURO_PR_CORC100+:X_1-100", puroRule},   // a ':' the generic form does not take
		{"puro_pr_biochar_fi_x_1-100", puroRule}, // lower case
		{puroSeries + "_1-100x", puroRule},       // trailing text
		{"PURO_PR_X_" + strings.Repeat("A", 200) + "_1-2", "has a series of more than 200 characters"},
		{"PR_BIOCHAR_FI_X_2024_1-100", "is not a serial range: write PREFIX:FIRST-LAST"}, // not Puro's form
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSerials(tt.in)
			if err == nil {
				t.Fatalf("ParseSerials(%q): got %+v, want an error that %s", tt.in, got, tt.rule)
			}
			wantFieldError(t, err, "serials", ErrInvalid, tt.rule)
			if got != (SerialRange{}) {
				t.Errorf("ParseSerials(%q) on error: got %+v, want the zero range", tt.in, got)
			}
		})
	}
}

// TestParseWideSerials: serial numbers wider than 15 digits (Puro's legacy 30-digit serials
// among them) are kept exact: the digits above the last 15 join the series, so a range's
// generic form, its pieces and its label give back every digit, and two ranges of different
// high digits never share a series.
func TestParseWideSerials(t *testing.T) {
	legacy := "643002406000000001" + "000000000001" // an 18-digit GSRN, a 12-digit sequence
	legacyLast := "643002406000000001" + "000000000100"
	tests := []struct {
		in            string
		prefix        string
		first, last   int64
		count         int64
		generic, half string // String(), and the label of the piece first..first+count/2-1
	}{
		{legacy + " - " + legacyLast, "PURO#643002406000000", 1_000_000_000_001, 1_000_000_000_100, 100,
			"PURO:" + legacy + "-" + legacyLast, legacy + " - 643002406000000001000000000050"},
		{legacy + "-" + legacyLast, "PURO#643002406000000", 1_000_000_000_001, 1_000_000_000_100, 100,
			"PURO:" + legacy + "-" + legacyLast, legacy + "-643002406000000001000000000050"},
		{legacy, "PURO#643002406000000", 1_000_000_000_001, 1_000_000_000_001, 1, "PURO:" + legacy + "-" + legacy, ""},
		{puroSeries + "_" + legacy + "-" + legacyLast, puroSeries + "#643002406000000", 1_000_000_000_001, 1_000_000_000_100, 100,
			puroSeries + ":" + legacy + "-" + legacyLast, puroSeries + "_" + legacy + "-643002406000000001000000000050"},
		{"X:12345678901234567890123456789012345678-12345678901234567890123456789012345679", "X#12345678901234567890123", 456789012345678, 456789012345679, 2,
			"X:12345678901234567890123456789012345678-12345678901234567890123456789012345679", "X:12345678901234567890123456789012345678-12345678901234567890123456789012345678"},
		{"X:0001000000000000001-1000000000000010", "X#1", 1, 10, 10, "X:1000000000000001-1000000000000010", "X:1000000000000001-1000000000000005"},
		{"CAR-1-US-1-2024-1000000000000001 to 1000000000000010", "CAR-1-US-1-2024#1", 1, 10, 10,
			"CAR-1-US-1-2024:1000000000000001-1000000000000010", "CAR-1-US-1-2024-1000000000000001 to 1000000000000005"},
		{"GS1-1-KE-GS11603-16-2025-30256-1000000000000001-1000000000000010", "GS1-1-KE-GS11603-16-2025-30256#1", 1, 10, 10,
			"GS1-1-KE-GS11603-16-2025-30256:1000000000000001-1000000000000010", "GS1-1-KE-GS11603-16-2025-30256-1000000000000001-1000000000000005"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseSerials(tt.in)
			if err != nil {
				t.Fatalf("ParseSerials(%q): %v", tt.in, err)
			}
			want := SerialRange{Prefix: tt.prefix, First: tt.first, Last: tt.last, Label: tt.in}
			if diff := cmp.Diff(want, r); diff != "" {
				t.Errorf("ParseSerials(%q) (-want +got):\n%s", tt.in, diff)
			}
			if r.Count() != tt.count {
				t.Errorf("Count: got %d, want %d", r.Count(), tt.count)
			}
			if got := r.String(); got != tt.generic {
				t.Errorf("String: got %q, want %q", got, tt.generic)
			}
			back, err := ParseSerials(r.String())
			if err != nil || back.Prefix != r.Prefix || back.First != r.First || back.Last != r.Last {
				t.Errorf("ParseSerials(String()=%q): got %+v, %v, want the same range", r.String(), back, err)
			}
			if tt.half != "" {
				if got := r.Piece(r.First, r.First+tt.count/2-1).Label; got != tt.half {
					t.Errorf("Piece label: got %q, want %q", got, tt.half)
				}
			}
		})
	}
	// The same sequence number under two GSRNs is two serials; two blocks of 10^15 are two series.
	a, _ := ParseSerials(legacy)
	b, _ := ParseSerials("643002406000000002000000000001")
	if a.Prefix == b.Prefix && a.First == b.First {
		t.Errorf("serials of two GSRNs read as one: %+v", a)
	}
	c, _ := ParseSerials("643002406000001001000000000001")
	if a.Prefix == c.Prefix {
		t.Errorf("two blocks of 10^15 share the series %q", a.Prefix)
	}
}
