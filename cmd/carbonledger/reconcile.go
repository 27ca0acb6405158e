package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/carbonledger/carbonledger/internal/registry"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

const reconcileHelp = `
Reads a registry's public export (CSV, or Puro's JSON) and matches it, by serial range,
against the serial blocks the ledger holds for that registry: the Climate Action Reserve's
retirements, cancellations and issuances reports, Verra's VCU transactions export, Gold
Standard's issuances and retirements exports (Credit Status Issued, Retired or Canceled; a
cancellation is never a retirement), and Puro.earth's certificates list and transactions
(JSON). The kind of file is told by its header (a JSON file's by its records' keys);
--registry, when given, must agree with it. A file no reader knows is refused, naming the
columns or keys each export needs and the export it looks most like.

Isometric's issuances and retirements (CarbonPlan's CSV flattening of its API) carry no
serials: their quantities are read exactly from the kilogram columns (one credit is one tonne;
a row whose kilograms are not whole is unreadable), and each row is matched by project, date
and quantity with a delivery (issuance rows) or retirement (retirement rows) recorded without
serials under a contract of registry isometric that names the row's project_id in
registry_projects: the same project, the same day (the row's UTC day against the entry's
date), the same quantity to the kilogram, and for a retirement the same beneficiary
(beneficiary.name, not owner.name). The row's detail says it matched "by project, date and
quantity"; a paired row whose date, quantity or beneficiary differs disagrees, naming the
field.

Puro.earth publishes JSON: its certificates list (the active bundles and their owners; the
Registry API's certificates, one page {"pagination", "data"} or a bare array) and its
transactions (the public registry's retirements list, or the Registry API's transactions).
Each certificate bundle is one row, an inclusive serial range within its issuance
(PURO_PR_CORC100+_FI_577166_2020_<issuance uuid>_1-100; the uuid is part of the series), so a
retirement of several bundles is several rows; a row's line is the line its bundle's object
starts on. An active bundle is issued (the ledger's delivered); a Retirement's bundles are
retired, for retirementDetails.beneficiaryName (not the accountHolderName retired from); a
Withdrawal's are cancelled, never retired. Puro may hide a beneficiary for up to 12 months:
the name is then not stated and not compared, and the row says until when. Issuance and
transfer transactions say when credits moved, not where they stand: their bundles are
unreadable rows saying so, and a file of only those is refused. A Puro project is its
production facility (productionFacilityCode, 577166).

Deliveries recorded without serials are matched by transaction id first: a row whose own
identifier is an entry's registry transaction id (registry_tx, given to deliver or retire) is paired
with it, whatever its project, day or quantity, and its detail says "matched by transaction
id" (its facts are still compared: a retirement dated another day disagrees on the date).
The identifier is Isometric's id (iss_...) or retirement_id (ret_...), or Puro's transaction
id; the Reserve, Verra and Gold Standard have no transaction id column, so theirs is the row's
serial range as the registry writes it. A row with serials that no ledger serial block overlaps is matched with
the deliveries and retirements recorded without serials by transaction id, else by project,
vintage (where both have one), date and quantity ("matched by project, vintage, date and
quantity"); one paired with none stays registry_only.

Every row is reported with its line number and its class:
  matched          same series and range, and the ledger's state is what the registry says
  disagrees        the ranges overlap but differ, serials are missing, the states differ
                   (e.g. retired at the registry, only delivered in the ledger; or cancelled
                   at the registry, retired in the ledger), the row's quantity is not the size
                   of its own range, or a retirement's date or beneficiary differs from the
                   ledger's retirement (each difference named by field)
  registry_only    no ledger serial overlaps the row
  ledger_only      a ledger block no row overlaps, of a state the export lists
  not_in_export    a ledger block in a state this kind of export does not list (held credits
                   against a retirements report); not a discrepancy
  issuance_summary a row without serials (CAR issuances), checked by project and vintage: the
                   ledger may hold no more of a project's vintage than was issued
  unreadable       a row that could not be read, with the reason
  outside          a row of another project or account, or dated outside --from/--to (see
                   below); not compared, not a discrepancy

Which rows are compared: when the ledger's contracts of the export's registry name their
registry projects (registry_projects in the contract file), only those projects' rows, so a
whole-registry export of a clean ledger exits 0; a row of another project whose serials the
ledger holds is still compared. --project P (repeatable) compares exactly the projects given
instead, as the export's project column writes them (CAR1335, Verra's 1340, Gold Standard's
11603 or GS11603, Puro's facility 577166; case and the registry's letters do not matter). In
the same way, when the contracts name their registry accounts (registry_accounts), only rows
of those accounts are compared where a row names the account its credits were retired from
(the Reserve's Account Holder, Isometric's owner name or id, Puro's accountHolderName; a row
naming none is compared), and --account A (repeatable) compares exactly the accounts given.
--from and --to
(YYYY-MM-DD, inclusive) compare only rows dated in that period (the retirement's or
cancellation's date, else the issuance's) and report only ledger blocks dated in it. An
unreadable row is always compared. The text report counts the rows outside and does not
list them; --format json and csv list every row.

Exit codes: 0 nothing disagrees (every serial row matched, no ledger block unaccounted for, no
unreadable row); 1 discrepancies or unreadable rows, or the file could not be read; 2 usage error.`

func cmdReconcile(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("reconcile", "reconcile [--registry car|verra|gold-standard|isometric|puro] FILE [--project P]... [--account A]... [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--format text|json|csv] [--output FILE] [--db URL]")
	reg := fs.String("registry", "", "the registry that published FILE: car|verra|gold-standard|isometric|puro (default: told by the file's header, or a JSON file's keys)")
	var projects multiFlag
	fs.Var(&projects, "project", "compare only this registry project's rows, as the export writes its id (repeatable; default: the projects the ledger's contracts name, else every project)")
	var accounts multiFlag
	fs.Var(&accounts, "account", "compare only rows of this registry account, as the export names its holder (the Reserve's Account Holder, Isometric's owner name or id, Puro's accountHolderName); rows naming no account are compared (repeatable; default: the accounts the ledger's contracts name, else every account)")
	from := fs.String("from", "", "compare only rows dated on or after this day (YYYY-MM-DD)")
	to := fs.String("to", "", "compare only rows dated on or before this day (YYYY-MM-DD)")
	format := formatFlag(fs, "text", "text", "json", "csv")
	output := fs.String("output", "", "write to this file instead of stdout")
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprintln(a.stderr, reconcileHelp)
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("reconcile needs one FILE, the registry's export in CSV, or Puro's JSON ('-' for stdin); got %d arguments", len(pos))
	}
	if err := checkFormat(*format, "text", "json", "csv"); err != nil {
		return err
	}
	code := ""
	if *reg != "" {
		c, ok := ledger.NormalizeRegistry(*reg)
		if !ok || !slices.Contains(registry.Registries, c) {
			return usagef("--registry %q: exports of car (Climate Action Reserve), verra, gold-standard, isometric and puro are read", *reg)
		}
		code = c
	}
	var scope registry.Scope
	for _, p := range projects {
		p = strings.TrimSpace(p)
		if p == "" || strings.ContainsAny(p, ",\r\n") {
			return usagef("--project %q: give one registry project id per --project, as the export writes it (such as CAR1335, 1340 or GS11603)", p)
		}
		if slices.ContainsFunc(scope.Projects, func(q string) bool { return registry.ProjectKey(q) == registry.ProjectKey(p) }) {
			return usagef("--project %q is given twice", p)
		}
		scope.Projects = append(scope.Projects, p)
	}
	for _, acc := range accounts {
		acc = strings.TrimSpace(acc)
		if acc == "" || strings.ContainsAny(acc, "\r\n") {
			return usagef("--account %q: give one registry account per --account, as the export names its holder", acc)
		}
		if slices.ContainsFunc(scope.Accounts, func(q string) bool { return registry.AccountKey(q) == registry.AccountKey(acc) }) {
			return usagef("--account %q is given twice", acc)
		}
		scope.Accounts = append(scope.Accounts, acc)
	}
	for _, d := range []struct {
		flag, v string
		dst     *time.Time
	}{{"--from", *from, &scope.From}, {"--to", *to, &scope.To}} {
		if d.v == "" {
			continue
		}
		t, err := ledger.ParseDate(d.flag, d.v)
		if err != nil {
			return usagef("%s %q is not a date; give YYYY-MM-DD (such as 2026-02-01)", d.flag, d.v)
		}
		*d.dst = t
	}
	if !scope.From.IsZero() && !scope.To.IsZero() && scope.To.Before(scope.From) {
		return usagef("--to %s is before --from %s; the period runs from --from to --to", *to, *from)
	}
	path := pos[0]
	var in io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	exp, err := registry.Parse(in, code)
	if errors.Is(err, registry.ErrWrongRegistry) {
		return usagef("%s: %v", path, err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}

	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	blocks, err := s.LedgerSerials(ctx, exp.Registry)
	if err != nil {
		return err
	}
	// the entries recorded without serials are matched with the rows no serial block accounts
	// for (every row of an export without serials, Isometric's), by registry transaction id,
	// else by project, vintage, date and quantity
	unserialized, err := s.LedgerEntriesWithoutSerials(ctx, exp.Registry)
	if err != nil {
		return err
	}
	contracts, err := s.Contracts(ctx)
	if err != nil {
		return err
	}
	named := map[string][]string{} // contract -> its registry projects
	var namedAll []string
	namedAccounts := map[string][]string{} // contract -> its registry accounts
	var accountsAll []string
	for _, st := range contracts {
		c := st.Contract
		if c.Registry != exp.Registry {
			continue
		}
		namedAccounts[c.Code] = c.RegistryAccounts
		for _, acc := range c.RegistryAccounts {
			if !slices.ContainsFunc(accountsAll, func(q string) bool { return registry.AccountKey(q) == registry.AccountKey(acc) }) {
				accountsAll = append(accountsAll, acc)
			}
		}
		if len(c.RegistryProjects) == 0 {
			continue
		}
		named[c.Code] = c.RegistryProjects
		for _, p := range c.RegistryProjects {
			if !slices.ContainsFunc(namedAll, func(q string) bool { return registry.ProjectKey(q) == registry.ProjectKey(p) }) {
				namedAll = append(namedAll, p)
			}
		}
	}
	if len(scope.Projects) == 0 && len(namedAll) > 0 {
		scope.Projects, scope.Named = namedAll, true
	}
	if len(scope.Accounts) == 0 && len(accountsAll) > 0 {
		scope.Accounts, scope.AccountsNamed = accountsAll, true
	}
	ranges := make([]registry.LedgerRange, len(blocks))
	for i, b := range blocks {
		ranges[i] = registry.LedgerRange{Contract: b.Contract, Registry: b.Registry, Prefix: b.Prefix,
			First: b.First, Last: b.Last, State: b.State, Entry: b.Entry, Date: b.Date, Projects: named[b.Contract], Accounts: namedAccounts[b.Contract]}
		if b.State == registry.StateRetired {
			ranges[i].Retirement = &registry.Retirement{Beneficiary: b.Beneficiary, Reason: b.Reason, Claim: b.Claim}
		}
	}
	for _, e := range unserialized {
		l := registry.LedgerRange{Contract: e.Contract, Registry: e.Registry, State: registry.StateDelivered, Entry: e.Entry,
			Date: e.Date, Projects: named[e.Contract], Accounts: namedAccounts[e.Contract], Kind: e.Kind, Quantity: e.Tonnes, Vintage: e.Vintage, RegistryTx: e.RegistryTx}
		if e.Retired {
			l.State = registry.StateRetired
			l.Retirement = &registry.Retirement{Beneficiary: e.Beneficiary, Reason: e.Reason, Claim: e.Claim}
		}
		ranges = append(ranges, l)
	}
	res := registry.ReconcileIn(exp.Records, ranges, scope)
	rep := reconcileReport{File: path, Export: exp, Result: res, Scope: scope}
	if err := a.writeOutput(*output, func(w io.Writer) error {
		switch *format {
		case "json":
			return writeJSON(w, rep.view())
		case "csv":
			return rep.csv(w)
		}
		return rep.text(w)
	}); err != nil {
		return err
	}
	if !res.OK() {
		fmt.Fprintf(a.stderr, "reconcile: %s\n", rep.verdict())
		return &exitError{1}
	}
	return nil
}

type reconcileReport struct {
	File   string
	Export *registry.Export
	Result registry.Result
	Scope  registry.Scope
}

// verdict says in one line whether the file and the ledger agree.
func (r reconcileReport) verdict() string {
	compared := r.Result.Rows
	outside := ""
	if t := r.Result.Total(registry.Outside); t.Rows+t.Blocks > 0 {
		compared -= t.Rows
		var what []string
		if t.Rows > 0 {
			what = append(what, plural(t.Rows, "row"))
		}
		if t.Blocks > 0 {
			what = append(what, plural(t.Blocks, "ledger block"))
		}
		outside = "; " + strings.Join(what, " and ") + " outside the ledger's projects or the period, not compared (" + r.Scope.String() + ")"
	}
	if r.Result.OK() {
		return fmt.Sprintf("nothing disagrees: %d of %d rows matched", r.Result.Total(registry.Matched).Rows, compared) + outside
	}
	var parts []string
	for _, t := range r.Result.Totals {
		if !t.Class.Discrepancy() || t.Rows+t.Blocks == 0 {
			continue
		}
		var what []string
		if t.Rows > 0 {
			what = append(what, plural(t.Rows, "row"))
		}
		if t.Blocks > 0 {
			what = append(what, plural(t.Blocks, "ledger block"))
		}
		parts = append(parts, strings.Join(what, " and ")+" "+verdictPhrase[t.Class])
	}
	return "discrepancies: " + strings.Join(parts, ", ") + fmt.Sprintf(" (%d of %d rows matched)", r.Result.Total(registry.Matched).Rows, compared) + outside
}

var verdictPhrase = map[registry.Class]string{
	registry.Disagrees:    "disagreeing (quantity, range, state or retirement)",
	registry.RegistryOnly: "in the registry only",
	registry.LedgerOnly:   "in the ledger only",
	registry.Unreadable:   "unreadable",
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// whole writes a quantity of credits without decimals when it is whole.
func whole(t ledger.Tonnes) string { return t.Decimal().String() }

// row is one item flattened for the text and CSV tables.
type reconcileRow struct {
	line, class, serials, quantity, status, date, ledger, ledgerTonnes, detail string
	// differingFields names the retirement facts that differ ("beneficiary;date"); differences
	// gives each as field, registry and ledger; notCompared the facts left uncompared.
	differingFields, differences, notCompared string
}

func flatten(it registry.Item) reconcileRow {
	row := reconcileRow{class: string(it.Class), detail: it.Detail, ledgerTonnes: whole(it.LedgerTonnes)}
	var fields, diffs, nc []string
	for _, f := range it.Facts {
		switch f.Outcome {
		case registry.Differs:
			fields = append(fields, f.Field)
			diffs = append(diffs, fmt.Sprintf("%s: registry %q, ledger %q", f.Field, f.Registry, f.Ledger))
		case registry.NotCompared:
			nc = append(nc, f.Field)
		}
	}
	row.differingFields, row.differences, row.notCompared = strings.Join(fields, ";"), strings.Join(diffs, "; "), strings.Join(nc, ";")
	var ls []string
	for _, l := range it.Ledger {
		ls = append(ls, l.String())
	}
	row.ledger = strings.Join(ls, "; ")
	if rec := it.Record; rec != nil {
		row.line = strconv.Itoa(rec.Line)
		if rec.HasSerials() {
			row.serials = rec.Serials.String()
		}
		if rec.Err == "" {
			row.quantity, row.status, row.date = whole(rec.Quantity), string(rec.Status), ledger.FormatDate(rec.Date)
		}
		switch {
		case rec.HasSerials() || rec.Err != "":
		case rec.ID != "":
			row.serials = "(" + rec.ID + ", project " + rec.Project + ")"
		default:
			row.serials = "(" + rec.Project + " vintage " + rec.Vintage + ")"
		}
		return row
	}
	row.line = "-"
	if len(it.Ledger) == 1 {
		l := it.Ledger[0]
		row.serials = l.Where()
		row.quantity, row.status, row.date = whole(l.Tonnes()), "ledger "+l.State, ledger.FormatDate(l.Date)
	} else {
		row.quantity, row.status = whole(it.LedgerTonnes), "ledger"
	}
	return row
}

func (r reconcileReport) text(w io.Writer) error {
	what := "serial blocks and deliveries and retirements without serials"
	if r.Export.Kind == registry.IsometricIssuances || r.Export.Kind == registry.IsometricRetirements {
		what = "deliveries and retirements without serials"
	}
	fmt.Fprintf(w, "Reconciliation of %s, a %s (%d rows, %d unreadable), with the ledger's %d %s of registry %s\n\n",
		reports.Inert(r.File), r.Export.Kind.Name(), r.Result.Rows, r.Export.Unreadable(), r.Result.Blocks, what, r.Export.Registry)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLASS\tMEANING\tROWS\tLEDGER BLOCKS\tREGISTRY T\tLEDGER T")
	for _, t := range r.Result.Totals {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", t.Class, t.Class.Label(), t.Rows, t.Blocks, whole(t.Tonnes), whole(t.LedgerTonnes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if sc := r.Scope.String(); sc != "" {
		fmt.Fprintf(w, "\nCompared: %s\n", reports.Inert(sc))
	}
	fmt.Fprintf(w, "\n%s\n\n", reports.InertLines(r.verdict()))
	if t := r.Result.Total(registry.Outside); t.Rows+t.Blocks > 0 {
		fmt.Fprintf(w, "(the rows and blocks outside are not listed below; --format json or csv lists them)\n\n")
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tCLASS\tSERIALS\tQUANTITY\tSTATUS\tDATE\tDETAIL")
	for _, it := range r.Result.Items {
		if it.Class == registry.Outside {
			continue
		}
		row := flatten(it)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.line, row.class, reports.Inert(row.serials), row.quantity,
			reports.Inert(row.status), row.date, reports.Inert(row.detail))
	}
	return tw.Flush()
}

// csv writes one row per item. The registry's export and the ledger both hold text from
// outside (a beneficiary, a reason, a serial as the registry writes it): text cells a
// spreadsheet would evaluate are neutralised, the figures are not.
func (r reconcileReport) csv(w io.Writer) error {
	cw := reports.NewCSV(w)
	cw.Header("line", "class", "serials", "quantity", "status", "date", "ledger", "ledger_tonnes", "detail",
		"differing_fields", "differences", "not_compared")
	for _, it := range r.Result.Items {
		row := flatten(it)
		cw.Row(reports.Num(row.line), reports.Text(row.class), reports.Text(row.serials), reports.Num(row.quantity),
			reports.Text(row.status), reports.Text(row.date), reports.Text(row.ledger), reports.Num(row.ledgerTonnes),
			reports.Text(row.detail), reports.Text(row.differingFields), reports.Text(row.differences), reports.Text(row.notCompared))
	}
	return cw.Flush()
}

// The JSON report: field names are part of the interface.
type (
	reconcileJSON struct {
		File         string        `json:"file"`
		Kind         registry.Kind `json:"kind"`
		Registry     string        `json:"registry"`
		OK           bool          `json:"ok"`
		Rows         int           `json:"rows"`
		Unreadable   int           `json:"unreadable"`
		LedgerBlocks int           `json:"ledger_blocks"`
		Totals       []totalJSON   `json:"totals"`
		Items        []itemJSON    `json:"items"`
		Verdict      string        `json:"verdict"`
		// Scope is what was compared, when narrowed (see reconcile -h); absent otherwise.
		Scope *scopeJSON `json:"scope,omitempty"`
	}
	scopeJSON struct {
		Projects []string `json:"projects,omitempty"`
		// ProjectsFrom is "contracts" (named by the ledger's contracts) or "--project".
		ProjectsFrom string   `json:"projects_from,omitempty"`
		Accounts     []string `json:"accounts,omitempty"`
		// AccountsFrom is "contracts" (named by the ledger's contracts) or "--account".
		AccountsFrom string `json:"accounts_from,omitempty"`
		From         string `json:"from,omitempty"`
		To           string `json:"to,omitempty"`
		Description  string `json:"description"`
	}
	totalJSON struct {
		Class        registry.Class `json:"class"`
		Label        string         `json:"label"`
		Discrepancy  bool           `json:"discrepancy"`
		Rows         int            `json:"rows"`
		Blocks       int            `json:"ledger_blocks"`
		Tonnes       ledger.Tonnes  `json:"tonnes"`
		LedgerTonnes ledger.Tonnes  `json:"ledger_tonnes"`
	}
	itemJSON struct {
		Class        registry.Class  `json:"class"`
		Line         int             `json:"line,omitempty"` // 0 for ledger blocks no row accounts for
		Row          *rowJSON        `json:"row,omitempty"`
		Ledger       []ledgerBlockJS `json:"ledger"`
		LedgerTonnes ledger.Tonnes   `json:"ledger_tonnes"`
		Detail       string          `json:"detail"`
		// Differences are the facts of a retirement row that differ from the ledger's
		// retirement (each a discrepancy); Retirement every fact compared, with its outcome
		// (same, differs, not_compared, information). Both empty for other items.
		Differences []differenceJSON `json:"differences"`
		Retirement  []registry.Fact  `json:"retirement,omitempty"`
	}
	differenceJSON struct {
		Field    string `json:"field"`
		Registry string `json:"registry"`
		Ledger   string `json:"ledger"`
	}
	rowJSON struct {
		Serials     string         `json:"serials,omitempty"` // PREFIX:FIRST-LAST
		Label       string         `json:"label,omitempty"`   // as the registry writes it
		Quantity    *ledger.Tonnes `json:"quantity,omitempty"`
		Status      string         `json:"status,omitempty"`
		Date        string         `json:"date,omitempty"`
		Beneficiary string         `json:"beneficiary,omitempty"`
		Reason      string         `json:"reason,omitempty"`
		Project     string         `json:"project,omitempty"`
		Vintage     string         `json:"vintage,omitempty"`
		ID          string         `json:"id,omitempty"`    // the registry's own id of the row (Isometric's ret_..., iss_...; Puro's transaction id)
		Owner       string         `json:"owner,omitempty"` // whose credits a retirement retired, where named apart from the beneficiary
		// BeneficiaryHidden says until when the registry hides a retirement's beneficiary
		// (Puro's beneficiaryHiddenUntil: "until 2027-03-31"); the beneficiary is then not compared.
		BeneficiaryHidden string `json:"beneficiary_hidden,omitempty"`
		Problem           string `json:"problem,omitempty"`
		Error             string `json:"error,omitempty"`
		// Cancellation is why a cancelled row was cancelled, as told from its reason:
		// compliance conversion, transfer to another registry, buffer, reversal.
		Cancellation string `json:"cancellation,omitempty"`
	}
	ledgerBlockJS struct {
		Contract string        `json:"contract"`
		Serials  string        `json:"serials"`
		Tonnes   ledger.Tonnes `json:"tonnes"`
		State    string        `json:"state"`
		Entry    string        `json:"entry"`
		Date     string        `json:"date"`
	}
)

func (r reconcileReport) view() reconcileJSON {
	v := reconcileJSON{File: r.File, Kind: r.Export.Kind, Registry: r.Export.Registry, OK: r.Result.OK(), Rows: r.Result.Rows,
		Unreadable: r.Export.Unreadable(), LedgerBlocks: r.Result.Blocks, Verdict: r.verdict(),
		Totals: []totalJSON{}, Items: []itemJSON{}}
	if sc := r.Scope; !sc.IsZero() {
		v.Scope = &scopeJSON{Projects: sc.Projects, From: ledger.FormatDate(sc.From), To: ledger.FormatDate(sc.To), Description: sc.String()}
		if len(sc.Projects) > 0 {
			v.Scope.ProjectsFrom = "--project"
			if sc.Named {
				v.Scope.ProjectsFrom = "contracts"
			}
		}
		if len(sc.Accounts) > 0 {
			v.Scope.Accounts, v.Scope.AccountsFrom = sc.Accounts, "--account"
			if sc.AccountsNamed {
				v.Scope.AccountsFrom = "contracts"
			}
		}
	}
	for _, t := range r.Result.Totals {
		v.Totals = append(v.Totals, totalJSON{Class: t.Class, Label: t.Class.Label(), Discrepancy: t.Class.Discrepancy(),
			Rows: t.Rows, Blocks: t.Blocks, Tonnes: t.Tonnes, LedgerTonnes: t.LedgerTonnes})
	}
	for _, it := range r.Result.Items {
		j := itemJSON{Class: it.Class, Ledger: []ledgerBlockJS{}, LedgerTonnes: it.LedgerTonnes, Detail: it.Detail,
			Differences: []differenceJSON{}, Retirement: it.Facts}
		for _, f := range it.Differences() {
			j.Differences = append(j.Differences, differenceJSON{Field: f.Field, Registry: f.Registry, Ledger: f.Ledger})
		}
		for _, l := range it.Ledger {
			j.Ledger = append(j.Ledger, ledgerBlockJS{Contract: l.Contract, Serials: l.Where(),
				Tonnes: l.Tonnes(), State: l.State, Entry: l.Entry, Date: ledger.FormatDate(l.Date)})
		}
		if rec := it.Record; rec != nil {
			j.Line = rec.Line
			row := &rowJSON{Status: string(rec.Status), Date: ledger.FormatDate(rec.Date), Beneficiary: rec.Beneficiary,
				Reason: rec.Reason, Cancellation: string(rec.Cancellation), Project: rec.Project, Vintage: rec.Vintage, ID: rec.ID, Owner: rec.Owner,
				BeneficiaryHidden: rec.BeneficiaryHidden, Problem: rec.Problem, Error: rec.Err}
			if rec.HasSerials() {
				row.Serials, row.Label = rec.Serials.String(), rec.Serials.Label
			}
			if rec.Err == "" {
				q := rec.Quantity
				row.Quantity = &q
			}
			j.Row = row
		}
		v.Items = append(v.Items, j)
	}
	return v
}
