package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/carbonledger/carbonledger/ledger"
)

// An Importer records many operations in one transaction, each through the same opSpec, the
// same domain rules and the same entry checks as a single command, without a statement per
// row: it keeps each contract it has touched locked, with its state, accounts and chain head
// in memory, applies every operation to that state as the database would, and writes the
// sealed entries it holds with two COPY statements (entries, then postings, whose statement
// trigger moves balances and rollups once per batch). Operations that read or write more
// than their entry (serials, schedules, corrections, terminations, reversals) are written at
// once, in a savepoint, after what it holds, and the contract's state is read again after
// them.
//
// Nothing is visible to others until Commit; Checkpoint commits what is done so far and goes
// on in a new transaction. An Importer is not safe for concurrent use.
type Importer struct {
	s     *Store
	tx    *sqlx.Tx
	books map[string]*importBook
	held  []heldEntry
	// keys whose entries the database or this transaction holds: looked up by Prefetch,
	// or written since; and the keys of the entries held
	keys     map[string]priorKey
	fetched  map[string]bool
	heldKeys map[string]priorKey
	now      time.Time
	// heads are the chain heads of the books as they were just before the last Prefetch
	// looked its keys up (nil when there was none); locked are the books this transaction
	// has locked. A book first locked after a key was looked up may have been written in
	// between by a writer that held it (the same file imported twice at once, two files that
	// share rows): the keys of what it wrote are read when the book is locked (keysSince).
	heads  map[int64]int64
	locked map[int64]bool
	// FlushEvery is how many entries are held before they are written (0: 50,000). Every
	// write updates the rollup rows of the contracts it touches, and within one transaction
	// each update leaves a version of the row that later lookups walk: fewer, larger writes
	// keep those chains short.
	FlushEvery int
}

// importBook is a locked contract as an import sees it: the chain head, the accounts with
// their balances and the contract's state, all as of the entries it has applied.
type importBook struct {
	b   book
	ba  bookAccounts
	st  ledger.ContractState
	row contractRow
	// later holds, for an account a back-dated movement was checked against, the sums of its
	// movements by effective day after a horizon, kept current as entries are applied, so
	// that the next such check needs no query (nor a write of what is held before it).
	later map[int64]*laterDays
}

// laterDays are an account's movements summed by effective day, for the days after after.
type laterDays struct {
	after string
	days  []dayAmount // ascending
}

type dayAmount struct {
	day    string
	amount ledger.Tonnes
}

// add moves day's sum by amount, when day is one the horizon holds.
func (l *laterDays) add(day string, amount ledger.Tonnes) {
	if day <= l.after {
		return
	}
	i, found := slices.BinarySearchFunc(l.days, day, func(x dayAmount, d string) int { return strings.Compare(x.day, d) })
	if found {
		l.days[i].amount = l.days[i].amount.Add(amount)
		return
	}
	l.days = slices.Insert(l.days, i, dayAmount{day: day, amount: amount})
}

// most is qLaterMost over the days held: the largest sum of the movements on or after a day
// later than d, and zero at least.
func (l *laterDays) most(d string) ledger.Tonnes {
	most, sum := ledger.Zero, ledger.Zero
	for i := len(l.days) - 1; i >= 0 && l.days[i].day > d; i-- {
		sum = sum.Add(l.days[i].amount)
		most = most.Max(sum)
	}
	return most
}

// heldEntry is a sealed entry not yet written, as its column values (compact: an import
// holds tens of thousands).
type heldEntry struct {
	vals    []any
	id      string
	ids     []int64
	amounts []string
}

type priorKey struct {
	id      string
	request []byte
}

// ErrBatchRefused marks the database's refusal of a batch of held entries: the import's
// transaction is over (no row of it can be told apart), so the import stops.
var ErrBatchRefused = errors.New("the database refused a batch")

// ImportOutcome says what became of one row.
type ImportOutcome int

const (
	// Written: the row's entry was recorded (visible once the import commits).
	Written ImportOutcome = iota + 1
	// Present: the row's key already holds the same request; nothing was written.
	Present
)

// BeginImport starts an import's transaction as the writer role.
func (s *Store) BeginImport(ctx context.Context) (*Importer, error) {
	im := &Importer{s: s}
	if err := im.begin(ctx); err != nil {
		return nil, err
	}
	return im, nil
}

func (im *Importer) begin(ctx context.Context) error {
	tx, err := im.s.db.BeginTxx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	if im.s.writerRole != "" {
		if _, err := tx.ExecContext(ctx, `SET LOCAL ROLE `+im.s.writerRole); err != nil {
			tx.Rollback()
			return fmt.Errorf("set role: %w", err)
		}
	}
	im.tx, im.books, im.keys, im.fetched = tx, map[string]*importBook{}, map[string]priorKey{}, map[string]bool{}
	im.heldKeys = map[string]priorKey{}
	im.heads, im.locked = nil, map[int64]bool{}
	return im.tick(ctx)
}

// tick reads the clock that seals the entries from here on: within the transaction, never
// before an entry already sealed.
func (im *Importer) tick(ctx context.Context) error {
	var now time.Time
	if err := im.tx.GetContext(ctx, &now, `SELECT clock_timestamp()`); err != nil {
		return mapErr(err)
	}
	if now.After(im.now) {
		im.now = now
	}
	return nil
}

// Prefetch looks up, in one query, the keys of the rows about to be applied, so that a row
// whose key is already recorded (by an earlier import, or earlier in this one) is found
// without a query of its own. It also reads the clock.
func (im *Importer) Prefetch(ctx context.Context, keys []string) error {
	if err := im.tick(ctx); err != nil {
		return err
	}
	clear(im.keys)
	clear(im.fetched)
	for _, k := range keys {
		im.fetched[k] = true
	}
	// The heads first: a book whose head is still this one when it is locked got no entry
	// the key lookup below could have missed.
	var heads []struct {
		ID   int64 `db:"id"`
		Head int64 `db:"head_seq"`
	}
	if err := im.tx.SelectContext(ctx, &heads, `SELECT id, head_seq FROM books`); err != nil {
		return mapErr(err)
	}
	im.heads = make(map[int64]int64, len(heads))
	for _, h := range heads {
		im.heads[h.ID] = h.Head
	}
	return im.readKeys(ctx, `SELECT idempotency_key, id, request_sha256 FROM entries WHERE idempotency_key = ANY($1)`, pq.Array(keys))
}

// readKeys reads into im.keys what q's rows (key, entry id, request digest) say.
func (im *Importer) readKeys(ctx context.Context, q string, args ...any) error {
	rows, err := im.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var p priorKey
		if err := rows.Scan(&k, &p.id, &p.request); err != nil {
			return err
		}
		im.keys[k] = p
	}
	return mapErr(rows.Err())
}

// Recorded reports whether the last Prefetch found key recorded: its row will be found
// present, and needs no contract locked.
func (im *Importer) Recorded(key string) bool {
	_, ok := im.keys[key]
	return ok
}

// prior is the entry key holds (ok false when none): from Prefetch, or asked now.
func (im *Importer) prior(ctx context.Context, key string) (priorKey, bool, error) {
	if p, ok := im.heldKeys[key]; ok {
		return p, true, nil
	}
	if p, ok := im.keys[key]; ok {
		return p, true, nil
	}
	if im.fetched[key] {
		return priorKey{}, false, nil
	}
	if err := im.Flush(ctx); err != nil {
		return priorKey{}, false, err
	}
	var p priorKey
	err := im.tx.QueryRowContext(ctx, `SELECT id, request_sha256 FROM entries WHERE idempotency_key = $1`, key).Scan(&p.id, &p.request)
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	return p, err == nil, mapErr(err)
}

// replay answers a row whose key is recorded: Present with the same request, a conflict
// naming the entry with another.
func replay(key string, p priorKey, request []byte) (ImportOutcome, error) {
	if !bytes.Equal(p.request, request) {
		return 0, &ledger.FieldError{Field: "key", Value: key, Kind: ledger.ErrConflict,
			Rule: "was already used for a different request (entry " + p.id + "); use a new key for a new request"}
	}
	return Present, nil
}

// AddContract records a contract under key (its sign entry's), as Store.AddContract does.
func (im *Importer) AddContract(ctx context.Context, c ledger.Contract, key string) (ImportOutcome, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	terms, err := json.Marshal(c)
	if err != nil {
		return 0, err
	}
	request := ledger.RequestDigest("contract add", json.RawMessage(terms))
	if p, ok, err := im.prior(ctx, key); err != nil {
		return 0, err
	} else if ok {
		return replay(key, p, request)
	}
	var res Result
	err = im.savepoint(ctx, func() (err error) {
		res, err = im.s.addContractTx(ctx, im.tx, c, key, terms, request)
		return err
	})
	if err != nil {
		return 0, err
	}
	im.keys[key] = priorKey{id: res.Entry.ID, request: request}
	if res.Replay {
		return Present, nil
	}
	return Written, nil
}

// Apply records one operation, or finds it already recorded under its key (which must be
// set: an import derives one for a row without). A refused operation returns the domain's
// error and leaves nothing behind.
func (im *Importer) Apply(ctx context.Context, r ledger.Request) (ImportOutcome, error) {
	key := r.IdempotencyKey()
	if key == "" {
		return 0, ledger.Required("key", "is required in an import (derive one from the file and line)")
	}
	if err := r.Check(im.s.Now(), im.s.FutureTolerance); err != nil {
		return 0, err
	}
	sp, err := im.spec(ctx, r)
	if err != nil {
		return 0, err
	}
	if p, ok, err := im.prior(ctx, key); err != nil {
		return 0, err
	} else if ok {
		return replay(key, p, sp.request)
	}
	ib, lockedNow, err := im.book(ctx, sp.code)
	if err != nil {
		return 0, err
	}
	if lockedNow {
		// The key was looked up before the contract was locked: a writer that held the lock
		// in between may have recorded this very row.
		if p, ok, err := im.recheck(ctx, key); err != nil {
			return 0, err
		} else if ok {
			return replay(key, p, sp.request)
		}
	}
	if sp.direct {
		err = im.savepoint(ctx, func() error { return im.applyDirect(ctx, sp, ib) })
		delete(im.books, sp.code) // read its state again when next needed
	} else {
		if err = im.applyHeld(ctx, sp, ib); err == nil {
			err = im.flushIfFull(ctx)
		}
	}
	if err != nil {
		return 0, err
	}
	return Written, nil
}

// spec is r's opSpec; a correction's entry is found in this transaction (it may have been
// written a few rows earlier).
func (im *Importer) spec(ctx context.Context, r ledger.Request) (opSpec, error) {
	rv, ok := r.(ledger.RevertRequest)
	if !ok {
		return specOf(ctx, r)
	}
	request := ledger.RequestDigest("revert", rv)
	if err := im.Flush(ctx); err != nil {
		return opSpec{}, err
	}
	book, isContract, err := revertTarget(ctx, im.tx, &rv)
	if err != nil {
		return opSpec{}, mapErr(err)
	}
	if !isContract {
		return opSpec{}, ledger.Invalid("entry", rv.Entry, "is an entry of book "+book+", which is not a contract; an import corrects contracts' entries only")
	}
	return revertSpec(ctx, rv, book, request), nil
}

// Lock locks the contracts that codes name, and those of the entries that entries name (what
// corrections correct), that this transaction has not locked yet, in the order of their
// codes, and reads their state. Applied in the order of their rows, two imports or batches
// that touch the same contracts in different orders deadlock (each holds one the other
// waits for), and PostgreSQL breaks that only after a second, by failing one of them; taking
// what a batch of rows needs at once, in one order, they queue instead. The codes and entries
// come from rows not yet checked: one that is not a contract code or an entry id, or names
// nothing, is left for its row to refuse (an entry named by its key, key:KEY, is locked when
// its row is applied).
func (im *Importer) Lock(ctx context.Context, codes, entries []string) error {
	codes = slices.DeleteFunc(slices.Clone(codes), func(code string) bool { return ledger.ValidateCode("contract", code) != nil })
	for _, ref := range entries {
		if !uuidRE.MatchString(ref) {
			continue
		}
		rv := ledger.RevertRequest{Entry: ref}
		book, isContract, err := revertTarget(ctx, im.tx, &rv)
		switch {
		case err == nil && isContract:
			codes = append(codes, book)
		case err != nil && !errors.Is(err, ledger.ErrInvalid) && !errors.Is(err, ledger.ErrNotFound):
			return mapErr(err)
		}
	}
	slices.Sort(codes)
	for _, code := range slices.Compact(codes) {
		if _, ok := im.books[code]; ok {
			continue
		}
		if _, _, err := im.book(ctx, code); err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return err
		}
	}
	return nil
}

// book is the contract's state, read (and its book locked) on first use; lockedNow says
// that this transaction had not locked the book before.
func (im *Importer) book(ctx context.Context, code string) (*importBook, bool, error) {
	if ib, ok := im.books[code]; ok {
		return ib, false, nil
	}
	// What is held is of other contracts (a contract leaves im.books only after a direct
	// write, which writes everything held first), so the state read here is complete.
	cur, err := operationState(ctx, im.tx, code, "", "", "")
	if err != nil {
		return nil, false, mapErr(err)
	}
	if cur.Book == nil {
		return nil, false, unknownContract(code)
	}
	st, row, b, err := cur.state()
	if err != nil {
		return nil, false, err
	}
	ib := &importBook{b: b, ba: cur.bookAccounts, st: st, row: row}
	im.books[code] = ib
	lockedNow := !im.locked[b.ID]
	im.locked[b.ID] = true
	if lockedNow {
		if err := im.keysSince(ctx, ib); err != nil {
			return nil, false, err
		}
	}
	return ib, lockedNow, nil
}

// keysSince reads into im.keys the keys of the entries ib's book got after the last Prefetch
// read its head: none when the head has not moved, nothing to do without a Prefetch.
func (im *Importer) keysSince(ctx context.Context, ib *importBook) error {
	if im.heads == nil {
		return nil
	}
	head, ok := im.heads[ib.b.ID]
	if ok && head == ib.b.HeadSeq {
		return nil
	}
	return im.readKeys(ctx, `SELECT idempotency_key, id, request_sha256 FROM entries WHERE book_id = $1 AND seq > $2`, ib.b.ID, head)
}

// recheck looks key up again once its contract is locked: among the keys keysSince read, or,
// without a Prefetch, in the database.
func (im *Importer) recheck(ctx context.Context, key string) (priorKey, bool, error) {
	if im.heads != nil {
		p, ok := im.keys[key]
		return p, ok, nil
	}
	var p priorKey
	err := im.tx.QueryRowContext(ctx, `SELECT id, request_sha256 FROM entries WHERE idempotency_key = $1`, key).Scan(&p.id, &p.request)
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	return p, err == nil, mapErr(err)
}

// sealAt is the recorded time of ib's next entry: the import's clock, or the book's own
// reading when that is later (it was taken after the book's lock, so it is never before the
// head entry's).
func (im *Importer) sealAt(ib *importBook) time.Time {
	if ib.ba.Now.After(im.now) {
		return ib.ba.Now
	}
	return im.now
}

// build builds sp's entry on ib's state and checks it as insertEntry does.
func (im *Importer) build(ctx context.Context, sp opSpec, ib *importBook) (ledger.Entry, []int64, error) {
	return im.s.buildOn(ctx, im.tx, sp, ib, im.sealAt(ib), func() error { return im.Flush(ctx) },
		func(a *bookAccount, d time.Time) (ledger.Tonnes, error) { return im.laterMost(ctx, ib, a, d) })
}

// laterMost answers the floor check of a back-dated movement from ib's horizon of a's daily
// sums, reading the days after d from the daily rollup when the horizon does not reach d.
func (im *Importer) laterMost(ctx context.Context, ib *importBook, a *bookAccount, d time.Time) (ledger.Tonnes, error) {
	day := ledger.FormatDate(d)
	l := ib.later[a.ID]
	if l == nil || l.after > day {
		if err := im.Flush(ctx); err != nil {
			return ledger.Zero, err
		}
		var rows []struct {
			Day    time.Time     `db:"effective_on"`
			Amount ledger.Tonnes `db:"amount"`
		}
		if err := im.tx.SelectContext(ctx, &rows, `
			SELECT effective_on, sum(amount) AS amount FROM flows
			 WHERE account_id = $1 AND effective_on > $2 GROUP BY effective_on ORDER BY effective_on`, a.ID, d); err != nil {
			return ledger.Zero, mapErr(err)
		}
		l = &laterDays{after: day, days: make([]dayAmount, len(rows))}
		for i, r := range rows {
			l.days[i] = dayAmount{day: ledger.FormatDate(r.Day), amount: r.Amount}
		}
		if ib.later == nil {
			ib.later = map[int64]*laterDays{}
		}
		ib.later[a.ID] = l
	}
	return l.most(day), nil
}

// applyHeld builds the entry, holds it for the next Flush, and moves ib as writing it will.
func (im *Importer) applyHeld(ctx context.Context, sp opSpec, ib *importBook) error {
	e, ids, err := im.build(ctx, sp, ib)
	if err != nil {
		return err
	}
	vals, err := entryValues(ib.b.ID, &e)
	if err != nil {
		return err
	}
	amounts := make([]string, len(e.Postings))
	for i, p := range e.Postings {
		amounts[i] = p.Amount.String()
	}
	im.held = append(im.held, heldEntry{vals: vals, id: e.ID, ids: ids, amounts: amounts})
	im.heldKeys[e.Key] = priorKey{id: e.ID, request: e.Request}
	applyEntry(ib, &e)
	day := ledger.FormatDate(e.EffectiveOn)
	for _, p := range e.Postings {
		if l := ib.later[ib.ba.account(p.Account).ID]; l != nil {
			l.add(day, p.Amount)
		}
	}
	return nil
}

// applyDirect writes what is held, then builds and writes sp's entry and its bookkeeping.
func (im *Importer) applyDirect(ctx context.Context, sp opSpec, ib *importBook) error {
	if err := im.Flush(ctx); err != nil {
		return err
	}
	e, ids, err := im.build(ctx, sp, ib)
	if err != nil {
		return err
	}
	if err := writeEntry(ctx, im.tx, ib.b.ID, &e, ids); err != nil {
		return mapErr(err)
	}
	if sp.after != nil {
		if err := sp.after(im.tx, ib.st, ib.row, e); err != nil {
			return mapErr(err)
		}
	}
	im.keys[e.Key] = priorKey{id: e.ID, request: e.Request}
	return nil
}

// savepoint runs fn so that its failure undoes only what fn wrote.
func (im *Importer) savepoint(ctx context.Context, fn func() error) error {
	if err := im.Flush(ctx); err != nil {
		return err
	}
	if _, err := im.tx.ExecContext(ctx, `SAVEPOINT import_row`); err != nil {
		return mapErr(err)
	}
	if err := fn(); err != nil {
		if _, rerr := im.tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT import_row`); rerr != nil {
			return errors.Join(err, mapErr(rerr))
		}
		return err
	}
	_, err := im.tx.ExecContext(ctx, `RELEASE SAVEPOINT import_row`)
	return mapErr(err)
}

// Flush writes the held entries: one COPY of the entries (their trigger checks and extends
// each book's chain), one of their postings.
func (im *Importer) Flush(ctx context.Context) error {
	if len(im.held) == 0 {
		return nil
	}
	held := im.held
	im.held = nil
	for k, p := range im.heldKeys {
		im.keys[k] = p
	}
	clear(im.heldKeys)
	if err := im.copy(ctx, "entries", entryColumns, func(put func(...any) error) error {
		for i := range held {
			if err := put(held[i].vals...); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	return im.copy(ctx, "postings", []string{"entry_id", "account_id", "amount"}, func(put func(...any) error) error {
		for i := range held {
			for j := range held[i].ids {
				if err := put(held[i].id, held[i].ids[j], held[i].amounts[j]); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// flushIfFull writes what is held once there is enough of it.
func (im *Importer) flushIfFull(ctx context.Context) error {
	every := im.FlushEvery
	if every <= 0 {
		every = 50_000
	}
	if len(im.held) < every {
		return nil
	}
	return im.Flush(ctx)
}

func (im *Importer) copy(ctx context.Context, table string, cols []string, rows func(put func(...any) error) error) error {
	stmt, err := im.tx.PrepareContext(ctx, pq.CopyIn(table, cols...))
	if err != nil {
		return mapErr(err)
	}
	defer stmt.Close()
	if err := rows(func(vals ...any) error { _, err := stmt.ExecContext(ctx, vals...); return err }); err != nil {
		return fmt.Errorf("import: write %s: %w: %w", table, ErrBatchRefused, mapErr(err))
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return fmt.Errorf("import: write %s: %w: %w", table, ErrBatchRefused, mapErr(err))
	}
	return nil
}

// Checkpoint commits everything so far and goes on in a new transaction; the contracts it
// had locked are read (and locked) again when next used.
func (im *Importer) Checkpoint(ctx context.Context) error {
	if err := im.Commit(ctx); err != nil {
		return err
	}
	return im.begin(ctx)
}

// Commit writes what is held and commits the import.
func (im *Importer) Commit(ctx context.Context) error {
	if err := im.Flush(ctx); err != nil {
		return err
	}
	if err := im.tx.Commit(); err != nil {
		return fmt.Errorf("import: commit: %w", mapErr(err))
	}
	return nil
}

// Rollback abandons everything not committed.
func (im *Importer) Rollback() { im.tx.Rollback() }
