package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/internal/pgtest"
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

// A store whose connections the database ended (as a restart does) reconnects by itself, and
// no caller sees the dead connections: the first to meet one drops the pool's idle ones and
// asks again on a fresh connection.
func TestStoreReconnectsAfterItsConnectionsEnd(t *testing.T) {
	t.Parallel()
	s, err := Open(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	addContract(t, s, contractDoc("C1", nil))
	secret, err := s.CreateToken(ctx, "t", "viewer", nil)
	if err != nil {
		t.Fatal(err)
	}
	// endAll fills the pool with idle connections, then has the database end every one.
	endAll := func() {
		t.Helper()
		var conns []*sql.Conn
		for range 4 {
			c, err := s.DB().Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		if _, err := conns[0].ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
		conns[0].ExecContext(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
		for _, c := range conns {
			c.Close()
		}
	}
	endAll()
	if _, err := s.TokenBySecret(ctx, secret); err != nil {
		t.Errorf("the token after the connections ended: %v", err)
	}
	endAll()
	for i := range 5 {
		r := deliverReq("C1", "1", cday(2025, 3, 1+i))
		r.Key = "after-" + strconv.Itoa(i)
		if _, err := s.Deliver(ctx, r); err != nil {
			t.Errorf("delivery %d after the connections ended: %v", i, err)
		}
	}
	endAll()
	if _, err := s.Contract(ctx, "C1"); err != nil {
		t.Errorf("a read after the connections ended: %v", err)
	}
	wantPosition(t, s, "C1", map[string]string{"delivered": "5"})
}
