package registry

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/carbonledger/carbonledger/ledger"
)

// Retirement is what the ledger's retirement of a block says, beyond its state: the
// beneficiary, reason and claim of the entry that retired it (a retire entry, or a delivery
// retired on delivery, whose beneficiary is the buyer). Its date is the block's Date, the
// entry's effective date.
type Retirement struct {
	Beneficiary string
	Reason      string
	Claim       string
}

// The facts of a retirement compared with the ledger's.
const (
	FieldBeneficiary = "beneficiary"
	FieldDate        = "date"
	FieldQuantity    = "quantity"
	FieldPurpose     = "purpose"
)

// Outcome is what comparing one fact of a retirement gave.
type Outcome string

// Outcomes.
const (
	// Same: both sides state the fact and agree (under the field's rule).
	Same Outcome = "same"
	// Differs: both sides state the fact and disagree; the row is a discrepancy.
	Differs Outcome = "differs"
	// NotCompared: one side does not state the fact (an export with no beneficiary column, a
	// row that leaves it empty): neither a match nor a difference.
	NotCompared Outcome = "not_compared"
	// Information: both sides state the fact, worded differently; shown, not a discrepancy
	// (a retirement's purpose, whose wording no rule can judge).
	Information Outcome = "information"
)

// Fact is one fact of a retirement row compared with the ledger's retirement of its serials.
type Fact struct {
	Field    string  `json:"field"`
	Outcome  Outcome `json:"outcome"`
	Registry string  `json:"registry"`
	Ledger   string  `json:"ledger"`
	Note     string  `json:"note,omitempty"`
}

// Differences are the facts that differ.
func (it Item) Differences() []Fact {
	var out []Fact
	for _, f := range it.Facts {
		if f.Outcome == Differs {
			out = append(out, f)
		}
	}
	return out
}

// normText compares names and texts without regard to case or spacing.
func normText(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

var onBehalfOf = regexp.MustCompile(`(?i)\bon\s+behalf\s+of\s+(.+)`)

// registryBeneficiary is the beneficiary a retirement row names, and whether the row's text
// continues after the name (prefix: the Reserve's "Retired on behalf of Kinaxis Inc. F2024
// period", where the name's end is not marked). When the row names none, why says so.
func (r Record) registryBeneficiary() (name string, prefix bool, why string) {
	switch r.Kind {
	case CARRetirements:
		// the Account Holder is the account the credits were retired from, not the
		// beneficiary; the beneficiary is in the Retirement Reason Details, "on behalf of X"
		if m := onBehalfOf.FindStringSubmatch(r.Details); m != nil {
			name = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(m[1]), ":"))
			name = strings.TrimPrefix(name, "the ")
			if name != "" {
				return name, true, ""
			}
		}
		return "", false, fmt.Sprintf("the Reserve's export has no beneficiary column and this row's Retirement Reason Details do not say \"on behalf of ...\" (account holder %q)", r.Beneficiary)
	case VerraTransactions:
		if r.Beneficiary == "" {
			return "", false, "the row's Retirement Beneficiary is empty"
		}
	case GSRetirements:
		if r.Beneficiary == "" {
			return "", false, "the row's Using Entity is empty"
		}
	case IsometricRetirements:
		// beneficiary.name, not owner.name (the account the credits were retired from)
		if r.Beneficiary == "" {
			return "", false, fmt.Sprintf("the row's beneficiary.name is empty (owner %q)", r.Owner)
		}
	case PuroTransactions:
		// retirementDetails.beneficiaryName, not accountHolderName (the account retired from);
		// Puro may hide the name for up to 12 months after the retirement
		switch {
		case r.Beneficiary != "":
		case r.BeneficiaryHidden != "":
			return "", false, fmt.Sprintf("the registry hides the beneficiary %s, as its beneficiaryHiddenUntil says", r.BeneficiaryHidden)
		default:
			return "", false, fmt.Sprintf("the row's retirementDetails.beneficiaryName is empty (account holder %q)", r.Owner)
		}
	default:
		return "", false, "this kind of export names no beneficiary"
	}
	return r.Beneficiary, false, ""
}

// sameBeneficiary applies the rule: the names are equal without regard to case or spacing;
// where the registry's text continues after the name (prefix), the ledger's name must be
// the text's beginning, whole words.
func sameBeneficiary(registry, led string, prefix bool) bool {
	r, l := normText(registry), normText(led)
	if l == "" {
		return false
	}
	if r == l {
		return true
	}
	if !prefix || !strings.HasPrefix(r, l) {
		return false
	}
	next := []rune(r[len(l):])[0]
	return !unicode.IsLetter(next) && !unicode.IsDigit(next)
}

// registryPurpose is the row's purpose: its reason and details (Verra's Retirement Reason and
// Details, the Reserve's Retirement Reason and Details, Gold Standard's Use Case and Note,
// Puro's usageType and retirementPurpose).
func (r Record) registryPurpose() string {
	var parts []string
	for _, s := range []string{r.Reason, r.Details} {
		if s = strings.Join(strings.Fields(s), " "); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ": ")
}

// distinct appends s to list unless it is there.
func distinct(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// compareRetirement compares a retirement row with the ledger's retirement of its serials:
// every block overlapping the row that the ledger retired. The date must be the same day; the
// beneficiary the same name (see sameBeneficiary); the quantity the ledger retired inside the
// row the row's quantity; the purpose is shown, and is never a difference. Blocks retired
// without their retirement facts (Retirement nil) leave the date, beneficiary and purpose
// uncompared.
func compareRetirement(it *Item) {
	rec := it.Record
	if rec.Status != StatusRetired {
		return
	}
	a, b := rec.Serials.First, rec.Serials.Last
	var retired []LedgerRange
	var inside int64
	for _, l := range it.Ledger {
		if l.State == StateRetired {
			retired = append(retired, l)
			inside += min(l.Last, b) - max(l.First, a) + 1
		}
	}
	if len(retired) == 0 {
		return
	}
	q := Fact{Field: FieldQuantity, Outcome: Same, Registry: fmt.Sprint(rec.Count), Ledger: fmt.Sprint(inside)}
	if inside != rec.Count {
		q.Outcome = Differs
		q.Note = fmt.Sprintf("the ledger retired %d of the row's serials, the registry %d credits", inside, rec.Count)
	}

	var dates, bens, purposes, without []string
	for _, l := range retired {
		if l.Retirement == nil {
			without = append(without, serialSpan(rec.Serials.Prefix, max(l.First, a), min(l.Last, b)))
			continue
		}
		dates = distinct(dates, ledger.FormatDate(l.Date))
		bens = distinct(bens, l.Retirement.Beneficiary)
		p := strings.Join(strings.Fields(l.Retirement.Reason), " ")
		if c := strings.TrimSpace(l.Retirement.Claim); c != "" {
			p += " (claim " + c + ")"
		}
		purposes = distinct(purposes, p)
	}
	if len(dates) == 0 {
		note := "the ledger's retirement of these serials carries no retirement facts"
		it.Facts = []Fact{q,
			{Field: FieldDate, Outcome: NotCompared, Registry: ledger.FormatDate(rec.Date), Note: note},
			{Field: FieldBeneficiary, Outcome: NotCompared, Note: note},
			{Field: FieldPurpose, Outcome: NotCompared, Registry: rec.registryPurpose(), Note: note}}
		return
	}
	partly := ""
	if len(without) > 0 {
		partly = "; serials " + strings.Join(without, ", ") + " were retired without retirement facts and are not compared"
	}

	// date: the same day, no tolerance
	d := Fact{Field: FieldDate, Outcome: Same, Registry: ledger.FormatDate(rec.Date), Ledger: strings.Join(dates, "; "), Note: strings.TrimPrefix(partly, "; ")}
	for _, x := range dates {
		if x != d.Registry {
			d.Outcome = Differs
			d.Note = "the ledger's retirement must be dated the day the registry retired the credits" + partly
		}
	}

	// beneficiary
	ben := Fact{Field: FieldBeneficiary, Ledger: strings.Join(bens, "; ")}
	name, prefix, why := rec.registryBeneficiary()
	switch {
	case name == "":
		ben.Outcome, ben.Note = NotCompared, why
	case slicesAll(bens, func(l string) bool { return l == "" }):
		ben.Registry, ben.Outcome, ben.Note = name, NotCompared, "the ledger's retirement names no beneficiary"
	default:
		ben.Registry, ben.Outcome = name, Same
		for _, l := range bens {
			if !sameBeneficiary(name, l, prefix) {
				ben.Outcome = Differs
			}
		}
		switch {
		case ben.Outcome == Differs && prefix:
			ben.Note = "the registry's text after \"on behalf of\" does not begin with the ledger's beneficiary (compared without regard to case or spacing)"
		case ben.Outcome == Differs:
			ben.Note = "compared without regard to case or spacing"
		case prefix:
			ben.Note = "the registry's text after \"on behalf of\" begins with the ledger's beneficiary"
		}
		ben.Note += partly
	}

	// purpose: shown, never a difference
	pur := Fact{Field: FieldPurpose, Registry: rec.registryPurpose(), Ledger: strings.Join(purposes, "; ")}
	switch {
	case pur.Registry == "":
		pur.Outcome, pur.Note = NotCompared, "the row states no purpose"
	case samePurpose(pur.Registry, purposes):
		pur.Outcome, pur.Note = Same, "the one text contains the other (without regard to case or spacing)"
	default:
		pur.Outcome, pur.Note = Information, "worded differently; a purpose is shown, not judged"
	}
	it.Facts = []Fact{d, ben, q, pur}
}

func slicesAll(xs []string, f func(string) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}

// samePurpose: every ledger purpose and the registry's purpose, one contains the other.
func samePurpose(registry string, led []string) bool {
	r := normText(registry)
	for _, l := range led {
		l = normText(l)
		if l == "" || !(strings.Contains(r, l) || strings.Contains(l, r)) {
			return false
		}
	}
	return true
}

// factsDetail says, for a row's detail, which facts differ, which agree and which were not
// compared.
func factsDetail(facts []Fact) (differ, same, notCompared string) {
	var d, s, n []string
	for _, f := range facts {
		switch f.Outcome {
		case Same:
			s = append(s, f.Field)
		case Differs:
			if f.Field == FieldQuantity {
				d = append(d, fmt.Sprintf("quantity: the registry retired %s, the ledger %s of these serials", f.Registry, f.Ledger))
				continue
			}
			d = append(d, fmt.Sprintf("%s: the registry %q, the ledger %q", f.Field, f.Registry, f.Ledger))
		case NotCompared:
			n = append(n, fmt.Sprintf("%s not compared (%s)", f.Field, f.Note))
		}
	}
	if len(d) > 0 {
		differ = "the retirement differs: " + strings.Join(d, "; ")
	}
	if len(s) > 0 {
		same = "the ledger's retirement agrees on " + strings.Join(s, ", ")
	}
	return differ, same, strings.Join(n, "; ")
}
