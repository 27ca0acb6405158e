package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/oid"

	"github.com/carbonledger/carbonledger/ledger"
)

// chunk is how many entries a streaming read fetches at a time: memory stays bounded by the
// chunk (and by the accounts of one book), never by the size of the journal. (chunk and
// wholeBook are variables so that a test can make small books take the chunked path.)
var chunk int64 = 5000

// BookInfo is what a journal walk knows of a book before its entries.
type BookInfo struct {
	ID       int64
	Code     string
	HeadSeq  int64
	HeadHash []byte
	// HeadRecordedAt is the head entry's recorded time as the book caches it (zero: empty).
	HeadRecordedAt time.Time
	Accounts       []AccountInfo
	codes          map[int64]string // the accounts' codes by id (set by booksTx)
}

// AccountInfo is an account as stored, with its cached balance.
type AccountInfo struct {
	ID      int64          `db:"id"`
	Code    string         `db:"code"`
	Kind    string         `db:"kind"`
	Floor   sql.NullString `db:"floor"`
	Balance ledger.Tonnes  `db:"balance"`
}

// JournalVisitor receives a journal walk: each book, then its entries in chain order, then
// the end of the book. Entries may share their Metadata maps: a visitor only reads them.
type JournalVisitor interface {
	Book(b BookInfo) error
	Entry(e ledger.Entry) error
	EndBook(b BookInfo) error
}

// walkJournal streams every book's entries, with their postings, in chain order, inside tx
// (one snapshot). It walks from the first entry actually stored to the last, even past a
// book head that was tampered with.
func walkJournal(ctx context.Context, tx *bookQueries, books []BookInfo, v JournalVisitor) error {
	var sc bookScratch
	for _, b := range books {
		if err := v.Book(b); err != nil {
			return err
		}
		// A book whose stored seqs span fewer than wholeBook is read whole; a larger one (or
		// one whose seqs a superuser moved far apart: a constraint keeps them at 1 and up,
		// but can be dropped) in chunks, each starting after the last seq read.
		var span struct {
			First int64 `db:"first"`
			Last  int64 `db:"last"`
		}
		if err := tx.GetContext(ctx, &span, `SELECT coalesce(min(seq), 1) AS first, coalesce(max(seq), 0) AS last
			FROM entries WHERE book_id = $1`, b.ID); err != nil {
			return err
		}
		if n := span.Last - span.First; n >= -1 && n < wholeBook { // (-1: empty; below: seqs so far apart the difference overflowed)
			if err := walkWholeBook(ctx, tx, b, v, &sc); err != nil {
				return err
			}
		} else {
			for after, more := int64(math.MinInt64), true; more; {
				var err error
				if after, more, err = walkChunk(ctx, tx.tx, b, after, v); err != nil {
					return err
				}
			}
		}
		if err := v.EndBook(b); err != nil {
			return err
		}
	}
	return nil
}

// booksTx lists the books (all, or those named) with their accounts.
func booksTx(ctx context.Context, tx *sqlx.Tx, codes []string) ([]BookInfo, error) {
	var bs []book
	if err := tx.SelectContext(ctx, &bs, `SELECT id, code, head_seq, head_hash, head_recorded_at FROM books
		WHERE coalesce(cardinality($1::text[]), 0) = 0 OR code = ANY($1) ORDER BY code`, pq.Array(codes)); err != nil {
		return nil, err
	}
	var accts []struct {
		AccountInfo
		BookID int64 `db:"book_id"`
	}
	if err := tx.SelectContext(ctx, &accts, `SELECT id, code, kind, floor::text AS floor, balance, book_id FROM accounts ORDER BY code`); err != nil {
		return nil, err
	}
	byBook := map[int64][]AccountInfo{}
	for _, a := range accts {
		byBook[a.BookID] = append(byBook[a.BookID], a.AccountInfo)
	}
	out := make([]BookInfo, len(bs))
	for i, b := range bs {
		out[i] = BookInfo{ID: b.ID, Code: b.Code, HeadSeq: b.HeadSeq, HeadHash: b.HeadHash, HeadRecordedAt: b.HeadRecordedAt.Time.UTC(), Accounts: byBook[b.ID],
			codes: make(map[int64]string, len(byBook[b.ID]))}
		for _, a := range byBook[b.ID] {
			out[i].codes[a.ID] = a.Code
		}
	}
	if len(codes) > 0 && len(out) != len(codes) {
		return nil, ledger.Invalid("book", fmt.Sprint(codes), "names a book that does not exist")
	}
	return out, nil
}

// WalkJournal streams the journal (all books, or the named ones) to v in one snapshot.
func (s *Store) WalkJournal(ctx context.Context, books []string, v JournalVisitor) error {
	return s.read(ctx, func(tx *sqlx.Tx) error {
		bs, err := booksTx(ctx, tx, books)
		if err != nil {
			return err
		}
		return walkJournal(ctx, prepared(tx), bs, v)
	})
}

// wholeBook is the largest book (in entries) read in one go: its postings come from the
// account index in one scan. Larger books are read in chunks of entries.
var wholeBook int64 = 50_000

// bookScratch is what walkWholeBook reuses from one book to the next (a map and a slice of
// a book's postings, rebuilt thousands of times, were a tenth of the audit's allocations).
type bookScratch struct {
	postings []linkedPosting
	first    map[uint64]int32 // the last posting read of the entries whose uuid ends in these 8 bytes
	parsed   map[string]map[string]string
}

// metadata parses an entry's metadata, or returns the map parsed for the same text before:
// most entries carry one of a few objects ({"contract_year": "1"}), and parsing 4.9 million
// of them into maps was a tenth of the audit's Go time. The maps are shared, so the
// visitors only read them. At most 256 are kept.
func (sc *bookScratch) metadata(text []byte) (map[string]string, error) {
	if m, ok := sc.parsed[string(text)]; ok {
		return m, nil
	}
	m, err := parseMetadata(text)
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		m = nil
	}
	if sc.parsed == nil || len(sc.parsed) >= 256 {
		sc.parsed = map[string]map[string]string{}
	}
	sc.parsed[string(text)] = m
	return m, nil
}

// linkedPosting is a posting with its entry's uuid and the index of the posting read before
// it of an entry whose uuid ends in the same 8 bytes (or -1).
type linkedPosting struct {
	ledger.Posting
	entry [16]byte
	next  int32
}

// uuidTail keys an entry by the last 8 bytes of its uuid: random in the uuids the ledger
// makes (its first bytes are a time), and a map of uint64 is twice as fast as one of
// [16]byte. Entries that share a tail share a chain, and the full uuid tells them apart.
func uuidTail(id []byte) uint64 { return binary.LittleEndian.Uint64(id[8:16]) }

func walkWholeBook(ctx context.Context, tx *bookQueries, b BookInfo, v JournalVisitor, sc *bookScratch) error {
	ids := make([]int64, 0, len(b.codes))
	for id := range b.codes {
		ids = append(ids, id)
	}
	if sc.first == nil {
		sc.first = map[uint64]int32{}
	}
	clear(sc.first)
	ps, first := sc.postings[:0], sc.first
	// The postings from the account index in one scan, packed (see packedEach), linked per
	// entry (see uuidTail).
	vals := make([][]byte, len(postingCols))
	err := packedEach(ctx, tx, `SELECT record_send(ROW(entry_id, account_id, amount::text)) FROM postings WHERE account_id = ANY($1)`,
		func(pr *packed) error {
			pr.row(postingCols, vals)
			if pr.err != nil {
				return pr.err
			}
			var amount ledger.Tonnes
			if err := amount.ScanText(vals[2]); err != nil {
				return fmt.Errorf("posting of entry %s: amount: %w", uuidString(vals[0]), err)
			}
			key := uuidTail(vals[0])
			next, ok := first[key]
			if !ok {
				next = -1
			}
			first[key] = int32(len(ps))
			ps = append(ps, linkedPosting{ledger.Posting{Account: b.codes[int64At(vals[1])], Amount: amount}, [16]byte(vals[0]), next})
			return nil
		}, pq.Array(ids))
	sc.postings = ps
	if err != nil {
		return fmt.Errorf("postings of book %s: %w", b.Code, err)
	}
	kind := kinds{}
	// The entries in chain order, packed. What an entry keeps of the packed bytes (its
	// hashes and request digest) is copied out, one allocation per entry.
	vals = make([][]byte, len(entryRecord))
	err = packedEach(ctx, tx, `SELECT record_send(ROW(id, seq, kind, effective_on, recorded_at,
		       idempotency_key, request_sha256, description, reverts, reverts_kind, vintage, metadata::text,
		       hash_version, prev_hash, hash))
		  FROM entries WHERE book_id = $1 ORDER BY seq`, func(er *packed) error {
		er.row(entryRecord, vals)
		if er.err != nil {
			return er.err
		}
		kept := make([]byte, 0, len(vals[6])+len(vals[13])+len(vals[14]))
		keep := func(b []byte) []byte {
			at := len(kept)
			kept = append(kept, b...)
			return kept[at:len(kept):len(kept)]
		}
		e := ledger.Entry{ID: uuidString(vals[0]), Book: b.Code, Seq: int64At(vals[1]), Kind: kind.of(vals[2]),
			EffectiveOn: dateAt(vals[3]), RecordedAt: timestampAt(vals[4]), Key: string(vals[5]), Request: keep(vals[6]),
			Description: string(vals[7]), HashVersion: int(int16At(vals[12])), PrevHash: keep(vals[13]), Hash: keep(vals[14])}
		if vals[8] != nil {
			e.Reverts = uuidString(vals[8])
		}
		if vals[9] != nil {
			e.RevertsKind = kind.of(vals[9])
		}
		if vals[10] != nil {
			e.Vintage = int(int16At(vals[10]))
		}
		if len(vals[11]) > 0 {
			var err error
			if e.Metadata, err = sc.metadata(vals[11]); err != nil {
				return fmt.Errorf("entry %s: metadata: %w", e.ID, err)
			}
		}
		if at, ok := first[uuidTail(vals[0])]; ok {
			id, count := [16]byte(vals[0]), 0
			for i := at; i >= 0; i = ps[i].next {
				if ps[i].entry == id {
					count++
				}
			}
			e.Postings = make([]ledger.Posting, 0, count)
			for i := at; i >= 0; i = ps[i].next {
				if ps[i].entry == id {
					e.Postings = append(e.Postings, ps[i].Posting)
				}
			}
			slices.SortFunc(e.Postings, func(x, y ledger.Posting) int { return strings.Compare(x.Account, y.Account) })
		}
		return v.Entry(e)
	}, b.ID)
	if err != nil {
		return fmt.Errorf("entries of book %s: %w", b.Code, err)
	}
	// A posting of another book's entry to one of these accounts (an account id tampered
	// with) is not visited here: its own entry then fails to balance and to verify, and this
	// book's account sums no longer match their cached balances.
	return nil
}

// The columns walkWholeBook packs: a posting's entry, account and amount (as text, exact
// whatever its scale); and every column of an entry, its metadata as text.
var (
	postingCols = []column{col(oid.T_uuid), col(oid.T_int8), col(oid.T_text)}
	entryRecord = []column{col(oid.T_uuid), col(oid.T_int8), col(oid.T_text), col(oid.T_date), col(oid.T_timestamptz),
		col(oid.T_text), col(oid.T_bytea), col(oid.T_text), nullableCol(oid.T_uuid), nullableCol(oid.T_text),
		nullableCol(oid.T_int2), col(oid.T_text), col(oid.T_int2), col(oid.T_bytea), col(oid.T_bytea)}
)

// walkChunk visits the next chunk of the book's entries, those after seq after, and returns
// the last seq it visited and whether there may be more.
func walkChunk(ctx context.Context, tx *sqlx.Tx, b BookInfo, after int64, v JournalVisitor) (last int64, more bool, err error) {
	// Each entry with its postings as two arrays, from a per-entry index lookup: a join here
	// lets the planner scan all postings once per chunk.
	var rows []struct {
		entryRow
		AccountIDs pq.Int64Array  `db:"account_ids"`
		Amounts    pq.StringArray `db:"amounts"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT `+entryCols+`, x.account_ids, x.amounts
		  FROM entries e JOIN books b ON b.id = e.book_id
		  CROSS JOIN LATERAL (SELECT coalesce(array_agg(p.account_id ORDER BY p.account_id), '{}') AS account_ids,
		                             coalesce(array_agg(p.amount::text ORDER BY p.account_id), '{}') AS amounts
		                        FROM postings p WHERE p.entry_id = e.id) x
		 WHERE e.book_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3`, b.ID, after, chunk); err != nil {
		return 0, false, err
	}
	for _, r := range rows {
		e, err := r.entry()
		if err != nil {
			return 0, false, err
		}
		e.Postings = make([]ledger.Posting, len(r.AccountIDs))
		for i, id := range r.AccountIDs {
			var amount ledger.Tonnes
			if err := amount.Scan(r.Amounts[i]); err != nil {
				return 0, false, fmt.Errorf("entry %s: posting amount %q: %w", e.ID, r.Amounts[i], err)
			}
			code, ok := b.codes[id]
			if !ok { // an account of another book: name it by id so the audit reports it
				code = fmt.Sprintf("account#%d", id)
			}
			e.Postings[i] = ledger.Posting{Account: code, Amount: amount}
		}
		slices.SortFunc(e.Postings, func(x, y ledger.Posting) int { return strings.Compare(x.Account, y.Account) })
		if err := v.Entry(e); err != nil {
			return 0, false, err
		}
		last = e.Seq
	}
	return last, int64(len(rows)) == chunk, nil
}
