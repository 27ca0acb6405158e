// Package registry reads the public exports of carbon credit registries (the Climate Action
// Reserve's retirement, cancellation and issuance reports, Verra's VCU transactions, Gold
// Standard's issuances and retirements, Isometric's issuances and retirements as CarbonPlan
// flattens its API, all CSV; Puro.earth's certificate bundles and transactions, JSON) and
// reconciles them with the serial ranges the ledger holds, or, for rows without serials
// (Isometric's), with its deliveries and retirements recorded without serials. It imports no
// database: the store supplies the ledger's ranges and the CLI prints the result.
//
// Invariants:
//   - every data row of a file becomes exactly one Record, in file order; a row that cannot be
//     read is a Record with Err set and its line number, never dropped. In Puro's JSON a row is
//     a certificate bundle: a transaction of several bundles is several Records, and one of
//     none is one Record with Err;
//   - a Record's Quantity is its quantity in tonnes, exactly; Count is its integer count of
//     credits (one credit is one tonne), except for Isometric, which gives quantities to the
//     kilogram (credits 0.019 = credit_kgs 19: one credit is still one tonne) and where Count
//     is the whole number of kilograms; when a row also carries a serial range whose
//     size differs, the row says so in Problem;
//   - a row's Status is what its export says happened to its credits, and no more: a
//     cancellation (with its reason) is never read as a retirement, and a row that cannot be
//     told is StatusRetiredOrCancelled;
//   - Reconcile puts every Record in exactly one Item;
//   - a retirement row whose serials the ledger retired has its date, beneficiary, quantity
//     and purpose compared with the ledger's retirement (Item.Facts); a fact one side does not
//     state is not compared, never matched, and any fact that differs (the purpose never
//     does) makes the row Disagrees.
package registry

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/carbonledger/carbonledger/ledger"
)

// Kind is the kind of export a file is, told by its header (a CSV's header row, a JSON
// record's keys).
type Kind string

// The exports this package reads.
const (
	// CARRetirements is the Climate Action Reserve's retired-credits report: one row per
	// retirement with its serial range ("CAR-1-US-1335-...-9205-1 to 5000").
	CARRetirements Kind = "car-retirements"
	// CARCancellations is the Reserve's cancelled-credits report: the retirements report's
	// serial and quantity columns, with a Cancellation Reason (ARB or WA ECO: credits
	// converted to compliance offsets) instead of a retirement's. Its rows are cancelled, not
	// retired.
	CARCancellations Kind = "car-cancellations"
	// CARIssuances is the Reserve's issuance report: one row per issuance, with no serials.
	CARIssuances Kind = "car-issuances"
	// VerraTransactions is Verra's VCU export: one row per block of VCUs, active or retired.
	VerraTransactions Kind = "verra-transactions"
	// GSIssuances is Gold Standard's issuances export: one row per block of credits
	// ("GS1-1-KE-GS11603-16-2025-30256-1-5463"), each with its Credit Status (Issued).
	GSIssuances Kind = "gold-standard-issuances"
	// GSRetirements is Gold Standard's retirements export: the issuances export's columns and a
	// Retirement Date, Using Entity (the beneficiary), Use Case and Note; its rows are Retired
	// or Canceled, each by its Credit Status.
	GSRetirements Kind = "gold-standard-retirements"
	// IsometricIssuances is CarbonPlan's flattening of Isometric's issuances (its registry
	// API): one row per issuance (id iss_...), with its project (prj_...), its date (issued_at,
	// RFC 3339) and its batch sizes in credits and in kilograms; no serials. The row's quantity
	// is the supplier's batch (supplier_credit_batch_size_total.credit_kgs), what can be
	// delivered to a buyer; the buffer pool's share is not.
	IsometricIssuances Kind = "isometric-issuances"
	// IsometricRetirements is the same flattening of Isometric's retirements: one row per
	// retirement (retirement_id ret_...), with its date (retired_at), purposes, beneficiary
	// (beneficiary.name, who the claim is for, as against owner.name, whose credits were
	// retired), project and quantity in credits and kilograms; no serials.
	IsometricRetirements Kind = "isometric-retirements"
	// PuroCertificates is Puro.earth's list of active certificate bundles (its Registry API's
	// certificates, JSON): one Record per bundle, each an inclusive range within one issuance
	// ("PURO_PR_CORC100+_FI_577166_2020_<issuance uuid>_1-100"), held by its accountHolderName
	// and so issued (the ledger's delivered). Retired and withdrawn credits are not in it.
	PuroCertificates Kind = "puro-certificates"
	// PuroTransactions is Puro.earth's list of transactions (JSON: the public registry's
	// retirements, or the Registry API's transactions), each with the certificate bundles it
	// moved: one Record per bundle. A Retirement's bundles are retired (for the beneficiary in
	// its retirementDetails, which the registry may hide for a time), a Withdrawal's cancelled;
	// an Issuance, Transfer or InternalTransfer says when credits moved, not where they stand,
	// and its bundles are not compared (see parsePuro).
	PuroTransactions Kind = "puro-transactions"
)

// Registry is the registry code (as ledger.NormalizeRegistry gives it) of the export.
func (k Kind) Registry() string {
	switch k {
	case CARRetirements, CARCancellations, CARIssuances:
		return "car"
	case VerraTransactions:
		return "verra"
	case GSIssuances, GSRetirements:
		return "gold-standard"
	case IsometricIssuances, IsometricRetirements:
		return "isometric"
	case PuroCertificates, PuroTransactions:
		return "puro"
	}
	return ""
}

// Name is the export's name for people.
func (k Kind) Name() string {
	switch k {
	case CARRetirements:
		return "Climate Action Reserve retirements export"
	case CARCancellations:
		return "Climate Action Reserve cancellations export"
	case CARIssuances:
		return "Climate Action Reserve issuances export"
	case VerraTransactions:
		return "Verra VCU transactions export"
	case GSIssuances:
		return "Gold Standard issuances export"
	case GSRetirements:
		return "Gold Standard retirements export"
	case IsometricIssuances:
		return "Isometric issuances export"
	case IsometricRetirements:
		return "Isometric retirements export"
	case PuroCertificates:
		return "Puro JSON certificates list"
	case PuroTransactions:
		return "Puro JSON transactions list"
	}
	return string(k)
}

// covers reports whether an export of this kind lists serials the ledger holds in state: a
// retirements report lists retired serials only, a cancellations report cancelled ones (the
// ledger's reversed); Verra's export lists every block, active (delivered) or retired or
// cancelled (reversed). Gold Standard's issuances export lists the blocks still issued
// (delivered), its retirements export the retired and cancelled ones. Puro's certificates list
// holds the active bundles (delivered), its transactions the retired and withdrawn ones.
func (k Kind) covers(state string) bool {
	switch k {
	case CARRetirements:
		return state == StateRetired
	case CARCancellations:
		return state == StateReversed
	case VerraTransactions:
		return true
	case GSIssuances:
		return state == StateDelivered
	case GSRetirements, PuroTransactions:
		return state == StateRetired || state == StateReversed
	case PuroCertificates:
		return state == StateDelivered
	}
	return false
}

// Status is what the registry says happened to a row's credits.
type Status string

// Registry statuses. Each export's rows map onto these explicitly (see Parse): a retirements
// report's rows are retired, a cancellations report's cancelled, Verra's blocks issued until
// they carry a retirement/cancellation date, Gold Standard's by their Credit Status (Issued,
// Retired, Canceled), Puro's active bundles issued and its transactions' bundles by the
// transaction's type (Retirement retired, Withdrawal cancelled).
const (
	// StatusIssued: issued and active, held in an account or transferred between accounts
	// (the ledger's delivered).
	StatusIssued Status = "issued"
	// StatusRetired: retired for a claim, for a beneficiary.
	StatusRetired Status = "retired"
	// StatusCancelled: cancelled by the registry, for the reason in Record.Cancellation; not a
	// retirement, whatever the ledger says.
	StatusCancelled Status = "cancelled"
	// StatusRetiredOrCancelled: out of circulation, but the export does not say whether
	// retired or cancelled (a Verra row with a retirement/cancellation date and neither
	// beneficiary nor reason).
	StatusRetiredOrCancelled Status = "retired or cancelled"
)

// CancelReason is why a registry cancelled credits, told from the reason its export gives.
type CancelReason string

// Cancellation reasons.
const (
	// CancelCompliance: converted to compliance offsets (the Reserve's "ARB" and "WA ECO",
	// CORSIA).
	CancelCompliance CancelReason = "compliance conversion"
	// CancelTransfer: moved to another registry.
	CancelTransfer CancelReason = "transfer to another registry"
	// CancelBuffer: put into or taken from a buffer pool.
	CancelBuffer CancelReason = "buffer"
	// CancelReversal: lost to a reversal (the ledger's reversed).
	CancelReversal CancelReason = "reversal"
	// CancelUnstated: no reason given, or one not recognised (the registry's text is kept in
	// Record.Reason).
	CancelUnstated CancelReason = ""
)

// cancelReasonOf tells a registry's cancellation reason text apart.
func cancelReasonOf(text string) CancelReason {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	has := func(w string) bool { return slices.Contains(words, w) }
	joined := " " + strings.Join(words, " ") + " "
	switch {
	case has("arb") || strings.Contains(joined, " wa eco ") || has("compliance") || has("corsia"):
		return CancelCompliance
	case strings.Contains(joined, " transfer") || strings.Contains(joined, " other registry") || strings.Contains(joined, " another registry"):
		return CancelTransfer
	case has("buffer"):
		return CancelBuffer
	case strings.Contains(joined, " revers"):
		return CancelReversal
	}
	return CancelUnstated
}

// The ledger's serial states (serial_blocks.state).
const (
	StateDelivered = "delivered"
	StateRetired   = "retired"
	StateReversed  = "reversed"
)

// agrees reports whether the ledger's state of a serial block is what a row's status implies:
// held credits are active at the registry, retired ones retired, and reversed ones cancelled
// (a registry cancels credits lost to a reversal). A cancellation for another reason
// (compliance conversion, transfer to another registry) agrees with no state of the ledger,
// and no cancellation agrees with a retirement.
func (r Record) agrees(state string) bool {
	switch r.Status {
	case StatusIssued:
		return state == StateDelivered
	case StatusRetired:
		return state == StateRetired
	case StatusCancelled:
		switch r.Cancellation {
		case CancelCompliance, CancelTransfer:
			return false
		}
		return state == StateReversed
	case StatusRetiredOrCancelled:
		return state == StateRetired || state == StateReversed
	}
	return false
}

// Record is one data row of an export.
type Record struct {
	// Line is the file line the row starts on (a CSV's header is line 1); in a JSON file, the
	// line on which the row's object (a Puro bundle) starts.
	Line     int    `json:"line"`
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
	Reason      string        `json:"reason"`      // the registry's own reason: retirement, or cancellation
	Details     string        `json:"details"`
	Project     string        `json:"project"`
	// ID is the registry's own identifier of the row, where it has one (Isometric's
	// retirement_id ret_..., or issuance id iss_...; Puro's transaction id, shared by the
	// bundles of one transaction).
	ID string `json:"id,omitempty"`
	// Owner is the account holder whose credits a retirement retired, where the export names
	// it (Isometric's owner.name, Puro's accountHolderName, the Reserve's Account Holder,
	// which the Reserve also gives as the beneficiary), and OwnerID the registry's id of that
	// account (Isometric's owner.id).
	Owner   string `json:"owner,omitempty"`
	OwnerID string `json:"owner_id,omitempty"`
	// BeneficiaryHidden says why a retirement names no beneficiary where the registry hides
	// it for a time (Puro's beneficiaryHiddenUntil: "until 2027-03-31"); the beneficiary is
	// then not stated, and not compared.
	BeneficiaryHidden string `json:"beneficiary_hidden,omitempty"`
	Vintage           string `json:"vintage"`
	// Cancellation is why a cancelled row was cancelled, as far as Reason tells.
	Cancellation CancelReason `json:"cancellation,omitempty"`
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

// cancelledWhy says why a cancelled row was cancelled, in the registry's words and as told
// apart: `reason "ARB": compliance conversion`, or `no reason given`.
func (r Record) cancelledWhy() string {
	switch {
	case r.Reason == "":
		return "no reason given"
	case r.Cancellation == CancelUnstated:
		return fmt.Sprintf("reason %q", r.Reason)
	}
	return fmt.Sprintf("reason %q: %s", r.Reason, r.Cancellation)
}
