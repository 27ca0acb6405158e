package registry

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

// Scope narrows a reconciliation to some of a registry's projects and to a period, so that a
// whole-registry export can be reconciled with a ledger that holds only some of its projects.
//
// A row is outside the scope when its project is not one of Projects, or its date is outside
// From..To; an outside row is reported Outside (not compared, not a discrepancy), with these
// exceptions, which keep the scope from hiding anything the ledger holds:
//   - an unreadable row, and a row without a date when a period is given, are compared;
//   - with Named (the projects are the ones the ledger's contracts name, not asked for), a row
//     of another project that the ledger holds serials of is compared, and a ledger block no
//     row overlaps is reported whatever its project.
//
// A ledger block no compared row overlaps is outside when its date (the effective date of
// the entry that put it in its state) is outside the period, or, unless Named, when its
// project is not one of Projects: the project its series names (the Reserve's
// CAR-1-US-1335-... is CAR1335, Puro's PURO_PR_CORC100+_FI_577166_2020_<uuid> its production
// facility 577166), else the projects its contract names; a block whose project cannot be
// told is never outside by project.
type Scope struct {
	// Projects are the registry project ids compared, as the export's project column writes
	// them (CAR's Project ID "CAR1335", Verra's ID "1340", Gold Standard's GSID "11603",
	// Puro's productionFacilityCode "577166");
	// matched without regard to case, spaces, or the registry's letters before the number
	// ("GS11603" is "11603", "CAR1335" is "1335"). Empty: every project.
	Projects []string
	// Named says Projects are those the ledger's contracts of the registry name.
	Named bool
	// Accounts are the registry accounts compared: a row that names the account its credits
	// were retired from (Record.Owner or OwnerID) is compared only when it is one of these,
	// matched without regard to case or spaces; a row that names none is compared. Empty:
	// every account.
	Accounts []string
	// AccountsNamed says Accounts are those the ledger's contracts of the registry name.
	AccountsNamed bool
	// From and To bound the rows' dates, both inclusive; the zero time leaves that end open.
	From, To time.Time
}

// IsZero reports whether the scope narrows nothing.
func (s Scope) IsZero() bool {
	return len(s.Projects) == 0 && len(s.Accounts) == 0 && s.From.IsZero() && s.To.IsZero()
}

// AccountKey is the form in which registry accounts are compared: upper case, spaces
// collapsed.
func AccountKey(a string) string { return strings.ToUpper(strings.Join(strings.Fields(a), " ")) }

func (s Scope) hasAccount(a string) bool {
	k := AccountKey(a)
	return slices.ContainsFunc(s.Accounts, func(q string) bool { return AccountKey(q) == k })
}

// rowAccount is the account a row names, as the export writes it, and whether it is one of
// the scope's (by its name or its id); "" when the row names none.
func (s Scope) rowAccount(rec *Record) (string, bool) {
	switch {
	case rec.Owner == "" && rec.OwnerID == "":
		return "", true
	case rec.Owner != "" && s.hasAccount(rec.Owner), rec.OwnerID != "" && s.hasAccount(rec.OwnerID):
		return "", true
	case rec.Owner != "":
		return rec.Owner, false
	}
	return rec.OwnerID, false
}

// projectPrefixes are the letters registries put before a project's number in one place and
// not in another (Gold Standard's GSID column is "11603", its serials and site "GS11603").
var projectPrefixes = []string{"CAR", "GS", "VCS", "VERRA", "ACR", "PL"}

// ProjectKey is the form in which project ids are compared: upper case, no spaces, and
// without a registry's letters before an all-digit number.
func ProjectKey(p string) string {
	k := strings.ToUpper(strings.Join(strings.Fields(p), ""))
	for _, pre := range projectPrefixes {
		if rest, ok := strings.CutPrefix(k, pre); ok {
			rest = strings.TrimLeft(rest, "-_#")
			if allDigits(rest) {
				return strings.TrimLeft(rest, "0")
			}
		}
	}
	if allDigits(k) {
		return strings.TrimLeft(k, "0")
	}
	return k
}

func (s Scope) hasProject(p string) bool {
	k := ProjectKey(p)
	return slices.ContainsFunc(s.Projects, func(q string) bool { return ProjectKey(q) == k })
}

func (s Scope) hasPeriod() bool { return !s.From.IsZero() || !s.To.IsZero() }

func (s Scope) inPeriod(d time.Time) bool {
	return (s.From.IsZero() || !d.Before(s.From)) && (s.To.IsZero() || !d.After(s.To))
}

// Period describes the period: "dated 2026-02-01 to 2026-02-28", "dated from 2026-02-01".
func (s Scope) Period() string {
	switch {
	case !s.From.IsZero() && !s.To.IsZero():
		return "dated " + ledger.FormatDate(s.From) + " to " + ledger.FormatDate(s.To)
	case !s.From.IsZero():
		return "dated from " + ledger.FormatDate(s.From)
	case !s.To.IsZero():
		return "dated up to " + ledger.FormatDate(s.To)
	}
	return ""
}

// String describes the scope for a report: `projects CAR1335 (named by the ledger's
// contracts); rows dated 2026-02-01 to 2026-02-28`; "" for the zero scope.
func (s Scope) String() string {
	var parts []string
	if len(s.Projects) > 0 {
		src := "given with --project"
		if s.Named {
			src = "named by the ledger's contracts"
		}
		parts = append(parts, fmt.Sprintf("%s %s (%s)", plural(len(s.Projects), "project", "projects"), strings.Join(s.Projects, ", "), src))
	}
	if len(s.Accounts) > 0 {
		src := "given with --account"
		if s.AccountsNamed {
			src = "named by the ledger's contracts"
		}
		parts = append(parts, fmt.Sprintf("%s %s (%s)", plural(len(s.Accounts), "account", "accounts"), strings.Join(s.Accounts, ", "), src))
	}
	if s.hasPeriod() {
		parts = append(parts, "rows "+s.Period())
	}
	return strings.Join(parts, "; ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// rowOutside says why a row is outside the scope, or "" when it is compared.
func (s Scope) rowOutside(it Item) string {
	rec := it.Record
	if rec.Err != "" {
		return ""
	}
	if s.hasPeriod() && !rec.Date.IsZero() && !s.inPeriod(rec.Date) {
		return fmt.Sprintf("dated %s, outside the period compared (%s)", ledger.FormatDate(rec.Date), s.Period())
	}
	if why := s.rowAccountOutside(it); why != "" {
		return why
	}
	if len(s.Projects) == 0 || s.hasProject(rec.Project) {
		return ""
	}
	if s.Named && len(it.Ledger) > 0 {
		return "" // the ledger holds its serials: compared whatever its project
	}
	what := "project " + rec.Project
	if rec.Project == "" {
		what = "the row names no project; it"
	}
	if s.Named {
		return fmt.Sprintf("%s is not one of the ledger's projects of this registry (%s)", what, strings.Join(s.Projects, ", "))
	}
	return fmt.Sprintf("%s is not one of the projects given with --project (%s)", what, strings.Join(s.Projects, ", "))
}

// rowAccountOutside says why a row is outside the scope's accounts, or "".
func (s Scope) rowAccountOutside(it Item) string {
	if len(s.Accounts) == 0 {
		return ""
	}
	acc, ok := s.rowAccount(it.Record)
	if ok || (s.AccountsNamed && len(it.Ledger) > 0) {
		return "" // the ledger holds its serials: compared whatever its account
	}
	if s.AccountsNamed {
		return fmt.Sprintf("account %s is not one of the ledger's accounts of this registry (%s)", acc, strings.Join(s.Accounts, ", "))
	}
	return fmt.Sprintf("account %s is not one of the accounts given with --account (%s)", acc, strings.Join(s.Accounts, ", "))
}

// blockOutside says why a ledger block no compared row overlaps is outside the scope, or "".
func (s Scope) blockOutside(l LedgerRange) string {
	if s.hasPeriod() && !s.inPeriod(l.Date) {
		return fmt.Sprintf("%s on %s, outside the period compared (%s)", l.State, ledger.FormatDate(l.Date), s.Period())
	}
	if len(s.Accounts) > 0 && !s.AccountsNamed && len(l.Accounts) > 0 && !slices.ContainsFunc(l.Accounts, s.hasAccount) {
		return fmt.Sprintf("contract %s names accounts %s, none of those given with --account (%s)", l.Contract, strings.Join(l.Accounts, ", "), strings.Join(s.Accounts, ", "))
	}
	if len(s.Projects) == 0 || s.Named {
		return ""
	}
	if p, ok := seriesProject(l.Prefix); ok {
		if !s.hasProject(p) {
			return fmt.Sprintf("series %s is of project %s, not one of the projects given with --project (%s)", l.Prefix, p, strings.Join(s.Projects, ", "))
		}
		return ""
	}
	if len(l.Projects) > 0 && !slices.ContainsFunc(l.Projects, s.hasProject) {
		return fmt.Sprintf("contract %s names projects %s, none of those given with --project (%s)", l.Contract, strings.Join(l.Projects, ", "), strings.Join(s.Projects, ", "))
	}
	return ""
}

// ReconcileIn is Reconcile narrowed to a scope: every row and block is matched as Reconcile
// matches it, then the rows and the unaccounted ledger blocks outside the scope become
// Outside items (see Scope). The zero scope gives Reconcile's result.
func ReconcileIn(records []Record, ranges []LedgerRange, scope Scope) Result {
	res := Reconcile(records, ranges)
	if scope.IsZero() {
		return res
	}
	for i := range res.Items {
		it := &res.Items[i]
		var why string
		if it.Record != nil {
			why = scope.rowOutside(*it)
		} else if len(it.Ledger) > 0 {
			var whys []string
			for _, l := range it.Ledger {
				if w := scope.blockOutside(l); w != "" {
					whys = append(whys, w)
				}
			}
			if len(whys) == len(it.Ledger) {
				why = strings.Join(whys, "; ")
			}
		}
		if why != "" {
			it.Class, it.Detail, it.Facts = Outside, "not compared: "+why, nil
		}
	}
	res.total()
	return res
}

// seriesProject is the project a serial series names: the Reserve's project (CAR1335), or
// Puro's production facility (577166).
func seriesProject(prefix string) (string, bool) {
	if p, _, ok := carProjectVintage(prefix); ok {
		return p, true
	}
	if f, _, _, ok := puroSeries(prefix); ok {
		return f, true
	}
	return "", false
}
