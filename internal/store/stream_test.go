package store

import (
	"bytes"
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq/oid"

	"github.com/carbonledger/carbonledger/ledger"
)

// TestPackedRows decodes rows packed by PostgreSQL's own record_send: uuids, dates and
// timestamps on both sides of 2000-01-01 (the binary forms' epoch), NULLs, text with
// multi-byte characters, bytea; and refuses a row of other columns, a NULL where none may
// be, and bytes cut short.
func TestPackedRows(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	cols := packedTestCols
	query := `SELECT record_send(ROW(u, d, ts, txt, b, i2, i8)) FROM (VALUES
		('0b4e5f0a-8c1d-4f2e-9a3b-7c6d5e4f3a2b'::uuid, DATE '2026-06-01', TIMESTAMPTZ '2026-06-01 23:59:55.123456+00', 'tonnes ✓'::text,
		 '\x00ff'::bytea, 7::int2, 1::int8),
		('00000000-0000-0000-0000-000000000000', DATE '1999-12-31', TIMESTAMPTZ '1999-12-31 23:59:59.999999+00', NULL, '', NULL, -30000000000)
		) v(u, d, ts, txt, b, i2, i8) ORDER BY i8 DESC`
	var rows [][]byte
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		return packedEach(ctx, tx, query, func(p *packed) error {
			rows = append(rows, slices.Clone(p.b))
			p.b = nil
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	// A row its reader does not read to the end is refused: the columns were not the ones asked for.
	err = s.read(ctx, func(tx *sqlx.Tx) error {
		return packedEach(ctx, tx, query, func(p *packed) error { return nil })
	})
	if err == nil || !strings.Contains(err.Error(), "bytes left over") {
		t.Errorf("a row not read to its end: err = %v", err)
	}
	checkPacked(t, rows)
	whole := slices.Concat(rows...)
	// What must be refused.
	vals := make([][]byte, len(cols))
	for name, tc := range map[string]struct {
		cols []column
		b    []byte
		want string
	}{
		"fewer columns":   {cols[:6], whole, "7 columns, 6 were expected"},
		"another type":    {append([]column{col(oid.T_int8)}, cols[1:]...), whole, "has type 2950, 20 was expected"},
		"a NULL":          {append(append([]column{}, cols[:3]...), append([]column{col(oid.T_text)}, cols[4:]...)...), whole, "column 4 of a packed row is NULL"},
		"bytes cut short": {cols, whole[:len(whole)-3], "end 3 bytes early"},
	} {
		q := &packed{b: tc.b}
		for q.more() {
			q.row(tc.cols, vals)
		}
		if q.err == nil || !strings.Contains(q.err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, q.err, tc.want)
		}
	}
}

// more reports whether rows are left to read (and nothing went wrong): the tests read
// several records from one buffer.
func (p *packed) more() bool { return p.err == nil && len(p.b) > 0 }

var packedTestCols = []column{col(oid.T_uuid), col(oid.T_date), col(oid.T_timestamptz), nullableCol(oid.T_text),
	col(oid.T_bytea), nullableCol(oid.T_int2), col(oid.T_int8)}

// checkPacked checks the two rows of TestPackedRows.
func checkPacked(t *testing.T, rows [][]byte) {
	t.Helper()
	cols := packedTestCols
	vals := make([][]byte, len(cols))
	p := &packed{b: rows[0]}
	p.row(cols, vals)
	if p.err != nil {
		t.Fatal(p.err)
	}
	if got := uuidString(vals[0]); got != "0b4e5f0a-8c1d-4f2e-9a3b-7c6d5e4f3a2b" {
		t.Errorf("uuid = %s", got)
	}
	if got := dateAt(vals[1]); !got.Equal(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)) || got.Location() != time.UTC {
		t.Errorf("date = %v", got)
	}
	if got := timestampAt(vals[2]); !got.Equal(time.Date(2026, 6, 1, 23, 59, 55, 123_456_000, time.UTC)) || got.Location() != time.UTC {
		t.Errorf("timestamp = %v", got)
	}
	if string(vals[3]) != "tonnes ✓" || string(vals[4]) != "\x00\xff" || int16At(vals[5]) != 7 || int64At(vals[6]) != 1 {
		t.Errorf("row 1 = %q %x %x %x", vals[3], vals[4], vals[5], vals[6])
	}
	p = &packed{b: rows[1]}
	p.row(cols, vals)
	if p.err != nil {
		t.Fatal(p.err)
	}
	if uuidString(vals[0]) != "00000000-0000-0000-0000-000000000000" || !dateAt(vals[1]).Equal(time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)) ||
		!timestampAt(vals[2]).Equal(time.Date(1999, 12, 31, 23, 59, 59, 999_999_000, time.UTC)) {
		t.Errorf("row 2 = %s %v %v", uuidString(vals[0]), dateAt(vals[1]), timestampAt(vals[2]))
	}
	if vals[3] != nil || vals[4] == nil || len(vals[4]) != 0 || vals[5] != nil || int64At(vals[6]) != -30000000000 {
		t.Errorf("row 2: NULLs and empties = %q %q %q, int8 %d", vals[3], vals[4], vals[5], int64At(vals[6]))
	}
	if p.more() {
		t.Errorf("bytes left after the last row: %d", len(p.b))
	}
}

func TestParseInt64Array(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int64
		ok   bool
	}{
		{"{}", nil, true},
		{"{7}", []int64{7}, true},
		{"{1,-2,30000000000}", []int64{1, -2, 30000000000}, true},
		{"", nil, false}, {"{", nil, false}, {"1,2", nil, false}, {"{1,,2}", nil, false}, {"{1,x}", nil, false}, {"{NULL}", nil, false},
	} {
		got, err := parseInt64Array(nil, []byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && !slices.Equal(got, tc.want)) {
			t.Errorf("parseInt64Array(%q) = %v, %v; want %v (ok %t)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// entryRecorder keeps every entry a journal walk visits.
type entryRecorder struct{ entries []ledger.Entry }

func (r *entryRecorder) Book(BookInfo) error        { return nil }
func (r *entryRecorder) Entry(e ledger.Entry) error { r.entries = append(r.entries, e); return nil }
func (r *entryRecorder) EndBook(BookInfo) error     { return nil }

// A book is read whole (packed rows) or in chunks of entries (books past wholeBook); both
// reads must give the same entries, the same audit and the same findings after tampering.
func TestWalkPathsAgree(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := addContract(t, s, contractDoc("WP-1", nil))
	if _, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: c.Code, Tonnes: tn("100.5"), Date: c.TermStart, Vintage: 2024, Key: "d"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Retire(ctx, ledger.RetireRequest{Contract: c.Code, Tonnes: tn("40.125"), Date: c.TermStart, Beneficiary: "B", Reason: "r", Key: "r"}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: c.Code, Tonnes: tn("7"), Date: c.TermStart.AddDate(0, 1, 0), Key: "d2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revert(ctx, ledger.RevertRequest{Entry: d.Entry.ID, Reason: "wrong quantity", Key: "rv"}); err != nil {
		t.Fatal(err)
	}
	newTamperFixture(t, s, 1)
	read := func() ([]ledger.Entry, *AuditResult) {
		t.Helper()
		var rec entryRecorder
		if err := s.WalkJournal(ctx, nil, &rec); err != nil {
			t.Fatal(err)
		}
		res, err := s.Audit(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rec.entries, res
	}
	compare := func(what string, findings bool) {
		t.Helper()
		defer func(w, c int64) { wholeBook, chunk = w, c }(wholeBook, chunk)
		whole, wholeRes := read()
		wholeBook, chunk = 0, 2
		chunked, chunkedRes := read()
		if len(whole) != len(chunked) || len(whole) < 8 {
			t.Fatalf("%s: %d entries read whole, %d in chunks", what, len(whole), len(chunked))
		}
		for i := range whole {
			a, errA := whole[i].Canonical()
			b, errB := chunked[i].Canonical()
			if errA != nil || errB != nil || !bytes.Equal(a, b) || !bytes.Equal(whole[i].Hash, chunked[i].Hash) {
				t.Fatalf("%s: entry %d differs:\n whole   %s %x\n chunked %s %x", what, i, a, whole[i].Hash, b, chunked[i].Hash)
			}
		}
		checks := func(r *AuditResult) []string {
			var out []string
			for _, f := range r.Findings {
				out = append(out, f.Check+" "+f.Entry)
			}
			return out
		}
		if (len(wholeRes.Findings) > 0) != findings {
			t.Fatalf("%s: findings %v", what, checks(wholeRes))
		}
		if wholeRes.Digest != chunkedRes.Digest || wholeRes.Entries != chunkedRes.Entries || wholeRes.Postings != chunkedRes.Postings ||
			!slices.Equal(checks(wholeRes), checks(chunkedRes)) {
			t.Fatalf("%s: audits differ:\n whole   %s %d %d %v\n chunked %s %d %d %v", what, wholeRes.Digest, wholeRes.Entries,
				wholeRes.Postings, checks(wholeRes), chunkedRes.Digest, chunkedRes.Entries, chunkedRes.Postings, checks(chunkedRes))
		}
	}
	compare("clean", false)
	tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE postings SET amount = amount + 1 WHERE amount > 50`)
		return err
	})
	compare("an amount changed", true)
	// The whole-book walk links postings to entries by the last 8 bytes of the uuid: two
	// entries that share them (here by a superuser's hand) still get only their own postings.
	tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			WITH e AS (SELECT e.id, e.seq FROM entries e JOIN books b ON b.id = e.book_id WHERE b.code = 'WP-1'),
			     x AS (SELECT (SELECT id FROM e WHERE seq = 3) AS old,
			                  overlay(uuid_send((SELECT id FROM e WHERE seq = 3)) PLACING substring(uuid_send((SELECT id FROM e WHERE seq = 2)) FROM 9) FROM 9) AS new),
			     p AS (UPDATE postings SET entry_id = encode(x.new, 'hex')::uuid FROM x WHERE entry_id = x.old)
			UPDATE entries SET id = encode(x.new, 'hex')::uuid FROM x WHERE id = x.old`)
		return err
	})
	compare("two entries share the tail of their uuid", true)
}

// A walk prepares each of its per-book queries once: three contracts (with their accounts,
// books of their own) are walked with the same three statements as one would be.
func TestWalkPreparesEachQueryOnce(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, code := range []string{"PQ-1", "PQ-2", "PQ-3"} {
		c := addContract(t, s, contractDoc(code, nil))
		if _, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: c.Code, Tonnes: tn("5"), Date: c.TermStart, Key: code + "-d"}); err != nil {
			t.Fatal(err)
		}
	}
	var rec entryRecorder
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		books, err := booksTx(ctx, tx, nil)
		if err != nil {
			return err
		}
		if len(books) < 3 {
			t.Fatalf("%d books, want at least 3", len(books))
		}
		q := prepared(tx)
		if err := walkJournal(ctx, q, books, &rec); err != nil {
			return err
		}
		// the span of a book's seqs, its postings and its entries
		if len(q.stmts) != 3 {
			t.Errorf("%d statements prepared for %d books, want 3", len(q.stmts), len(books))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.entries) < 6 {
		t.Errorf("walked %d entries, want each contract's sign and delivery at least", len(rec.entries))
	}
}
