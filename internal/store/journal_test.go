package store

// Tests of the journal's guarantees, each proved by trying to break it: first through the
// Store API, then with plain SQL against the store's database (the superuser of a private
// cluster, so only the schema's own triggers and constraints stand in the way), then as the
// least-privileged writer role, and finally the store's bounded retries.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/carbonledger/carbonledger/ledger"
)

// byAmount lets go-cmp compare amounts by value (4.25 and 4.250 are the same amount) and
// treats no postings and an empty list of postings alike.
var byAmount = cmp.Options{cmp.Comparer(func(a, b ledger.Tonnes) bool { return a.Equal(b) }), cmpopts.EquateEmpty()}

// pgCode returns the SQLSTATE carried by err, or "" when it carries none.
func pgCode(err error) string {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return string(pe.Code)
	}
	return ""
}

// pgConstraint returns the constraint named by the PostgreSQL error in err, if any.
func pgConstraint(err error) string {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Constraint
	}
	return ""
}

// journalImage is a text image of every row of the journal tables (books with their chain
// heads, accounts with their cached balances, entries, postings): two equal images mean
// nothing in the journal changed.
func journalImage(t testing.TB, s *Store) string {
	t.Helper()
	const q = `
SELECT (SELECT coalesce(string_agg(x::text, E'\n' ORDER BY x.id), '') FROM books x) || E'\n#\n' ||
       (SELECT coalesce(string_agg(x::text, E'\n' ORDER BY x.id), '') FROM accounts x) || E'\n#\n' ||
       (SELECT coalesce(string_agg(x::text, E'\n' ORDER BY x.book_id, x.seq), '') FROM entries x) || E'\n#\n' ||
       (SELECT coalesce(string_agg(x::text, E'\n' ORDER BY x.entry_id, x.account_id), '') FROM postings x)`
	var out string
	if err := s.DB().QueryRowContext(context.Background(), q).Scan(&out); err != nil {
		t.Fatalf("image of the journal: %v", err)
	}
	return out
}

// assertIntact fails t unless every chain verifies and every cached balance equals the sum
// of its postings.
func assertIntact(t testing.TB, s *Store) {
	t.Helper()
	ctx := context.Background()
	_, breaks, err := s.VerifyChains(ctx)
	if err != nil {
		t.Fatalf("VerifyChains: %v", err)
	}
	for _, b := range breaks {
		t.Errorf("chain break: book %s seq %d entry %s: %s", b.Book, b.Seq, b.EntryID, b.Problem)
	}
	bals, err := s.Balances(ctx, "")
	if err != nil {
		t.Fatalf("Balances: %v", err)
	}
	for _, b := range bals {
		if !b.Cached.Equal(b.Posted) {
			t.Errorf("account %s: cached balance %s, postings sum to %s", b.Account, b.Cached, b.Posted)
		}
	}
	wantAuditClean(t, s)
}

// postOK posts e and fails t on an error or on a replay.
func postOK(t testing.TB, s *Store, e ledger.Entry) ledger.Entry {
	t.Helper()
	out, replay, err := s.Post(context.Background(), e)
	if err != nil {
		t.Fatalf("post %s: %v", e.Key, err)
	}
	if replay {
		t.Fatalf("post %s: replay = true on a first post", e.Key)
	}
	return out
}

// cachedBalance returns an account's cached balance.
func cachedBalance(t testing.TB, s *Store, code string) ledger.Tonnes {
	t.Helper()
	var b ledger.Tonnes
	if err := s.DB().QueryRowContext(context.Background(), `SELECT balance FROM accounts WHERE code = $1`, code).Scan(&b); err != nil {
		t.Fatalf("balance of %s: %v", code, err)
	}
	return b
}

// countRows returns the number of rows of a table.
func rowCount(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// sortedPostings returns e with its postings in account order, the order the store reads
// them back in.
func sortedPostings(e ledger.Entry) ledger.Entry {
	e.Postings = slices.Clone(e.Postings)
	slices.SortFunc(e.Postings, func(a, b ledger.Posting) int { return strings.Compare(a.Account, b.Account) })
	return e
}

// --- A. Through the Store API -----------------------------------------------------------

func TestPostUpdatesCachedBalances(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src, a, b := journalBook(t, s, "j")
	postOK(t, s, move("j", "k1", src, a, "10.5", 1))
	postOK(t, s, move("j", "k2", a, b, "4.25", 2))
	postOK(t, s, move("j", "k3", src, b, "0.001", 3))

	got, err := s.Balances(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	want := []Balance{
		{Account: a, Book: "j", Kind: "asset", Cached: tn("6.25"), Posted: tn("6.25")},
		{Account: b, Book: "j", Kind: "asset", Cached: tn("4.251"), Posted: tn("4.251")},
		{Account: src, Book: "j", Kind: "equity", Cached: tn("-10.501"), Posted: tn("-10.501")},
	}
	if diff := cmp.Diff(want, got, byAmount); diff != "" {
		t.Errorf("Balances (-want +got):\n%s", diff)
	}
	// Every book: the same rows, since there is only one.
	all, err := s.Balances(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, all, byAmount); diff != "" {
		t.Errorf("Balances of every book (-want +got):\n%s", diff)
	}
	assertIntact(t, s)
}

func TestPostReplaySameRequest(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src, a, _ := journalBook(t, s, "j")
	e := move("j", "same-key", src, a, "7", 1)
	first := postOK(t, s, e)
	before := journalImage(t, s)

	for _, tc := range []struct {
		name string
		e    ledger.Entry
	}{
		{"identical request", e},
		// the id is the store's; a caller-chosen one does not make it another request
		{"another id", func() ledger.Entry { c := e; c.ID = ledger.NewID(); return c }()},
		// the entry as returned, with everything the store sealed into it
		{"the sealed entry", first},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, replay, err := s.Post(ctx, tc.e)
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			if !replay {
				t.Errorf("replay = false, want true")
			}
			if got.ID != first.ID {
				t.Errorf("replay returned entry %s, want the original %s", got.ID, first.ID)
			}
			if diff := cmp.Diff(sortedPostings(first), got, byAmount); diff != "" {
				t.Errorf("replayed entry differs from the original (-first +replay):\n%s", diff)
			}
			if after := journalImage(t, s); after != before {
				t.Errorf("a replay changed the journal:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	if n := rowCount(t, s, "entries"); n != 1 {
		t.Errorf("entries: got %d rows, want 1", n)
	}
	if n := rowCount(t, s, "postings"); n != 2 {
		t.Errorf("postings: got %d rows, want 2", n)
	}
}

func TestPostKeyReusedForAnotherRequest(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src, a, b := journalBook(t, s, "j")
	journalBook(t, s, "k")
	first := postOK(t, s, move("j", "key-1", src, a, "7", 1))
	before := journalImage(t, s)

	other := func(f func(e *ledger.Entry)) ledger.Entry {
		e := move("j", "key-1", src, a, "7", 1)
		f(&e)
		return e
	}
	for _, tc := range []struct {
		name string
		e    ledger.Entry
	}{
		{"another amount", move("j", "key-1", src, a, "7.001", 1)},
		{"another account", move("j", "key-1", src, b, "7", 1)},
		{"another date", move("j", "key-1", src, a, "7", 2)},
		{"another description", other(func(e *ledger.Entry) { e.Description = "something else" })},
		{"metadata added", other(func(e *ledger.Entry) { e.Metadata = map[string]string{"note": "x"} })},
		{"another book", move("k", "key-1", "test:k:src", "test:k:a", "7", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, replay, err := s.Post(ctx, tc.e)
			if !errors.Is(err, ledger.ErrConflict) {
				t.Fatalf("got error %v, want one wrapping ErrConflict", err)
			}
			if replay {
				t.Errorf("replay = true on a conflict")
			}
			if !strings.Contains(err.Error(), "key-1") || !strings.Contains(err.Error(), first.ID) {
				t.Errorf("error %q names neither the key nor the entry that holds it (%s)", err, first.ID)
			}
			if got.ID == first.ID && got.Hash != nil {
				t.Errorf("a conflict returned the original entry as if it were this one")
			}
			if after := journalImage(t, s); after != before {
				t.Errorf("a refused post changed the journal")
			}
		})
	}
}

func TestPostUnknownAccountOrBook(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src, a, _ := journalBook(t, s, "j")
	postOK(t, s, move("j", "fund", src, a, "5", 1))
	before := journalImage(t, s)
	for _, tc := range []struct {
		name string
		e    ledger.Entry
		in   string
	}{
		{"unknown destination", move("j", "u1", src, "test:j:nobody", "1", 2), "test:j:nobody"},
		{"unknown source", move("j", "u2", "test:j:ghost", a, "1", 2), "test:j:ghost"},
		{"unknown book", move("nobook", "u3", src, a, "1", 2), "nobook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.Post(ctx, tc.e)
			if !errors.Is(err, ledger.ErrNotFound) {
				t.Fatalf("got error %v, want one wrapping ErrNotFound", err)
			}
			if !strings.Contains(err.Error(), tc.in) {
				t.Errorf("error %q does not name %s", err, tc.in)
			}
			if after := journalImage(t, s); after != before {
				t.Errorf("a refused post changed the journal")
			}
		})
	}
}

func TestPostOverdraftRefused(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src, a, b := journalBook(t, s, "j")
	postOK(t, s, move("j", "fund", src, a, "5", 1))
	before := journalImage(t, s)

	_, _, err := s.Post(ctx, move("j", "over", a, b, "5.001", 2))
	if !errors.Is(err, ledger.ErrInsufficient) {
		t.Fatalf("got error %v, want one wrapping ErrInsufficient", err)
	}
	if !strings.Contains(err.Error(), a) {
		t.Errorf("error %q does not name the account %s", err, a)
	}
	if after := journalImage(t, s); after != before {
		t.Errorf("a refused overdraft changed the journal")
	}
	// The same key is still free: the refused post recorded nothing under it.
	postOK(t, s, move("j", "over", a, b, "5", 2))
	if got := cachedBalance(t, s, a); !got.IsZero() {
		t.Errorf("balance of %s after drawing everything: got %s, want 0", a, got)
	}
	// Nothing left: the smallest amount is refused too.
	if _, _, err := s.Post(ctx, move("j", "over-2", a, b, "0.001", 3)); !errors.Is(err, ledger.ErrInsufficient) {
		t.Errorf("drawing 0.001 from an empty account: got %v, want ErrInsufficient", err)
	}
	// An account that may go negative has no floor.
	postOK(t, s, move("j", "src-neg", src, b, "1000000", 3))
	assertIntact(t, s)
}

func TestPostBackdatedOverdraftRefused(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src, a, b := journalBook(t, s, "j")
	postOK(t, s, move("j", "in-1", src, a, "10", 1))   // a: 10 from Jan 1
	postOK(t, s, move("j", "out-20", a, b, "10", 20))  // a: 0 from Jan 20
	postOK(t, s, move("j", "in-25", src, a, "10", 25)) // a: 10 from Jan 25; the cached balance is 10
	if got := cachedBalance(t, s, a); !got.Equal(tn("10")) {
		t.Fatalf("balance of %s: got %s, want 10", a, got)
	}
	for _, tc := range []struct {
		day int
		ok  bool
	}{
		{10, false}, // 10 there on Jan 10, but the Jan 20 entry already takes all of it
		{22, false}, // nothing there on Jan 22
		{19, false},
		{25, true}, // the Jan 25 tonnes are there
		{28, true},
	} {
		t.Run(fmt.Sprintf("Jan %d", tc.day), func(t *testing.T) {
			before := journalImage(t, s)
			_, _, err := s.Post(ctx, move("j", fmt.Sprintf("draw-%d", tc.day), a, b, "3", tc.day))
			if tc.ok {
				if err != nil {
					t.Fatalf("drawing 3 on Jan %d: %v", tc.day, err)
				}
				return
			}
			if !errors.Is(err, ledger.ErrInsufficient) {
				t.Fatalf("drawing 3 on Jan %d: got %v, want ErrInsufficient", tc.day, err)
			}
			if !strings.Contains(err.Error(), a) {
				t.Errorf("error %q does not name the account %s", err, a)
			}
			if after := journalImage(t, s); after != before {
				t.Errorf("a refused back-dated overdraft changed the journal")
			}
		})
	}
	// Jan 25 and Jan 28 took 6 of the 10: 4 remain, from Jan 28 on.
	if got := cachedBalance(t, s, a); !got.Equal(tn("4")) {
		t.Errorf("balance of %s: got %s, want 4", a, got)
	}
	assertIntact(t, s)
}

func TestPostFutureDateRefused(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src, a, _ := journalBook(t, s, "j")
	s.Now = func() time.Time { return time.Date(2025, 1, 10, 15, 30, 0, 0, time.UTC) }
	s.FutureTolerance = 24 * time.Hour

	postOK(t, s, move("j", "today", src, a, "1", 10))
	postOK(t, s, move("j", "tomorrow", src, a, "1", 11)) // within the tolerance
	before := journalImage(t, s)
	_, _, err := s.Post(ctx, move("j", "in-two-days", src, a, "1", 12))
	if !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("an entry dated beyond the tolerance: got %v, want ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), "2025-01-12") || !strings.Contains(err.Error(), "future") {
		t.Errorf("error %q names neither the date nor why it is refused", err)
	}
	if after := journalImage(t, s); after != before {
		t.Errorf("a refused future-dated post changed the journal")
	}
	s.FutureTolerance = 0
	if _, _, err := s.Post(ctx, move("j", "tomorrow-2", src, a, "1", 11)); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("tomorrow with no tolerance: got %v, want ErrInvalid", err)
	}
	postOK(t, s, move("j", "past", src, a, "1", 2))
}

func TestEntryReadsBackWhatWasWritten(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src, a, b := journalBook(t, s, "j")
	journalBook(t, s, "k")

	var want []ledger.Entry
	e1 := move("j", "r1", src, a, "12.345", 1)
	e1.Metadata = map[string]string{"source": "test", "batch": "7"}
	e1.Vintage = 2024
	e1.Description = "opening balance — with ünïcode"
	want = append(want, postOK(t, s, e1))
	e2 := ledger.Entry{Book: "j", Kind: ledger.KindTransfer, EffectiveOn: ledger.Date(2025, 1, 2), Key: "r2",
		Postings: []ledger.Posting{{Account: b, Amount: tn("2")}, {Account: a, Amount: tn("-3")}, {Account: src, Amount: tn("1")}}}
	want = append(want, postOK(t, s, e2))
	want = append(want, postOK(t, s, ledger.Entry{Book: "j", Kind: ledger.KindAmend, EffectiveOn: ledger.Date(2025, 1, 3),
		Key: "r3", Description: "an amend without postings"}))
	postOK(t, s, move("k", "other-book", "test:k:src", "test:k:a", "1", 1))

	for i := range want {
		want[i] = sortedPostings(want[i])
		got, err := s.Entry(ctx, want[i].ID)
		if err != nil {
			t.Fatalf("Entry(%s): %v", want[i].ID, err)
		}
		if diff := cmp.Diff(want[i], got, byAmount); diff != "" {
			t.Errorf("Entry(%s) (-written +read):\n%s", want[i].Key, diff)
		}
	}
	got, err := s.Entries(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, byAmount); diff != "" {
		t.Errorf("Entries(j) (-written +read):\n%s", diff)
	}
	for i, e := range got {
		if e.Seq != int64(i+1) {
			t.Errorf("entry %d: seq %d, want %d", i, e.Seq, i+1)
		}
		if e.RecordedAt.IsZero() || (i > 0 && e.RecordedAt.Before(got[i-1].RecordedAt)) {
			t.Errorf("entry %d: recorded at %s, before its predecessor (%s)", i, e.RecordedAt, got[i-1].RecordedAt)
		}
	}
	if _, err := s.Entry(ctx, ledger.NewID()); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Entry(unknown id): got %v, want ErrNotFound", err)
	}
	if _, err := s.Entry(ctx, "not-a-uuid"); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("Entry(not-a-uuid): got %v, want ErrInvalid", err)
	}
	// an id is read in any case, as a revert reads it
	if got, err := s.Entry(ctx, " "+strings.ToUpper(want[0].ID)+" "); err != nil || got.ID != want[0].ID {
		t.Errorf("Entry(upper-case id): got %s, %v; want entry %s", got.ID, err, want[0].ID)
	}
}

func TestVerifyChainsIntact(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src, a, b := journalBook(t, s, "j")
	journalBook(t, s, "k")
	journalBook(t, s, "empty")
	var last ledger.Entry
	for i := 1; i <= 5; i++ {
		last = postOK(t, s, move("j", fmt.Sprintf("j%d", i), src, a, "1", i))
	}
	postOK(t, s, move("j", "jb", a, b, "2", 6))
	last = postOK(t, s, move("j", "jc", b, a, "1", 7))
	k := postOK(t, s, move("k", "k1", "test:k:src", "test:k:b", "3", 1))

	heads, breaks, err := s.VerifyChains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(breaks) != 0 {
		t.Errorf("an intact journal has breaks: %+v", breaks)
	}
	want := []ledger.ChainHead{
		{Book: "empty", Seq: 0, Hash: fmt.Sprintf("%x", ledger.GenesisHash)},
		{Book: "j", Seq: 7, Hash: fmt.Sprintf("%x", last.Hash)},
		{Book: "k", Seq: 1, Hash: fmt.Sprintf("%x", k.Hash)},
	}
	if diff := cmp.Diff(want, heads); diff != "" {
		t.Errorf("chain heads (-want +got):\n%s", diff)
	}
}

func TestPostRetiredOutflowRefused(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src, a, _ := journalBook(t, s, "j")
	ret := "test:j:retired"
	if err := s.CreateAccount(ctx, ledger.Account{Code: ret, Book: "j", Kind: ledger.AccRetired, Floor: floor0()}); err != nil {
		t.Fatal(err)
	}
	postOK(t, s, move("j", "fund", src, ret, "5", 1))
	before := journalImage(t, s)
	_, _, err := s.Post(ctx, move("j", "unretire", ret, a, "1", 2))
	if !errors.Is(err, ledger.ErrImmutable) {
		t.Fatalf("moving tonnes out of a retired account: got %v, want ErrImmutable", err)
	}
	if after := journalImage(t, s); after != before {
		t.Errorf("a refused post changed the journal")
	}
}

// --- B. Plain SQL against the store's database ------------------------------------------

// rawEntry is an entries row written with plain SQL, bypassing the store. It is sealed like
// the store seals (the book's head, the transaction's clock), then the tweaks are applied.
type rawEntry struct {
	book     string
	kind     string
	key      string
	postings [][2]string // account code, amount as SQL text
	reverts  string      // id of the reverted entry, with revertsKind
	revKind  string
	// tweaks applied after sealing
	seq        func(head int64) int64
	prevHash   []byte
	recordedAt string // an SQL expression for recorded_at instead of the clock reading
	// sealOnly seals the postings into the hash without inserting them (the caller does)
	sealOnly bool
}

// insertRaw inserts r and its postings in tx and returns the entry's id.
func insertRaw(ctx context.Context, tx *sql.Tx, r rawEntry) (string, error) {
	var bookID, head int64
	var headHash []byte
	if err := tx.QueryRowContext(ctx, `SELECT id, head_seq, head_hash FROM books WHERE code = $1`, r.book).Scan(&bookID, &head, &headHash); err != nil {
		return "", fmt.Errorf("read the head of %s: %w", r.book, err)
	}
	var now time.Time
	if err := tx.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		return "", err
	}
	req := sha256.Sum256([]byte(r.key))
	e := ledger.Entry{ID: ledger.NewID(), Book: r.book, Kind: ledger.Kind(r.kind), EffectiveOn: ledger.Date(2025, 1, 15),
		Key: r.key, Request: req[:], Description: "raw " + r.key, Reverts: r.reverts}
	for _, p := range r.postings {
		amt, _ := ledger.ParseTonnes(p[1]) // refused amounts are not hashed faithfully; they are refused
		e.Postings = append(e.Postings, ledger.Posting{Account: p[0], Amount: amt})
	}
	if err := e.Seal(head+1, headHash, now); err != nil {
		return "", err
	}
	if r.seq != nil {
		e.Seq = r.seq(head)
	}
	if r.prevHash != nil {
		e.PrevHash = r.prevHash
	}
	if r.recordedAt != "" {
		if err := tx.QueryRowContext(ctx, `SELECT `+r.recordedAt).Scan(&e.RecordedAt); err != nil {
			return "", err
		}
	}
	var reverts, revKind any
	if r.reverts != "" {
		reverts, revKind = r.reverts, r.revKind
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO entries (id, book_id, seq, kind, effective_on, recorded_at, idempotency_key, request_sha256,
		                     description, reverts, reverts_kind, metadata, hash_version, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '{}', 1, $12, $13)`,
		e.ID, bookID, e.Seq, r.kind, e.EffectiveOn, e.RecordedAt, e.Key, e.Request, e.Description,
		reverts, revKind, e.PrevHash, e.Hash); err != nil {
		return e.ID, err
	}
	for _, p := range r.postings {
		if r.sealOnly {
			break
		}
		if err := insertPosting(ctx, tx, e.ID, p[0], p[1]); err != nil {
			return e.ID, err
		}
	}
	return e.ID, nil
}

// insertPosting inserts one posting with plain SQL.
func insertPosting(ctx context.Context, tx *sql.Tx, entryID, account, amount string) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO postings (entry_id, account_id, amount)
		SELECT $1, id, CAST($3 AS numeric) FROM accounts WHERE code = $2`, entryID, account, amount)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("no account %s", account)
	}
	return nil
}

// inTx runs fn in a transaction on the store's pool as the connecting (super)user and
// commits; it returns the first error, whether from fn or from the commit.
func rawTx(ctx context.Context, s *Store, fn func(tx *sql.Tx) error) error {
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func stmt(q string, args ...any) func(ctx context.Context, tx *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}
}

// attackFixture is a store with two books and a little history for the SQL attacks.
type attackFixture struct {
	s                *Store
	src, a, b, ret   string
	kSrc, kA         string
	first, last, rev ledger.Entry
}

func newAttackFixture(t *testing.T) attackFixture {
	s := newStore(t)
	ctx := context.Background()
	f := attackFixture{s: s}
	f.src, f.a, f.b = journalBook(t, s, "j")
	f.kSrc, f.kA, _ = journalBook(t, s, "k")
	f.ret = "test:j:retired"
	if err := s.CreateAccount(ctx, ledger.Account{Code: f.ret, Book: "j", Kind: ledger.AccRetired, Floor: floor0()}); err != nil {
		t.Fatal(err)
	}
	f.first = postOK(t, s, move("j", "f1", f.src, f.a, "10", 1))
	postOK(t, s, move("j", "f2", f.a, f.b, "4", 2))
	postOK(t, s, move("j", "f3", f.src, f.ret, "5", 3))
	f.last = postOK(t, s, move("j", "f4", f.b, f.a, "1", 4))
	postOK(t, s, move("k", "k1", f.kSrc, f.kA, "3", 1))
	return f
}

func TestSQLAttacksRefused(t *testing.T) {
	f := newAttackFixture(t)
	s := f.s
	one := func(r rawEntry) func(ctx context.Context, tx *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error { _, err := insertRaw(ctx, tx, r); return err }
	}
	pair := [][2]string{{f.src, "-1"}, {f.a, "1"}}
	for _, tc := range []struct {
		name       string
		code       string
		constraint string // when set, the constraint the error must name
		run        func(ctx context.Context, tx *sql.Tx) error
	}{
		// append-only
		{"UPDATE entries", "CL001", "", stmt(`UPDATE entries SET description = 'rewritten'`)},
		{"UPDATE entries seq", "CL001", "", stmt(`UPDATE entries SET seq = seq + 100`)},
		{"DELETE entries", "CL001", "", stmt(`DELETE FROM entries WHERE id = $1`, f.last.ID)},
		{"UPDATE postings amount", "CL001", "", stmt(`UPDATE postings SET amount = amount * 2`)},
		{"UPDATE postings account", "CL001", "", stmt(`UPDATE postings SET account_id = account_id`)},
		{"DELETE postings", "CL001", "", stmt(`DELETE FROM postings`)},
		{"TRUNCATE entries", "CL001", "", stmt(`TRUNCATE entries CASCADE`)},
		{"TRUNCATE postings", "CL001", "", stmt(`TRUNCATE postings`)},
		{"TRUNCATE postings CASCADE", "CL001", "", stmt(`TRUNCATE postings CASCADE`)},
		// without CASCADE, PostgreSQL refuses a referenced table before any trigger runs
		{"TRUNCATE entries without CASCADE", "0A000", "", stmt(`TRUNCATE entries`)},
		{"TRUNCATE accounts", "CL001", "", stmt(`TRUNCATE accounts CASCADE`)},
		{"TRUNCATE books", "CL001", "", stmt(`TRUNCATE books CASCADE`)},
		{"UPDATE accounts balance", "CL001", "", stmt(`UPDATE accounts SET balance = balance + 1 WHERE code = $1`, f.a)},
		{"UPDATE accounts balance to match a forgery", "CL001", "", stmt(`UPDATE accounts SET balance = 0`)},
		{"UPDATE accounts floor", "CL001", "", stmt(`UPDATE accounts SET floor = -100 WHERE code = $1`, f.a)},
		{"UPDATE accounts kind", "CL001", "", stmt(`UPDATE accounts SET kind = 'asset' WHERE code = $1`, f.ret)},
		{"UPDATE accounts code", "CL001", "", stmt(`UPDATE accounts SET code = 'test:j:renamed' WHERE code = $1`, f.a)},
		{"DELETE accounts", "CL001", "", stmt(`DELETE FROM accounts WHERE code = $1`, f.b)},
		{"UPDATE books head_seq", "CL001", "", stmt(`UPDATE books SET head_seq = head_seq - 1 WHERE code = 'j'`)},
		{"UPDATE books head_hash", "CL001", "", stmt(`UPDATE books SET head_hash = sha256('x') WHERE code = 'j'`)},
		{"UPDATE books code", "CL001", "", stmt(`UPDATE books SET code = 'jj' WHERE code = 'j'`)},
		{"DELETE books", "CL001", "", stmt(`DELETE FROM books WHERE code = 'j'`)},

		// balance, at commit
		{"an entry with one posting", "CL002", "", one(rawEntry{book: "j", kind: "transfer", key: "x1", postings: [][2]string{{f.a, "1"}}})},
		{"two postings not summing to zero", "CL002", "", one(rawEntry{book: "j", kind: "transfer", key: "x2",
			postings: [][2]string{{f.src, "-5"}, {f.a, "4"}}})},
		{"three postings off by 0.001", "CL002", "", one(rawEntry{book: "j", kind: "transfer", key: "x2b",
			postings: [][2]string{{f.src, "-5"}, {f.a, "4"}, {f.b, "0.999"}}})},
		{"a transfer with no postings", "CL002", "", one(rawEntry{book: "j", kind: "transfer", key: "x3"})},
		{"a deliver with no postings", "CL002", "", one(rawEntry{book: "j", kind: "deliver", key: "x3b"})},
		{"a balanced entry, then an unbalancing posting", "CL002", "", func(ctx context.Context, tx *sql.Tx) error {
			id, err := insertRaw(ctx, tx, rawEntry{book: "j", kind: "transfer", key: "x3c", postings: pair})
			if err != nil {
				return err
			}
			return insertPosting(ctx, tx, id, f.b, "2")
		}},

		// values
		{"a zero posting", "23514", "postings_nonzero", one(rawEntry{book: "j", kind: "transfer", key: "x4",
			postings: [][2]string{{f.src, "0"}, {f.a, "0"}}})},
		{"a posting with 4 decimals", "23514", "", one(rawEntry{book: "j", kind: "transfer", key: "x5",
			postings: [][2]string{{f.src, "-1.0005"}, {f.a, "1.0005"}}})},
		{"an overdraft", "23514", "accounts_balance_floor", one(rawEntry{book: "j", kind: "transfer", key: "x6",
			postings: [][2]string{{f.a, "-7.001"}, {f.b, "7.001"}}})},

		// postings stay with their entry, in its book
		{"a balanced pair added to an existing entry in a later transaction", "CL004", "", func(ctx context.Context, tx *sql.Tx) error {
			if err := insertPosting(ctx, tx, f.first.ID, f.b, "-1"); err != nil {
				return err
			}
			return insertPosting(ctx, tx, f.first.ID, f.ret, "1")
		}},
		{"a posting to an account of another book", "CL004", "", one(rawEntry{book: "j", kind: "transfer", key: "x7",
			postings: [][2]string{{f.src, "-1"}, {f.kA, "1"}}})},
		{"a revert of an entry of another book", "CL004", "", func(ctx context.Context, tx *sql.Tx) error {
			var kEntry string
			if err := tx.QueryRowContext(ctx, `SELECT e.id FROM entries e JOIN books b ON b.id = e.book_id WHERE b.code = 'k'`).Scan(&kEntry); err != nil {
				return err
			}
			_, err := insertRaw(ctx, tx, rawEntry{book: "j", kind: "revert", key: "x7b", reverts: kEntry, revKind: "transfer", postings: pair})
			return err
		}},
		{"a revert naming the wrong kind", "CL004", "", one(rawEntry{book: "j", kind: "revert", key: "x7c",
			reverts: f.first.ID, revKind: "deliver", postings: pair})},
		{"a second revert of one entry", "23505", "entries_reverted_once", func(ctx context.Context, tx *sql.Tx) error {
			if _, err := insertRaw(ctx, tx, rawEntry{book: "j", kind: "revert", key: "x7d", reverts: f.first.ID, revKind: "transfer", postings: pair}); err != nil {
				return fmt.Errorf("the first revert: %w", err)
			}
			_, err := insertRaw(ctx, tx, rawEntry{book: "j", kind: "revert", key: "x7e", reverts: f.first.ID, revKind: "transfer", postings: pair})
			return err
		}},

		// retired tonnes are final
		{"an outflow from a retired account", "CL005", "", one(rawEntry{book: "j", kind: "transfer", key: "x8",
			postings: [][2]string{{f.ret, "-1"}, {f.a, "1"}}})},

		// the chain
		{"a seq past the head", "CL003", "", one(rawEntry{book: "j", kind: "transfer", key: "x9", postings: pair,
			seq: func(h int64) int64 { return h + 2 }})},
		// a seq already taken is refused by the unique (book_id, seq) index, before the
		// chain trigger of the statement runs
		{"a seq at the head", "23505", "entries_book_seq", one(rawEntry{book: "j", kind: "transfer", key: "x10", postings: pair,
			seq: func(h int64) int64 { return h }})},
		{"a seq taken by an earlier entry", "23505", "entries_book_seq", one(rawEntry{book: "j", kind: "transfer", key: "x10b", postings: pair,
			seq: func(h int64) int64 { return 1 }})},
		{"a wrong prev_hash", "CL003", "", one(rawEntry{book: "j", kind: "transfer", key: "x11", postings: pair,
			prevHash: make([]byte, 32)})},
		{"the prev_hash of another book", "CL003", "", func(ctx context.Context, tx *sql.Tx) error {
			var h []byte
			if err := tx.QueryRowContext(ctx, `SELECT head_hash FROM books WHERE code = 'k'`).Scan(&h); err != nil {
				return err
			}
			_, err := insertRaw(ctx, tx, rawEntry{book: "j", kind: "transfer", key: "x11b", postings: pair, prevHash: h})
			return err
		}},

		// recorded time is the database clock
		{"a recorded_at in the past", "CL006", "", one(rawEntry{book: "j", kind: "transfer", key: "x12", postings: pair,
			recordedAt: `now() - interval '1 second'`})},
		{"a recorded_at long ago", "CL006", "", one(rawEntry{book: "j", kind: "transfer", key: "x12b", postings: pair,
			recordedAt: `timestamptz '2020-01-01'`})},
		{"a recorded_at in the future", "CL006", "", one(rawEntry{book: "j", kind: "transfer", key: "x13", postings: pair,
			recordedAt: `clock_timestamp() + interval '1 hour'`})},

		// idempotency
		{"a duplicate idempotency key", "23505", "entries_idempotency_key", one(rawEntry{book: "j", kind: "transfer", key: "f2", postings: pair})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			before := journalImage(t, s)
			atCommit := false
			err := rawTx(ctx, s, func(tx *sql.Tx) error {
				err := tc.run(ctx, tx)
				atCommit = err == nil
				return err
			})
			if got := pgCode(err); got != tc.code {
				t.Errorf("got SQLSTATE %q (%v), want %s", got, err, tc.code)
			}
			// Balance is checked when the transaction ends, everything else at once.
			if wantAtCommit := tc.code == "CL002"; err != nil && atCommit != wantAtCommit {
				t.Errorf("refused at commit: %t, want %t", atCommit, wantAtCommit)
			}
			if tc.constraint != "" && pgConstraint(err) != tc.constraint {
				t.Errorf("got constraint %q (%v), want %s", pgConstraint(err), err, tc.constraint)
			}
			if after := journalImage(t, s); after != before {
				t.Errorf("the refused statement changed the journal:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	assertIntact(t, s)
}

func TestSQLScaleRefusedByTheTonnesDomain(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for _, v := range []string{"1.0005", "0.0001", "-2.1234"} {
		var ok bool
		err := s.DB().QueryRowContext(ctx, `SELECT CAST(CAST($1 AS numeric) AS tonnes) IS NOT NULL`, v).Scan(&ok)
		if pgCode(err) != "23514" {
			t.Errorf("%s as tonnes: got %v, want SQLSTATE 23514", v, err)
		}
	}
	for _, v := range []string{"1.000", "1.5", "-0.001", "999999999999999.999"} {
		var ok bool
		if err := s.DB().QueryRowContext(ctx, `SELECT CAST(CAST($1 AS numeric) AS tonnes) IS NOT NULL`, v).Scan(&ok); err != nil {
			t.Errorf("%s as tonnes: %v", v, err)
		}
	}
}

// What the schema must accept: it is no use refusing everything.
func TestSQLValidRawInsertsAccepted(t *testing.T) {
	f := newAttackFixture(t)
	s := f.s
	ctx := context.Background()

	var amendID, transferID string
	err := rawTx(ctx, s, func(tx *sql.Tx) error {
		var err error
		amendID, err = insertRaw(ctx, tx, rawEntry{book: "j", kind: "amend", key: "amend-0"})
		return err
	})
	if err != nil {
		t.Fatalf("an amend with no postings: %v", err)
	}
	err = rawTx(ctx, s, func(tx *sql.Tx) error {
		var err error
		// two entries in one transaction, each balanced
		if transferID, err = insertRaw(ctx, tx, rawEntry{book: "j", kind: "transfer", key: "raw-1",
			postings: [][2]string{{f.src, "-2.5"}, {f.a, "1.25"}, {f.b, "1.25"}}}); err != nil {
			return err
		}
		_, err = insertRaw(ctx, tx, rawEntry{book: "j", kind: "transfer", key: "raw-2",
			postings: [][2]string{{f.a, "-1.25"}, {f.b, "1.25"}}})
		return err
	})
	if err != nil {
		t.Fatalf("two balanced entries in one transaction: %v", err)
	}
	if e, err := s.Entry(ctx, amendID); err != nil || len(e.Postings) != 0 || e.Kind != ledger.KindAmend {
		t.Errorf("Entry(amend): %+v, %v", e, err)
	}
	if e, err := s.Entry(ctx, transferID); err != nil || len(e.Postings) != 3 {
		t.Errorf("Entry(transfer): %+v, %v", e, err)
	}
	// Balances moved through the triggers; the chain, sealed like the store seals, verifies.
	assertIntact(t, s)
	if got := cachedBalance(t, s, f.a); !got.Equal(tn("7")) {
		t.Errorf("balance of %s: got %s, want 7", f.a, got)
	}
	// The store carries on from the raw entries' head.
	postOK(t, s, move("j", "after-raw", f.src, f.a, "1", 5))
	assertIntact(t, s)
}

// The least-privileged role the store writes as cannot change history either, and lacks the
// privilege for most attempts altogether.
func TestWriterRoleLeastPrivilege(t *testing.T) {
	f := newAttackFixture(t)
	s := f.s
	if got := s.WriterRole(); got != "carbonledger_writer" {
		t.Fatalf("WriterRole() = %q, want carbonledger_writer", got)
	}
	for _, tc := range []struct {
		name string
		q    string
	}{
		{"UPDATE entries", `UPDATE entries SET description = 'x'`},
		{"DELETE entries", `DELETE FROM entries`},
		{"UPDATE postings", `UPDATE postings SET amount = amount * 2`},
		{"DELETE postings", `DELETE FROM postings`},
		{"TRUNCATE postings", `TRUNCATE postings`},
		{"UPDATE accounts SET balance", `UPDATE accounts SET balance = balance + 1`},
		{"UPDATE accounts SET floor", `UPDATE accounts SET floor = -1 WHERE floor IS NOT NULL`},
		{"DELETE accounts", `DELETE FROM accounts`},
		{"UPDATE books SET head_seq", `UPDATE books SET head_seq = 0`},
		{"UPDATE books SET head_hash", `UPDATE books SET head_hash = sha256('x')`},
		{"DELETE books", `DELETE FROM books`},
		{"disable the triggers", `SET LOCAL session_replication_role = replica`},
		{"drop a trigger", `DROP TRIGGER entries_append_only ON entries`},
		{"alter a table", `ALTER TABLE entries DISABLE TRIGGER USER`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			before := journalImage(t, s)
			err := rawTx(ctx, s, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `SET LOCAL ROLE carbonledger_writer`); err != nil {
					return fmt.Errorf("set role: %w", err)
				}
				_, err := tx.ExecContext(ctx, tc.q)
				return err
			})
			if c := pgCode(err); c != "42501" && c != "CL001" {
				t.Errorf("got SQLSTATE %q (%v), want 42501 or CL001", c, err)
			}
			if after := journalImage(t, s); after != before {
				t.Errorf("the refused statement changed the journal")
			}
		})
	}
	// The writer can do what the store needs: a raw, correctly sealed entry goes in.
	ctx := context.Background()
	err := rawTx(ctx, s, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SET LOCAL ROLE carbonledger_writer`); err != nil {
			return err
		}
		_, err := insertRaw(ctx, tx, rawEntry{book: "j", kind: "transfer", key: "as-writer",
			postings: [][2]string{{f.src, "-1"}, {f.a, "1"}}})
		return err
	})
	if err != nil {
		t.Fatalf("a valid entry as the writer role: %v", err)
	}
	assertIntact(t, s)
}

// --- D. Retries ---------------------------------------------------------------------------

// raise returns a statement failing with the given SQLSTATE (and constraint name).
func failWith(code, constraint string) string {
	q := `DO $$ BEGIN RAISE EXCEPTION 'injected failure' USING ERRCODE = '` + code + `'`
	if constraint != "" {
		q += `, CONSTRAINT = '` + constraint + `'`
	}
	return q + `; END $$`
}

func TestWriteRetriesTransientFailures(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for i, tc := range []struct {
		name       string
		code       string
		constraint string
		retried    bool
	}{
		{"serialization failure", "40001", "", true},
		{"deadlock", "40P01", "", true},
		{"lost race on an idempotency key", "23505", "entries_idempotency_key", true},
		{"lost race on a contract code", "23505", "contracts_code_key", true},
		{"another unique violation", "23505", "books_code_key", false},
		{"check violation", "23514", "accounts_balance_floor", false},
		{"unbalanced entry", "CL002", "", false},
		{"append-only", "CL001", "", false},
		{"invalid text", "22P02", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			book := fmt.Sprintf("retry-%d", i)
			attempts := 0
			err := s.write(ctx, "flaky write", func(tx *sqlx.Tx) error {
				attempts++
				if attempts == 1 {
					if _, err := tx.ExecContext(ctx, failWith(tc.code, tc.constraint)); err != nil {
						return err
					}
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO books (code) VALUES ($1)`, book)
				return err
			})
			var exists bool
			if err := s.DB().QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM books WHERE code = $1)`, book).Scan(&exists); err != nil {
				t.Fatal(err)
			}
			if tc.retried {
				if err != nil || attempts != 2 || !exists {
					t.Errorf("got err %v after %d attempts (book written: %t), want success on attempt 2", err, attempts, exists)
				}
				return
			}
			if err == nil || attempts != 1 || exists {
				t.Errorf("got err %v after %d attempts (book written: %t), want the failure after 1 attempt", err, attempts, exists)
			}
			if pgCode(err) != tc.code && pgCode(err) != "" {
				t.Errorf("error %v carries SQLSTATE %s, want %s", err, pgCode(err), tc.code)
			}
			if !strings.HasPrefix(err.Error(), "flaky write: ") {
				t.Errorf("error %q does not say which operation failed", err)
			}
		})
	}
	t.Run("a Go error", func(t *testing.T) {
		attempts := 0
		boom := errors.New("boom")
		err := s.write(ctx, "go error", func(tx *sqlx.Tx) error { attempts++; return boom })
		if !errors.Is(err, boom) || attempts != 1 {
			t.Errorf("got %v after %d attempts, want boom after 1", err, attempts)
		}
	})
}

func TestWriteRetriesAreBounded(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for _, max := range []int{1, 3, 5} {
		s.MaxAttempts = max
		attempts := 0
		err := s.write(ctx, "always fails", func(tx *sqlx.Tx) error {
			attempts++
			_, err := tx.ExecContext(ctx, failWith("40001", ""))
			return err
		})
		if attempts != max {
			t.Errorf("MaxAttempts %d: made %d attempts", max, attempts)
		}
		if pgCode(err) != "40001" {
			t.Errorf("MaxAttempts %d: got %v, want the serialization failure", max, err)
		}
	}
	// A cancelled context stops the retries.
	s.MaxAttempts = 100
	cctx, cancel := context.WithCancel(ctx)
	attempts := 0
	err := s.write(cctx, "cancelled", func(tx *sqlx.Tx) error {
		attempts++
		cancel()
		_, err := tx.ExecContext(ctx, failWith("40001", ""))
		return err
	})
	if err == nil || attempts != 1 {
		t.Errorf("a cancelled write: got %v after %d attempts, want an error after 1", err, attempts)
	}
}

// Through the API: a post whose first attempt loses a serialization race is retried and
// written once.
func TestPostRetriedOnce(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src, a, _ := journalBook(t, s, "j")
	// A trigger that fails the first insert into entries with 40001. nextval is not
	// transactional, so the count survives the failed attempt's rollback.
	if _, err := s.DB().ExecContext(ctx, `
		CREATE SEQUENCE flaky_calls;
		GRANT USAGE ON SEQUENCE flaky_calls TO PUBLIC;
		CREATE FUNCTION flaky_once() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		    IF nextval('flaky_calls') = 1 THEN
		        RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001';
		    END IF;
		    RETURN NEW;
		END $$;
		CREATE TRIGGER flaky BEFORE INSERT ON entries FOR EACH ROW EXECUTE FUNCTION flaky_once();`); err != nil {
		t.Fatal(err)
	}
	out, replay, err := s.Post(ctx, move("j", "retried", src, a, "1", 1))
	if err != nil || replay {
		t.Fatalf("post: %v (replay %t)", err, replay)
	}
	var calls int64
	if err := s.DB().QueryRowContext(ctx, `SELECT last_value FROM flaky_calls`).Scan(&calls); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("the entry insert ran %d times, want 2 (one failure, one retry)", calls)
	}
	if n := rowCount(t, s, "entries"); n != 1 {
		t.Errorf("entries: %d rows, want 1", n)
	}
	if out.Seq != 1 {
		t.Errorf("seq %d, want 1", out.Seq)
	}
	assertIntact(t, s)
}

// --- Guarantees that once had holes (closed by migrations/0005_hardening.sql) -------------

// "Cached balances change only through postings": an account inserted with a balance would
// start with tonnes no posting ever moved.
func TestSQLAccountInsertedWithABalanceRefused(t *testing.T) {
	f := newAttackFixture(t)
	s := f.s
	for _, role := range []string{"", "carbonledger_writer"} {
		name := role
		if name == "" {
			name = "owner"
		}
		t.Run("as "+name, func(t *testing.T) {
			ctx := context.Background()
			before := journalImage(t, s)
			err := rawTx(ctx, s, func(tx *sql.Tx) error {
				if role != "" {
					if _, err := tx.ExecContext(ctx, `SET LOCAL ROLE `+role); err != nil {
						return err
					}
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO accounts (code, book_id, kind, floor, balance)
					SELECT 'test:j:minted-'||$1, id, 'asset', 0, 1000000 FROM books WHERE code = 'j'`, name)
				return err
			})
			if err == nil {
				t.Errorf("an account inserted with a balance of 1000000 and no postings was accepted")
			}
			if after := journalImage(t, s); after != before {
				t.Errorf("the journal changed: a cached balance now differs from its postings")
			}
		})
	}
}

// "The chain head moves only by writing an entry": a book inserted with a head already
// advanced (or recorded in the future, which would lock every later entry out) breaks it.
func TestSQLBookInsertedWithAHeadRefused(t *testing.T) {
	s := newStore(t)
	for _, tc := range []struct{ name, q string }{
		{"head_seq", `INSERT INTO books (code, head_seq) VALUES ('forged-seq', 41)`},
		{"head_hash", `INSERT INTO books (code, head_hash) VALUES ('forged-hash', sha256('x'))`},
		{"head_recorded_at in the future", `INSERT INTO books (code, head_recorded_at) VALUES ('forged-time', '2999-01-01')`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			err := rawTx(ctx, s, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `SET LOCAL ROLE carbonledger_writer`); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, tc.q)
				return err
			})
			if err == nil {
				t.Errorf("%s: a book whose chain head no entry wrote was accepted", tc.q)
			}
		})
	}
}

// The balance and chain-head guards let a change through from the journal's own triggers.
// A trigger of the writer's own (on a temporary table) is a trigger too, and shadowing the
// guards' helper functions from pg_temp must not help either. (Both once got through: the
// guards trusted pg_trigger_depth() alone; fixed in 0005_hardening.sql.)
func TestWriterCannotMoveBalancesFromItsOwnTrigger(t *testing.T) {
	f := newAttackFixture(t)
	s := f.s
	forge := []string{
		`CREATE TEMP TABLE knock (x int)`,
		`CREATE FUNCTION pg_temp.forge() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN
		     UPDATE accounts SET balance = balance + 1000 WHERE floor IS NOT NULL;
		     UPDATE books SET head_seq = head_seq + 1000;
		     RETURN NEW;
		 END $$`,
		`CREATE TRIGGER knock AFTER INSERT ON pg_temp.knock FOR EACH ROW EXECUTE FUNCTION pg_temp.forge()`,
		`INSERT INTO pg_temp.knock VALUES (1)`,
	}
	shadow := []string{
		`SET LOCAL search_path = pg_temp, public, pg_catalog`,
		`CREATE FUNCTION pg_temp.acting_as_owner(oid) RETURNS boolean LANGUAGE sql AS 'SELECT true'`,
		`CREATE FUNCTION pg_temp.pg_trigger_depth() RETURNS integer LANGUAGE sql AS 'SELECT 5'`,
		`CREATE FUNCTION pg_temp.written_in_this_transaction(xid) RETURNS boolean LANGUAGE sql AS 'SELECT true'`,
	}
	for _, tc := range []struct {
		name  string
		stmts []string
	}{
		{"a trigger on a temporary table", forge},
		{"with the guards' helpers shadowed", append(slices.Clone(shadow), forge...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			before := journalImage(t, s)
			err := rawTx(ctx, s, func(tx *sql.Tx) error {
				for _, q := range append([]string{`SET LOCAL ROLE carbonledger_writer`}, tc.stmts...) {
					if _, err := tx.ExecContext(ctx, q); err != nil {
						return err
					}
				}
				return nil
			})
			if c := pgCode(err); c != "42501" && c != "CL001" {
				t.Errorf("got %v, want SQLSTATE 42501 or CL001", err)
			}
			if after := journalImage(t, s); after != before {
				t.Errorf("the writer role rewrote cached balances or chain heads without a posting")
				t.Logf("balance of %s now %s (its postings: 7.000)", f.a, cachedBalance(t, s, f.a))
			}
		})
	}
	// Shadowing alone, with an ordinary posting: the old entry stays closed.
	ctx := context.Background()
	before := journalImage(t, s)
	err := rawTx(ctx, s, func(tx *sql.Tx) error {
		for _, q := range append([]string{`SET LOCAL ROLE carbonledger_writer`}, shadow...) {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		if err := insertPosting(ctx, tx, f.first.ID, f.b, "-1"); err != nil {
			return err
		}
		return insertPosting(ctx, tx, f.first.ID, f.ret, "1")
	})
	if pgCode(err) != "CL004" {
		t.Errorf("postings added to an old entry with the helpers shadowed: got %v, want CL004", err)
	}
	if after := journalImage(t, s); after != before {
		t.Errorf("the refused postings changed the journal")
	}
}

// "A posting can only be added in the transaction that wrote its entry": a savepoint is part
// of that transaction, so an entry and its postings may straddle savepoints; an entry whose
// savepoint was rolled back is gone, and takes no postings. (Savepoints were once refused:
// the check compared the entry's xmin, a subtransaction id there, with the top-level id;
// fixed in 0005_hardening.sql.)
func TestSQLPostingsAfterASavepointAccepted(t *testing.T) {
	f := newAttackFixture(t)
	s := f.s
	n := 0
	entry := func(ctx context.Context, tx *sql.Tx, postings bool) (string, error) {
		n++
		return insertRaw(ctx, tx, rawEntry{book: "j", kind: "transfer", key: fmt.Sprintf("in-savepoint-%d", n),
			postings: [][2]string{{f.src, "-1"}, {f.a, "1"}}, sealOnly: !postings})
	}
	run := func(ctx context.Context, tx *sql.Tx, qs ...string) error {
		for _, q := range qs {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	}
	pair := func(ctx context.Context, tx *sql.Tx, id string) error {
		if err := insertPosting(ctx, tx, id, f.src, "-1"); err != nil {
			return err
		}
		return insertPosting(ctx, tx, id, f.a, "1")
	}
	for _, tc := range []struct {
		name string
		ok   bool
		run  func(ctx context.Context, tx *sql.Tx) error
	}{
		{"entry and postings inside a savepoint", true, func(ctx context.Context, tx *sql.Tx) error {
			if err := run(ctx, tx, `SAVEPOINT a`); err != nil {
				return err
			}
			if _, err := entry(ctx, tx, true); err != nil {
				return err
			}
			return run(ctx, tx, `RELEASE SAVEPOINT a`)
		}},
		{"entry in a savepoint, postings after it", true, func(ctx context.Context, tx *sql.Tx) error {
			if err := run(ctx, tx, `SAVEPOINT a`); err != nil {
				return err
			}
			id, err := entry(ctx, tx, false)
			if err != nil {
				return err
			}
			if err := run(ctx, tx, `RELEASE SAVEPOINT a`); err != nil {
				return err
			}
			return pair(ctx, tx, id)
		}},
		{"entry in one savepoint, postings in a nested one", true, func(ctx context.Context, tx *sql.Tx) error {
			if err := run(ctx, tx, `SAVEPOINT a`); err != nil {
				return err
			}
			id, err := entry(ctx, tx, false)
			if err != nil {
				return err
			}
			if err := run(ctx, tx, `SAVEPOINT b`); err != nil {
				return err
			}
			return pair(ctx, tx, id)
		}},
		{"postings to an entry whose savepoint was rolled back", false, func(ctx context.Context, tx *sql.Tx) error {
			if err := run(ctx, tx, `SAVEPOINT a`); err != nil {
				return err
			}
			id, err := entry(ctx, tx, false)
			if err != nil {
				return err
			}
			if err := run(ctx, tx, `ROLLBACK TO SAVEPOINT a`); err != nil {
				return err
			}
			return pair(ctx, tx, id)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			before := journalImage(t, s)
			err := rawTx(ctx, s, func(tx *sql.Tx) error { return tc.run(ctx, tx) })
			if tc.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.ok {
				if err == nil {
					t.Errorf("accepted")
				}
				if after := journalImage(t, s); after != before {
					t.Errorf("the refused transaction changed the journal")
				}
			}
		})
	}
	assertIntact(t, s)
}
