package store

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/carbonledger/carbonledger/ledger"
)

// Group commit: operations that write nothing but their entry (a delivery or a retirement
// without serials, the bulk of what a ledger records) and arrive while another transaction
// is writing are written together, in one transaction, by whichever caller gets there
// first (the leader), while the others wait for their answers. Each still gets
// its own entry, its own answer and its own refusal: the domain's rules run for each
// operation in turn on its contract's state as the operations before it in the group left
// it, exactly as they would one transaction after another. What one transaction costs the
// database whatever it carries (a round trip each for its start, its locks, its write and
// its commit, the statement triggers that move the rollups, the commit's flush) is then
// paid once per group instead of once per operation.
//
// The group also keeps, between transactions, the state of each contract it wrote (its
// terms, schedule, position, accounts and chain head), marked with the head's seq: a
// contract whose head has not moved since is not read again. Any other writer (another
// process, an import, an operation written on its own) moves the head, and the state is
// read afresh.
//
// A back-dated movement, whose floor check reads the days after it, has the group write
// what it holds first, so that the check reads the group's own entries too. An operation
// that needs more than its entry (serials, an amendment, a cancellation, a reversal, a
// correction), whose key is already used, or whose contract another transaction holds, is
// written on its own (operate), as is every operation of a group the database refused as
// a whole, so that each gets the answer it would have had alone.
type group struct {
	mu      sync.Mutex
	queue   []*grouped
	leaders int
	// busy are the contracts a group is writing now: their operations wait for the next
	// group, so that two groups in flight never want the same book.
	busy map[string]bool
	// states are the contracts' states as of their books' heads, taken out by a group
	// while it writes (so no other group uses a state a failed write leaves behind).
	states map[string]*importBook
	// what the groups did: transactions, operations written in them, operations handed
	// back to be written on their own
	groups, written, alone int64
	// beforeWrite, when set (tests), runs before a group's write, given its keys
	beforeWrite func(keys []string)
}

func newGroup() *group {
	return &group{busy: map[string]bool{}, states: map[string]*importBook{}}
}

// grouped is one operation waiting in a group.
type grouped struct {
	ctx   context.Context
	sp    opSpec
	res   Result
	err   error
	alone bool          // to be written on its own, after the group
	done  chan struct{} // closed when answered, or when alone is set
	// lead is closed when this caller is to lead groups (leading); a leader that finds
	// nothing it may take gives the lead up and gets a new channel (under the group's mutex)
	lead    chan struct{}
	leading bool
}

const (
	// maxGroup bounds a group: the write's arrays and the time one transaction holds its locks.
	maxGroup = 256
	// maxLeaders is how many groups may be in flight at once: while one waits for its
	// commit to reach the disk, or for the database, the next is built and sent. (On 2
	// cores, 16 writers: 1 leader 1,660-2,500 deliveries/s, 2 leaders 2,270-2,740, 3 or 4
	// leaders 1,810-2,110, each beside the others in one run.)
	maxLeaders = 2
)

// submitGrouped writes sp's operation in a group, or on its own when it cannot be grouped.
func (s *Store) submitGrouped(ctx context.Context, sp opSpec) (Result, error) {
	if sp.direct {
		return s.operate(ctx, sp)
	}
	if sp.key == "" {
		sp.key = "auto:" + ledger.NewID()
	}
	g := s.group
	it := &grouped{ctx: ctx, sp: sp, done: make(chan struct{}), lead: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, it)
	if g.leaders < maxLeaders {
		g.leaders++
		it.leading = true
	}
	for {
		lead := it.leading
		g.mu.Unlock()
		if lead {
			s.leadGroups(it)
		}
		if it.answered() {
			break
		}
		g.mu.Lock()
		leadCh := it.lead // a new channel when the lead was given up
		g.mu.Unlock()
		select {
		case <-it.done:
		case <-leadCh:
		case <-ctx.Done():
			// Given up while still waiting in the queue: taken out, nothing is written.
			// Taken by a group already, it waits for the group, whose statements the
			// write's timeouts bound.
			g.mu.Lock()
			if i := slices.Index(g.queue, it); i >= 0 && !it.leading {
				g.queue = slices.Delete(g.queue, i, i+1)
				g.mu.Unlock()
				return Result{}, queuedTooLong(sp.op, ctx.Err())
			}
			g.mu.Unlock()
			select {
			case <-it.done:
			case <-leadCh:
			}
		}
		g.mu.Lock()
	}
	if it.alone {
		return s.operate(ctx, sp)
	}
	return it.res, it.err
}

// queuedTooLong answers an operation whose caller's context ended (err) before a group
// took it up: nothing of it was written.
func queuedTooLong(op string, err error) error {
	return &TransientError{Kind: ErrTimeout, cause: err,
		Msg: op + ": the request ran out of time waiting for the writes before it; nothing was written; retry"}
}

// answered reports whether it has its answer.
func (it *grouped) answered() bool {
	select {
	case <-it.done:
		return true
	default:
		return false
	}
}

// leadGroups writes groups from the queue until the caller's own operation is answered, then
// hands the lead to waiting callers; or, when every waiting operation's contract is in a
// group in flight, gives the lead up (that group's leader hands it on when it ends). A leader
// gives up its own count before handing on, so a group that ends always leaves room for one.
func (s *Store) leadGroups(me *grouped) {
	g := s.group
	g.mu.Lock()
	defer g.mu.Unlock()
	wrote := false
	for !me.answered() {
		// Yield once before taking a group. The callers a group has just answered are
		// runnable but have not queued their next operation yet; letting them run first
		// puts those operations in this group rather than the next, so a group's fixed
		// cost (its round trips, statements and commit) is shared by more: at 16 writers
		// over 64 contracts, 6.8 operations per group instead of 4.9. With nothing else
		// runnable the yield returns at once.
		g.mu.Unlock()
		runtime.Gosched()
		g.mu.Lock()
		batch := g.take()
		if len(batch) == 0 {
			break
		}
		g.mu.Unlock()
		s.writeGroupSafely(batch)
		g.mu.Lock()
		for _, it := range batch {
			delete(g.busy, it.sp.code)
		}
		wrote = true
	}
	g.leaders--
	me.leading, me.lead = false, make(chan struct{})
	if !wrote && len(g.busy) > 0 {
		return // the group in flight hands the lead on when it ends
	}
	for _, it := range g.queue {
		if g.leaders >= maxLeaders {
			break
		}
		if !it.leading {
			it.leading = true
			g.leaders++
			close(it.lead)
		}
	}
}

// take removes from the queue, and returns, the next group: the operations (in their
// order, at most maxGroup) whose contracts no group is writing, those contracts then marked
// busy. Called with g.mu held.
func (g *group) take() []*grouped {
	var batch, rest []*grouped
	for _, it := range g.queue {
		if len(batch) < maxGroup && !g.busy[it.sp.code] {
			batch = append(batch, it)
		} else {
			rest = append(rest, it)
		}
	}
	for _, it := range batch {
		g.busy[it.sp.code] = true
	}
	g.queue = rest
	return batch
}

// writeGroupSafely is writeGroup, but a panic while writing (a bug) answers every operation
// of the group not yet answered with an error naming it, instead of ending the process with
// the group's mutex in the wrong state and leaving those callers waiting for ever. The
// transaction's deferred rollback has run by then: nothing of the group is written.
func (s *Store) writeGroupSafely(batch []*grouped) {
	defer func() {
		if r := recover(); r != nil {
			for _, it := range batch {
				if !it.answered() {
					it.res, it.err = Result{}, fmt.Errorf("%s: internal error while writing a group, nothing was written: %v", it.sp.op, r)
					close(it.done)
				}
			}
		}
	}()
	s.writeGroup(batch)
}

// writeGroup writes a group of operations in one transaction and answers each.
func (s *Store) writeGroup(batch []*grouped) {
	var live []*grouped
	for _, it := range batch {
		if err := it.ctx.Err(); err != nil {
			it.err = queuedTooLong(it.sp.op, err)
			close(it.done)
			continue
		}
		live = append(live, it)
	}
	if len(live) == 0 {
		return
	}
	n, err := s.tryGroup(live)
	g := s.group
	g.mu.Lock()
	if err == nil {
		g.groups++
		g.written += int64(n)
	}
	g.mu.Unlock()
	for _, it := range live {
		if err != nil {
			it.alone, it.err = true, nil
		}
		if it.alone {
			g.mu.Lock()
			g.alone++
			g.mu.Unlock()
		}
		close(it.done)
	}
}

// tryGroup writes what it can of live in one transaction: it sets res or err on each
// operation it answers, marks alone those to be written on their own, and returns
// how many it wrote. An error means nothing was written.
func (s *Store) tryGroup(live []*grouped) (int, error) {
	g := s.group
	// No other group writes these contracts (busy), so the states taken out are this
	// group's until it puts them back.
	ctx := context.WithoutCancel(live[0].ctx)
	var codes, keys, tokens []string
	for _, it := range live {
		codes = append(codes, it.sp.code)
		keys = append(keys, it.sp.key)
		if name := tokenOf(it.ctx); name != "" {
			tokens = append(tokens, name)
		}
	}
	slices.Sort(codes)
	codes = slices.Compact(codes)
	slices.Sort(tokens)
	tokens = slices.Compact(tokens) // one name per token, however many of its operations

	tx, err := s.beginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	locked, err := lockGroup(ctx, tx, codes, keys, tokens, s.writerRole, s.writeLimits())
	if err != nil {
		return 0, err
	}

	// The states of the contracts locked: kept ones whose head has not moved, else read now.
	books := map[string]*importBook{}
	g.mu.Lock()
	for code, head := range locked.Books {
		if ib, ok := g.states[code]; ok && ib.b.HeadSeq == head {
			books[code] = ib
		}
		delete(g.states, code)
	}
	g.mu.Unlock()
	for code := range locked.Books {
		if books[code] != nil {
			continue
		}
		cur, err := operationState(ctx, tx, code, "", "", "")
		if err != nil {
			return 0, err
		}
		if cur.Book == nil {
			continue // a book that is not a contract's: each operation is refused on its own
		}
		st, row, b, err := cur.state()
		if err != nil {
			return 0, err
		}
		books[code] = &importBook{b: b, ba: cur.bookAccounts, st: st, row: row}
	}

	// What is built is held, and written in one statement at the end; a check that must
	// read the database (a back-dated movement reads the days after it) writes what is
	// held first, so that it reads the group's own entries too.
	var rows groupRows
	var writeErr error
	flush := func() error {
		if len(rows.id) == 0 {
			return nil
		}
		if g.beforeWrite != nil {
			g.beforeWrite(rows.key)
		}
		writeErr = rows.write(ctx, tx)
		rows = groupRows{}
		return writeErr
	}
	written := 0
	seen := map[string]bool{}
	for _, it := range live {
		sp := it.sp
		ib := books[sp.code]
		switch {
		case locked.Used[sp.key] || seen[sp.key] || ib == nil:
			// a key in use (a replay, or a conflict to explain), a contract locked by
			// another transaction or unknown: answered by operate, as alone
			it.alone = true
			continue
		case slices.Contains(locked.Revoked, tokenOf(it.ctx)):
			it.err = fmt.Errorf("%s: %w", sp.op, tokenRevoked(tokenOf(it.ctx)))
			continue
		case locked.Kept[sp.key]:
			it.err = fmt.Errorf("%s: %w", sp.op, keyTaken(sp.key))
			continue
		}
		seen[sp.key] = true
		seal := locked.Now
		if seal.Before(ib.ba.Now) {
			seal = ib.ba.Now // read after the lock, when the state was read in this group
		}
		// the caller's values (its token, its recorder), not its cancellation: a caller
		// giving up must not cancel a statement of the transaction the others share
		e, ids, err := s.buildOn(context.WithoutCancel(it.ctx), tx, sp, ib, seal, flush, nil)
		if writeErr != nil {
			return 0, writeErr // the database refused what was held: the group is over
		} else if err != nil {
			it.err = fmt.Errorf("%s: %w", sp.op, mapErr(err)) // as operate's write says it
			continue
		}
		if err := rows.add(ib, &e, ids); err != nil {
			return 0, err
		}
		applyEntry(ib, &e)
		it.res = Result{Entry: e}
		written++
	}
	if err := flush(); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	g.mu.Lock()
	for code, ib := range books {
		g.states[code] = ib
	}
	g.mu.Unlock()
	return written, nil
}

// buildOn builds sp's entry on ib's state (a group's or an import's), checks it and seals it
// at now as operate does; beforeRead runs before a check reads the database, and laterMost,
// when not nil, answers the floor check of a back-dated movement (prepareEntry).
func (s *Store) buildOn(ctx context.Context, tx *sqlx.Tx, sp opSpec, ib *importBook, now time.Time,
	beforeRead func() error, laterMost laterMostFunc) (ledger.Entry, []int64, error) {
	e, err := sp.build(tx, ib.st, ib.row)
	if err != nil {
		return e, nil, err
	}
	e.ID, e.Key, e.Request = ledger.NewID(), sp.key, sp.request
	if err := e.Validate(); err != nil {
		return e, nil, err
	}
	ids, err := s.prepareEntry(ctx, tx, ib.b, ib.ba, &e, now, beforeRead, laterMost)
	return e, ids, err
}

// applyEntry moves ib as writing e will: the chain head, the balances, each account's last
// movement and the position (a group's and an import's state alike).
func applyEntry(ib *importBook, e *ledger.Entry) {
	ib.b.HeadSeq, ib.b.HeadHash = e.Seq, e.Hash
	ib.st.Entries = e.Seq
	day := ledger.FormatDate(e.EffectiveOn)
	for _, p := range e.Postings {
		a := ib.ba.account(p.Account)
		a.Balance = a.Balance.Add(p.Amount)
		if a.LastOn == nil || *a.LastOn < day {
			a.LastOn = &day
		}
		ib.st.Position.Add(ledger.AccountKind(a.Kind), e.Kind, p.Amount)
	}
}

// groupLocks is lock_group's answer.
type groupLocks struct {
	Now   time.Time        `json:"now"`
	Books map[string]int64 `json:"books"` // code: head seq, for the books locked
	Used  map[string]bool  `json:"used"`  // keys an entry holds
	Kept  map[string]bool  `json:"kept"`  // keys the API keeps another answer under
	// the API tokens named (WithToken) that are no longer active
	Revoked []string `json:"revoked"`
}

// lockGroup takes the writer role and the write's limits, locks the books of codes that no
// other transaction holds (in code order), and reads which of keys are in use, which of
// tokens are no longer active, and the clock.
func lockGroup(ctx context.Context, tx *sqlx.Tx, codes, keys, tokens []string, role string, settings [][2]string) (groupLocks, error) {
	var out groupLocks
	q, args := settingsFirst([]any{pq.Array(codes), pq.Array(keys), pq.Array(tokens)}, role, settings)
	var set int
	var raw []byte
	if err := tx.QueryRowContext(ctx, q+", lock_group($1, $2, $3)", args...).Scan(&set, &raw); err != nil {
		return out, err
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return out, fmt.Errorf("read the group's locks: %w", err)
	}
	return out, nil
}

// groupRows are a group's entries and postings as the columns of one INSERT.
type groupRows struct {
	id, kind, effective, recorded, key, description, meta []string
	request, prevHash, hash                               [][]byte
	book, seq                                             []int64
	vintage                                               []*int64
	pEntry, pAmount                                       []string
	pAccount                                              []int64
}

func (r *groupRows) add(ib *importBook, e *ledger.Entry, ids []int64) error {
	if e.Reverts != "" {
		return fmt.Errorf("group: entry %s is a correction, which is written on its own", e.ID)
	}
	meta, err := metadataJSON(e)
	if err != nil {
		return err
	}
	var vintage *int64
	if e.Vintage != 0 {
		v := int64(e.Vintage)
		vintage = &v
	}
	r.id = append(r.id, e.ID)
	r.book = append(r.book, ib.b.ID)
	r.seq = append(r.seq, e.Seq)
	r.kind = append(r.kind, string(e.Kind))
	r.effective = append(r.effective, ledger.FormatDate(e.EffectiveOn))
	r.recorded = append(r.recorded, e.RecordedAt.UTC().Format(time.RFC3339Nano))
	r.key = append(r.key, e.Key)
	r.request = append(r.request, e.Request)
	r.description = append(r.description, e.Description)
	r.vintage = append(r.vintage, vintage)
	r.meta = append(r.meta, meta)
	r.prevHash = append(r.prevHash, e.PrevHash)
	r.hash = append(r.hash, e.Hash)
	for i, p := range e.Postings {
		r.pEntry = append(r.pEntry, e.ID)
		r.pAccount = append(r.pAccount, ids[i])
		r.pAmount = append(r.pAmount, p.Amount.String())
	}
	return nil
}

// write inserts the group's entries (their statement trigger checks and extends each book's
// chain), then their postings (whose trigger moves the balances and the rollups): one call.
func (r *groupRows) write(ctx context.Context, tx *sqlx.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT write_group($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		pq.Array(r.id), pq.Array(r.book), pq.Array(r.seq), pq.Array(r.kind), pq.Array(r.effective),
		pq.Array(r.recorded), pq.Array(r.key), pq.Array(r.request), pq.Array(r.description),
		pq.GenericArray{A: r.vintage}, pq.Array(r.meta), ledger.HashVersion, pq.Array(r.prevHash), pq.Array(r.hash),
		pq.Array(r.pEntry), pq.Array(r.pAccount), pq.Array(r.pAmount))
	return mapErr(err)
}
