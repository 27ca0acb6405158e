package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/internal/httpapi"
	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/internal/store"
)

// badInput is one entry of the catalogue of bad inputs: an operation (or a contract) given
// the same way to the three front ends, and the exact refusal each must give. A zero want
// leaves that front end out, for an input only it can receive.
type badInput struct {
	name string
	op   string            // deliver, retire, cancel, reverse, amend, revert, or contract
	in   map[string]string // the operation's fields by the ledger's names; a contract's JSON is in["terms"]

	cli cliWant
	api apiWant
	imp impWant

	// Front-end specific input, when the shared one cannot say it.
	apiBody   *string           // the raw body instead of in's JSON
	apiHdr    map[string]string // headers to set (Content-Type, Idempotency-Key)
	impFile   string            // the raw import file instead of a one-row CSV of in
	impNDJSON bool              // impFile is NDJSON
}

// cliWant is what the command prints on stderr, exactly, and its exit code.
type cliWant struct {
	exit   int
	stderr string
}

// apiWant is the problem+json answer: status, type and the first field and rule.
type apiWant struct {
	status      int
	kind        string
	field, rule string
}

// impWant is the import's refusal of the row (line 2, or the file's line): field and rule.
type impWant struct {
	line        int
	field, rule string
}

// catalogue holds one contract, CAT-1 (1,000 t over 2025-2026, registry car, USD prices),
// with 100 t delivered as CAR-CAT:1-100, reachable by the CLI, the real API routes and
// import at once.
type catalogue struct {
	t        *testing.T
	c        cli
	srv      *httptest.Server
	tokens   map[string]string
	dir      string
	delivery string // the delivery's entry id
}

const catalogueContract = `{"code":"CAT-1","buyer":"Acme Buyer","supplier":"Good Supplier","project":"Kiln 1","method":"biochar",
"country":"MX","region":"Guanajuato","registry":"car","standard":"Test protocol","durability_years":"100+",
"term_start":"2025-01-01","term_end":"2026-12-31","signed_on":"2024-12-01","tonnes":"1000","price_per_tonne":"120.50",
"currency":"USD","delivery_mode":"transfer"}`

func newCatalogue(t *testing.T) *catalogue {
	c := newCLI(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "cat.json")
	if err := os.WriteFile(path, []byte(catalogueContract), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok("contract", "add", "-f", path)
	out := c.ok("deliver", "--contract", "CAT-1", "--tonnes", "100", "--date", "2025-03-01", "--serials", "CAR-CAT:1-100", "--key", "cat-delivery")
	st, err := store.Open(context.Background(), c.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	api := httpapi.New(st, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	cat := &catalogue{t: t, c: c, srv: srv, tokens: map[string]string{}, dir: dir, delivery: entryID(t, out)}
	for _, role := range []string{"admin", "viewer"} {
		if cat.tokens[role], err = st.CreateToken(context.Background(), "cat-"+role, role, nil); err != nil {
			t.Fatal(err)
		}
	}
	return cat
}

// fingerprint is every table's rows (pgtest.Fingerprint).
func (cat *catalogue) fingerprint() string { return pgtest.Fingerprint(cat.t, cat.c.db) }

// unchanged fails when what ran changed the database.
func (cat *catalogue) unchanged(t *testing.T, front string, before string) {
	t.Helper()
	if after := cat.fingerprint(); after != before {
		t.Errorf("%s changed the database:\nbefore:\n%s\nafter:\n%s", front, before, after)
	}
}

// cliArgs builds the command line of b: the operation's flags (ledger fields by their flag
// names), or contract add -f FILE.
func (cat *catalogue) cliArgs(b badInput) []string {
	if b.op == "contract" {
		path := filepath.Join(cat.dir, "contract.json")
		if err := os.WriteFile(path, []byte(b.in["terms"]), 0o644); err != nil {
			cat.t.Fatal(err)
		}
		args := []string{"contract", "add", "-f", path}
		if k, ok := b.in["key"]; ok {
			args = append(args, "--key", k)
		}
		return args
	}
	args := []string{b.op}
	for _, f := range sortedKeys(b.in) {
		v := b.in[f]
		switch f {
		case "entry":
			args = append(args, v)
			continue
		case "schedule":
			path := filepath.Join(cat.dir, "schedule.json")
			if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
				cat.t.Fatal(err)
			}
			v = path
		}
		fl, ok := fieldFlags[f]
		if !ok {
			fl = f
		}
		if v == "true" && (f == "allow_late" || f == "terminate") {
			args = append(args, "--"+fl)
			continue
		}
		args = append(args, "--"+fl, v)
	}
	return args
}

var opRoutes = map[string]string{"deliver": "deliveries", "retire": "retirements", "cancel": "cancellations",
	"reverse": "reversals", "amend": "amendments"}

// apiRequest builds the request of b: POST to the operation's route with a JSON body of its
// fields (the path carries the contract or entry, the header the key).
func (cat *catalogue) apiRequest(b badInput) *http.Request {
	path, body, key := "/v1/contracts", "", "cat-api-"+strings.ReplaceAll(b.name, " ", "-")
	fields := map[string]any{}
	for f, v := range b.in {
		switch f {
		case "contract", "entry":
		case "key":
			key = v
		case "vintage":
			var n json.Number
			if json.Unmarshal([]byte(v), &n) == nil {
				fields[f] = n
			} else {
				fields[f] = v
			}
		case "allow_late", "terminate":
			fields[f] = v == "true"
		case "schedule":
			fields[f] = json.RawMessage(v)
		default:
			fields[f] = v
		}
	}
	switch b.op {
	case "contract":
		body = b.in["terms"]
	case "revert":
		path = "/v1/entries/" + b.in["entry"] + "/revert"
	default:
		path = "/v1/contracts/" + b.in["contract"] + "/" + opRoutes[b.op]
	}
	if b.op != "contract" {
		j, err := json.Marshal(fields)
		if err != nil {
			cat.t.Fatal(err)
		}
		body = string(j)
	}
	if b.apiBody != nil {
		body = *b.apiBody
	}
	req, err := http.NewRequest("POST", cat.srv.URL+path, strings.NewReader(body))
	if err != nil {
		cat.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+cat.tokens["admin"])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	for h, v := range b.apiHdr {
		req.Header.Set(h, v)
	}
	return req
}

// importFile writes b as a one-row operations CSV (or its own file) and returns the path.
func (cat *catalogue) importFile(b badInput) string {
	name := "ops.csv"
	if b.impNDJSON {
		name = "ops.ndjson"
	}
	path := filepath.Join(cat.dir, name)
	content := b.impFile
	if content == "" {
		cols := []string{"op"}
		row := []string{b.op}
		for _, f := range sortedKeys(b.in) {
			cols = append(cols, f)
			row = append(row, b.in[f])
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.Write(cols)
		w.Write(row)
		w.Flush()
		content = buf.String()
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		cat.t.Fatal(err)
	}
	return path
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// runCLI runs b's command line and returns what it did.
func (cat *catalogue) runCLI(b badInput) (cliWant, string) {
	code, out, errOut := cat.c.run(cat.cliArgs(b)...)
	return cliWant{exit: code, stderr: errOut}, out
}

// runAPI sends b's request and returns the problem it got.
func (cat *catalogue) runAPI(t *testing.T, b badInput) apiWant {
	resp, err := cat.srv.Client().Do(cat.apiRequest(b))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var p httpapi.Problem
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" || json.Unmarshal(body, &p) != nil {
		t.Errorf("API: %d %s %s, want a problem", resp.StatusCode, ct, body)
	}
	if p.Status != resp.StatusCode || p.Detail == "" {
		t.Errorf("API: problem %s has no detail or another status than %d", body, resp.StatusCode)
	}
	field, rule := p.Field, p.Rule
	if len(p.Errors) > 0 {
		field, rule = p.Errors[0].Field, p.Errors[0].Rule
	}
	return apiWant{status: resp.StatusCode, kind: strings.TrimPrefix(p.Type, httpapi.ProblemTypePrefix), field: field, rule: rule}
}

// runImport imports b's file (--format json) and returns its first refusal; a file refused
// as a whole (no row error) has field "(file)" and its stderr as the rule.
func (cat *catalogue) runImport(t *testing.T, b badInput) impWant {
	path := cat.importFile(b)
	code, out, errOut := cat.c.run("import", "--format", "json", "--quiet", path)
	if code != 1 {
		t.Errorf("import: exit %d, want 1\nstdout %s\nstderr %s", code, out, errOut)
	}
	var res struct {
		Errors []struct {
			Line  int    `json:"line"`
			Field string `json:"field"`
			Rule  string `json:"rule"`
		} `json:"errors"`
	}
	if out != "" {
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Errorf("import output %q: %v", out, err)
		}
	}
	if len(res.Errors) == 0 {
		return impWant{field: "(file)", rule: strings.TrimSpace(errOut)}
	}
	e := res.Errors[0]
	return impWant{line: e.Line, field: e.Field, rule: e.Rule}
}

// check runs b through every front end it names and checks each refusal and that the
// database did not change.
func (cat *catalogue) check(t *testing.T, b badInput) {
	if b.cli != (cliWant{}) {
		before := cat.fingerprint()
		if got, out := cat.runCLI(b); got != b.cli {
			t.Errorf("CLI %q: exit %d, stderr:\n%s\nwant exit %d, stderr:\n%s\n(stdout %q)", cat.cliArgs(b), got.exit, got.stderr, b.cli.exit, b.cli.stderr, out)
		}
		cat.unchanged(t, "the CLI", before)
	}
	if b.api != (apiWant{}) {
		before := cat.fingerprint()
		if got := cat.runAPI(t, b); got != b.api {
			t.Errorf("API: got %+v, want %+v", got, b.api)
		}
		cat.unchanged(t, "the API", before)
	}
	if b.imp != (impWant{}) {
		before := cat.fingerprint()
		if got := cat.runImport(t, b); got != b.imp {
			t.Errorf("import: got %+v, want %+v", got, b.imp)
		}
		cat.unchanged(t, "import", before)
	}
}

func ptr(s string) *string { return &s }

// day is a date n days from today, as the front ends compare it.
func day(n int) string { return time.Now().UTC().AddDate(0, 0, n).Format("2006-01-02") }

// TestBadInputCatalogue runs every bad input of the catalogue through the CLI, the HTTP API
// and import, checks the exact refusal of each (the CLI's stderr and exit code, the API's
// status, problem type, field and rule, the import's line, field and rule), and that none of
// them changed a row of the database.
func TestBadInputCatalogue(t *testing.T) {
	cat := newCatalogue(t)
	all := 0
	for _, b := range badInputs(cat) {
		fronts := 0
		for _, set := range []bool{b.cli != (cliWant{}), b.api != (apiWant{}), b.imp != (impWant{})} {
			if set {
				fronts++
			}
		}
		if fronts == 0 {
			t.Errorf("%s: no front end expects a refusal", b.name)
		}
		if fronts == 3 {
			all++
		}
		t.Run(b.name, func(t *testing.T) { cat.check(t, b) })
	}
	if all < 60 {
		t.Errorf("only %d bad inputs go through all three front ends", all)
	}
}

func badInputs(cat *catalogue) []badInput {
	d := func(kv ...string) map[string]string {
		m := map[string]string{"contract": "CAT-1", "date": "2025-06-01"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "-" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	contract := func(over string) map[string]string {
		doc := map[string]any{}
		json.Unmarshal([]byte(catalogueContract), &doc)
		var o map[string]any
		if err := json.Unmarshal([]byte(over), &o); err != nil {
			panic(err)
		}
		for k, v := range o {
			if v == nil {
				delete(doc, k)
			} else {
				doc[k] = v
			}
		}
		doc["code"] = firstNonEmpty(o["code"], "CAT-NEW")
		b, _ := json.Marshal(doc)
		return map[string]string{"terms": string(b)}
	}
	long := strings.Repeat("k", 201)
	hugeSchedule := `[{"year":1,"tonnes":"1000","due_on":"2025-12-31"}` + strings.Repeat(` `, 1<<20) + `]`
	const notDecimal = "is not a decimal number (digits, an optional '-' and an optional point with digits after it)"
	const halfPair = "holds half a surrogate pair (a \\u escape of U+D800 to U+DFFF with no partner), which is no character"
	big := `{"tonnes":"1","date":"2025-06-01","note":"` + strings.Repeat("x", 1<<20) + `"}`
	return []badInput{
		// tonnes
		{name: "negative tonnes", op: "deliver", in: d("tonnes", "-5"),
			cli: cliWant{1, "carbonledger: --tonnes: \"-5\" must be greater than zero\n"}, api: apiWant{400, "invalid", "tonnes", "must be greater than zero"}, imp: impWant{2, "tonnes", "must be greater than zero"}},
		{name: "zero tonnes", op: "deliver", in: d("tonnes", "0"),
			cli: cliWant{1, "carbonledger: --tonnes: \"0\" must be greater than zero\n"}, api: apiWant{400, "invalid", "tonnes", "must be greater than zero"}, imp: impWant{2, "tonnes", "must be greater than zero"}},
		{name: "tonnes with four decimals", op: "deliver", in: d("tonnes", "1.2345"),
			cli: cliWant{1, "carbonledger: --tonnes: \"1.2345\" has more than 3 decimal places (the finest unit is 1 kg)\n"}, api: apiWant{400, "invalid", "tonnes", "has more than 3 decimal places (the finest unit is 1 kg)"}, imp: impWant{2, "tonnes", "has more than 3 decimal places (the finest unit is 1 kg)"}},
		{name: "tonnes as text", op: "deliver", in: d("tonnes", "ten"),
			cli: cliWant{1, "carbonledger: --tonnes: \"ten\" " + notDecimal + "\n"}, api: apiWant{400, "invalid", "tonnes", notDecimal}, imp: impWant{2, "tonnes", notDecimal}},
		{name: "tonnes with an exponent", op: "deliver", in: d("tonnes", "1e3"),
			cli: cliWant{1, "carbonledger: --tonnes: \"1e3\" uses an exponent; write the number out in full\n"}, api: apiWant{400, "invalid", "tonnes", "uses an exponent; write the number out in full"}, imp: impWant{2, "tonnes", "uses an exponent; write the number out in full"}},
		{name: "tonnes with a thousands separator", op: "deliver", in: d("tonnes", "1,000"),
			cli: cliWant{1, "carbonledger: --tonnes: \"1,000\" contains spaces or digit separators; write digits only, such as 1234.5\n"}, api: apiWant{400, "invalid", "tonnes", "contains spaces or digit separators; write digits only, such as 1234.5"}, imp: impWant{2, "tonnes", "contains spaces or digit separators; write digits only, such as 1234.5"}},
		{name: "huge tonnes", op: "deliver", in: d("tonnes", "99999999999999999999"),
			cli: cliWant{1, "carbonledger: --tonnes: \"99999999999999999999\" is too large (at most 15 digits before the point)\n"}, api: apiWant{400, "invalid", "tonnes", "is too large (at most 15 digits before the point)"}, imp: impWant{2, "tonnes", "is too large (at most 15 digits before the point)"}},
		// dates
		{name: "February 30th", op: "deliver", in: d("tonnes", "5", "date", "2026-02-30"),
			cli: cliWant{1, "carbonledger: --date: \"2026-02-30\" is not a date in the form YYYY-MM-DD\n"}, api: apiWant{400, "invalid", "date", "is not a date in the form YYYY-MM-DD"}, imp: impWant{2, "date", "is not a date in the form YYYY-MM-DD"}},
		{name: "a date in another form", op: "deliver", in: d("tonnes", "5", "date", "03/01/2025"),
			cli: cliWant{1, "carbonledger: --date: \"03/01/2025\" is not a date in the form YYYY-MM-DD\n"}, api: apiWant{400, "invalid", "date", "is not a date in the form YYYY-MM-DD"}, imp: impWant{2, "date", "is not a date in the form YYYY-MM-DD"}},
		{name: "a date past the future tolerance", op: "deliver", in: d("tonnes", "5", "date", day(10)),
			cli: cliWant{1, "carbonledger: --date: \"" + day(10) + "\" is in the future (today is " + day(0) + "; at most 24h0m0s ahead is allowed)\n"}, api: apiWant{400, "invalid", "date", "is in the future (today is " + day(0) + "; at most 24h0m0s ahead is allowed)"}, imp: impWant{2, "date", "is in the future (today is " + day(0) + "; at most 24h0m0s ahead is allowed)"}},
		{name: "a delivery before the term", op: "deliver", in: d("tonnes", "5", "date", "2024-06-01"),
			cli: cliWant{1, "carbonledger: deliver: date: \"2024-06-01\" is before the contract term starts on 2025-01-01\n"}, api: apiWant{400, "invalid", "date", "is before the contract term starts on 2025-01-01"}, imp: impWant{2, "date", "is before the contract term starts on 2025-01-01"}},
		// contracts
		{name: "unknown contract", op: "deliver", in: d("contract", "NOPE-1", "tonnes", "5"),
			cli: cliWant{1, "carbonledger: deliver: contract: \"NOPE-1\" does not exist (see `carbonledger contract list`)\n"}, api: apiWant{404, "not-found", "contract", "does not exist (see `carbonledger contract list`)"}, imp: impWant{2, "contract", "does not exist (see `carbonledger contract list`)"}},
		{name: "a contract code that is no code", op: "deliver", in: d("contract", "bad_code!", "tonnes", "5"),
			cli: cliWant{1, "carbonledger: --contract: \"bad_code!\" must be 1 to 48 letters, digits or '-', starting with a letter or digit\n"}, api: apiWant{400, "invalid", "contract", "must be 1 to 48 letters, digits or '-', starting with a letter or digit"}, imp: impWant{2, "contract", "must be 1 to 48 letters, digits or '-', starting with a letter or digit"}},
		// the ledger's rules
		{name: "over-delivery", op: "deliver", in: d("tonnes", "5000"),
			cli: cliWant{1, "carbonledger: deliver: tonnes: \"5000.000\" is more than contract CAT-1 can still take: 900.000 t open (contracted 1000.000 t + replacements 0.000 t - delivered 100.000 t - cancelled 0.000 t) plus an over-delivery tolerance of 0.000 t\n"}, api: apiWant{409, "insufficient", "tonnes", "is more than contract CAT-1 can still take: 900.000 t open (contracted 1000.000 t + replacements 0.000 t - delivered 100.000 t - cancelled 0.000 t) plus an over-delivery tolerance of 0.000 t"}, imp: impWant{2, "tonnes", "is more than contract CAT-1 can still take: 900.000 t open (contracted 1000.000 t + replacements 0.000 t - delivered 100.000 t - cancelled 0.000 t) plus an over-delivery tolerance of 0.000 t"}},
		{name: "retire more than held", op: "retire", in: d("tonnes", "500", "beneficiary", "Acme", "reason", "claim"),
			cli: cliWant{1, "carbonledger: retire: tonnes: \"500.000\" is more than the 100.000 t held under contract CAT-1 (delivered 100.000 t, already retired 0.000 t, reversed 0.000 t)\n"}, api: apiWant{409, "insufficient", "tonnes", "is more than the 100.000 t held under contract CAT-1 (delivered 100.000 t, already retired 0.000 t, reversed 0.000 t)"}, imp: impWant{2, "tonnes", "is more than the 100.000 t held under contract CAT-1 (delivered 100.000 t, already retired 0.000 t, reversed 0.000 t)"}},
		{name: "retire serials never delivered", op: "retire", in: d("tonnes", "5", "beneficiary", "Acme", "reason", "claim", "serials", "CAR-CAT:500-504"),
			cli: cliWant{1, "carbonledger: retire: serials: \"CAR-CAT:500-504\" were never delivered under contract CAT-1\n"}, api: apiWant{400, "invalid", "serials", "were never delivered under contract CAT-1"}, imp: impWant{2, "serials", "were never delivered under contract CAT-1"}},
		{name: "deliver serials already delivered", op: "deliver", in: d("tonnes", "10", "serials", "CAR-CAT:91-100"),
			cli: cliWant{1, "carbonledger: deliver: serials: \"CAR-CAT:91-100\" overlap serials CAR-CAT:1-100 already delivered under contract CAT-1 (now delivered, entry " + cat.delivery + "); a serial is delivered once\n"}, api: apiWant{409, "conflict", "serials", "overlap serials CAR-CAT:1-100 already delivered under contract CAT-1 (now delivered, entry " + cat.delivery + "); a serial is delivered once"}, imp: impWant{2, "serials", "overlap serials CAR-CAT:1-100 already delivered under contract CAT-1 (now delivered, entry " + cat.delivery + "); a serial is delivered once"}},
		{name: "serials and tonnes disagree", op: "deliver", in: d("tonnes", "5", "serials", "CAR-CAT:200-209"),
			cli: cliWant{1, "carbonledger: --serials: \"CAR-CAT:200-209\" holds 10 serials (both ends included) but the tonnes are 5.000; one serial is one tonne (one kilogram under Isometric)\n"}, api: apiWant{400, "invalid", "serials", "holds 10 serials (both ends included) but the tonnes are 5.000; one serial is one tonne (one kilogram under Isometric)"}, imp: impWant{2, "serials", "holds 10 serials (both ends included) but the tonnes are 5.000; one serial is one tonne (one kilogram under Isometric)"}},
		{name: "serials backwards", op: "deliver", in: d("tonnes", "5", "serials", "CAR-CAT:10-6"),
			cli: cliWant{1, "carbonledger: --serials: \"CAR-CAT:10-6\" ends before it starts; the range is FIRST-LAST with FIRST <= LAST, both included\n"}, api: apiWant{400, "invalid", "serials", "ends before it starts; the range is FIRST-LAST with FIRST <= LAST, both included"}, imp: impWant{2, "serials", "ends before it starts; the range is FIRST-LAST with FIRST <= LAST, both included"}},
		{name: "cancel more than open", op: "cancel", in: d("tonnes", "5000", "reason", "waived"),
			cli: cliWant{1, "carbonledger: cancel: tonnes: \"5000.000\" is more than the 900.000 t open on contract CAT-1\n"}, api: apiWant{409, "insufficient", "tonnes", "is more than the 900.000 t open on contract CAT-1"}, imp: impWant{2, "tonnes", "is more than the 900.000 t open on contract CAT-1"}},
		{name: "reverse more than delivered", op: "reverse", in: d("tonnes", "500", "reason", "fire"),
			cli: cliWant{1, "carbonledger: reverse: tonnes: \"500.000\" is more than the 100.000 t held under CAT-1; a reversal of retired credits is made good from the registry buffer (--remedy buffer)\n"}, api: apiWant{409, "insufficient", "tonnes", "is more than the 100.000 t held under CAT-1; a reversal of retired credits is made good from the registry buffer (--remedy buffer)"}, imp: impWant{2, "tonnes", "is more than the 100.000 t held under CAT-1; a reversal of retired credits is made good from the registry buffer (--remedy buffer)"}},
		{name: "revert an unknown entry", op: "revert", in: map[string]string{"entry": "00000000-0000-0000-0000-000000000000", "reason": "typo"},
			cli: cliWant{1, "carbonledger: entry: \"00000000-0000-0000-0000-000000000000\" does not exist\n"}, api: apiWant{404, "not-found", "entry", "does not exist"}, imp: impWant{2, "entry", "does not exist"}},
		{name: "amend below what was delivered", op: "amend", in: d("tonnes", "50", "reason", "downsized"),
			cli: cliWant{1, "carbonledger: amend: tonnes: \"50.000\" is below what contract CAT-1 has already delivered or cancelled: it can shrink by at most the 900.000 t open, to 100.000 t\n"}, api: apiWant{409, "insufficient", "tonnes", "is below what contract CAT-1 has already delivered or cancelled: it can shrink by at most the 900.000 t open, to 100.000 t"}, imp: impWant{2, "tonnes", "is below what contract CAT-1 has already delivered or cancelled: it can shrink by at most the 900.000 t open, to 100.000 t"}},
		{name: "amend a schedule that does not add up", op: "amend", in: d("schedule", `[{"year":1,"tonnes":"10"}]`, "reason", "reschedule"),
			cli: cliWant{1, "carbonledger: amend: schedule: \"10.000\" is what the schedule's years add up to; they must add up exactly to the contracted 1000.000 t\n"}, api: apiWant{400, "invalid", "schedule", "is what the schedule's years add up to; they must add up exactly to the contracted 1000.000 t"}, imp: impWant{2, "schedule", "is what the schedule's years add up to; they must add up exactly to the contracted 1000.000 t"}},
		{name: "vintage as text", op: "deliver", in: d("tonnes", "5", "vintage", "twenty"),
			cli: cat.flagError("deliver", `invalid value "twenty" for flag -vintage: parse error`), api: apiWant{400, "invalid", "vintage", "must be a JSON number (a year such as 2024)"}, imp: impWant{2, "vintage", "is not a year between 1990 and 2200"}},
		{name: "vintage out of range", op: "deliver", in: d("tonnes", "5", "vintage", "1800"),
			cli: cliWant{1, "carbonledger: --vintage: \"1800\" is not a year between 1990 and 2200\n"}, api: apiWant{400, "invalid", "vintage", "is not a year between 1990 and 2200"}, imp: impWant{2, "vintage", "is not a year between 1990 and 2200"}},
		{name: "price with more decimals than the currency", op: "deliver", in: d("tonnes", "5", "price_per_tonne", "12.345"),
			cli: cliWant{1, "carbonledger: deliver: price_per_tonne: \"12.345\" has more than 2 decimal places (the minor unit of USD)\n"}, api: apiWant{400, "invalid", "price_per_tonne", "has more than 2 decimal places (the minor unit of USD)"}, imp: impWant{2, "price_per_tonne", "has more than 2 decimal places (the minor unit of USD)"}},
		{name: "unknown remedy", op: "reverse", in: d("tonnes", "5", "reason", "fire", "remedy", "magic"),
			cli: cliWant{2, "carbonledger: reverse: --remedy: \"magic\" must be replace or buffer\n"}, api: apiWant{400, "invalid", "remedy", "must be replace or buffer"}, imp: impWant{2, "remedy", "must be replace or buffer"}},
		// required fields
		{name: "deliver without tonnes", op: "deliver", in: d(),
			cli: cliWant{2, "carbonledger: deliver: --tonnes is required\n"}, api: apiWant{400, "invalid", "tonnes", "is required"}, imp: impWant{2, "tonnes", "is required"}},
		{name: "deliver without a date", op: "deliver", in: d("tonnes", "5", "date", "-"),
			cli: cliWant{2, "carbonledger: deliver: --date is required (YYYY-MM-DD)\n"}, api: apiWant{400, "invalid", "date", "is required (YYYY-MM-DD)"}, imp: impWant{2, "date", "is required (YYYY-MM-DD)"}},
		{name: "retire without a beneficiary", op: "retire", in: d("tonnes", "5", "reason", "claim"),
			cli: cliWant{2, "carbonledger: retire: --beneficiary is required\n"}, api: apiWant{400, "invalid", "beneficiary", "is required"}, imp: impWant{2, "beneficiary", "is required"}},
		{name: "retire without a reason", op: "retire", in: d("tonnes", "5", "beneficiary", "Acme"),
			cli: cliWant{2, "carbonledger: retire: --reason is required\n"}, api: apiWant{400, "invalid", "reason", "is required"}, imp: impWant{2, "reason", "is required"}},
		{name: "deliver without a contract", op: "deliver", in: d("contract", "-", "tonnes", "5"),
			cli: cliWant{2, "carbonledger: deliver: --contract is required\n"}, imp: impWant{2, "contract", "is required"}},
		// fields that are not the operation's
		{name: "an unknown field", op: "deliver", in: d("tonnes", "5", "colour", "red"),
			cli: cat.flagError("deliver", "flag provided but not defined: -colour"), api: apiWant{400, "invalid", "colour", "is not a field of deliver (its fields are contract, tonnes, date, vintage, serials, registry_tx, allow_late, price_per_tonne, note, key)"}, imp: impWant{2, "colour", "is not a field of deliver (its fields are contract, tonnes, date, vintage, serials, registry_tx, allow_late, price_per_tonne, note, key)"}},
		{name: "another operation's field", op: "deliver", in: d("tonnes", "5", "beneficiary", "Acme"),
			cli: cat.flagError("deliver", "flag provided but not defined: -beneficiary"), api: apiWant{400, "invalid", "beneficiary", "is not a field of deliver (its fields are contract, tonnes, date, vintage, serials, registry_tx, allow_late, price_per_tonne, note, key)"}, imp: impWant{2, "beneficiary", "is not a field of deliver (its fields are contract, tonnes, date, vintage, serials, registry_tx, allow_late, price_per_tonne, note, key)"}},
		// keys and text limits
		{name: "idempotency key too long", op: "deliver", in: d("tonnes", "5", "key", long),
			cli: cliWant{1, "carbonledger: --key: is too long (201 bytes, at most 200)\n"}, api: apiWant{400, "invalid", "Idempotency-Key", "is longer than 200 bytes"}, imp: impWant{2, "key", "is too long (201 bytes, at most 200)"}},
		{name: "idempotency key of another request", op: "deliver", in: d("tonnes", "7", "date", "2025-03-01", "key", "cat-delivery"),
			cli: cliWant{1, "carbonledger: deliver: key: \"cat-delivery\" was already used for a different request (entry " + cat.delivery + "); use a new key for a new request\n"}, api: apiWant{422, "idempotency-key-reused", "key", "was already used for a different request (entry " + cat.delivery + "); use a new key for a new request"}, imp: impWant{2, "key", "was already used for a different request (entry " + cat.delivery + "); use a new key for a new request"}},
		{name: "beneficiary too long", op: "retire", in: d("tonnes", "5", "beneficiary", strings.Repeat("b", 201), "reason", "claim"),
			cli: cliWant{1, "carbonledger: --beneficiary: is too long (201 bytes, at most 200)\n"}, api: apiWant{400, "invalid", "beneficiary", "is too long (201 bytes, at most 200)"}, imp: impWant{2, "beneficiary", "is too long (201 bytes, at most 200)"}},
		{name: "a NUL in a note", op: "deliver", in: d("tonnes", "5", "note", "a\x00b"),
			cli: cliWant{1, "carbonledger: --note: contains a NUL character\n"}, api: apiWant{400, "invalid", "note", "contains a NUL character"}, imp: impWant{2, "note", "contains a NUL character"}},
		{name: "a note that is not UTF-8", op: "deliver", in: d("tonnes", "5", "note", "caf\xe9"), apiBody: ptr("{\"tonnes\":\"5\",\"date\":\"2025-06-01\",\"note\":\"caf\xe9\"}"),
			cli: cliWant{1, "carbonledger: --note: is not valid UTF-8\n"}, api: apiWant{400, "invalid", "note", "is not valid UTF-8"}, imp: impWant{2, "note", "is not valid UTF-8"}},
		{name: "half a surrogate pair in a note", op: "deliver", in: d("tonnes", "5"),
			apiBody: ptr(`{"tonnes":"5","date":"2025-06-01","note":"x \ud800 y"}`), api: apiWant{400, "invalid", "note", halfPair},
			impFile: `{"op":"deliver","contract":"CAT-1","tonnes":"5","date":"2025-06-01","note":"x \ud800 y"}` + "\n", impNDJSON: true,
			imp: impWant{1, "note", halfPair}},
		{name: "an oversized schedule", op: "amend", in: d("reason", "reschedule", "schedule", hugeSchedule),
			cli:     cliWant{1, "carbonledger: --schedule: \"" + filepath.Join(cat.dir, "schedule.json") + "\" is larger than 1 MiB\n"},
			apiBody: ptr(`{"reason":"reschedule","date":"2025-06-01","schedule":` + hugeSchedule + `}`), api: apiWant{413, "too-large", "", ""},
			imp: impWant{2, "schedule", "is larger than 1 MiB"}},
		{name: "an unknown member in an NDJSON operation", op: "deliver", in: d("tonnes", "5"),
			impFile: `{"op":"deliver","contract":"CAT-1","tonnes":"5","date":"2025-06-01","colour":"red"}` + "\n", impNDJSON: true,
			imp: impWant{1, "colour", "is not a field of deliver (its fields are contract, tonnes, date, vintage, serials, registry_tx, allow_late, price_per_tonne, note, key)"}},
		// the API's own
		{name: "wrong content type", op: "deliver", in: d("tonnes", "5"), apiHdr: map[string]string{"Content-Type": "text/plain"},
			api: apiWant{415, "unsupported-media-type", "", ""}},
		{name: "oversized body", op: "deliver", in: d("tonnes", "5"), apiBody: ptr(big),
			api: apiWant{413, "too-large", "", ""}},
		{name: "no idempotency key", op: "deliver", in: d("tonnes", "5"), apiHdr: map[string]string{"Idempotency-Key": ""},
			api: apiWant{400, "idempotency-key-needed", "", ""}},
		{name: "a body that is not JSON", op: "deliver", in: d("tonnes", "5"), apiBody: ptr("tonnes=5&date=2025-06-01"),
			api: apiWant{400, "invalid", "body", "is not a JSON object of the operation's fields"}},
		{name: "tonnes as a JSON number", op: "deliver", in: d("tonnes", "5"), apiBody: ptr(`{"tonnes":5,"date":"2025-06-01"}`),
			api: apiWant{400, "invalid", "tonnes", "must be a JSON string such as \"12.500\", not a bare number"}},
		{name: "the contract in the body", op: "deliver", in: d("tonnes", "5"), apiBody: ptr(`{"contract":"OTHER","tonnes":"5","date":"2025-06-01"}`),
			api: apiWant{400, "invalid", "contract", "is given by the URL, not the body"}},
		// the import's own
		{name: "a row with a cell too many", op: "deliver", in: d("tonnes", "5"), impFile: "op,contract,tonnes,date\ndeliver,CAT-1,5,2025-06-01,extra\n",
			imp: impWant{2, "", "has 5 cells; the header has 4 columns"}},
		{name: "an NDJSON line that is not an object", op: "deliver", in: d("tonnes", "5"), impFile: "[1,2]\n", impNDJSON: true,
			imp: impWant{1, "", "is a JSON array, not an object; give one operation or contract per line, as a JSON object"}},
		{name: "an unknown op", op: "transfer", in: d("tonnes", "5"),
			cli: cliWant{2, "carbonledger: unknown command \"transfer\"\n\n" + commandsUsage()}, imp: impWant{2, "op", "is not an operation (deliver, retire, cancel, reverse, amend, revert)"}},
		// contract files, each rule
		{name: "contract without a buyer", op: "contract", in: contract(`{"buyer":null}`),
			cli: cliWant{1, "carbonledger: buyer: is required\n"}, api: apiWant{400, "invalid", "buyer", "is required"}, imp: impWant{2, "buyer", "is required"}},
		{name: "contract with an unknown field", op: "contract", in: contract(`{"colour":"red"}`),
			cli: cliWant{1, "carbonledger: colour: is not a contract field (the fields are code, buyer, supplier, project, method, country, region, registry, registry_projects, registry_accounts, standard, durability_years, term_start, term_end, signed_on, tonnes, price_per_tonne, currency, delivery_mode, over_delivery_tolerance, schedule, notes)\n"}, api: apiWant{400, "invalid", "colour", "is not a contract field (the fields are code, buyer, supplier, project, method, country, region, registry, registry_projects, registry_accounts, standard, durability_years, term_start, term_end, signed_on, tonnes, price_per_tonne, currency, delivery_mode, over_delivery_tolerance, schedule, notes)"}, imp: impWant{2, "colour", "is not a contract field (the fields are code, buyer, supplier, project, method, country, region, registry, registry_projects, registry_accounts, standard, durability_years, term_start, term_end, signed_on, tonnes, price_per_tonne, currency, delivery_mode, over_delivery_tolerance, schedule, notes)"}},
		{name: "contract with negative tonnes", op: "contract", in: contract(`{"tonnes":"-1000"}`),
			cli: cliWant{1, "carbonledger: tonnes: \"-1000\" must be greater than zero\n"}, api: apiWant{400, "invalid", "tonnes", "must be greater than zero"}, imp: impWant{2, "tonnes", "must be greater than zero"}},
		{name: "contract with zero tonnes", op: "contract", in: contract(`{"tonnes":"0"}`),
			cli: cliWant{1, "carbonledger: tonnes: \"0\" must be greater than zero\n"}, api: apiWant{400, "invalid", "tonnes", "must be greater than zero"}, imp: impWant{2, "tonnes", "must be greater than zero"}},
		{name: "contract tonnes with four decimals", op: "contract", in: contract(`{"tonnes":"1000.0001"}`),
			cli: cliWant{1, "carbonledger: tonnes: \"1000.0001\" has more than 3 decimal places (the finest unit is 1 kg)\n"}, api: apiWant{400, "invalid", "tonnes", "has more than 3 decimal places (the finest unit is 1 kg)"}, imp: impWant{2, "tonnes", "has more than 3 decimal places (the finest unit is 1 kg)"}},
		{name: "contract tonnes as a number", op: "contract", in: contract(`{"tonnes":1000}`),
			cli: cliWant{1, "carbonledger: tonnes: is a JSON number where a string is expected\n"}, api: apiWant{400, "invalid", "tonnes", "is a JSON number where a string is expected"}, imp: impWant{2, "tonnes", "is a JSON number where a string is expected"}},
		{name: "contract ending before it starts", op: "contract", in: contract(`{"term_end":"2024-06-30","signed_on":"2024-01-01"}`),
			cli: cliWant{1, "carbonledger: term_end: \"2024-06-30\" is before term_start 2025-01-01; a term ends after it starts\n"}, api: apiWant{400, "invalid", "term_end", "is before term_start 2025-01-01; a term ends after it starts"}, imp: impWant{2, "term_end", "is before term_start 2025-01-01; a term ends after it starts"}},
		{name: "contract over fifty years", op: "contract", in: contract(`{"term_end":"2080-12-31"}`),
			cli: cliWant{1, "carbonledger: term_end: \"2080-12-31\" is more than 50 years after term_start\n"}, api: apiWant{400, "invalid", "term_end", "is more than 50 years after term_start"}, imp: impWant{2, "term_end", "is more than 50 years after term_start"}},
		{name: "contract signed after its term", op: "contract", in: contract(`{"signed_on":"2027-01-01"}`),
			cli: cliWant{1, "carbonledger: signed_on: \"2027-01-01\" is after term_end 2026-12-31\n"}, api: apiWant{400, "invalid", "signed_on", "is after term_end 2026-12-31"}, imp: impWant{2, "signed_on", "is after term_end 2026-12-31"}},
		{name: "contract with an impossible date", op: "contract", in: contract(`{"term_start":"2025-02-30"}`),
			cli: cliWant{1, "carbonledger: term_start: \"2025-02-30\" is not a date in the form YYYY-MM-DD\n"}, api: apiWant{400, "invalid", "term_start", "is not a date in the form YYYY-MM-DD"}, imp: impWant{2, "term_start", "is not a date in the form YYYY-MM-DD"}},
		{name: "contract with an unknown method", op: "contract", in: contract(`{"method":"magic"}`),
			cli: cliWant{1, "carbonledger: method: \"magic\" is not a method (biochar, forestry, daccs, beccs, enhanced_weathering, ocean, other)\n"}, api: apiWant{400, "invalid", "method", "is not a method (biochar, forestry, daccs, beccs, enhanced_weathering, ocean, other)"}, imp: impWant{2, "method", "is not a method (biochar, forestry, daccs, beccs, enhanced_weathering, ocean, other)"}},
		{name: "contract with a country name", op: "contract", in: contract(`{"country":"Mexico"}`),
			cli: cliWant{1, "carbonledger: country: \"Mexico\" is not an ISO 3166-1 alpha-2 country code (such as MX or US)\n"}, api: apiWant{400, "invalid", "country", "is not an ISO 3166-1 alpha-2 country code (such as MX or US)"}, imp: impWant{2, "country", "is not an ISO 3166-1 alpha-2 country code (such as MX or US)"}},
		{name: "contract with an unknown registry", op: "contract", in: contract(`{"registry":"myregistry"}`),
			cli: cliWant{1, "carbonledger: registry: \"myregistry\" is not a known registry (car, verra, gold-standard, puro, isometric, acr, cercarbono, riverse, other, or empty when not public)\n"}, api: apiWant{400, "invalid", "registry", "is not a known registry (car, verra, gold-standard, puro, isometric, acr, cercarbono, riverse, other, or empty when not public)"}, imp: impWant{2, "registry", "is not a known registry (car, verra, gold-standard, puro, isometric, acr, cercarbono, riverse, other, or empty when not public)"}},
		{name: "contract with an unknown currency", op: "contract", in: contract(`{"currency":"ZZZ"}`),
			cli: cliWant{1, "carbonledger: currency: \"ZZZ\" is not a supported ISO 4217 currency code\n"}, api: apiWant{400, "invalid", "currency", "is not a supported ISO 4217 currency code"}, imp: impWant{2, "currency", "is not a supported ISO 4217 currency code"}},
		{name: "contract with a price and no currency", op: "contract", in: contract(`{"currency":null}`),
			cli: cliWant{1, "carbonledger: currency: is required when a price is given (an ISO 4217 code such as USD)\n"}, api: apiWant{400, "invalid", "currency", "is required when a price is given (an ISO 4217 code such as USD)"}, imp: impWant{2, "currency", "is required when a price is given (an ISO 4217 code such as USD)"}},
		{name: "contract price with three decimals", op: "contract", in: contract(`{"price_per_tonne":"120.505"}`),
			cli: cliWant{1, "carbonledger: price_per_tonne: \"120.505\" has more than 2 decimal places (the minor unit of USD)\n"}, api: apiWant{400, "invalid", "price_per_tonne", "has more than 2 decimal places (the minor unit of USD)"}, imp: impWant{2, "price_per_tonne", "has more than 2 decimal places (the minor unit of USD)"}},
		{name: "contract schedule that does not add up", op: "contract", in: contract(`{"schedule":[{"year":1,"tonnes":"400"},{"year":2,"tonnes":"400"}]}`),
			cli: cliWant{1, "carbonledger: schedule: \"800.000\" is what the schedule's years add up to; they must add up exactly to the contracted 1000.000 t\n"}, api: apiWant{400, "invalid", "schedule", "is what the schedule's years add up to; they must add up exactly to the contracted 1000.000 t"}, imp: impWant{2, "schedule", "is what the schedule's years add up to; they must add up exactly to the contracted 1000.000 t"}},
		{name: "contract schedule year outside the term", op: "contract", in: contract(`{"schedule":[{"year":5,"tonnes":"1000"}]}`),
			cli: cliWant{1, "carbonledger: schedule[0].year: \"5\" is not a contract year of this term (1 to 2)\n"}, api: apiWant{400, "invalid", "schedule[0].year", "is not a contract year of this term (1 to 2)"}, imp: impWant{2, "schedule[0].year", "is not a contract year of this term (1 to 2)"}},
		{name: "contract with an unknown delivery mode", op: "contract", in: contract(`{"delivery_mode":"teleport"}`),
			cli: cliWant{1, "carbonledger: delivery_mode: \"teleport\" must be transfer or retire_on_delivery\n"}, api: apiWant{400, "invalid", "delivery_mode", "must be transfer or retire_on_delivery"}, imp: impWant{2, "delivery_mode", "must be transfer or retire_on_delivery"}},
		{name: "contract with a negative tolerance", op: "contract", in: contract(`{"over_delivery_tolerance":"-1"}`),
			cli: cliWant{1, "carbonledger: over_delivery_tolerance: \"-1.000\" must not be negative\n"}, api: apiWant{400, "invalid", "over_delivery_tolerance", "must not be negative"}, imp: impWant{2, "over_delivery_tolerance", "must not be negative"}},
		{name: "contract durability forever", op: "contract", in: contract(`{"durability_years":"forever"}`),
			cli: cliWant{1, "carbonledger: durability_years: \"forever\" must be a whole number of years from 1 to 100000, optionally followed by '+' (such as 100+)\n"}, api: apiWant{400, "invalid", "durability_years", "must be a whole number of years from 1 to 100000, optionally followed by '+' (such as 100+)"}, imp: impWant{2, "durability_years", "must be a whole number of years from 1 to 100000, optionally followed by '+' (such as 100+)"}},
		{name: "contract naming registry projects without a registry", op: "contract", in: contract(`{"registry":null,"registry_projects":["CAR1"]}`),
			cli: cliWant{1, "carbonledger: registry_projects: \"CAR1\" names registry projects, but the contract names no registry; give the registry too\n"}, api: apiWant{400, "invalid", "registry_projects", "names registry projects, but the contract names no registry; give the registry too"}, imp: impWant{2, "registry_projects", "names registry projects, but the contract names no registry; give the registry too"}},
		{name: "contract code that is no code", op: "contract", in: contract(`{"code":"bad code"}`),
			cli: cliWant{1, "carbonledger: code: \"bad code\" must be 1 to 48 letters, digits or '-', starting with a letter or digit\n"}, api: apiWant{400, "invalid", "code", "must be 1 to 48 letters, digits or '-', starting with a letter or digit"}, imp: impWant{2, "code", "must be 1 to 48 letters, digits or '-', starting with a letter or digit"}},
		{name: "contract notes too long", op: "contract", in: contract(`{"notes":"` + strings.Repeat("n", 2001) + `"}`),
			cli: cliWant{1, "carbonledger: notes: is too long (2001 bytes, at most 2000)\n"}, api: apiWant{400, "invalid", "notes", "is too long (2001 bytes, at most 2000)"}, imp: impWant{2, "notes", "is too long (2001 bytes, at most 2000)"}},
		{name: "contract code taken, other terms", op: "contract", in: contract(`{"code":"CAT-1","tonnes":"2000"}`),
			cli: cliWant{1, "carbonledger: add contract CAT-1: code: \"CAT-1\" already exists with different terms; a contract's terms never change after signing (amend it, or choose a new code)\n"}, api: apiWant{409, "conflict", "code", "is already the code of another contract; contract codes are unique"}, imp: impWant{2, "code", "is already the code of another contract; contract codes are unique"}},
		{name: "contract that is not JSON", op: "contract", in: map[string]string{"terms": "{"},
			cli: cliWant{1, "carbonledger: contract: could not be read as JSON: unexpected EOF\n"}, api: apiWant{400, "invalid", "contract", "could not be read as JSON: unexpected EOF"}, imp: impWant{2, "contract", "could not be read as JSON: unexpected EOF"}},
		{name: "contract of two objects", op: "contract", in: map[string]string{"terms": "{}{}"},
			cli: cliWant{1, "carbonledger: contract: has content after the contract object; give exactly one JSON object\n"}, api: apiWant{400, "invalid", "contract", "has content after the contract object; give exactly one JSON object"}, imp: impWant{2, "contract", "has content after the contract object; give exactly one JSON object"}},
	}
}

// flagError is what the command prints when the flag package refuses its command line: the
// message, the command's usage (as -h prints it), and the message again as the CLI's error.
func (cat *catalogue) flagError(op, msg string) cliWant {
	_, _, usage := cat.c.run(op, "-h")
	return cliWant{2, msg + "\n" + usage + "carbonledger: " + msg + "\n"}
}

// commandsUsage is the list of commands the CLI prints after an unknown one.
func commandsUsage() string {
	var b bytes.Buffer
	printUsage(&b)
	return b.String()
}

func firstNonEmpty(v any, def string) string {
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	return def
}
