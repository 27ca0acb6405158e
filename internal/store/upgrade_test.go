package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/migrations"
)

// A ledger written by a binary from before the functions file (row-level posting trigger,
// row guards, rollups refining rollups) migrates forward: the functions file swaps the
// triggers, new entries extend the old chains, and the audit finds every balance and rollup
// equal to the postings, old and new alike.
func TestLedgerWrittenBeforeTheFunctionsFileMigratesAndAuditsClean(t *testing.T) {
	ctx := context.Background()
	url := pgtest.EmptyURL(t)
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := migrations.ApplyNumbered(ctx, db); err != nil {
		t.Fatal(err)
	}
	// The old write path, as that binary ran it: lock the book, read the clock, seal, insert
	// the entry and then each posting, each firing the old row trigger.
	oldPost := func(e ledger.Entry) {
		t.Helper()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var bookID, seq int64
		var head []byte
		if err := tx.QueryRowContext(ctx, `SELECT id, head_seq, head_hash FROM books WHERE code = $1 FOR UPDATE`, e.Book).Scan(&bookID, &seq, &head); err != nil {
			t.Fatal(err)
		}
		var now sql.NullTime
		if err := tx.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
			t.Fatal(err)
		}
		e.ID, e.Request = ledger.NewID(), ledger.RequestDigest("old", e.Key)
		if err := e.Seal(seq+1, head, now.Time); err != nil {
			t.Fatal(err)
		}
		meta, _ := json.Marshal(nonNil(e.Metadata))
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO entries (id, book_id, seq, kind, effective_on, recorded_at, idempotency_key, request_sha256,
			                     description, metadata, hash_version, prev_hash, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			e.ID, bookID, e.Seq, string(e.Kind), e.EffectiveOn, e.RecordedAt, e.Key, e.Request, e.Description,
			string(meta), e.HashVersion, e.PrevHash, e.Hash); err != nil {
			t.Fatal(err)
		}
		for _, p := range e.Postings {
			if _, err := tx.ExecContext(ctx, `INSERT INTO postings (entry_id, account_id, amount)
				SELECT $1, id, CAST($3 AS numeric) FROM accounts WHERE code = $2`, e.ID, p.Account, p.Amount.String()); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO books (code) VALUES ('up')`,
		`INSERT INTO accounts (code, book_id, kind, floor) SELECT 'test:up:src', id, 'equity', NULL FROM books WHERE code = 'up'`,
		`INSERT INTO accounts (code, book_id, kind, floor) SELECT 'test:up:a', id, 'asset', 0 FROM books WHERE code = 'up'`,
		`INSERT INTO accounts (code, book_id, kind, floor) SELECT 'test:up:b', id, 'asset', 0 FROM books WHERE code = 'up'`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 6; i++ {
		oldPost(move("up", fmt.Sprintf("old-in-%d", i), "test:up:src", "test:up:a", "10", i))
		oldPost(move("up", fmt.Sprintf("old-out-%d", i), "test:up:a", "test:up:b", "2.5", i))
	}

	if _, err := Open(ctx, url); err == nil {
		t.Fatal("Open accepted a database whose functions are not this binary's")
	}
	if _, err := Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 7; i <= 9; i++ {
		postOK(t, s, move("up", fmt.Sprintf("new-in-%d", i), "test:up:src", "test:up:a", "10", i))
		postOK(t, s, move("up", fmt.Sprintf("new-out-%d", i), "test:up:a", "test:up:b", "2.5", i))
	}
	// A back-dated draw that the old entries already cover is refused: 45 t are in a, but
	// only 7.5 of them were there on Jan 1.
	if _, _, err := s.Post(ctx, move("up", "too-early", "test:up:a", "test:up:b", "8", 1)); err == nil {
		t.Error("a back-dated overdraft against entries written before the upgrade was accepted")
	}
	if got := cachedBalance(t, s, "test:up:a"); !got.Equal(tn("67.5")) {
		t.Errorf("balance of test:up:a: %s, want 67.5", got)
	}
	assertIntact(t, s)
	wantAuditClean(t, s)
}
