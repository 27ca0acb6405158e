package store

// Tamper detection: a superuser can switch the journal's triggers off
// (session_replication_role = replica) and edit rows at will. The schema cannot stop that;
// the hash chain and the cached balances must then give it away.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
)

// tampered runs fn in a transaction as the superuser with every ordinary trigger (and so
// every foreign key) switched off, and fails t if it fails.
func tampered(t *testing.T, s *Store, fn func(ctx context.Context, tx *sql.Tx) error) {
	t.Helper()
	ctx := context.Background()
	err := rawTx(ctx, s, func(tx *sql.Tx) error {
		// LOCAL: the setting ends with the transaction and never leaks into the pool.
		if _, err := tx.ExecContext(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		return fn(ctx, tx)
	})
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

// tamperFixture is a book of four entries and a second book that nobody touches. Cases
// share one database, each with books of its own: a database per case is what would make
// this test slow.
type tamperFixture struct {
	s           *Store
	book, other string
	src, a, b   string
	es          []ledger.Entry // the entries of book, by seq
}

func newTamperFixture(t *testing.T, s *Store, n int) tamperFixture {
	t.Helper()
	f := tamperFixture{s: s, book: fmt.Sprintf("t%d", n), other: fmt.Sprintf("u%d", n)}
	f.src, f.a, f.b = journalBook(t, s, f.book)
	uSrc, uA, _ := journalBook(t, s, f.other)
	for i, m := range [][3]string{{f.src, f.a, "10"}, {f.a, f.b, "4"}, {f.src, f.b, "2.5"}, {f.b, f.a, "1"}} {
		f.es = append(f.es, postOK(t, s, move(f.book, fmt.Sprintf("%s-%d", f.book, i+1), m[0], m[1], m[2], i+1)))
	}
	postOK(t, s, move(f.other, f.other+"-1", uSrc, uA, "3", 1))
	if bs := f.breaks(t, f.book); len(bs) != 0 {
		t.Fatalf("book %s is broken before any tampering: %+v", f.book, bs)
	}
	return f
}

// breaks returns the chain breaks VerifyChains reports in book.
func (f tamperFixture) breaks(t *testing.T, book string) []ChainBreak {
	t.Helper()
	_, all, err := f.s.VerifyChains(context.Background())
	if err != nil {
		t.Fatalf("VerifyChains: %v", err)
	}
	var bs []ChainBreak
	for _, b := range all {
		if b.Book == book {
			bs = append(bs, b)
		}
	}
	return bs
}

// wantBreak fails t unless VerifyChains reports a break in the fixture's book at the given
// entry (when id is set) or seq, and none in its other book unless otherToo.
func (f tamperFixture) wantBreak(t *testing.T, id string, seq int64, otherToo ...bool) {
	t.Helper()
	if bs := f.breaks(t, f.other); len(bs) > 0 && len(otherToo) == 0 {
		t.Errorf("breaks blamed on the untouched book %s: %+v", f.other, bs)
	}
	f.wantAuditFinding(t, id)
	bs := f.breaks(t, f.book)
	for _, b := range bs {
		if (id != "" && b.EntryID == id) || (id == "" && b.Seq == seq) {
			if b.Problem == "" {
				t.Errorf("break %+v does not say what is wrong", b)
			}
			return
		}
	}
	t.Errorf("VerifyChains reported %+v in book %s; want a break at entry %q / seq %d", bs, f.book, id, seq)
}

// wantAuditFinding fails t unless the full audit reports a finding that names the entry (or,
// with no id, any finding in the tampered book).
func (f tamperFixture) wantAuditFinding(t *testing.T, id string) {
	t.Helper()
	res, err := f.s.Audit(context.Background(), nil)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	for _, x := range res.Findings {
		if (id != "" && x.Entry == id) || (id == "" && strings.Contains(x.Message, f.book)) {
			return
		}
	}
	t.Errorf("the audit reported %+v; want a finding that names entry %q", res.Findings, id)
}

// wantDrift fails t unless Balances shows the account's cached balance apart from the sum
// of its postings.
func (f tamperFixture) wantDrift(t *testing.T, account string) {
	t.Helper()
	bals, err := f.s.Balances(context.Background(), f.book)
	if err != nil {
		t.Fatalf("Balances: %v", err)
	}
	for _, b := range bals {
		if b.Account == account {
			if b.Cached.Equal(b.Posted) {
				t.Errorf("account %s: cached %s equals posted %s; the tampering went unseen", account, b.Cached, b.Posted)
			}
			return
		}
	}
	t.Errorf("Balances(%s) has no row for %s", f.book, account)
}

func TestTamperDetected(t *testing.T) { tamperCases(t) }

// TestTamperDetectedInChunks plays the same attacks on books read in chunks of two entries:
// the path of books past wholeBook.
func TestTamperDetectedInChunks(t *testing.T) {
	defer func(w, c int64) { wholeBook, chunk = w, c }(wholeBook, chunk)
	wholeBook, chunk = 0, 2
	tamperCases(t)
}

func tamperCases(t *testing.T) {
	s := newStore(t)
	n := 0
	fixture := func(t *testing.T) tamperFixture { n++; return newTamperFixture(t, s, n) }

	t.Run("a posting amount changed", func(t *testing.T) {
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE postings SET amount = amount + 1 WHERE entry_id = $1 AND amount > 0`, f.es[1].ID)
			return err
		})
		f.wantBreak(t, f.es[1].ID, 2)
		f.wantDrift(t, f.b)
	})
	t.Run("both postings changed, still balanced, balances adjusted", func(t *testing.T) {
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE postings SET amount = amount * 2 WHERE entry_id = $1`, f.es[2].ID); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE accounts a SET balance = (SELECT coalesce(sum(amount), 0) FROM postings p WHERE p.account_id = a.id)`)
			return err
		})
		f.wantBreak(t, f.es[2].ID, 3)
	})
	t.Run("a posting moved to another account", func(t *testing.T) {
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE postings SET account_id = (SELECT id FROM accounts WHERE code = $2)
				WHERE entry_id = $1 AND amount > 0`, f.es[3].ID, f.src)
			return err
		})
		f.wantBreak(t, f.es[3].ID, 4)
		f.wantDrift(t, f.a)
	})
	t.Run("a description edited", func(t *testing.T) {
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE entries SET description = 'nothing to see' WHERE id = $1`, f.es[1].ID)
			return err
		})
		f.wantBreak(t, f.es[1].ID, 2)
	})
	t.Run("an effective date moved", func(t *testing.T) {
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE entries SET effective_on = effective_on - 1 WHERE id = $1`, f.es[2].ID)
			return err
		})
		f.wantBreak(t, f.es[2].ID, 3)
	})
	t.Run("a recorded time edited", func(t *testing.T) {
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE entries SET recorded_at = recorded_at - interval '1 day' WHERE id = $1`, f.es[0].ID)
			return err
		})
		f.wantBreak(t, f.es[0].ID, 1)
	})
	t.Run("metadata added", func(t *testing.T) {
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE entries SET metadata = '{"approved": "yes"}' WHERE id = $1`, f.es[3].ID)
			return err
		})
		f.wantBreak(t, f.es[3].ID, 4)
	})
	t.Run("an entry in the middle deleted", func(t *testing.T) {
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM postings WHERE entry_id = $1`, f.es[1].ID); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM entries WHERE id = $1`, f.es[1].ID)
			return err
		})
		// the entry after the gap is out of place
		f.wantBreak(t, f.es[2].ID, 3)
		f.wantDrift(t, f.a)
	})
	t.Run("an entry in the middle deleted, later ones renumbered", func(t *testing.T) {
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			for _, q := range []struct {
				q   string
				arg string
			}{
				{`DELETE FROM postings WHERE entry_id = $1`, f.es[1].ID},
				{`DELETE FROM entries WHERE id = $1`, f.es[1].ID},
				{`UPDATE entries SET seq = seq - 1 WHERE book_id = (SELECT id FROM books WHERE code = $1) AND seq > 2`, f.book},
				{`UPDATE books SET head_seq = head_seq - 1 WHERE code = $1`, f.book},
			} {
				if _, err := tx.ExecContext(ctx, q.q, q.arg); err != nil {
					return err
				}
			}
			return nil
		})
		f.wantBreak(t, f.es[2].ID, 2)
	})
	t.Run("the last entry deleted", func(t *testing.T) {
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM postings WHERE entry_id = $1`, f.es[3].ID); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM entries WHERE id = $1`, f.es[3].ID)
			return err
		})
		// the book's head still names seq 4, which no entry holds
		f.wantBreak(t, "", 4)
		f.wantDrift(t, f.a)
	})
	t.Run("a balanced entry inserted without a seal", func(t *testing.T) {
		f := fixture(t)
		id := ledger.NewID()
		forged := make([]byte, 32)
		rand.Read(forged)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			for _, q := range []struct {
				q    string
				args []any
			}{
				{`INSERT INTO entries (id, book_id, seq, kind, effective_on, recorded_at, idempotency_key, request_sha256,
				                       description, hash_version, prev_hash, hash)
				  SELECT $1, id, 5, 'transfer', '2025-01-05', clock_timestamp(), 'forged-' || $4, sha256('forged'),
				         'a forged entry', 1, $2, $3 FROM books WHERE code = $4`, []any{id, f.es[3].Hash, forged, f.book}},
				{`INSERT INTO postings (entry_id, account_id, amount)
				  SELECT $1, id, CASE code WHEN $2 THEN -100 ELSE 100 END FROM accounts WHERE code IN ($2, $3)`, []any{id, f.src, f.a}},
				// and make the rest agree: the cached balances and the head follow the forgery
				{`UPDATE accounts SET balance = balance + CASE code WHEN $1 THEN -100 ELSE 100 END WHERE code IN ($1, $2)`, []any{f.src, f.a}},
				{`UPDATE books SET head_seq = 5, head_hash = $1 WHERE code = $2`, []any{forged, f.book}},
			} {
				if _, err := tx.ExecContext(ctx, q.q, q.args...); err != nil {
					return err
				}
			}
			return nil
		})
		// Balances agree with the postings; only the chain can tell.
		bals, err := s.Balances(context.Background(), f.book)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bals {
			if !b.Cached.Equal(b.Posted) {
				t.Fatalf("fixture: the forgery should keep the balances consistent: %+v", b)
			}
		}
		f.wantBreak(t, id, 5)
	})
	t.Run("an entry inserted before the first, the seq constraint dropped", func(t *testing.T) {
		f := fixture(t)
		id := ledger.NewID()
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			for _, q := range []struct {
				q    string
				args []any
			}{
				{`ALTER TABLE entries DROP CONSTRAINT entries_seq_check`, nil},
				{`INSERT INTO entries (id, book_id, seq, kind, effective_on, recorded_at, idempotency_key, request_sha256,
				                       description, hash_version, prev_hash, hash)
				  SELECT $1, id, 0, 'transfer', '2025-01-01', clock_timestamp(), 'forged-0-' || $2, sha256('forged'),
				         'a forged first entry', 1, $3, $3 FROM books WHERE code = $2`, []any{id, f.book, ledger.GenesisHash}},
				{`INSERT INTO postings (entry_id, account_id, amount)
				  SELECT $1, id, CASE code WHEN $2 THEN -7 ELSE 7 END FROM accounts WHERE code IN ($2, $3)`, []any{id, f.src, f.a}},
				// back for the cases after this one, over rows it no longer checks
				{`ALTER TABLE entries ADD CONSTRAINT entries_seq_check CHECK (seq >= 1) NOT VALID`, nil},
			} {
				if _, err := tx.ExecContext(ctx, q.q, q.args...); err != nil {
					return err
				}
			}
			return nil
		})
		f.wantBreak(t, id, 0)
	})
	t.Run("the first and last entries moved to the ends of the seq range", func(t *testing.T) {
		// (the walk must neither page through the range between them nor overflow on it)
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			for _, q := range []struct {
				q    string
				args []any
			}{
				{`ALTER TABLE entries DROP CONSTRAINT entries_seq_check`, nil},
				{`UPDATE entries SET seq = -9000000000000000000 WHERE id = $1`, []any{f.es[0].ID}},
				{`UPDATE entries SET seq = 9000000000000000000 WHERE id = $1`, []any{f.es[3].ID}},
				{`ALTER TABLE entries ADD CONSTRAINT entries_seq_check CHECK (seq >= 1) NOT VALID`, nil},
			} {
				if _, err := tx.ExecContext(ctx, q.q, q.args...); err != nil {
					return err
				}
			}
			return nil
		})
		f.wantBreak(t, f.es[0].ID, -9000000000000000000)
	})
	t.Run("two entries' seqs swapped", func(t *testing.T) {
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			// through a free seq: (book_id, seq) stays unique at every step
			for _, q := range []struct {
				id  string
				seq int
			}{{f.es[1].ID, 1000}, {f.es[2].ID, 2}, {f.es[1].ID, 3}} {
				if _, err := tx.ExecContext(ctx, `UPDATE entries SET seq = $2 WHERE id = $1`, q.id, q.seq); err != nil {
					return err
				}
			}
			return nil
		})
		// entry 3 now sits at seq 2 and names entry 2 as its predecessor
		f.wantBreak(t, f.es[2].ID, 2)
	})
	t.Run("an entry moved to another book", func(t *testing.T) {
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE entries SET book_id = (SELECT id FROM books WHERE code = $2), seq = 100 WHERE id = $1`, f.es[3].ID, f.other)
			return err
		})
		f.wantBreak(t, "", 4, true) // the book's head names an entry it no longer has
		if len(f.breaks(t, f.other)) == 0 {
			t.Errorf("book %s gained an entry of another chain and verifies", f.other)
		}
	})
	t.Run("a book's head recorded time moved", func(t *testing.T) {
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE books SET head_recorded_at = head_recorded_at + interval '1 year' WHERE code = $1`, f.book)
			return err
		})
		// it is when a statement says the books were known
		f.wantAuditFinding(t, "")
	})
	t.Run("a cached balance changed", func(t *testing.T) {
		f := fixture(t)
		tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE accounts SET balance = balance + 5 WHERE code = $1`, f.a)
			return err
		})
		f.wantDrift(t, f.a)
		bals, err := s.Balances(context.Background(), f.book)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bals {
			if b.Account != f.a && !b.Cached.Equal(b.Posted) {
				t.Errorf("untouched account %s reported as drifted: %+v", b.Account, b)
			}
		}
	})
}

// A revert entry carries reverts_kind, the kind of the entry it corrects; the rollups and
// contract positions attribute the correction by it. It is not part of the hash, so the chain
// still verifies when it is rewritten: the audit must catch it by comparing it with the
// reverted entry's kind (which is hashed).
func TestTamperRevertsKindDetected(t *testing.T) {
	s := newStore(t)
	f := newTamperFixture(t, s, 1)
	ctx := context.Background()
	rev := postOK(t, s, ledger.Entry{Book: f.book, Kind: ledger.KindRevert, EffectiveOn: ledger.Date(2025, 1, 5),
		Key: "revert-2", Description: "revert entry 2", Reverts: f.es[1].ID,
		Postings: []ledger.Posting{{Account: f.a, Amount: tn("4")}, {Account: f.b, Amount: tn("-4")}}})
	if bs := f.breaks(t, f.book); len(bs) != 0 {
		t.Fatalf("breaks before tampering: %+v", bs)
	}
	tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE entries SET reverts_kind = 'deliver' WHERE id = $1`, rev.ID)
		return err
	})
	var kind string
	if err := s.DB().QueryRowContext(ctx, `SELECT reverts_kind FROM entries WHERE id = $1`, rev.ID).Scan(&kind); err != nil || kind != "deliver" {
		t.Fatalf("fixture: reverts_kind = %q, %v", kind, err)
	}
	res, err := s.Audit(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, fi := range res.Findings {
		if fi.Check == "correction_target" && fi.Entry == rev.ID {
			return
		}
	}
	t.Errorf("the audit does not flag entry %s, whose reverts_kind no longer matches the reverted entry; findings: %+v", rev.ID, res.Findings)
}
