package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A write behind a lock another transaction holds gives up after the lock timeout with
// ErrBusy, on both write paths (an operation under a contract, a journal entry), and writes
// nothing; once the lock is free the same write succeeds.
func TestLockTimeoutOnEveryWritePath(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("C1", nil))
	src, a, _ := journalBook(t, s, "J1")
	s.LockTimeout = 500 * time.Millisecond

	for _, w := range []struct {
		book, says string
		write      func() error
	}{
		{"C1", "deliver: lock timeout: contract C1 is busy", func() error {
			r := deliverReq("C1", "1", cday(2025, 3, 1))
			r.Key = "busy-deliver"
			_, err := s.Deliver(ctx, r)
			return err
		}},
		{"J1", "post transfer: lock timeout", func() error {
			_, _, err := s.Post(ctx, move("J1", "busy-post", src, a, "1", 1))
			return err
		}},
	} {
		tx, err := s.DB().Beginx()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`SELECT 1 FROM books WHERE code = $1 FOR UPDATE`, w.book); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = w.write()
		took := time.Since(start)
		tx.Rollback()
		if !errors.Is(err, ErrBusy) || err == nil || !strings.Contains(err.Error(), w.says) {
			t.Errorf("%s behind a held lock: %v, want ErrBusy saying %q", w.book, err, w.says)
		}
		if took < 400*time.Millisecond || took > 5*time.Second {
			t.Errorf("%s: gave up after %s, want about 500ms", w.book, took)
		}
		if err := w.write(); err != nil {
			t.Errorf("%s once the lock is free: %v", w.book, err)
		}
	}
	var n int
	if err := s.DB().Get(&n, `SELECT count(*) FROM entries WHERE idempotency_key LIKE 'busy-%'`); err != nil || n != 2 {
		t.Errorf("%d entries under the keys (%v), want 2: one each, written once the lock was free", n, err)
	}
}

// The limits are the write transaction's own (SET LOCAL): the pooled connection a write used
// keeps the database's settings for whatever it does next.
func TestWriteLimitsEndWithTheTransaction(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	s.DB().SetMaxOpenConns(1) // every call below uses the same connection
	addContract(t, s, contractDoc("C1", nil))
	r := deliverReq("C1", "1", cday(2025, 3, 1))
	r.Key = "d1"
	if _, err := s.Deliver(ctx, r); err != nil {
		t.Fatal(err)
	}
	var lock, stmt string
	if err := s.DB().QueryRow(`SELECT current_setting('lock_timeout'), current_setting('statement_timeout')`).Scan(&lock, &stmt); err != nil {
		t.Fatal(err)
	}
	if lock != "0" || stmt != "0" {
		t.Errorf("after a write its connection has lock_timeout %s, statement_timeout %s; want the database's 0 and 0", lock, stmt)
	}
}
