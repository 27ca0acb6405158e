package export_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"

	"github.com/carbonledger/carbonledger/internal/export"
	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

// Texts that trip up each format: a leading '=' (a spreadsheet formula), a leading '('
// (an hledger transaction code), ';' (an hledger comment), ',' (the end of an hledger tag
// value), quotes and backslashes (beancount strings), line breaks, tabs and unicode.
const (
	formulaDesc = `=HYPERLINK("http://evil.example/?q=1", "click"); ünïcödé, “quotes” — tab	here`
	parenDesc   = "(not a code) moved 1.5 t; \"quoted\", back\\slash\nsecond line ☃"
	formulaKey  = "@SUM(1+1)*cmd|' /C calc'!A0"
)

func tn(s string) ledger.Tonnes { return ledger.MustTonnes(s) }

func serials(t *testing.T, s string) *ledger.SerialRange {
	t.Helper()
	r, err := ledger.ParseSerials(s)
	if err != nil {
		t.Fatalf("serials %q: %v", s, err)
	}
	return &r
}

func contractDoc(code, buyer, supplier, registry, tonnes, termEnd string) string {
	b, err := json.Marshal(map[string]any{
		"code": code, "buyer": buyer, "supplier": supplier, "project": "Export test project",
		"method": "biochar", "country": "MX", "region": "Guanajuato", "registry": registry, "standard": "Test protocol",
		"durability_years": 100, "term_start": "2025-01-01", "term_end": termEnd, "signed_on": "2024-12-01",
		"tonnes": tonnes, "delivery_mode": "transfer",
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// buildLedger writes a ledger that exercises every kind of entry through the store API:
// two contracts (deliver with serials, retire, cancel, both reversal remedies, amendments of
// the tonnes and of the schedule only, a revert, a termination) and a plain journal book
// whose texts and metadata are hostile to every format.
func buildLedger(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.Now = func() time.Time { return time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC) }

	for _, doc := range []string{
		contractDoc("EXP-BIOCHAR", "Acme, Inc. ünï", `Good "Supplier"; Ltd`, "car", "1000", "2026-12-31"),
		contractDoc("EXP-FOREST", "Zeta Buyer", "Forest Co", "verra", "500", "2025-12-31"),
	} {
		c, err := ledger.ParseContractJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatalf("parse contract: %v", err)
		}
		if _, err := s.AddContract(ctx, c, ""); err != nil {
			t.Fatalf("add contract %s: %v", c.Code, err)
		}
	}
	d := ledger.Date
	step := func(res store.Result, err error) store.Result {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	const bio, forest = "EXP-BIOCHAR", "EXP-FOREST"
	step(s.Deliver(ctx, ledger.DeliverRequest{Contract: bio, Tonnes: tn("300"), Date: d(2025, 2, 10), Vintage: 2024, Key: "exp:bio:deliver:1",
		Serials: serials(t, "CAR-1-MX-1-1:1-300"), RegistryTx: "CAR-TX-1, batch 2; part \"A\"", Note: formulaDesc}))
	step(s.Retire(ctx, ledger.RetireRequest{Contract: bio, Tonnes: tn("100"), Date: d(2025, 3, 1), Key: formulaKey,
		Beneficiary: "Acme, Inc. ünï", Reason: "=1+2, claim; \"FY2025\"\nline two", Claim: "FY2025", Serials: serials(t, "CAR-1-MX-1-1:1-100")}))
	step(s.Reverse(ctx, ledger.ReverseRequest{Contract: bio, Tonnes: tn("50"), Date: d(2025, 3, 20), Key: "exp:bio:reverse:replace",
		Remedy: ledger.RemedyReplace, Reason: "incendio — “fuego”, plot 7; see report", Serials: serials(t, "CAR-1-MX-1-1:251-300")}))
	step(s.Deliver(ctx, ledger.DeliverRequest{Contract: bio, Tonnes: tn("50"), Date: d(2025, 4, 2), Vintage: 2025, Key: "exp:bio:deliver:replacement",
		Serials: serials(t, "CAR-1-MX-1-2:1-50"), Note: "replacement"}))
	step(s.Cancel(ctx, ledger.CancelRequest{Contract: bio, Tonnes: tn("100"), Date: d(2025, 4, 15), Key: "exp:bio:cancel", Reason: "@shortfall, waived"}))
	newTotal := tn("1100")
	step(s.Amend(ctx, ledger.AmendRequest{Contract: bio, Tonnes: &newTotal, Date: d(2025, 5, 1), Key: "exp:bio:amend:tonnes", Reason: "upsized by 100 t"}))
	step(s.Amend(ctx, ledger.AmendRequest{Contract: bio, Date: d(2025, 5, 2), Key: "exp:bio:amend:schedule", Reason: "schedule only",
		Schedule: []ledger.ScheduleLine{{Year: 1, Tonnes: tn("700")}, {Year: 2, Tonnes: tn("400")}}}))
	typo := step(s.Deliver(ctx, ledger.DeliverRequest{Contract: bio, Tonnes: tn("7.5"), Date: d(2025, 5, 20), Vintage: 2025, Key: "exp:bio:deliver:typo"}))
	step(s.Revert(ctx, ledger.RevertRequest{Entry: typo.Entry.ID, Key: "exp:bio:revert", Reason: "typo, 7.5 t; should be 75 t"}))
	step(s.Deliver(ctx, ledger.DeliverRequest{Contract: bio, Tonnes: tn("75.001"), Date: d(2025, 5, 21), Vintage: 2025, Key: "exp:bio:deliver:2"}))
	step(s.Retire(ctx, ledger.RetireRequest{Contract: bio, Tonnes: tn("25.5"), Date: d(2025, 5, 25), Key: "exp:bio:retire:2",
		Beneficiary: "Acme, Inc. ünï", Reason: "claim"}))

	step(s.Deliver(ctx, ledger.DeliverRequest{Contract: forest, Tonnes: tn("200"), Date: d(2025, 1, 20), Vintage: 2024, Key: "exp:forest:deliver:1"}))
	step(s.Reverse(ctx, ledger.ReverseRequest{Contract: forest, Tonnes: tn("20"), Date: d(2025, 6, 1), Key: "exp:forest:reverse:buffer",
		Remedy: ledger.RemedyBuffer, Reason: "wildfire; buffer, cancelled"}))
	step(s.Retire(ctx, ledger.RetireRequest{Contract: forest, Tonnes: tn("120"), Date: d(2025, 6, 10), Key: "exp:forest:retire",
		Beneficiary: "Zeta Buyer", Reason: "claim"}))
	step(s.Cancel(ctx, ledger.CancelRequest{Contract: forest, Date: d(2025, 7, 1), Key: "exp:forest:terminate", Terminate: true, Reason: "term ended"}))

	// A plain journal book: account codes with capitals and '_', metadata keys the export
	// reserves, values with every delimiter.
	if err := s.CreateBook(ctx, "J-1"); err != nil {
		t.Fatal(err)
	}
	z := ledger.Zero
	src, box, sub := "journal:J-1:src_pool", "journal:J-1:Cash_box", "journal:J-1:sub:2025"
	for _, a := range []ledger.Account{
		{Code: src, Book: "J-1", Kind: ledger.AccEquity},
		{Code: box, Book: "J-1", Kind: ledger.AccAsset, Floor: &z},
		{Code: sub, Book: "J-1", Kind: ledger.AccAsset, Floor: &z},
		{Code: "journal:J-1:unused", Book: "J-1", Kind: ledger.AccAsset, Floor: &z},
	} {
		if err := s.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	post := func(e ledger.Entry) {
		t.Helper()
		if _, _, err := s.Post(ctx, e); err != nil {
			t.Fatalf("post %s: %v", e.Key, err)
		}
	}
	post(ledger.Entry{Book: "J-1", Kind: ledger.KindOpen, EffectiveOn: d(2025, 1, 2), Key: "j1:open", Description: formulaDesc,
		Metadata: map[string]string{"kind": "x, y", "filename": "f.beancount", "lineno": "7", "entry": "e; f",
			"note": "tab\there, \"q\" \\ back\nnext", "z_last": "=cmd"},
		Postings: []ledger.Posting{{Account: src, Amount: tn("-10.000")}, {Account: box, Amount: tn("10.000")}}})
	post(ledger.Entry{Book: "J-1", Kind: ledger.KindTransfer, EffectiveOn: d(2025, 1, 3), Key: "j1:move", Description: parenDesc,
		Postings: []ledger.Posting{{Account: box, Amount: tn("-1.5")}, {Account: sub, Amount: tn("1.5")}}})
	post(ledger.Entry{Book: "J-1", Kind: ledger.KindTransfer, EffectiveOn: d(2025, 8, 30), Key: "j1:late", Description: "",
		Postings: []ledger.Posting{{Account: src, Amount: tn("-0.001")}, {Account: sub, Amount: tn("0.001")}}})
	return s
}

// tool returns the path of an external checker; a machine without it fails the test, because
// the export is only proven by the tools the project did not write.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: the export tests check the files with hledger and beancount; "+
			"install them (apt-get install hledger beancount; .ci/run does it)", name)
	}
	return p
}

// runTool runs a checker and fails the test with its output unless it exits 0.
func runTool(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(tool(t, name), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// exportFile exports s in format to a file under t's temporary directory.
func exportFile(t *testing.T, s *store.Store, format string, from, to time.Time) string {
	t.Helper()
	ext := map[string]string{"hledger": ".journal", "beancount": ".beancount", "csv": ".csv", "postings": ".csv"}[format]
	path := filepath.Join(t.TempDir(), "export"+ext)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := export.Write(context.Background(), s, f, format, from, to); err != nil {
		f.Close()
		t.Fatalf("export %s: %v", format, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// ledgerBalances returns the ledger's own balances per account (cached, which every test
// also checks against the sum of the postings) and their kinds.
func ledgerBalances(t *testing.T, s *store.Store) (bal map[string]ledger.Tonnes, kind map[string]string) {
	t.Helper()
	bs, err := s.Balances(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	bal, kind = map[string]ledger.Tonnes{}, map[string]string{}
	for _, b := range bs {
		if !b.Cached.Equal(b.Posted) {
			t.Fatalf("account %s: cached balance %s, sum of postings %s", b.Account, b.Cached, b.Posted)
		}
		bal[b.Account], kind[b.Account] = b.Cached, b.Kind
	}
	return bal, kind
}

func readCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("read CSV: %v\n%s", err, b)
	}
	return recs
}

// hledgerBalances runs hledger bal on the file: the balance of every account, flat.
func hledgerBalances(t *testing.T, path string, args ...string) map[string]ledger.Tonnes {
	t.Helper()
	out := runTool(t, "hledger", append([]string{"bal", "-f", path, "-O", "csv", "-N", "--flat", "-E"}, args...)...)
	got := map[string]ledger.Tonnes{}
	for i, rec := range readCSV(t, out) {
		if i == 0 {
			if !cmp.Equal(rec, []string{"account", "balance"}) {
				t.Fatalf("hledger bal header %q, want account,balance", rec)
			}
			continue
		}
		amt := strings.TrimSpace(strings.TrimSuffix(rec[1], `"tCO2e"`))
		if amt == "0" {
			amt = "0.000"
		}
		v, err := ledger.ParseTonnes(amt)
		if err != nil {
			t.Fatalf("hledger bal: account %s: balance %q: %v", rec[0], rec[1], err)
		}
		got[rec[0]] = v
	}
	return got
}

// beancountBalances runs a bean-query summing each account's postings, keyed by the
// ledger's account codes.
func beancountBalances(t *testing.T, path string, kind map[string]string) map[string]ledger.Tonnes {
	t.Helper()
	back := map[string]string{}
	for code, k := range kind {
		n, err := export.BeancountAccount(code, k)
		if err != nil {
			t.Fatal(err)
		}
		back[n] = code
	}
	out := runTool(t, "bean-query", "-f", "csv", path, "SELECT account, sum(number) AS total GROUP BY account ORDER BY account")
	got := map[string]ledger.Tonnes{}
	for i, rec := range readCSV(t, out) {
		if i == 0 {
			continue // header
		}
		name, total := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		code, ok := back[name]
		if !ok {
			t.Fatalf("bean-query shows account %s, which maps back to no ledger account", name)
		}
		v, err := ledger.ParseTonnes(total)
		if err != nil {
			t.Fatalf("bean-query: account %s: total %q: %v", name, total, err)
		}
		got[code] = v
	}
	return got
}

// sameBalances compares a tool's balances with the wanted ones to the kilogram: every
// account, with accounts the tool does not list at zero, and no account the ledger lacks.
func sameBalances(t *testing.T, toolName string, got, want map[string]ledger.Tonnes) {
	t.Helper()
	for code, w := range want {
		if g := got[code]; !g.Equal(w) {
			t.Errorf("%s: account %s balance %s, want %s", toolName, code, g, w)
		}
	}
	for code := range got {
		if _, ok := want[code]; !ok {
			t.Errorf("%s: account %s is not a ledger account", toolName, code)
		}
	}
}

func countEntries(t *testing.T, s *store.Store) int {
	t.Helper()
	var n int
	if err := s.DB().GetContext(context.Background(), &n, `SELECT count(*) FROM entries`); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestExport builds one ledger and checks each format against it: hledger and beancount
// accept the whole journal and a period and give every account the ledger's balance to the
// kilogram; the postings CSV sums to the same and neutralises formulas; the operations CSV
// refuses the plain journal book, which no operation wrote.
func TestExport(t *testing.T) {
	t.Parallel()
	s := buildLedger(t)
	for name, check := range map[string]func(*testing.T, *store.Store){
		"hledger": testHledger, "beancount": testBeancount, "postings": testPostings, "period": testPeriod,
		"csv": testOperationsRefuseJournalBook,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			check(t, s)
		})
	}
}

func testHledger(t *testing.T, s *store.Store) {
	tool(t, "hledger")
	path := exportFile(t, s, "hledger", time.Time{}, time.Time{})
	runTool(t, "hledger", "check", "-s", "-f", path)
	want, _ := ledgerBalances(t, s)
	sameBalances(t, "hledger", hledgerBalances(t, path), want)

	// Every entry is one transaction, coded BOOK/SEQ, its description on one line, its
	// fields and metadata as tags with the delimiters replaced.
	var txns []struct {
		Code string     `json:"tcode"`
		Desc string     `json:"tdescription"`
		Tags [][]string `json:"ttags"`
	}
	if err := json.Unmarshal(runTool(t, "hledger", "print", "-f", path, "-O", "json"), &txns); err != nil {
		t.Fatalf("hledger print -O json: %v", err)
	}
	if got, want := len(txns), countEntries(t, s); got != want {
		t.Fatalf("hledger reads %d transactions, want %d (one per entry)", got, want)
	}
	byKey := map[string]map[string]string{}
	descs := map[string]string{}
	for _, x := range txns {
		tags := map[string]string{}
		for _, kv := range x.Tags {
			tags[kv[0]] = kv[1]
		}
		if want := tags["book"] + "/" + tags["seq"]; x.Code != want {
			t.Errorf("transaction code %q, want %q", x.Code, want)
		}
		byKey[tags["key"]] = tags
		descs[tags["key"]] = x.Desc
	}
	if got, want := descs["j1:move"], `(not a code) moved 1.5 t, "quoted", back\slash second line ☃`; got != want {
		t.Errorf("hledger description %q, want %q", got, want)
	}
	if got, want := descs["j1:open"], `=HYPERLINK("http://evil.example/?q=1", "click"), ünïcödé, “quotes” — tab here`; got != want {
		t.Errorf("hledger description %q, want %q", got, want)
	}
	j1 := byKey["j1:open"]
	for k, v := range map[string]string{"kind": "open", "book": "J-1", "seq": "1", "meta-kind": "x; y", "meta-entry": "e; f",
		"meta-filename": "f.beancount", "note": `tab here; "q" \ back next`, "z_last": "=cmd"} {
		if j1[k] != v {
			t.Errorf("hledger tag %s of entry j1:open = %q, want %q", k, j1[k], v)
		}
	}
	if got := byKey[formulaKey]["reason"]; got != `=1+2; claim; "FY2025" line two` {
		t.Errorf("hledger tag reason of the retirement = %q", got)
	}
}

func testBeancount(t *testing.T, s *store.Store) {
	tool(t, "bean-check")
	path := exportFile(t, s, "beancount", time.Time{}, time.Time{})
	// The file asserts every account's cached balance: bean-check proves them.
	runTool(t, "bean-check", path)
	want, kind := ledgerBalances(t, s)
	sameBalances(t, "beancount", beancountBalances(t, path, kind), want)

	// Strings survive exactly: the descriptions and metadata values, read back by beancount.
	out := runTool(t, "bean-query", "-f", "csv", path,
		`SELECT DISTINCT entry_meta('key') AS k, narration, entry_meta('meta-kind') AS mk, entry_meta('note') AS note, entry_meta('reason') AS reason`)
	rows := map[string][]string{}
	for _, rec := range readCSV(t, out)[1:] {
		for i := range rec {
			rec[i] = strings.TrimRight(rec[i], " ")
		}
		rows[rec[0]] = rec
	}
	for key, want := range map[string][]string{
		"j1:open":  {"j1:open", formulaDesc, "x, y", "tab\there, \"q\" \\ back\nnext", ""},
		"j1:move":  {"j1:move", parenDesc, "", "", ""},
		formulaKey: {formulaKey, "Retirement of 100.000 t under EXP-BIOCHAR on behalf of Acme, Inc. ünï", "", "", "=1+2, claim; \"FY2025\"\nline two"},
	} {
		if diff := cmp.Diff(want, rows[key]); diff != "" {
			t.Errorf("bean-query row of entry %s (-want +got):\n%s", key, diff)
		}
	}
}

func testPostings(t *testing.T, s *store.Store) {
	path := exportFile(t, s, "postings", time.Time{}, time.Time{})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := readCSV(t, b)
	if diff := cmp.Diff(export.CSVColumns, recs[0]); diff != "" {
		t.Fatalf("CSV header (-want +got):\n%s", diff)
	}
	col := map[string]int{}
	for i, c := range recs[0] {
		col[c] = i
	}
	got := map[string]ledger.Tonnes{}
	entries := map[string]bool{}
	var formulaRow, keyRow []string
	for _, r := range recs[1:] {
		if len(r) != len(export.CSVColumns) {
			t.Fatalf("CSV row has %d cells, want %d: %q", len(r), len(export.CSVColumns), r)
		}
		entries[r[col["entry_id"]]] = true
		if r[col["account"]] != "" {
			v, err := ledger.ParseTonnes(r[col["amount"]])
			if err != nil {
				t.Fatalf("CSV amount %q: %v", r[col["amount"]], err)
			}
			got[r[col["account"]]] = got[r[col["account"]]].Add(v)
		}
		switch r[col["idempotency_key"]] {
		case "j1:open":
			formulaRow = r
		case "'" + formulaKey:
			keyRow = r
		}
	}
	want, _ := ledgerBalances(t, s)
	for code := range want {
		if _, ok := got[code]; !ok {
			got[code] = ledger.Zero // an account without postings has no row
		}
	}
	sameBalances(t, "csv", got, want)
	if got, want := len(entries), countEntries(t, s); got != want {
		t.Errorf("CSV covers %d entries, want %d", got, want)
	}

	// Text cells a spreadsheet would evaluate are neutralised; numbers stay numbers.
	if formulaRow == nil || keyRow == nil {
		t.Fatalf("CSV lacks the rows of entries j1:open and %s (neutralised)", formulaKey)
	}
	if got, want := formulaRow[col["description"]], "'"+formulaDesc; got != want {
		t.Errorf("CSV description %q, want %q", got, want)
	}
	var md map[string]string
	if err := json.Unmarshal([]byte(formulaRow[col["metadata"]]), &md); err != nil {
		t.Fatalf("CSV metadata %q: %v", formulaRow[col["metadata"]], err)
	}
	if md["note"] != "tab\there, \"q\" \\ back\nnext" || md["z_last"] != "=cmd" || md["kind"] != "x, y" {
		t.Errorf("CSV metadata %v does not carry the entry's metadata exactly", md)
	}
	for _, r := range [][]string{formulaRow, keyRow} {
		if a := r[col["amount"]]; strings.HasPrefix(a, "'") {
			t.Errorf("CSV amount %q was neutralised; numbers must stay numbers", a)
		}
	}
	if a := formulaRow[col["amount"]]; a != "-10.000" && a != "10.000" {
		t.Errorf("CSV amount %q, want ±10.000", a)
	}
}

// testPeriod exports a middle period: only its entries, and beancount's balance
// assertions (the sums of the exported postings) pass; hledger and beancount agree with the
// sums of the same period's postings CSV rows.
func testPeriod(t *testing.T, s *store.Store) {
	tool(t, "hledger")
	tool(t, "bean-check")
	from, to := ledger.Date(2025, 3, 1), ledger.Date(2025, 5, 20)

	b, err := os.ReadFile(exportFile(t, s, "postings", from, to))
	if err != nil {
		t.Fatal(err)
	}
	recs := readCSV(t, b)
	want := map[string]ledger.Tonnes{}
	entries := map[string]bool{}
	for _, r := range recs[1:] {
		day := r[4]
		if day < "2025-03-01" || day > "2025-05-20" {
			t.Errorf("period export holds entry %s effective %s, outside %s..%s", r[0], day, ledger.FormatDate(from), ledger.FormatDate(to))
		}
		entries[r[0]] = true
		if r[11] != "" {
			want[r[11]] = want[r[11]].Add(ledger.MustTonnes(r[12]))
		}
	}
	// retire, reverse, replacement delivery, cancel, two amendments, the typo delivery and
	// its revert (on the typo's date)
	if len(entries) != 8 {
		t.Errorf("period export has %d entries, want 8", len(entries))
	}
	_, kind := ledgerBalances(t, s)
	for code := range kind {
		if _, ok := want[code]; !ok {
			want[code] = ledger.Zero
		}
	}

	bean := exportFile(t, s, "beancount", from, to)
	runTool(t, "bean-check", bean)
	sameBalances(t, "beancount (period)", beancountBalances(t, bean, kind), want)

	hl := exportFile(t, s, "hledger", from, to)
	runTool(t, "hledger", "check", "-s", "-f", hl)
	sameBalances(t, "hledger (period)", hledgerBalances(t, hl), want)
}

// TestBeancountAssertionsBite feeds the writer a book whose cached balance is off by one
// kilogram from its postings: bean-check must refuse the file.
func TestBeancountAssertionsBite(t *testing.T) {
	t.Parallel()
	tool(t, "bean-check")
	for _, tc := range []struct {
		name    string
		balance string
		ok      bool
	}{{"right", "5.000", true}, {"one kilogram off", "5.001", false}} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			x, err := export.New(&buf, "beancount", time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			b := store.BookInfo{Code: "B", Accounts: []store.AccountInfo{
				{Code: "t:b:src", Kind: "equity", Balance: ledger.MustTonnes(tc.balance).Neg()},
				{Code: "t:b:dst", Kind: "asset", Balance: ledger.MustTonnes(tc.balance)},
			}}
			e := ledger.Entry{ID: "e1", Book: "B", Seq: 1, Kind: ledger.KindTransfer, EffectiveOn: ledger.Date(2025, 1, 1), Key: "k",
				Postings: []ledger.Posting{{Account: "t:b:src", Amount: tn("-5")}, {Account: "t:b:dst", Amount: tn("5")}}}
			for _, err := range []error{x.Book(b), x.Entry(e), x.EndBook(b), x.Close()} {
				if err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(t.TempDir(), "x.beancount")
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(tool(t, "bean-check"), path).CombinedOutput()
			if (err == nil) != tc.ok {
				t.Fatalf("bean-check: err %v, want ok=%v\n%s\n%s", err, tc.ok, out, buf.Bytes())
			}
		})
	}
}

// TestBeancountNameCollision refuses two ledger accounts that would be one beancount account.
func TestBeancountNameCollision(t *testing.T) {
	for _, pair := range [][2]string{{"t:b:a_b", "t:b:a-b"}, {"t:b:abc", "t:b:Abc"}} {
		x, err := export.New(&bytes.Buffer{}, "beancount", time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		err = x.Book(store.BookInfo{Code: "B", Accounts: []store.AccountInfo{{Code: pair[0], Kind: "asset"}, {Code: pair[1], Kind: "asset"}}})
		if err == nil || !strings.Contains(err.Error(), "would both be the beancount account") {
			t.Errorf("accounts %s and %s: got error %v, want a refusal naming the collision", pair[0], pair[1], err)
		}
	}
}

func TestBeancountAccount(t *testing.T) {
	for _, tc := range []struct{ code, kind, want string }{
		{"buyer:acme:holding:C-1", "holding", "Assets:Buyer:Acme:Holding:C-1"},
		{"supplier:good-co:supply:C-1", "supply", "Equity:Supplier:Good-co:Supply:C-1"},
		{"registry:car:buffer:C-1", "buffer", "Equity:Registry:Car:Buffer:C-1"},
		{"registry:car:buffer-cancelled:C-1", "buffer_cancelled", "Assets:Registry:Car:Buffer-cancelled:C-1"},
		{"journal:J-1:src_pool", "equity", "Equity:Journal:J-1:Src-pool"},
		{"journal:J-1:sub:2025", "asset", "Assets:Journal:J-1:Sub:2025"},
	} {
		got, err := export.BeancountAccount(tc.code, tc.kind)
		if err != nil || got != tc.want {
			t.Errorf("BeancountAccount(%q, %q) = %q, %v; want %q", tc.code, tc.kind, got, err, tc.want)
		}
	}
	if _, err := export.BeancountAccount("Bad Account", "asset"); err == nil {
		t.Error("BeancountAccount accepted an invalid account code")
	}
}

func TestNewRefuses(t *testing.T) {
	if _, err := export.New(&bytes.Buffer{}, "ledger-cli", time.Time{}, time.Time{}); err == nil || !strings.Contains(err.Error(), "hledger, beancount, csv, postings") {
		t.Errorf("unknown format: got %v, want an error listing the formats", err)
	}
	if _, err := export.New(&bytes.Buffer{}, "postings", ledger.Date(2025, 2, 1), ledger.Date(2025, 1, 1)); err == nil {
		t.Error("a period ending before it starts was accepted")
	}
	// The operations CSV is the whole ledger, or nothing.
	for _, p := range [][2]time.Time{{ledger.Date(2025, 1, 1), {}}, {{}, ledger.Date(2025, 1, 1)}} {
		if _, err := export.New(&bytes.Buffer{}, "csv", p[0], p[1]); !errors.Is(err, export.ErrOperationsPeriod) || !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("csv from %v to %v: got %v, want ErrOperationsPeriod", p[0], p[1], err)
		}
	}
	// An empty ledger still makes files the tools accept.
	for _, f := range export.Formats {
		var buf bytes.Buffer
		x, err := export.New(&buf, f, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		if buf.Len() == 0 {
			t.Errorf("%s: empty export wrote nothing", f)
		}
	}
}

func ExampleBeancountAccount() {
	n, _ := export.BeancountAccount("contract:TN150-2024:open", "open")
	fmt.Println(n)
	// Output: Assets:Contract:TN150-2024:Open
}

// testOperationsRefuseJournalBook: the operations CSV cannot carry a plain journal book's
// entries, and says which book and which export does.
func testOperationsRefuseJournalBook(t *testing.T, s *store.Store) {
	err := export.Write(context.Background(), s, &bytes.Buffer{}, "csv", time.Time{}, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "book J-1 is not a contract; export --format postings carries it") {
		t.Errorf("csv export of a ledger with a journal book: got %v, want a refusal naming book J-1", err)
	}
}

// opsLedger writes two contracts through the store API, with every operation: OPS-A (even
// schedule, a registry) has deliveries with and without serials, retirements with and without,
// a cancellation, a reversal (replace), an amendment of the tonnes, one of the schedule, and a
// reverted delivery; OPS-B (explicit schedule, retired on delivery, a price) has a delivery,
// a late delivery, a reversal (buffer) and a termination. Texts look like formulas. It
// returns the store and the sign entries by contract.
func opsLedger(t *testing.T) (*store.Store, map[string]ledger.Entry) {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.Now = func() time.Time { return time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC) }
	signs := map[string]ledger.Entry{}
	for _, tc := range []struct {
		key string
		doc map[string]any
	}{
		{"", map[string]any{"code": "OPS-A", "buyer": "Acme, Inc.", "supplier": "Good Supplier", "project": "Ops project",
			"method": "biochar", "country": "MX", "registry": "car", "durability_years": 100,
			"term_start": "2025-01-01", "term_end": "2026-12-31", "signed_on": "2024-12-01", "tonnes": "1000",
			"notes": "=notes <&> \"quoted\""}},
		{"ops:b:sign", map[string]any{"code": "OPS-B", "buyer": "Zeta", "supplier": "Forest Co", "project": "Ops forest",
			"method": "forestry", "country": "BR", "registry": "verra", "durability_years": 40,
			"term_start": "2025-01-01", "term_end": "2025-12-31", "signed_on": "2024-12-15", "tonnes": "500",
			"currency": "USD", "price_per_tonne": "25.00", "delivery_mode": "retire_on_delivery",
			"schedule": []map[string]any{{"year": 1, "tonnes": "500", "vintage": 2025, "price_per_tonne": "30.00", "due_on": "2025-12-31"}}}},
	} {
		b, err := json.Marshal(tc.doc)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ledger.ParseContractJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("parse contract: %v", err)
		}
		res, err := s.AddContract(ctx, c, tc.key)
		if err != nil {
			t.Fatalf("add contract %s: %v", c.Code, err)
		}
		signs[c.Code] = res.Entry
	}
	d := ledger.Date
	step := func(res store.Result, err error) store.Result {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	const a, b = "OPS-A", "OPS-B"
	step(s.Deliver(ctx, ledger.DeliverRequest{Contract: a, Tonnes: tn("300"), Date: d(2025, 2, 10), Vintage: 2024, Key: "ops:a:deliver:serials",
		Serials: serials(t, "CAR-1-MX-1-1:1-300"), RegistryTx: "CAR-TX-1, batch \"2\"", Note: "=SUM(A1:A3)"}))
	step(s.Deliver(ctx, ledger.DeliverRequest{Contract: a, Tonnes: tn("100.5"), Date: d(2025, 3, 1), Key: "ops:a:deliver:plain"}))
	step(s.Retire(ctx, ledger.RetireRequest{Contract: a, Tonnes: tn("100"), Date: d(2025, 3, 5), Key: "ops:a:retire:serials",
		Beneficiary: "Acme, Inc.", Reason: "=1+2, claim; \"FY2025\"\nline two", Claim: "FY2025", Vintage: 2024,
		Serials: serials(t, "CAR-1-MX-1-1:1-100")}))
	step(s.Retire(ctx, ledger.RetireRequest{Contract: a, Tonnes: tn("50"), Date: d(2025, 3, 6), Key: "ops:a:retire:plain",
		Beneficiary: "+Acme", Reason: "claim"}))
	step(s.Cancel(ctx, ledger.CancelRequest{Contract: a, Tonnes: tn("100"), Date: d(2025, 4, 15), Key: "ops:a:cancel", Reason: "@shortfall, waived"}))
	step(s.Reverse(ctx, ledger.ReverseRequest{Contract: a, Tonnes: tn("20"), Date: d(2025, 4, 20), Key: "ops:a:reverse",
		Remedy: ledger.RemedyReplace, Reason: "-fire, plot 7", Serials: serials(t, "CAR-1-MX-1-1:281-300")}))
	total := tn("1100")
	step(s.Amend(ctx, ledger.AmendRequest{Contract: a, Tonnes: &total, Date: d(2025, 5, 1), Key: "ops:a:amend:tonnes", Reason: "upsized"}))
	step(s.Amend(ctx, ledger.AmendRequest{Contract: a, Date: d(2025, 5, 2), Key: "ops:a:amend:schedule", Reason: "schedule only",
		Schedule: []ledger.ScheduleLine{{Year: 1, Tonnes: tn("700"), Vintage: 2025}, {Year: 2, Tonnes: tn("400")}}}))
	typo := step(s.Deliver(ctx, ledger.DeliverRequest{Contract: a, Tonnes: tn("7.5"), Date: d(2025, 5, 20), Key: "ops:a:deliver:typo"}))
	step(s.Revert(ctx, ledger.RevertRequest{Entry: typo.Entry.ID, Date: d(2025, 5, 22), Key: "ops:a:revert", Reason: "typo, 7.5 t"}))

	step(s.Deliver(ctx, ledger.DeliverRequest{Contract: b, Tonnes: tn("200"), Date: d(2025, 6, 1), Key: "ops:b:deliver"}))
	step(s.Reverse(ctx, ledger.ReverseRequest{Contract: b, Tonnes: tn("10"), Date: d(2025, 7, 1), Key: "ops:b:reverse",
		Remedy: ledger.RemedyBuffer, Reason: "wildfire"}))
	step(s.Deliver(ctx, ledger.DeliverRequest{Contract: b, Tonnes: tn("50"), Date: d(2026, 1, 10), AllowLate: true, Key: "ops:b:deliver:late",
		PricePerTonne: decimalPtr(t, "27.50")}))
	step(s.Cancel(ctx, ledger.CancelRequest{Contract: b, Date: d(2026, 1, 12), Key: "ops:b:terminate", Terminate: true, Reason: "term ended"}))
	return s, signs
}

func decimalPtr(t *testing.T, s string) *decimal.Decimal {
	t.Helper()
	d, err := decimal.NewFromString(s)
	if err != nil {
		t.Fatal(err)
	}
	return &d
}

// TestOperationsCSV exports contracts as operations and checks each row: the op, the fields
// the operation was asked with, every text exactly as given (formulas too, once the import has
// dropped the apostrophe that keeps a spreadsheet from running them), and that every operation
// row is one ParseOperation accepts.
func TestOperationsCSV(t *testing.T) {
	t.Parallel()
	s, signs := opsLedger(t)
	var buf bytes.Buffer
	if err := export.Write(context.Background(), s, &buf, "csv", time.Time{}, time.Time{}); err != nil {
		t.Fatalf("export csv: %v", err)
	}
	recs := readCSV(t, buf.Bytes())
	if diff := cmp.Diff(export.OperationColumns, recs[0]); diff != "" {
		t.Fatalf("operations CSV header (-want +got):\n%s", diff)
	}
	wantHeader := "op,contract,tonnes,date,vintage,serials,registry_tx,allow_late,price_per_tonne,note,beneficiary,reason,claim,remedy,terminate,schedule,entry,key,terms"
	if got := strings.Join(recs[0], ","); got != wantHeader {
		t.Errorf("operations CSV header %s, want %s", got, wantHeader)
	}
	var keys []string
	rows := map[string]map[string]string{}  // by key, as the import reads the cells
	cells := map[string]map[string]string{} // by key, as written
	for _, r := range recs[1:] {
		if len(r) != len(export.OperationColumns) {
			t.Fatalf("row has %d cells, want %d: %q", len(r), len(export.OperationColumns), r)
		}
		row, raw := map[string]string{}, map[string]string{}
		for i, c := range export.OperationColumns {
			if r[i] != "" {
				row[c], raw[c] = reports.Unneutralize(r[i]), r[i]
			}
		}
		keys = append(keys, row["key"])
		rows[row["key"]], cells[row["key"]] = row, raw
	}
	// A text a spreadsheet would run as a formula is written with a leading apostrophe, which
	// the import drops again; a figure never is.
	for key, col := range map[string]string{"ops:a:deliver:serials": "note", "ops:a:retire:plain": "beneficiary",
		"ops:a:cancel": "reason", "ops:a:reverse": "reason", "ops:a:retire:serials": "reason"} {
		if got := cells[key][col]; got != "'"+rows[key][col] {
			t.Errorf("row %s: %s cell %q is not neutralised", key, col, got)
		}
	}
	// Each book's entries in chain order, books by code.
	wantKeys := []string{"contract:OPS-A:sign", "ops:a:deliver:serials", "ops:a:deliver:plain", "ops:a:retire:serials",
		"ops:a:retire:plain", "ops:a:cancel", "ops:a:reverse", "ops:a:amend:tonnes", "ops:a:amend:schedule",
		"ops:a:deliver:typo", "ops:a:revert",
		"ops:b:sign", "ops:b:deliver", "ops:b:reverse", "ops:b:deliver:late", "ops:b:terminate"}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Fatalf("operations CSV rows by key (-want +got):\n%s", diff)
	}

	// The cells of each row (empty cells left out).
	want := map[string]map[string]string{
		"ops:a:deliver:serials": {"op": "deliver", "contract": "OPS-A", "tonnes": "300.000", "date": "2025-02-10", "vintage": "2024",
			"serials": "CAR-1-MX-1-1:1-300", "registry_tx": "CAR-TX-1, batch \"2\"", "note": "=SUM(A1:A3)"},
		"ops:a:deliver:plain": {"op": "deliver", "contract": "OPS-A", "tonnes": "100.500", "date": "2025-03-01"},
		"ops:a:retire:serials": {"op": "retire", "contract": "OPS-A", "tonnes": "100.000", "date": "2025-03-05", "vintage": "2024",
			"beneficiary": "Acme, Inc.", "reason": "=1+2, claim; \"FY2025\"\nline two", "claim": "FY2025", "serials": "CAR-1-MX-1-1:1-100"},
		"ops:a:retire:plain": {"op": "retire", "contract": "OPS-A", "tonnes": "50.000", "date": "2025-03-06", "beneficiary": "+Acme", "reason": "claim"},
		"ops:a:cancel":       {"op": "cancel", "contract": "OPS-A", "tonnes": "100.000", "date": "2025-04-15", "reason": "@shortfall, waived"},
		"ops:a:reverse": {"op": "reverse", "contract": "OPS-A", "tonnes": "20.000", "date": "2025-04-20", "reason": "-fire, plot 7",
			"remedy": "replace", "serials": "CAR-1-MX-1-1:281-300"},
		"ops:a:amend:tonnes": {"op": "amend", "contract": "OPS-A", "tonnes": "1100.000", "date": "2025-05-01", "reason": "upsized"},
		"ops:a:amend:schedule": {"op": "amend", "contract": "OPS-A", "date": "2025-05-02", "reason": "schedule only",
			"schedule": `[{"year":1,"tonnes":"700.000","vintage":2025},{"year":2,"tonnes":"400.000"}]`},
		// (the vintage of the amended schedule's year 1, written out)
		"ops:a:deliver:typo": {"op": "deliver", "contract": "OPS-A", "tonnes": "7.500", "date": "2025-05-20", "vintage": "2025"},
		"ops:a:revert":       {"op": "revert", "entry": "key:ops:a:deliver:typo", "date": "2025-05-22", "reason": "typo, 7.5 t"},
		// Retired on delivery: the delivery's own beneficiary and reason are the contract's,
		// not fields; the vintage and price are the schedule's, written out.
		"ops:b:deliver": {"op": "deliver", "contract": "OPS-B", "tonnes": "200.000", "date": "2025-06-01", "vintage": "2025", "price_per_tonne": "30"},
		"ops:b:reverse": {"op": "reverse", "contract": "OPS-B", "tonnes": "10.000", "date": "2025-07-01", "reason": "wildfire", "remedy": "buffer"},
		"ops:b:deliver:late": {"op": "deliver", "contract": "OPS-B", "tonnes": "50.000", "date": "2026-01-10", "vintage": "2025",
			"allow_late": "true", "price_per_tonne": "27.5"},
		"ops:b:terminate": {"op": "cancel", "contract": "OPS-B", "date": "2026-01-12", "reason": "term ended", "terminate": "true"},
	}
	for key, w := range want {
		w["key"] = key
		if diff := cmp.Diff(w, rows[key]); diff != "" {
			t.Errorf("row %s (-want +got):\n%s", key, diff)
		}
	}

	// A signing: the terms as signed, which sign the same contract again (the same digest);
	// a contract signed without a schedule has none in its terms, so that it is signed the same
	// way again.
	for code, sign := range signs {
		row := rows[sign.Key]
		if row["op"] != export.OpContract || row["contract"] != code || row["terms"] == "" || len(row) != 4 {
			t.Errorf("sign row of %s: %q, want op, contract, key and terms only", code, row)
			continue
		}
		c, err := ledger.ParseContractJSON(strings.NewReader(row["terms"]))
		if err != nil {
			t.Errorf("terms of %s do not parse: %v\n%s", code, err, row["terms"])
			continue
		}
		if got := c.TermsDigest(); got != sign.Metadata["terms_sha256"] {
			t.Errorf("terms of %s: digest %s, want the sign entry's %s\n%s", code, got, sign.Metadata["terms_sha256"], row["terms"])
		}
		if wantGiven := code == "OPS-B"; c.ScheduleGiven != wantGiven {
			t.Errorf("terms of %s: schedule given %v, want %v\n%s", code, c.ScheduleGiven, wantGiven, row["terms"])
		}
		if c.Notes != map[string]string{"OPS-A": "=notes <&> \"quoted\"", "OPS-B": ""}[code] {
			t.Errorf("terms of %s: notes %q", code, c.Notes)
		}
	}
	if terms := rows["contract:OPS-A:sign"]["terms"]; strings.Contains(terms, `"schedule"`) || strings.Contains(terms, `\u003c`) {
		t.Errorf("terms of OPS-A hold a schedule or escape HTML: %s", terms)
	}

	// Every operation row is a valid request as it stands.
	for _, key := range wantKeys {
		row := rows[key]
		if row["op"] == export.OpContract {
			continue
		}
		fields := map[string]string{}
		for c, v := range row {
			if c != "terms" {
				fields[c] = v
			}
		}
		if _, err := ledger.ParseOperation(row["op"], fields); err != nil {
			t.Errorf("row %s is no valid %s: %v", key, row["op"], err)
		}
	}
}
