package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/carbonledger/carbonledger/ledger"
)

// SealedHistory is a contract with its complete history, every entry already sealed into the
// contract's chain (the sign entry first).
type SealedHistory struct {
	Contract ledger.Contract
	Entries  []ledger.Entry
}

// LoadSealed writes contracts and their sealed histories in bulk, with COPY and with the
// triggers off (session_replication_role = replica, which needs a superuser), then derives
// the cached balances, chain heads and rollups from what it loaded. It exists to seed the
// benchmark's ten million postings in minutes instead of hours; it checks no rule, so what it
// loads must be audited (`carbonledger audit`) before anyone trusts it, and the benchmark does
// exactly that. next returns nil when there is nothing more.
func (s *Store) LoadSealed(ctx context.Context, next func() (*SealedHistory, error), progress func(contracts, entries int)) error {
	meta, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer meta.Rollback()
	ent, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer ent.Rollback()
	pst, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer pst.Rollback()
	for _, tx := range []*sqlx.Tx{meta, ent, pst} {
		if _, err := tx.ExecContext(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return fmt.Errorf("bulk load needs a superuser (to turn the triggers off while loading): %w", err)
		}
	}
	entCopy, err := ent.PrepareContext(ctx, pq.CopyIn("entries", "id", "book_id", "seq", "kind", "effective_on", "recorded_at",
		"idempotency_key", "request_sha256", "description", "reverts", "reverts_kind", "vintage", "metadata",
		"hash_version", "prev_hash", "hash"))
	if err != nil {
		return err
	}
	pstCopy, err := pst.PrepareContext(ctx, pq.CopyIn("postings", "entry_id", "account_id", "amount"))
	if err != nil {
		return err
	}
	nc, ne := 0, 0
	for {
		h, err := next()
		if err != nil {
			return err
		}
		if h == nil {
			break
		}
		c := h.Contract
		terms, err := json.Marshal(c)
		if err != nil {
			return err
		}
		contractID, err := insertContract(ctx, meta, c, terms)
		if err != nil {
			return fmt.Errorf("bulk load %s: %w", c.Code, err)
		}
		var ids []struct {
			ID     int64  `db:"id"`
			Code   string `db:"code"`
			BookID int64  `db:"book_id"`
		}
		if err := meta.SelectContext(ctx, &ids, `SELECT a.id, a.code, a.book_id FROM accounts a JOIN books b ON b.id = a.book_id WHERE b.code = $1`, c.Code); err != nil {
			return err
		}
		acct := map[string]int64{}
		var bookID int64
		for _, x := range ids {
			acct[x.Code], bookID = x.ID, x.BookID
		}
		kinds := map[string]ledger.Kind{}
		for _, e := range h.Entries {
			kinds[e.ID] = e.Kind
			md, _ := json.Marshal(nonNil(e.Metadata))
			var reverts, revertsKind, vintage any
			if e.Reverts != "" {
				reverts, revertsKind = e.Reverts, string(kinds[e.Reverts])
			}
			if e.Vintage != 0 {
				vintage = e.Vintage
			}
			if _, err := entCopy.ExecContext(ctx, e.ID, bookID, e.Seq, string(e.Kind), e.EffectiveOn, e.RecordedAt, e.Key,
				e.Request, e.Description, reverts, revertsKind, vintage, string(md), e.HashVersion, e.PrevHash, e.Hash); err != nil {
				return fmt.Errorf("bulk load %s entry %d: %w", c.Code, e.Seq, err)
			}
			for _, p := range e.Postings {
				id, ok := acct[p.Account]
				if !ok {
					return fmt.Errorf("bulk load %s: unknown account %s", c.Code, p.Account)
				}
				if _, err := pstCopy.ExecContext(ctx, e.ID, id, p.Amount.String()); err != nil {
					return err
				}
			}
		}
		if len(h.Entries) > 0 && h.Entries[0].Kind == ledger.KindSign {
			if err := insertSchedule(ctx, meta, contractID, 1, c.ScheduleGiven, h.Entries[0].ID, c.Schedule); err != nil {
				return err
			}
		}
		nc++
		ne += len(h.Entries)
		if progress != nil {
			progress(nc, ne)
		}
	}
	if _, err := entCopy.ExecContext(ctx); err != nil {
		return err
	}
	if _, err := pstCopy.ExecContext(ctx); err != nil {
		return err
	}
	entCopy.Close()
	pstCopy.Close()
	for _, tx := range []*sqlx.Tx{meta, ent, pst} {
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return s.deriveAfterLoad(ctx)
}

// deriveAfterLoad sets what the triggers would have maintained: balances, chain heads and
// the rollups, all from the journal itself.
func (s *Store) deriveAfterLoad(ctx context.Context) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`SET LOCAL session_replication_role = replica`,
		`UPDATE accounts a SET balance = x.s FROM (SELECT account_id, sum(amount) AS s FROM postings GROUP BY 1) x
		  WHERE a.id = x.account_id AND a.balance <> x.s`,
		`UPDATE books b SET head_seq = x.seq, head_hash = x.hash, head_recorded_at = x.recorded_at
		   FROM (SELECT DISTINCT ON (book_id) book_id, seq, hash, recorded_at FROM entries ORDER BY book_id, seq DESC) x
		  WHERE b.id = x.book_id AND b.head_seq <> x.seq`,
		`DELETE FROM flows`,
		`INSERT INTO flows SELECT * FROM flows_expected`,
		`DELETE FROM flows_monthly`,
		`INSERT INTO flows_monthly SELECT * FROM flows_monthly_expected`,
		`DELETE FROM book_months`,
		`INSERT INTO book_months SELECT * FROM book_months_expected`,
		`DELETE FROM book_years`,
		`INSERT INTO book_years SELECT * FROM book_years_expected`,
		`DELETE FROM book_months_effective`,
		`INSERT INTO book_months_effective SELECT * FROM book_months_effective_derived`,
		`DELETE FROM vintage_months`,
		`INSERT INTO vintage_months SELECT * FROM vintage_months_derived`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("bulk load: derive: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `ANALYZE`)
	return err
}
