package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/shopspring/decimal"

	"github.com/carbonledger/carbonledger/ledger"
)

// The reads below give what a contract's journal entries do not carry themselves: its terms as
// signed, the schedules its amendments put in force, and the entries its corrections revert
// by their idempotency keys. The operations export (export --format csv) writes them so that
// an import can replay the contract into another ledger. Contracts, schedule versions and
// entries are append-only, so these reads may run beside a journal walk's snapshot: what that
// snapshot holds of them is still there, unchanged.

// ContractTerms returns the terms of contract code as signed: contracts.terms, the contract
// file JSON whose sha256 the sign entry carries, as PostgreSQL writes the jsonb back. A code
// that names no contract (a plain journal book, or nothing) is ErrNotFound.
func (s *Store) ContractTerms(ctx context.Context, code string) (json.RawMessage, error) {
	var terms []byte
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &terms, `SELECT terms::text FROM contracts WHERE code = $1`, code)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, unknownContract(code)
	}
	if err != nil {
		return nil, err
	}
	return json.RawMessage(terms), nil
}

// ScheduleVersion is one version of a contract's delivery schedule, as schedule_lines holds
// it.
type ScheduleVersion struct {
	Version int
	// EntryID is the entry that put the version in force: the sign entry for version 1, an
	// amendment after.
	EntryID string
	// Explicit is whether the lines were given (by the contract file or the amendment); false
	// for the even split of the contracted tonnes over the contract years.
	Explicit bool
	Lines    []ledger.ScheduleLine // by contract year
}

// ScheduleVersions returns every version of contract code's schedule, oldest first. A code
// that names no contract is ErrNotFound.
func (s *Store) ScheduleVersions(ctx context.Context, code string) ([]ScheduleVersion, error) {
	var out []ScheduleVersion
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		var exists bool
		if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM contracts WHERE code = $1)`, code); err != nil {
			return err
		}
		if !exists {
			return unknownContract(code)
		}
		var lines []scheduleRow
		if err := tx.SelectContext(ctx, &lines, `
			SELECT s.version, s.entry_id::text AS entry_id, s.explicit, s.year, s.tonnes, s.vintage,
			       s.price_per_tonne::text AS price_per_tonne, s.due_on
			  FROM schedule_lines s JOIN contracts c ON c.id = s.contract_id
			 WHERE c.code = $1
			 ORDER BY s.version, s.year`, code); err != nil {
			return err
		}
		for _, l := range lines {
			sl, err := l.line()
			if err != nil {
				return fmt.Errorf("contract %s: %w", code, err)
			}
			if n := len(out); n == 0 || out[n-1].Version != l.Version {
				out = append(out, ScheduleVersion{Version: l.Version, EntryID: l.EntryID, Explicit: l.Explicit})
			}
			v := &out[len(out)-1]
			v.Lines = append(v.Lines, sl)
		}
		return nil
	})
	return out, err
}

// RevertedKeys returns, for the corrections in book, the idempotency key of each entry they
// revert, keyed by that entry's id (an entry is reverted at most once). An import names the
// entry a correction reverts by its key (key:KEY), since ids differ between ledgers.
func (s *Store) RevertedKeys(ctx context.Context, book string) (map[string]string, error) {
	var rows []struct {
		ID  string `db:"id"`
		Key string `db:"idempotency_key"`
	}
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &rows, `
			SELECT o.id::text AS id, o.idempotency_key
			  FROM entries r JOIN books b ON b.id = r.book_id JOIN entries o ON o.id = r.reverts
			 WHERE b.code = $1 AND r.reverts IS NOT NULL`, book)
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.ID] = r.Key
	}
	return out, nil
}

// scheduleRow is a schedule_lines row as the store reads it.
type scheduleRow struct {
	Version  int            `db:"version"`
	EntryID  string         `db:"entry_id"`
	Explicit bool           `db:"explicit"`
	Year     int            `db:"year"`
	Tonnes   ledger.Tonnes  `db:"tonnes"`
	Vintage  sql.NullInt64  `db:"vintage"`
	Price    sql.NullString `db:"price_per_tonne"`
	DueOn    sql.NullTime   `db:"due_on"`
}

// line is the row as the domain's schedule line.
func (l scheduleRow) line() (ledger.ScheduleLine, error) {
	sl := ledger.ScheduleLine{Year: l.Year, Tonnes: l.Tonnes, Vintage: int(l.Vintage.Int64)}
	if l.Price.Valid {
		p, err := decimal.NewFromString(l.Price.String)
		if err != nil {
			return sl, fmt.Errorf("schedule version %d year %d: price %q: %w", l.Version, l.Year, l.Price.String, err)
		}
		sl.PricePerTonne = &p
	}
	if l.DueOn.Valid {
		sl.DueOn = l.DueOn.Time.UTC()
	}
	return sl, nil
}
