package ledger

import (
	"errors"
	"fmt"
)

// Sentinel errors. The store maps SQLSTATEs onto these once, so callers (the CLI today, the
// HTTP API later) decide exit codes and status codes with errors.Is, never by matching text.
var (
	// ErrInvalid marks input that breaks a rule of the domain (a malformed value, an
	// unbalanced entry, an unknown field). CLI exit 1; HTTP 400.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound marks a reference to something that does not exist. HTTP 404.
	ErrNotFound = errors.New("not found")
	// ErrConflict marks a request that contradicts what the ledger already holds: an
	// idempotency key reused with a different request, a duplicate contract code. HTTP 409.
	ErrConflict = errors.New("conflict")
	// ErrInsufficient marks a movement larger than the account it draws on allows
	// (over-delivery, retiring more than is held). HTTP 409.
	ErrInsufficient = errors.New("insufficient balance")
	// ErrImmutable marks an attempt to change history (update, delete, revert a retirement).
	ErrImmutable = errors.New("immutable")
)

// FieldError says which field broke which rule, with the offending value, so a user can
// act on it: `tonnes: "1.23456" has more than 3 decimal places (the finest unit is 1 kg)`.
type FieldError struct {
	Field string // the field or flag name, e.g. "tonnes" or "schedule[2].tonnes"
	Value string // the value as given; empty when the field was missing
	Rule  string // the rule, phrased to follow the value
	Kind  error  // ErrInvalid unless said otherwise
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Rule)
	}
	v := e.Value
	if len(v) > 64 {
		v = v[:61] + "..."
	}
	return fmt.Sprintf("%s: %q %s", e.Field, v, e.Rule)
}

func (e *FieldError) Unwrap() error {
	if e.Kind == nil {
		return ErrInvalid
	}
	return e.Kind
}

// Invalid returns a FieldError of kind ErrInvalid.
func Invalid(field, value, rule string) error {
	return &FieldError{Field: field, Value: value, Rule: rule}
}

// Insufficient returns a FieldError of kind ErrInsufficient.
func Insufficient(field, value, rule string) error {
	return &FieldError{Field: field, Value: value, Rule: rule, Kind: ErrInsufficient}
}

// Relabel returns err with its field renamed when it is a FieldError (a parser that knows
// only "tonnes" reports the flag the user typed, "--tonnes", or the JSON path).
func Relabel(err error, field string) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		c := *fe
		c.Field = field
		return &c
	}
	return err
}
