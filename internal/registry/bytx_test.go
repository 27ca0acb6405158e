package registry

import (
	"strings"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
)

// TestReconcileByTransactionID: an Isometric retirement whose ret_ id is the registry_tx of a
// retirement recorded without serials (a delivery retired on delivery) is paired with it by
// transaction id, although another entry agrees on project, date and quantity and this one is
// dated another day; the date is still compared, so the row disagrees on the date alone and
// says it was paired by transaction id. The same entry dated the row's day is matched "by
// transaction id". An issuance paired by transaction id with a delivery of another day is
// matched, the date shown, not judged.
func TestReconcileByTransactionID(t *testing.T) {
	day := func(s string) Record {
		d, err := ledger.ParseDate("date", s)
		if err != nil {
			t.Fatal(err)
		}
		return Record{Date: d}
	}
	row := day("2026-04-09")
	row.Line, row.Registry, row.Kind, row.Status, row.ID, row.Project, row.Count, row.Quantity, row.Beneficiary =
		2, "isometric", IsometricRetirements, StatusRetired, "ret_1KNSQMD6Z1S0TB50", "prj_A", 531000, ledger.TonnesFromKg(531000), "Workday"
	entry := func(id, date, tx string) LedgerRange {
		return LedgerRange{Contract: "ISO-1", Registry: "isometric", Entry: id, Kind: "deliver", State: StateRetired,
			Date: day(date).Date, Quantity: ledger.TonnesFromKg(531000), Projects: []string{"prj_A"}, RegistryTx: tx,
			Retirement: &Retirement{Beneficiary: "Workday", Reason: "retired on delivery under the contract"}}
	}
	// the entry without a transaction id agrees on every fact, and comes first
	ledgerSide := []LedgerRange{entry("e-same", "2026-04-09", ""), entry("e-tx", "2026-04-20", " RET_1KNSQMD6Z1S0TB50 ")}
	res := Reconcile([]Record{row}, ledgerSide)
	it := res.Items[0]
	diffs := it.Differences()
	if it.Class != Disagrees || it.Ledger[0].Entry != "e-tx" || !strings.Contains(it.Detail, "paired by transaction id ret_1KNSQMD6Z1S0TB50") ||
		len(diffs) != 1 || diffs[0].Field != FieldDate || diffs[0].Registry != "2026-04-09" || diffs[0].Ledger != "2026-04-20" {
		t.Errorf("row: %s %s %+v", it.Class, it.Detail, diffs)
	}
	if len(res.Items) != 2 || res.Items[1].Class != LedgerOnly || res.Items[1].Ledger[0].Entry != "e-same" {
		t.Errorf("the entry without a transaction id: %+v", res.Items[1:])
	}

	// dated the row's day: matched, by transaction id
	res = Reconcile([]Record{row}, []LedgerRange{entry("e-tx", "2026-04-09", "ret_1KNSQMD6Z1S0TB50")})
	if it := res.Items[0]; it.Class != Matched || !strings.HasPrefix(it.Detail, "matched by transaction id") || !res.OK() {
		t.Errorf("same day: %s %s", it.Class, it.Detail)
	}

	// an issuance and a delivery of another day, of another project: paired by its iss_ id,
	// matched, the date shown as information
	iss := day("2026-04-14")
	iss.Line, iss.Registry, iss.Kind, iss.Status, iss.ID, iss.Project, iss.Count, iss.Quantity =
		2, "isometric", IsometricIssuances, StatusIssued, "iss_1KP6EDZ8K1S036PY", "prj_B", 531000, ledger.TonnesFromKg(531000)
	del := entry("e-del", "2026-05-01", "iss_1KP6EDZ8K1S036PY")
	del.State, del.Retirement = StateDelivered, nil
	res = Reconcile([]Record{iss}, []LedgerRange{del})
	it = res.Items[0]
	if it.Class != Matched || !strings.HasPrefix(it.Detail, "matched by transaction id") || len(it.Differences()) != 0 ||
		it.Facts[0].Field != FieldDate || it.Facts[0].Outcome != Information {
		t.Errorf("issuance: %s %s %+v", it.Class, it.Detail, it.Facts)
	}
}

// TestReconcileSerialRowsWithEntries: rows with serials of a Verra export that no serial
// block of the ledger overlaps are matched with the deliveries and retirements recorded
// without serials: by transaction id when an entry's registry_tx is the row's serial number
// as Verra writes it, else by project, vintage, date and quantity, each row's detail saying
// which; an entry of another vintage is not paired; a row with a serial block in the ledger is
// matched by serial as before; what pairs with nothing is reported as before.
func TestReconcileSerialRowsWithEntries(t *testing.T) {
	day := func(s string) Record {
		d, err := ledger.ParseDate("date", s)
		if err != nil {
			t.Fatal(err)
		}
		return Record{Date: d}
	}
	verra := func(line int, label, prefix string, first, last int64, status Status, date string) Record {
		r := day(date)
		r.Line, r.Registry, r.Kind, r.Status, r.Project, r.Vintage = line, "verra", VerraTransactions, status, "1340", "2020-01-01"
		r.Serials = ledger.SerialRange{Prefix: prefix, First: first, Last: last, Label: label}
		r.Count, r.Quantity = last-first+1, ledger.TonnesFromKg((last-first+1)*1000)
		return r
	}
	const (
		l2 = "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1"
		l3 = "19386-941467432-941467531-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1"
		l4 = "19387-941467532-941467631-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1"
		l5 = "19388-941467632-941467731-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1"
		px = "VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1"
	)
	records := []Record{
		verra(2, l2, px, 941467007, 941467431, StatusIssued, "2026-04-03"), // 425 t, by project/vintage/date/quantity
		verra(3, l3, px, 941467432, 941467531, StatusIssued, "2026-04-03"), // 100 t, by transaction id
		verra(4, l4, px, 941467532, 941467631, StatusIssued, "2026-04-03"), // 100 t, only an entry of another vintage
		verra(5, l5, px, 941467632, 941467731, StatusIssued, "2026-04-03"), // 100 t, a serial block
	}
	entry := func(id, date string, kg int64, vintage int, tx string) LedgerRange {
		return LedgerRange{Contract: "VER-1", Registry: "verra", Entry: id, Kind: "deliver", State: StateDelivered,
			Date: day(date).Date, Quantity: ledger.TonnesFromKg(kg), Projects: []string{"VCS1340"}, Vintage: vintage, RegistryTx: tx}
	}
	ledgerSide := []LedgerRange{
		entry("e-2021", "2026-04-03", 100000, 2021, ""),
		entry("e-425", "2026-04-03", 425000, 2020, ""),
		entry("e-tx", "2026-04-07", 100000, 0, l3),
		{Contract: "VER-1", Registry: "verra", Prefix: px, First: 941467632, Last: 941467731, State: StateDelivered, Entry: "e-ser",
			Date: day("2026-04-03").Date, Projects: []string{"VCS1340"}},
	}
	res := Reconcile(records, ledgerSide)
	byLine := map[int]Item{}
	var ledgerItems []Item
	for _, it := range res.Items {
		if it.Record != nil {
			byLine[it.Record.Line] = it
		} else {
			ledgerItems = append(ledgerItems, it)
		}
	}
	if it := byLine[2]; it.Class != Matched || it.Ledger[0].Entry != "e-425" ||
		!strings.HasPrefix(it.Detail, "matched by project, vintage, date and quantity (the ledger's entry has no serials)") {
		t.Errorf("line 2: %s %s", it.Class, it.Detail)
	}
	if it := byLine[3]; it.Class != Matched || it.Ledger[0].Entry != "e-tx" || !strings.HasPrefix(it.Detail, "matched by transaction id (the row's "+l3) {
		t.Errorf("line 3: %s %s", it.Class, it.Detail)
	}
	if it := byLine[4]; it.Class != RegistryOnly || len(it.Ledger) != 0 || !strings.Contains(it.Detail, "records without serials matches it") {
		t.Errorf("line 4: %s %s", it.Class, it.Detail)
	}
	if it := byLine[5]; it.Class != Matched || it.Ledger[0].Entry != "e-ser" || strings.Contains(it.Detail, "matched by") {
		t.Errorf("line 5: %s %s", it.Class, it.Detail)
	}
	if len(ledgerItems) != 1 || ledgerItems[0].Class != LedgerOnly || ledgerItems[0].Ledger[0].Entry != "e-2021" {
		t.Errorf("ledger items: %+v", ledgerItems)
	}
	if res.Blocks != 4 || res.OK() {
		t.Errorf("blocks %d, ok %v", res.Blocks, res.OK())
	}

	// a cancelled row is never matched with a retirement recorded without serials
	canc := verra(2, l2, px, 941467007, 941467431, StatusCancelled, "2026-04-03")
	ret := entry("e-ret", "2026-04-03", 425000, 2020, l2)
	ret.State = StateRetired
	res = Reconcile([]Record{canc}, []LedgerRange{ret})
	if it := res.Items[0]; it.Class != RegistryOnly || len(it.Ledger) != 0 {
		t.Errorf("cancelled row: %s %s", it.Class, it.Detail)
	}
}
