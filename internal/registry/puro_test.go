package registry

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

// The Puro files are hand-written from Puro's documented shape (see testdata/README.md): no
// real export of Puro's was at hand.
const (
	puroCertificatesFile = "puro-certificates.json"
	puroTransactionsFile = "puro-transactions.json"

	// the series of the two issuances the files tell of
	puroA = "PURO_PR_CORC100+_FI_577166_2024_0b6c1e52-4a7f-4c2e-9d15-3f8a2b7c9e01"
	puroB = "PURO_PR_CORC100+_SE_293847_2025_7d2f9a30-1c4b-4e8a-b6d2-5e9c0f1a2b34"
)

func puroPath(file string) string { return filepath.Join("testdata", file) }

// puroText is a Puro test file with some of its text replaced, each old text exactly once.
func puroText(t *testing.T, file string, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile(puroPath(file))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(replace); i += 2 {
		if n := strings.Count(s, replace[i]); n != 1 {
			t.Fatalf("%s has %q %d times, want once", file, replace[i], n)
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	return s
}

func puroParse(t *testing.T, text, registry string) *Export {
	t.Helper()
	exp, err := Parse(strings.NewReader(text), registry)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return exp
}

func puroRange(prefix string, first, last int64) ledger.SerialRange {
	return ledger.SerialRange{Prefix: prefix, First: first, Last: last, Label: prefix + "_" + itoa(first) + "-" + itoa(last)}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestParsePuroFiles: each file is told from its keys (and accepted with registry "puro"),
// and every bundle is one Record, exactly: an inclusive range within its issuance, its
// volume, status, date, beneficiary and the rest. The retirement of two bundles is two
// Records sharing its id, date and beneficiary; the hidden beneficiary is not stated, and the
// row says until when; the withdrawal is cancelled, with no reason given.
func TestParsePuroFiles(t *testing.T) {
	t100 := func(n int64) ledger.Tonnes { return ledger.TonnesFromKg(n * 1000) }
	for _, tt := range []struct {
		file string
		kind Kind
		want []Record
	}{
		{puroCertificatesFile, PuroCertificates, []Record{
			{Line: 8, Registry: "puro", Kind: PuroCertificates, Serials: puroRange(puroA, 1, 100), Count: 100, Quantity: t100(100),
				Status: StatusIssued, Date: ledger.Date(2024, 11, 5), Beneficiary: "Acme Buyer Oy", Project: "577166", Vintage: "2024"},
			{Line: 21, Registry: "puro", Kind: PuroCertificates, Serials: puroRange(puroA, 301, 450), Count: 150, Quantity: t100(150),
				Status: StatusIssued, Date: ledger.Date(2024, 11, 5), Beneficiary: "Nordic Offtake AB", Project: "577166", Vintage: "2024"},
		}},
		{puroTransactionsFile, PuroTransactions, []Record{
			{Line: 24, Registry: "puro", Kind: PuroTransactions, Serials: puroRange(puroA, 101, 200), Count: 100, Quantity: t100(100),
				Status: StatusRetired, Date: ledger.Date(2025, 3, 14), Beneficiary: "Kestrel Logistics Oy", Owner: "Nordic Offtake AB",
				Reason: "GENERIC_COMPENSATION", Details: "Compensation of 2024 business travel", Project: "577166", Vintage: "2024",
				ID: "5f0c2d8e-93b1-4a6e-8c47-1d2e3f4a5b6c"},
			{Line: 37, Registry: "puro", Kind: PuroTransactions, Serials: puroRange(puroB, 1, 60), Count: 60, Quantity: t100(60),
				Status: StatusRetired, Date: ledger.Date(2025, 3, 14), Beneficiary: "Kestrel Logistics Oy", Owner: "Nordic Offtake AB",
				Reason: "GENERIC_COMPENSATION", Details: "Compensation of 2024 business travel", Project: "293847", Vintage: "2025",
				ID: "5f0c2d8e-93b1-4a6e-8c47-1d2e3f4a5b6c"},
			{Line: 66, Registry: "puro", Kind: PuroTransactions, Serials: puroRange(puroA, 201, 240), Count: 40, Quantity: t100(40),
				Status: StatusRetired, Date: ledger.Date(2025, 6, 2), BeneficiaryHidden: "until 2026-05-31", Owner: "Acme Buyer Oy",
				Reason: "OTHER", Project: "577166", Vintage: "2024", ID: "6a1b3c5d-7e9f-4a2b-8c4d-6e8f0a2b4c6d"},
			{Line: 87, Registry: "puro", Kind: PuroTransactions, Serials: puroRange(puroA, 241, 300), Count: 60, Quantity: t100(60),
				Status: StatusCancelled, Date: ledger.Date(2025, 1, 20), Owner: "Example Biochar Producer Oy",
				Project: "577166", Vintage: "2024", ID: "7b2c4d6e-8f0a-4b3c-9d5e-7f9a1b3c5d7e"},
		}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			for _, reg := range []string{"", "puro"} {
				exp := parseFile(t, puroPath(tt.file), reg)
				if exp.Kind != tt.kind || exp.Registry != "puro" {
					t.Errorf("registry %q: kind %s, registry %s; want %s, puro", reg, exp.Kind, exp.Registry, tt.kind)
				}
				if len(exp.Records) != len(tt.want) {
					t.Fatalf("got %d records, want %d: %+v", len(exp.Records), len(tt.want), exp.Records)
				}
				for i, want := range tt.want {
					if got := exp.Records[i]; got != want {
						t.Errorf("record %d:\n got %+v\nwant %+v", i, got, want)
					}
				}
			}
		})
	}
	// a range unique only within its issuance: the same numbers of another issuance are
	// another series
	a, _ := ledger.ParseSerials(puroA + "_1-60")
	b, _ := ledger.ParseSerials(puroB + "_1-60")
	if a.Prefix == b.Prefix {
		t.Errorf("two issuances read as one series %s", a.Prefix)
	}
}

// TestParsePuroShapes: the same records read alike as a bare array, as the API's page
// {"pagination", "data"} and, for one transaction, alone (the API's transaction by id).
func TestParsePuroShapes(t *testing.T) {
	tx := `{"id": "t1", "type": "Retirement", "completedOn": "2025-03-14T23:59:59+02:00", "volume": 5,
  "retirementDetails": {"beneficiaryName": "Kestrel Logistics Oy"},
  "bundles": [{"certificates": "` + puroA + `_1-5", "volume": 5}]}`
	for name, text := range map[string]string{
		"alone": tx, "array": "[" + tx + "]", "page": `{"pagination": {"total": 1}, "data": [` + tx + `], "extra": 1}`,
		"bom and spaces": "\xef\xbb\xbf \n[" + tx + "]\n",
	} {
		exp := puroParse(t, text, "")
		if exp.Kind != PuroTransactions || len(exp.Records) != 1 {
			t.Fatalf("%s: %s, %d records", name, exp.Kind, len(exp.Records))
		}
		r := exp.Records[0]
		// the instant's day in UTC: 23:59:59 at +02:00 is 21:59:59 UTC
		if r.Err != "" || r.Serials != puroRange(puroA, 1, 5) || r.Beneficiary != "Kestrel Logistics Oy" || r.Date != ledger.Date(2025, 3, 14) ||
			r.ID != "t1" || r.Project != "577166" || r.Vintage != "2024" {
			t.Errorf("%s: %+v", name, r)
		}
	}
	// the Registry API names the transaction's id transactionId
	exp := puroParse(t, strings.Replace(tx, `"id"`, `"transactionId"`, 1), "puro")
	if exp.Records[0].ID != "t1" {
		t.Errorf("transactionId: %+v", exp.Records[0])
	}
}

// TestParsePuroStatuses: a transaction's type is mapped explicitly. A withdrawal is cancelled
// for the reason its withdrawalDetails give, if any; an issuance or a transfer is read but not
// compared (its bundles are unreadable, saying why), and a file of only those is refused; an
// unknown type is an error naming the types read.
func TestParsePuroStatuses(t *testing.T) {
	tx := func(typ, details string, first, last int64) string {
		n := itoa(last - first + 1)
		return `{"id": "` + typ + `", "type": "` + typ + `", "completedOn": "2025-01-20T08:00:00Z", "volume": ` + n + `, ` + details +
			` "bundles": [{"certificates": "` + puroA + `_` + itoa(first) + `-` + itoa(last) + `", "volume": ` + n + `}]}`
	}
	exp := puroParse(t, "["+strings.Join([]string{
		tx("Withdrawal", `"withdrawalDetails": {"reason": "Reversal: stored biochar lost to fire"},`, 1, 10),
		tx("Withdrawal", `"withdrawalDetails": "Transferred to another registry",`, 11, 20),
		tx("Withdrawal", `"withdrawalDetails": null,`, 21, 30),
		tx("Issuance", "", 31, 40),
		tx("Transfer", "", 41, 50),
		tx("InternalTransfer", "", 51, 60),
		tx("retirement", `"retirementDetails": {"beneficiaryName": "Acme"},`, 61, 70),
		tx("Burn", "", 71, 80),
	}, ",\n")+"]", "puro")
	for i, want := range []struct {
		status Status
		reason string
		cancel CancelReason
		err    string
	}{
		{StatusCancelled, "Reversal: stored biochar lost to fire", CancelReversal, ""},
		{StatusCancelled, "Transferred to another registry", CancelTransfer, ""},
		{StatusCancelled, "", CancelUnstated, ""},
		{"", "", "", "is a bundle of an Issuance transaction, which says when credits were issued, not where they stand now; it is not compared"},
		{"", "", "", "is a bundle of a Transfer transaction, which says when credits were moved"},
		{"", "", "", "is a bundle of an InternalTransfer transaction"},
		{StatusRetired, "", "", ""},
		{"", "", "", `type "Burn" is not one of Retirement, Withdrawal (compared) or Issuance, Transfer, InternalTransfer (not compared)`},
	} {
		r := exp.Records[i]
		if r.Line != i+1 || r.Status != want.status || r.Reason != want.reason || r.Cancellation != want.cancel ||
			(want.err == "") != (r.Err == "") || !strings.Contains(r.Err, want.err) {
			t.Errorf("record %d: %+v, want %+v", i, r, want)
		}
	}
	// a cancellation is never a retirement
	for _, r := range exp.Records[:3] {
		if r.agrees(StateRetired) {
			t.Errorf("%+v agrees with retired", r)
		}
	}

	_, err := Parse(strings.NewReader("["+tx("Issuance", "", 1, 10)+","+tx("Transfer", "", 11, 20)+"]"), "")
	if !errors.Is(err, ErrUnknownExport) || !strings.Contains(err.Error(), "the file is a list of Puro Issuance and Transfer transactions, which reconcile does not read") ||
		!strings.Contains(err.Error(), "give Puro's certificates list (the bundles still held) or its retirements") {
		t.Errorf("a list of issuances: %v", err)
	}
}

// TestParsePuroHiddenBeneficiary: a beneficiary Puro hides (absent, null, empty, or the word
// "hidden") is not stated, and never compared; a hidden-until date is kept to say so. A name
// stated while a hidden-until date is set is stated.
func TestParsePuroHiddenBeneficiary(t *testing.T) {
	row := func(details string) Record {
		t.Helper()
		exp := puroParse(t, `[{"id": "t", "type": "Retirement", "completedOn": "2025-06-02T15:00:00Z", "accountHolderName": "Acme Buyer Oy",
  "retirementDetails": `+details+`, "bundles": [{"certificates": "`+puroA+`_201-240", "volume": 40}]}]`, "puro")
		return exp.Records[0]
	}
	for details, want := range map[string][2]string{
		`{"beneficiaryHiddenUntil": "2026-05-31T00:00:00.000Z"}`:                              {"", "until 2026-05-31"},
		`{"beneficiaryName": null, "beneficiaryHiddenUntil": "2026-05-31"}`:                   {"", "until 2026-05-31"},
		`{"beneficiaryName": "", "beneficiaryHiddenUntil": "sometime"}`:                       {"", "until sometime"},
		`{"beneficiaryName": "Hidden", "beneficiaryHiddenUntil": null}`:                       {"", ""},
		`{"beneficiaryName": " hidden "}`:                                                     {"", ""},
		`null`:                                                                                {"", ""},
		`{"beneficiaryName": "Kestrel Logistics Oy", "beneficiaryHiddenUntil": "2026-05-31"}`: {"Kestrel Logistics Oy", ""},
	} {
		r := row(details)
		if r.Err != "" || r.Beneficiary != want[0] || r.BeneficiaryHidden != want[1] || r.Owner != "Acme Buyer Oy" {
			t.Errorf("%s: beneficiary %q, hidden %q (%s), want %q", details, r.Beneficiary, r.BeneficiaryHidden, r.Err, want)
		}
		name, _, why := r.registryBeneficiary()
		switch {
		case want[0] != "" && name != want[0]:
			t.Errorf("%s: the row's beneficiary is %q", details, name)
		case want[0] == "" && want[1] != "" && (name != "" || why != "the registry hides the beneficiary "+want[1]+", as its beneficiaryHiddenUntil says"):
			t.Errorf("%s: %q, %q", details, name, why)
		case want[0] == "" && want[1] == "" && (name != "" || why != `the row's retirementDetails.beneficiaryName is empty (account holder "Acme Buyer Oy")`):
			t.Errorf("%s: %q, %q", details, name, why)
		}
	}
}

// TestParsePuroRefusesRows: a bundle or transaction that cannot be read is one Record with Err
// and its line, naming the field; the others are read. A transaction of no bundles is one
// Record; one whose volume is not its bundles' sum is read with a Problem on each bundle; a
// bundle whose volume is not its range's size likewise.
func TestParsePuroRefusesRows(t *testing.T) {
	b := func(serials, volume string) string {
		return `{"certificates": ` + serials + `, "volume": ` + volume + `}`
	}
	tx := func(fields string, bundles ...string) string {
		return `{"id": "t", "type": "Retirement", "completedOn": "2025-03-14T09:21:07Z", ` + fields + `"bundles": [` + strings.Join(bundles, ",\n") + `]}`
	}
	good := b(`"`+puroA+`_1-10"`, "10")
	text := "[\n" + strings.Join([]string{
		tx(``, good),                          // 2
		tx(``, b(`"`+puroA+`_11-20"`, `"x"`)), // 3
		tx(``, b(`"CAR-1-US-1335-31-983-KS-2025-9205-1 to 10"`, "10")),                                                                   // 4
		tx(``, b(`"PURO_PR_CORC_FI_577166_2020_643002406555908611000000000000000000001-643002406555908611000000000000000000010"`, "10")), // 5
		tx(`"volume": 25, `, b(`"`+puroA+`_21-30"`, "10"),
			b(`"`+puroA+`_31-45"`, "15")), // 6, 7
		tx(`"volume": 30, `, b(`"`+puroA+`_46-55"`, "10"),
			b(`"`+puroA+`_56-75"`, "20")), // 8, 9
		tx(``),                              // 10
		tx(``, `"x"`),                       // 11
		tx(``, b(`"`+puroA+`_76-80"`, "6")), // 12
		`{"id": "u", "type": "Retirement", "completedOn": "14/03/2025", "bundles": [` + good + `]}`, // 13
		`{"certificates": "` + puroA + `_1-10", "volume": 10}`,                                      // 14
		`42`,                                  // 15
		tx(``, b(`"`+puroA+`_81-90"`, "-10")), // 16
		tx(``, b(`null`, "10")),               // 17
	}, ",\n") + "\n]\n"
	exp := puroParse(t, text, "puro")
	want := []struct {
		line         int
		err, problem string
	}{
		{2, "", ""},
		{3, `bundles[0].volume "x" is not a whole number of credits`, ""},
		{4, `bundles[0].certificates "CAR-1-US-1335-31-983-KS-2025-9205-1 to 10" is not a serial range in the registry's form "PURO_PR_<credit type>_<country>_<facility>_<vintage>_<issuance uuid>_FIRST-LAST"`, ""},
		{5, "has a serial number of 39 digits (at most 38)", ""},
		{6, "", ""},
		{7, "", ""},
		{8, "", ""},
		{9, "", ""},
		{10, "bundles is empty: the transaction names no certificate bundle", ""},
		{11, "bundles[0] is text, not a certificate bundle (a JSON object)", ""},
		{12, "", "the quantity 6 disagrees with its serial range 76-80, which holds 5 serials (both ends included)"},
		{13, `completedOn "14/03/2025" is not a date in the registry's form YYYY-MM-DD or RFC 3339`, ""},
		{14, "is a certificate bundle, not a transaction", ""},
		{15, "is a number, not a transaction (a JSON object)", ""},
		{16, "bundles[0].volume -10 is negative", ""},
		{17, "bundles[0].certificates is empty", ""},
	}
	if len(exp.Records) != len(want) {
		t.Fatalf("got %d records, want %d: %+v", len(exp.Records), len(want), exp.Records)
	}
	for i, w := range want {
		r := exp.Records[i]
		if r.Line != w.line || (w.err == "") != (r.Err == "") || !strings.Contains(r.Err, w.err) {
			t.Errorf("record %d: line %d, error %q; want line %d, error %q", i, r.Line, r.Err, w.line, w.err)
		}
		if (w.problem == "") != (r.Problem == "") || !strings.Contains(r.Problem, w.problem) {
			t.Errorf("record %d (line %d): problem %q, want %q", i, r.Line, r.Problem, w.problem)
		}
	}
	// the transaction of lines 8 and 9 says 30 of its bundles' 30; said 31, both its bundles
	// say so, and the others nothing
	exp = puroParse(t, strings.Replace(text, `"volume": 30, `, `"volume": 31, `, 1), "puro")
	for _, r := range exp.Records[6:8] {
		if r.Problem != "the transaction's volume 31 is not the sum of its 2 bundles' volumes (30)" {
			t.Errorf("line %d: problem %q", r.Line, r.Problem)
		}
	}
	for _, r := range exp.Records[4:6] {
		if r.Problem != "" || r.Err != "" {
			t.Errorf("line %d: %+v", r.Line, r)
		}
	}
}

// TestParsePuroBrokenJSON: a list that stops being JSON midway keeps the records before the
// break, and the rest is one unreadable Record naming the line; a file that is not JSON from
// the start, or has more after its value (JSON lines), or is empty, is refused.
func TestParsePuroBrokenJSON(t *testing.T) {
	text := puroText(t, puroTransactionsFile, `"type": "Withdrawal",`, `"type": "Withdrawal"`)
	exp := puroParse(t, text, "")
	if len(exp.Records) != 4 {
		t.Fatalf("got %d records: %+v", len(exp.Records), exp.Records)
	}
	for _, r := range exp.Records[:3] {
		if r.Err != "" {
			t.Errorf("line %d: %s", r.Line, r.Err)
		}
	}
	last := exp.Records[3]
	if last.Line != 77 || !strings.Contains(last.Err, "is not valid JSON (line 80:") || !strings.Contains(last.Err, "the rest of the file, to line 99, could not be read") {
		t.Errorf("the break: line %d, %q", last.Line, last.Err)
	}

	for name, tt := range map[string]struct{ text, says string }{
		"not JSON":   {"[{\"type\": Retirement}]", "the file is not valid JSON (line 1:"},
		"JSON lines": {`{"type": "Retirement", "completedOn": "2025-01-01", "bundles": []}` + "\n" + `{"type": "Retirement"}` + "\n", "more follows the file's JSON value, which ends on line 1"},
		"empty list": {"[]", "the JSON list is empty: no record to tell its kind by"},
		"a string":   {`["x"]`, "the first JSON record is text, not an object"},
		"cut short":  {`[{"certificates": "x"`, "the file ends inside a JSON value"},
	} {
		_, err := Parse(strings.NewReader(tt.text), "")
		if !errors.Is(err, ErrUnknownExport) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: %v, want %q", name, err, tt.says)
		}
	}
}

// TestParseRefusesUnknownJSON: a JSON file no reader knows is refused naming the keys each
// JSON export requires and the export it looks most like, with its registry: a Puro list that
// is not read, a Puro list that lacks a key, or a CSV export's columns as nested keys
// (Isometric's API, which reconcile reads as CarbonPlan's CSV). A CSV header with Puro's keys
// is told it is read as JSON. A Puro file named as another registry's is refused as such.
func TestParseRefusesUnknownJSON(t *testing.T) {
	wantKeys := []string{
		`a Puro JSON transactions list (keys "type", "completedOn", "bundles", each bundle with "certificates", "volume")`,
		`a Puro JSON certificates list (keys "certificates", "volume")`,
	}
	for _, tt := range []struct {
		name, text, registry string
		kind                 error
		says                 []string
	}{
		{"unknown keys", `[{"date": "2025-01-01", "amount": 10}]`, "", ErrUnknownExport,
			append([]string{`the JSON records' keys ("date", "amount"...) are none of`}, wantKeys...)},
		{"Puro's projects", `{"data": [{"projectId": "227253", "code": "227253", "gsrn": "643002406801000848", "name": "X", "countryCode": "PH",
		  "supplierName": "Y", "methodologyCode": "C03000000", "creditingPeriodStart": "2022-06-10"}]}`, "", ErrUnknownExport,
			append([]string{"the JSON records look most like a Puro projects list (registry puro), which reconcile does not read", `"creditingPeriodStart"`}, wantKeys...)},
		{"a transaction without its date", `[{"id": "t", "type": "Retirement", "volume": 5, "accountHolderName": "A", "bundles": []}]`, "", ErrUnknownExport,
			[]string{`the JSON records look like a Puro JSON transactions list but lack the key(s) "completedOn"`}},
		{"Isometric's API", `[{"retirement_id": "ret_1", "retired_at": "2026-04-09T18:21:22Z", "project_id": "prj_1",
		  "credit_batch_size_total": {"credits": 531.0, "credit_kgs": 531000}, "beneficiary": {"name": "Workday"}}]`, "", ErrUnknownExport,
			append([]string{"the JSON records have the fields of an Isometric retirements export (registry isometric", `"beneficiary.name"`,
				"which reconcile reads as CSV, not JSON"}, wantKeys...)},
		{"Puro's JSON named verra", "", "verra", ErrWrongRegistry,
			[]string{"the file is a Puro JSON transactions list (registry puro), not an export of verra"}},
		{"a CSV with Puro's keys", "certificates,volume,accountHolderName\n" + puroA + "_1-2,2,A\n", "", ErrUnknownExport,
			[]string{`the header has the keys of a Puro JSON certificates list (registry puro: "certificates", "volume", "accountHolderName"), which reconcile reads as JSON, not CSV`}},
		{"a CSV of nothing known", "Date,Amount\n", "", ErrUnknownExport,
			append([]string{"Puro's exports are read as JSON"}, wantKeys...)},
		{"a Gold Standard CSV named puro", gsHeader, "puro", ErrWrongRegistry,
			[]string{"the file is a Gold Standard retirements export (registry gold-standard), not an export of puro"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.text
			if text == "" {
				text = puroText(t, puroTransactionsFile)
			}
			_, err := Parse(strings.NewReader(text), tt.registry)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("got %v, want %v", err, tt.kind)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "looks most like a Verra") || strings.Contains(err.Error(), "look most like a Verra") {
				t.Errorf("error %q takes the file for a Verra export", err)
			}
		})
	}
}

// puroLedger is a ledger that holds what the Puro files show, each block in the state the
// registry shows it: the active bundles delivered, the retired ones retired on the registry's
// day for its beneficiary, the withdrawn ones reversed.
func puroLedger() []LedgerRange {
	block := func(contract, prefix string, first, last int64, state string, date time.Time, ben string) LedgerRange {
		l := LedgerRange{Contract: contract, Registry: "puro", Prefix: prefix, First: first, Last: last, State: state,
			Entry: "e-" + contract + "-" + itoa(first), Date: date}
		if state == StateRetired {
			l.Retirement = &Retirement{Beneficiary: ben, Reason: "generic compensation"}
		}
		return l
	}
	return []LedgerRange{
		block("ACME", puroA, 1, 100, StateDelivered, ledger.Date(2024, 12, 1), ""),
		block("NORDIC", puroA, 301, 450, StateDelivered, ledger.Date(2024, 12, 1), ""),
		// one retirement, two blocks of two issuances
		block("NORDIC", puroA, 101, 200, StateRetired, ledger.Date(2025, 3, 14), "Kestrel Logistics Oy"),
		block("NORDIC", puroB, 1, 60, StateRetired, ledger.Date(2025, 3, 14), "kestrel logistics  oy"),
		// the beneficiary the registry hides: the ledger's is not compared with it
		block("ACME", puroA, 201, 240, StateRetired, ledger.Date(2025, 6, 2), "Secret Beneficiary Ltd"),
		block("ACME", puroA, 241, 300, StateReversed, ledger.Date(2025, 1, 20), ""),
	}
}

// TestReconcilePuro: both Puro files against a ledger that holds what they show all match,
// each bundle its own row (the retirement of two bundles, of two issuances, matches two ledger
// retirements; the hidden beneficiary is not compared, and the row says the registry hides it;
// the withdrawal matches a reversal); the ledger blocks a file does not list are not in it.
// Then one fact changed at a time, in the file or in the ledger: exactly that row is reported,
// naming what differs.
func TestReconcilePuro(t *testing.T) {
	type change struct {
		name, file string
		replace    []string // in the file
		ledger     func([]LedgerRange)
		line       int
		class      Class
		fields     []string // the retirement facts that differ
		says       string
	}
	setBen := func(entry, ben string) func([]LedgerRange) {
		return func(ls []LedgerRange) {
			for i := range ls {
				if ls[i].Entry == entry {
					ls[i].Retirement.Beneficiary = ben
				}
			}
		}
	}
	for _, tt := range []change{
		{name: "certificates, all matched", file: puroCertificatesFile},
		{name: "transactions, all matched", file: puroTransactionsFile},
		{name: "a quantity", file: puroTransactionsFile,
			replace: []string{`"volume": 160`, `"volume": 159`, `"volume": 60,
        "methodologyCode": "C07000000"`, `"volume": 59,
        "methodologyCode": "C07000000"`},
			line: 37, class: Disagrees, fields: []string{FieldQuantity},
			says: "the quantity 59 disagrees with its serial range 1-60, which holds 60 serials"},
		{name: "a beneficiary", file: puroTransactionsFile, ledger: setBen("e-NORDIC-101", "Kestrel Logistik GmbH"),
			line: 24, class: Disagrees, fields: []string{FieldBeneficiary},
			says: `beneficiary: the registry "Kestrel Logistics Oy", the ledger "Kestrel Logistik GmbH"`},
		{name: "a hidden beneficiary is not compared", file: puroTransactionsFile, ledger: setBen("e-ACME-201", "Anyone Else Ltd")},
		{name: "a date", file: puroTransactionsFile, ledger: func(ls []LedgerRange) { ls[3].Date = ledger.Date(2025, 3, 15) },
			line: 37, class: Disagrees, fields: []string{FieldDate}, says: `date: the registry "2025-03-14", the ledger "2025-03-15"`},
		{name: "a state: the withdrawal retired in the ledger", file: puroTransactionsFile,
			ledger: func(ls []LedgerRange) {
				ls[5].State, ls[5].Retirement = StateRetired, &Retirement{Beneficiary: "Acme Buyer Oy"}
			},
			line: 87, class: Disagrees, says: "the registry cancelled these serials (no reason given), it did not retire them; the ledger retired them (contract ACME, entry e-ACME-241, serials 241-300): a cancellation is not a retirement"},
		{name: "a state: an active bundle retired in the ledger", file: puroCertificatesFile,
			ledger: func(ls []LedgerRange) { ls[0].State = StateRetired },
			line:   8, class: Disagrees, says: "state differs: the registry shows them issued, the ledger has 1-100 retired (contract ACME, entry e-ACME-1)"},
		{name: "a serial", file: puroCertificatesFile,
			replace: []string{`_301-450",
      "volume": 150`, `_301-449",
      "volume": 149`},
			line: 21, class: Disagrees, says: "ledger block 301-450 (contract NORDIC, delivered) extends beyond the row's 301-449"},
		{name: "the same numbers of another issuance", file: puroTransactionsFile,
			ledger: func(ls []LedgerRange) { ls[3].Prefix = puroA },
			line:   37, class: RegistryOnly, says: "the ledger holds no serial of series " + puroB},
	} {
		t.Run(tt.name, func(t *testing.T) {
			exp := puroParse(t, puroText(t, tt.file, tt.replace...), "puro")
			ranges := puroLedger()
			if tt.ledger != nil {
				tt.ledger(ranges)
			}
			res := Reconcile(exp.Records, ranges)
			items := byLine(t, exp.Records, res)
			for line, it := range items {
				want := Matched
				if line == tt.line {
					want = tt.class
				}
				if it.Class != want {
					t.Errorf("line %d: %s (%s), want %s", line, it.Class, it.Detail, want)
				}
			}
			if tt.line != 0 {
				it := items[tt.line]
				if !strings.Contains(it.Detail, tt.says) {
					t.Errorf("line %d: detail %q does not say %q", tt.line, it.Detail, tt.says)
				}
				var fields []string
				for _, f := range it.Differences() {
					fields = append(fields, f.Field)
				}
				if strings.Join(fields, ",") != strings.Join(tt.fields, ",") {
					t.Errorf("line %d: differing facts %v, want %v", tt.line, fields, tt.fields)
				}
			} else if !res.OK() {
				t.Errorf("not OK: %+v", res.Totals)
			}
			// the ledger's blocks the file does not list: held ones against the transactions,
			// retired and reversed ones against the certificates
			wantTail := map[Kind]int{PuroCertificates: 4, PuroTransactions: 2}[exp.Kind]
			if tt.name == "the same numbers of another issuance" {
				// the block of the other issuance is retired, which the transactions list
				// would show: in the ledger only
				if got := res.Total(LedgerOnly); got.Blocks != 1 {
					t.Errorf("ledger only: %+v", got)
				}
				wantTail++
			}
			if tail := len(res.Items) - len(exp.Records); tail != wantTail {
				t.Errorf("%d ledger items after the rows, want %d", tail, wantTail)
			}
			if got := res.Total(NotInExport).Blocks; got != map[Kind]int{PuroCertificates: 4, PuroTransactions: 2}[exp.Kind] {
				t.Errorf("not in export: %d blocks", got)
			}
		})
	}

	// the facts of the matched retirements: the hidden beneficiary says why it is not compared
	exp := parseFile(t, puroPath(puroTransactionsFile), "puro")
	items := byLine(t, exp.Records, Reconcile(exp.Records, puroLedger()))
	outcomes := func(line int) map[string]Fact {
		m := map[string]Fact{}
		for _, f := range items[line].Facts {
			m[f.Field] = f
		}
		return m
	}
	if f := outcomes(24); f[FieldBeneficiary].Outcome != Same || f[FieldDate].Outcome != Same || f[FieldQuantity].Outcome != Same ||
		f[FieldPurpose].Registry != "GENERIC_COMPENSATION: Compensation of 2024 business travel" {
		t.Errorf("line 24 facts: %+v", items[24].Facts)
	}
	if f := outcomes(66)[FieldBeneficiary]; f.Outcome != NotCompared || f.Note != "the registry hides the beneficiary until 2026-05-31, as its beneficiaryHiddenUntil says" {
		t.Errorf("line 66 beneficiary: %+v", f)
	}
	if d := items[66].Detail; !strings.Contains(d, "beneficiary not compared (the registry hides the beneficiary until 2026-05-31") {
		t.Errorf("line 66 detail: %q", d)
	}
	if d := items[87].Detail; !strings.Contains(d, "reversed on 2025-01-20 (entry e-ACME-241); the registry cancelled them (no reason given)") {
		t.Errorf("line 87 detail: %q", d)
	}
}

// TestReconcilePuroScope: Puro's project is the production facility, told from the row and,
// for a ledger block no row overlaps, from its series.
func TestReconcilePuroScope(t *testing.T) {
	exp := parseFile(t, puroPath(puroTransactionsFile), "puro")
	res := ReconcileIn(exp.Records, puroLedger(), Scope{Projects: []string{"577166"}})
	items := byLine(t, exp.Records, res)
	if it := items[37]; it.Class != Outside || !strings.Contains(it.Detail, "project 293847 is not one of the projects given with --project (577166)") {
		t.Errorf("line 37: %s %s", it.Class, it.Detail)
	}
	for _, line := range []int{24, 66, 87} {
		if items[line].Class != Matched {
			t.Errorf("line %d: %s %s", line, items[line].Class, items[line].Detail)
		}
	}
	l := puroLedger()[3]
	l.First, l.Last = 500, 510
	if why := (Scope{Projects: []string{"577166"}}).blockOutside(l); !strings.Contains(why, "series "+puroB+" is of project 293847") {
		t.Errorf("a block of facility 293847: %q", why)
	}
}
