package export_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carbonledger/carbonledger/internal/export"
	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
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
	ext := map[string]string{"hledger": ".journal", "beancount": ".beancount", "csv": ".csv"}[format]
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
// kilogram; the CSV sums to the same and neutralises formulas.
func TestExport(t *testing.T) {
	t.Parallel()
	s := buildLedger(t)
	for name, check := range map[string]func(*testing.T, *store.Store){
		"hledger": testHledger, "beancount": testBeancount, "csv": testCSV, "period": testPeriod,
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

func testCSV(t *testing.T, s *store.Store) {
	path := exportFile(t, s, "csv", time.Time{}, time.Time{})
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
// sums of the same period's CSV rows.
func testPeriod(t *testing.T, s *store.Store) {
	tool(t, "hledger")
	tool(t, "bean-check")
	from, to := ledger.Date(2025, 3, 1), ledger.Date(2025, 5, 20)

	b, err := os.ReadFile(exportFile(t, s, "csv", from, to))
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
	if _, err := export.New(&bytes.Buffer{}, "ledger-cli", time.Time{}, time.Time{}); err == nil || !strings.Contains(err.Error(), "hledger, beancount, csv") {
		t.Errorf("unknown format: got %v, want an error listing the formats", err)
	}
	if _, err := export.New(&bytes.Buffer{}, "csv", ledger.Date(2025, 2, 1), ledger.Date(2025, 1, 1)); err == nil {
		t.Error("a period ending before it starts was accepted")
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
