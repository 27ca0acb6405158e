package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/carbonledger/carbonledger/ledger"
)

// chunk is how many entries a streaming read fetches at a time: memory stays bounded by the
// chunk (and by the accounts of one book), never by the size of the journal.
const chunk = 5000

// BookInfo is what a journal walk knows of a book before its entries.
type BookInfo struct {
	ID       int64
	Code     string
	HeadSeq  int64
	HeadHash []byte
	Accounts []AccountInfo
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
// the end of the book.
type JournalVisitor interface {
	Book(b BookInfo) error
	Entry(e ledger.Entry) error
	EndBook(b BookInfo) error
}

// walkJournal streams every book's entries, with their postings, in chain order, inside tx
// (one snapshot). It walks to the last entry actually stored, even past a book head that
// was tampered with.
func walkJournal(ctx context.Context, tx *sqlx.Tx, books []BookInfo, v JournalVisitor) error {
	for _, b := range books {
		if err := v.Book(b); err != nil {
			return err
		}
		var last int64
		if err := tx.GetContext(ctx, &last, `SELECT coalesce(max(seq), 0) FROM entries WHERE book_id = $1`, b.ID); err != nil {
			return err
		}
		for lo := int64(1); lo <= last; lo += chunk {
			hi := lo + chunk - 1
			var rows []entryRow
			if err := tx.SelectContext(ctx, &rows, `SELECT `+entryCols+` FROM entries e JOIN books b ON b.id = e.book_id
				WHERE e.book_id = $1 AND e.seq BETWEEN $2 AND $3 ORDER BY e.seq`, b.ID, lo, hi); err != nil {
				return err
			}
			var ps []struct {
				EntryID string        `db:"entry_id"`
				Code    string        `db:"code"`
				Amount  ledger.Tonnes `db:"amount"`
			}
			if err := tx.SelectContext(ctx, &ps, `
				SELECT p.entry_id, a.code, p.amount
				  FROM entries e JOIN postings p ON p.entry_id = e.id JOIN accounts a ON a.id = p.account_id
				 WHERE e.book_id = $1 AND e.seq BETWEEN $2 AND $3
				 ORDER BY p.entry_id, a.code`, b.ID, lo, hi); err != nil {
				return err
			}
			byEntry := make(map[string][]ledger.Posting, len(rows))
			for _, p := range ps {
				byEntry[p.EntryID] = append(byEntry[p.EntryID], ledger.Posting{Account: p.Code, Amount: p.Amount})
			}
			for _, r := range rows {
				e, err := r.entry()
				if err != nil {
					return err
				}
				e.Postings = byEntry[e.ID]
				if err := v.Entry(e); err != nil {
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
	if err := tx.SelectContext(ctx, &bs, `SELECT id, code, head_seq, head_hash FROM books
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
		out[i] = BookInfo{ID: b.ID, Code: b.Code, HeadSeq: b.HeadSeq, HeadHash: b.HeadHash, Accounts: byBook[b.ID]}
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
		return walkJournal(ctx, tx, bs, v)
	})
}
