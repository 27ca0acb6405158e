package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

// operation_state takes the book's lock and then reads the contract's state. A writer that
// waited for the lock must see what the writer before it committed: the domain's own rule (a
// delivery beyond what is open) refuses it, not only the database's floor as a last resort.
func TestOperationStateSeesWhatTheWriterItWaitedForCommitted(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := addContract(t, s, contractDoc("SNAP-1", nil)) // 1,000 t

	// A: an operation under way, holding the book's lock, that has written a delivery of 100 t.
	txA, err := s.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer txA.Rollback()
	cur, err := operationState(ctx, txA, c.Code, "snap-a", "", s.writerRole)
	if err != nil {
		t.Fatal(err)
	}
	st, _, b, err := cur.state()
	if err != nil {
		t.Fatal(err)
	}
	e, err := ledger.BuildDeliver(&st.Contract, st.Schedule, st.Position, deliverReq(c.Code, "100", c.TermStart))
	if err != nil {
		t.Fatal(err)
	}
	e.ID, e.Key, e.Request = ledger.NewID(), "snap-a", ledger.RequestDigest("snap", "a")
	if err := s.insertEntry(ctx, txA, b, cur.bookAccounts, &e); err != nil {
		t.Fatal(err)
	}

	// B: 950 t, which fits before A's delivery and not after it. It waits for A's lock.
	done := make(chan error, 1)
	go func() {
		r := deliverReq(c.Code, "950", c.TermStart)
		r.Key = "snap-b"
		_, err := s.Deliver(ctx, r)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := s.DB().GetContext(ctx, &waiting, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B never waited for A's lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := txA.Commit(); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if !errors.Is(err, ledger.ErrInsufficient) || !strings.Contains(err.Error(), "900.000 t open") {
		t.Fatalf("B after A committed: got %v; want the domain's refusal, which sees 900.000 t open", err)
	}
	wantPosition(t, s, c.Code, map[string]string{"delivered": "100", "open": "900", "holding": "100"})
}
