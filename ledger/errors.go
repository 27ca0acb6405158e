package ledger

import (
	"errors"
	"fmt"
	"strings"
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
	// ErrRequired marks a required field left out of a request. It is also ErrInvalid (HTTP
	// 400); the CLI reports it as a usage error (exit 2), as it does a missing flag.
	ErrRequired = fmt.Errorf("%w: required field missing", ErrInvalid)
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

// Required returns a FieldError of kind ErrRequired: the field was left out.
func Required(field, rule string) error {
	return &FieldError{Field: field, Rule: rule, Kind: ErrRequired}
}

// FieldErrors is every field error of one request, in the order of the request's fields: an
// import reports all that is wrong with a row at once, not one mistake per attempt.
// errors.Is and errors.As see each of them.
type FieldErrors []*FieldError

func (es FieldErrors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (es FieldErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Rename returns a copy of es with each field renamed by f (a CLI names its flags, an import
// its columns).
func (es FieldErrors) Rename(f func(field string) string) FieldErrors {
	out := make(FieldErrors, len(es))
	for i, e := range es {
		c := *e
		c.Field = f(e.Field)
		out[i] = &c
	}
	return out
}

// add appends err, which must be a *FieldError or FieldErrors (anything else is a bug).
func (es *FieldErrors) add(err error) {
	var fes FieldErrors
	var fe *FieldError
	switch {
	case err == nil:
	case errors.As(err, &fes):
		*es = append(*es, fes...)
	case errors.As(err, &fe):
		*es = append(*es, fe)
	default: // not expected from the parsers; kept as a field error rather than lost
		*es = append(*es, &FieldError{Field: "request", Rule: err.Error()})
	}
}

// err returns es as an error, or nil when it holds none.
func (es FieldErrors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
