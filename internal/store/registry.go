package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// LedgerSerial is a serial block as reconciliation with a registry export needs it: its
// current state, its contract, and the entry that put it in that state with its date and, for
// a retirement (or a delivery retired on delivery), the beneficiary, reason and claim in its
// metadata ("" where the entry has none).
type LedgerSerial struct {
	Contract    string    `db:"code" json:"contract"`
	Registry    string    `db:"registry" json:"registry"`
	Prefix      string    `db:"prefix" json:"prefix"`
	First       int64     `db:"first" json:"first"`
	Last        int64     `db:"last" json:"last"`
	State       string    `db:"state" json:"state"`
	Entry       string    `db:"entry_id" json:"entry"`
	Date        time.Time `db:"effective_on" json:"date"`
	Beneficiary string    `db:"beneficiary" json:"beneficiary,omitempty"`
	Reason      string    `db:"reason" json:"reason,omitempty"`
	Claim       string    `db:"claim" json:"claim,omitempty"`
}

const qLedgerSerials = `
SELECT c.code, s.registry, s.prefix, lower(s.serials) AS first, upper(s.serials) - 1 AS last, s.state,
       s.entry_id, e.effective_on, coalesce(e.metadata->>'beneficiary', '') AS beneficiary,
       coalesce(e.metadata->>'reason', '') AS reason, coalesce(e.metadata->>'claim', '') AS claim
  FROM serial_blocks s
  JOIN contracts c ON c.id = s.contract_id
  JOIN entries e ON e.id = s.entry_id
 WHERE s.registry = $1
 ORDER BY s.prefix, lower(s.serials)`

// LedgerSerials returns the current serial blocks of one registry (a registry code such as
// "car"), ordered by series and first serial, read in one snapshot.
func (s *Store) LedgerSerials(ctx context.Context, registry string) ([]LedgerSerial, error) {
	var out []LedgerSerial
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &out, qLedgerSerials, registry)
	})
	for i := range out {
		out[i].Date = out[i].Date.UTC()
	}
	return out, err
}
