package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/carbonledger/carbonledger/ledger"
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

// LedgerEntry is a delivery or retirement recorded without serials, as reconciliation needs it
// (with a registry that publishes no serials, Isometric, and with rows of the others that no
// serial block of the ledger overlaps): its contract, kind, effective date, quantity, whether
// its credits went to the retired account (a retirement, or a delivery retired on delivery),
// its beneficiary, reason and claim ("" where it has none), vintage and registry transaction id.
type LedgerEntry struct {
	Contract    string        `db:"code" json:"contract"`
	Registry    string        `db:"registry" json:"registry"`
	Kind        string        `db:"kind" json:"kind"`
	Entry       string        `db:"entry_id" json:"entry"`
	Date        time.Time     `db:"effective_on" json:"date"`
	Tonnes      ledger.Tonnes `db:"tonnes" json:"tonnes"`
	Retired     bool          `db:"retired" json:"retired"`
	Beneficiary string        `db:"beneficiary" json:"beneficiary,omitempty"`
	Reason      string        `db:"reason" json:"reason,omitempty"`
	Claim       string        `db:"claim" json:"claim,omitempty"`
	// Vintage is the entry's vintage year (0: none); RegistryTx the registry transaction id
	// its metadata records (a delivery's registry_tx; "" where it has none).
	Vintage    int    `db:"vintage" json:"vintage,omitempty"`
	RegistryTx string `db:"registry_tx" json:"registry_tx,omitempty"`
}

// One query: the entries, their quantity (the credit leg) and whether it went to the retired
// account; a delivery that was reverted is left out (a retirement cannot be reverted).
const qLedgerEntriesWithoutSerials = `
SELECT c.code, c.registry, e.kind, e.id AS entry_id, e.effective_on, q.tonnes, q.retired,
       coalesce(e.metadata->>'beneficiary', '') AS beneficiary,
       coalesce(e.metadata->>'reason', '') AS reason, coalesce(e.metadata->>'claim', '') AS claim,
       coalesce(e.vintage, 0) AS vintage, coalesce(e.metadata->>'registry_tx', '') AS registry_tx
  FROM entries e
  JOIN contracts c ON c.book_id = e.book_id
  JOIN LATERAL (SELECT sum(p.amount) AS tonnes, bool_or(a.kind = 'retired') AS retired
                  FROM postings p JOIN accounts a ON a.id = p.account_id
                 WHERE p.entry_id = e.id AND p.amount > 0) q ON true
 WHERE c.registry = $1 AND e.kind IN ('deliver', 'retire')
   AND e.metadata->>'serials' IS NULL
   AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.reverts = e.id)
 ORDER BY e.effective_on, c.code, e.seq`

// LedgerEntriesWithoutSerials returns the deliveries and retirements of one registry's
// contracts that carry no serials (and were not reverted), ordered by date, contract and
// position in the contract's book, read in one snapshot.
func (s *Store) LedgerEntriesWithoutSerials(ctx context.Context, registry string) ([]LedgerEntry, error) {
	var out []LedgerEntry
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &out, qLedgerEntriesWithoutSerials, registry)
	})
	for i := range out {
		out[i].Date = out[i].Date.UTC()
	}
	return out, err
}
