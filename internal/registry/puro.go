package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

// Puro.earth publishes its registry as JSON, not CSV, in two shapes that this file reads:
//
//   - a certificates list (its Registry API's certificates: the active bundles, not yet retired
//     or withdrawn, with their current owner): each record a bundle, {"certificates":
//     "PURO_PR_CORC100+_FI_577166_2020_<issuance uuid>_1-100", "volume": 100,
//     "accountHolderName", "issuanceId", "issuanceDate", "vintage", "productionFacilityCode",
//     "creditType", ...};
//   - a transactions list (the public registry's retirements list, and its Registry API's
//     transactions): each record a transaction, {"id" or "transactionId", "type" (Issuance,
//     Transfer, InternalTransfer, Retirement, Withdrawal), "completedOn" (RFC 3339),
//     "volume", "accountHolderName", "retirementDetails": {"beneficiaryName",
//     "beneficiaryHiddenUntil", "usageType", "retirementPurpose", ...}, "withdrawalDetails",
//     "bundles": [bundle, ...]}, where a retirement routinely spans several bundles.
//
// The file is one JSON value: an array of records, an object whose "data" is that array (the
// API's pages: {"pagination": {...}, "data": [...]}), or one record alone (the API's
// transaction by id). JSON lines (one record a line) is not read: no Puro source was found
// to use it. The kind is told from the first record's keys; a file no reader knows is refused
// naming the keys each kind requires and the export it looks most like.
//
// Every bundle is one Record, an inclusive serial range within its issuance: the certificate
// id read by ledger.ParseSerials, whose series is everything before the final _FIRST-LAST
// (the issuance's uuid included), so ranges of two issuances never collide. Its quantity is
// the bundle's volume, in whole credits of one tonne. A transaction of several bundles is
// several Records, each with the transaction's id, date, type and retirement details; a
// transaction of none is one Record with Err. What each type means:
//
//   - Retirement: retired, dated the day (UTC) of completedOn, for retirementDetails'
//     beneficiaryName (Owner is the accountHolderName whose credits were retired); Reason is
//     the usageType (a fixed vocabulary: GENERIC_COMPENSATION, ...), Details the
//     retirementPurpose. Puro may hide the beneficiary (and purpose) for up to 12 months: the
//     name is then absent, null or empty (or the word "hidden", which is taken for a
//     placeholder, not a name), so the beneficiary is not stated and not compared, and
//     BeneficiaryHidden says until when, from beneficiaryHiddenUntil.
//   - Withdrawal (Puro's correction of an issuance, taking credits out of circulation):
//     cancelled, never retired. Puro documents no withdrawal reason field; the reason is taken
//     from withdrawalDetails when it is text, or its "reason" when it is an object (a choice
//     made here, not a documented field), else none is given.
//   - Issuance, Transfer, InternalTransfer: these say when credits were issued or moved, not
//     where they stand now, so their bundles are not compared: each is a Record with Err
//     saying so. A file whose transactions are all of these (the public registry's issuances
//     list) is refused as a whole, pointing to the certificates list and the retirements.
//
// The field names are Puro's documented ones (its Registry API's certificates and
// transactions, the certificate id's parts) and those of the public registry's own records;
// no export of Puro's was at hand to test against, so the tests read a file built from that
// documented shape.

// puroSerialForm is Puro's serial form, for messages.
const puroSerialForm = `"PURO_PR_<credit type>_<country>_<facility>_<vintage>_<issuance uuid>_FIRST-LAST"`

// jsonShape is the keys of a JSON record that tell one kind apart: the keys every record of
// the kind has, and others it may have (which count towards the closest guess).
type jsonShape struct {
	kind               Kind
	required, optional []string
	// bundle: the keys each of a transaction's bundles must have, for messages
	bundle []string
}

var jsonShapes = []jsonShape{
	{kind: PuroTransactions, required: []string{"type", "completedOn", "bundles"},
		optional: []string{"id", "transactionId", "volume", "accountHolderName", "retirementDetails", "withdrawalDetails",
			"issuanceDetails", "labels", "transactionAdditionalLabels"},
		bundle: []string{"certificates", "volume"}},
	{kind: PuroCertificates, required: []string{"certificates", "volume"},
		optional: []string{"accountHolderName", "issuanceId", "issuanceDate", "vintage", "productionFacilityCode",
			"creditType", "methodologyCode", "productionStartDate", "productionEndDate"}},
}

// unreadJSON are JSON records of Puro's that no reader knows, by keys that tell them apart, so
// that such a file is refused naming what it is.
var unreadJSON = []struct {
	name, registry string
	keys           []string
}{
	{"Puro projects list", "puro", []string{"projectId", "code", "gsrn", "name", "countryCode", "supplierName",
		"supplierListingUrl", "methodologyCode", "creditingPeriodStart", "creditingPeriodEnd", "sdgs", "generalRules", "methodology"}},
	{"Puro production facilities list", "puro", []string{"code", "gsrn", "name", "methodologyCode", "supplierName",
		"sdgs", "country", "certificationStatus", "creditingPeriod", "geographicalLocation"}},
}

// wantJSON describes the JSON exports read and the keys they require.
func wantJSON() string {
	var want []string
	for _, s := range jsonShapes {
		w := fmt.Sprintf("%s (keys %s", withArticle(s.kind.Name()), quoteAll(s.required))
		if len(s.bundle) > 0 {
			w += fmt.Sprintf(", each bundle with %s", quoteAll(s.bundle))
		}
		want = append(want, w+")")
	}
	return strings.Join(want, "; ")
}

func quoteAll(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}

// looksJSON reports whether the file's first character (after spaces) opens a JSON array or
// object. No CSV export read starts so.
func looksJSON(br interface{ Peek(int) ([]byte, error) }) bool {
	for i := 1; i <= 4096; i++ {
		b, _ := br.Peek(i)
		if len(b) < i {
			return false
		}
		switch b[i-1] {
		case ' ', '\t', '\r', '\n':
			continue
		case '[', '{':
			return true
		}
		return false
	}
	return false
}

// span is one JSON value of the file and the byte offset it starts at.
type span struct {
	raw json.RawMessage
	off int
}

// lines finds the line of a byte offset.
type lines []int // the offsets of the file's newlines

func newLines(data []byte) lines {
	var l lines
	for i, c := range data {
		if c == '\n' {
			l = append(l, i)
		}
	}
	return l
}

func (l lines) at(off int) int { return sort.SearchInts(l, off) + 1 }

// valueStart is where the value after pos starts: past spaces and one separator.
func valueStart(data []byte, pos int) int {
	for pos < len(data) && strings.IndexByte(" \t\r\n,:", data[pos]) >= 0 {
		pos++
	}
	return pos
}

// fieldsOf reads a JSON object's members, each with its offset; ok is false when s is not an
// object.
func fieldsOf(s span) (map[string]span, []string, bool) {
	if len(s.raw) == 0 || s.raw[0] != '{' {
		return nil, nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(s.raw))
	if _, err := dec.Token(); err != nil {
		return nil, nil, false
	}
	fields := map[string]span{}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, false
		}
		if _, dup := fields[k]; !dup {
			keys = append(keys, k)
		}
		fields[k] = span{v, s.off + int(dec.InputOffset()) - len(v)}
	}
	return fields, keys, true
}

// elementsOf reads a JSON array's elements, each with its offset; ok is false when s is not
// an array.
func elementsOf(s span) ([]span, bool) {
	if len(s.raw) == 0 || s.raw[0] != '[' {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(s.raw))
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	var out []span
	for dec.More() {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out, false
		}
		out = append(out, span{v, s.off + int(dec.InputOffset()) - len(v)})
	}
	return out, true
}

// jsonBreak is where a JSON list stopped being valid JSON: its records before that are read,
// the rest is one unreadable Record.
type jsonBreak struct {
	off   int // where the record that could not be read starts
	cause error
}

// jsonError says where the JSON text from start on goes wrong, by its line. (A Decoder's
// syntax errors count from where it started scanning, not from the file's start.)
func jsonError(data []byte, li lines, start int) error {
	var v any
	err := json.Unmarshal(data[start:], &v)
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se) && int(se.Offset) >= len(data)-start && strings.Contains(se.Error(), "end of JSON input"):
		return fmt.Errorf("line %d: the file ends inside a JSON value", li.at(len(data)))
	case errors.As(err, &se):
		at := max(start, start+int(se.Offset)-1)
		return fmt.Errorf("line %d: %v", li.at(at), se)
	}
	return fmt.Errorf("line %d: not a JSON value", li.at(start))
}

// jsonRecords streams the file's records: the elements of a top-level array, or of a
// top-level object's "data" array, or the top-level object itself. A syntax error after the
// first record ends the list (brk); one before it, or anything after the top-level value,
// refuses the file.
func jsonRecords(data []byte) (recs []span, brk *jsonBreak, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	li := newLines(data)
	invalid := func(pos int) error {
		return fmt.Errorf("%w: the file is not valid JSON (%v)", ErrUnknownExport, jsonError(data, li, valueStart(data, pos)))
	}
	// stop ends the list at pos: refused when no record was read, else the rest unreadable
	stop := func(pos int) error {
		if len(recs) == 0 {
			return invalid(pos)
		}
		start := valueStart(data, pos)
		brk = &jsonBreak{off: start, cause: jsonError(data, li, start)}
		return nil
	}
	// the elements of the array the decoder just opened, and its closing ]
	list := func() error {
		for dec.More() {
			pos := int(dec.InputOffset())
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return stop(pos)
			}
			recs = append(recs, span{v, int(dec.InputOffset()) - len(v)})
		}
		pos := int(dec.InputOffset())
		if _, err := dec.Token(); err != nil {
			return stop(pos)
		}
		return nil
	}
	t, err := dec.Token()
	if err != nil {
		return nil, nil, invalid(0)
	}
	switch t {
	case json.Delim('['):
		if err := list(); err != nil {
			return nil, nil, err
		}
	case json.Delim('{'):
		start := valueStart(data, 0)
		sawData := false
		for brk == nil && dec.More() {
			pos := int(dec.InputOffset())
			k, err := dec.Token()
			if err != nil {
				if err := stop(pos); err != nil {
					return nil, nil, err
				}
				break
			}
			if at := valueStart(data, int(dec.InputOffset())); k == "data" && !sawData && at < len(data) && data[at] == '[' {
				sawData = true
				dec.Token() // the [
				if err := list(); err != nil {
					return nil, nil, err
				}
				continue
			}
			pos = int(dec.InputOffset())
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				if err := stop(pos); err != nil {
					return nil, nil, err
				}
			}
		}
		if brk != nil {
			return recs, brk, nil
		}
		pos := int(dec.InputOffset())
		if _, err := dec.Token(); err != nil { // the closing }
			if err := stop(pos); err != nil {
				return nil, nil, err
			}
			return recs, brk, nil
		}
		if !sawData {
			end := int(dec.InputOffset())
			recs = []span{{json.RawMessage(data[start:end]), start}}
		}
	default:
		return nil, nil, fmt.Errorf("%w: the file's JSON is a single %s, not a list of records", ErrUnknownExport, jsonKind(t))
	}
	if brk != nil {
		return recs, brk, nil
	}
	end := int(dec.InputOffset())
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%w: more follows the file's JSON value, which ends on line %d; give one JSON value (an array of records, or {\"data\": [...]}); JSON lines, one record a line, is not read",
			ErrUnknownExport, li.at(end))
	}
	return recs, nil, nil
}

func jsonKind(t json.Token) string {
	switch t.(type) {
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return "value"
}

// jsonTypeOf names the JSON type of a raw value, for messages.
func jsonTypeOf(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "text"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// detectJSON tells the kind of a JSON file from its first record's keys, or refuses it
// naming what each kind requires and the export it looks most like: a Puro export read or
// not, or a CSV export whose columns the record's keys are (its nested keys flattened with
// dots, as CarbonPlan flattens Isometric's API).
func detectJSON(fields map[string]span, keys []string) (Kind, error) {
	has := func(k string) bool { _, ok := fields[k]; return ok }
	for _, s := range jsonShapes {
		complete := true
		for _, k := range s.required {
			complete = complete && has(k)
		}
		if complete {
			return s.kind, nil
		}
	}
	// flattened keys, for the CSV exports' columns
	flat := map[string]bool{}
	for _, k := range keys {
		flat[normHeader(k)] = true
		if _, subKeys, ok := fieldsOf(fields[k]); ok {
			for _, sk := range subKeys {
				flat[normHeader(k+"."+sk)] = true
			}
		}
	}
	type guess struct {
		name, registry string
		found, of      int
		has, missing   []string
		how            string // "json" (read as JSON), "csv" (read as CSV), "" (not read)
		complete       bool
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
	for _, s := range jsonShapes {
		g := guess{name: s.kind.Name(), registry: s.kind.Registry(), of: len(s.required) + len(s.optional), how: "json"}
		for _, k := range s.required {
			if has(k) {
				g.found++
			} else {
				g.missing = append(g.missing, strconv.Quote(k))
			}
		}
		for _, k := range s.optional {
			if has(k) {
				g.found++
			}
		}
		consider(g)
	}
	for _, u := range unreadJSON {
		g := guess{name: u.name, registry: u.registry, of: len(u.keys)}
		for _, k := range u.keys {
			if has(k) {
				g.found++
				g.has = append(g.has, strconv.Quote(k))
			}
		}
		consider(g)
	}
	for i := range layouts {
		l := &layouts[i]
		g := guess{name: l.kind.Name(), registry: l.kind.Registry(), of: len(l.cols), how: "csv", complete: true}
		for _, c := range l.cols {
			if flat[normHeader(c.header)] {
				g.found++
				g.has = append(g.has, strconv.Quote(c.header))
			} else if c.required {
				g.complete = false
			}
		}
		if !g.complete {
			g.how = ""
		}
		consider(g)
	}
	for _, u := range unread {
		g := guess{name: u.name, registry: u.registry, of: len(u.cols)}
		for _, c := range u.cols {
			if flat[normHeader(c)] {
				g.found++
				g.has = append(g.has, strconv.Quote(c))
			}
		}
		consider(g)
	}
	switch {
	case near != nil && near.how == "json":
		return "", fmt.Errorf("%w: the JSON records look like %s but lack the key(s) %s", ErrUnknownExport, withArticle(near.name), strings.Join(near.missing, ", "))
	case near != nil && near.how == "csv":
		return "", fmt.Errorf("%w: the JSON records have the fields of %s (registry %s: %s), which reconcile reads as CSV, not JSON; the JSON exports read are %s",
			ErrUnknownExport, withArticle(near.name), near.registry, strings.Join(near.has, ", "), wantJSON())
	case near != nil:
		return "", fmt.Errorf("%w: the JSON records look most like %s (registry %s), which reconcile does not read (the records have its keys %s); the JSON exports read are %s",
			ErrUnknownExport, withArticle(near.name), near.registry, strings.Join(near.has, ", "), wantJSON())
	}
	shown := keys
	if len(shown) > 6 {
		shown = shown[:6]
	}
	return "", fmt.Errorf("%w: the JSON records' keys (%s...) are none of %s; CSV exports are told by their header row",
		ErrUnknownExport, quoteAll(shown), wantJSON())
}

// parseJSON reads a JSON file (see the top of this file).
func parseJSON(data []byte, registry string) (*Export, error) {
	recs, brk, err := jsonRecords(data)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: the JSON list is empty: no record to tell its kind by (%s)", ErrUnknownExport, wantJSON())
	}
	fields, keys, ok := fieldsOf(recs[0])
	if !ok {
		return nil, fmt.Errorf("%w: the first JSON record is %s, not an object; the JSON exports read are %s", ErrUnknownExport, jsonTypeOf(recs[0].raw), wantJSON())
	}
	kind, err := detectJSON(fields, keys)
	if err != nil {
		return nil, err
	}
	if registry != "" && kind.Registry() != registry {
		return nil, fmt.Errorf("%w: the file is a %s (registry %s), not an export of %s",
			ErrWrongRegistry, kind.Name(), kind.Registry(), registry)
	}
	p := puroReader{lines: newLines(data), kind: kind}
	exp := &Export{Kind: kind, Registry: kind.Registry()}
	for _, s := range recs {
		if kind == PuroCertificates {
			exp.Records = append(exp.Records, p.certificate(s))
		} else {
			exp.Records = append(exp.Records, p.transaction(s)...)
		}
	}
	if brk != nil {
		exp.Records = append(exp.Records, Record{Line: p.lines.at(brk.off), Registry: exp.Registry, Kind: kind,
			Err: fmt.Sprintf("is not valid JSON (%v); the rest of the file, to line %d, could not be read", brk.cause, p.lines.at(len(data)))})
	}
	if kind == PuroTransactions && p.compared == 0 && len(p.notCompared) > 0 {
		return nil, fmt.Errorf("%w: the file is a list of Puro %s transactions, which reconcile does not read: they say when credits were issued or moved, not where they stand; give Puro's certificates list (the bundles still held) or its retirements (%s)",
			ErrUnknownExport, strings.Join(p.notCompared, " and "), wantJSON())
	}
	return exp, nil
}

// puroReader reads the records of one Puro file.
type puroReader struct {
	lines lines
	kind  Kind
	// compared counts the transactions of a type that is compared (Retirement, Withdrawal);
	// notCompared names the other types met (Issuance, Transfer, InternalTransfer).
	compared    int
	notCompared []string
}

// jfields reads the fields of one JSON object, collecting what is wrong in bad.
type jfields struct {
	f    map[string]span
	path string // the object's path for messages: "" or "bundles[1]." or "retirementDetails."
	bad  *[]string
}

func (j jfields) name(k string) string { return j.path + k }

func (j jfields) has(k string) bool { _, ok := j.f[k]; return ok }

// text is a field's text, and whether it is stated: absent, null and "" are not. A number
// is read as its digits (a facility code or vintage may be either); anything else is wrong.
func (j jfields) text(k string) (string, bool) {
	s, ok := j.f[k]
	if !ok {
		return "", false
	}
	switch jsonTypeOf(s.raw) {
	case "null":
		return "", false
	case "text":
		var v string
		if err := json.Unmarshal(s.raw, &v); err != nil {
			*j.bad = append(*j.bad, fmt.Sprintf("%s is not valid text", j.name(k)))
			return "", false
		}
		v = strings.TrimSpace(v)
		return v, v != ""
	case "a number":
		return string(s.raw), true
	}
	*j.bad = append(*j.bad, fmt.Sprintf("%s is %s, not text", j.name(k), jsonTypeOf(s.raw)))
	return "", false
}

// object is an object field; ok is false when it is absent or null.
func (j jfields) object(k string) (jfields, bool) {
	s, present := j.f[k]
	if !present || jsonTypeOf(s.raw) == "null" {
		return jfields{f: map[string]span{}, path: j.name(k) + ".", bad: j.bad}, false
	}
	f, _, ok := fieldsOf(s)
	if !ok {
		*j.bad = append(*j.bad, fmt.Sprintf("%s is %s, not an object", j.name(k), jsonTypeOf(s.raw)))
		return jfields{f: map[string]span{}, path: j.name(k) + ".", bad: j.bad}, false
	}
	return jfields{f: f, path: j.name(k) + ".", bad: j.bad}, true
}

// count is a whole number of credits: a JSON number (or its digits as text).
func (j jfields) count(k string) (int64, bool) {
	s, ok := j.f[k]
	if !ok {
		*j.bad = append(*j.bad, j.name(k)+" is missing")
		return 0, false
	}
	v := string(s.raw)
	switch jsonTypeOf(s.raw) {
	case "text":
		json.Unmarshal(s.raw, &v)
	case "a number":
	case "null":
		*j.bad = append(*j.bad, j.name(k)+" is null")
		return 0, false
	default:
		*j.bad = append(*j.bad, fmt.Sprintf("%s is %s, not a number of credits", j.name(k), jsonTypeOf(s.raw)))
		return 0, false
	}
	n, err := parseCount(strings.TrimSpace(v))
	if err != nil {
		*j.bad = append(*j.bad, fmt.Sprintf("%s %s %s", j.name(k), s.raw, err))
		return 0, false
	}
	return n, true
}

// date is a field's day: YYYY-MM-DD, or an RFC 3339 instant, whose day in UTC it is.
func (j jfields) date(k string, required bool) time.Time {
	s, ok := j.text(k)
	if !ok {
		if required {
			*j.bad = append(*j.bad, j.name(k)+" is missing")
		}
		return time.Time{}
	}
	d, ok := puroDay(s)
	if !ok {
		*j.bad = append(*j.bad, fmt.Sprintf("%s %q is not a date in the registry's form YYYY-MM-DD or RFC 3339 (2026-07-31T11:41:32.098Z)", j.name(k), s))
	}
	return d
}

func puroDay(s string) (time.Time, bool) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), true
}

// puroSeries reads a Puro series (a certificate id less its _FIRST-LAST) from its end, since a
// credit type may itself hold a '_' (the older CORC_100): the facility, the vintage and the
// issuance's id are its last three parts.
func puroSeries(prefix string) (facility, vintage, issuance string, ok bool) {
	f := strings.Split(prefix, "_")
	n := len(f)
	if n < 7 || f[0] != "PURO" {
		return "", "", "", false
	}
	facility, vintage, issuance = f[n-3], f[n-2], f[n-1]
	if facility == "" || len(vintage) != 4 || !allDigits(vintage) || issuance == "" {
		return "", "", "", false
	}
	return facility, vintage, issuance, true
}

// bundle reads what every bundle states: its certificate id (the serial range), volume,
// facility and vintage (from the id where the bundle does not state them).
func (p *puroReader) bundle(rec *Record, j jfields) {
	s, ok := j.text("certificates")
	switch {
	case !ok && !j.has("certificates"):
		*j.bad = append(*j.bad, j.name("certificates")+" is missing")
	case !ok:
		*j.bad = append(*j.bad, j.name("certificates")+" is empty")
	default:
		if sr, err := parseSerials(rec.Kind, s); err != nil {
			*j.bad = append(*j.bad, fmt.Sprintf("%s %q %s", j.name("certificates"), s, err))
		} else {
			rec.Serials = sr
		}
	}
	if n, ok := j.count("volume"); ok {
		rec.Count, rec.Quantity = n, ledger.TonnesFromKg(n*1000)
	}
	facility, vintage, _, _ := puroSeries(rec.Serials.Prefix)
	rec.Project, rec.Vintage = facility, vintage
	if v, ok := j.text("productionFacilityCode"); ok {
		rec.Project = v
	}
	if v, ok := j.text("vintage"); ok {
		rec.Vintage = v
	}
}

// sizeProblem says when a bundle's volume is not the size of its range.
func sizeProblem(rec Record) string {
	if rec.HasSerials() && rec.Serials.Count() != rec.Count {
		return fmt.Sprintf("the quantity %d disagrees with its serial range %d-%d, which holds %d serials (both ends included)",
			rec.Count, rec.Serials.First, rec.Serials.Last, rec.Serials.Count())
	}
	return ""
}

// certificate reads one record of a certificates list: an active bundle, issued.
func (p *puroReader) certificate(s span) Record {
	rec := Record{Line: p.lines.at(s.off), Registry: "puro", Kind: PuroCertificates, Status: StatusIssued}
	f, _, ok := fieldsOf(s)
	if !ok {
		rec.Err = fmt.Sprintf("is %s, not a certificate bundle (a JSON object)", jsonTypeOf(s.raw))
		return rec
	}
	if _, tx := f["bundles"]; tx {
		rec.Err = "is a transaction (it has bundles), not a certificate bundle: a certificates list holds bundles only; give the transactions as a file of their own"
		return rec
	}
	var bad []string
	j := jfields{f: f, bad: &bad}
	p.bundle(&rec, j)
	rec.Date = j.date("issuanceDate", true)
	rec.Beneficiary, _ = j.text("accountHolderName") // the bundle's current owner
	if len(bad) > 0 {
		rec.Err = strings.Join(bad, "; ")
		return rec
	}
	var problems []string
	if pr := sizeProblem(rec); pr != "" {
		problems = append(problems, pr)
	}
	if id, ok := j.text("issuanceId"); ok {
		if _, _, iss, ok := puroSeries(rec.Serials.Prefix); ok && !strings.EqualFold(id, iss) {
			problems = append(problems, fmt.Sprintf("its issuanceId %s is not the issuance its certificate id names (%s)", id, iss))
		}
	}
	rec.Problem = strings.Join(problems, "; ")
	return rec
}

// transaction reads one record of a transactions list: one Record per bundle.
func (p *puroReader) transaction(s span) []Record {
	base := Record{Line: p.lines.at(s.off), Registry: "puro", Kind: PuroTransactions}
	f, _, ok := fieldsOf(s)
	if !ok {
		base.Err = fmt.Sprintf("is %s, not a transaction (a JSON object)", jsonTypeOf(s.raw))
		return []Record{base}
	}
	if _, tx := f["bundles"]; !tx {
		if _, b := f["certificates"]; b {
			base.Err = "is a certificate bundle, not a transaction: a transactions list holds transactions only; give the certificates list as a file of its own"
			return []Record{base}
		}
	}
	var tbad []string
	j := jfields{f: f, bad: &tbad}
	if id, ok := j.text("transactionId"); ok {
		base.ID = id
	} else if id, ok := j.text("id"); ok {
		base.ID = id
	}
	base.Owner, _ = j.text("accountHolderName")
	base.Date = j.date("completedOn", true)
	notCompared := ""
	typ, _ := j.text("type")
	switch strings.ToLower(typ) {
	case "retirement":
		p.compared++
		base.Status = StatusRetired
		d, _ := j.object("retirementDetails")
		name, stated := d.text("beneficiaryName")
		if stated && strings.EqualFold(name, "hidden") {
			name, stated = "", false // the registry's placeholder, not a name
		}
		if stated {
			base.Beneficiary = name
		} else if until, ok := d.text("beneficiaryHiddenUntil"); ok {
			if day, ok := puroDay(until); ok {
				until = ledger.FormatDate(day)
			}
			base.BeneficiaryHidden = "until " + until
		}
		base.Reason, _ = d.text("usageType")
		base.Details, _ = d.text("retirementPurpose")
	case "withdrawal":
		p.compared++
		base.Status = StatusCancelled
		base.Reason = withdrawalReason(j)
		base.Cancellation = cancelReasonOf(base.Reason)
	case "issuance", "transfer", "internaltransfer":
		if !containsFold(p.notCompared, typ) {
			p.notCompared = append(p.notCompared, typ)
		}
		what := "moved"
		if strings.EqualFold(typ, "issuance") {
			what = "issued"
		}
		notCompared = fmt.Sprintf("is a bundle of %s transaction, which says when credits were %s, not where they stand now; it is not compared (Puro's certificates list gives the bundles still held, its retirements the retired ones)",
			withArticle(typ), what)
	case "":
		if j.has("type") {
			tbad = append(tbad, "type is empty")
		} else {
			tbad = append(tbad, "type is missing")
		}
	default:
		tbad = append(tbad, fmt.Sprintf("type %q is not one of Retirement, Withdrawal (compared) or Issuance, Transfer, InternalTransfer (not compared)", typ))
	}
	var bundles []span
	if b, present := f["bundles"]; !present {
		tbad = append(tbad, "bundles is missing")
	} else if bundles, ok = elementsOf(b); !ok {
		tbad = append(tbad, fmt.Sprintf("bundles is %s, not a list of certificate bundles", jsonTypeOf(b.raw)))
	} else if len(bundles) == 0 {
		tbad = append(tbad, "bundles is empty: the transaction names no certificate bundle")
	}
	if len(bundles) == 0 {
		if notCompared != "" {
			tbad = append(tbad, notCompared)
		}
		base.Err = strings.Join(tbad, "; ")
		return []Record{base}
	}
	out := make([]Record, 0, len(bundles))
	var sum int64
	readable := true
	for i, b := range bundles {
		rec := base
		rec.Line = p.lines.at(b.off)
		bad := append([]string(nil), tbad...)
		bf, _, ok := fieldsOf(b)
		if !ok {
			bad = append(bad, fmt.Sprintf("bundles[%d] is %s, not a certificate bundle (a JSON object)", i, jsonTypeOf(b.raw)))
		} else {
			p.bundle(&rec, jfields{f: bf, path: fmt.Sprintf("bundles[%d].", i), bad: &bad})
		}
		if notCompared != "" {
			bad = append(bad, notCompared)
		}
		if len(bad) > 0 {
			rec.Err = strings.Join(bad, "; ")
			readable = false
		} else {
			rec.Problem = sizeProblem(rec)
			sum += rec.Count
		}
		out = append(out, rec)
	}
	// the transaction's volume is its bundles' volumes summed
	if readable && j.has("volume") {
		var vbad []string
		if v, ok := (jfields{f: f, bad: &vbad}).count("volume"); ok && v != sum {
			why := fmt.Sprintf("the transaction's volume %d is not the sum of its %d bundles' volumes (%d)", v, len(out), sum)
			for i := range out {
				out[i].Problem = strings.TrimPrefix(out[i].Problem+"; "+why, "; ")
			}
		}
	}
	return out
}

// withdrawalReason is the reason a withdrawal states: withdrawalDetails when it is text, its
// "reason" when it is an object, else none. Puro documents the field but not its contents.
func withdrawalReason(j jfields) string {
	s, ok := j.f["withdrawalDetails"]
	if !ok {
		return ""
	}
	if jsonTypeOf(s.raw) == "text" {
		r, _ := j.text("withdrawalDetails")
		return r
	}
	d, _ := j.object("withdrawalDetails")
	r, _ := d.text("reason")
	return r
}

func containsFold(xs []string, s string) bool {
	for _, x := range xs {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
