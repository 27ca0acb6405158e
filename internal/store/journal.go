package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/carbonledger/carbonledger/ledger"
)

// CreateBook creates a book (an independent hash chain) unless it exists.
func (s *Store) CreateBook(ctx context.Context, code string) error {
	if err := ledger.ValidateCode("book", code); err != nil {
		return err
	}
	return s.write(ctx, "create book", func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO books (code) VALUES ($1) ON CONFLICT (code) DO NOTHING`, code)
		return err
	})
}

// CreateAccount creates an account in an existing book. Creating the same account again is a
// no-op; the same code with a different book, kind or floor is a conflict.
func (s *Store) CreateAccount(ctx context.Context, a ledger.Account) error {
	if err := validateAccount(a); err != nil {
		return err
	}
	return s.write(ctx, "create account", func(tx *sqlx.Tx) error { return createAccountTx(ctx, tx, a) })
}

func validateAccount(a ledger.Account) error {
	if err := ledger.ValidateAccountCode(a.Code); err != nil {
		return err
	}
	if !a.Kind.Valid() {
		return ledger.Invalid("account.kind", string(a.Kind), "is not an account kind")
	}
	if a.Kind.MayGoNegative() != (a.Floor == nil) {
		return ledger.Invalid("account.floor", "", fmt.Sprintf("an account of kind %s %s", a.Kind,
			map[bool]string{true: "may go negative and has no floor", false: "needs a floor (0 or below)"}[a.Kind.MayGoNegative()]))
	}
	if a.Floor != nil && a.Floor.IsPositive() {
		return ledger.Invalid("account.floor", a.Floor.String(), "must be zero or negative")
	}
	return nil
}

func createAccountTx(ctx context.Context, tx *sqlx.Tx, a ledger.Account) error {
	var floor any
	if a.Floor != nil {
		floor = a.Floor.String()
	}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO accounts (code, book_id, kind, floor)
		SELECT $1, b.id, $3, $4 FROM books b WHERE b.code = $2
		ON CONFLICT (code) DO NOTHING`, a.Code, a.Book, string(a.Kind), floor)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var got struct {
		Book  string
		Kind  string
		Floor sql.NullString
	}
	err = tx.QueryRowxContext(ctx, `SELECT b.code AS book, a.kind, a.floor::text AS floor FROM accounts a JOIN books b ON b.id = a.book_id WHERE a.code = $1`, a.Code).StructScan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return &ledger.FieldError{Field: "book", Value: a.Book, Rule: "does not exist", Kind: ledger.ErrNotFound}
	}
	if err != nil {
		return err
	}
	wantFloor := ""
	if a.Floor != nil {
		wantFloor = a.Floor.String()
	}
	gotFloor := ""
	if got.Floor.Valid {
		f, _ := ledger.ParseTonnes(got.Floor.String)
		gotFloor = f.String()
	}
	if got.Book != a.Book || got.Kind != string(a.Kind) || gotFloor != wantFloor {
		return &ledger.FieldError{Field: "account", Value: a.Code, Rule: "already exists with another book, kind or floor", Kind: ledger.ErrConflict}
	}
	return nil
}

// Post writes a balanced entry to its book and returns it sealed. When its idempotency key
// was used before, Post returns the original entry if the request is the same (replay=true)
// and an ErrConflict error if it differs. e.Request must be set (ledger.RequestDigest); when it
// is nil the digest of the entry's own content is used.
func (s *Store) Post(ctx context.Context, e ledger.Entry) (out ledger.Entry, replay bool, err error) {
	if e.ID == "" {
		e.ID = ledger.NewID()
	}
	if e.Request == nil {
		e.Request = ledger.RequestDigest("post", struct {
			Book, Kind, Date, Description, Reverts string
			Vintage                                int
			Metadata                               map[string]string
			Postings                               []ledger.Posting
		}{e.Book, string(e.Kind), ledger.FormatDate(e.EffectiveOn), e.Description, e.Reverts, e.Vintage, e.Metadata, e.Postings})
	}
	if err := e.Validate(); err != nil {
		return e, false, err
	}
	err = s.write(ctx, "post "+string(e.Kind), func(tx *sqlx.Tx) error {
		prior, found, err := replayTx(ctx, tx, e.Key, e.Request)
		if err != nil || found {
			out, replay = prior, found
			return err
		}
		b, err := lockBook(ctx, tx, e.Book)
		if err != nil {
			return err
		}
		ba, err := bookAccountsTx(ctx, tx, b.ID)
		if err != nil {
			return err
		}
		out = e
		return s.insertEntry(ctx, tx, b, ba, &out)
	})
	return out, replay, err
}

// book is a locked book row.
type book struct {
	ID       int64  `db:"id"`
	Code     string `db:"code"`
	HeadSeq  int64  `db:"head_seq"`
	HeadHash []byte `db:"head_hash"`
	// the recorded time of the head entry (NULL while the book is empty)
	HeadRecordedAt sql.NullTime `db:"head_recorded_at"`
}

func lockBook(ctx context.Context, tx *sqlx.Tx, code string) (book, error) {
	var b book
	err := tx.GetContext(ctx, &b, `SELECT id, code, head_seq, head_hash FROM lock_book($1)`, code)
	if errors.Is(err, sql.ErrNoRows) {
		return b, &ledger.FieldError{Field: "book", Value: code, Rule: "does not exist", Kind: ledger.ErrNotFound}
	}
	return b, err
}

// replayTx looks the idempotency key up. found is true when the same request was already
// written (prior is that entry); a different request under the key is an ErrConflict.
func replayTx(ctx context.Context, tx *sqlx.Tx, key string, request []byte) (prior ledger.Entry, found bool, err error) {
	var row struct {
		ID      string `db:"id"`
		Request []byte `db:"request_sha256"`
	}
	err = tx.GetContext(ctx, &row, `SELECT id, request_sha256 FROM entries WHERE idempotency_key = $1`, key)
	if errors.Is(err, sql.ErrNoRows) {
		return prior, false, nil
	}
	if err != nil {
		return prior, false, err
	}
	return replayOf(ctx, tx, key, row.ID, row.Request, request)
}

// replayOf returns the entry recorded under key (id) when its request digest is request's, and
// an ErrConflict naming the entry when it is another request's.
func replayOf(ctx context.Context, tx *sqlx.Tx, key, id string, recorded, request []byte) (ledger.Entry, bool, error) {
	if !bytes.Equal(recorded, request) {
		return ledger.Entry{}, false, &ledger.FieldError{Field: "key", Value: key, Kind: ledger.ErrConflict,
			Rule: "was already used for a different request (entry " + id + "); use a new key for a new request"}
	}
	prior, err := entryTx(ctx, tx, id)
	return prior, err == nil, err
}

// bookAccount is an account of a locked book, as a write checks it.
type bookAccount struct {
	ID      int64          `json:"id"`
	Code    string         `json:"code"`
	Kind    string         `json:"kind"`
	Floor   *ledger.Tonnes `json:"floor"`
	Balance ledger.Tonnes  `json:"balance"`
	// the latest effective date of any movement (nil: none yet)
	LastOn *string `json:"last_on"`
}

// bookAccounts is a locked book's accounts and the clock that seals its next entry.
type bookAccounts struct {
	Now      time.Time     `json:"now"`
	Accounts []bookAccount `json:"accounts"`
}

func bookAccountsTx(ctx context.Context, tx *sqlx.Tx, bookID int64) (bookAccounts, error) {
	var raw []byte
	var out bookAccounts
	if err := tx.GetContext(ctx, &raw, `SELECT book_accounts($1)`, bookID); err != nil {
		return out, err
	}
	err := json.Unmarshal(raw, &out)
	return out, err
}

// insertEntry checks e against the locked book and its accounts, seals it at the head of the
// book's chain at the recorded time ba.Now, and inserts it with its postings in one
// statement.
func (s *Store) insertEntry(ctx context.Context, tx *sqlx.Tx, b book, ba bookAccounts, e *ledger.Entry) error {
	ids, err := s.prepareEntry(ctx, tx, b, ba, e, ba.Now, nil, nil)
	if err != nil {
		return err
	}
	return writeEntry(ctx, tx, b.ID, e, ids)
}

// prepareEntry checks e against the locked book b and its accounts ba, and seals it at the
// head of b's chain at the recorded time now; it returns the ids of the accounts e posts to.
// It refuses a movement that would take an account below its floor now or at any effective
// date from e's onwards (a back-dated overdraft), naming the account. beforeRead, when not
// nil, runs before a check reads the database (an import writes what it holds first).
//
// laterMost, when not nil, answers what the floor check of a back-dated movement asks the
// daily rollup (qLaterMost) from what the caller holds instead.
func (s *Store) prepareEntry(ctx context.Context, tx *sqlx.Tx, b book, ba bookAccounts, e *ledger.Entry, now time.Time,
	beforeRead func() error, laterMost laterMostFunc) ([]int64, error) {
	if beforeRead == nil {
		beforeRead = func() error { return nil }
	}
	if laterMost == nil {
		laterMost = func(a *bookAccount, d time.Time) (ledger.Tonnes, error) {
			if err := beforeRead(); err != nil {
				return ledger.Zero, err
			}
			var later ledger.Tonnes
			err := tx.GetContext(ctx, &later, qLaterMost, a.ID, d)
			return later, err
		}
	}
	if err := ledger.CheckEffectiveDate(e.EffectiveOn, s.Now(), s.FutureTolerance); err != nil {
		return nil, err
	}
	ids := make([]int64, len(e.Postings))
	for i, p := range e.Postings {
		a := ba.account(p.Account)
		if a == nil {
			if err := beforeRead(); err != nil {
				return nil, err
			}
			return nil, missingAccount(ctx, tx, b, i, p.Account)
		}
		if a.Kind == string(ledger.AccRetired) && p.Amount.IsNegative() {
			return nil, &ledger.FieldError{Field: fmt.Sprintf("postings[%d].account", i), Value: p.Account, Kind: ledger.ErrImmutable,
				Rule: "is a retired account; retired tonnes are final and never leave it"}
		}
		if a.Floor != nil && p.Amount.IsNegative() {
			if err := checkFloor(a, *a.Floor, p.Amount, e.EffectiveOn, laterMost); err != nil {
				return nil, err
			}
		}
		ids[i] = a.ID
	}
	if who := s.recorder(ctx); who != "" {
		// Who wrote the entry is part of what it says, so the hash seals it.
		md := maps.Clone(e.Metadata)
		if md == nil {
			md = map[string]string{}
		}
		md[ledger.MetaRecordedBy] = who
		e.Metadata = md
	}
	if err := e.Seal(b.HeadSeq+1, b.HeadHash, now); err != nil {
		return nil, err
	}
	if e.Reverts != "" && e.RevertsKind == "" {
		// BuildRevert knows the reverted entry's kind; a plain Post is looked up. The insert
		// trigger checks it against the original either way.
		if err := beforeRead(); err != nil {
			return nil, err
		}
		var rk string
		if err := tx.GetContext(ctx, &rk, `SELECT kind FROM entries WHERE id = $1`, e.Reverts); err != nil {
			return nil, err
		}
		e.RevertsKind = ledger.Kind(rk)
	}
	return ids, nil
}

// account is the book's account code, or nil.
func (ba bookAccounts) account(code string) *bookAccount {
	for i := range ba.Accounts {
		if ba.Accounts[i].Code == code {
			return &ba.Accounts[i]
		}
	}
	return nil
}

// entryColumns are the columns an entry is written with, in the order entryValues gives.
var entryColumns = []string{"id", "book_id", "seq", "kind", "effective_on", "recorded_at", "idempotency_key", "request_sha256",
	"description", "reverts", "reverts_kind", "vintage", "metadata", "hash_version", "prev_hash", "hash"}

// metadataJSON is an entry's metadata column: a JSON object, {} when it has none.
func metadataJSON(e *ledger.Entry) (string, error) {
	meta, err := json.Marshal(nonNil(e.Metadata))
	return string(meta), err
}

// entryValues are a sealed entry's column values in book bookID.
func entryValues(bookID int64, e *ledger.Entry) ([]any, error) {
	meta, err := metadataJSON(e)
	if err != nil {
		return nil, err
	}
	var reverts, revertsKind, vintage any
	if e.Reverts != "" {
		reverts, revertsKind = e.Reverts, string(e.RevertsKind)
	}
	if e.Vintage != 0 {
		vintage = e.Vintage
	}
	return []any{e.ID, bookID, e.Seq, string(e.Kind), e.EffectiveOn, e.RecordedAt, e.Key, e.Request,
		e.Description, reverts, revertsKind, vintage, meta, e.HashVersion, e.PrevHash, e.Hash}, nil
}

// writeEntry inserts a sealed entry with its postings (to the accounts ids) in one statement:
// the entry (its trigger extends the chain), then its postings (their statement trigger moves
// the balances and the rollups).
func writeEntry(ctx context.Context, tx *sqlx.Tx, bookID int64, e *ledger.Entry, ids []int64) error {
	vals, err := entryValues(bookID, e)
	if err != nil {
		return err
	}
	amounts := make([]string, len(e.Postings))
	for i, p := range e.Postings {
		amounts[i] = p.Amount.String()
	}
	_, err = tx.ExecContext(ctx, `
		WITH e AS (
		    INSERT INTO entries (id, book_id, seq, kind, effective_on, recorded_at, idempotency_key, request_sha256,
		                         description, reverts, reverts_kind, vintage, metadata, hash_version, prev_hash, hash)
		    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		    RETURNING id
		)
		INSERT INTO postings (entry_id, account_id, amount)
		SELECT e.id, u.a, CAST(u.m AS numeric) FROM e, unnest($17::bigint[], $18::text[]) AS u(a, m)`,
		append(vals, pq.Array(ids), pq.Array(amounts))...)
	return err
}

// missingAccount explains a posting to an account that is not in the entry's book.
func missingAccount(ctx context.Context, tx *sqlx.Tx, b book, i int, code string) error {
	field := fmt.Sprintf("postings[%d].account", i)
	var exists bool
	if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM accounts WHERE code = $1)`, code); err != nil {
		return err
	}
	if exists {
		return ledger.Invalid(field, code, "belongs to another book than "+b.Code+"; an entry stays within one book")
	}
	return &ledger.FieldError{Field: field, Value: code, Rule: "does not exist", Kind: ledger.ErrNotFound}
}

// checkFloor refuses taking amount (negative) out of account a on date d when the account's
// balance would fall below its floor at d or at any later effective date. Its cost does not
// grow with the account's history: an entry dated on or after the account's last movement
// (the usual case) needs only the cached balance, and a back-dated one reads only the days
// after its date.
func checkFloor(a *bookAccount, floor, amount ledger.Tonnes, d time.Time, laterMost laterMostFunc) error {
	after := a.Balance.Add(amount)
	if after.LessThan(floor) {
		return ledger.Insufficient("tonnes", amount.Neg().String(), fmt.Sprintf(
			"exceeds what %s holds: %s t available (balance %s, floor %s)",
			a.Code, a.Balance.Sub(floor).String(), a.Balance.String(), floor.String()))
	}
	if a.LastOn == nil || *a.LastOn <= ledger.FormatDate(d) {
		return nil
	}
	// The balance at the end of a day x is the cached balance less what is dated after x, so
	// the lowest balance from d on is the balance less the largest sum dated after any such x.
	later, err := laterMost(a, d)
	if err != nil {
		return err
	}
	if low := a.Balance.Sub(later); low.Add(amount).LessThan(floor) {
		return ledger.Insufficient("tonnes", amount.Neg().String(), fmt.Sprintf(
			"exceeds what %s held on or after %s: at most %s t was available there (entries dated later already draw on it)",
			a.Code, ledger.FormatDate(d), low.Sub(floor).Max(ledger.Zero).String()))
	}
	return nil
}

// laterMostFunc is, for account a and date d, the largest sum of a's movements dated after
// some day x >= d (zero at the last day): qLaterMost.
type laterMostFunc func(a *bookAccount, d time.Time) (ledger.Tonnes, error)

// qLaterMost is, for account $1 and date $2, the largest sum of movements dated after some
// day x >= $2 (zero at the last day): the sum from each later day on, at its largest. It
// reads the daily rollup's rows after $2 only.
const qLaterMost = `
SELECT greatest(coalesce(max(s), 0), 0) FROM (
    SELECT sum(sum(amount)) OVER (ORDER BY effective_on DESC) AS s
      FROM flows
     WHERE account_id = $1 AND effective_on > $2
     GROUP BY effective_on) x`

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// entryRow is an entries row as scanned.
type entryRow struct {
	ID          string         `db:"id"`
	Book        string         `db:"book"`
	Seq         int64          `db:"seq"`
	Kind        string         `db:"kind"`
	EffectiveOn time.Time      `db:"effective_on"`
	RecordedAt  time.Time      `db:"recorded_at"`
	Key         string         `db:"idempotency_key"`
	Request     []byte         `db:"request_sha256"`
	Description string         `db:"description"`
	Reverts     sql.NullString `db:"reverts"`
	RevertsKind sql.NullString `db:"reverts_kind"`
	Vintage     sql.NullInt64  `db:"vintage"`
	Metadata    []byte         `db:"metadata"`
	HashVersion int            `db:"hash_version"`
	PrevHash    []byte         `db:"prev_hash"`
	Hash        []byte         `db:"hash"`
}

const entryCols = `e.id, b.code AS book, e.seq, e.kind, e.effective_on, e.recorded_at, e.idempotency_key,
	e.request_sha256, e.description, e.reverts, e.reverts_kind, e.vintage, e.metadata, e.hash_version, e.prev_hash, e.hash`

func (r entryRow) entry() (ledger.Entry, error) {
	e := ledger.Entry{ID: r.ID, Book: r.Book, Seq: r.Seq, Kind: ledger.Kind(r.Kind),
		EffectiveOn: r.EffectiveOn.UTC(), RecordedAt: r.RecordedAt.UTC(), Key: r.Key, Request: r.Request,
		Description: r.Description, Reverts: r.Reverts.String, RevertsKind: ledger.Kind(r.RevertsKind.String), Vintage: int(r.Vintage.Int64),
		HashVersion: r.HashVersion, PrevHash: r.PrevHash, Hash: r.Hash}
	if len(r.Metadata) > 0 {
		var err error
		if e.Metadata, err = parseMetadata(r.Metadata); err != nil {
			return e, fmt.Errorf("entry %s: metadata: %w", r.ID, err)
		}
		if len(e.Metadata) == 0 {
			e.Metadata = nil
		}
	}
	return e, nil
}

func entryTx(ctx context.Context, tx sqlx.QueryerContext, id string) (ledger.Entry, error) {
	var r entryRow
	err := sqlx.GetContext(ctx, tx, &r, `SELECT `+entryCols+` FROM entries e JOIN books b ON b.id = e.book_id WHERE e.id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.Entry{}, &ledger.FieldError{Field: "entry", Value: id, Rule: "does not exist", Kind: ledger.ErrNotFound}
	}
	if err != nil {
		return ledger.Entry{}, err
	}
	e, err := r.entry()
	if err != nil {
		return e, err
	}
	e.Postings, err = postingsTx(ctx, tx, id)
	return e, err
}

func postingsTx(ctx context.Context, q sqlx.QueryerContext, entryID string) ([]ledger.Posting, error) {
	var ps []struct {
		Account string        `db:"code"`
		Amount  ledger.Tonnes `db:"amount"`
	}
	if err := sqlx.SelectContext(ctx, q, &ps, `SELECT a.code, p.amount FROM postings p JOIN accounts a ON a.id = p.account_id WHERE p.entry_id = $1 ORDER BY a.code`, entryID); err != nil {
		return nil, err
	}
	out := make([]ledger.Posting, len(ps))
	for i, p := range ps {
		out[i] = ledger.Posting{Account: p.Account, Amount: p.Amount}
	}
	return out, nil
}

// Entry returns one entry with its postings.
func (s *Store) Entry(ctx context.Context, id string) (ledger.Entry, error) {
	id = strings.ToLower(strings.TrimSpace(id)) // as a revert reads an entry id
	if !uuidRE.MatchString(id) {
		return ledger.Entry{}, ledger.Invalid("entry", id, "is not an entry id (a UUID such as 0190c3a2-...)")
	}
	var e ledger.Entry
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		var err error
		e, err = entryTx(ctx, tx, id)
		return err
	})
	return e, err
}

// Entries returns the entries of a book in chain order, with their postings.
func (s *Store) Entries(ctx context.Context, bookCode string) ([]ledger.Entry, error) {
	var out []ledger.Entry
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		var rows []entryRow
		if err := tx.SelectContext(ctx, &rows, `SELECT `+entryCols+` FROM entries e JOIN books b ON b.id = e.book_id
			WHERE b.code = $1 ORDER BY e.seq`, bookCode); err != nil {
			return err
		}
		// Every posting of the book in one query (not one per entry), in postingsTx's order.
		var ps []struct {
			Entry   string        `db:"entry_id"`
			Account string        `db:"code"`
			Amount  ledger.Tonnes `db:"amount"`
		}
		if err := tx.SelectContext(ctx, &ps, `
			SELECT p.entry_id, a.code, p.amount
			  FROM postings p JOIN accounts a ON a.id = p.account_id JOIN books b ON b.id = a.book_id
			 WHERE b.code = $1 ORDER BY p.entry_id, a.code`, bookCode); err != nil {
			return err
		}
		byEntry := make(map[string][]ledger.Posting, len(rows))
		for _, p := range ps {
			byEntry[p.Entry] = append(byEntry[p.Entry], ledger.Posting{Account: p.Account, Amount: p.Amount})
		}
		for _, r := range rows {
			e, err := r.entry()
			if err != nil {
				return err
			}
			e.Postings = byEntry[e.ID]
			if e.Postings == nil {
				e.Postings = []ledger.Posting{}
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Balance is an account's cached balance and the sum of its postings.
type Balance struct {
	Account string        `db:"code" json:"account"`
	Book    string        `db:"book" json:"book"`
	Kind    string        `db:"kind" json:"kind"`
	Cached  ledger.Tonnes `db:"balance" json:"balance"`
	Posted  ledger.Tonnes `db:"posted" json:"posted"`
}

// Balances returns every account's cached balance beside the sum of its postings, ordered by
// code; the two are equal unless someone tampered with the database.
func (s *Store) Balances(ctx context.Context, bookCode string) ([]Balance, error) {
	var out []Balance
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &out, `
			SELECT a.code, b.code AS book, a.kind, a.balance,
			       coalesce((SELECT sum(p.amount) FROM postings p WHERE p.account_id = a.id), 0) AS posted
			  FROM accounts a JOIN books b ON b.id = a.book_id
			 WHERE $1 = '' OR b.code = $1
			 ORDER BY a.code`, bookCode)
	})
	return out, err
}

// ChainBreak is where a book's hash chain fails to verify.
type ChainBreak struct {
	Book    string
	Seq     int64
	EntryID string
	Problem string
}

// VerifyChains recomputes every entry's hash in chain order and checks it links to its
// predecessor and that each book's head is its last entry. It returns the heads and the
// breaks found (none when the journal is intact). The full audit does this and more.
func (s *Store) VerifyChains(ctx context.Context) ([]ledger.ChainHead, []ChainBreak, error) {
	v := &chainVisitor{}
	if err := s.WalkJournal(ctx, nil, v); err != nil {
		return nil, nil, err
	}
	return v.heads, v.breaks, nil
}

type chainVisitor struct {
	heads  []ledger.ChainHead
	breaks []ChainBreak
	book   BookInfo
	prev   []byte
	seq    int64
}

func (v *chainVisitor) Book(b BookInfo) error {
	v.book, v.prev, v.seq = b, ledger.GenesisHash, 0
	return nil
}

func (v *chainVisitor) Entry(e ledger.Entry) error {
	v.seq++
	if p := ledger.CheckLink(e, v.seq, v.prev); p != "" {
		v.breaks = append(v.breaks, ChainBreak{Book: v.book.Code, Seq: e.Seq, EntryID: e.ID, Problem: p})
	}
	v.prev, v.seq = e.Hash, e.Seq
	return nil
}

func (v *chainVisitor) EndBook(b BookInfo) error {
	if v.seq != b.HeadSeq || !bytes.Equal(v.prev, b.HeadHash) {
		v.breaks = append(v.breaks, ChainBreak{Book: b.Code, Seq: b.HeadSeq,
			Problem: fmt.Sprintf("the book's head (seq %d) is not its last entry (seq %d)", b.HeadSeq, v.seq)})
	}
	v.heads = append(v.heads, ledger.ChainHead{Book: b.Code, Seq: b.HeadSeq, Hash: fmt.Sprintf("%x", b.HeadHash)})
	return nil
}
