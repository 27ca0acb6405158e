package store

// Randomised concurrent operations with the invariants checked in SQL after every batch, in
// the manner of TigerBeetle's and Blnk's tests: conservation (every entry and the whole
// journal sum to zero), cached balance = sum of postings, no account below its floor at any
// effective date, every chain verifies, every successful write is one entry, and a refused
// operation changes nothing.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

// randomLedger is one book with a source that may go negative and several accounts with a
// floor of zero, and the record of what the random operations did to it.
type randomLedger struct {
	s     *Store
	book  string
	src   string
	accts []string // floor 0

	mu     sync.Mutex
	posted []postedRequest // first, successful posts: candidates for replays and conflicts

	written   atomic.Int64 // successful posts that were not replays
	refused   atomic.Int64 // operations refused as insufficient
	replays   atomic.Int64
	conflicts atomic.Int64
}

type postedRequest struct {
	req  ledger.Entry // as posted (no id)
	id   string
	hash []byte
}

func newRandomLedger(t *testing.T, s *Store, book string, n int) *randomLedger {
	ctx := context.Background()
	if err := s.CreateBook(ctx, book); err != nil {
		t.Fatal(err)
	}
	l := &randomLedger{s: s, book: book, src: "test:" + book + ":src"}
	if err := s.CreateAccount(ctx, ledger.Account{Code: l.src, Book: book, Kind: ledger.AccEquity}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		code := fmt.Sprintf("test:%s:a%d", book, i)
		if err := s.CreateAccount(ctx, ledger.Account{Code: code, Book: book, Kind: ledger.AccAsset, Floor: floor0()}); err != nil {
			t.Fatal(err)
		}
		l.accts = append(l.accts, code)
		// every account starts with 100 t from Jan 1
		postOK(t, s, transfer(book, "fund-"+code, l.src, code, tn("100"), 1))
		l.written.Add(1)
	}
	return l
}

func transfer(book, key, from, to string, amount ledger.Tonnes, day int) ledger.Entry {
	return ledger.Entry{Book: book, Kind: ledger.KindTransfer, EffectiveOn: ledger.Date(2025, 1, day), Key: key,
		Description: fmt.Sprintf("%s %s -> %s", amount, from, to),
		Postings:    []ledger.Posting{{Account: from, Amount: amount.Neg()}, {Account: to, Amount: amount}}}
}

func (l *randomLedger) pick(rng *rand.Rand) (postedRequest, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.posted) == 0 {
		return postedRequest{}, false
	}
	return l.posted[rng.IntN(len(l.posted))], true
}

// outcome is what one random operation did.
type outcome int

const (
	wrote outcome = iota
	replayed
	refusedOp
)

// step performs one random operation under key and checks its immediate result.
func (l *randomLedger) step(t testing.TB, rng *rand.Rand, key string) outcome {
	ctx := context.Background()
	day := 1 + rng.IntN(28)
	r := rng.IntN(100)
	prior, have := l.pick(rng)
	switch {
	case r < 12 && have: // a replay: the same key and request
		got, replay, err := l.s.Post(ctx, prior.req)
		if err != nil || !replay || got.ID != prior.id || !bytes.Equal(got.Hash, prior.hash) {
			t.Errorf("replay of %s: got entry %s (replay %t), %v; want entry %s, replay true", prior.req.Key, got.ID, replay, err, prior.id)
		}
		l.replays.Add(1)
		return replayed
	case r < 22 && have: // the key of an earlier post with another request
		e := prior.req
		e.Postings = slices.Clone(e.Postings)
		switch rng.IntN(3) {
		case 0:
			e.Description += " (edited)"
		case 1:
			e.Postings[0].Amount = e.Postings[0].Amount.Sub(tn("0.001"))
			e.Postings[1].Amount = e.Postings[1].Amount.Add(tn("0.001"))
		default:
			e.EffectiveOn = e.EffectiveOn.AddDate(0, 0, 1)
		}
		_, replay, err := l.s.Post(ctx, e)
		if !errors.Is(err, ledger.ErrConflict) || replay {
			t.Errorf("key %s reused for another request: got %v (replay %t), want ErrConflict", e.Key, err, replay)
		}
		l.conflicts.Add(1)
		return refusedOp
	case r < 32: // far more than all the accounts hold together
		i := rng.IntN(len(l.accts))
		to := l.accts[(i+1+rng.IntN(len(l.accts)-1))%len(l.accts)]
		_, _, err := l.s.Post(ctx, transfer(l.book, key, l.accts[i], to, tn("1000000000"), day))
		if !errors.Is(err, ledger.ErrInsufficient) {
			t.Errorf("overdraft %s: got %v, want ErrInsufficient", key, err)
		}
		l.refused.Add(1)
		return refusedOp
	}
	// A transfer of up to 80 t between two accounts, a quarter of them from the source: the
	// accounts hold about as much as is drawn, so many transfers are refused, often because
	// a later-dated entry already draws on the tonnes.
	all := append([]string{l.src}, l.accts...)
	from := l.src
	if rng.IntN(4) > 0 {
		from = l.accts[rng.IntN(len(l.accts))]
	}
	to := from
	for to == from {
		to = all[rng.IntN(len(all))]
	}
	e := transfer(l.book, key, from, to, ledger.TonnesFromKg(1+rng.Int64N(80_000)), day)
	got, replay, err := l.s.Post(ctx, e)
	switch {
	case err == nil && !replay:
		l.mu.Lock()
		l.posted = append(l.posted, postedRequest{req: e, id: got.ID, hash: got.Hash})
		l.mu.Unlock()
		l.written.Add(1)
		return wrote
	case errors.Is(err, ledger.ErrInsufficient) && from != l.src:
		l.refused.Add(1)
		return refusedOp
	default:
		t.Errorf("transfer %s from %s: got %v (replay %t), want success or ErrInsufficient", key, from, err, replay)
		return refusedOp
	}
}

// checkInvariants checks the invariants of the whole database in SQL, and the chains and
// cached balances through the store.
func (l *randomLedger) checkInvariants(t testing.TB, label string) {
	t.Helper()
	ctx := context.Background()
	for _, inv := range []struct{ name, q string }{
		{"entries that do not sum to zero or have fewer than two postings", `
			SELECT count(*) FROM (
			    SELECT e.id FROM entries e LEFT JOIN postings p ON p.entry_id = e.id
			     GROUP BY e.id, e.kind
			    HAVING coalesce(sum(p.amount), 0) <> 0
			        OR (count(p.entry_id) < 2 AND NOT (count(p.entry_id) = 0 AND e.kind = 'amend'))) x`},
		{"a non-zero sum of all postings", `SELECT (coalesce(sum(amount), 0) <> 0)::int FROM postings`},
		{"cached balances unequal to the sum of their postings", `
			SELECT count(*) FROM accounts a
			 WHERE a.balance <> coalesce((SELECT sum(p.amount) FROM postings p WHERE p.account_id = a.id), 0)`},
		{"accounts below their floor", `SELECT count(*) FROM accounts WHERE balance < floor`},
		{"accounts below their floor at some effective date", `
			WITH daily AS (
			    SELECT p.account_id, e.effective_on AS d, sum(p.amount) AS s
			      FROM postings p JOIN entries e ON e.id = p.entry_id GROUP BY 1, 2
			), running AS (
			    SELECT account_id, sum(s) OVER (PARTITION BY account_id ORDER BY d) AS r FROM daily
			)
			SELECT count(*) FROM running JOIN accounts a ON a.id = running.account_id WHERE running.r < a.floor`},
		{"postings on an account of another book than their entry's", `
			SELECT count(*) FROM postings p JOIN entries e ON e.id = p.entry_id JOIN accounts a ON a.id = p.account_id
			 WHERE a.book_id <> e.book_id`},
		{"books whose head is not their number of entries", `
			SELECT count(*) FROM books b WHERE b.head_seq <> (SELECT count(*) FROM entries e WHERE e.book_id = b.id)`},
		{"recorded times going backwards along a chain", `
			SELECT count(*) FROM entries e JOIN entries n ON n.book_id = e.book_id AND n.seq = e.seq + 1
			 WHERE n.recorded_at < e.recorded_at`},
	} {
		var n int64
		if err := l.s.DB().QueryRowContext(ctx, inv.q).Scan(&n); err != nil {
			t.Fatalf("%s: %s: %v", label, inv.name, err)
		}
		if n != 0 {
			t.Errorf("%s: %d %s", label, n, inv.name)
		}
	}
	var entries int64
	if err := l.s.DB().QueryRowContext(ctx, `SELECT count(*) FROM entries`).Scan(&entries); err != nil {
		t.Fatal(err)
	}
	if want := l.written.Load(); entries != want {
		t.Errorf("%s: %d entries, want %d (one per successful post that was not a replay)", label, entries, want)
	}
	assertIntact(t, l.s)
}

// headAndBalances is the state a refused operation on the book must leave alone.
func (l *randomLedger) headAndBalances(t testing.TB) string {
	t.Helper()
	var out string
	err := l.s.DB().QueryRowContext(context.Background(), `
		SELECT b.head_seq || ' ' || encode(b.head_hash, 'hex') || ' ' ||
		       (SELECT string_agg(a.code || '=' || a.balance, ' ' ORDER BY a.code) FROM accounts a WHERE a.book_id = b.id) || ' ' ||
		       (SELECT count(*) FROM postings)
		  FROM books b WHERE b.code = $1`, l.book).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRandomOperationsKeepInvariants(t *testing.T) {
	s := newStore(t)
	l := newRandomLedger(t, s, "inv", 5)
	l.checkInvariants(t, "after funding")

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	const workers, batches, perBatch = 8, 3, 50 // 150 operations per worker
	for batch := range batches {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seed, uint64(batch*workers+w)))
				for i := range perBatch {
					l.step(t, rng, fmt.Sprintf("b%d-w%d-%d", batch, w, i))
				}
			}()
		}
		wg.Wait()
		l.checkInvariants(t, fmt.Sprintf("after batch %d", batch+1))
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("%d written, %d refused as insufficient, %d replays, %d key conflicts",
		l.written.Load(), l.refused.Load(), l.replays.Load(), l.conflicts.Load())
	if l.written.Load() < 100 || l.refused.Load() < 50 || l.replays.Load() < 50 || l.conflicts.Load() < 50 {
		t.Errorf("the random mix did not exercise every kind of operation")
	}

	// Serially, so that each operation can be compared with the state just before it.
	rng := rand.New(rand.NewPCG(seed, 1<<32))
	for i := range 80 {
		before := l.headAndBalances(t)
		switch out := l.step(t, rng, fmt.Sprintf("serial-%d", i)); out {
		case wrote:
			var seq int64
			fmt.Sscan(before, &seq)
			var after int64
			if err := s.DB().QueryRowContext(context.Background(), `SELECT head_seq FROM books WHERE code = $1`, l.book).Scan(&after); err != nil {
				t.Fatal(err)
			}
			if after != seq+1 {
				t.Errorf("serial-%d: a write moved the head from %d to %d, want %d", i, seq, after, seq+1)
			}
		default:
			if after := l.headAndBalances(t); after != before {
				t.Errorf("serial-%d: a refused or replayed operation changed the book:\nbefore %s\nafter  %s", i, before, after)
			}
		}
	}
	l.checkInvariants(t, "after the serial phase")
}

// Sixteen writers draw 7 t each at once from an account holding 100 t: exactly 14 succeed,
// and the account never goes below zero.
func TestConcurrentDrawsNeverOverdraw(t *testing.T) {
	s := newStore(t)
	src, a, b := journalBook(t, s, "draw")
	postOK(t, s, move("draw", "fund", src, a, "100.000", 1))

	const writers = 16
	start := make(chan struct{})
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _, errs[i] = s.Post(context.Background(), move("draw", fmt.Sprintf("draw-%d", i), a, b, "7.000", 2))
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ledger.ErrInsufficient):
			t.Errorf("draw %d: got %v, want success or ErrInsufficient", i, err)
		}
	}
	if ok != 14 {
		t.Errorf("%d draws of 7 t from 100 t succeeded, want 14", ok)
	}
	if got := cachedBalance(t, s, a); !got.Equal(tn("2")) {
		t.Errorf("balance of %s: got %s, want 2.000", a, got)
	}
	if got := cachedBalance(t, s, b); !got.Equal(tn("98")) {
		t.Errorf("balance of %s: got %s, want 98.000", b, got)
	}
	var entries int
	if err := s.DB().QueryRowContext(context.Background(), `SELECT count(*) FROM entries`).Scan(&entries); err != nil {
		t.Fatal(err)
	}
	if entries != 1+ok {
		t.Errorf("%d entries, want %d", entries, 1+ok)
	}
	assertIntact(t, s)
}

// Eight writers post the same request under the same key at once: one writes it, the others
// replay it, and there is one entry.
func TestConcurrentSameKeyWritesOnce(t *testing.T) {
	s := newStore(t)
	src, a, _ := journalBook(t, s, "same")
	const writers = 8
	e := move("same", "the-key", src, a, "5", 1)
	start := make(chan struct{})
	type result struct {
		id     string
		replay bool
		err    error
	}
	res := make([]result, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got, replay, err := s.Post(context.Background(), e)
			res[i] = result{got.ID, replay, err}
		}()
	}
	close(start)
	wg.Wait()
	first := 0
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("writer %d: %v", i, r.err)
		}
		if !r.replay {
			first++
		}
		if r.id != res[0].id {
			t.Errorf("writer %d got entry %s, writer 0 got %s", i, r.id, res[0].id)
		}
	}
	if first != 1 {
		t.Errorf("%d writers wrote the entry, want 1 (the others replay it)", first)
	}
	if got := cachedBalance(t, s, a); !got.Equal(tn("5")) {
		t.Errorf("balance of %s: got %s, want 5", a, got)
	}
	assertIntact(t, s)
}
