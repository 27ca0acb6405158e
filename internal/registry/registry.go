// Package registry reads the public exports of carbon credit registries (the Climate Action
// Reserve's retirement and issuance reports, Verra's VCU transactions) and reconciles them
// with the serial ranges the ledger holds. It imports no database: the store supplies the
// ledger's ranges and the CLI prints the result.
//
// Invariants:
//   - every data row of a file becomes exactly one Record, in file order; a row that cannot be
//     read is a Record with Err set and its line number, never dropped;
//   - a Record's Quantity is its integer count of credits (one credit is one tonne); when a
//     row also carries a serial range whose size differs, the row says so in Problem;
//   - Reconcile puts every Record in exactly one Item.
package registry

import (
	"errors"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

// Kind is the kind of export a file is, told by its header.
type Kind string

// The exports this package reads.
const (
	// CARRetirements is the Climate Action Reserve's retired-credits report: one row per
	// retirement with its serial range ("CAR-1-US-1335-...-9205-1 to 5000").
	CARRetirements Kind = "car-retirements"
	// CARIssuances is the Reserve's issuance report: one row per issuance, with no serials.
	CARIssuances Kind = "car-issuances"
	// VerraTransactions is Verra's VCU export: one row per block of VCUs, active or retired.
	VerraTransactions Kind = "verra-transactions"
)

// Registry is the registry code (as ledger.NormalizeRegistry gives it) of the export.
func (k Kind) Registry() string {
	switch k {
	case CARRetirements, CARIssuances:
		return "car"
	case VerraTransactions:
		return "verra"
	}
	return ""
}

// Name is the export's name for people.
func (k Kind) Name() string {
	switch k {
	case CARRetirements:
		return "Climate Action Reserve retirements export"
	case CARIssuances:
		return "Climate Action Reserve issuances export"
	case VerraTransactions:
		return "Verra VCU transactions export"
	}
	return string(k)
}

// covers reports whether an export of this kind lists serials the ledger holds in state: a
// retirements report lists retired serials only; Verra's export lists every block, active
// (delivered) or retired or cancelled (reversed).
func (k Kind) covers(state string) bool {
	switch k {
	case CARRetirements:
		return state == StateRetired
	case VerraTransactions:
		return true
	}
	return false
}

// Status is what the registry says happened to a row's credits.
type Status string

// Registry statuses.
const (
	StatusIssued             Status = "issued"
	StatusRetired            Status = "retired"
	StatusCancelled          Status = "cancelled"
	StatusRetiredOrCancelled Status = "retired or cancelled"
)

// The ledger's serial states (serial_blocks.state).
const (
	StateDelivered = "delivered"
	StateRetired   = "retired"
	StateReversed  = "reversed"
)

// agrees reports whether the ledger's state of a serial block is what the registry's status
// implies: held credits are active at the registry, retired ones retired, and reversed ones
// cancelled (a registry cancels credits lost to a reversal).
func (s Status) agrees(state string) bool {
	switch s {
	case StatusIssued:
		return state == StateDelivered
	case StatusRetired:
		return state == StateRetired
	case StatusCancelled:
		return state == StateReversed
	case StatusRetiredOrCancelled:
		return state == StateRetired || state == StateReversed
	}
	return false
}

// Record is one data row of an export.
type Record struct {
	Line     int    `json:"line"` // the file line the row starts on (the header is line 1)
	Registry string `json:"registry"`
	Kind     Kind   `json:"kind"`
	// Serials is the row's inclusive range; the zero value for rows without serials
	// (issuance summaries). Label keeps the registry's own form.
	Serials ledger.SerialRange `json:"serials"`
	// Count is the row's quantity of credits; Quantity the same in tonnes.
	Count       int64         `json:"count"`
	Quantity    ledger.Tonnes `json:"quantity"`
	Status      Status        `json:"status"`
	Date        time.Time     `json:"date"`        // of the status: retirement, else issuance
	Beneficiary string        `json:"beneficiary"` // the retirement beneficiary, or the account holder
	Reason      string        `json:"reason"`
	Details     string        `json:"details"`
	Project     string        `json:"project"`
	Vintage     string        `json:"vintage"`
	// Problem is set when the row was read but contradicts itself (a quantity that is not
	// the size of its serial range).
	Problem string `json:"problem,omitempty"`
	// Err is set when the row could not be read; it says why. The fields above are then
	// whatever could be read.
	Err string `json:"error,omitempty"`
}

// HasSerials reports whether the row names a serial range.
func (r Record) HasSerials() bool { return r.Serials.Prefix != "" }

// Export is a file read: its kind and every row.
type Export struct {
	Kind     Kind
	Registry string
	Records  []Record // every data row, in file order, readable or not
}

// Unreadable counts the rows that could not be read.
func (e *Export) Unreadable() int {
	n := 0
	for _, r := range e.Records {
		if r.Err != "" {
			n++
		}
	}
	return n
}

// Errors of Parse.
var (
	// ErrUnknownExport marks a file whose header is not one of a known registry export.
	ErrUnknownExport = errors.New("not a known registry export")
	// ErrWrongRegistry marks a file of another registry than the one asked for.
	ErrWrongRegistry = errors.New("export of another registry")
)
