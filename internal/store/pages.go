package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/carbonledger/carbonledger/ledger"
)

// Paged reads for the API's lists: each page is a fixed number of queries whatever the
// ledger's size, and the next page starts after a key the previous one returned (keyset
// paging), so concurrent writes neither repeat nor skip a row.

// ContractsPage returns up to limit contracts whose code sorts after after, by code; only,
// when not nil, keeps those codes.
func (s *Store) ContractsPage(ctx context.Context, after string, limit int, only []string) ([]ledger.ContractState, error) {
	var out []ledger.ContractState
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		var raws [][]byte
		if err := tx.SelectContext(ctx, &raws, `SELECT contract_state(book_id) FROM contracts
			WHERE code > $1 AND ($3::text[] IS NULL OR code = ANY($3)) ORDER BY code LIMIT $2`,
			after, limit, nullArray(only)); err != nil {
			return err
		}
		for _, raw := range raws {
			st, err := decodeContractState(raw)
			if err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// EntriesPage returns up to limit entries of a book after its entry afterSeq, in chain
// order, with their postings. A book that does not exist is ErrNotFound.
func (s *Store) EntriesPage(ctx context.Context, bookCode string, afterSeq int64, limit int) ([]ledger.Entry, error) {
	var out []ledger.Entry
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		var exists bool
		if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM books WHERE code = $1)`, bookCode); err != nil {
			return err
		}
		if !exists {
			return unknownContract(bookCode)
		}
		var rows []entryRow
		if err := tx.SelectContext(ctx, &rows, `SELECT `+entryCols+` FROM entries e JOIN books b ON b.id = e.book_id
			WHERE b.code = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3`, bookCode, afterSeq, limit); err != nil {
			return err
		}
		var err error
		out, err = withPostings(ctx, tx, rows)
		return err
	})
	return out, err
}

// FeedPosition is how far a reader of the whole journal has read one book: its entries up
// to Seq. A book's entries only ever extend its chain, so entries after every position a
// reader holds are exactly the ones it has not seen, however writers interleave.
type FeedPosition struct {
	Book int64 // the book's internal id
	Seq  int64
}

// FeedEntry is an entry of the whole journal's feed, with its book's internal id (which a
// reader's position names).
type FeedEntry struct {
	ledger.Entry
	BookID int64
}

// Feed returns up to limit entries of the whole journal that lie after the positions (a
// book with no position from its first entry), books in id order and each book's entries in
// chain order; only, when not nil, keeps those books. The books with something new are
// found from their heads, so a page costs the same whatever has been read before it.
func (s *Store) Feed(ctx context.Context, pos []FeedPosition, limit int, only []string) ([]FeedEntry, error) {
	books, seqs := make([]int64, len(pos)), make([]int64, len(pos))
	for i, p := range pos {
		books[i], seqs[i] = p.Book, p.Seq
	}
	var out []FeedEntry
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = feedEntries(ctx, tx, `
			WITH c AS (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS c(book, seq))
			SELECT `+entryCols+`, e.book_id
			  FROM books b
			  LEFT JOIN c ON c.book = b.id
			 CROSS JOIN LATERAL (SELECT * FROM entries e WHERE e.book_id = b.id AND e.seq > coalesce(c.seq, 0)
			                      ORDER BY e.seq LIMIT $3) e
			 WHERE b.head_seq > coalesce(c.seq, 0) AND ($4::text[] IS NULL OR b.code = ANY($4))
			 ORDER BY b.id, e.seq
			 LIMIT $3`, pq.Array(books), pq.Array(seqs), limit, nullArray(only))
		return err
	})
	return out, err
}

// feedEntries runs a query of entry columns and book_id and reads the entries' postings.
func feedEntries(ctx context.Context, tx *sqlx.Tx, q string, args ...any) ([]FeedEntry, error) {
	var rows []struct {
		entryRow
		BookID int64 `db:"book_id"`
	}
	if err := tx.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, err
	}
	plain := make([]entryRow, len(rows))
	for i, r := range rows {
		plain[i] = r.entryRow
	}
	es, err := withPostings(ctx, tx, plain)
	if err != nil {
		return nil, err
	}
	out := make([]FeedEntry, len(es))
	for i, e := range es {
		out[i] = FeedEntry{Entry: e, BookID: rows[i].BookID}
	}
	return out, nil
}

// withPostings converts entry rows and reads all their postings in one query.
func withPostings(ctx context.Context, tx *sqlx.Tx, rows []entryRow) ([]ledger.Entry, error) {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	var ps []struct {
		Entry   string        `db:"entry_id"`
		Account string        `db:"code"`
		Amount  ledger.Tonnes `db:"amount"`
	}
	if err := tx.SelectContext(ctx, &ps, `
		SELECT p.entry_id, a.code, p.amount
		  FROM postings p JOIN accounts a ON a.id = p.account_id
		 WHERE p.entry_id = ANY($1::uuid[]) ORDER BY p.entry_id, a.code`, pq.Array(ids)); err != nil {
		return nil, err
	}
	byEntry := make(map[string][]ledger.Posting, len(rows))
	for _, p := range ps {
		byEntry[p.Entry] = append(byEntry[p.Entry], ledger.Posting{Account: p.Account, Amount: p.Amount})
	}
	out := make([]ledger.Entry, 0, len(rows))
	for _, r := range rows {
		e, err := r.entry()
		if err != nil {
			return nil, err
		}
		e.Postings = byEntry[e.ID]
		if e.Postings == nil {
			e.Postings = []ledger.Posting{}
		}
		out = append(out, e)
	}
	return out, nil
}

// nullArray is a text[] parameter, NULL for a nil slice.
func nullArray(v []string) any {
	if v == nil {
		return nil
	}
	return pq.Array(v)
}

// EntryBook returns the book (the contract's code) of the entry a revert names: an id, or
// key:KEY. An entry that does not exist is ErrNotFound.
func (s *Store) EntryBook(ctx context.Context, ref string) (string, error) {
	r := ledger.RevertRequest{Entry: ref}
	book, _, err := revertTarget(ctx, s.db, &r)
	return book, err
}

// EntriesByKeys returns the entries recorded under the idempotency keys, with their
// postings, by key; a key without an entry is left out.
func (s *Store) EntriesByKeys(ctx context.Context, keys []string) (map[string]ledger.Entry, error) {
	out := make(map[string]ledger.Entry, len(keys))
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		var rows []entryRow
		if err := tx.SelectContext(ctx, &rows, `SELECT `+entryCols+` FROM entries e JOIN books b ON b.id = e.book_id
			WHERE e.idempotency_key = ANY($1)`, pq.Array(keys)); err != nil {
			return err
		}
		es, err := withPostings(ctx, tx, rows)
		for _, e := range es {
			out[e.Key] = e
		}
		return err
	})
	return out, err
}

// EntryFilter narrows the journal: to some books (contract codes; nil for all), to entries of
// some kinds or correcting them (nil for all), effective from From to To (zero for no bound).
type EntryFilter struct {
	Books    []string
	Kinds    []string
	From, To time.Time
}

// FilteredEntries returns up to limit entries that pass f, books in id order and each book's
// in chain order, after the position (book id, seq) given.
func (s *Store) FilteredEntries(ctx context.Context, f EntryFilter, after FeedPosition, limit int) ([]FeedEntry, error) {
	var from, to any
	if !f.From.IsZero() {
		from = f.From
	}
	if !f.To.IsZero() {
		to = f.To
	}
	var out []FeedEntry
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = feedEntries(ctx, tx, `SELECT `+entryCols+`, e.book_id
			  FROM entries e JOIN books b ON b.id = e.book_id
			 WHERE (e.book_id, e.seq) > ($1, $2)
			   AND ($3::text[] IS NULL OR b.code = ANY($3))
			   AND ($4::text[] IS NULL OR e.kind = ANY($4) OR e.reverts_kind = ANY($4))
			   AND ($5::date IS NULL OR e.effective_on >= $5) AND ($6::date IS NULL OR e.effective_on <= $6)
			 ORDER BY e.book_id, e.seq LIMIT $7`,
			after.Book, after.Seq, nullArray(f.Books), nullArray(f.Kinds), from, to, limit)
		return err
	})
	return out, err
}
