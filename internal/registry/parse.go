package registry

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

// The fields a layout maps columns onto.
const (
	fSerials     = "serials"
	fQuantity    = "quantity"
	fStatus      = "status"      // Gold Standard's Credit Status
	fDate        = "date"        // the status date (CAR: Status Effective / Date Issued; Verra, Gold Standard: retirement)
	fIssued      = "issued"      // Verra's and Gold Standard's issuance date
	fProject     = "project"     // project id
	fVintage     = "vintage"     // CAR vintage year; Verra vintage start
	fVintageEnd  = "vintage_end" // Verra vintage end
	fBeneficiary = "beneficiary"
	fReason      = "reason"
	fDetails     = "details"
	fID          = "id"       // the registry's own id of the row (Isometric)
	fOwner       = "owner"    // the account whose credits were retired (Isometric's owner.name, the Reserve's Account Holder)
	fOwnerID     = "owner_id" // the registry's id of that account (Isometric's owner.id)
	fCredits     = "credits"  // Isometric's quantity in credits (tonnes, up to 3 decimals)
	fKgs         = "kgs"      // Isometric's quantity in kilograms, which must be whole
)

type column struct {
	field, header string
	required      bool
}

// layout is the header of one kind of export. Columns are found by name, so a registry that
// adds or reorders columns is still read; required columns tell the kinds apart.
type layout struct {
	kind Kind
	cols []column
	// dateForm is the registry's own date format, for messages; dateLayout for time.Parse.
	dateForm, dateLayout string
	// dateTime: a date may carry a time of day ("2026-04-13T12:35:58.842275"), which is
	// dropped.
	dateTime bool
}

var layouts = []layout{
	{kind: CARRetirements, dateForm: "MM/DD/YYYY", dateLayout: "1/2/2006", cols: []column{
		{fSerials, "Offset Credit Serial Numbers", true},
		{fQuantity, "Quantity of Offset Credits", true},
		{fDate, "Status Effective", true},
		{fVintage, "Vintage", false},
		{fProject, "Project ID", false},
		{fBeneficiary, "Account Holder", false},
		{fOwner, "Account Holder", false},
		{fReason, "Retirement Reason", false},
		{fDetails, "Retirement Reason Details", false},
	}},
	// The cancellations report has every required column of the retirements report; detect
	// prefers the layout with the most required columns, so its Cancellation Reason makes it
	// a cancellations report.
	{kind: CARCancellations, dateForm: "MM/DD/YYYY", dateLayout: "1/2/2006", cols: []column{
		{fSerials, "Offset Credit Serial Numbers", true},
		{fQuantity, "Quantity of Offset Credits", true},
		{fDate, "Status Effective", true},
		{fReason, "Cancellation Reason", true},
		{fVintage, "Vintage", false},
		{fProject, "Project ID", false},
		{fDetails, "Export Notes", false},
	}},
	{kind: CARIssuances, dateForm: "MM/DD/YYYY", dateLayout: "1/2/2006", cols: []column{
		{fDate, "Date Issued", true},
		{fProject, "Project ID", true},
		{fVintage, "Vintage", true},
		{fQuantity, "Total Offset Credits Issued", true},
	}},
	{kind: VerraTransactions, dateForm: "YYYY-MM-DD", dateLayout: time.DateOnly, cols: []column{
		{fSerials, "Serial Number", true},
		{fQuantity, "Quantity Issued", true},
		{fIssued, "Issuance Date", true},
		{fDate, "Retirement/Cancellation Date", true},
		{fProject, "ID", false},
		{fVintage, "Vintage Start", false},
		{fVintageEnd, "Vintage End", false},
		{fBeneficiary, "Retirement Beneficiary", false},
		{fReason, "Retirement Reason", false},
		{fDetails, "Retirement Details", false},
	}},
	// Gold Standard writes issuance dates with a time of day in its issuances export and
	// without in its retirements export. The retirements export has every column of the
	// issuances export; its Retirement Date tells it apart.
	{kind: GSIssuances, dateForm: "YYYY-MM-DD", dateLayout: time.DateOnly, dateTime: true, cols: []column{
		{fSerials, "Serial Number", true},
		{fQuantity, "Quantity", true},
		{fStatus, "Credit Status", true},
		{fIssued, "Issuance Date", true},
		{fProject, "GSID", true},
		{fVintage, "Vintage", false},
	}},
	{kind: GSRetirements, dateForm: "YYYY-MM-DD", dateLayout: time.DateOnly, dateTime: true, cols: []column{
		{fSerials, "Serial Number", true},
		{fQuantity, "Quantity", true},
		{fStatus, "Credit Status", true},
		{fIssued, "Issuance Date", true},
		{fProject, "GSID", true},
		{fDate, "Retirement Date", true},
		{fVintage, "Vintage", false},
		{fBeneficiary, "Using Entity", false},
		{fReason, "Use Case", false},
		{fDetails, "Note", false},
	}},
	// Isometric: CarbonPlan's flattening of its API. Dates are RFC 3339 instants
	// ("2026-04-09T18:21:22.047712Z"); the row's day is the instant's day in UTC.
	{kind: IsometricIssuances, dateForm: "RFC 3339 (2026-04-14T16:50:41.621676Z)", dateLayout: time.RFC3339Nano, cols: []column{
		{fID, "id", true},
		{fDate, "issued_at", true},
		{fProject, "project_id", true},
		{fKgs, "supplier_credit_batch_size_total.credit_kgs", true},
		{fCredits, "supplier_credit_batch_size_total.credits", false},
		{fBeneficiary, "supplier.organisation.name", false},
	}},
	{kind: IsometricRetirements, dateForm: "RFC 3339 (2026-04-09T18:21:22.047712Z)", dateLayout: time.RFC3339Nano, cols: []column{
		{fID, "retirement_id", true},
		{fDate, "retired_at", true},
		{fProject, "project_id", true},
		{fKgs, "credit_batch_size_total.credit_kgs", true},
		{fCredits, "credit_batch_size_total.credits", false},
		{fBeneficiary, "beneficiary.name", false},
		{fOwner, "owner.name", false},
		{fOwnerID, "owner.id", false},
		{fReason, "purposes", false},
		{fDetails, "notes", false},
	}},
}

var bom = []byte("\xef\xbb\xbf")

// normHeader compares column names without regard to case, spacing or a stray BOM.
func normHeader(s string) string {
	s = strings.TrimPrefix(s, string(bom))
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// detect finds the layout of a header and the index of each of its fields. When the header
// has every required column of more than one layout, the one that requires the most wins:
// its extra column is what tells it apart (a cancellations report is a retirements report's
// columns and a Cancellation Reason).
func detect(header []string) (*layout, map[string]int, error) {
	idx := map[string]int{}
	for i, h := range header {
		if _, dup := idx[normHeader(h)]; !dup {
			idx[normHeader(h)] = i
		}
	}
	var whole *layout
	wholeFound := 0
	for i := range layouts {
		l := &layouts[i]
		found, complete := 0, true
		for _, c := range l.cols {
			if !c.required {
				continue
			}
			if _, ok := idx[normHeader(c.header)]; ok {
				found++
			} else {
				complete = false
			}
		}
		if complete && found > wholeFound {
			whole, wholeFound = l, found
		}
	}
	if whole != nil {
		cols := map[string]int{}
		for _, c := range whole.cols {
			if j, ok := idx[normHeader(c.header)]; ok {
				cols[c.field] = j
			}
		}
		return whole, cols, nil
	}
	// No reader knows the header: name the export it looks most like, read or not, by the
	// number of that export's columns it has (ties to the export more of whose columns it
	// has), and the columns each export that is read requires.
	type guess struct {
		name, registry string
		found, of      int
		has, missing   []string
		read           bool
		json           bool // an export read as JSON (Puro's), whose keys the header has
	}
	var near *guess
	consider := func(g guess) {
		if g.found < 2 {
			return
		}
		if near == nil || g.found > near.found || (g.found == near.found && g.found*near.of > near.found*g.of) {
			near = &g
		}
	}
	for i := range layouts {
		l := &layouts[i]
		g := guess{name: l.kind.Name(), registry: l.kind.Registry(), of: len(l.cols), read: true}
		for _, c := range l.cols {
			if _, ok := idx[normHeader(c.header)]; ok {
				g.found++
			} else if c.required {
				g.missing = append(g.missing, strconv.Quote(c.header))
			}
		}
		consider(g)
	}
	for _, u := range unread {
		g := guess{name: u.name, registry: u.registry, of: len(u.cols)}
		for _, c := range u.cols {
			if _, ok := idx[normHeader(c)]; ok {
				g.found++
				g.has = append(g.has, strconv.Quote(c))
			}
		}
		consider(g)
	}
	for _, sh := range jsonShapes {
		g := guess{name: sh.kind.Name(), registry: sh.kind.Registry(), of: len(sh.required) + len(sh.optional), json: true}
		for _, k := range append(slices.Clone(sh.required), sh.optional...) {
			if _, ok := idx[normHeader(k)]; ok {
				g.found++
				g.has = append(g.has, strconv.Quote(k))
			}
		}
		consider(g)
	}
	var want []string
	for _, l := range layouts {
		var req []string
		for _, c := range l.cols {
			if c.required {
				req = append(req, strconv.Quote(c.header))
			}
		}
		want = append(want, fmt.Sprintf("%s (columns %s)", withArticle(l.kind.Name()), strings.Join(req, ", ")))
	}
	switch {
	case near != nil && near.json:
		return nil, nil, fmt.Errorf("%w: the header has the keys of %s (registry %s: %s), which reconcile reads as JSON, not CSV; the CSV exports read are %s",
			ErrUnknownExport, withArticle(near.name), near.registry, strings.Join(near.has, ", "), strings.Join(want, "; "))
	case near != nil && near.read:
		return nil, nil, fmt.Errorf("%w: the header looks like a %s but lacks the column(s) %s",
			ErrUnknownExport, near.name, strings.Join(near.missing, ", "))
	case near != nil && !near.read:
		return nil, nil, fmt.Errorf("%w: the header looks most like %s (registry %s), which reconcile does not read yet (the header has its columns %s); the exports read are %s",
			ErrUnknownExport, withArticle(near.name), near.registry, strings.Join(near.has, ", "), strings.Join(want, "; "))
	}
	shown := header
	if len(shown) > 6 {
		shown = shown[:6]
	}
	quoted := make([]string, len(shown))
	for i, h := range shown {
		quoted[i] = strconv.Quote(h)
	}
	return nil, nil, fmt.Errorf("%w: the header (%s...) is none of %s; Puro's exports are read as JSON: %s", ErrUnknownExport,
		strings.Join(quoted, ", "), strings.Join(want, "; "), wantJSON())
}

// withArticle puts "a" or "an" before a name.
func withArticle(name string) string {
	if name != "" && strings.ContainsRune("AEIOUaeiou", rune(name[0])) {
		return "an " + name
	}
	return "a " + name
}

// unread are exports of registries that no reader knows yet, by columns that tell them apart,
// so that such a file is refused naming its registry rather than the one it shares a column or
// two with. A later export's columns include an earlier one's of the same registry where the
// files do.
var unread = []struct {
	name, registry string
	cols           []string
}{
	{"Isometric projects export", "isometric", []string{"id", "name", "status", "short_code", "protocol_slug",
		"issued_credits_total.credits", "issued_credits_total.credit_kgs", "retired_credits_total.credits",
		"retired_credits_total.credit_kgs", "crediting_period_start", "crediting_period_end"}},
}

// DetectKind tells the kind of export from its header row.
func DetectKind(header []string) (Kind, error) {
	l, _, err := detect(header)
	if err != nil {
		return "", err
	}
	return l.kind, nil
}

// Parse reads a registry export: CSV, told by its header row, or JSON (Puro's), told by its
// first record's keys (see parseJSON). registry is "car", "verra", "gold-standard",
// "isometric", "puro", or "" to go by the file alone; a file of another registry than the one
// named is refused (ErrWrongRegistry), and so is one of no known export (ErrUnknownExport),
// naming the columns or keys each export requires and the export it looks most like. Rows
// that cannot be read do not stop the parse: each becomes a Record with its line number and
// Err.
func Parse(r io.Reader, registry string) (*Export, error) {
	if registry != "" && !slices.Contains(Registries, registry) {
		return nil, fmt.Errorf("registry %q: exports of %s are read", registry, strings.Join(Registries, ", "))
	}
	br := bufio.NewReader(r)
	if b, _ := br.Peek(len(bom)); bytes.Equal(b, bom) {
		br.Discard(len(bom))
	}
	if looksJSON(br) {
		data, err := io.ReadAll(br)
		if err != nil {
			return nil, err
		}
		return parseJSON(data, registry)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // a row of the wrong width is reported, not fatal
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: the file is empty (no header row)", ErrUnknownExport)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: the header row is not CSV: %v", ErrUnknownExport, err)
	}
	l, cols, err := detect(header)
	if err != nil {
		return nil, err
	}
	if registry != "" && l.kind.Registry() != registry {
		return nil, fmt.Errorf("%w: the file is a %s (registry %s), not an export of %s",
			ErrWrongRegistry, l.kind.Name(), l.kind.Registry(), registry)
	}
	exp := &Export{Kind: l.kind, Registry: l.kind.Registry()}
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, err
			}
			why := fmt.Sprintf("is not valid CSV (line %d, column %d: %v)", pe.Line, pe.Column, pe.Err)
			if pe.Line > pe.StartLine {
				why += fmt.Sprintf("; lines %d to %d could not be read", pe.StartLine, pe.Line)
			}
			exp.Records = append(exp.Records, Record{Line: pe.StartLine, Registry: exp.Registry, Kind: l.kind, Err: why})
			continue
		}
		line, _ := cr.FieldPos(0)
		exp.Records = append(exp.Records, l.record(line, row, len(header), cols))
	}
	return exp, nil
}

// Registries are the registries whose exports Parse reads, as ledger.NormalizeRegistry names
// them.
var Registries = []string{"car", "verra", "gold-standard", "isometric", "puro"}

// record reads one data row.
func (l *layout) record(line int, row []string, width int, cols map[string]int) Record {
	rec := Record{Line: line, Registry: l.kind.Registry(), Kind: l.kind}
	if len(row) != width {
		rec.Err = fmt.Sprintf("has %d fields where the header has %d", len(row), width)
		return rec
	}
	if strings.TrimSpace(strings.Join(row, "")) == "" {
		rec.Err = "is empty (every field is blank)"
		return rec
	}
	get := func(f string) string {
		if i, ok := cols[f]; ok {
			return strings.TrimSpace(row[i])
		}
		return ""
	}
	header := func(f string) string {
		for _, c := range l.cols {
			if c.field == f {
				return c.header
			}
		}
		return f
	}
	var bad []string
	date := func(f string, required bool) time.Time {
		s := get(f)
		if s == "" {
			if required {
				bad = append(bad, header(f)+" is empty")
			}
			return time.Time{}
		}
		day := s
		if l.dateTime {
			// a time of day, when given, must be one; only the day is kept
			if d, clock, ok := strings.Cut(s, "T"); ok {
				if _, err := time.Parse("15:04:05.999999999", clock); err != nil {
					bad = append(bad, fmt.Sprintf("%s %q is not a date in the registry's form %s (optionally with a time, THH:MM:SS)", header(f), s, l.dateForm))
					return time.Time{}
				}
				day = d
			}
		}
		t, err := time.Parse(l.dateLayout, day)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s %q is not a date in the registry's form %s", header(f), s, l.dateForm))
		}
		return t
	}

	rec.Project, rec.Beneficiary, rec.Reason, rec.Details = get(fProject), get(fBeneficiary), get(fReason), get(fDetails)
	rec.ID, rec.Owner, rec.OwnerID = get(fID), get(fOwner), get(fOwnerID)
	rec.Vintage = get(fVintage)
	if end := get(fVintageEnd); end != "" && end != rec.Vintage {
		rec.Vintage += " to " + end
	}
	if l.kind == IsometricIssuances || l.kind == IsometricRetirements {
		l.isometric(&rec, get, header, &bad)
		if len(bad) > 0 {
			rec.Err = strings.Join(bad, "; ")
		}
		return rec
	}
	if n, err := parseCount(get(fQuantity)); err != nil {
		bad = append(bad, fmt.Sprintf("%s %q %s", header(fQuantity), get(fQuantity), err))
	} else {
		rec.Count, rec.Quantity = n, ledger.TonnesFromKg(n*1000)
	}
	switch l.kind {
	case CARRetirements:
		rec.Status = StatusRetired
		rec.Date = date(fDate, true)
	case CARCancellations:
		rec.Status, rec.Cancellation = StatusCancelled, cancelReasonOf(rec.Reason)
		rec.Date = date(fDate, true)
	case CARIssuances:
		rec.Status = StatusIssued
		rec.Date = date(fDate, true)
	case VerraTransactions:
		issued := date(fIssued, true)
		if get(fDate) == "" {
			rec.Status, rec.Date = StatusIssued, issued
		} else {
			rec.Date = date(fDate, false)
			rec.Status = verraStatus(rec.Beneficiary, rec.Reason)
			if rec.Status == StatusCancelled {
				rec.Cancellation = cancelReasonOf(rec.Reason)
			}
		}
	case GSIssuances, GSRetirements:
		l.goldStandardStatus(&rec, get(fStatus), header(fStatus), date, &bad)
	}
	if _, ok := cols[fSerials]; ok {
		s := get(fSerials)
		if sr, err := parseSerials(l.kind, s); err != nil {
			bad = append(bad, fmt.Sprintf("%s %q %s", header(fSerials), s, err))
		} else {
			rec.Serials = sr
		}
	}
	if len(bad) > 0 {
		rec.Err = strings.Join(bad, "; ")
		return rec
	}
	if rec.HasSerials() && rec.Serials.Count() != rec.Count {
		rec.Problem = fmt.Sprintf("the quantity %d disagrees with its serial range %s, which holds %d serials (both ends included)",
			rec.Count, serialSpan(rec.Serials.Prefix, rec.Serials.First, rec.Serials.Last), rec.Serials.Count())
	}
	return rec
}

var wholeKgRE = regexp.MustCompile(`^[0-9]+(?:\.0+)?$`)

// isometric reads the quantity, date and status of an Isometric row. The quantity is the
// kilogram column, which must be a whole number of kilograms (ledger.Tonnes is exact to the
// kilogram); the credits column, when present, must say the same in tonnes (one credit is one
// tonne: credits 531.0 is credit_kgs 531000, credits 0.019 is credit_kgs 19). The date is the
// instant's day in UTC.
func (l *layout) isometric(rec *Record, get func(string) string, header func(string) string, bad *[]string) {
	if l.kind == IsometricIssuances {
		rec.Status = StatusIssued
	} else {
		rec.Status = StatusRetired
		// purposes is a Python list as text: ['corporate_targets']
		p := strings.Trim(rec.Reason, "[]")
		var ps []string
		for _, x := range strings.Split(p, ",") {
			if x = strings.Trim(strings.TrimSpace(x), `'"`); x != "" {
				ps = append(ps, x)
			}
		}
		rec.Reason = strings.Join(ps, ", ")
	}
	kgs := get(fKgs)
	switch {
	case kgs == "":
		*bad = append(*bad, header(fKgs)+" is empty")
	case !wholeKgRE.MatchString(kgs):
		*bad = append(*bad, fmt.Sprintf("%s %q is not a whole number of kilograms (the ledger is exact to the kilogram)", header(fKgs), kgs))
	default:
		n, err := strconv.ParseInt(strings.SplitN(kgs, ".", 2)[0], 10, 64)
		if err != nil || n > 1e18 {
			*bad = append(*bad, fmt.Sprintf("%s %q is too large", header(fKgs), kgs))
			break
		}
		rec.Count, rec.Quantity = n, ledger.TonnesFromKg(n)
		if c := get(fCredits); c != "" {
			t, err := ledger.ParseTonnes(c)
			if err != nil || !t.Equal(rec.Quantity) {
				*bad = append(*bad, fmt.Sprintf("%s %q is not %s %q in tonnes (one credit is one tonne)", header(fCredits), c, header(fKgs), kgs))
			}
		}
	}
	s := get(fDate)
	if s == "" {
		*bad = append(*bad, header(fDate)+" is empty")
		return
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		*bad = append(*bad, fmt.Sprintf("%s %q is not a date in the registry's form %s", header(fDate), s, l.dateForm))
		return
	}
	t = t.UTC()
	rec.Date = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// goldStandardStatus maps a Gold Standard row's Credit Status onto a status, explicitly:
// Issued is issued (dated by its issuance), Retired is retired (dated by its Retirement Date,
// which it must have), Canceled (or Cancelled) is cancelled, never retired, for the reason its
// Use Case and Note give (dated by its Retirement Date when it has one, else its issuance).
// Any other status is an error naming the ones read.
func (l *layout) goldStandardStatus(rec *Record, status, column string, date func(string, bool) time.Time, bad *[]string) {
	issued := date(fIssued, true)
	switch strings.ToLower(status) {
	case "issued":
		rec.Status, rec.Date = StatusIssued, issued
	case "retired":
		rec.Status = StatusRetired
		if l.kind == GSIssuances {
			*bad = append(*bad, fmt.Sprintf("%s %q has no Retirement Date column in an issuances export", column, status))
			return
		}
		rec.Date = date(fDate, true)
	case "canceled", "cancelled":
		rec.Status, rec.Date = StatusCancelled, issued
		if _, ok := l.col(fDate); ok {
			if d := date(fDate, false); !d.IsZero() {
				rec.Date = d
			}
		}
		// the Note says why (say "Transferred to Zimbabwe Carbon Registry ..."); keep it as the
		// reason when the Use Case is empty
		if rec.Reason == "" {
			rec.Reason, rec.Details = rec.Details, ""
		}
		rec.Cancellation = cancelReasonOf(rec.Reason + " " + rec.Details)
	case "":
		*bad = append(*bad, column+" is empty")
	default:
		*bad = append(*bad, fmt.Sprintf("%s %q is not one of Issued, Retired, Canceled", column, status))
	}
}

// col finds the column of a field in the layout.
func (l *layout) col(f string) (column, bool) {
	for _, c := range l.cols {
		if c.field == f {
			return c, true
		}
	}
	return column{}, false
}

// verraStatus tells a retirement from a cancellation. Verra's export puts both under
// "Retirement/Cancellation Date"; a beneficiary or a retirement reason marks a retirement, a
// reason that speaks of cancelling a cancellation, and a row with neither cannot be told.
func verraStatus(beneficiary, reason string) Status {
	if strings.Contains(strings.ToLower(reason), "cancel") {
		return StatusCancelled
	}
	if beneficiary != "" || reason != "" {
		return StatusRetired
	}
	return StatusRetiredOrCancelled
}

var countRE = regexp.MustCompile(`^(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.0+)?$`)

// parseCount reads a whole number of credits: "5000", "28,571", or "5000.0" (as a
// spreadsheet may have written it).
func parseCount(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("is empty")
	}
	if !countRE.MatchString(s) {
		if strings.HasPrefix(s, "-") {
			return 0, errors.New("is negative")
		}
		return 0, errors.New("is not a whole number of credits (digits, optionally grouped by thousands: 28,571)")
	}
	s, _, _ = strings.Cut(s, ".")
	n, err := strconv.ParseInt(strings.ReplaceAll(s, ",", ""), 10, 64)
	if err != nil || n > 1e15 {
		return 0, errors.New("is too large")
	}
	return n, nil
}

// parseSerials reads a serial range in the registry's own form.
func parseSerials(k Kind, s string) (ledger.SerialRange, error) {
	if s == "" {
		return ledger.SerialRange{}, errors.New("is empty")
	}
	form := `"CAR-...-FIRST to LAST"`
	switch k {
	case VerraTransactions:
		form = `"BLOCK-FIRST-LAST-VCS-..."`
	case GSIssuances, GSRetirements:
		form = `"GS1-...-BATCH-FIRST-LAST" (or, for credits carried over, "RW-5-FIRST-... - RW-5-LAST-...")`
	case PuroCertificates, PuroTransactions:
		form = puroSerialForm
	}
	r, err := ledger.ParseSerials(s)
	if err != nil {
		var fe *ledger.FieldError
		if errors.As(err, &fe) && strings.Contains(fe.Rule, "ends before") {
			return r, errors.New("ends before it starts (a range is FIRST to LAST, both included)")
		}
		if errors.As(err, &fe) && (k == GSIssuances || k == GSRetirements) && strings.Contains(fe.Rule, "Gold Standard") {
			return r, errors.New(fe.Rule) // the ledger's reason names Gold Standard's forms
		}
		if errors.As(err, &fe) && (k == PuroCertificates || k == PuroTransactions) && strings.Contains(fe.Rule, "Puro") {
			return r, errors.New(fe.Rule) // the ledger's reason names Puro's forms (and its legacy serials)
		}
		return r, fmt.Errorf("is not a serial range in the registry's form %s", form)
	}
	ok := false
	switch k {
	case CARRetirements, CARCancellations:
		ok = strings.HasPrefix(r.Prefix, "CAR-") && strings.Contains(s, " to ")
	case VerraTransactions:
		ok = (strings.HasPrefix(r.Prefix, "VCS-") || strings.HasPrefix(r.Prefix, "CCB-")) && !strings.Contains(s, ":")
	case GSIssuances, GSRetirements:
		ok = !strings.Contains(s, ":") && (strings.HasPrefix(r.Prefix, "GS") || strings.Contains(s, " - "))
	case PuroCertificates, PuroTransactions:
		ok = !strings.Contains(s, ":") && strings.HasPrefix(r.Prefix, "PURO_")
	}
	if !ok {
		return ledger.SerialRange{}, fmt.Errorf("is not a serial range in the registry's form %s", form)
	}
	return r, nil
}

// carProjectVintage reads the project and vintage out of a Reserve serial series:
// "CAR-1-US-1335-31-983-KS-2025-9205" is project CAR1335, vintage 2025.
func carProjectVintage(prefix string) (project, vintage string, ok bool) {
	prefix, _, _ = strings.Cut(prefix, "#") // the high digits of wide serials, if any
	f := strings.Split(prefix, "-")
	if len(f) < 6 || f[0] != "CAR" {
		return "", "", false
	}
	project, vintage = f[3], f[len(f)-2]
	if !allDigits(project) || len(vintage) != 4 || !allDigits(vintage) {
		return "", "", false
	}
	return "CAR" + project, vintage, true
}

// serialSpan writes the serials first..last of series prefix as FIRST-LAST, each number in full.
func serialSpan(prefix string, first, last int64) string {
	return ledger.SerialNumber(prefix, first) + "-" + ledger.SerialNumber(prefix, last)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
