package store

// Thirty-two writers at once against the same contracts and the same serials: over-delivery,
// over-retirement, double retirement, cancellations, reversals and corrections racing each
// other. Each phase releases every writer together. The first two phases are built so that
// the number of successes is exactly what the rules allow whatever the order; the third is a
// seeded random mix. Afterwards every figure is checked three ways, to the kilogram: the
// test's own record of what succeeded, a recount from the raw rows that uses none of the
// product's code (internal/recount), and the store's positions; and the audit is clean.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/internal/recount"
	"github.com/carbonledger/carbonledger/ledger"
)

// tally is the test's own ledger: what the operations that succeeded (not their replays)
// must have done to each contract, in kilograms, and the serials they moved.
type tally struct {
	mu      sync.Mutex
	totals  map[string]*recount.Totals
	effects map[string]recount.Totals // by entry id, for corrections
	reqs    map[string]ledger.Request // by entry id
	writes  int                       // entries written
	serials map[string]map[string]int64
}

func newTally(contracts map[string]int64) *tally {
	tl := &tally{totals: map[string]*recount.Totals{}, effects: map[string]recount.Totals{}, reqs: map[string]ledger.Request{}, serials: map[string]map[string]int64{}}
	for code, kg := range contracts {
		tl.totals[code] = &recount.Totals{Contracted: kg, Open: kg}
		tl.serials[code] = map[string]int64{}
		tl.writes++ // the sign entry
	}
	return tl
}

// effect is what an operation does to its contract's figures; a correction undoes the
// effect of the entry it corrects.
func (tl *tally) effect(r ledger.Request) recount.Totals {
	switch r := r.(type) {
	case ledger.DeliverRequest:
		kg := r.Tonnes.Kg()
		return recount.Totals{Open: -kg, Delivered: kg, Holding: kg}
	case ledger.RetireRequest:
		kg := r.Tonnes.Kg()
		return recount.Totals{Holding: -kg, Retired: kg}
	case ledger.CancelRequest:
		kg := r.Tonnes.Kg()
		return recount.Totals{Open: -kg, Cancelled: kg}
	case ledger.ReverseRequest:
		kg := r.Tonnes.Kg()
		if r.Remedy == ledger.RemedyBuffer {
			return recount.Totals{BufferCancelled: kg}
		}
		return recount.Totals{Holding: -kg, Reversed: kg, Open: kg, Replacements: kg}
	case ledger.RevertRequest:
		e := tl.effects[r.Entry]
		return recount.Totals{Contracted: -e.Contracted, Replacements: -e.Replacements, Open: -e.Open, Delivered: -e.Delivered,
			Holding: -e.Holding, Retired: -e.Retired, Cancelled: -e.Cancelled, Reversed: -e.Reversed, BufferCancelled: -e.BufferCancelled}
	}
	panic(fmt.Sprintf("no effect for %T", r))
}

// record counts a written entry e of request r under contract code.
func (tl *tally) record(code string, r ledger.Request, e ledger.Entry) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	d := tl.effect(r)
	tl.effects[e.ID], tl.reqs[e.ID] = d, r
	t := tl.totals[code]
	t.Contracted += d.Contracted
	t.Replacements += d.Replacements
	t.Open += d.Open
	t.Delivered += d.Delivered
	t.Holding += d.Holding
	t.Retired += d.Retired
	t.Cancelled += d.Cancelled
	t.Reversed += d.Reversed
	t.BufferCancelled += d.BufferCancelled
	tl.writes++
	var sr *ledger.SerialRange
	state := ""
	switch r := r.(type) {
	case ledger.DeliverRequest:
		sr, state = r.Serials, "delivered"
	case ledger.RetireRequest:
		sr, state = r.Serials, "retired"
	case ledger.ReverseRequest:
		sr, state = r.Serials, "reversed"
	case ledger.RevertRequest:
		// only deliveries are corrected here: their serials leave the ledger
		if d, ok := tl.reqs[r.Entry].(ledger.DeliverRequest); ok && d.Serials != nil {
			tl.serials[code]["delivered"] -= d.Serials.Last - d.Serials.First + 1
		}
	}
	if sr != nil {
		n := sr.Last - sr.First + 1
		if state != "delivered" {
			tl.serials[code]["delivered"] -= n
		}
		tl.serials[code][state] += n
	}
}

// checkThreeWays compares the tally, the recount of the raw rows and the store's positions
// to the kilogram, checks the serial counts and the number of entries, and runs the audit.
func checkThreeWays(t *testing.T, s *Store, tl *tally) {
	t.Helper()
	ctx := context.Background()
	rc, err := recount.Run(ctx, s.DB().DB)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rc.Problems {
		t.Errorf("recount: %s", p)
	}
	if rc.Entries != tl.writes {
		t.Errorf("the journal holds %d entries; %d writes succeeded (signs included)", rc.Entries, tl.writes)
	}
	for code, want := range tl.totals {
		got := rc.Contracts[code]
		if got == nil {
			t.Errorf("contract %s: not in the recount", code)
			continue
		}
		if d := want.Diff(got.Totals); d != nil {
			t.Errorf("contract %s: the successes the test saw and the recount of the postings differ: %v", code, d)
		}
		pos := positionOf(t, s, code)
		if d := got.Totals.Diff(totalsOf(pos)); d != nil {
			t.Errorf("contract %s: the recount and the store's position differ: %v", code, d)
		}
		for _, state := range []string{"delivered", "retired", "reversed"} {
			if got.Serials[state] != tl.serials[code][state] {
				t.Errorf("contract %s: %d serials %s in the blocks, the successes say %d", code, got.Serials[state], state, tl.serials[code][state])
			}
		}
		// One serial is one tonne under car: the blocks held are part of the holding.
		if held := got.Serials["delivered"] * 1000; held != pos.SerializedHolding.Kg() || held > got.Holding {
			t.Errorf("contract %s: %d serials held, serialized holding %s, holding %s", code, got.Serials["delivered"], pos.SerializedHolding, recount.FormatKg(got.Holding))
		}
		if got.Serials["retired"]*1000 > got.Retired {
			t.Errorf("contract %s: %d serials retired, more than the %s t retired", code, got.Serials["retired"], recount.FormatKg(got.Retired))
		}
	}
	wantAuditClean(t, s)
}

// totalsOf is a position in kilograms.
func totalsOf(p ledger.Position) recount.Totals {
	return recount.Totals{Contracted: p.Contracted.Kg(), Replacements: p.Replacements.Kg(), Open: p.Open.Kg(),
		Delivered: p.Delivered.Kg(), Holding: p.Holding.Kg(), Retired: p.Retired.Kg(), Cancelled: p.Cancelled.Kg(),
		Reversed: p.Reversed.Kg(), BufferCancelled: p.BufferCancelled.Kg()}
}

// kinds are the documented refusals, by sentinel.
var refusalKinds = []struct {
	name string
	err  error
}{
	{"insufficient", ledger.ErrInsufficient}, {"conflict", ledger.ErrConflict}, {"not-found", ledger.ErrNotFound},
	{"immutable", ledger.ErrImmutable}, {"invalid", ledger.ErrInvalid},
}

// kindOf names err's sentinel, or "" when it has none of the documented ones.
func kindOf(err error) string {
	for _, k := range refusalKinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return ""
}

// submitOne runs r, records a success in tl, and returns the result.
func submitOne(ctx context.Context, s *Store, tl *tally, r ledger.Request) (Result, error) {
	res, err := s.Submit(ctx, r)
	if err == nil && !res.Replay {
		tl.record(res.Entry.Book, r, res.Entry)
	}
	return res, err
}

// wantOutcomes checks that exactly ok of errs are nil and every other is of kind want.
func wantOutcomes(t *testing.T, what string, errs []error, ok int, want error) {
	t.Helper()
	if got := tallyOps(t, what, errs, want); got != ok {
		t.Errorf("%s: %d succeeded, want exactly %d", what, got, ok)
	}
}

func TestContendedContractsAndSerials(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("CA", map[string]any{"over_delivery_tolerance": "5"}))
	addContract(t, s, contractDoc("CB", nil))
	addContract(t, s, contractDoc("CC", nil))
	tl := newTally(map[string]int64{"CA": 1_000_000, "CB": 1_000_000, "CC": 1_000_000})
	const clients = 32
	day := func(d int) time.Time { return ledger.Date(2025, 3, 1).AddDate(0, 0, d) }

	// Phase 1. CA (1,000 t, 5 t tolerance): sixteen deliveries of 70 t; 14 fit in 1,005 t.
	// Six groups of serial ranges, each group's ranges sharing serials: two on CB, and for
	// four groups a third on CC. Exactly one range of each group is delivered.
	group := func(i int) (int, int64) { // clients 16..31: their group and first serial
		switch {
		case i < 28:
			g := (i - 16) / 2
			return g, int64(1000*g+1) + int64((i-16)%2)*5
		default:
			g := i - 28
			return g, int64(1000*g + 4)
		}
	}
	reqs := make([]ledger.Request, clients)
	for i := range clients {
		switch {
		case i < 16:
			reqs[i] = ledger.DeliverRequest{Contract: "CA", Tonnes: tn("70"), Date: day(i), Key: fmt.Sprintf("p1-deliver-%d", i)}
		default:
			g, first := group(i)
			code := "CB"
			if i >= 28 {
				code = "CC"
			}
			reqs[i] = ledger.DeliverRequest{Contract: code, Tonnes: tn("10"), Date: day(g), Key: fmt.Sprintf("p1-serials-%d", i),
				Serials: &ledger.SerialRange{Prefix: "CAR-CONTEND", First: first, Last: first + 9}}
		}
	}
	results := make([]Result, clients)
	errs := raceOps(clients, func(i int) error {
		var err error
		results[i], err = submitOne(ctx, s, tl, reqs[i])
		return err
	})
	wantOutcomes(t, "deliveries of 70 t into 1,005 t", errs[:16], 14, ledger.ErrInsufficient)
	wantOutcomes(t, "overlapping serial deliveries", errs[16:], 6, ledger.ErrConflict)
	won := map[int]ledger.DeliverRequest{} // group -> the delivered range
	for i := 16; i < clients; i++ {
		if errs[i] == nil {
			g, _ := group(i)
			if _, dup := won[g]; dup {
				t.Errorf("group %d: two overlapping ranges delivered", g)
			}
			won[g] = reqs[i].(ledger.DeliverRequest)
		}
	}
	checkThreeWays(t, s, tl)
	if t.Failed() {
		t.FailNow()
	}

	// Phase 2. CA holds 980 t and has 20 t open: twelve retirements of 90 t (10 fit), four
	// cancellations of 10 t (2 fit), a reversal of 5 t to be replaced (it fits whenever it
	// runs, and leaves the counts as they are: 975 t still take ten retirements, 25 t open
	// still two cancellations). Each delivered serial range is retired by two writers under
	// different keys: one retires it, the other is refused. Two writers send one request
	// under one key: one writes it, the other replays it. A buffer reversal on CB fits.
	reqs = make([]ledger.Request, clients)
	for i := range clients {
		switch {
		case i < 12:
			r := retireReq("CA", "90", day(40+i))
			r.Key = fmt.Sprintf("p2-retire-%d", i)
			reqs[i] = r
		case i < 16:
			reqs[i] = ledger.CancelRequest{Contract: "CA", Tonnes: tn("10"), Date: day(40), Reason: "short", Key: fmt.Sprintf("p2-cancel-%d", i)}
		case i < 28:
			d := won[(i-16)/2]
			r := retireReq(d.Contract, "10", day(60))
			r.Serials, r.Key = d.Serials, fmt.Sprintf("p2-serial-retire-%d", i)
			reqs[i] = r
		case i < 30:
			reqs[i] = ledger.DeliverRequest{Contract: "CB", Tonnes: tn("3"), Date: day(50), Key: "p2-same-key"}
		case i == 30:
			reqs[i] = ledger.ReverseRequest{Contract: "CA", Tonnes: tn("5"), Date: day(70), Reason: "fire", Remedy: ledger.RemedyReplace, Key: "p2-reverse"}
		default:
			reqs[i] = ledger.ReverseRequest{Contract: "CB", Tonnes: tn("1"), Date: day(70), Reason: "leak", Remedy: ledger.RemedyBuffer, Key: "p2-buffer"}
		}
	}
	errs = raceOps(clients, func(i int) error {
		var err error
		results[i], err = submitOne(ctx, s, tl, reqs[i])
		return err
	})
	wantOutcomes(t, "retirements of 90 t from 980 t held", errs[:12], 10, ledger.ErrInsufficient)
	wantOutcomes(t, "cancellations of 10 t from 20 t open", errs[12:16], 2, ledger.ErrInsufficient)
	for g := range 6 {
		wantOutcomes(t, fmt.Sprintf("retirements of serial group %d", g), errs[16+2*g:18+2*g], 1, ledger.ErrConflict)
	}
	for i := 28; i < 30; i++ {
		if errs[i] != nil {
			t.Errorf("same key, same request, writer %d: %v", i, errs[i])
		}
	}
	if results[28].Entry.ID != results[29].Entry.ID || results[28].Replay == results[29].Replay {
		t.Errorf("same key, same request: entries %s (replay %t) and %s (replay %t), want one entry, written once and replayed once",
			results[28].Entry.ID, results[28].Replay, results[29].Entry.ID, results[29].Replay)
	}
	for i := 30; i < clients; i++ {
		if errs[i] != nil {
			t.Errorf("reversal %d: %v", i, errs[i])
		}
	}
	wantPosition(t, s, "CA", map[string]string{"delivered": "980", "retired": "900", "cancelled": "20", "reversed": "5", "holding": "75", "open": "5"})
	checkThreeWays(t, s, tl)
	if t.Failed() {
		t.FailNow()
	}

	// Phase 3: a seeded random mix, every writer at once.
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CARBONLEDGER_CONTEND_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("phase 3 seed %d (CARBONLEDGER_CONTEND_SEED replays it)", seed)
	mix := &randomMix{s: s, tl: tl, codes: []string{"CA", "CB", "CC"}, counts: map[string]int{}}
	for _, d := range won {
		mix.delivered = append(mix.delivered, servedRange{code: d.Contract, r: *d.Serials, date: d.Date})
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rng := rand.New(rand.NewPCG(seed, uint64(c)))
			w := &mixWriter{id: c, rng: rng}
			for i := range 25 {
				mix.step(t, w, fmt.Sprintf("p3-%d-%d", c, i))
			}
		}()
	}
	close(start)
	wg.Wait()
	names := make([]string, 0, len(mix.counts))
	for k := range mix.counts {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		t.Logf("%-40s %d", k, mix.counts[k])
	}
	checkThreeWays(t, s, tl)
}

// servedRange is a serial range some writer delivered.
type servedRange struct {
	code string
	r    ledger.SerialRange
	date time.Time
}

// randomMix is the state the random writers share.
type randomMix struct {
	s         *Store
	tl        *tally
	codes     []string
	mu        sync.Mutex
	delivered []servedRange
	counts    map[string]int // "op outcome" -> how many
}

// mixWriter is one writer: its generator and its own successful requests.
type mixWriter struct {
	id   int
	rng  *rand.Rand
	done []struct {
		req ledger.Request
		res Result
	}
	reverted map[string]bool
}

func (m *randomMix) count(what string) {
	m.mu.Lock()
	m.counts[what]++
	m.mu.Unlock()
}

// step sends one random operation and checks its outcome is a success or one of the
// refusals the rules document for it.
func (m *randomMix) step(t *testing.T, w *mixWriter, key string) {
	ctx := context.Background()
	rng := w.rng
	code := m.codes[rng.IntN(len(m.codes))]
	date := ledger.Date(2025, 1, 1).AddDate(0, 0, rng.IntN(330))
	kg := func(maxT int) ledger.Tonnes { return ledger.TonnesFromKg(1 + rng.Int64N(int64(maxT)*1000)) }
	var req ledger.Request
	var allowed []string
	op := ""
	switch r := rng.IntN(100); {
	case r < 25:
		op = "deliver"
		req, allowed = ledger.DeliverRequest{Contract: code, Tonnes: kg(40), Date: date, Key: key}, []string{"insufficient"}
	case r < 38: // serials from a pool that the writers share: ranges overlap often
		op = "deliver serials"
		first := int64(100_000 + rng.IntN(40)*20 + rng.IntN(12))
		n := int64(1 + rng.IntN(10))
		req = ledger.DeliverRequest{Contract: code, Tonnes: ledger.TonnesFromKg(n * 1000), Date: date, Key: key,
			Serials: &ledger.SerialRange{Prefix: "CAR-MIX", First: first, Last: first + n - 1}}
		allowed = []string{"conflict", "insufficient"}
	case r < 48:
		op = "retire"
		rr := retireReq(code, "1", date)
		rr.Tonnes, rr.Key = kg(30), key
		// the holding may carry serials that must be named: "serials are required"
		req, allowed = rr, []string{"insufficient", "invalid"}
	case r < 60: // a delivered range, or part of it, perhaps already retired by another
		op = "retire serials"
		m.mu.Lock()
		d := m.delivered[rng.IntN(len(m.delivered))]
		m.mu.Unlock()
		first := d.r.First + rng.Int64N(d.r.Last-d.r.First+1)
		last := first + rng.Int64N(d.r.Last-first+1)
		rr := retireReq(d.code, "1", d.date.AddDate(0, 0, rng.IntN(20)))
		rr.Tonnes, rr.Key = ledger.TonnesFromKg((last-first+1)*1000), key
		rr.Serials = &ledger.SerialRange{Prefix: d.r.Prefix, First: first, Last: last}
		req, allowed = rr, []string{"conflict", "insufficient", "invalid"}
	case r < 68:
		op = "cancel"
		req, allowed = ledger.CancelRequest{Contract: code, Tonnes: kg(15), Date: date, Reason: "short", Key: key}, []string{"insufficient"}
	case r < 74:
		op = "reverse"
		req = ledger.ReverseRequest{Contract: code, Tonnes: kg(10), Date: date, Reason: "fire", Remedy: ledger.RemedyReplace, Key: key}
		allowed = []string{"insufficient", "invalid"}
	case r < 78:
		op = "reverse buffer"
		req = ledger.ReverseRequest{Contract: code, Tonnes: kg(5), Date: date, Reason: "fire", Remedy: ledger.RemedyBuffer, Key: key}
		allowed = []string{"insufficient"}
	case r < 84 && len(w.done) > 0: // correct one of this writer's deliveries
		prior := w.done[rng.IntN(len(w.done))]
		if _, ok := prior.req.(ledger.DeliverRequest); !ok || w.reverted[prior.res.Entry.ID] {
			return
		}
		op = "revert delivery"
		if w.reverted == nil {
			w.reverted = map[string]bool{}
		}
		w.reverted[prior.res.Entry.ID] = true
		// what it delivered may be retired or reversed already; serials may be retired
		req, allowed = ledger.RevertRequest{Entry: prior.res.Entry.ID, Reason: "entered twice", Key: key}, []string{"insufficient", "conflict"}
	case r < 90 && len(w.done) > 0: // the same request under the same key: the same entry
		prior := w.done[rng.IntN(len(w.done))]
		res, err := m.s.Submit(ctx, prior.req)
		if err != nil || !res.Replay || res.Entry.ID != prior.res.Entry.ID {
			t.Errorf("replay of %s: entry %s (replay %t), %v; want entry %s replayed", prior.req.IdempotencyKey(), res.Entry.ID, res.Replay, err, prior.res.Entry.ID)
		}
		m.count("replay ok")
		return
	case r < 94 && len(w.done) > 0: // that key with another request: a conflict on the key
		prior := w.done[rng.IntN(len(w.done))]
		other := ledger.CancelRequest{Contract: prior.req.ContractCode(), Tonnes: tn("0.001"), Date: date, Reason: "other", Key: prior.req.IdempotencyKey()}
		if other.Contract == "" {
			other.Contract = code
		}
		_, err := m.s.Submit(ctx, other)
		var fe *ledger.FieldError
		if !errors.Is(err, ledger.ErrConflict) || !errors.As(err, &fe) || fe.Field != "key" {
			t.Errorf("key %s reused for another request: %v, want a conflict on the key", other.Key, err)
		}
		m.count("reused key conflict")
		return
	default: // requests no state can make valid
		switch rng.IntN(4) {
		case 0:
			op, allowed = "deliver to an unknown contract", []string{"not-found"}
			req = ledger.DeliverRequest{Contract: "NO-SUCH", Tonnes: tn("1"), Date: date, Key: key}
		case 1:
			op, allowed = "deliver on a future date", []string{"invalid"}
			req = ledger.DeliverRequest{Contract: code, Tonnes: tn("1"), Date: ledger.Date(time.Now().UTC().Date()).AddDate(0, 0, 10), Key: key}
		case 2:
			op, allowed = "deliver zero tonnes", []string{"invalid"}
			req = ledger.DeliverRequest{Contract: code, Tonnes: ledger.Zero, Date: date, Key: key}
		default:
			op, allowed = "retire before the term", []string{"invalid"}
			rr := retireReq(code, "1", ledger.Date(2024, 12, 20))
			rr.Key = key
			req = rr
		}
	}
	res, err := submitOne(ctx, m.s, m.tl, req)
	switch {
	case err == nil && res.Replay:
		t.Errorf("%s %s: a new key was answered as a replay", op, key)
	case err == nil:
		if slices.Contains(allowed, "not-found") || op == "deliver on a future date" || op == "deliver zero tonnes" || op == "retire before the term" {
			t.Errorf("%s %s: recorded, want it refused", op, key)
		}
		w.done = append(w.done, struct {
			req ledger.Request
			res Result
		}{req, res})
		if d, ok := req.(ledger.DeliverRequest); ok && d.Serials != nil {
			m.mu.Lock()
			m.delivered = append(m.delivered, servedRange{code: d.Contract, r: *d.Serials, date: d.Date})
			m.mu.Unlock()
		}
		m.count(op + ": recorded")
	default:
		k := kindOf(err)
		if k == "" || !slices.Contains(allowed, k) {
			t.Errorf("%s %s: refused with %v (kind %q), want success or one of %v", op, key, err, k, allowed)
			k = "UNEXPECTED"
		}
		m.count(op + ": " + k)
	}
}

// An import looks its batch's keys up before it locks their contracts. A writer that records
// one of its rows in between (the same file imported twice at once, two files that share
// rows) must make that row present, as it is: not refused because its serials or its tonnes
// are taken (by itself), nor written twice and the whole batch refused at commit.
func TestImportFindsRowsWrittenBeforeItsLock(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("LK", map[string]any{"tonnes": "30"}))
	reqs := []ledger.Request{
		ledger.DeliverRequest{Contract: "LK", Tonnes: tn("10"), Date: cday(2025, 3, 1), Key: "row-1",
			Serials: &ledger.SerialRange{Prefix: "CAR-LK", First: 1, Last: 10}},
		ledger.DeliverRequest{Contract: "LK", Tonnes: tn("10"), Date: cday(2025, 3, 2), Key: "row-2"},
		ledger.CancelRequest{Contract: "LK", Tonnes: tn("9"), Date: cday(2025, 3, 3), Reason: "short", Key: "row-3"},
	}
	im, err := s.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Rollback()
	if err := im.Prefetch(ctx, []string{"row-1", "row-2", "row-3"}); err != nil {
		t.Fatal(err)
	}
	// Another writer records rows 1 and 2 now, and row 3's key for another request; after
	// them the serials are delivered and only 8 t are open.
	for _, r := range reqs[:2] {
		if _, err := s.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Submit(ctx, ledger.CancelRequest{Contract: "LK", Tonnes: tn("2"), Date: cday(2025, 3, 3), Reason: "short", Key: "row-3"}); err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs[:2] {
		out, err := im.Apply(ctx, r)
		if err != nil || out != Present {
			t.Errorf("row %d, recorded by another writer before the import locked the contract: outcome %d, %v; want present", i+1, out, err)
		}
	}
	var fe *ledger.FieldError
	if _, err := im.Apply(ctx, reqs[2]); !errors.As(err, &fe) || fe.Field != "key" || !errors.Is(err, ledger.ErrConflict) {
		t.Errorf("row 3, whose key another writer used for another request: %v, want a conflict on the key", err)
	}
	if err := im.Commit(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	wantPosition(t, s, "LK", map[string]string{"delivered": "20", "cancelled": "2", "open": "8"})
	wantAuditClean(t, s)
}

// An import or an atomic batch locks every contract it needs before it applies anything,
// in the order of their codes: two that need the same contracts queue instead of each
// holding one the other waits for (PostgreSQL breaks such a deadlock only after a second, by
// failing one of them; an API batch that lost three times answered 500).
func TestImportLocksContractsInOneOrder(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("LA", nil))
	addContract(t, s, contractDoc("LB", nil))
	first, err := s.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.BeginImport(ctx)
	if err != nil {
		first.Rollback()
		t.Fatal(err)
	}
	// the first ends first, so that the second is not left waiting for it
	defer func() { first.Rollback(); second.Rollback() }()
	if err := first.Lock(ctx, []string{"LA"}, nil); err != nil {
		t.Fatal(err)
	}
	locked := make(chan error, 1)
	go func() { locked <- second.Lock(ctx, []string{"LB", "NO-SUCH", "LA"}, nil) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var waiting int
		if err := s.DB().GetContext(ctx, &waiting, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second import never waited for a lock")
		}
	}
	// The second waits for LA, which comes first, and has not taken LB: a single write on
	// LB goes through, and so could the first import.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.Deliver(wctx, ledger.DeliverRequest{Contract: "LB", Tonnes: tn("1"), Date: cday(2025, 3, 1), Key: "lb-single"}); err != nil {
		t.Fatalf("a write on LB while the second import waits for LA: %v", err)
	}
	select {
	case err := <-locked:
		t.Fatalf("the second import locked LA while the first holds it: %v", err)
	default:
	}
	if _, err := first.Apply(ctx, ledger.DeliverRequest{Contract: "LA", Tonnes: tn("2"), Date: cday(2025, 3, 1), Key: "la-first"}); err != nil {
		t.Fatal(err)
	}
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-locked; err != nil {
		t.Fatalf("the second import's lock: %v", err)
	}
	for _, r := range []ledger.DeliverRequest{
		{Contract: "LB", Tonnes: tn("3"), Date: cday(2025, 3, 2), Key: "lb-second"},
		{Contract: "LA", Tonnes: tn("4"), Date: cday(2025, 3, 2), Key: "la-second"},
	} {
		if out, err := second.Apply(ctx, r); err != nil || out != Written {
			t.Fatalf("%s: %d, %v", r.Key, out, err)
		}
	}
	if err := second.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wantPosition(t, s, "LA", map[string]string{"delivered": "6"})
	wantPosition(t, s, "LB", map[string]string{"delivered": "4"})
	wantAuditClean(t, s)
}

// A correction moves no serials, so the correction of a delivery without serials may take
// from the holding only the tonnes that carry none: otherwise the holding ends with fewer
// tonnes than its delivered serial blocks (which the audit reports as serials_held). Found
// by TestContendedContractsAndSerials's random phase.
func TestRevertLeavesTheSerializedHolding(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("RV", nil))
	plain, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: "RV", Tonnes: tn("4"), Date: cday(2025, 3, 1), Key: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: "RV", Tonnes: tn("5"), Date: cday(2025, 3, 2), Key: "serials",
		Serials: &ledger.SerialRange{Prefix: "CAR-RV", First: 1, Last: 5}}); err != nil {
		t.Fatal(err)
	}
	r := retireReq("RV", "2", cday(2025, 3, 3))
	r.Key = "retire"
	if _, err := s.Retire(ctx, r); err != nil {
		t.Fatal(err)
	}
	// 7 t held, 5 of them with serials: the 4 t delivery cannot be taken back whole.
	refused(t, s, ledger.ErrInsufficient, func() error {
		_, err := s.Revert(ctx, ledger.RevertRequest{Entry: plain.Entry.ID, Reason: "entered twice", Key: "revert"})
		return err
	})
	im, err := s.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Rollback()
	if _, err := im.Apply(ctx, ledger.RevertRequest{Entry: plain.Entry.ID, Reason: "entered twice", Key: "revert-import"}); !errors.Is(err, ledger.ErrInsufficient) {
		t.Errorf("the same correction in an import: %v, want ErrInsufficient", err)
	}
	im.Rollback()
	// With 2 t more without serials held, it goes through.
	if _, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: "RV", Tonnes: tn("2"), Date: cday(2025, 3, 4), Key: "more"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revert(ctx, ledger.RevertRequest{Entry: plain.Entry.ID, Reason: "entered twice", Key: "revert"}); err != nil {
		t.Fatalf("revert with 4 t held without serials: %v", err)
	}
	wantPosition(t, s, "RV", map[string]string{"holding": "5", "serialized_holding": "5", "delivered": "7"})
	wantAuditClean(t, s)
}
