package registry

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/carbonledger/carbonledger/ledger"
)

// Matching without serials. Isometric publishes no serial numbers, so its rows are matched
// with the deliveries and retirements the ledger records without serials (LedgerRange with
// Prefix ""); so are the rows with serials of the other exports (CAR, Verra, Gold Standard)
// that no serial block of the ledger overlaps, which would otherwise be in the registry only.
//
// First by registry transaction id: a row whose own identifier equals an entry's registry_tx
// (compared without regard to case or surrounding spaces) matches that entry, whatever its
// project, date or quantity, provided the kinds agree (see pairs). The row's identifier is
// Isometric's id (iss_... for an issuance, ret_... for a retirement); for the exports with
// serials it is the serial range exactly as the registry writes it (Verra's Serial Number
// block 19385-941467007-...-1, Gold Standard's GS1-1-KE-..., the Reserve's "CAR-1-US-... -1
// to 5000"), since none of them has a transaction id column; the Reserve's issuance rows have
// neither, and are never matched with entries (they are issuance summaries).
//
// Else by project, vintage, date and quantity: a row matches an entry of a contract of the
// same registry that names the row's project in its registry_projects, of the same vintage
// where both have one (the row's Vintage, or Vintage Start, year), of the row's kind (an
// issuance a delivery, a retirement a retirement: a retire entry, or a delivery retired on
// delivery), dated the row's day, of the row's quantity exactly, and, for a retirement, for
// the beneficiary the row names (compared as for the serial matches, see sameBeneficiary).
// Each entry matches at most one row.
//
// Rows are paired in four passes, each over the rows in file order and the entries in the
// ledger's order: the same transaction id; every fact the same; then the same day and
// quantity (the beneficiary differs); then the same project and kind and either the same day
// or the same quantity (the other differs). The facts of a paired row are then compared
// (date, quantity and, for a retirement, beneficiary and purpose), also for a row paired by
// transaction id: a retirement's date is a fact its claim rests on, so a row matched by
// transaction id but dated another day Disagrees on the date; a delivery's date is shown
// (Information), not judged, since credits may be delivered after the registry's row. A
// paired row whose facts all agree is Matched, its detail saying which way ("matched by
// transaction id", "matched by project, date and quantity"); one whose facts differ
// Disagrees, naming each differing field. An Isometric row paired with nothing is
// RegistryOnly; a row with serials paired with nothing keeps its class. An entry no row pairs
// with is LedgerOnly when the export lists its kind (an Isometric retirements export lists
// retirements, its issuances export deliveries; the others as for serial blocks, see
// Kind.covers), else NotInExport.

// byDate reports whether rows of this kind are matched by project, date and quantity.
func (k Kind) byDate() bool { return k == IsometricIssuances || k == IsometricRetirements }

func anyByDate(kinds map[Kind]bool) bool {
	for k := range kinds {
		if k.byDate() {
			return true
		}
	}
	return false
}

// pairs reports whether a row of this kind can be matched with the entry's kind.
func (r Record) pairs(l LedgerRange) bool {
	switch r.Kind {
	case IsometricIssuances:
		return l.Kind == string(ledger.KindDeliver)
	case IsometricRetirements:
		return l.State == StateRetired
	}
	switch r.Status {
	case StatusIssued:
		return l.State == StateDelivered
	case StatusRetired, StatusRetiredOrCancelled:
		return l.State == StateRetired
	}
	return false // a cancellation is never matched with a delivery or retirement
}

// withoutSerials reports whether the item's row is matched with the entries recorded without
// serials: every readable row of an export without serials, and a row with serials that no
// serial block of the ledger overlaps.
func withoutSerials(it Item) bool {
	rec := it.Record
	if rec == nil || rec.Err != "" {
		return false
	}
	return rec.Kind.byDate() || (rec.HasSerials() && it.Class == RegistryOnly && len(it.Ledger) == 0 && rec.Problem == "")
}

// txID is the row's own identifier, matched with an entry's registry_tx: Isometric's id, else
// the serial range as the registry writes it; "" when it has neither.
func (r Record) txID() string {
	if r.ID != "" {
		return r.ID
	}
	if r.HasSerials() {
		return r.Serials.Label
	}
	return ""
}

func (r Record) sameTx(l LedgerRange) bool {
	id := strings.TrimSpace(r.txID())
	return id != "" && strings.EqualFold(id, strings.TrimSpace(l.RegistryTx))
}

// vintage is the row's vintage year (Verra's Vintage Start 2020-01-01 is 2020), or 0.
func (r Record) vintage() int {
	v := strings.TrimSpace(r.Vintage)
	if len(v) < 4 {
		return 0
	}
	y, err := strconv.Atoi(v[:4])
	if err != nil || (len(v) > 4 && v[4] != '-') {
		return 0
	}
	return y
}

// sameVintage reports whether the row and the entry are of the same vintage, or either has none.
func (r Record) sameVintage(l LedgerRange) bool {
	v := r.vintage()
	return v == 0 || l.Vintage == 0 || v == l.Vintage
}

// listedByDate reports whether an export of these kinds would list the entry.
func listedByDate(kinds map[Kind]bool, l LedgerRange) bool {
	return (kinds[IsometricIssuances] && l.Kind == string(ledger.KindDeliver)) ||
		(kinds[IsometricRetirements] && l.State == StateRetired) || coveredBy(kinds, l.State)
}

func (r Record) sameProject(l LedgerRange) bool {
	k := ProjectKey(r.Project)
	return k != "" && slices.ContainsFunc(l.Projects, func(p string) bool { return ProjectKey(p) == k })
}

func (r Record) sameDay(l LedgerRange) bool {
	return ledger.FormatDate(r.Date) == ledger.FormatDate(l.Date)
}

// sameBeneficiaryAs reports whether a retirement row and a ledger retirement name the same
// beneficiary, or one of them names none (then it is not compared).
func (r Record) sameBeneficiaryAs(l LedgerRange) bool {
	name, prefix, _ := r.registryBeneficiary()
	if r.Kind != IsometricRetirements || name == "" || l.Retirement == nil || l.Retirement.Beneficiary == "" {
		return true
	}
	return sameBeneficiary(name, l.Retirement.Beneficiary, prefix)
}

// matchByDate classifies the items of rows matched by date (see above), in place, and returns
// the items of the entries no row pairs with.
func matchByDate(items []Item, entries []LedgerRange, kinds map[Kind]bool) []Item {
	var rows []int
	for i, it := range items {
		if withoutSerials(it) {
			rows = append(rows, i)
		}
	}
	used := make([]bool, len(entries))
	paired := map[int]int{}
	byTx := map[int]bool{}
	for _, i := range rows {
		rec := items[i].Record
		for k, l := range entries {
			if !used[k] && rec.pairs(l) && rec.sameTx(l) {
				used[k], paired[i], byTx[i] = true, k, true
				break
			}
		}
	}
	passes := []func(r *Record, l LedgerRange) bool{
		func(r *Record, l LedgerRange) bool {
			return r.sameDay(l) && r.Quantity.Equal(l.Quantity) && r.sameBeneficiaryAs(l)
		},
		func(r *Record, l LedgerRange) bool { return r.sameDay(l) && r.Quantity.Equal(l.Quantity) },
		func(r *Record, l LedgerRange) bool { return r.sameDay(l) || r.Quantity.Equal(l.Quantity) },
	}
	for _, ok := range passes {
		for _, i := range rows {
			if _, done := paired[i]; done {
				continue
			}
			rec := items[i].Record
			for k, l := range entries {
				if !used[k] && rec.pairs(l) && rec.sameProject(l) && rec.sameVintage(l) && ok(rec, l) {
					used[k], paired[i] = true, k
					break
				}
			}
		}
	}
	for _, i := range rows {
		it := &items[i]
		if k, ok := paired[i]; ok {
			compareByDate(it, entries[k], byTx[i])
			continue
		}
		rec := it.Record
		if !rec.Kind.byDate() {
			// a row with serials keeps its class (in the registry only)
			if len(entries) > 0 {
				it.Detail += "; no delivery or retirement the ledger records without serials matches it by transaction id (registry_tx) or by project, vintage, date and quantity"
			}
			continue
		}
		what := "delivery"
		if rec.Status == StatusRetired {
			what = "retirement"
		}
		it.Class, it.Detail = RegistryOnly, fmt.Sprintf("the ledger records no %s without serials of project %s on %s of %s t (matched by project, date and quantity: the export has no serials)",
			what, rec.Project, ledger.FormatDate(rec.Date), trimT(rec.Quantity))
	}
	var tail []Item
	for k, l := range entries {
		if used[k] {
			continue
		}
		it := Item{Class: LedgerOnly, Ledger: []LedgerRange{l}, LedgerTonnes: l.Tonnes()}
		if listedByDate(kinds, l) {
			it.Detail = fmt.Sprintf("no row of the export matches this %s of %s t on %s (contract %s, entry %s) by transaction id or by project, date and quantity",
				l.Kind, trimT(l.Quantity), ledger.FormatDate(l.Date), l.Contract, l.Entry)
			if l.RegistryTx != "" {
				it.Detail += fmt.Sprintf("; no row's id is its registry_tx %q", l.RegistryTx)
			}
			if len(l.Projects) == 0 {
				it.Detail += fmt.Sprintf("; contract %s names no registry project (registry_projects), so no row can match it", l.Contract)
			}
		} else {
			it.Class = NotInExport
			it.Detail = fmt.Sprintf("a %s without serials (%s): this kind of export lists only %s", l.Kind, l.State, listedKindsByDate(kinds))
		}
		tail = append(tail, it)
	}
	return tail
}

func listedKindsByDate(kinds map[Kind]bool) string {
	var out []string
	if kinds[IsometricIssuances] {
		out = append(out, "deliveries (against issuances)")
	}
	if kinds[IsometricRetirements] {
		out = append(out, "retirements")
	}
	if len(out) == 0 {
		return listedStates(kinds) + " credits"
	}
	return strings.Join(out, " and ")
}

// compareByDate compares a row with the entry it was paired with (by transaction id when
// byTx), fact by fact: date, quantity and, for a retirement, beneficiary and purpose (shown,
// never a difference).
func compareByDate(it *Item, l LedgerRange, byTx bool) {
	rec := it.Record
	it.Ledger, it.LedgerTonnes = []LedgerRange{l}, l.Quantity
	d := Fact{Field: FieldDate, Outcome: Same, Registry: ledger.FormatDate(rec.Date), Ledger: ledger.FormatDate(l.Date)}
	switch {
	case d.Registry == d.Ledger:
	case byTx && rec.Status != StatusRetired && rec.Status != StatusRetiredOrCancelled:
		d.Outcome, d.Note = Information, "matched by transaction id; a delivery may be recorded on another day than the registry's row"
	default:
		d.Outcome, d.Note = Differs, "the ledger's entry must be dated the day the registry's row is (in UTC)"
	}
	q := Fact{Field: FieldQuantity, Outcome: Same, Registry: trimT(rec.Quantity), Ledger: trimT(l.Quantity), Note: "tonnes"}
	if !rec.Quantity.Equal(l.Quantity) {
		q.Outcome, q.Note = Differs, "tonnes; the quantities must be equal to the kilogram"
	}
	it.Facts = []Fact{d, q}
	if rec.Status == StatusRetired {
		ben := Fact{Field: FieldBeneficiary}
		name, prefix, why := rec.registryBeneficiary()
		switch {
		case name == "":
			ben.Outcome, ben.Note = NotCompared, why
		case l.Retirement == nil || l.Retirement.Beneficiary == "":
			ben.Registry, ben.Outcome, ben.Note = name, NotCompared, "the ledger's retirement names no beneficiary"
		default:
			ben.Registry, ben.Ledger, ben.Outcome = name, l.Retirement.Beneficiary, Same
			if !sameBeneficiary(name, l.Retirement.Beneficiary, prefix) {
				ben.Outcome, ben.Note = Differs, "compared without regard to case or spacing"
			}
		}
		pur := Fact{Field: FieldPurpose, Registry: rec.registryPurpose()}
		if l.Retirement != nil {
			pur.Ledger = strings.Join(strings.Fields(l.Retirement.Reason), " ")
		}
		switch {
		case pur.Registry == "" || pur.Ledger == "":
			pur.Outcome, pur.Note = NotCompared, "one side states no purpose"
		case samePurpose(pur.Registry, []string{pur.Ledger}):
			pur.Outcome, pur.Note = Same, "the one text contains the other (without regard to case or spacing)"
		default:
			pur.Outcome, pur.Note = Information, "worded differently; a purpose is shown, not judged"
		}
		it.Facts = []Fact{d, ben, q, pur}
	}
	what := "delivered"
	if l.State == StateRetired {
		what = "retired"
	}
	at := fmt.Sprintf("contract %s, %s on %s (%s entry %s)", l.Contract, what, ledger.FormatDate(l.Date), l.Kind, l.Entry)
	var differ, same, nc []string
	for _, f := range it.Facts {
		switch f.Outcome {
		case Same:
			same = append(same, f.Field)
		case Differs:
			unit := ""
			if f.Field == FieldQuantity {
				unit = " t"
			}
			differ = append(differ, fmt.Sprintf("%s: the registry %q%s, the ledger %q%s", f.Field, f.Registry, unit, f.Ledger, unit))
		case NotCompared:
			nc = append(nc, fmt.Sprintf("%s not compared (%s)", f.Field, f.Note))
		}
	}
	how := "matched by project, date and quantity"
	if rec.vintage() != 0 && l.Vintage != 0 {
		how = "matched by project, vintage, date and quantity"
	}
	if byTx {
		how = fmt.Sprintf("matched by transaction id (the row's %s is the entry's registry_tx)", rec.txID())
	}
	if rec.HasSerials() {
		how += " (the ledger's entry has no serials)"
	} else {
		how += " (no serials)"
	}
	if len(differ) > 0 {
		it.Class = Disagrees
		paired := "paired by project and kind without serials"
		if byTx {
			paired = fmt.Sprintf("paired by transaction id %s", rec.txID())
		}
		it.Detail = fmt.Sprintf("%s with %s, but it differs: %s", paired, at, strings.Join(differ, "; "))
	} else {
		it.Class = Matched
		it.Detail = how + ": " + at
		if len(same) > 0 {
			it.Detail += "; the ledger agrees on " + strings.Join(same, ", ")
		}
	}
	if len(nc) > 0 {
		it.Detail += "; " + strings.Join(nc, "; ")
	}
}
