package bulk

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
)

// A cell that a spreadsheet would run as a formula reaches the ledger as the text after the
// apostrophe that marks it as text; the reject file writes every text cell neutralised (a
// person opens it in a spreadsheet to fix it), figures as they are, and reading the reject
// file back gives the same values as the original file.
func TestCSVCellsNeutralisedAndRestored(t *testing.T) {
	const file = "op,contract,tonnes,date,beneficiary,reason,note,key\n" +
		"retire,C-1,-2.000,2025-03-01,\"'=HYPERLINK(\"\"http://x\"\")\",=1+1,'tis,'@key\n" +
		"deliver,C-1,5,2025-03-01,,\"\x1b[31mred\",''=x,-k\n"
	rd, err := newCSVReader(strings.NewReader(file), "ops.csv", "")
	if err != nil {
		t.Fatal(err)
	}
	var rows []row
	for {
		r, ok := rd.next()
		if !ok {
			break
		}
		rows = append(rows, r)
	}
	if err := rd.failed(); err != nil || len(rows) != 2 {
		t.Fatalf("read %d rows, err %v", len(rows), err)
	}
	want := []map[string]string{
		{"contract": "C-1", "tonnes": "-2.000", "date": "2025-03-01", "beneficiary": `=HYPERLINK("http://x")`, "reason": "=1+1", "note": "'tis"},
		{"contract": "C-1", "tonnes": "5", "date": "2025-03-01", "reason": "\x1b[31mred", "note": "'=x"},
	}
	wantKeys := []string{"@key", "-k"}
	for i, r := range rows {
		for k, v := range want[i] {
			if r.fields[k] != v {
				t.Errorf("row %d %s = %q, want %q", i+1, k, r.fields[k], v)
			}
		}
		if r.key != wantKeys[i] {
			t.Errorf("row %d key = %q, want %q", i+1, r.key, wantKeys[i])
		}
	}

	var out bytes.Buffer
	rj := newRejects(nopCloser{&out}, &File{Name: "ops.csv", Format: "csv"}).(*csvRejects)
	if err := rj.header(rd.header); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := rj.Reject(r, []RowError{{Field: "reason", Value: "=1+1", Rule: "is bad"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rj.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(out.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := recs[1][2]; got != "-2.000" {
		t.Errorf("reject file tonnes %q, want the figure -2.000 as it is", got)
	}
	for _, rec := range recs[1:] {
		for j, cell := range rec {
			if cell != "" && strings.ContainsRune("=+@\t\r", rune(cell[0])) || (strings.HasPrefix(cell, "-") && j != 2) {
				t.Errorf("reject file cell %q (column %s) starts a formula", cell, recs[0][j])
			}
		}
	}
	again, err := newCSVReader(bytes.NewReader(out.Bytes()), "ops.rejects.csv", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		r, ok := again.next()
		if !ok {
			t.Fatalf("reject file has %d rows, want %d", i, len(rows))
		}
		for k, v := range want[i] {
			if r.fields[k] != v {
				t.Errorf("reject file row %d %s = %q, want %q", i+1, k, r.fields[k], v)
			}
		}
		if r.key != wantKeys[i] {
			t.Errorf("reject file row %d key = %q, want %q", i+1, r.key, wantKeys[i])
		}
	}
}
