package registry

import (
	"os"
	"strings"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
)

// TestParseIsometricSamples: both real Isometric samples are told from their header (and
// accepted with registry "isometric"), every row is read, and every row's credits column is
// its kilograms divided by 1000 exactly: one Isometric credit is one tonne, given to the
// kilogram.
func TestParseIsometricSamples(t *testing.T) {
	for _, tt := range []struct {
		file string
		kind Kind
		st   Status
	}{
		{"isometric-retirements.csv", IsometricRetirements, StatusRetired},
		{"isometric-issuances.csv", IsometricIssuances, StatusIssued},
	} {
		exp := parseFile(t, samplePath(t, tt.file), "isometric")
		if exp.Kind != tt.kind || exp.Registry != "isometric" {
			t.Errorf("%s: kind %s, registry %s", tt.file, exp.Kind, exp.Registry)
		}
		if n := csvRows(t, samplePath(t, tt.file)); len(exp.Records) != n || n == 0 {
			t.Errorf("%s: %d records, %d rows", tt.file, len(exp.Records), n)
		}
		for _, r := range exp.Records {
			if r.Err != "" || r.Status != tt.st || r.ID == "" || !strings.HasPrefix(r.Project, "prj_") || r.Date.IsZero() ||
				!r.Quantity.IsPositive() || r.Quantity.Kg() != r.Count {
				t.Errorf("%s line %d: %+v", tt.file, r.Line, r)
			}
		}
		// told from the header alone, too
		if exp := parseFile(t, samplePath(t, tt.file), ""); exp.Kind != tt.kind {
			t.Errorf("%s: told as %s", tt.file, exp.Kind)
		}
	}

	exp := parseFile(t, samplePath(t, "isometric-retirements.csv"), "")
	first := exp.Records[0] // ret_1KNSQMD6Z1S0TB50: 531.0 credits, 531000 kg, Workday
	if first.ID != "ret_1KNSQMD6Z1S0TB50" || first.Quantity != ledger.TonnesFromKg(531000) || ledger.FormatDate(first.Date) != "2026-04-09" ||
		first.Beneficiary != "Workday" || first.Owner != "Workday" || first.Reason != "public_environmental_claims" || first.Project != "prj_1HHYZFVGW1S044ZY" {
		t.Errorf("first row: %+v", first)
	}
	var small, stripe *Record
	for i, r := range exp.Records {
		switch r.ID {
		case "ret_1KMZP3TAK1S0SBJ9":
			small = &exp.Records[i]
		case "ret_1KMNNWDKE1S0XAYH":
			stripe = &exp.Records[i]
		}
	}
	// 0.019 credits is 19 kg: 0.019 t exactly
	if small == nil || small.Quantity != ledger.TonnesFromKg(19) || small.Reason != "" {
		t.Errorf("0.019-credit row: %+v", small)
	}
	// the beneficiary is beneficiary.name, not owner.name
	if stripe == nil || stripe.Beneficiary != "Convert Insights, Inc." || stripe.Owner != "Stripe" {
		t.Errorf("Stripe row: %+v", stripe)
	}
}

// TestParseIsometricRefusesPartKilograms: a row whose kilograms are not whole is unreadable,
// naming the column; so is one whose credits are not its kilograms in tonnes, and one whose
// date is not RFC 3339. The other rows are read.
func TestParseIsometricRefusesPartKilograms(t *testing.T) {
	b, err := os.ReadFile(samplePath(t, "isometric-retirements.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	row := lines[10] // ret_1KMZP3TAK1S0SBJ9, 0.019 credits, 19 kg
	if !strings.Contains(row, ",0.019,19,") {
		t.Fatalf("sample row changed: %s", row)
	}
	body := strings.Join([]string{lines[0],
		strings.Replace(row, ",0.019,19,", ",0.0195,19.5,", 1),
		strings.Replace(row, ",0.019,19,", ",0.02,19,", 1),
		strings.Replace(row, "2026-03-30T15:34:34.687870Z", "30/03/2026", 1),
		row}, "\n") + "\n"
	exp, err := Parse(strings.NewReader(body), "isometric")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{
		`credit_batch_size_total.credit_kgs "19.5" is not a whole number of kilograms`,
		`credit_batch_size_total.credits "0.02" is not credit_batch_size_total.credit_kgs "19" in tonnes`,
		`retired_at "30/03/2026" is not a date in the registry's form RFC 3339`,
		"",
	} {
		r := exp.Records[i]
		if want == "" && (r.Err != "" || r.Quantity != ledger.TonnesFromKg(19)) || !strings.Contains(r.Err, want) {
			t.Errorf("row %d: error %q, want %q", i+2, r.Err, want)
		}
	}
}

// TestReconcileIsometricByDate: rows without serials match deliveries and retirements recorded
// without serials by project, kind, day and quantity (and a retirement's beneficiary), each
// entry once; a row whose quantity differs disagrees on exactly that field; an entry of a
// contract that names no project matches nothing; a delivery is not listed by a retirements
// export.
func TestReconcileIsometricByDate(t *testing.T) {
	day := func(s string) Record {
		d, _ := ledger.ParseDate("date", s)
		return Record{Date: d}
	}
	row := func(line int, id, project, date string, kg int64, ben string) Record {
		r := day(date)
		r.Line, r.Registry, r.Kind, r.Status, r.ID, r.Project, r.Count, r.Quantity, r.Beneficiary =
			line, "isometric", IsometricRetirements, StatusRetired, id, project, kg, ledger.TonnesFromKg(kg), ben
		return r
	}
	entry := func(entry, kind, state, date string, kg int64, ben string, projects ...string) LedgerRange {
		l := LedgerRange{Contract: "ISO-1", Registry: "isometric", Entry: entry, Kind: kind, State: state,
			Date: day(date).Date, Quantity: ledger.TonnesFromKg(kg), Projects: projects}
		if state == StateRetired {
			l.Retirement = &Retirement{Beneficiary: ben, Reason: "corporate targets"}
		}
		return l
	}
	records := []Record{
		row(2, "ret_a", "prj_A", "2026-04-09", 531000, "Workday"),
		row(3, "ret_b", "prj_A", "2026-04-09", 531000, "JPMorganChase"),
		row(4, "ret_c", "prj_A", "2026-04-08", 220000, "JPMorganChase"),
		row(5, "ret_d", "prj_B", "2026-04-08", 19, "Kieran Lewko"),
	}
	ledgerSide := []LedgerRange{
		// the same day and quantity as lines 2 and 3: each pairs with its own beneficiary
		entry("e-b", "retire", StateRetired, "2026-04-09", 531000, "JPMorganChase", "prj_A"),
		entry("e-a", "retire", StateRetired, "2026-04-09", 531000, "workday", "PRJ_A"),
		// line 4, 1 kg less
		entry("e-c", "retire", StateRetired, "2026-04-08", 219999, "JPMorganChase", "prj_A"),
		// line 5's retirement, but its contract names no project
		entry("e-d", "retire", StateRetired, "2026-04-08", 19, "Kieran Lewko"),
		entry("e-del", "deliver", StateDelivered, "2026-04-01", 531000, "", "prj_A"),
	}
	res := Reconcile(records, ledgerSide)
	got := map[string]string{}
	for _, it := range res.Items {
		key := ""
		if it.Record != nil {
			key = it.Record.ID
		} else {
			key = it.Ledger[0].Entry
		}
		got[key] = string(it.Class)
		if it.Record != nil && len(it.Ledger) == 1 {
			got[key] += " " + it.Ledger[0].Entry
		}
		if key == "ret_a" && !strings.Contains(it.Detail, "matched by project, date and quantity") {
			t.Errorf("ret_a detail: %s", it.Detail)
		}
		if key == "ret_c" {
			diffs := it.Differences()
			if len(diffs) != 1 || diffs[0].Field != FieldQuantity || diffs[0].Registry != "220" || diffs[0].Ledger != "219.999" {
				t.Errorf("ret_c differences: %+v (%s)", diffs, it.Detail)
			}
		}
	}
	want := map[string]string{
		"ret_a": "matched e-a", "ret_b": "matched e-b", "ret_c": "disagrees e-c", "ret_d": "registry_only",
		"e-d": "ledger_only", "e-del": "not_in_export",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("items: %v", got)
	}

	// an issuance matches a delivery (retire-on-delivery too), not a retirement
	iss := row(2, "iss_a", "prj_A", "2026-04-01", 531000, "")
	iss.Kind, iss.Status = IsometricIssuances, StatusIssued
	r2 := Reconcile([]Record{iss}, ledgerSide)
	if it := r2.Items[0]; it.Class != Matched || it.Ledger[0].Entry != "e-del" || !strings.Contains(it.Detail, "matched by project, date and quantity") {
		t.Errorf("issuance: %s %s", it.Class, it.Detail)
	}
	for _, it := range r2.Items[1:] {
		if it.Class != NotInExport { // the retirements are not listed by an issuances export
			t.Errorf("issuances export, ledger item %s: %s", it.Class, it.Detail)
		}
	}

	// an export with serials no longer ignores the entries without serials: a row no serial
	// block overlaps is tried against them (here it matches none, and stays in the registry
	// only), and the retirements it does not match are in the ledger only
	car := Record{Line: 2, Registry: "isometric", Kind: CARRetirements, Status: StatusRetired,
		Serials: ledger.SerialRange{Prefix: "X", First: 1, Last: 1}, Count: 1}
	r3 := Reconcile([]Record{car}, ledgerSide)
	if len(r3.Items) != 1+len(ledgerSide) || r3.Blocks != len(ledgerSide) || r3.Items[0].Class != RegistryOnly {
		t.Errorf("serial export with entries: %+v", r3)
	}
	for _, it := range r3.Items[1:] {
		want := LedgerOnly
		if it.Ledger[0].State == StateDelivered {
			want = NotInExport // a retirements export lists no deliveries
		}
		if it.Class != want {
			t.Errorf("serial export, ledger item %s: %s", it.Class, it.Detail)
		}
	}
}
