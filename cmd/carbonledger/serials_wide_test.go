package main

import (
	"database/sql"
	"strconv"
	"strings"
	"testing"

	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/ledger"
)

// TestWideSerials records Puro's legacy 30-digit serials, which do not fit 64 bits: they are
// kept to the digit, an overlapping range is refused by the database's exclusion constraint
// whatever the form it is written in, the same sequence under another GSRN is other serials,
// and a partial retirement leaves a block shown back in the registry's form with every digit.
func TestWideSerials(t *testing.T) {
	url := pgtest.URL(t)
	recContractJSON(t, url, `{"code": "WIDE", "buyer": "Acme Buyer", "supplier": "Biochar Oy", "project": "Biochar Oy",
	  "method": "biochar", "country": "FI", "region": "Uusimaa", "registry": "puro", "standard": "Puro Biochar 2023",
	  "term_start": "2025-01-01", "term_end": "2026-12-31", "signed_on": "2024-12-01", "tonnes": "10000",
	  "delivery_mode": "transfer"}`)
	const (
		gsrn  = "643002406000000001" // an 18-digit GSRN, then a 12-digit sequence
		first = gsrn + "000000000001"
		last  = gsrn + "000000000100"
	)
	recDeliver(t, url, "WIDE", first+" - "+last, "100")
	// the same sequence numbers under another GSRN are other serials
	other := "643002406000000002"
	recDeliver(t, url, "WIDE", other+"000000000001 - "+other+"000000000100", "100")

	// an overlap, in either form, is refused, and the message gives the numbers in full
	for _, s := range []string{gsrn + "000000000100 - " + gsrn + "000000000150", "PURO:" + gsrn + "000000000050-" + gsrn + "000000000050"} {
		tonnes := "51"
		if strings.HasPrefix(s, "PURO:") {
			tonnes = "1"
		}
		code, _, errOut := recRun(t, url, "deliver", "--contract", "WIDE", "--tonnes", tonnes, "--date", "2025-10-02", "--serials", s)
		if code == 0 || !strings.Contains(errOut, "overlap serials PURO:"+first+"-"+last+" already delivered under contract WIDE") {
			t.Errorf("delivering %s again: exit %d, stderr %q; want it refused as already delivered, in full", s, code, errOut)
		}
	}
	// a range of 10^15 + 1 serials crossing a block boundary is refused by name
	code, _, errOut := recRun(t, url, "deliver", "--contract", "WIDE", "--tonnes", "2", "--date", "2025-10-02", "--serials",
		"643002406000000999999999999999 - 643002406000001000000000000000")
	if code == 0 || !strings.Contains(errOut, "spans more than one block of 10^15 serials") {
		t.Errorf("a range across a block boundary: exit %d, stderr %q", code, errOut)
	}

	// retire the first 40: the rest is shown back in Puro's legacy form, digit for digit
	recRetireAs(t, url, "WIDE", first+" - "+gsrn+"000000000040", "40", "2025-11-01", "Acme Buyer", "Voluntary")
	out := recOK(t, url, "serials", "WIDE")
	for _, want := range []string{
		first + " - " + gsrn + "000000000040",
		gsrn + "000000000041 - " + last,
		"PURO:" + gsrn + "000000000041-" + last,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("serials WIDE: want %q in\n%s", want, out)
		}
	}
	// retiring a retired serial again is refused, naming the retired serials in full
	code, _, errOut = recRun(t, url, "retire", "--contract", "WIDE", "--tonnes", "1", "--date", "2025-11-02", "--beneficiary", "Acme Buyer",
		"--reason", "Voluntary", "--serials", gsrn+"000000000040")
	if code == 0 || !strings.Contains(errOut, "already retired (serials "+first+"-"+gsrn+"000000000040") {
		t.Errorf("retiring a retired serial: exit %d, stderr %q", code, errOut)
	}
	if code, out, errOut := recRun(t, url, "audit"); code != 0 {
		t.Errorf("audit: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestKilogramSerials: under Isometric one serial is one kilogram, so 19 serials are 0.019 t;
// under every other registry one is a tonne. The check names the unit, the serials listing and
// the holding count kilograms, the audit is clean, and the database's serial_unit_tonnes
// agrees with the domain's for every registry.
func TestKilogramSerials(t *testing.T) {
	url := pgtest.URL(t)
	recContractJSON(t, url, `{"code": "ISO", "buyer": "Acme Buyer", "supplier": "Rock Co", "project": "Enhanced weathering",
	  "method": "enhanced_weathering", "country": "US", "region": "Georgia", "registry": "isometric", "standard": "Isometric EW v1",
	  "term_start": "2025-01-01", "term_end": "2026-12-31", "signed_on": "2024-12-01", "tonnes": "100",
	  "delivery_mode": "transfer"}`)
	code, _, errOut := recRun(t, url, "deliver", "--contract", "ISO", "--tonnes", "19", "--date", "2025-10-01", "--serials", "ISO-PRJ-1:1-19")
	if code == 0 || !strings.Contains(errOut, "holds 19 serials (both ends included) but the tonnes are 19.000; one serial is one kilogram under isometric") {
		t.Errorf("19 t for 19 kg serials: exit %d, stderr %q", code, errOut)
	}
	recDeliver(t, url, "ISO", "ISO-PRJ-1:1-19000", "19")
	recRetireAs(t, url, "ISO", "ISO-PRJ-1:1-19", "0.019", "2025-11-01", "Acme Buyer", "Voluntary")
	out := recOK(t, url, "serials", "ISO")
	for _, want := range []string{"ISO-PRJ-1:1-19 ", "0.019", "ISO-PRJ-1:20-19000", "18.981"} {
		if !strings.Contains(out, want) {
			t.Errorf("serials ISO: want %q in\n%s", want, out)
		}
	}
	// the holding's serialized part is 18.981 t: retiring 0.001 t more without serials is refused
	code, _, errOut = recRun(t, url, "retire", "--contract", "ISO", "--tonnes", "0.001", "--date", "2025-11-02", "--beneficiary", "Acme Buyer", "--reason", "Voluntary")
	if code == 0 || !strings.Contains(errOut, "18.981") {
		t.Errorf("retiring serialized kilograms without serials: exit %d, stderr %q", code, errOut)
	}
	if code, out, errOut := recRun(t, url, "audit"); code != 0 {
		t.Errorf("audit: exit %d\n%s\n%s", code, out, errOut)
	}

	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, reg := range ledger.RegistryCodes() {
		var got string
		if err := db.QueryRow(`SELECT (1000 * serial_unit_tonnes($1))::bigint::text`, reg).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := strconv.FormatInt(ledger.SerialUnitKg(reg), 10); got != want {
			t.Errorf("registry %s: serial_unit_tonnes is %s kg, the domain's unit %s kg", reg, got, want)
		}
	}
}
