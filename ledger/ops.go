package ledger

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Position is where a contract's tonnes are, from its accounts and flows. The identities
// contracted + replacements = open + delivered + cancelled and
// delivered = holding + retired + reversed hold for every contract.
type Position struct {
	Contracted      Tonnes `json:"contracted"`   // signed plus amendments
	Replacements    Tonnes `json:"replacements"` // owed again after reversals (remedy replace)
	Open            Tonnes `json:"open"`         // contracted, not yet delivered (negative: over-delivered)
	Delivered       Tonnes `json:"delivered"`
	Holding         Tonnes `json:"holding"`
	Retired         Tonnes `json:"retired"`
	Cancelled       Tonnes `json:"cancelled"`
	Reversed        Tonnes `json:"reversed"`         // left the holding as re-emitted (remedy replace)
	BufferCancelled Tonnes `json:"buffer_cancelled"` // cancelled from the registry buffer (remedy buffer)
	// SerializedHolding is the part of the holding that carries serial numbers; it can only be
	// retired or reversed by naming its serials.
	SerializedHolding Tonnes    `json:"serialized_holding"`
	TerminatedOn      time.Time `json:"-"`
}

// Check returns the identities that do not hold (none for a sound position).
func (p Position) Check() []string {
	var out []string
	if l, r := p.Contracted.Add(p.Replacements), Sum(p.Open, p.Delivered, p.Cancelled); !l.Equal(r) {
		out = append(out, fmt.Sprintf("contracted + replacements = %s but open + delivered + cancelled = %s", l, r))
	}
	if r := Sum(p.Holding, p.Retired, p.Reversed); !p.Delivered.Equal(r) {
		out = append(out, fmt.Sprintf("delivered = %s but holding + retired + reversed = %s", p.Delivered, r))
	}
	return out
}

// Remedy is how a carbon reversal is made good.
type Remedy string

const (
	RemedyReplace Remedy = "replace" // the supplier owes the tonnes again
	RemedyBuffer  Remedy = "buffer"  // the registry cancels buffer-pool credits; the buyer's tonnes stand
)

// The requests below are the validated form of one operation each. ParseOperation makes them
// from field values (CLI flags, an import row) and UnmarshalJSON from a JSON body, through the
// same checks; Fields and MarshalJSON write their canonical form back (request.go). Code that
// builds a request by hand (the demo, tests) skips those checks, so the Build functions check
// again what they rely on.

// DeliverRequest records credits delivered under a contract.
type DeliverRequest struct {
	Contract      string
	Tonnes        Tonnes
	Date          time.Time
	Vintage       int // 0: the schedule's
	Serials       *SerialRange
	RegistryTx    string
	AllowLate     bool
	PricePerTonne *decimal.Decimal // nil: the schedule's or the contract's
	Note          string
	Key           string // idempotency key; not part of the request's digest
}

// RetireRequest retires held credits on behalf of a beneficiary.
type RetireRequest struct {
	Contract    string
	Tonnes      Tonnes
	Date        time.Time
	Beneficiary string
	Reason      string
	Claim       string
	Serials     *SerialRange
	Vintage     int
	// RegistryTx is the registry's id of the retirement (Isometric's ret_..., a retirement
	// certificate number), for a retirement recorded without serials to be matched by it.
	RegistryTx string
	Key        string
}

// CancelRequest cancels open tonnes the supplier will not deliver; Terminate cancels all that
// is open and ends the contract.
type CancelRequest struct {
	Contract  string
	Tonnes    Tonnes // zero with Terminate: all that is open
	Date      time.Time
	Reason    string
	Terminate bool
	Key       string
}

// ReverseRequest records a carbon reversal of delivered tonnes (a physical event: fire,
// leakage), with its remedy.
type ReverseRequest struct {
	Contract string
	Tonnes   Tonnes
	Date     time.Time
	Reason   string
	Remedy   Remedy
	Serials  *SerialRange
	Key      string
}

// AmendRequest changes the contracted tonnes, the schedule, or both.
type AmendRequest struct {
	Contract string
	Tonnes   *Tonnes // the new contracted total
	Schedule []ScheduleLine
	Date     time.Time
	Reason   string
	Key      string
}

// RevertRequest corrects a mistaken entry by reversing its postings.
type RevertRequest struct {
	Entry  string
	Date   time.Time // zero: the original's effective date
	Reason string
	Key    string
}

// Longest free text an operation takes, in bytes.
const (
	maxBeneficiary = 200
	maxReason      = 500
	maxClaim       = 40
	maxNote        = 500
	maxRegistryTx  = 200
)

func requireText(field, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", Invalid(field, "", "is required")
	}
	return s, checkText(field, s, max)
}

func optText(field, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	return s, checkText(field, s, max)
}

func (c *Contract) checkInTerm(field string, d time.Time) error {
	if d.Before(c.TermStart) {
		return Invalid(field, FormatDate(d), "is before the contract term starts on "+FormatDate(c.TermStart))
	}
	return nil
}

// BuildSign returns the entry that signs the contract: its tonnes from the supplier's supply
// to the contract's open account, on the signing date, carrying the digest of the terms.
func BuildSign(c *Contract, key string) Entry {
	a := c.Accounts()
	return Entry{
		Book: c.Code, Kind: KindSign, EffectiveOn: c.SignedOn, Key: key,
		Description: fmt.Sprintf("Contract %s signed: %s t from %s to %s", c.Code, c.Tonnes, c.Supplier, c.Buyer),
		Metadata:    map[string]string{"terms_sha256": c.TermsDigest(), "schedule": FormatSchedule(c.Schedule)},
		Postings:    []Posting{{a.Supply, c.Tonnes.Neg()}, {a.Open, c.Tonnes}},
	}
}

// BuildDeliver returns the delivery entry: open -> holding, or open -> retired for a contract
// that retires on delivery.
func BuildDeliver(c *Contract, schedule []ScheduleLine, pos Position, r DeliverRequest) (Entry, error) {
	if !r.Tonnes.IsPositive() {
		return Entry{}, Invalid("tonnes", r.Tonnes.String(), "must be greater than zero")
	}
	if err := c.checkInTerm("date", r.Date); err != nil {
		return Entry{}, err
	}
	if r.Date.Before(c.SignedOn) {
		return Entry{}, Invalid("date", FormatDate(r.Date), "is before the contract was signed on "+FormatDate(c.SignedOn))
	}
	late := r.Date.After(c.TermEnd)
	if late && !r.AllowLate {
		return Entry{}, Invalid("date", FormatDate(r.Date), "is after the contract term ended on "+FormatDate(c.TermEnd)+"; to record a late delivery, allow it explicitly (--allow-late)")
	}
	if !pos.TerminatedOn.IsZero() {
		return Entry{}, Invalid("contract", c.Code, "was terminated on "+FormatDate(pos.TerminatedOn)+"; nothing more can be delivered under it")
	}
	if avail := pos.Open.Add(c.OverDeliveryTolerance); r.Tonnes.GreaterThan(avail) {
		return Entry{}, Insufficient("tonnes", r.Tonnes.String(), fmt.Sprintf(
			"is more than contract %s can still take: %s t open (contracted %s t + replacements %s t - delivered %s t - cancelled %s t) plus an over-delivery tolerance of %s t",
			c.Code, pos.Open.Max(Zero), pos.Contracted, pos.Replacements, pos.Delivered, pos.Cancelled, c.OverDeliveryTolerance))
	}
	md := map[string]string{}
	var err error
	if md["registry_tx"], err = optText("registry_tx", r.RegistryTx, maxRegistryTx); err != nil {
		return Entry{}, err
	}
	if md["note"], err = optText("note", r.Note, maxNote); err != nil {
		return Entry{}, err
	}
	if r.Serials != nil {
		if c.Registry == "" {
			return Entry{}, Invalid("serials", r.Serials.Label, "cannot be recorded: contract "+c.Code+" names no registry")
		}
		if err := r.Serials.RequireCountIn(c.Registry, r.Tonnes); err != nil {
			return Entry{}, err
		}
		md["serials"] = r.Serials.String()
	}
	year := c.YearOf(r.Date)
	md["contract_year"] = strconv.Itoa(year)
	if late {
		md["late"] = "true"
	}
	vintage := r.Vintage
	var line *ScheduleLine
	for i := range schedule {
		if schedule[i].Year == year {
			line = &schedule[i]
		}
	}
	if vintage == 0 && line != nil {
		vintage = line.Vintage
	}
	if vintage != 0 && (vintage < 1990 || vintage > 2200) {
		return Entry{}, Invalid("vintage", strconv.Itoa(vintage), "is not a year between 1990 and 2200")
	}
	price := r.PricePerTonne
	if price == nil && line != nil {
		price = line.PricePerTonne
	}
	if price == nil {
		price = c.PricePerTonne
	}
	if price != nil {
		if c.Currency == "" {
			return Entry{}, Invalid("price_per_tonne", price.String(), "needs the contract to name a currency")
		}
		if _, err := ParsePrice("price_per_tonne", price.String(), c.Currency); err != nil {
			return Entry{}, err
		}
		md["price_per_tonne"], md["currency"] = price.String(), c.Currency
	}
	a := c.Accounts()
	to := a.Holding
	desc := fmt.Sprintf("Delivery of %s t under %s (contract year %d)", r.Tonnes, c.Code, year)
	if c.DeliveryMode == DeliverRetireOnDelivery {
		to = a.Retired
		md["beneficiary"], md["reason"] = c.Buyer, "retired on delivery under the contract"
		desc = fmt.Sprintf("Delivery of %s t under %s (contract year %d), retired on delivery", r.Tonnes, c.Code, year)
	}
	if late {
		desc += ", late"
	}
	return Entry{Book: c.Code, Kind: KindDeliver, EffectiveOn: r.Date, Key: r.Key, Description: desc,
		Vintage: vintage, Metadata: compact(md),
		Postings: []Posting{{a.Open, r.Tonnes.Neg()}, {to, r.Tonnes}}}, nil
}

// BuildRetire returns the retirement entry: holding -> retired, final.
func BuildRetire(c *Contract, pos Position, r RetireRequest) (Entry, error) {
	if !r.Tonnes.IsPositive() {
		return Entry{}, Invalid("tonnes", r.Tonnes.String(), "must be greater than zero")
	}
	md := map[string]string{}
	var err error
	if md["beneficiary"], err = requireText("beneficiary", r.Beneficiary, maxBeneficiary); err != nil {
		return Entry{}, err
	}
	if md["reason"], err = requireText("reason", r.Reason, maxReason); err != nil {
		return Entry{}, err
	}
	if md["claim"], err = optText("claim", r.Claim, maxClaim); err != nil {
		return Entry{}, err
	}
	if md["registry_tx"], err = optText("registry_tx", r.RegistryTx, maxRegistryTx); err != nil {
		return Entry{}, err
	}
	if err := c.checkInTerm("date", r.Date); err != nil {
		return Entry{}, err
	}
	if c.DeliveryMode == DeliverRetireOnDelivery && pos.Holding.IsZero() {
		return Entry{}, Insufficient("tonnes", r.Tonnes.String(), "cannot be retired: contract "+c.Code+" retires credits on delivery, so nothing is held to retire")
	}
	if r.Tonnes.GreaterThan(pos.Holding) {
		return Entry{}, Insufficient("tonnes", r.Tonnes.String(), fmt.Sprintf("is more than the %s t held under contract %s (delivered %s t, already retired %s t, reversed %s t)",
			pos.Holding, c.Code, pos.Delivered, pos.Retired, pos.Reversed))
	}
	if r.Serials != nil {
		if err := r.Serials.RequireCountIn(c.Registry, r.Tonnes); err != nil {
			return Entry{}, err
		}
		md["serials"] = r.Serials.String()
	} else if free := pos.Holding.Sub(pos.SerializedHolding); r.Tonnes.GreaterThan(free) {
		return Entry{}, Invalid("serials", "", fmt.Sprintf("are required: %s t of the %s t held under %s carry serial numbers, so retire them by serial range (--serials PREFIX:FIRST-LAST)",
			pos.SerializedHolding, pos.Holding, c.Code))
	}
	if r.Vintage != 0 && (r.Vintage < 1990 || r.Vintage > 2200) {
		return Entry{}, Invalid("vintage", strconv.Itoa(r.Vintage), "is not a year between 1990 and 2200")
	}
	a := c.Accounts()
	return Entry{Book: c.Code, Kind: KindRetire, EffectiveOn: r.Date, Key: r.Key, Vintage: r.Vintage,
		Description: fmt.Sprintf("Retirement of %s t under %s on behalf of %s", r.Tonnes, c.Code, md["beneficiary"]),
		Metadata:    compact(md),
		Postings:    []Posting{{a.Holding, r.Tonnes.Neg()}, {a.Retired, r.Tonnes}}}, nil
}

// BuildCancel returns the cancellation entry: open -> cancelled. A termination cancels all
// that is open.
func BuildCancel(c *Contract, pos Position, r CancelRequest) (Entry, error) {
	md := map[string]string{}
	var err error
	if md["reason"], err = requireText("reason", r.Reason, maxReason); err != nil {
		return Entry{}, err
	}
	if !pos.TerminatedOn.IsZero() {
		return Entry{}, Invalid("contract", c.Code, "was already terminated on "+FormatDate(pos.TerminatedOn))
	}
	if err := c.checkInTerm("date", r.Date); err != nil {
		return Entry{}, err
	}
	open := pos.Open.Max(Zero)
	t := r.Tonnes
	if r.Terminate {
		if !t.IsZero() && !t.Equal(open) {
			return Entry{}, Invalid("tonnes", t.String(), fmt.Sprintf("must be left out or equal the %s t open: terminating a contract cancels all that is open", open))
		}
		if open.IsZero() {
			return Entry{}, Invalid("contract", c.Code, "has nothing open to cancel; it is complete")
		}
		t = open
		md["terminate"] = "true"
	}
	if !t.IsPositive() {
		return Entry{}, Invalid("tonnes", t.String(), "must be greater than zero")
	}
	if t.GreaterThan(open) {
		return Entry{}, Insufficient("tonnes", t.String(), fmt.Sprintf("is more than the %s t open on contract %s", open, c.Code))
	}
	a := c.Accounts()
	desc := fmt.Sprintf("Cancellation of %s t under %s", t, c.Code)
	if r.Terminate {
		desc = fmt.Sprintf("Termination of %s: %s t open cancelled", c.Code, t)
	}
	return Entry{Book: c.Code, Kind: KindCancel, EffectiveOn: r.Date, Key: r.Key, Description: desc, Metadata: compact(md),
		Postings: []Posting{{a.Open, t.Neg()}, {a.Cancelled, t}}}, nil
}

// BuildReverse returns the reversal entry. Remedy replace: holding -> reversed, and the
// supplier owes the tonnes again (supply -> open). Remedy buffer: the registry's buffer pool
// -> buffer cancelled; the buyer's tonnes stand.
func BuildReverse(c *Contract, pos Position, r ReverseRequest) (Entry, error) {
	if !r.Tonnes.IsPositive() {
		return Entry{}, Invalid("tonnes", r.Tonnes.String(), "must be greater than zero")
	}
	md := map[string]string{}
	var err error
	if md["reason"], err = requireText("reason", r.Reason, maxReason); err != nil {
		return Entry{}, err
	}
	if err := c.checkInTerm("date", r.Date); err != nil {
		return Entry{}, err
	}
	remedy := r.Remedy
	if remedy == "" {
		remedy = RemedyReplace
	}
	md["remedy"] = string(remedy)
	a := c.Accounts()
	e := Entry{Book: c.Code, Kind: KindReverse, EffectiveOn: r.Date, Key: r.Key}
	switch remedy {
	case RemedyReplace:
		if r.Tonnes.GreaterThan(pos.Holding) {
			return Entry{}, Insufficient("tonnes", r.Tonnes.String(), fmt.Sprintf("is more than the %s t held under %s; a reversal of retired credits is made good from the registry buffer (--remedy buffer)", pos.Holding, c.Code))
		}
		if r.Serials != nil {
			if err := r.Serials.RequireCountIn(c.Registry, r.Tonnes); err != nil {
				return Entry{}, err
			}
			md["serials"] = r.Serials.String()
		} else if free := pos.Holding.Sub(pos.SerializedHolding); r.Tonnes.GreaterThan(free) {
			return Entry{}, Invalid("serials", "", fmt.Sprintf("are required: %s t of the %s t held under %s carry serial numbers; name the reversed range (--serials)", pos.SerializedHolding, pos.Holding, c.Code))
		}
		e.Description = fmt.Sprintf("Reversal of %s t under %s (%s); the supplier replaces them", r.Tonnes, c.Code, md["reason"])
		e.Postings = []Posting{{a.Holding, r.Tonnes.Neg()}, {a.Reversed, r.Tonnes}, {a.Supply, r.Tonnes.Neg()}, {a.Open, r.Tonnes}}
	case RemedyBuffer:
		if r.Serials != nil {
			return Entry{}, Invalid("serials", r.Serials.Label, "are not taken with --remedy buffer: the buyer's credits stand and the registry cancels buffer credits")
		}
		if left := pos.Delivered.Sub(pos.BufferCancelled); r.Tonnes.GreaterThan(left) {
			return Entry{}, Insufficient("tonnes", r.Tonnes.String(), fmt.Sprintf("is more than the %s t delivered under %s and not yet made good from the buffer (%s t delivered, %s t buffer-cancelled)",
				left.Max(Zero), c.Code, pos.Delivered, pos.BufferCancelled))
		}
		e.Description = fmt.Sprintf("Reversal of %s t under %s (%s); made good from the registry buffer pool", r.Tonnes, c.Code, md["reason"])
		e.Postings = []Posting{{a.Buffer, r.Tonnes.Neg()}, {a.BufferCancelled, r.Tonnes}}
	default:
		return Entry{}, Invalid("remedy", string(r.Remedy), "must be replace or buffer")
	}
	e.Metadata = compact(md)
	return e, nil
}

// BuildAmend returns the amendment entry and the schedule that takes effect with it. A change
// of the total moves the difference between the supplier's supply and the open account; a
// change of the schedule alone moves nothing (the one entry without postings).
func BuildAmend(c *Contract, current []ScheduleLine, currentExplicit bool, pos Position, r AmendRequest) (Entry, []ScheduleLine, bool, error) {
	md := map[string]string{}
	var err error
	if md["reason"], err = requireText("reason", r.Reason, maxReason); err != nil {
		return Entry{}, nil, false, err
	}
	if r.Tonnes == nil && r.Schedule == nil {
		return Entry{}, nil, false, Invalid("tonnes", "", "or a schedule is required: an amendment changes the contracted tonnes, the schedule, or both")
	}
	if !pos.TerminatedOn.IsZero() {
		return Entry{}, nil, false, Invalid("contract", c.Code, "was terminated on "+FormatDate(pos.TerminatedOn)+" and can no longer be amended")
	}
	total := pos.Contracted
	if r.Tonnes != nil {
		if !r.Tonnes.IsPositive() {
			return Entry{}, nil, false, Invalid("tonnes", r.Tonnes.String(), "must be greater than zero")
		}
		total = *r.Tonnes
	}
	delta := total.Sub(pos.Contracted)
	if delta.IsNegative() && delta.Neg().GreaterThan(pos.Open.Max(Zero)) {
		return Entry{}, nil, false, Insufficient("tonnes", total.String(), fmt.Sprintf("is below what contract %s has already delivered or cancelled: it can shrink by at most the %s t open, to %s t",
			c.Code, pos.Open.Max(Zero), pos.Contracted.Sub(pos.Open.Max(Zero))))
	}
	schedule, explicit := slices.Clone(r.Schedule), r.Schedule != nil
	if schedule == nil {
		if currentExplicit {
			return Entry{}, nil, false, Invalid("schedule", "", "is required: contract "+c.Code+" has an explicit schedule, so an amendment gives the amended schedule too")
		}
		schedule = EvenSchedule(total, len(c.Years()))
	} else if err := c.checkSchedule(total, schedule); err != nil {
		return Entry{}, nil, false, err
	}
	for i, l := range schedule {
		if l.PricePerTonne != nil {
			if _, err := ParsePrice(fmt.Sprintf("schedule[%d].price_per_tonne", i), l.PricePerTonne.String(), c.Currency); err != nil {
				return Entry{}, nil, false, err
			}
		}
	}
	if err := c.checkInTerm("date", r.Date); err != nil {
		return Entry{}, nil, false, err
	}
	if delta.IsZero() && FormatSchedule(schedule) == FormatSchedule(current) {
		return Entry{}, nil, false, Invalid("schedule", "", "is unchanged and so are the tonnes; the amendment would change nothing")
	}
	md["tonnes_before"], md["tonnes_after"], md["schedule"] = pos.Contracted.String(), total.String(), FormatSchedule(schedule)
	a := c.Accounts()
	e := Entry{Book: c.Code, Kind: KindAmend, EffectiveOn: r.Date, Key: r.Key, Metadata: compact(md)}
	switch delta.Sign() {
	case 1:
		e.Description = fmt.Sprintf("Amendment of %s: contracted tonnes raised by %s t to %s t", c.Code, delta, total)
		e.Postings = []Posting{{a.Supply, delta.Neg()}, {a.Open, delta}}
	case -1:
		e.Description = fmt.Sprintf("Amendment of %s: contracted tonnes lowered by %s t to %s t", c.Code, delta.Neg(), total)
		e.Postings = []Posting{{a.Open, delta}, {a.Supply, delta.Neg()}}
	default:
		e.Description = fmt.Sprintf("Amendment of %s: delivery schedule changed", c.Code)
	}
	return e, schedule, explicit, nil
}

// BuildRevert returns the correcting entry of orig: the same postings with opposite signs,
// effective on the original's date unless another is given, referencing the original.
// Signatures and amendments are changed by amending, retirements are final, and a correction
// is not itself corrected (post the right entry instead).
func BuildRevert(orig Entry, r RevertRequest) (Entry, error) {
	reason, err := requireText("reason", r.Reason, maxReason)
	if err != nil {
		return Entry{}, err
	}
	switch orig.Kind {
	case KindRetire:
		return Entry{}, &FieldError{Field: "entry", Value: orig.ID, Kind: ErrImmutable, Rule: "is a retirement; retirements are final and cannot be reverted"}
	case KindRevert:
		return Entry{}, Invalid("entry", orig.ID, "is itself a correction; record the right entry instead of reverting a revert")
	case KindSign:
		return Entry{}, Invalid("entry", orig.ID, "signs a contract; change the contracted tonnes with an amendment, or terminate the contract")
	case KindAmend:
		return Entry{}, Invalid("entry", orig.ID, "is an amendment; amend again to change the contracted tonnes or schedule back")
	}
	d := orig.EffectiveOn
	if !r.Date.IsZero() {
		if r.Date.Before(orig.EffectiveOn) {
			return Entry{}, Invalid("date", FormatDate(r.Date), "is before the entry it corrects ("+FormatDate(orig.EffectiveOn)+")")
		}
		d = r.Date
	}
	ps := make([]Posting, len(orig.Postings))
	for i, p := range orig.Postings {
		ps[i] = Posting{p.Account, p.Amount.Neg()}
	}
	return Entry{Book: orig.Book, Kind: KindRevert, EffectiveOn: d, Key: r.Key, Reverts: orig.ID, Vintage: orig.Vintage,
		Description: fmt.Sprintf("Correction: reverts %s entry %s (%s)", orig.Kind, orig.ID, reason),
		Metadata:    map[string]string{"reason": reason}, Postings: ps}, nil
}

// CheckRevertHolding refuses the correction e of an entry that moved no serials when it would
// take from c's holding more than the tonnes without serial numbers: a correction moves no
// serial blocks, so the holding would be left with fewer tonnes than its delivered blocks.
func CheckRevertHolding(c *Contract, pos Position, e Entry) error {
	holding := c.Accounts().Holding
	for _, p := range e.Postings {
		if p.Account != holding || !p.Amount.IsNegative() {
			continue
		}
		if free := pos.Holding.Sub(pos.SerializedHolding).Max(Zero); p.Amount.Neg().GreaterThan(free) {
			return Insufficient("entry", e.Reverts, fmt.Sprintf(
				"would take %s t from the holding of contract %s, which holds %s t, %s t of them with serial numbers; a correction moves no serials, so it may take at most the %s t without them",
				p.Amount.Neg(), c.Code, pos.Holding, pos.SerializedHolding, free))
		}
	}
	return nil
}

// FormatSchedule writes a schedule compactly and canonically, for entry metadata:
// "1=15834.000@2024;2=15834.000" (year=tonnes, then @vintage, $price, ~due date when set).
func FormatSchedule(lines []ScheduleLine) string {
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, "%d=%s", l.Year, l.Tonnes)
		if l.Vintage != 0 {
			fmt.Fprintf(&b, "@%d", l.Vintage)
		}
		if l.PricePerTonne != nil {
			fmt.Fprintf(&b, "$%s", l.PricePerTonne.String())
		}
		if !l.DueOn.IsZero() {
			fmt.Fprintf(&b, "~%s", FormatDate(l.DueOn))
		}
	}
	return b.String()
}

// compact drops empty metadata values.
func compact(md map[string]string) map[string]string {
	for k, v := range md {
		if v == "" {
			delete(md, k)
		}
	}
	if len(md) == 0 {
		return nil
	}
	return md
}

// ContractState is a contract with its current schedule and position.
type ContractState struct {
	Contract         Contract       `json:"-"`
	Schedule         []ScheduleLine `json:"-"` // the schedule in force (latest version)
	ScheduleVersion  int            `json:"schedule_version"`
	ScheduleExplicit bool           `json:"schedule_explicit"`
	Position         Position       `json:"position"`
	Entries          int64          `json:"entries"`
}

// Status is terminated, complete (everything contracted was delivered or cancelled) or
// active.
func (s ContractState) Status() string {
	switch {
	case !s.Position.TerminatedOn.IsZero():
		return "terminated"
	case !s.Position.Open.IsPositive():
		return "complete"
	default:
		return "active"
	}
}

// Add counts amount, posted to an account of kind ak by an entry of kind k (for a correction:
// the kind it corrects), into the position.
func (p *Position) Add(ak AccountKind, k Kind, amount Tonnes) {
	switch ak {
	case AccOpen:
		p.Open = p.Open.Add(amount)
		switch k {
		case KindSign, KindAmend:
			p.Contracted = p.Contracted.Add(amount)
		case KindReverse:
			p.Replacements = p.Replacements.Add(amount)
		}
	case AccHolding:
		p.Holding = p.Holding.Add(amount)
		if k == KindDeliver {
			p.Delivered = p.Delivered.Add(amount)
		}
	case AccRetired:
		p.Retired = p.Retired.Add(amount)
		if k == KindDeliver {
			p.Delivered = p.Delivered.Add(amount)
		}
	case AccCancelled:
		p.Cancelled = p.Cancelled.Add(amount)
	case AccReversed:
		p.Reversed = p.Reversed.Add(amount)
	case AccBufferCancelled:
		p.BufferCancelled = p.BufferCancelled.Add(amount)
	}
}
