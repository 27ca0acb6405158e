package registry

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

// LedgerRange is what the ledger holds for one block of serials: its current state and the
// entry that put it there.
type LedgerRange struct {
	Contract string
	Registry string
	Prefix   string
	First    int64
	Last     int64
	State    string // delivered, retired or reversed
	Entry    string
	Date     time.Time // the entry's effective date
	// Retirement is what the entry that retired the block says (beneficiary, reason, claim),
	// for a retired block; nil when the caller did not read it, and then a retirement row's
	// date, beneficiary and purpose are not compared with it.
	Retirement *Retirement
	// Projects are the registry projects the block's contract names (its registry_projects),
	// for a Scope that narrows by project, and for matching rows without serials; empty when
	// it names none.
	Projects []string
	// Accounts are the registry accounts the block's contract names (its registry_accounts),
	// for a Scope that narrows by account; empty when it names none.
	Accounts []string
	// For a delivery or retirement recorded without serials (Prefix ""): Kind is the entry's
	// kind (deliver, retire) and Quantity its quantity; State is retired when its credits went
	// to the retired account (a retirement, or a delivery retired on delivery), else delivered.
	Kind     string
	Quantity ledger.Tonnes
	// Vintage is the entry's vintage year (0: none) and RegistryTx the registry transaction
	// id its metadata records (registry_tx), for an entry recorded without serials.
	Vintage    int
	RegistryTx string
}

// Unserialized reports whether this is an entry recorded without serials, not a serial block.
func (l LedgerRange) Unserialized() bool { return l.Prefix == "" }

// Count is the number of serials in the block.
func (l LedgerRange) Count() int64 { return l.Last - l.First + 1 }

// Tonnes is the block's quantity, or the entry's for one recorded without serials.
func (l LedgerRange) Tonnes() ledger.Tonnes {
	if l.Unserialized() {
		return l.Quantity
	}
	return ledger.SerialTonnes(l.Registry, l.Count())
}

// Where is "PREFIX:FIRST-LAST", or "entry ENTRY" for an entry recorded without serials.
func (l LedgerRange) Where() string {
	if l.Unserialized() {
		return "entry " + l.Entry
	}
	return ledger.FormatSerials(l.Prefix, l.First, l.Last)
}

// String is "CONTRACT PREFIX:FIRST-LAST state", or "CONTRACT KIND ENTRY Q t state" for an
// entry recorded without serials.
func (l LedgerRange) String() string {
	if l.Unserialized() {
		return fmt.Sprintf("%s %s %s %s t %s", l.Contract, l.Kind, l.Entry, trimT(l.Quantity), l.State)
	}
	return fmt.Sprintf("%s %s %s", l.Contract, ledger.FormatSerials(l.Prefix, l.First, l.Last), l.State)
}

// Class is how a row or a ledger block reconciles.
type Class string

// The classes, in the order reports list them.
const (
	// Matched: the same series and range in both, and the ledger's state is what the
	// registry's status implies.
	Matched Class = "matched"
	// Disagrees: the row and the ledger overlap but not exactly (ranges differ, or serials
	// are missing), the states differ, the row's quantity is not the size of its range, or a
	// retirement's date, beneficiary or quantity differs from the ledger's retirement.
	Disagrees Class = "disagrees"
	// RegistryOnly: no ledger serial overlaps the row.
	RegistryOnly Class = "registry_only"
	// LedgerOnly: a ledger block of the registry that no row overlaps, although the export
	// would list it.
	LedgerOnly Class = "ledger_only"
	// NotInExport: a ledger block no row overlaps, in a state this kind of export does not
	// list (credits held, not retired, against a retirements report). Not a discrepancy.
	NotInExport Class = "not_in_export"
	// IssuanceSummary: a row without serials, checked by project and vintage only. Not a
	// discrepancy by itself.
	IssuanceSummary Class = "issuance_summary"
	// Unreadable: a row that could not be read.
	Unreadable Class = "unreadable"
	// Outside: a row of a project, or dated in a period, that the reconciliation's Scope
	// leaves out (another project than the ledger's contracts name, or than --project, or a
	// date outside --from/--to), or a ledger block it leaves out. Not compared, not a
	// discrepancy.
	Outside Class = "outside"
)

// Classes lists every class in report order.
var Classes = []Class{Matched, Disagrees, RegistryOnly, LedgerOnly, NotInExport, IssuanceSummary, Unreadable, Outside}

// Label is the class for people.
func (c Class) Label() string {
	switch c {
	case Matched:
		return "matched"
	case Disagrees:
		return "quantity/range/state/retirement disagreement"
	case RegistryOnly:
		return "in the registry, not in the ledger"
	case LedgerOnly:
		return "in the ledger, not in the registry"
	case NotInExport:
		return "in the ledger, not listed by this kind of export"
	case IssuanceSummary:
		return "not matchable by serial (issuance summary)"
	case Unreadable:
		return "unreadable row"
	case Outside:
		return "outside the ledger's projects or the period (not compared)"
	}
	return string(c)
}

// Discrepancy reports whether an item of this class means the books and the registry
// disagree (or could not be compared).
func (c Class) Discrepancy() bool {
	switch c {
	case Disagrees, RegistryOnly, LedgerOnly, Unreadable:
		return true
	}
	return false
}

// Item is one line of a reconciliation: a registry row (Record set) with the ledger blocks
// that overlap it, or ledger blocks no row accounts for (Record nil).
type Item struct {
	Class  Class
	Record *Record
	Ledger []LedgerRange
	// LedgerTonnes is what the ledger holds of the row's serials (the part of each block
	// inside the row), or the blocks' whole quantity for an item without a row.
	LedgerTonnes ledger.Tonnes
	Detail       string
	// Facts compares a retirement row with the ledger's retirement of its serials, field by
	// field (date, beneficiary, quantity, purpose); empty for other rows, and for rows whose
	// serials the ledger did not retire.
	Facts []Fact
}

// Total sums one class.
type Total struct {
	Class        Class
	Rows         int           // registry rows
	Blocks       int           // ledger blocks of items without a row
	Tonnes       ledger.Tonnes // the rows' quantities
	LedgerTonnes ledger.Tonnes
}

// Result is a reconciliation: every row once, in file order, then the ledger's blocks that no
// row accounts for, ordered by series.
type Result struct {
	Items  []Item
	Totals []Total // one per class, in Classes order
	Rows   int     // registry rows, readable or not
	Blocks int     // ledger blocks of the registry considered
}

// OK reports whether nothing disagrees: no class that is a discrepancy has an item.
func (r Result) OK() bool {
	for _, it := range r.Items {
		if it.Class.Discrepancy() {
			return false
		}
	}
	return true
}

// Total returns the totals of one class.
func (r Result) Total(c Class) Total {
	for _, t := range r.Totals {
		if t.Class == c {
			return t
		}
	}
	return Total{Class: c}
}

// series indexes one series' ledger blocks by first serial.
type series struct {
	idx     []int   // indexes into the ledger slice, by First
	maxLast []int64 // running maximum of Last, so a search works even if blocks overlapped
}

// Reconcile matches an export's rows against the ledger's serial blocks of the same registry
// (blocks of other registries are ignored when the rows name theirs).
//
// A row with serials is matched when the ledger blocks overlapping it lie inside it, cover it
// with no gap, and are all in the state its status implies; otherwise it disagrees, or, when
// nothing overlaps, it is in the registry only. A block no row overlaps is in the ledger only
// when the export would list it (see NotInExport). Rows without serials (issuance summaries)
// are compared by project and vintage: the ledger may hold no more of a project's vintage than
// the export shows issued. Rows of exports without serials (Isometric's) are matched with the
// ledger's entries recorded without serials (LedgerRange with Prefix "") by registry
// transaction id, else by project, date and quantity (see matchByDate); so are the rows with
// serials of the other exports that no serial block of the ledger overlaps.
func Reconcile(records []Record, ranges []LedgerRange) Result {
	regs := map[string]bool{}
	kinds := map[Kind]bool{}
	for _, r := range records {
		regs[r.Registry] = true
		kinds[r.Kind] = true
	}
	var held, entries []LedgerRange
	for _, l := range ranges {
		if len(regs) > 0 && !regs[l.Registry] {
			continue
		}
		if l.Unserialized() {
			entries = append(entries, l)
			continue
		}
		held = append(held, l)
	}
	sort.SliceStable(held, func(i, j int) bool {
		if held[i].Prefix != held[j].Prefix {
			return held[i].Prefix < held[j].Prefix
		}
		return held[i].First < held[j].First
	})
	bySeries := map[string]*series{}
	for i, l := range held {
		s := bySeries[l.Prefix]
		if s == nil {
			s = &series{}
			bySeries[l.Prefix] = s
		}
		m := l.Last
		if n := len(s.maxLast); n > 0 && s.maxLast[n-1] > m {
			m = s.maxLast[n-1]
		}
		s.idx, s.maxLast = append(s.idx, i), append(s.maxLast, m)
	}
	overlapping := func(prefix string, first, last int64) []int {
		s := bySeries[prefix]
		if s == nil {
			return nil
		}
		var out []int
		for k := sort.Search(len(s.idx), func(k int) bool { return s.maxLast[k] >= first }); k < len(s.idx); k++ {
			l := held[s.idx[k]]
			if l.First > last {
				break
			}
			if l.Last >= first {
				out = append(out, s.idx[k])
			}
		}
		return out
	}

	res := Result{Rows: len(records), Blocks: len(held) + len(entries)}
	seen := make([]bool, len(held))
	issuances := map[[2]string][]int{} // project, vintage -> item indexes
	for i := range records {
		rec := &records[i]
		it := Item{Record: rec}
		switch {
		case rec.Err != "":
			it.Class, it.Detail = Unreadable, rec.Err
		case rec.Kind.byDate():
			// matched below, with the entries recorded without serials
		case !rec.HasSerials():
			it.Class = IssuanceSummary
			key := [2]string{strings.ToUpper(rec.Project), rec.Vintage}
			issuances[key] = append(issuances[key], len(res.Items))
		default:
			ov := overlapping(rec.Serials.Prefix, rec.Serials.First, rec.Serials.Last)
			for _, k := range ov {
				seen[k] = true
				it.Ledger = append(it.Ledger, held[k])
			}
			classifyRow(&it, bySeries[rec.Serials.Prefix] != nil)
		}
		res.Items = append(res.Items, it)
	}

	// Blocks no serial row overlaps: by project and vintage against issuance summaries, else
	// in the ledger only, or not listed by this kind of export.
	type group struct {
		blocks []LedgerRange
		held   ledger.Tonnes
	}
	groups := map[[2]string]*group{}
	var groupKeys [][2]string
	var tail []Item
	for k, l := range held {
		if seen[k] {
			continue
		}
		if len(issuances) > 0 {
			if p, v, ok := carProjectVintage(l.Prefix); ok {
				key := [2]string{p, v}
				if _, ok := issuances[key]; ok {
					g := groups[key]
					if g == nil {
						g = &group{}
						groups[key] = g
						groupKeys = append(groupKeys, key)
					}
					g.blocks = append(g.blocks, l)
					g.held = g.held.Add(l.Tonnes())
					continue
				}
			}
		}
		it := Item{Class: LedgerOnly, Ledger: []LedgerRange{l}, LedgerTonnes: l.Tonnes()}
		switch {
		case len(issuances) > 0 && !anySerialKind(kinds):
			if p, v, ok := carProjectVintage(l.Prefix); ok {
				it.Detail = fmt.Sprintf("the export shows no issuance of project %s vintage %s", p, v)
			} else {
				it.Detail = "the series names no Reserve project and vintage, so no issuance summary can account for it"
			}
		case len(kinds) == 0 || coveredBy(kinds, l.State):
			it.Detail = fmt.Sprintf("no row of the export overlaps these serials (%s under contract %s, entry %s)", l.State, l.Contract, l.Entry)
		default:
			it.Class = NotInExport
			it.Detail = fmt.Sprintf("%s: this kind of export lists only %s serials", l.State, listedStates(kinds))
		}
		tail = append(tail, it)
	}
	for _, key := range groupKeys {
		g := groups[key]
		var issued ledger.Tonnes
		for _, ix := range issuances[key] {
			issued = issued.Add(res.Items[ix].Record.Quantity)
		}
		note := fmt.Sprintf("the ledger holds %s t of project %s vintage %s in %d block(s) (%s); the export shows %s t issued",
			trimT(g.held), key[0], key[1], len(g.blocks), contractsOf(g.blocks), trimT(issued))
		for _, ix := range issuances[key] {
			res.Items[ix].Ledger = g.blocks
		}
		if g.held.GreaterThan(issued) {
			tail = append(tail, Item{Class: Disagrees, Ledger: g.blocks, LedgerTonnes: g.held,
				Detail: note + ": more than was issued"})
		}
	}
	for i := range res.Items {
		it := &res.Items[i]
		if it.Class != IssuanceSummary {
			continue
		}
		key := [2]string{strings.ToUpper(it.Record.Project), it.Record.Vintage}
		if g := groups[key]; g != nil {
			it.Detail = "not matchable by serial; " + fmt.Sprintf("the ledger holds %s t of project %s vintage %s (%s)", trimT(g.held), key[0], key[1], contractsOf(g.blocks))
		} else {
			it.Detail = "not matchable by serial; the ledger holds no serials of this project and vintage"
		}
	}
	res.Items = append(res.Items, tail...)
	res.Items = append(res.Items, matchByDate(res.Items, entries, kinds)...)
	res.total()
	return res
}

// total sums the items by class into Totals.
func (res *Result) total() {
	res.Totals = nil
	for _, c := range Classes {
		t := Total{Class: c}
		for _, it := range res.Items {
			if it.Class != c {
				continue
			}
			if it.Record != nil {
				t.Rows++
				t.Tonnes = t.Tonnes.Add(it.Record.Quantity)
			} else {
				t.Blocks += len(it.Ledger)
			}
			t.LedgerTonnes = t.LedgerTonnes.Add(it.LedgerTonnes)
		}
		res.Totals = append(res.Totals, t)
	}
}

// classifyRow classifies a readable row with serials, given the ledger blocks overlapping it
// (in it.Ledger, by first serial). knownSeries says whether the ledger holds any serial of
// the row's series.
func classifyRow(it *Item, knownSeries bool) {
	rec := it.Record
	a, b := rec.Serials.First, rec.Serials.Last
	if len(it.Ledger) == 0 {
		it.Class = RegistryOnly
		if rec.Problem != "" {
			it.Class, it.Detail = Disagrees, rec.Problem+"; the ledger holds none of its serials"
			return
		}
		if knownSeries {
			it.Detail = fmt.Sprintf("the ledger holds other serials of series %s, none of %s", ledger.SeriesName(rec.Serials.Prefix), serialSpan(rec.Serials.Prefix, a, b))
		} else {
			it.Detail = "the ledger holds no serial of series " + ledger.SeriesName(rec.Serials.Prefix)
		}
		return
	}
	p := rec.Serials.Prefix
	var inside int64
	var gaps [][2]int64
	var beyond, differ, retiredHere []string
	next := a
	for _, l := range it.Ledger {
		lo, hi := max(l.First, a), min(l.Last, b)
		inside += hi - lo + 1
		if l.First < a || l.Last > b {
			beyond = append(beyond, fmt.Sprintf("ledger block %s (contract %s, %s) extends beyond the row's %s", serialSpan(p, l.First, l.Last), l.Contract, l.State, serialSpan(p, a, b)))
		}
		if l.First > next {
			gaps = append(gaps, [2]int64{next, l.First - 1})
		}
		next = max(next, l.Last+1)
		if !rec.agrees(l.State) {
			if rec.Status == StatusCancelled && l.State == StateRetired {
				retiredHere = append(retiredHere, fmt.Sprintf("contract %s, entry %s, serials %s", l.Contract, l.Entry, serialSpan(p, lo, hi)))
				continue
			}
			differ = append(differ, fmt.Sprintf("%s %s (contract %s, entry %s)", serialSpan(p, lo, hi), l.State, l.Contract, l.Entry))
		}
	}
	if next <= b {
		gaps = append(gaps, [2]int64{next, b})
	}
	if len(it.Ledger) > 0 {
		it.LedgerTonnes = ledger.SerialTonnes(it.Ledger[0].Registry, inside)
	}
	var why []string
	if rec.Problem != "" {
		why = append(why, rec.Problem)
	}
	if len(gaps) > 0 {
		var g []string
		for i, x := range gaps {
			if i == 3 {
				g = append(g, fmt.Sprintf("and %d more", len(gaps)-3))
				break
			}
			g = append(g, serialSpan(p, x[0], x[1]))
		}
		why = append(why, fmt.Sprintf("the ledger holds %d of the row's %d serials (missing %s)", inside, rec.Serials.Count(), strings.Join(g, ", ")))
	}
	why = append(why, beyond...)
	if len(retiredHere) > 0 {
		// the false match this package exists to prevent: a claim resting on credits the
		// registry cancelled
		why = append(why, fmt.Sprintf("the registry cancelled these serials (%s), it did not retire them; the ledger retired them (%s): a cancellation is not a retirement",
			rec.cancelledWhy(), strings.Join(retiredHere, "; ")))
	}
	if len(differ) > 0 {
		shows := string(rec.Status)
		if rec.Status == StatusCancelled {
			shows += " (" + rec.cancelledWhy() + ")"
		}
		why = append(why, fmt.Sprintf("state differs: the registry shows them %s, the ledger has %s", shows, strings.Join(differ, "; ")))
	}
	compareRetirement(it)
	factsDiffer, factsSame, notCompared := factsDetail(it.Facts)
	if factsDiffer != "" {
		why = append(why, factsDiffer)
	}
	if len(why) > 0 {
		if notCompared != "" {
			why = append(why, notCompared)
		}
		it.Class, it.Detail = Disagrees, strings.Join(why, "; ")
		return
	}
	it.Class = Matched
	l := it.Ledger[0]
	if len(it.Ledger) == 1 {
		it.Detail = fmt.Sprintf("contract %s, %s on %s (entry %s)", l.Contract, l.State, ledger.FormatDate(l.Date), l.Entry)
	} else {
		it.Detail = fmt.Sprintf("%s, %s in %d ledger blocks", contractsOf(it.Ledger), l.State, len(it.Ledger))
	}
	switch rec.Status {
	case StatusCancelled:
		it.Detail += "; the registry cancelled them (" + rec.cancelledWhy() + ")"
	case StatusRetiredOrCancelled:
		it.Detail += "; the export does not say whether the registry retired or cancelled them (no beneficiary, no reason)"
	}
	if factsSame != "" {
		it.Detail += "; " + factsSame
	}
	if notCompared != "" {
		it.Detail += "; " + notCompared
	}
}

func anySerialKind(kinds map[Kind]bool) bool {
	return kinds[CARRetirements] || kinds[CARCancellations] || kinds[VerraTransactions] || kinds[GSIssuances] || kinds[GSRetirements] ||
		kinds[PuroCertificates] || kinds[PuroTransactions]
}

func coveredBy(kinds map[Kind]bool, state string) bool {
	for k := range kinds {
		if k.covers(state) {
			return true
		}
	}
	return false
}

func listedStates(kinds map[Kind]bool) string {
	var out []string
	for _, s := range []string{StateDelivered, StateRetired, StateReversed} {
		if coveredBy(kinds, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return "no"
	}
	return strings.Join(out, " or ")
}

// contractsOf names the contracts of blocks: "contract A" or "contracts A, B".
func contractsOf(ls []LedgerRange) string {
	var cs []string
	seen := map[string]bool{}
	for _, l := range ls {
		if !seen[l.Contract] {
			seen[l.Contract] = true
			cs = append(cs, l.Contract)
		}
	}
	if len(cs) == 1 {
		return "contract " + cs[0]
	}
	return "contracts " + strings.Join(cs, ", ")
}

// trimT writes whole tonnes without decimals.
func trimT(t ledger.Tonnes) string {
	return t.Decimal().String()
}
