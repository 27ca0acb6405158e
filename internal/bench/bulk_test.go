package bench

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// TestBulkFilesAreAccepted writes the bulk section's files small and records every row
// through the store, as the importer would: a figure measured on rows the ledger refuses
// would measure the refusals. It also checks what the importer cannot: every date is in the
// term and not today or later, and each contract's deliveries are in date order.
func TestBulkFilesAreAccepted(t *testing.T) {
	ctx := context.Background()
	today := ledger.Date(time.Now().UTC().Date())
	bc := BulkConfig{Rows: 500, Contracts: 7}
	contractsFile, deliveriesFile, err := writeBulkFiles(t.TempDir(), bc, today)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	f, err := os.Open(contractsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	terms := map[string]ledger.Contract{}
	for sc.Scan() {
		c, err := ledger.ParseContractJSON(strings.NewReader(sc.Text())) // the contract file's reader
		if err != nil {
			t.Fatalf("contracts line %d: %v", len(terms)+1, err)
		}
		if _, err := s.AddContract(ctx, c, ""); err != nil {
			t.Fatalf("contract %s: %v", c.Code, err)
		}
		terms[c.Code] = c
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(terms) != bc.Contracts {
		t.Fatalf("%d contracts in the file, want %d", len(terms), bc.Contracts)
	}

	d, err := os.Open(deliveriesFile)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r := csv.NewReader(d)
	header, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(header, ","); got != "op,contract,tonnes,date,key" {
		t.Fatalf("header %q", got)
	}
	last := map[string]time.Time{}
	rows := 0
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows++
		op, code, tonnes, date, key := rec[0], rec[1], rec[2], rec[3], rec[4]
		if want := bulkCode((rows-1)%bc.Contracts + 1); op != "deliver" || code != want || tonnes != "1" || key != "" {
			t.Fatalf("row %d: %q, want deliver,%s,1,<date>, (round-robin, empty key)", rows, rec, want)
		}
		day, err := ledger.ParseDate("date", date)
		if err != nil {
			t.Fatal(err)
		}
		if c := terms[code]; day.Before(c.TermStart) || !day.Before(today) || day.Before(last[code]) {
			t.Fatalf("row %d: %s is out of order or outside %s .. yesterday", rows, date, ledger.FormatDate(c.TermStart))
		}
		last[code] = day
		if _, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: code, Tonnes: ledger.MustTonnes(tonnes), Date: day,
			Key: fmt.Sprintf("test:%d", rows)}); err != nil {
			t.Fatalf("row %d (%q): %v", rows, rec, err)
		}
	}
	if rows != bc.Rows {
		t.Fatalf("%d rows, want %d", rows, bc.Rows)
	}
	res, err := s.Audit(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("audit: %+v", res.Findings[0])
	}
}

// TestCopyCeiling loads the ceiling's bare tables small, over more than one transaction, and
// checks that they hold what the section says they hold: every entry with two postings that
// balance, between two accounts of its own book, and each book's seq and hashes chained.
func TestCopyCeiling(t *testing.T) {
	ctx := context.Background()
	today := ledger.Date(time.Now().UTC().Date())
	url := pgtest.EmptyURL(t)
	bc := BulkConfig{Rows: copyBatch + 321, Contracts: 13}
	if _, err := copyCeiling(ctx, url, bc, 5, today, io.Discard); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		q    string
		want int
	}{
		{`SELECT count(*) FROM entries`, bc.Rows},
		{`SELECT count(*) FROM postings`, 2 * bc.Rows},
		{`SELECT count(*) FROM accounts`, 5 * bc.Contracts},
		{`SELECT count(*) FROM (SELECT entry_id FROM postings GROUP BY entry_id HAVING sum(amount) = 0 AND count(*) = 2) x`, bc.Rows},
		{`SELECT count(*) FROM postings p JOIN entries e ON e.id = p.entry_id JOIN accounts a ON a.id = p.account_id WHERE a.book_id <> e.book_id`, 0},
		{`SELECT count(DISTINCT (book_id, seq)) FROM entries`, bc.Rows},
		{`SELECT count(*) FROM entries WHERE length(hash) <> 32 OR length(prev_hash) <> 32 OR length(request_sha256) <> 32`, 0},
		{`SELECT count(*) FROM entries e JOIN entries p ON p.book_id = e.book_id AND p.seq = e.seq - 1 WHERE e.prev_hash <> p.hash`, 0},
		{`SELECT count(*) FROM entries WHERE effective_on < current_date - interval '3 years' OR effective_on >= current_date`, 0},
	} {
		var got int
		if err := db.QueryRowContext(ctx, c.q).Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		if got != c.want {
			t.Errorf("%s: %d, want %d", c.q, got, c.want)
		}
	}
}
