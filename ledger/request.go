package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Op is an operation under a contract that a user asks for: from CLI flags, an import row
// (CSV or NDJSON) or an HTTP body. Every front end turns its input into field values and
// calls ParseOperation (or hands a JSON object to UnmarshalJSON, which does the same), so an
// operation is checked in one place, whichever way it arrives.
type Op string

const (
	OpDeliver Op = "deliver"
	OpRetire  Op = "retire"
	OpCancel  Op = "cancel"
	OpReverse Op = "reverse"
	OpAmend   Op = "amend"
	OpRevert  Op = "revert"
)

// Ops lists the operations.
var Ops = []Op{OpDeliver, OpRetire, OpCancel, OpReverse, OpAmend, OpRevert}

// Valid reports whether o is one of Ops.
func (o Op) Valid() bool { return slices.Contains(Ops, o) }

// Request is one validated operation: a DeliverRequest, RetireRequest, CancelRequest,
// ReverseRequest, AmendRequest or RevertRequest value (the set is closed).
type Request interface {
	Op() Op
	// ContractCode is the contract the operation is under; "" for a revert, whose entry
	// names its contract.
	ContractCode() string
	// IdempotencyKey is the request's key; "" lets the store pick one.
	IdempotencyKey() string
	// Fields returns the canonical field values: ParseOperation(op, r.Fields()) gives r back.
	Fields() map[string]string
	// Check applies the rules that need the clock but no database: the effective date may
	// lie at most tolerance past today (the day of now, UTC).
	Check(now time.Time, tolerance time.Duration) error
	// MarshalJSON writes the canonical JSON form; the request type's UnmarshalJSON (or
	// ParseOperationJSON) reads it back.
	MarshalJSON() ([]byte, error)
	// digestForm is what RequestDigest hashes.
	digestForm() any
}

// fieldType is how a field travels in JSON; as a field value (CLI flag, CSV cell) every
// field is text.
type fieldType uint8

const (
	textField fieldType = iota // a JSON string; decimals too ("12.500"), never a JSON number
	yearField                  // a JSON number: 2024
	boolField                  // JSON true or false; as text "true" or "false"
	listField                  // a JSON list (the schedule); as text the same JSON
)

var fieldTypes = map[string]fieldType{
	"contract": textField, "tonnes": textField, "date": textField, "vintage": yearField,
	"serials": textField, "registry_tx": textField, "allow_late": boolField,
	"price_per_tonne": textField, "note": textField, "beneficiary": textField,
	"reason": textField, "claim": textField, "remedy": textField, "terminate": boolField,
	"schedule": listField, "entry": textField, "key": textField,
}

// opFields are each operation's fields in canonical order: the order of the JSON form and of
// the errors of one request.
var opFields = map[Op][]string{
	OpDeliver: {"contract", "tonnes", "date", "vintage", "serials", "registry_tx", "allow_late", "price_per_tonne", "note", "key"},
	OpRetire:  {"contract", "tonnes", "date", "beneficiary", "reason", "claim", "serials", "vintage", "registry_tx", "key"},
	OpCancel:  {"contract", "tonnes", "date", "reason", "terminate", "key"},
	OpReverse: {"contract", "tonnes", "date", "reason", "remedy", "serials", "key"},
	OpAmend:   {"contract", "tonnes", "schedule", "date", "reason", "key"},
	OpRevert:  {"entry", "date", "reason", "key"},
}

// OpFields returns the names of op's fields in canonical order (nil for an unknown op). An
// import's columns are "op" and the union of these.
func OpFields(op Op) []string { return slices.Clone(opFields[op]) }

// ParseOperation checks the field values of one operation and returns the validated request.
// Names are snake_case: contract, tonnes, date, vintage, serials, registry_tx, allow_late,
// price_per_tonne, note, beneficiary, reason, claim, remedy, terminate, schedule (a JSON
// list of {year, tonnes, vintage, price_per_tonne, due_on}), entry and key. An empty value
// is a field left out, so the rows of an import can share one set of columns; a name that
// is no field of any operation, or a value given to a field of another operation, is
// refused. An "op" field, when present, must name op.
//
// It checks everything that needs neither the database nor the clock: required fields,
// number, date, year, serial and enum syntax, text lengths, and that a serial range holds
// as many serials as the tonnes. The error is a FieldErrors with every problem found.
func ParseOperation(op string, fields map[string]string) (Request, error) {
	return parseOperation(op, fields, nil, nil)
}

// parseOperation is ParseOperation after the JSON reader: bad names the fields it has already
// reported (a JSON value of the wrong type), so they are neither parsed nor called missing.
func parseOperation(op string, fields map[string]string, bad map[string]bool, errs FieldErrors) (Request, error) {
	o := Op(op)
	if !o.Valid() {
		errs.add(Invalid("op", op, "is not an operation ("+joinOps()+")"))
		return nil, errs
	}
	p := fieldReader{op: o, f: fields, bad: bad, errs: errs}
	p.checkNames()
	var r Request
	switch o {
	case OpDeliver:
		d := DeliverRequest{Contract: p.contract(), Tonnes: p.tonnes(true), Date: p.date(true), Vintage: p.year("vintage"),
			Serials: p.serials(), RegistryTx: p.text("registry_tx", false, maxRegistryTx), AllowLate: p.flag("allow_late"),
			PricePerTonne: p.price(), Note: p.text("note", false, maxNote), Key: p.key()}
		p.serialCount(d.Serials, d.Tonnes)
		r = d
	case OpRetire:
		d := RetireRequest{Contract: p.contract(), Tonnes: p.tonnes(true), Date: p.date(true),
			Beneficiary: p.text("beneficiary", true, maxBeneficiary), Reason: p.text("reason", true, maxReason),
			Claim: p.text("claim", false, maxClaim), Serials: p.serials(), Vintage: p.year("vintage"),
			RegistryTx: p.text("registry_tx", false, maxRegistryTx), Key: p.key()}
		p.serialCount(d.Serials, d.Tonnes)
		r = d
	case OpCancel:
		d := CancelRequest{Contract: p.contract(), Tonnes: p.tonnes(false), Date: p.date(true),
			Reason: p.text("reason", true, maxReason), Terminate: p.flag("terminate"), Key: p.key()}
		if !d.Terminate && !p.given("tonnes") && !p.hasError("terminate") {
			p.errs.add(Required("tonnes", "is required, or terminate to cancel all that is open"))
		}
		r = d
	case OpReverse:
		d := ReverseRequest{Contract: p.contract(), Tonnes: p.tonnes(true), Date: p.date(true),
			Reason: p.text("reason", true, maxReason), Remedy: p.remedy(), Serials: p.serials(), Key: p.key()}
		if d.Remedy == RemedyBuffer && d.Serials != nil {
			p.errs.add(Invalid("serials", d.Serials.Label, "are not taken with remedy buffer: the buyer's credits stand and the registry cancels buffer credits"))
		} else {
			p.serialCount(d.Serials, d.Tonnes)
		}
		r = d
	case OpAmend:
		d := AmendRequest{Contract: p.contract(), Date: p.date(true), Reason: p.text("reason", true, maxReason), Key: p.key()}
		if p.given("tonnes") {
			t := p.tonnes(true)
			d.Tonnes = &t
		}
		d.Schedule = p.schedule()
		if !p.given("tonnes") && !p.given("schedule") {
			p.errs.add(Required("tonnes", "is required unless a schedule is given: an amendment changes the contracted tonnes, the schedule, or both"))
		}
		r = d
	case OpRevert:
		r = RevertRequest{Entry: p.entry(), Date: p.date(false), Reason: p.text("reason", true, maxReason), Key: p.key()}
	}
	if len(p.errs) > 0 {
		p.sortErrors()
		return nil, p.errs
	}
	return r, nil
}

func joinOps() string {
	s := make([]string, len(Ops))
	for i, o := range Ops {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}

// fieldReader reads the fields of one request, collecting every error.
type fieldReader struct {
	op   Op
	f    map[string]string
	bad  map[string]bool
	errs FieldErrors
}

// value returns the field's value; ok is false when it was left out or already reported.
func (p *fieldReader) value(name string) (string, bool) {
	if p.bad[name] {
		return "", false
	}
	v := p.f[name]
	return v, v != ""
}

// given reports whether the field was given at all (a value already reported counts).
func (p *fieldReader) given(name string) bool { return p.bad[name] || p.f[name] != "" }

// hasError reports whether the field has an error already.
func (p *fieldReader) hasError(name string) bool {
	return slices.ContainsFunc(p.errs, func(e *FieldError) bool { return e.Field == name })
}

// checkNames refuses names that are not fields of the operation.
func (p *fieldReader) checkNames() {
	names := make([]string, 0, len(p.f))
	for n := range p.f {
		names = append(names, n)
	}
	slices.Sort(names)
	own := opFields[p.op]
	for _, n := range names {
		v := p.f[n]
		switch {
		case n == "op":
			if v != "" && v != string(p.op) {
				p.errs.add(Invalid("op", v, "does not match the operation "+string(p.op)))
			}
		case slices.Contains(own, n), p.bad[n]:
			// The operation's own field, or one whose JSON type was already reported.
		case isField(n) && v == "":
			// Another operation's field left empty: an import row's unused column.
		case n == "": // an import's column without a header
			p.errs.add(Invalid("field", "", fmt.Sprintf("has no name; the fields of %s are %s", p.op, strings.Join(own, ", "))))
		default:
			p.errs.add(Invalid(n, "", fmt.Sprintf("is not a field of %s (its fields are %s)", p.op, strings.Join(own, ", "))))
		}
	}
}

func isField(name string) bool { _, ok := fieldTypes[name]; return ok }

// sortErrors puts the errors in the order of the operation's fields, unknown names last.
func (p *fieldReader) sortErrors() {
	own := opFields[p.op]
	rank := func(field string) int {
		base := field
		if i := strings.IndexAny(base, "[."); i >= 0 {
			base = base[:i]
		}
		if base == "op" {
			return -1
		}
		if i := slices.Index(own, base); i >= 0 {
			return i
		}
		return len(own)
	}
	slices.SortStableFunc(p.errs, func(a, b *FieldError) int { return rank(a.Field) - rank(b.Field) })
}

func (p *fieldReader) text(name string, required bool, max int) string {
	if p.bad[name] {
		return ""
	}
	s := strings.TrimSpace(p.f[name])
	if s == "" {
		if required {
			p.errs.add(Required(name, "is required"))
		}
		return ""
	}
	p.errs.add(checkText(name, s, max))
	return s
}

func (p *fieldReader) contract() string {
	s := p.text("contract", true, 200)
	if s != "" {
		p.errs.add(ValidateCode("contract", s))
	}
	return s
}

// key is taken as given, spaces and all: an idempotency key is the caller's opaque token.
func (p *fieldReader) key() string {
	s, ok := p.value("key")
	if ok {
		p.errs.add(checkText("key", s, maxKey))
	}
	return s
}

func (p *fieldReader) tonnes(required bool) Tonnes {
	s, ok := p.value("tonnes")
	if !ok {
		if required && !p.bad["tonnes"] {
			p.errs.add(Required("tonnes", "is required"))
		}
		return Zero
	}
	t, err := ParsePositiveTonnes(s)
	p.errs.add(Relabel(err, "tonnes"))
	return t
}

func (p *fieldReader) date(required bool) time.Time {
	s, ok := p.value("date")
	if !ok {
		if required && !p.bad["date"] {
			p.errs.add(Required("date", "is required (YYYY-MM-DD)"))
		}
		return time.Time{}
	}
	d, err := ParseDate("date", s)
	p.errs.add(err)
	return d
}

// year reads a vintage: a year from 1990 to 2200, digits only.
func (p *fieldReader) year(name string) int {
	s, ok := p.value(name)
	if !ok {
		return 0
	}
	y, err := strconv.Atoi(s)
	if err != nil || !allDigits(s) || y < 1990 || y > 2200 {
		p.errs.add(Invalid(name, s, "is not a year between 1990 and 2200"))
		return 0
	}
	return y
}

func (p *fieldReader) flag(name string) bool {
	s, ok := p.value(name)
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.errs.add(Invalid(name, s, "is not true or false"))
	}
	return b
}

func (p *fieldReader) serials() *SerialRange {
	s, ok := p.value("serials")
	if !ok {
		return nil
	}
	r, err := ParseSerials(s)
	if err != nil {
		p.errs.add(err)
		return nil
	}
	return &r
}

// serialCount checks that a range holds one serial per tonne, when both were read.
func (p *fieldReader) serialCount(r *SerialRange, t Tonnes) {
	if r != nil && t.IsPositive() {
		p.errs.add(r.RequireCount(t))
	}
}

// price reads a price per tonne; its places are checked against the contract's currency
// when the delivery is built.
func (p *fieldReader) price() *decimal.Decimal {
	s, ok := p.value("price_per_tonne")
	if !ok {
		return nil
	}
	d, err := ParsePrice("price_per_tonne", s, "*")
	if err != nil {
		p.errs.add(err)
		return nil
	}
	return &d
}

func (p *fieldReader) remedy() Remedy {
	s, ok := p.value("remedy")
	if !ok {
		return RemedyReplace // the default, written out so that both spellings are one request
	}
	switch r := Remedy(s); r {
	case RemedyReplace, RemedyBuffer:
		return r
	}
	p.errs.add(Invalid("remedy", s, "must be replace or buffer"))
	return ""
}

func (p *fieldReader) schedule() []ScheduleLine {
	s, ok := p.value("schedule")
	if !ok {
		return nil
	}
	lines, err := ParseScheduleJSON(strings.NewReader(s))
	if err != nil {
		p.errs.add(err)
		return nil
	}
	if len(lines) == 0 {
		p.errs.add(Invalid("schedule", s, "is an empty list; give a line per contract year, such as [{\"year\":1,\"tonnes\":\"500\"}]"))
		return nil
	}
	return lines
}

var entryIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func (p *fieldReader) entry() string {
	s, ok := p.value("entry")
	if !ok {
		if !p.bad["entry"] {
			p.errs.add(Required("entry", "is required (the id of the entry to correct)"))
		}
		return ""
	}
	if key, ok := strings.CutPrefix(s, EntryKeyPrefix); ok {
		if key == "" || len(key) > maxKey {
			p.errs.add(Invalid("entry", s, fmt.Sprintf("names no idempotency key (key:KEY, the key 1 to %d characters)", maxKey)))
			return ""
		}
		if err := checkText("entry", key, maxKey); err != nil { // as the key itself is checked
			p.errs.add(err)
			return ""
		}
		return s
	}
	id := strings.ToLower(strings.TrimSpace(s))
	if !entryIDRE.MatchString(id) {
		p.errs.add(Invalid("entry", s, "is not an entry id (a UUID such as 0190c3a2-...) or key:KEY (the entry's idempotency key)"))
		return ""
	}
	return id
}

// EntryKeyPrefix names an entry by its idempotency key instead of its id, in a revert's entry
// field ("key:KEY"): a file of operations refers to earlier rows that way, since ids are the
// ledger's own and keys are the file's.
const EntryKeyPrefix = "key:"

// CheckEffectiveDate refuses an effective date more than tolerance past today (the day of
// now, in UTC): a ledger records what happened, not what is planned.
func CheckEffectiveDate(d, now time.Time, tolerance time.Duration) error {
	today := Date(now.UTC().Date())
	if limit := today.Add(tolerance); d.After(limit) {
		return Invalid("date", FormatDate(d), fmt.Sprintf("is in the future (today is %s; at most %s ahead is allowed)", FormatDate(today), tolerance))
	}
	return nil
}

func (r DeliverRequest) Op() Op { return OpDeliver }
func (r RetireRequest) Op() Op  { return OpRetire }
func (r CancelRequest) Op() Op  { return OpCancel }
func (r ReverseRequest) Op() Op { return OpReverse }
func (r AmendRequest) Op() Op   { return OpAmend }
func (r RevertRequest) Op() Op  { return OpRevert }

func (r DeliverRequest) ContractCode() string { return r.Contract }
func (r RetireRequest) ContractCode() string  { return r.Contract }
func (r CancelRequest) ContractCode() string  { return r.Contract }
func (r ReverseRequest) ContractCode() string { return r.Contract }
func (r AmendRequest) ContractCode() string   { return r.Contract }
func (r RevertRequest) ContractCode() string  { return "" }

func (r DeliverRequest) IdempotencyKey() string { return r.Key }
func (r RetireRequest) IdempotencyKey() string  { return r.Key }
func (r CancelRequest) IdempotencyKey() string  { return r.Key }
func (r ReverseRequest) IdempotencyKey() string { return r.Key }
func (r AmendRequest) IdempotencyKey() string   { return r.Key }
func (r RevertRequest) IdempotencyKey() string  { return r.Key }

func (r DeliverRequest) Check(now time.Time, tol time.Duration) error {
	return CheckEffectiveDate(r.Date, now, tol)
}
func (r RetireRequest) Check(now time.Time, tol time.Duration) error {
	return CheckEffectiveDate(r.Date, now, tol)
}
func (r CancelRequest) Check(now time.Time, tol time.Duration) error {
	return CheckEffectiveDate(r.Date, now, tol)
}
func (r ReverseRequest) Check(now time.Time, tol time.Duration) error {
	return CheckEffectiveDate(r.Date, now, tol)
}
func (r AmendRequest) Check(now time.Time, tol time.Duration) error {
	return CheckEffectiveDate(r.Date, now, tol)
}

// Check of a revert checks its date when one is given; without one the correction takes the
// original's date, which the store checks on the entry.
func (r RevertRequest) Check(now time.Time, tol time.Duration) error {
	if r.Date.IsZero() {
		return nil
	}
	return CheckEffectiveDate(r.Date, now, tol)
}

// fieldSet builds a request's canonical fields, leaving out empty values.
type fieldSet map[string]string

func (f fieldSet) set(name, v string) {
	if v != "" {
		f[name] = v
	}
}

func (f fieldSet) year(name string, y int) {
	if y != 0 {
		f[name] = strconv.Itoa(y)
	}
}

func (f fieldSet) flag(name string, b bool) {
	if b {
		f[name] = "true"
	}
}

func (f fieldSet) serials(r *SerialRange) {
	if r != nil {
		if r.Label != "" {
			f["serials"] = r.Label
		} else {
			f["serials"] = r.String()
		}
	}
}

func (f fieldSet) tonnes(t Tonnes) {
	if !t.IsZero() {
		f["tonnes"] = t.String()
	}
}

func (r DeliverRequest) Fields() map[string]string {
	f := fieldSet{}
	f.set("contract", r.Contract)
	f.tonnes(r.Tonnes)
	f.set("date", FormatDate(r.Date))
	f.year("vintage", r.Vintage)
	f.serials(r.Serials)
	f.set("registry_tx", r.RegistryTx)
	f.flag("allow_late", r.AllowLate)
	if r.PricePerTonne != nil {
		f["price_per_tonne"] = r.PricePerTonne.String()
	}
	f.set("note", r.Note)
	f.set("key", r.Key)
	return f
}

func (r RetireRequest) Fields() map[string]string {
	f := fieldSet{}
	f.set("contract", r.Contract)
	f.tonnes(r.Tonnes)
	f.set("date", FormatDate(r.Date))
	f.set("beneficiary", r.Beneficiary)
	f.set("reason", r.Reason)
	f.set("claim", r.Claim)
	f.serials(r.Serials)
	f.year("vintage", r.Vintage)
	f.set("registry_tx", r.RegistryTx)
	f.set("key", r.Key)
	return f
}

func (r CancelRequest) Fields() map[string]string {
	f := fieldSet{}
	f.set("contract", r.Contract)
	f.tonnes(r.Tonnes)
	f.set("date", FormatDate(r.Date))
	f.set("reason", r.Reason)
	f.flag("terminate", r.Terminate)
	f.set("key", r.Key)
	return f
}

func (r ReverseRequest) Fields() map[string]string {
	f := fieldSet{}
	f.set("contract", r.Contract)
	f.tonnes(r.Tonnes)
	f.set("date", FormatDate(r.Date))
	f.set("reason", r.Reason)
	f.set("remedy", string(r.Remedy))
	f.serials(r.Serials)
	f.set("key", r.Key)
	return f
}

func (r AmendRequest) Fields() map[string]string {
	f := fieldSet{}
	f.set("contract", r.Contract)
	if r.Tonnes != nil {
		f["tonnes"] = r.Tonnes.String()
	}
	if r.Schedule != nil {
		f["schedule"] = scheduleJSON(r.Schedule)
	}
	f.set("date", FormatDate(r.Date))
	f.set("reason", r.Reason)
	f.set("key", r.Key)
	return f
}

func (r RevertRequest) Fields() map[string]string {
	f := fieldSet{}
	f.set("entry", r.Entry)
	f.set("date", FormatDate(r.Date))
	f.set("reason", r.Reason)
	f.set("key", r.Key)
	return f
}

// scheduleJSON writes schedule lines in the form ParseScheduleJSON reads.
func scheduleJSON(lines []ScheduleLine) string {
	type line struct {
		Year          int     `json:"year"`
		Tonnes        Tonnes  `json:"tonnes"`
		Vintage       int     `json:"vintage,omitempty"`
		PricePerTonne *string `json:"price_per_tonne,omitempty"`
		DueOn         string  `json:"due_on,omitempty"`
	}
	out := make([]line, len(lines))
	for i, l := range lines {
		out[i] = line{Year: l.Year, Tonnes: l.Tonnes, Vintage: l.Vintage, DueOn: FormatDate(l.DueOn)}
		if l.PricePerTonne != nil {
			p := l.PricePerTonne.String()
			out[i].PricePerTonne = &p
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		panic(err) // plain values
	}
	return string(b)
}

// marshalRequest writes the canonical JSON form of r: an object with "op" first, then the
// fields that are set in the operation's field order. Decimals are strings ("12.500"),
// dates "YYYY-MM-DD", serial ranges their text, the vintage a number, flags true, the
// schedule a list.
func marshalRequest(r Request) ([]byte, error) {
	f := r.Fields()
	b := []byte(`{"op":`)
	b = strconv.AppendQuote(b, string(r.Op()))
	for _, name := range opFields[r.Op()] {
		v, ok := f[name]
		if !ok {
			continue
		}
		b = append(b, ',')
		b, _ = appendJSONValue(b, name)
		b = append(b, ':')
		switch fieldTypes[name] {
		case textField:
			b, _ = appendJSONValue(b, v)
		case yearField, listField:
			b = append(b, v...)
		case boolField:
			b = append(b, "true"...)
		}
	}
	return append(b, '}'), nil
}

func appendJSONValue(b []byte, s string) ([]byte, error) {
	q, err := json.Marshal(s)
	return append(b, q...), err
}

func (r DeliverRequest) MarshalJSON() ([]byte, error) { return marshalRequest(r) }
func (r RetireRequest) MarshalJSON() ([]byte, error)  { return marshalRequest(r) }
func (r CancelRequest) MarshalJSON() ([]byte, error)  { return marshalRequest(r) }
func (r ReverseRequest) MarshalJSON() ([]byte, error) { return marshalRequest(r) }
func (r AmendRequest) MarshalJSON() ([]byte, error)   { return marshalRequest(r) }
func (r RevertRequest) MarshalJSON() ([]byte, error)  { return marshalRequest(r) }

// ParseOperationJSON reads one operation from a JSON object whose "op" member names it (a
// line of an NDJSON import). The other members are the operation's fields as MarshalJSON
// writes them; null is a field left out; unknown or repeated members are refused.
func ParseOperationJSON(b []byte) (Request, error) {
	f, bad, errs := jsonFields(b)
	if f == nil {
		return nil, errs
	}
	op := f["op"]
	if op == "" {
		if !bad["op"] {
			errs.add(Required("op", "is required ("+joinOps()+")"))
		}
		return nil, errs
	}
	return parseOperation(op, f, bad, errs)
}

// unmarshalRequest reads the JSON form of an op into dst, through ParseOperation's checks.
func unmarshalRequest[T Request](op Op, b []byte, dst *T) error {
	f, bad, errs := jsonFields(b)
	if f == nil {
		return errs
	}
	if _, ok := f["op"]; !ok && !bad["op"] {
		f["op"] = string(op) // an HTTP route names the operation; the body need not
	}
	r, err := parseOperation(string(op), f, bad, errs)
	if err != nil {
		return err
	}
	*dst = r.(T)
	return nil
}

func (r *DeliverRequest) UnmarshalJSON(b []byte) error { return unmarshalRequest(OpDeliver, b, r) }
func (r *RetireRequest) UnmarshalJSON(b []byte) error  { return unmarshalRequest(OpRetire, b, r) }
func (r *CancelRequest) UnmarshalJSON(b []byte) error  { return unmarshalRequest(OpCancel, b, r) }
func (r *ReverseRequest) UnmarshalJSON(b []byte) error { return unmarshalRequest(OpReverse, b, r) }
func (r *AmendRequest) UnmarshalJSON(b []byte) error   { return unmarshalRequest(OpAmend, b, r) }
func (r *RevertRequest) UnmarshalJSON(b []byte) error  { return unmarshalRequest(OpRevert, b, r) }

// jsonFields turns a JSON object into field values, checking each member's JSON type. bad
// names the members whose type was wrong (already in errs). fields is nil when b is not one
// JSON object.
func jsonFields(b []byte) (fields map[string]string, bad map[string]bool, errs FieldErrors) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	notJSON := func(err error) (map[string]string, map[string]bool, FieldErrors) {
		errs.add(Invalid("request", "", "is not valid JSON: "+strings.TrimPrefix(err.Error(), "json: ")))
		return nil, nil, errs
	}
	tok, err := dec.Token()
	if err == io.EOF {
		errs.add(Invalid("request", "", "is empty; give a JSON object"))
		return nil, nil, errs
	}
	if err != nil {
		return notJSON(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		errs.add(Invalid("request", "", "must be a JSON object"))
		return nil, nil, errs
	}
	fields, bad = map[string]string{}, map[string]bool{}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return notJSON(err)
		}
		name, ok := tok.(string)
		if !ok { // Token fails first on a key that is not a string; kept for safety
			errs.add(Invalid("request", "", "has a member name that is not a string"))
			return nil, nil, errs
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return notJSON(err)
		}
		if name == "" {
			errs.add(Invalid("field", "", `has no name (a member "" of the object)`))
			continue
		}
		if msg := jsonTextError(raw); msg != "" {
			errs.add(Invalid(name, "", msg))
			bad[name] = true
			continue
		}
		if seen[name] {
			errs.add(Invalid(name, "", "appears more than once"))
			bad[name] = true
			continue
		}
		seen[name] = true
		typ, known := fieldTypes[name]
		if name == "op" {
			typ, known = textField, true
		}
		if !known {
			fields[name] = string(raw) // refused by name whatever its value
			continue
		}
		if string(raw) == "null" {
			continue
		}
		switch v, ok := jsonValue(typ, raw); {
		case ok:
			fields[name] = v
		default:
			errs.add(Invalid(name, string(raw), jsonTypeRule(name, typ)))
			bad[name] = true
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return notJSON(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		errs.add(Invalid("request", "", "has content after the JSON object; give exactly one object"))
		return nil, nil, errs
	}
	if msg := jsonTextError(b); msg != "" && len(errs) == 0 { // in a member's name
		errs.add(Invalid("request", "", msg))
		return nil, nil, errs
	}
	return fields, bad, errs
}

// RepeatedMember returns the name of a member that the JSON object b gives more than once, if
// any (and "", false when b is not one JSON object; members without a name, which
// ParseOperationJSON refuses on their own, are not counted). encoding/json keeps the last of
// them when it decodes an object into a map or struct, so a front end that goes through one
// before ParseOperationJSON, which refuses a repeated member, asks here first.
func RepeatedMember(b []byte) (string, bool) {
	if !json.Valid(b) {
		return "", false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return "", false
		}
		if seen[name] && name != "" {
			return name, true
		}
		seen[name] = true
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return "", false
		}
	}
	return "", false
}

// jsonValue returns the field value of a JSON member of type typ; ok is false when raw is
// another JSON type.
func jsonValue(typ fieldType, raw json.RawMessage) (string, bool) {
	switch typ {
	case textField:
		var s string
		if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true // "" is a field left out, as in a CSV cell
	case yearField:
		c := raw[0]
		return string(raw), c == '-' || (c >= '0' && c <= '9')
	case boolField:
		switch string(raw) {
		case "true", "false":
			return string(raw), true
		}
		return "", false
	case listField:
		if raw[0] != '[' {
			return "", false
		}
		var buf bytes.Buffer
		if json.Compact(&buf, raw) != nil {
			return "", false
		}
		return buf.String(), true
	}
	return "", false
}

func jsonTypeRule(name string, typ fieldType) string {
	switch {
	case name == "tonnes" || name == "price_per_tonne":
		return `must be a JSON string such as "12.500", not a bare number`
	case typ == textField:
		return "must be a JSON string"
	case typ == yearField:
		return "must be a JSON number (a year such as 2024)"
	case typ == boolField:
		return "must be true or false"
	default:
		return "must be a JSON list"
	}
}

// The digest forms below fix what RequestDigest hashes for each operation: the JSON that
// encoding/json wrote for the request structs before they had a JSON form of their own (v1,
// with RFC 3339 dates and serial ranges as objects). Ledgers store these digests to tell a
// replay from a different request under the same key, so the form must not change; the
// idempotency key itself is not part of it. A field added to a request must be added here
// with omitempty, so that the digests of requests without it stay the same.
type (
	deliverDigest struct {
		Contract      string           `json:"contract"`
		Tonnes        Tonnes           `json:"tonnes"`
		Date          time.Time        `json:"date"`
		Vintage       int              `json:"vintage,omitempty"`
		Serials       *SerialRange     `json:"serials,omitempty"`
		RegistryTx    string           `json:"registry_tx,omitempty"`
		AllowLate     bool             `json:"allow_late,omitempty"`
		PricePerTonne *decimal.Decimal `json:"price_per_tonne,omitempty"`
		Note          string           `json:"note,omitempty"`
	}
	retireDigest struct {
		Contract    string       `json:"contract"`
		Tonnes      Tonnes       `json:"tonnes"`
		Date        time.Time    `json:"date"`
		Beneficiary string       `json:"beneficiary"`
		Reason      string       `json:"reason"`
		Claim       string       `json:"claim,omitempty"`
		Serials     *SerialRange `json:"serials,omitempty"`
		Vintage     int          `json:"vintage,omitempty"`
		RegistryTx  string       `json:"registry_tx,omitempty"`
	}
	cancelDigest struct {
		Contract  string    `json:"contract"`
		Tonnes    Tonnes    `json:"tonnes"`
		Date      time.Time `json:"date"`
		Reason    string    `json:"reason"`
		Terminate bool      `json:"terminate,omitempty"`
	}
	reverseDigest struct {
		Contract string       `json:"contract"`
		Tonnes   Tonnes       `json:"tonnes"`
		Date     time.Time    `json:"date"`
		Reason   string       `json:"reason"`
		Remedy   Remedy       `json:"remedy"`
		Serials  *SerialRange `json:"serials,omitempty"`
	}
	amendDigest struct {
		Contract string         `json:"contract"`
		Tonnes   *Tonnes        `json:"tonnes,omitempty"`
		Schedule []ScheduleLine `json:"schedule,omitempty"`
		Date     time.Time      `json:"date"`
		Reason   string         `json:"reason"`
	}
	revertDigest struct {
		Entry  string    `json:"entry"`
		Date   time.Time `json:"date,omitzero"`
		Reason string    `json:"reason"`
	}
)

func (r DeliverRequest) digestForm() any {
	return deliverDigest{r.Contract, r.Tonnes, r.Date, r.Vintage, r.Serials, r.RegistryTx, r.AllowLate, r.PricePerTonne, r.Note}
}

func (r RetireRequest) digestForm() any {
	return retireDigest{r.Contract, r.Tonnes, r.Date, r.Beneficiary, r.Reason, r.Claim, r.Serials, r.Vintage, r.RegistryTx}
}

func (r CancelRequest) digestForm() any {
	return cancelDigest{r.Contract, r.Tonnes, r.Date, r.Reason, r.Terminate}
}

func (r ReverseRequest) digestForm() any {
	return reverseDigest{r.Contract, r.Tonnes, r.Date, r.Reason, r.Remedy, r.Serials}
}

func (r AmendRequest) digestForm() any {
	return amendDigest{r.Contract, r.Tonnes, r.Schedule, r.Date, r.Reason}
}

func (r RevertRequest) digestForm() any { return revertDigest{r.Entry, r.Date, r.Reason} }
