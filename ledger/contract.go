package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// DeliveryMode says what a delivery does with the credits.
type DeliveryMode string

const (
	DeliverTransfer         DeliveryMode = "transfer"           // into the buyer's holding
	DeliverRetireOnDelivery DeliveryMode = "retire_on_delivery" // retired on the buyer's behalf at once
)

// Durability is how long the removal is expected to last: a number of years, or a class such
// as "100+" (at least 100 years). Zero Years means not stated.
type Durability struct {
	Years   int
	AtLeast bool // "100+": the years are a lower bound
}

func (d Durability) String() string {
	switch {
	case d.Years == 0:
		return ""
	case d.AtLeast:
		return strconv.Itoa(d.Years) + "+"
	default:
		return strconv.Itoa(d.Years)
	}
}

// Class is the durability bucket reports group by.
func (d Durability) Class() string {
	switch {
	case d.Years == 0:
		return "unknown"
	case d.Years >= 1000:
		return "1000+ years"
	case d.Years >= 100:
		return "100-999 years"
	default:
		return "under 100 years"
	}
}

// MarshalJSON writes a number of years, or a string such as "100+".
func (d Durability) MarshalJSON() ([]byte, error) {
	if d.AtLeast {
		return json.Marshal(d.String())
	}
	if d.Years == 0 {
		return []byte("null"), nil
	}
	return json.Marshal(d.Years)
}

// UnmarshalJSON reads a whole number of years (100) or a class string ("100", "100+").
func (d *Durability) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*d = Durability{}
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return Invalid("durability_years", string(b), "is not a valid JSON string")
		}
	}
	v, err := ParseDurability(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDurability parses "100", "100+" or "" (not stated).
func ParseDurability(s string) (Durability, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Durability{}, nil
	}
	plus := strings.HasSuffix(s, "+")
	n, err := strconv.Atoi(strings.TrimSuffix(s, "+"))
	if err != nil || n < 1 || n > 100000 || s[0] < '0' || s[0] > '9' {
		return Durability{}, Invalid("durability_years", s, "must be a whole number of years from 1 to 100000, optionally followed by '+' (such as 100+)")
	}
	return Durability{Years: n, AtLeast: plus}, nil
}

// ScheduleLine is what a contract year is to deliver: the columns of the OSCAR offtake
// agreement's delivery schedule.
type ScheduleLine struct {
	Year          int              `json:"year"`
	Tonnes        Tonnes           `json:"tonnes"`
	Vintage       int              `json:"vintage,omitempty"`
	PricePerTonne *decimal.Decimal `json:"price_per_tonne,omitempty"`
	DueOn         time.Time        `json:"due_on"`
}

// Contract is an offtake contract's terms as signed. The contracted tonnes and the schedule
// change later only by amend entries; the rest never changes.
//
// RegistryProjects are the registry's ids of the projects the contract's credits come from,
// as the registry writes them in its exports ("CAR1335", "1340", "GS11603"); empty when not
// named. reconcile then compares only these projects' rows of an export. In the canonical
// terms JSON only when not empty, so the terms digest of a contract naming none is what it
// was before the field existed. RegistryAccounts are, the same way, the registry accounts
// (account holders, as the registry's exports name them: the Reserve's Account Holder,
// Isometric's owner) the contract's credits are held and retired in; reconcile then compares
// only rows of those accounts, where a row names its account.
type Contract struct {
	Code                  string
	Buyer                 string
	Supplier              string
	Project               string
	Method                Method
	Country               string
	Region                string
	Registry              string   // a registry code, "" when not public
	RegistryProjects      []string // the registry's project ids (see above)
	RegistryAccounts      []string // the registry accounts (see above)
	Standard              string
	Durability            Durability
	TermStart             time.Time
	TermEnd               time.Time
	SignedOn              time.Time
	Tonnes                Tonnes
	PricePerTonne         *decimal.Decimal
	Currency              string
	DeliveryMode          DeliveryMode
	OverDeliveryTolerance Tonnes
	Schedule              []ScheduleLine // always complete: an even split when none was given
	ScheduleGiven         bool           // whether the schedule was explicit
	Notes                 string
}

// contractJSON is the stable interface of contract files: snake_case, decimals as strings,
// dates as YYYY-MM-DD.
type contractJSON struct {
	Code                  *string            `json:"code"`
	Buyer                 *string            `json:"buyer"`
	Supplier              *string            `json:"supplier"`
	Project               *string            `json:"project"`
	Method                *string            `json:"method"`
	Country               *string            `json:"country"`
	Region                string             `json:"region"`
	Registry              string             `json:"registry"`
	RegistryProjects      []string           `json:"registry_projects"`
	RegistryAccounts      []string           `json:"registry_accounts"`
	Standard              string             `json:"standard"`
	DurabilityYears       Durability         `json:"durability_years"`
	TermStart             *string            `json:"term_start"`
	TermEnd               *string            `json:"term_end"`
	SignedOn              *string            `json:"signed_on"`
	Tonnes                *string            `json:"tonnes"`
	PricePerTonne         *string            `json:"price_per_tonne"`
	Currency              string             `json:"currency"`
	DeliveryMode          string             `json:"delivery_mode"`
	OverDeliveryTolerance *string            `json:"over_delivery_tolerance"`
	Schedule              []scheduleLineJSON `json:"schedule"`
	Notes                 string             `json:"notes"`
}

type scheduleLineJSON struct {
	Year          *int    `json:"year"`
	Tonnes        *string `json:"tonnes"`
	Vintage       *int    `json:"vintage"`
	PricePerTonne *string `json:"price_per_tonne"`
	DueOn         *string `json:"due_on"`
}

// maxJSONDoc bounds a contract's or a schedule's JSON (a fifty-year schedule is a few
// kilobytes); a larger one is refused as such, not read in part.
const maxJSONDoc = 1 << 20

// ParseContractJSON reads one contract from JSON. Unknown fields, missing required fields
// and malformed values are refused with the field named.
func ParseContractJSON(r io.Reader) (Contract, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxJSONDoc+1))
	switch {
	case err != nil:
		return Contract{}, Invalid("contract", "", "could not be read: "+err.Error())
	case len(b) > maxJSONDoc:
		return Contract{}, Invalid("contract", "", "is larger than 1 MiB")
	}
	if msg := jsonTextError(b); msg != "" {
		return Contract{}, Invalid("contract", "", msg)
	}
	// encoding/json matches member names without regard to case and keeps the last of a
	// repeated member; a contract's terms are signed as written, so each member must be named
	// exactly and once.
	if err := exactMembers(b, reflect.TypeFor[contractJSON](), "contract", ""); err != nil {
		return Contract{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j contractJSON
	if err := dec.Decode(&j); err != nil {
		return Contract{}, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Contract{}, Invalid("contract", "", "has content after the contract object; give exactly one JSON object")
	}
	return j.contract()
}

// ExactMembers checks that the JSON object b names each member of v's type (a struct, read
// with encoding/json) exactly and once; what names the object in messages.
func ExactMembers(b []byte, v any, what string) error {
	return exactMembers(b, reflect.TypeOf(v), what, "")
}

// exactMembers checks, in the JSON b (an object when t is a struct type), that every member of
// an object read into a struct is named exactly as one of its fields' JSON names, and given
// once, down through lists of objects. Malformed JSON and members of no field are left to
// the decoder, which names them.
func exactMembers(b []byte, t reflect.Type, what, path string) error {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return nil // a value that reads itself (durability_years)
	}
	switch t.Kind() {
	case reflect.Slice:
		var items []json.RawMessage
		if json.Unmarshal(b, &items) != nil {
			return nil
		}
		for i, it := range items {
			if err := exactMembers(it, t.Elem(), what, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" {
				fields[name] = t.Field(i).Type
			}
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return nil
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			name, ok := tok.(string)
			if err != nil || !ok {
				return nil
			}
			var v json.RawMessage
			if dec.Decode(&v) != nil {
				return nil
			}
			field := name
			if path != "" {
				field = path + "." + name
			}
			ft, known := fields[name]
			switch {
			case seen[name]:
				return Invalid(field, "", "is given twice; give each member of the "+what+" once")
			case !known:
				for f := range fields {
					if strings.EqualFold(f, name) {
						return Invalid(field, "", fmt.Sprintf("is not a field of the %s: member names are exact (write %q)", what, f))
					}
				}
				continue // the decoder refuses it, naming the fields
			}
			seen[name] = true
			if err := exactMembers(v, ft, what, field); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonError turns encoding/json's errors into field errors.
func jsonError(err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return err
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "contract"
		}
		return Invalid(field, "", "is a JSON "+te.Value+" where "+jsonKind(te.Type)+" is expected")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return Invalid("contract", "", fmt.Sprintf("is not valid JSON at byte %d: %v", se.Offset, se))
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		const fields = "(the fields are code, buyer, supplier, project, method, country, region, registry, registry_projects, registry_accounts, standard, durability_years, term_start, term_end, signed_on, tonnes, price_per_tonne, currency, delivery_mode, over_delivery_tolerance, schedule, notes)"
		name, err := strconv.Unquote(f)
		if err != nil {
			name = strings.Trim(f, `"`)
		}
		if name == "" {
			return Invalid("contract", "", `has a member with no name (""), which is not a contract field `+fields)
		}
		return Invalid(name, "", "is not a contract field "+fields)
	}
	if errors.Is(err, io.EOF) {
		return Invalid("contract", "", "is empty; give a JSON object")
	}
	return Invalid("contract", "", "could not be read as JSON: "+msg)
}

// jsonKind names, for a user, the kind of JSON value a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[Tonnes](), reflect.TypeFor[Durability]():
		return "a string"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	}
	return "another kind of value"
}

func (j contractJSON) contract() (Contract, error) {
	var c Contract
	req := func(field string, p *string) (string, error) {
		if p == nil || strings.TrimSpace(*p) == "" {
			return "", Invalid(field, "", "is required")
		}
		return strings.TrimSpace(*p), nil
	}
	var err error
	if c.Code, err = req("code", j.Code); err != nil {
		return c, err
	}
	if c.Buyer, err = req("buyer", j.Buyer); err != nil {
		return c, err
	}
	if c.Supplier, err = req("supplier", j.Supplier); err != nil {
		return c, err
	}
	if c.Project, err = req("project", j.Project); err != nil {
		return c, err
	}
	m, err := req("method", j.Method)
	if err != nil {
		return c, err
	}
	if c.Method, err = ParseMethod(m); err != nil {
		return c, err
	}
	if c.Country, err = req("country", j.Country); err != nil {
		return c, err
	}
	c.Region, c.Standard, c.Notes, c.Currency = strings.TrimSpace(j.Region), strings.TrimSpace(j.Standard), j.Notes, strings.ToUpper(strings.TrimSpace(j.Currency))
	reg, ok := NormalizeRegistry(j.Registry)
	if !ok {
		return c, Invalid("registry", j.Registry, "is not a known registry ("+strings.Join(RegistryCodes(), ", ")+", or empty when not public)")
	}
	c.Registry = reg
	for _, p := range j.RegistryProjects {
		c.RegistryProjects = append(c.RegistryProjects, strings.TrimSpace(p))
	}
	for _, a := range j.RegistryAccounts {
		c.RegistryAccounts = append(c.RegistryAccounts, strings.TrimSpace(a))
	}
	c.Durability = j.DurabilityYears
	for _, d := range []struct {
		field string
		p     *string
		dst   *time.Time
	}{{"term_start", j.TermStart, &c.TermStart}, {"term_end", j.TermEnd, &c.TermEnd}, {"signed_on", j.SignedOn, &c.SignedOn}} {
		s, err := req(d.field, d.p)
		if err != nil {
			return c, err
		}
		if *d.dst, err = ParseDate(d.field, s); err != nil {
			return c, err
		}
	}
	t, err := req("tonnes", j.Tonnes)
	if err != nil {
		return c, err
	}
	if c.Tonnes, err = ParsePositiveTonnes(t); err != nil {
		return c, Relabel(err, "tonnes")
	}
	if j.PricePerTonne != nil {
		p, err := ParsePrice("price_per_tonne", *j.PricePerTonne, c.Currency)
		if err != nil {
			return c, err
		}
		c.PricePerTonne = &p
	}
	c.DeliveryMode = DeliveryMode(strings.TrimSpace(j.DeliveryMode))
	if c.DeliveryMode == "" {
		c.DeliveryMode = DeliverTransfer
	}
	if j.OverDeliveryTolerance != nil {
		if c.OverDeliveryTolerance, err = ParseTonnes(*j.OverDeliveryTolerance); err != nil {
			return c, Relabel(err, "over_delivery_tolerance")
		}
	}
	if j.Schedule != nil {
		c.ScheduleGiven = true
		for i, l := range j.Schedule {
			line, err := l.line(i, c.Currency)
			if err != nil {
				return c, err
			}
			c.Schedule = append(c.Schedule, line)
		}
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

func (l scheduleLineJSON) line(i int, currency string) (ScheduleLine, error) {
	f := func(name string) string { return fmt.Sprintf("schedule[%d].%s", i, name) }
	var out ScheduleLine
	if l.Year == nil {
		return out, Invalid(f("year"), "", "is required (1 for the first contract year)")
	}
	out.Year = *l.Year
	if l.Tonnes == nil {
		return out, Invalid(f("tonnes"), "", "is required")
	}
	t, err := ParsePositiveTonnes(*l.Tonnes)
	if err != nil {
		return out, Relabel(err, f("tonnes"))
	}
	out.Tonnes = t
	if l.Vintage != nil {
		out.Vintage = *l.Vintage
		if out.Vintage < 1990 || out.Vintage > 2200 {
			return out, Invalid(f("vintage"), strconv.Itoa(out.Vintage), "is not a year between 1990 and 2200")
		}
	}
	if l.PricePerTonne != nil {
		p, err := ParsePrice(f("price_per_tonne"), *l.PricePerTonne, currency)
		if err != nil {
			return out, err
		}
		out.PricePerTonne = &p
	}
	if l.DueOn != nil {
		if out.DueOn, err = ParseDate(f("due_on"), *l.DueOn); err != nil {
			return out, err
		}
	}
	return out, nil
}

// ParsePrice parses a price per tonne in a currency: a plain non-negative decimal with at
// most the currency's minor-unit digits (2 for USD, 0 for JPY).
//
// currency "*" checks only the grammar; the currency is checked when it becomes known.
func ParsePrice(field, s, currency string) (decimal.Decimal, error) {
	maxScale, why := int32(8), "(prices are kept to 8 places before the currency is known)"
	if currency != "*" {
		if currency == "" {
			return decimal.Zero, Invalid("currency", "", "is required when a price is given (an ISO 4217 code such as USD)")
		}
		scale, ok := CurrencyScale(currency)
		if !ok {
			return decimal.Zero, Invalid("currency", currency, "is not a supported ISO 4217 currency code")
		}
		maxScale, why = scale, "(the minor unit of "+currency+")"
	}
	d, err := parseDecimal(field, s, int(maxScale), why)
	if err != nil {
		return decimal.Zero, err
	}
	if d.IsNegative() {
		return decimal.Zero, Invalid(field, s, "must not be negative")
	}
	return d, nil
}

// Validate checks the contract's terms and completes its schedule (an even split over the
// contract years when none was given).
func (c *Contract) Validate() error {
	if err := ValidateCode("code", c.Code); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"buyer", c.Buyer}, {"supplier", c.Supplier}, {"project", c.Project},
		{"region", c.Region}, {"standard", c.Standard}} {
		if err := checkText(f.name, f.v, 200); err != nil {
			return err
		}
	}
	if err := checkText("notes", c.Notes, 2000); err != nil {
		return err
	}
	if c.Buyer == "" || c.Supplier == "" || c.Project == "" {
		return Invalid("buyer", "", "buyer, supplier and project are required")
	}
	if err := checkRegistryList("registry_projects", "project", "give the registry's project id as its exports write it (such as CAR1335, 1340 or GS11603)", c.Registry, c.RegistryProjects); err != nil {
		return err
	}
	if err := checkRegistryList("registry_accounts", "account", "give the account holder as the registry's exports name it (such as the Reserve's Account Holder or Isometric's owner)", c.Registry, c.RegistryAccounts); err != nil {
		return err
	}
	if !slices.Contains(Methods, c.Method) {
		return Invalid("method", string(c.Method), "is not a method")
	}
	if !ValidCountry(c.Country) {
		return Invalid("country", c.Country, "is not an ISO 3166-1 alpha-2 country code (such as MX or US)")
	}
	if c.TermEnd.Before(c.TermStart) {
		return Invalid("term_end", FormatDate(c.TermEnd), "is before term_start "+FormatDate(c.TermStart)+"; a term ends after it starts")
	}
	if c.TermEnd.After(c.TermStart.AddDate(50, 0, 0)) {
		return Invalid("term_end", FormatDate(c.TermEnd), "is more than 50 years after term_start")
	}
	if c.SignedOn.After(c.TermEnd) {
		return Invalid("signed_on", FormatDate(c.SignedOn), "is after term_end "+FormatDate(c.TermEnd))
	}
	if !c.Tonnes.IsPositive() {
		return Invalid("tonnes", c.Tonnes.String(), "must be greater than zero")
	}
	if c.OverDeliveryTolerance.IsNegative() {
		return Invalid("over_delivery_tolerance", c.OverDeliveryTolerance.String(), "must not be negative")
	}
	if c.DeliveryMode != DeliverTransfer && c.DeliveryMode != DeliverRetireOnDelivery {
		return Invalid("delivery_mode", string(c.DeliveryMode), "must be transfer or retire_on_delivery")
	}
	if c.Currency != "" {
		if _, ok := CurrencyScale(c.Currency); !ok {
			return Invalid("currency", c.Currency, "is not a supported ISO 4217 currency code")
		}
	}
	if !c.ScheduleGiven {
		c.Schedule = EvenSchedule(c.Tonnes, len(c.Years()))
		return nil
	}
	return c.checkSchedule(c.Tonnes, c.Schedule)
}

// MaxRegistryProjects is how many registry projects (and how many registry accounts) a
// contract may name.
const MaxRegistryProjects = 100

// checkRegistryList checks a contract's registry project ids or accounts (list, each a what):
// each a non-empty single line of at most 100 characters without surrounding spaces, none
// twice (without regard to case), and only on a contract that names its registry.
func checkRegistryList(list, what, hint, registry string, ps []string) error {
	if len(ps) == 0 {
		return nil
	}
	if registry == "" {
		return Invalid(list, strings.Join(ps, ", "), "names registry "+what+"s, but the contract names no registry; give the registry too")
	}
	if len(ps) > MaxRegistryProjects {
		return Invalid(list, strconv.Itoa(len(ps)), fmt.Sprintf("names more than %d %ss", MaxRegistryProjects, what))
	}
	seen := map[string]int{}
	for i, p := range ps {
		field := fmt.Sprintf("%s[%d]", list, i)
		if strings.TrimSpace(p) == "" {
			return Invalid(field, p, "is empty; "+hint)
		}
		if p != strings.TrimSpace(p) || strings.ContainsAny(p, "\r\n\t") {
			return Invalid(field, p, "has surrounding spaces or a line break; give the "+what+" alone")
		}
		if err := checkText(field, p, 100); err != nil {
			return err
		}
		k := strings.ToUpper(p)
		if j, dup := seen[k]; dup {
			return Invalid(field, p, fmt.Sprintf("is %s[%d] again; name each %s once", list, j, what))
		}
		seen[k] = i
	}
	return nil
}

// checkSchedule checks that lines name distinct contract years of this contract and add up
// exactly to total.
func (c *Contract) checkSchedule(total Tonnes, lines []ScheduleLine) error {
	n := len(c.Years())
	if len(lines) == 0 {
		return Invalid("schedule", "", "is empty; give at least one year, or leave the schedule out for an even split")
	}
	seen := map[int]bool{}
	var sum Tonnes
	for i, l := range lines {
		if l.Year < 1 || l.Year > n {
			return Invalid(fmt.Sprintf("schedule[%d].year", i), strconv.Itoa(l.Year), fmt.Sprintf("is not a contract year of this term (1 to %d)", n))
		}
		if seen[l.Year] {
			return Invalid(fmt.Sprintf("schedule[%d].year", i), strconv.Itoa(l.Year), "appears twice")
		}
		seen[l.Year] = true
		if !l.Tonnes.IsPositive() {
			return Invalid(fmt.Sprintf("schedule[%d].tonnes", i), l.Tonnes.String(), "must be greater than zero")
		}
		sum = sum.Add(l.Tonnes)
	}
	if !sum.Equal(total) {
		return Invalid("schedule", sum.String(), fmt.Sprintf("is what the schedule's years add up to; they must add up exactly to the contracted %s t", total))
	}
	slices.SortFunc(lines, func(a, b ScheduleLine) int { return a.Year - b.Year })
	return nil
}

// ContractYear is one year of a contract's term: [Start, End], both inclusive.
type ContractYear struct {
	N     int       `json:"year"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Years returns the contract years: year n runs from the term start's (n-1)th anniversary to
// the day before its nth; the last year ends with the term. An anniversary of 29 February
// falls on 28 February in other years (PostgreSQL's date arithmetic, which the database's
// contract_year function uses, does the same).
func (c *Contract) Years() []ContractYear {
	var ys []ContractYear
	for n := 1; ; n++ {
		start := AddYears(c.TermStart, n-1)
		if start.After(c.TermEnd) {
			break
		}
		end := AddYears(c.TermStart, n).AddDate(0, 0, -1)
		if end.After(c.TermEnd) {
			end = c.TermEnd
		}
		ys = append(ys, ContractYear{N: n, Start: start, End: end})
	}
	return ys
}

// AddYears adds n years to a civil date, clamping 29 February to 28 February.
func AddYears(t time.Time, n int) time.Time {
	y, m, d := t.Year()+n, t.Month(), t.Day()
	if last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day(); d > last {
		d = last
	}
	return Date(y, m, d)
}

// YearOf returns the contract year a date falls in; a date after the term belongs to the last
// year (a late delivery), a date before it to none (0).
func (c *Contract) YearOf(d time.Time) int {
	ys := c.Years()
	if d.Before(c.TermStart) {
		return 0
	}
	for _, y := range ys {
		if !d.After(y.End) {
			return y.N
		}
	}
	return len(ys)
}

// EvenSchedule splits total over n contract years so that the parts add up exactly: in whole
// tonnes when the total is a whole number of tonnes, else in kilograms; the remainder units go
// one each to the earliest years. 95,000 t over 6 years: 15,834 t in years 1 and 2, 15,833 t
// in years 3 to 6.
func EvenSchedule(total Tonnes, n int) []ScheduleLine {
	if n < 1 {
		return nil
	}
	unit := int64(1000) // kg per unit
	kg := total.Kg()
	if kg%1000 != 0 {
		unit = 1
	}
	units := kg / unit
	q, r := units/int64(n), units%int64(n)
	lines := make([]ScheduleLine, 0, n)
	for i := 0; i < n; i++ {
		u := q
		if int64(i) < r {
			u++
		}
		if u == 0 {
			continue
		}
		lines = append(lines, ScheduleLine{Year: i + 1, Tonnes: TonnesFromKg(u * unit)})
	}
	return lines
}

// ScheduledFor returns the scheduled tonnes of contract year n.
func ScheduledFor(lines []ScheduleLine, n int) Tonnes {
	for _, l := range lines {
		if l.Year == n {
			return l.Tonnes
		}
	}
	return Zero
}

// Accounts returns the contract's accounts. Every tonne under the contract is in exactly one
// of them; they all belong to the contract's book, so no entry ever crosses contracts.
func (c *Contract) Accounts() ContractAccounts {
	b, s, r := Slug(c.Buyer), Slug(c.Supplier), c.Registry
	if r == "" {
		r = "unknown"
	}
	return ContractAccounts{
		Supply:          "supplier:" + s + ":supply:" + c.Code,
		Open:            "contract:" + c.Code + ":open",
		Cancelled:       "contract:" + c.Code + ":cancelled",
		Holding:         "buyer:" + b + ":holding:" + c.Code,
		Retired:         "buyer:" + b + ":retired:" + c.Code,
		Reversed:        "buyer:" + b + ":reversed:" + c.Code,
		Buffer:          "registry:" + r + ":buffer:" + c.Code,
		BufferCancelled: "registry:" + r + ":buffer-cancelled:" + c.Code,
	}
}

// ContractAccounts names a contract's accounts.
type ContractAccounts struct {
	Supply, Open, Cancelled, Holding, Retired, Reversed, Buffer, BufferCancelled string
}

// List returns the accounts with their kinds and floors.
func (a ContractAccounts) List(c *Contract) []Account {
	z := Zero
	openFloor := c.OverDeliveryTolerance.Neg()
	return []Account{
		{Code: a.Supply, Book: c.Code, Kind: AccSupply},
		{Code: a.Open, Book: c.Code, Kind: AccOpen, Floor: &openFloor},
		{Code: a.Cancelled, Book: c.Code, Kind: AccCancelled, Floor: &z},
		{Code: a.Holding, Book: c.Code, Kind: AccHolding, Floor: &z},
		{Code: a.Retired, Book: c.Code, Kind: AccRetired, Floor: &z},
		{Code: a.Reversed, Book: c.Code, Kind: AccReversed, Floor: &z},
		{Code: a.Buffer, Book: c.Code, Kind: AccBuffer},
		{Code: a.BufferCancelled, Book: c.Code, Kind: AccBufferCancelled, Floor: &z},
	}
}

// MarshalJSON writes the contract in the stable contract-file form.
func (c Contract) MarshalJSON() ([]byte, error) {
	type line struct {
		Year          int     `json:"year"`
		Tonnes        Tonnes  `json:"tonnes"`
		Vintage       *int    `json:"vintage,omitempty"`
		PricePerTonne *string `json:"price_per_tonne,omitempty"`
		DueOn         string  `json:"due_on,omitempty"`
	}
	var sched []line
	for _, l := range c.Schedule {
		x := line{Year: l.Year, Tonnes: l.Tonnes, DueOn: FormatDate(l.DueOn)}
		if l.Vintage != 0 {
			v := l.Vintage
			x.Vintage = &v
		}
		if l.PricePerTonne != nil {
			p := l.PricePerTonne.String()
			x.PricePerTonne = &p
		}
		sched = append(sched, x)
	}
	var price *string
	if c.PricePerTonne != nil {
		p := c.PricePerTonne.String()
		price = &p
	}
	return json.Marshal(struct {
		Code                  string       `json:"code"`
		Buyer                 string       `json:"buyer"`
		Supplier              string       `json:"supplier"`
		Project               string       `json:"project"`
		Method                Method       `json:"method"`
		Country               string       `json:"country"`
		Region                string       `json:"region"`
		Registry              string       `json:"registry"`
		RegistryProjects      []string     `json:"registry_projects,omitempty"`
		RegistryAccounts      []string     `json:"registry_accounts,omitempty"`
		Standard              string       `json:"standard"`
		DurabilityYears       Durability   `json:"durability_years"`
		TermStart             string       `json:"term_start"`
		TermEnd               string       `json:"term_end"`
		SignedOn              string       `json:"signed_on"`
		Tonnes                Tonnes       `json:"tonnes"`
		PricePerTonne         *string      `json:"price_per_tonne"`
		Currency              string       `json:"currency"`
		DeliveryMode          DeliveryMode `json:"delivery_mode"`
		OverDeliveryTolerance Tonnes       `json:"over_delivery_tolerance"`
		Schedule              []line       `json:"schedule"`
		Notes                 string       `json:"notes,omitempty"`
	}{c.Code, c.Buyer, c.Supplier, c.Project, c.Method, c.Country, c.Region, c.Registry, c.RegistryProjects, c.RegistryAccounts, c.Standard,
		c.Durability, FormatDate(c.TermStart), FormatDate(c.TermEnd), FormatDate(c.SignedOn), c.Tonnes, price,
		c.Currency, c.DeliveryMode, c.OverDeliveryTolerance, sched, c.Notes})
}

// TermsDigest is the sha256 of the contract's terms as signed (its canonical JSON). The sign
// entry carries it, so the audit can prove the stored terms were not altered.
func (c Contract) TermsDigest() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	var buf bytes.Buffer
	buf.Write(b)
	h := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(h[:])
}

// ParseScheduleJSON reads a schedule: a JSON list of {year, tonnes, vintage, price_per_tonne,
// due_on}. Prices are checked against the contract's currency when the schedule is applied.
func ParseScheduleJSON(r io.Reader) ([]ScheduleLine, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxJSONDoc+1))
	switch {
	case err != nil:
		return nil, Invalid("schedule", "", "could not be read: "+err.Error())
	case len(b) > maxJSONDoc:
		return nil, Invalid("schedule", "", "is larger than 1 MiB")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var js []scheduleLineJSON
	if err := dec.Decode(&js); err != nil {
		return nil, Relabel(jsonError(err), "schedule")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, Invalid("schedule", "", "has content after the list; give exactly one JSON list")
	}
	out := make([]ScheduleLine, 0, len(js))
	for i, l := range js {
		line, err := l.line(i, "*")
		if err != nil {
			return nil, err
		}
		out = append(out, line)
	}
	return out, nil
}
