package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

var digits = regexp.MustCompile(`[0-9.]+`)

// groupCounts reads what s's groups did.
func groupCounts(s *Store) (groups, written, alone int64) {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return s.group.groups, s.group.written, s.group.alone
}

// Operations that arrive together are written in fewer transactions than operations, each
// gets its own entry and its own answer, and a refusal among them is the refusal the
// operation gets on its own, leaving the others written.
func TestGroupWritesConcurrentOperationsTogether(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	codes := []string{"GA", "GB", "GC"}
	for _, c := range codes {
		addContract(t, s, contractDoc(c, nil)) // 1,000 t over 2025
	}
	var reqs []ledger.Request
	for i := range 60 {
		reqs = append(reqs, ledger.DeliverRequest{Contract: codes[i%3], Tonnes: tn("10"), Date: ledger.Date(2025, 3, 1+i%20),
			Key: fmt.Sprintf("g-%d", i)})
	}
	bad := map[int]error{}
	for _, r := range []struct {
		req  ledger.Request
		kind error
	}{
		{ledger.DeliverRequest{Contract: "GA", Tonnes: tn("2000"), Date: ledger.Date(2025, 3, 2), Key: "g-over"}, ledger.ErrInsufficient},
		{ledger.DeliverRequest{Contract: "GB", Tonnes: tn("1"), Date: time.Now().UTC().AddDate(0, 0, 9), Key: "g-future"}, ledger.ErrInvalid},
		{ledger.DeliverRequest{Contract: "NOPE", Tonnes: tn("1"), Date: ledger.Date(2025, 3, 2), Key: "g-unknown"}, ledger.ErrNotFound},
		{ledger.RetireRequest{Contract: "GC", Tonnes: tn("5000"), Date: ledger.Date(2025, 3, 25), Beneficiary: "Acme", Reason: "offset", Key: "g-retire"}, ledger.ErrInsufficient},
	} {
		bad[len(reqs)] = r.kind
		reqs = append(reqs, r.req)
	}
	g0, w0, _ := groupCounts(s)
	res := make([]Result, len(reqs))
	errs := raceOps(len(reqs), func(i int) (err error) {
		res[i], err = s.Submit(ctx, reqs[i])
		return err
	})
	ids := map[string]bool{}
	for i, err := range errs {
		if kind, isBad := bad[i]; isBad {
			if !errors.Is(err, kind) {
				t.Errorf("%s: got %v, want an error of kind %v", reqs[i].IdempotencyKey(), err, kind)
				continue
			}
			// the refusal the operation gets on its own, word for word (the figures it
			// names are the contract's now)
			sp, serr := specOf(ctx, reqs[i])
			if serr != nil {
				t.Fatal(serr)
			}
			if _, alone := s.operate(ctx, sp); alone == nil || alone.Error() != err.Error() && !bytes.Equal(digits.ReplaceAll([]byte(alone.Error()), nil), digits.ReplaceAll([]byte(err.Error()), nil)) {
				t.Errorf("%s: in a group %q, on its own %v", reqs[i].IdempotencyKey(), err, alone)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", reqs[i].IdempotencyKey(), err)
			continue
		}
		if res[i].Replay || ids[res[i].Entry.ID] {
			t.Errorf("%s: entry %s replayed or shared", reqs[i].IdempotencyKey(), res[i].Entry.ID)
		}
		ids[res[i].Entry.ID] = true
	}
	g1, w1, _ := groupCounts(s)
	if w1-w0 != 60 || g1-g0 >= 60 {
		t.Errorf("60 deliveries at once were written as %d operations in %d transactions; want 60 in fewer", w1-w0, g1-g0)
	}
	for _, c := range codes {
		st, err := s.Contract(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Position.Delivered.Equal(tn("200")) || st.Entries != 21 {
			t.Errorf("%s: delivered %s in %d entries, want 200 t in 21 (the sign entry and 20 deliveries)", c, st.Position.Delivered, st.Entries)
		}
	}
	checkSound(t, s)
}

// A contract written by another process since a group last wrote it is read again: the
// group never checks an operation against the state it kept.
func TestGroupReadsAContractAnotherWriterMoved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := twoStores(t)
	addContract(t, a, contractDoc("GX", nil)) // 1,000 t, no tolerance
	deliver := func(s *Store, tonnes, key string) error {
		_, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: "GX", Tonnes: tn(tonnes), Date: ledger.Date(2025, 4, 1), Key: key})
		return err
	}
	if err := deliver(a, "10", "x-1"); err != nil { // a keeps GX's state
		t.Fatal(err)
	}
	if err := deliver(b, "985", "x-2"); err != nil {
		t.Fatal(err)
	}
	_, _, alone0 := groupCounts(a)
	err := refused(t, a, ledger.ErrInsufficient, func() error { return deliver(a, "10", "x-3") })
	if _, _, alone1 := groupCounts(a); alone1 != alone0 {
		t.Errorf("the refusal came from the database (the operation was written on its own): %v", err)
	}
	if err := deliver(a, "5", "x-4"); err != nil {
		t.Fatal(err)
	}
	st, err := a.Contract(ctx, "GX")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Position.Delivered.Equal(tn("1000")) || !st.Position.Open.IsZero() {
		t.Errorf("delivered %s, open %s; want 1000 and 0", st.Position.Delivered, st.Position.Open)
	}
	checkSound(t, a)
}

// The same request sent many times at once under one key is written once; every other
// answer is that entry, replayed; another request under the key is a conflict.
func TestGroupReplaysOneKeySentAtOnce(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("GR", nil))
	req := ledger.DeliverRequest{Contract: "GR", Tonnes: tn("7"), Date: ledger.Date(2025, 5, 1), Key: "same-key"}
	res := make([]Result, 12)
	errs := raceOps(len(res), func(i int) (err error) {
		res[i], err = s.Deliver(ctx, req)
		return err
	})
	first := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		if !res[i].Replay {
			first++
		}
		if res[i].Entry.ID != res[0].Entry.ID {
			t.Errorf("attempt %d answered entry %s, attempt 0 entry %s", i, res[i].Entry.ID, res[0].Entry.ID)
		}
	}
	if first != 1 {
		t.Errorf("%d attempts were answered as the first; want exactly 1", first)
	}
	other := req
	other.Tonnes = tn("8")
	refused(t, s, ledger.ErrConflict, func() error { _, err := s.Deliver(ctx, other); return err })
	checkSound(t, s)
}

// When the database refuses a group's write as a whole (here another process takes one of
// its keys between the group's look-up and its write), nothing of the group is written and
// each operation is written on its own, getting the answer it would have had alone.
func TestGroupRefusedWholeIsWrittenOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := twoStores(t)
	addContract(t, a, contractDoc("GP", nil))
	addContract(t, a, contractDoc("GQ", nil))
	var once sync.Once
	var taken string
	a.group.beforeWrite = func(keys []string) {
		once.Do(func() {
			taken = keys[0]
			if _, err := b.Deliver(ctx, ledger.DeliverRequest{Contract: "GQ", Tonnes: tn("1"), Date: ledger.Date(2025, 6, 1), Key: taken}); err != nil {
				t.Errorf("the other writer: %v", err)
			}
		})
	}
	reqs := make([]ledger.DeliverRequest, 8)
	for i := range reqs {
		reqs[i] = ledger.DeliverRequest{Contract: "GP", Tonnes: tn("3"), Date: ledger.Date(2025, 6, 2), Key: fmt.Sprintf("p-%d", i)}
	}
	errs := raceOps(len(reqs), func(i int) error { _, err := a.Deliver(ctx, reqs[i]); return err })
	written := 0
	for i, err := range errs {
		switch {
		case reqs[i].Key == taken:
			if !errors.Is(err, ledger.ErrConflict) {
				t.Errorf("%s, taken by the other writer: got %v, want a conflict", reqs[i].Key, err)
			}
		case err != nil:
			t.Errorf("%s: %v", reqs[i].Key, err)
		default:
			written++
		}
	}
	if _, _, alone := groupCounts(a); written != 7 || alone == 0 {
		t.Errorf("%d written, %d written on their own; want 7, after the refused group", written, alone)
	}
	st, err := a.Contract(ctx, "GP")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Position.Delivered.Equal(tn("21")) {
		t.Errorf("GP delivered %s, want 21", st.Position.Delivered)
	}
	checkSound(t, a)
}

// An operation whose caller gives up while it waits behind a group (its context ends) is
// taken out of the queue: the caller gets a timeout that says nothing was written, and
// nothing is.
func TestGroupGivenUpWhileQueuedWritesNothing(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("GW", nil))
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.group.beforeWrite = func([]string) {
		once.Do(func() {
			close(held)
			<-release // the first group holds GW until released
		})
	}
	first := make(chan error, 1)
	go func() {
		_, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: "GW", Tonnes: tn("1"), Date: ledger.Date(2025, 7, 1), Key: "w-1"})
		first <- err
	}()
	<-held
	// Two groups may be in flight, but not on one contract: this one waits in the queue.
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := s.Deliver(wctx, ledger.DeliverRequest{Contract: "GW", Tonnes: tn("1"), Date: ledger.Date(2025, 7, 1), Key: "w-2"})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("given up while queued: %v, want a timeout saying nothing was written", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.DB().GetContext(ctx, &n, `SELECT count(*) FROM entries WHERE idempotency_key = 'w-2'`); err != nil || n != 0 {
		t.Errorf("the operation given up was written (%d entries, %v)", n, err)
	}
	if _, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: "GW", Tonnes: tn("1"), Date: ledger.Date(2025, 7, 1), Key: "w-2"}); err != nil {
		t.Errorf("sent again: %v", err)
	}
	checkSound(t, s)
}

// A panic while a group is written (a bug) answers each of its operations with an error
// saying nothing was written, and nothing is; the process and the group go on, and the next
// operations are written.
func TestGroupPanicAnswersItsOperations(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("GX", nil))
	var once sync.Once
	s.group.beforeWrite = func([]string) { once.Do(func() { panic("a bug in the write") }) }
	_, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: "GX", Tonnes: tn("1"), Date: ledger.Date(2025, 7, 1), Key: "x-1"})
	if err == nil || !strings.Contains(err.Error(), "nothing was written") || !strings.Contains(err.Error(), "a bug in the write") {
		t.Errorf("the group that panicked: %v, want an error naming the panic and saying nothing was written", err)
	}
	var n int
	if err := s.DB().GetContext(ctx, &n, `SELECT count(*) FROM entries WHERE idempotency_key = 'x-1'`); err != nil || n != 0 {
		t.Errorf("the operation of the group that panicked was written (%d entries, %v)", n, err)
	}
	errs := raceOps(6, func(i int) error {
		_, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: "GX", Tonnes: tn("1"), Date: ledger.Date(2025, 7, 1), Key: fmt.Sprintf("x-%d", i+1)})
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("x-%d after the panic: %v", i+1, err)
		}
	}
	checkSound(t, s)
}
