package registry

import (
	"slices"
	"strings"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
)

const (
	p1 = "CAR-1-US-1335-31-983-KS-2025-9205"
	p2 = "CAR-1-US-1335-31-983-KS-2025-9659"
	p3 = "CAR-1-US-444-31-983-KS-2025-1"
	p4 = "CAR-1-US-444-31-983-KS-2025-2"
	p5 = "CAR-1-MX-1642-34-101-CM-2024-9001"
)

// retired is a readable CAR retirement row.
func retired(line int, prefix string, first, last int64) Record {
	n := last - first + 1
	return Record{Line: line, Registry: "car", Kind: CARRetirements, Status: StatusRetired, Count: n, Quantity: ledger.TonnesFromKg(n * 1000),
		Serials: ledger.SerialRange{Prefix: prefix, First: first, Last: last}, Date: ledger.Date(2025, 10, 27)}
}

func held(contract, registry, prefix string, first, last int64, state string) LedgerRange {
	return LedgerRange{Contract: contract, Registry: registry, Prefix: prefix, First: first, Last: last, State: state,
		Entry: "e-" + state, Date: ledger.Date(2025, 10, 1)}
}

// rowItems counts the items that carry a row.
func rowItems(res Result) int {
	n := 0
	for _, it := range res.Items {
		if it.Record != nil {
			n++
		}
	}
	return n
}

// byLine maps each row's line to its item, and checks that every record is in exactly one.
func byLine(t *testing.T, records []Record, res Result) map[int]Item {
	t.Helper()
	out := map[int]Item{}
	count := map[*Record]int{}
	for _, it := range res.Items {
		if it.Record != nil {
			count[it.Record]++
			out[it.Record.Line] = it
		}
	}
	for i := range records {
		if count[&records[i]] != 1 {
			t.Errorf("line %d appears in %d items, want 1", records[i].Line, count[&records[i]])
		}
	}
	if res.Rows != len(records) || rowItems(res) != len(records) {
		t.Errorf("rows: got %d (%d row items), want %d", res.Rows, rowItems(res), len(records))
	}
	return out
}

func TestReconcileEveryClass(t *testing.T) {
	bad := Record{Line: 9, Registry: "car", Kind: CARRetirements, Err: `Quantity of Offset Credits "x" is not a whole number`}
	problem := retired(10, p4, 1, 100)
	problem.Count, problem.Quantity, problem.Problem = 90, ledger.MustTonnes("90"), "the quantity 90 disagrees with its serial range 1-100"
	records := []Record{
		retired(2, p1, 1, 5000),
		retired(3, p1, 5001, 6000),
		retired(4, p2, 1, 7275),
		retired(5, p2, 8000, 8099),
		retired(6, p2, 9000, 9099),
		retired(7, p3, 1, 100),
		retired(8, p1, 10000, 10099),
		bad,
		problem,
	}
	ranges := []LedgerRange{
		held("A", "car", p1, 1, 5000, StateRetired),
		held("A", "car", p1, 5001, 5500, StateRetired), // one row, two ledger retirements
		held("A", "car", p1, 5501, 6000, StateRetired),
		held("B", "car", p2, 1, 7000, StateRetired),
		held("B", "car", p2, 7001, 7275, StateDelivered), // retired at the registry, held in the ledger
		held("B", "car", p2, 8000, 8199, StateRetired),   // extends beyond line 5
		held("B", "car", p2, 9000, 9049, StateRetired),   // half of line 6
		held("A", "car", p1, 20000, 20999, StateRetired), // no row
		held("A", "car", p1, 30000, 30999, StateDelivered),
		held("C", "car", p5, 1, 10, StateReversed),
		held("V", "verra", "VCS-VCU-1", 1, 10, StateRetired), // another registry: ignored
	}
	res := Reconcile(records, ranges)
	items := byLine(t, records, res)
	for _, tt := range []struct {
		line   int
		class  Class
		ledger string // ledger tonnes of the row's serials
		says   []string
	}{
		{2, Matched, "5000", []string{"contract A, retired on 2025-10-01 (entry e-retired)"}},
		{3, Matched, "1000", []string{"contract A, retired in 2 ledger blocks"}},
		{4, Disagrees, "7275", []string{"state differs: the registry shows them retired, the ledger has 7001-7275 delivered (contract B, entry e-delivered)"}},
		{5, Disagrees, "100", []string{"ledger block 8000-8199 (contract B, retired) extends beyond the row's 8000-8099"}},
		{6, Disagrees, "50", []string{"the ledger holds 50 of the row's 100 serials (missing 9050-9099)"}},
		{7, RegistryOnly, "0", []string{"the ledger holds no serial of series " + p3}},
		{8, RegistryOnly, "0", []string{"the ledger holds other serials of series " + p1 + ", none of 10000-10099"}},
		{9, Unreadable, "0", []string{"is not a whole number"}},
		{10, Disagrees, "0", []string{"the quantity 90 disagrees", "the ledger holds none of its serials"}},
	} {
		it := items[tt.line]
		if it.Class != tt.class || !it.LedgerTonnes.Equal(ledger.MustTonnes(tt.ledger)) {
			t.Errorf("line %d: got %s, ledger %s t (%s), want %s, %s t", tt.line, it.Class, it.LedgerTonnes, it.Detail, tt.class, tt.ledger)
		}
		for _, s := range tt.says {
			if !strings.Contains(it.Detail, s) {
				t.Errorf("line %d: detail %q does not say %q", tt.line, it.Detail, s)
			}
		}
	}
	// the blocks no row overlaps, after the rows, by series
	var tail []string
	for _, it := range res.Items[len(records):] {
		if it.Record != nil || len(it.Ledger) != 1 {
			t.Fatalf("tail item %+v: want one ledger block and no row", it)
		}
		tail = append(tail, string(it.Class)+" "+it.Ledger[0].String()+": "+it.Detail)
	}
	want := []string{
		"not_in_export C " + p5 + ":1-10 reversed: reversed: this kind of export lists only retired serials",
		"ledger_only A " + p1 + ":20000-20999 retired: no row of the export overlaps these serials (retired under contract A, entry e-retired)",
		"not_in_export A " + p1 + ":30000-30999 delivered: delivered: this kind of export lists only retired serials",
	}
	if strings.Join(tail, "\n") != strings.Join(want, "\n") {
		t.Errorf("ledger-side items:\n got %s\nwant %s", strings.Join(tail, "\n"), strings.Join(want, "\n"))
	}
	if res.Blocks != 10 {
		t.Errorf("blocks: got %d, want 10 (the verra block is not car's)", res.Blocks)
	}
	for _, tt := range []struct {
		class                   Class
		rows, blocks            int
		tonnes, ledgerTonnes    string
		discrepancy, wantInList bool
	}{
		{Matched, 2, 0, "6000", "6000", false, true},
		{Disagrees, 4, 0, "7565", "7425", true, true},
		{RegistryOnly, 2, 0, "200", "0", true, true},
		{LedgerOnly, 0, 1, "0", "1000", true, true},
		{NotInExport, 0, 2, "0", "1010", false, true},
		{IssuanceSummary, 0, 0, "0", "0", false, true},
		{Unreadable, 1, 0, "0", "0", true, true},
	} {
		got := res.Total(tt.class)
		if got.Rows != tt.rows || got.Blocks != tt.blocks || !got.Tonnes.Equal(ledger.MustTonnes(tt.tonnes)) || !got.LedgerTonnes.Equal(ledger.MustTonnes(tt.ledgerTonnes)) {
			t.Errorf("total %s: got %d rows, %d blocks, %s t, ledger %s t; want %d, %d, %s, %s", tt.class, got.Rows, got.Blocks, got.Tonnes, got.LedgerTonnes, tt.rows, tt.blocks, tt.tonnes, tt.ledgerTonnes)
		}
		if tt.class.Discrepancy() != tt.discrepancy {
			t.Errorf("%s.Discrepancy() = %v", tt.class, !tt.discrepancy)
		}
	}
	if len(res.Totals) != len(Classes) {
		t.Errorf("got %d totals, want one per class (%d)", len(res.Totals), len(Classes))
	}
	if res.OK() {
		t.Error("OK() with discrepancies: got true")
	}
}

func TestReconcileAllMatched(t *testing.T) {
	records := []Record{retired(2, p1, 1, 5000), retired(3, p2, 1, 100)}
	ranges := []LedgerRange{
		held("A", "car", p1, 1, 5000, StateRetired),
		held("A", "car", p2, 1, 100, StateRetired),
		held("A", "car", p2, 101, 500, StateDelivered), // held, not retired: a retirements report does not list it
	}
	res := Reconcile(records, ranges)
	byLine(t, records, res)
	if !res.OK() || res.Total(Matched).Rows != 2 || res.Total(NotInExport).Blocks != 1 {
		t.Errorf("got OK %v, totals %+v; want OK, 2 matched, 1 not in export", res.OK(), res.Totals)
	}
}

func TestReconcileVerraStates(t *testing.T) {
	const vp = "VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0"
	row := func(line int, first, last int64, s Status) Record {
		r := retired(line, vp, first, last)
		r.Registry, r.Kind, r.Status = "verra", VerraTransactions, s
		return r
	}
	records := []Record{
		row(2, 1, 10, StatusIssued),
		row(3, 11, 20, StatusIssued),
		row(4, 21, 30, StatusRetiredOrCancelled),
		row(5, 31, 40, StatusCancelled),
		row(6, 41, 50, StatusRetired),
		row(7, 51, 60, StatusCancelled),
	}
	records[5].Reason, records[5].Cancellation = "Cancelled for transfer to another registry", CancelTransfer
	ranges := []LedgerRange{
		held("A", "verra", vp, 1, 10, StateDelivered),
		held("A", "verra", vp, 11, 20, StateRetired), // the ledger retired what the registry shows active
		held("A", "verra", vp, 21, 30, StateReversed),
		held("A", "verra", vp, 31, 40, StateReversed),
		held("A", "verra", vp, 41, 50, StateRetired),
		held("A", "verra", vp, 51, 60, StateRetired),     // retired in the ledger, cancelled at Verra
		held("A", "verra", vp, 100, 110, StateDelivered), // Verra's export lists held blocks too
	}
	res := Reconcile(records, ranges)
	items := byLine(t, records, res)
	for line, want := range map[int]Class{2: Matched, 3: Disagrees, 4: Matched, 5: Matched, 6: Matched, 7: Disagrees} {
		if items[line].Class != want {
			t.Errorf("line %d: got %s (%s), want %s", line, items[line].Class, items[line].Detail, want)
		}
	}
	if !strings.Contains(items[3].Detail, "the registry shows them issued, the ledger has 11-20 retired") {
		t.Errorf("line 3: detail %q", items[3].Detail)
	}
	// the export cannot tell this row retired from cancelled: it matches, and says so
	if !strings.Contains(items[4].Detail, "the export does not say whether the registry retired or cancelled them") {
		t.Errorf("line 4: detail %q", items[4].Detail)
	}
	if want := `the registry cancelled these serials (reason "Cancelled for transfer to another registry": transfer to another registry), it did not retire them`; !strings.Contains(items[7].Detail, want) {
		t.Errorf("line 7: detail %q does not say %q", items[7].Detail, want)
	}
	if got := res.Total(LedgerOnly); got.Blocks != 1 || !got.LedgerTonnes.Equal(ledger.MustTonnes("11")) {
		t.Errorf("ledger only: got %+v, want the held block 100-110", got)
	}
}

// TestReconcileCancelledIsNotRetired: a row the registry cancelled never matches a block the
// ledger retired; the discrepancy says so and names the registry's reason. A cancellation for a
// reversal (or for no stated reason) agrees with the ledger's reversed; one converting credits
// to compliance offsets agrees with no state of the ledger.
func TestReconcileCancelledIsNotRetired(t *testing.T) {
	const cp = "CAR-ROC-US-2055-129-2284-PA-2025-8928"
	row := func(line int, first, last int64, reason string, why CancelReason) Record {
		r := retired(line, cp, first, last)
		r.Kind, r.Status, r.Reason, r.Cancellation = CARCancellations, StatusCancelled, reason, why
		return r
	}
	records := []Record{
		row(2, 1, 100, "ARB", CancelCompliance),
		row(3, 101, 200, "ARB", CancelCompliance),
		row(4, 201, 300, "Reversal", CancelReversal),
		row(5, 301, 400, "", CancelUnstated),
		row(6, 401, 500, "ARB", CancelCompliance),
		row(7, 501, 600, "Reversal", CancelReversal),
	}
	ranges := []LedgerRange{
		held("A", "car", cp, 1, 100, StateRetired),
		held("A", "car", cp, 101, 150, StateRetired),
		held("A", "car", cp, 151, 200, StateDelivered),
		held("A", "car", cp, 201, 300, StateReversed),
		held("A", "car", cp, 301, 400, StateReversed),
		held("A", "car", cp, 401, 500, StateReversed),
		held("A", "car", cp, 501, 600, StateRetired),
		held("A", "car", cp, 700, 710, StateRetired),  // a cancellations report lists no retirement
		held("A", "car", cp, 800, 810, StateReversed), // ...but would list a reversal's cancellation
	}
	res := Reconcile(records, ranges)
	items := byLine(t, records, res)
	for _, tt := range []struct {
		line  int
		class Class
		says  []string
	}{
		{2, Disagrees, []string{`the registry cancelled these serials (reason "ARB": compliance conversion), it did not retire them; the ledger retired them (contract A, entry e-retired, serials 1-100): a cancellation is not a retirement`}},
		{3, Disagrees, []string{"the ledger retired them (contract A, entry e-retired, serials 101-150)",
			`state differs: the registry shows them cancelled (reason "ARB": compliance conversion), the ledger has 151-200 delivered`}},
		{4, Matched, []string{`reversed on 2025-10-01 (entry e-reversed); the registry cancelled them (reason "Reversal": reversal)`}},
		{5, Matched, []string{"the registry cancelled them (no reason given)"}},
		{6, Disagrees, []string{`state differs: the registry shows them cancelled (reason "ARB": compliance conversion), the ledger has 401-500 reversed`}},
		{7, Disagrees, []string{`(reason "Reversal": reversal), it did not retire them; the ledger retired them`}},
	} {
		it := items[tt.line]
		if it.Class != tt.class {
			t.Errorf("line %d: got %s (%s), want %s", tt.line, it.Class, it.Detail, tt.class)
		}
		for _, s := range tt.says {
			if !strings.Contains(it.Detail, s) {
				t.Errorf("line %d: detail %q does not say %q", tt.line, it.Detail, s)
			}
		}
	}
	if got := res.Total(Matched).Rows; got != 2 {
		t.Errorf("matched: %d rows, want 2", got)
	}
	if got, want := res.Total(NotInExport).Blocks, 1; got != want {
		t.Errorf("not in export: %d blocks, want %d (the retired block 700-710)", got, want)
	}
	if got, want := res.Total(LedgerOnly).Blocks, 1; got != want {
		t.Errorf("ledger only: %d blocks, want %d (the reversed block 800-810)", got, want)
	}
}

// TestReconcileRealCancellations: every row of the Reserve's real cancellations report,
// recorded as retired in a ledger, is a discrepancy; none matches.
func TestReconcileRealCancellations(t *testing.T) {
	exp := parseFile(t, samplePath(t, "car-cancellations.csv"), "")
	var ranges []LedgerRange
	for _, r := range exp.Records {
		ranges = append(ranges, held("A", "car", r.Serials.Prefix, r.Serials.First, r.Serials.Last, StateRetired))
	}
	res := Reconcile(exp.Records, ranges)
	byLine(t, exp.Records, res)
	if got := res.Total(Disagrees).Rows; got != len(exp.Records) || res.Total(Matched).Rows != 0 || len(res.Items) != len(exp.Records) {
		t.Errorf("got %d of %d rows disagreeing, %d matched, %d items; want every row disagreeing, none matched", got, len(exp.Records), res.Total(Matched).Rows, len(res.Items))
	}
	for _, it := range res.Items {
		if !strings.Contains(it.Detail, "a cancellation is not a retirement") || !strings.Contains(it.Detail, `(reason "`+it.Record.Reason+`": compliance conversion)`) {
			t.Errorf("line %d: detail %q", it.Record.Line, it.Detail)
		}
	}
}

func TestReconcileIssuanceSummaries(t *testing.T) {
	issuance := func(line int, project, vintage string, n int64) Record {
		return Record{Line: line, Registry: "car", Kind: CARIssuances, Status: StatusIssued, Count: n, Quantity: ledger.TonnesFromKg(n * 1000),
			Project: project, Vintage: vintage, Date: ledger.Date(2026, 3, 19)}
	}
	records := []Record{issuance(2, "CAR1335", "2025", 1000), issuance(3, "CAR1335", "2025", 500), issuance(4, "CAR2264", "2026", 10)}

	t.Run("covered", func(t *testing.T) {
		res := Reconcile(records, []LedgerRange{held("A", "car", p1, 1, 1200, StateRetired), held("A", "car", p2, 1, 300, StateDelivered)})
		items := byLine(t, records, res)
		if !res.OK() || len(res.Items) != 3 || res.Total(IssuanceSummary).Rows != 3 {
			t.Fatalf("got OK %v, %d items, totals %+v; want OK with the 3 rows as issuance summaries", res.OK(), len(res.Items), res.Totals)
		}
		if d := items[2].Detail; !strings.Contains(d, "not matchable by serial; the ledger holds 1500 t of project CAR1335 vintage 2025 (contract A)") || len(items[2].Ledger) != 2 {
			t.Errorf("line 2: detail %q, %d blocks", d, len(items[2].Ledger))
		}
		if d := items[4].Detail; d != "not matchable by serial; the ledger holds no serials of this project and vintage" {
			t.Errorf("line 4: detail %q", d)
		}
	})
	t.Run("more held than issued, and a project never issued", func(t *testing.T) {
		res := Reconcile(records, []LedgerRange{held("A", "car", p1, 1, 2000, StateRetired), held("B", "car", p5, 1, 50, StateDelivered)})
		byLine(t, records, res)
		tail := res.Items[3:]
		if res.OK() || len(tail) != 2 {
			t.Fatalf("got OK %v, tail %+v", res.OK(), tail)
		}
		if tail[0].Class != LedgerOnly || tail[0].Detail != "the export shows no issuance of project CAR1642 vintage 2024" {
			t.Errorf("tail[0]: %s %q", tail[0].Class, tail[0].Detail)
		}
		if tail[1].Class != Disagrees || !strings.Contains(tail[1].Detail, "the ledger holds 2000 t of project CAR1335 vintage 2025 in 1 block(s) (contract A); the export shows 1500 t issued: more than was issued") {
			t.Errorf("tail[1]: %s %q", tail[1].Class, tail[1].Detail)
		}
		if got := res.Total(Disagrees); got.Rows != 0 || got.Blocks != 1 || !got.LedgerTonnes.Equal(ledger.MustTonnes("2000")) {
			t.Errorf("disagrees total: %+v", got)
		}
	})
}

func TestReconcileNoRows(t *testing.T) {
	res := Reconcile(nil, []LedgerRange{held("A", "car", p1, 1, 10, StateDelivered)})
	if res.OK() || len(res.Items) != 1 || res.Items[0].Class != LedgerOnly {
		t.Errorf("an empty export against a held block: got %+v, want one ledger_only item", res.Items)
	}
	if res := Reconcile(nil, nil); !res.OK() || len(res.Items) != 0 {
		t.Errorf("nothing against nothing: got %+v", res)
	}
}

// TestReconcileRealExportsAgainstNothing: against an empty ledger every row of the real files
// is reported, in the registry only (or as an issuance summary).
func TestReconcileRealExportsAgainstNothing(t *testing.T) {
	for file, class := range map[string]Class{"car-retirements.csv": RegistryOnly, "car-issuances.csv": IssuanceSummary, "verra-transactions.csv": RegistryOnly,
		"car-cancellations.csv": RegistryOnly, "gold-standard-issuances.csv": RegistryOnly, "gold-standard-retirements.csv": RegistryOnly} {
		exp := parseFile(t, samplePath(t, file), "")
		res := Reconcile(exp.Records, nil)
		byLine(t, exp.Records, res)
		if got := res.Total(class); got.Rows != len(exp.Records) {
			t.Errorf("%s: %d rows %s, want all %d", file, got.Rows, class, len(exp.Records))
		}
	}
}

// TestReconcileGoldStandardSamples: every row of both real Gold Standard exports, held in a
// ledger in the state its Credit Status implies (Issued delivered, Retired retired, Canceled
// with no reason reversed), matches. The cancellations for a transfer to another registry
// agree with no state of the ledger: held as retired they disagree, saying a cancellation is
// not a retirement. Holding one retired row as only delivered reports exactly that row.
func TestReconcileGoldStandardSamples(t *testing.T) {
	for _, file := range []string{"gold-standard-issuances.csv", "gold-standard-retirements.csv"} {
		t.Run(file, func(t *testing.T) {
			exp := parseFile(t, samplePath(t, file), "gold-standard")
			var ranges []LedgerRange
			transfers := map[int]bool{}
			for _, r := range exp.Records {
				state := StateDelivered
				switch {
				case r.Status == StatusRetired:
					state = StateRetired
				case r.Status == StatusCancelled && r.Cancellation == CancelTransfer:
					state, transfers[r.Line] = StateRetired, true
				case r.Status == StatusCancelled:
					state = StateReversed
				}
				ranges = append(ranges, held("A", "gold-standard", r.Serials.Prefix, r.Serials.First, r.Serials.Last, state))
			}
			res := Reconcile(exp.Records, ranges)
			items := byLine(t, exp.Records, res)
			for line, it := range items {
				want := Matched
				if transfers[line] {
					want = Disagrees
					if !strings.Contains(it.Detail, ": transfer to another registry), it did not retire them") || !strings.Contains(it.Detail, "a cancellation is not a retirement") {
						t.Errorf("line %d: detail %q", line, it.Detail)
					}
				}
				if it.Class != want {
					t.Errorf("line %d: got %s (%s), want %s", line, it.Class, it.Detail, want)
				}
			}
			if len(res.Items) != len(exp.Records) {
				t.Errorf("got %d items, want one per row (%d)", len(res.Items), len(exp.Records))
			}
			if file == "gold-standard-retirements.csv" && len(transfers) != 3 {
				t.Errorf("got %d cancellations for a transfer, want 3", len(transfers))
			}

			// one fact changed: the first row's block held in another state
			first := exp.Records[0]
			ranges[0].State = map[string]string{StateDelivered: StateRetired, StateRetired: StateDelivered}[ranges[0].State]
			res = Reconcile(exp.Records, ranges)
			items = byLine(t, exp.Records, res)
			if it := items[first.Line]; it.Class != Disagrees || !strings.Contains(it.Detail, "state differs: the registry shows them "+string(first.Status)) {
				t.Errorf("line %d with its state changed: got %s (%s)", first.Line, it.Class, it.Detail)
			}
			if got, want := res.Total(Disagrees).Rows, 1+len(transfers); got != want {
				t.Errorf("disagreeing rows: got %d, want %d", got, want)
			}
		})
	}
}

// TestRetirementFactRules: the rules each fact of a retirement is compared by. The Reserve's
// beneficiary is the text after "on behalf of", which must begin with the ledger's name, whole
// words; Verra's and Gold Standard's is a column, equal without regard to case or spacing; the
// date must be the same day; the purpose is shown, never a difference; a ledger block retired
// without its facts (Retirement nil) leaves them uncompared.
func TestRetirementFactRules(t *testing.T) {
	car := retired(2, p1, 1, 100)
	car.Details = "Retired on behalf of Kinaxis Inc. F2024 period"
	car.Reason = "On Behalf of Third Party"
	verra := car
	verra.Kind, verra.Registry, verra.Beneficiary, verra.Details = VerraTransactions, "verra", "Shopify  Inc.", ""
	block := func(ben, reason string, day int) LedgerRange {
		l := held("A", "car", p1, 1, 100, StateRetired)
		l.Date = ledger.Date(2025, 10, day)
		l.Retirement = &Retirement{Beneficiary: ben, Reason: reason}
		return l
	}
	for _, tt := range []struct {
		name    string
		rec     Record
		l       LedgerRange
		class   Class
		outcome map[string]Outcome
	}{
		{"CAR name begins the text", car, block("KINAXIS inc.", "On behalf of third party", 27), Matched,
			map[string]Outcome{FieldBeneficiary: Same, FieldDate: Same, FieldQuantity: Same, FieldPurpose: Same}},
		{"CAR name without its full stop", car, block("Kinaxis Inc", "FY2024 claim", 27), Matched,
			map[string]Outcome{FieldBeneficiary: Same, FieldPurpose: Information}},
		{"CAR name not on a word boundary", car, block("Kinaxis In", "x", 27), Disagrees, map[string]Outcome{FieldBeneficiary: Differs}},
		{"CAR another name", car, block("Acme", "x", 27), Disagrees, map[string]Outcome{FieldBeneficiary: Differs, FieldDate: Same}},
		{"a day later", car, block("Kinaxis Inc.", "x", 28), Disagrees, map[string]Outcome{FieldDate: Differs, FieldBeneficiary: Same}},
		{"Verra column, case and spacing", verra, block("shopify inc.", "x", 27), Matched, map[string]Outcome{FieldBeneficiary: Same}},
		{"Verra column is not a prefix", verra, block("Shopify", "x", 27), Disagrees, map[string]Outcome{FieldBeneficiary: Differs}},
		{"no facts in the ledger", car, held("A", "car", p1, 1, 100, StateRetired), Matched,
			map[string]Outcome{FieldBeneficiary: NotCompared, FieldDate: NotCompared, FieldQuantity: Same}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, l := tt.rec, tt.l
			l.Registry = rec.Registry
			res := Reconcile([]Record{rec}, []LedgerRange{l})
			it := res.Items[0]
			got := map[string]Outcome{}
			for _, f := range it.Facts {
				got[f.Field] = f.Outcome
			}
			if it.Class != tt.class {
				t.Errorf("class %s (%s), want %s", it.Class, it.Detail, tt.class)
			}
			for field, want := range tt.outcome {
				if got[field] != want {
					t.Errorf("%s: %s, want %s (%+v)", field, got[field], want, it.Facts)
				}
			}
			var differing []string
			for _, f := range it.Differences() {
				differing = append(differing, f.Field)
			}
			for field, want := range tt.outcome {
				if (want == Differs) != slices.Contains(differing, field) {
					t.Errorf("differences %v and outcome of %s %s disagree", differing, field, want)
				}
			}
		})
	}
	// a cancelled or issued row is no retirement: nothing compared
	c := car
	c.Status = StatusCancelled
	if res := Reconcile([]Record{c}, []LedgerRange{block("Acme", "x", 1)}); len(res.Items[0].Facts) != 0 {
		t.Errorf("cancelled row: facts %+v", res.Items[0].Facts)
	}
}
