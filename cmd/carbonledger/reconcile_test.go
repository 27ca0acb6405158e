package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/ledger"
)

// recSamples is where the real registry exports live: $CARBONLEDGER_REGISTRY_EXPORTS, else the
// copy in testdata/ at the repository root. Without them the test fails; it never skips.
func recSamples(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CARBONLEDGER_REGISTRY_EXPORTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "testdata", "registry-exports")
	}
	if _, err := os.Stat(filepath.Join(dir, "car-retirements.csv")); err != nil {
		t.Fatalf("the real registry exports are not at %s (set CARBONLEDGER_REGISTRY_EXPORTS): %v", dir, err)
	}
	return dir
}

// recSample is the path of one real export: in $CARBONLEDGER_REGISTRY_EXPORTS when it is set,
// else in testdata/registry-exports at the repository root, else among the samples
// internal/registry keeps of the files that folder does not hold yet. A missing file fails the
// test; it never skips.
func recSample(t *testing.T, file string) string {
	t.Helper()
	dirs := []string{filepath.Join("..", "..", "testdata", "registry-exports")}
	if dir := os.Getenv("CARBONLEDGER_REGISTRY_EXPORTS"); dir != "" {
		dirs = []string{dir}
	}
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, file)); err == nil {
			return filepath.Join(dir, file)
		}
	}
	t.Fatalf("the real registry export %s is in none of %s (set CARBONLEDGER_REGISTRY_EXPORTS)", file, strings.Join(dirs, ", "))
	return ""
}

// recLines returns the lines of a real export (each of its rows is one line).
func recLines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(recSample(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// recRun runs the CLI against the database at url and returns the exit code and output.
func recRun(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append(args, "--db", url), &out, &errb)
	return code, out.String(), errb.String()
}

func recOK(t *testing.T, url string, args ...string) string {
	t.Helper()
	code, out, errOut := recRun(t, url, args...)
	if code != 0 {
		t.Fatalf("carbonledger %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// recReport is the JSON report, as much of it as the tests read.
type recReport struct {
	Kind         string `json:"kind"`
	Registry     string `json:"registry"`
	OK           bool   `json:"ok"`
	Rows         int    `json:"rows"`
	Unreadable   int    `json:"unreadable"`
	LedgerBlocks int    `json:"ledger_blocks"`
	Scope        *struct {
		Accounts     []string `json:"accounts"`
		AccountsFrom string   `json:"accounts_from"`
	} `json:"scope"`
	Totals []struct {
		Class        string `json:"class"`
		Rows         int    `json:"rows"`
		Blocks       int    `json:"ledger_blocks"`
		Tonnes       string `json:"tonnes"`
		LedgerTonnes string `json:"ledger_tonnes"`
	} `json:"totals"`
	Items []struct {
		Class  string `json:"class"`
		Line   int    `json:"line"`
		Detail string `json:"detail"`
		Row    *struct {
			Serials string `json:"serials"`
			Status  string `json:"status"`
			Reason  string `json:"reason"`
			Cancel  string `json:"cancellation"`
			Error   string `json:"error"`
		} `json:"row"`
		Ledger []struct {
			Contract, Serials, State string
		} `json:"ledger"`
	} `json:"items"`
}

func recDecode(t *testing.T, out string) recReport {
	t.Helper()
	var r recReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("reconcile --format json: %v\n%s", err, out)
	}
	return r
}

// classes maps each row's line to its class, checking that each line appears once.
func (r recReport) classes(t *testing.T) map[int]string {
	t.Helper()
	out := map[int]string{}
	for _, it := range r.Items {
		if it.Line == 0 {
			continue
		}
		if _, dup := out[it.Line]; dup {
			t.Errorf("line %d reported twice", it.Line)
		}
		out[it.Line] = it.Class
	}
	return out
}

// recContract adds a contract on the Climate Action Reserve.
func recContract(t *testing.T, url, code string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), code+".json")
	js := `{"code": "` + code + `", "buyer": "Acme Buyer", "supplier": "Coffeyville NAP2", "project": "Coffeyville NAP2",
	  "method": "other", "country": "US", "region": "Kansas", "registry": "car", "standard": "Nitric Acid N2O",
	  "term_start": "2025-01-01", "term_end": "2026-12-31", "signed_on": "2024-12-01", "tonnes": "100000",
	  "delivery_mode": "transfer"}`
	if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	recOK(t, url, "contract", "add", "-f", path)
}

// Serial ranges of real rows of car-retirements.csv (lines 2 to 5), in the Reserve's form.
const (
	recSeries9205 = "CAR-1-US-1335-31-983-KS-2025-9205"
	recSeries9659 = "CAR-1-US-1335-31-983-KS-2025-9659"
)

func recDeliver(t *testing.T, url, code, serials, tonnes string) {
	t.Helper()
	recOK(t, url, "deliver", "--contract", code, "--tonnes", tonnes, "--date", "2025-10-01", "--vintage", "2025", "--serials", serials)
}

func recRetire(t *testing.T, url, code, serials, tonnes string) {
	t.Helper()
	recOK(t, url, "retire", "--contract", code, "--tonnes", tonnes, "--date", "2025-10-27", "--beneficiary", "Kinaxis Inc.",
		"--reason", "On Behalf of Third Party", "--serials", serials)
}

// recRetireAs retires serials as a registry row shows them retired: on its date, for its
// beneficiary and reason.
func recRetireAs(t *testing.T, url, code, serials, tonnes, date, beneficiary, reason string) {
	t.Helper()
	recOK(t, url, "retire", "--contract", code, "--tonnes", tonnes, "--date", date, "--beneficiary", beneficiary,
		"--reason", reason, "--serials", serials)
}

func TestReconcileAgainstLedger(t *testing.T) {
	lines := recLines(t, "car-retirements.csv")
	url := pgtest.URL(t)
	recContract(t, url, "REC-1")
	// line 2: delivered and retired exactly as the registry shows
	recDeliver(t, url, "REC-1", recSeries9205+"-1 to 5000", "5000")
	recRetire(t, url, "REC-1", recSeries9205+"-1 to 5000", "5000")
	// line 3: the registry retired 1-7275; the ledger retired a different range, 1-7000
	recDeliver(t, url, "REC-1", recSeries9659+"-1 to 7275", "7275")
	recRetire(t, url, "REC-1", recSeries9659+"-1 to 7000", "7000")
	// line 4: retired at the registry, only delivered in the ledger
	recDeliver(t, url, "REC-1", recSeries9659+"-43177 to 43276", "100")
	// line 5 is not in the ledger; these two blocks are not in the file
	recDeliver(t, url, "REC-1", recSeries9659+"-50001 to 50100", "100")
	recRetire(t, url, "REC-1", recSeries9659+"-50001 to 50100", "100")
	recDeliver(t, url, "REC-1", recSeries9659+"-60001 to 60100", "100")

	dir := t.TempDir()
	file := filepath.Join(dir, "car.csv")
	bad := strings.Replace(lines[5], ",100,02/12/2026,", ",one hundred,02/12/2026,", 1) // line 6 of the file
	if bad == lines[5] {
		t.Fatal("could not spoil the quantity of the sample row")
	}
	body := strings.Join([]string{lines[0], lines[1], lines[2], lines[3], lines[4], lines[7], bad}, "\r\n") + "\r\n"
	if err := os.WriteFile(file, []byte("\xef\xbb\xbf"+body), 0o644); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := recRun(t, url, "reconcile", "--registry", "car", file, "--format", "json")
	if code != 1 {
		t.Fatalf("reconcile: exit %d, want 1 (discrepancies)\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "discrepancies: 2 rows disagreeing (quantity, range, state or retirement), 2 rows in the registry only, 1 ledger block in the ledger only, 1 row unreadable (1 of 6 rows matched)") {
		t.Errorf("stderr %q does not give the verdict", errOut)
	}
	r := recDecode(t, out)
	if r.Kind != "car-retirements" || r.Registry != "car" || r.OK || r.Rows != 6 || r.Unreadable != 1 || r.LedgerBlocks != 6 {
		t.Errorf("report head: %+v", r)
	}
	want := map[int]string{2: "matched", 3: "disagrees", 4: "disagrees", 5: "registry_only", 6: "registry_only", 7: "unreadable"}
	got := r.classes(t)
	if len(got) != len(want) {
		t.Errorf("got %d rows, want %d: %v", len(got), len(want), got)
	}
	for line, w := range want {
		if got[line] != w {
			t.Errorf("line %d: got %q, want %q", line, got[line], w)
		}
	}
	details := map[int]string{}
	var ledgerSide []string
	for _, it := range r.Items {
		if it.Line == 0 {
			ledgerSide = append(ledgerSide, it.Class+" "+it.Ledger[0].Serials+" "+it.Ledger[0].State)
		}
		details[it.Line] = it.Detail
	}
	for line, says := range map[int]string{
		3: "the ledger has 7001-7275 delivered (contract REC-1",
		4: "state differs: the registry shows them retired, the ledger has 43177-43276 delivered",
		5: "the ledger holds other serials of series " + recSeries9659 + ", none of 43277-43376",
		6: "the ledger holds no serial of series CAR-1-US-2060-31-2420-MO-2025-9326",
		7: `Quantity of Offset Credits "one hundred" is not a whole number`,
	} {
		if !strings.Contains(details[line], says) {
			t.Errorf("line %d: detail %q does not say %q", line, details[line], says)
		}
	}
	wantSide := []string{
		"ledger_only " + recSeries9659 + ":50001-50100 retired",
		"not_in_export " + recSeries9659 + ":60001-60100 delivered",
	}
	if strings.Join(ledgerSide, "|") != strings.Join(wantSide, "|") {
		t.Errorf("ledger-side items: got %q, want %q", ledgerSide, wantSide)
	}
	totals := map[string]string{}
	for _, tt := range r.Totals {
		totals[tt.Class] = strconv.Itoa(tt.Rows) + "/" + strconv.Itoa(tt.Blocks) + "/" + tt.Tonnes + "/" + tt.LedgerTonnes
	}
	for class, w := range map[string]string{
		"matched":       "1/0/5000.000/5000.000",
		"disagrees":     "2/0/7375.000/7375.000",
		"registry_only": "2/0/130.000/0.000",
		"ledger_only":   "0/1/0.000/100.000",
		"not_in_export": "0/1/0.000/100.000",
		"unreadable":    "1/0/0.000/0.000",
	} {
		if totals[class] != w {
			t.Errorf("total %s: got %s, want %s (rows/blocks/tonnes/ledger tonnes)", class, totals[class], w)
		}
	}

	// the text report: the summary, then every row with its line number and class
	code, text, _ := recRun(t, url, "reconcile", file)
	if code != 1 {
		t.Errorf("reconcile (text): exit %d, want 1", code)
	}
	for _, s := range []string{"Climate Action Reserve retirements export (6 rows, 1 unreadable)", "in the registry, not in the ledger",
		"\n2     matched", "\n3     disagrees", "\n7     unreadable", "\n-     ledger_only", recSeries9659 + ":50001-50100"} {
		if !strings.Contains(text, s) {
			t.Errorf("text report does not say %q:\n%s", s, text)
		}
	}
	// the CSV report: one record per item
	code, csvOut, _ := recRun(t, url, "reconcile", file, "--format", "csv")
	recs, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if code != 1 || err != nil || len(recs) != 1+6+2 || recs[0][0] != "line" || recs[1][1] != "matched" {
		t.Errorf("csv: exit %d, %v, %d records: %q", code, err, len(recs), csvOut)
	}

	// reconciling changes nothing
	if again := recOK(t, url, "serials", "REC-1", "--format", "json"); !strings.Contains(again, "50001") {
		t.Errorf("serials after reconcile: %s", again)
	}
}

func TestReconcileAllMatchedExitsZero(t *testing.T) {
	lines := recLines(t, "car-retirements.csv")
	url := pgtest.URL(t)
	recContract(t, url, "REC-OK")
	recDeliver(t, url, "REC-OK", recSeries9205+"-1 to 5000", "5000")
	recRetire(t, url, "REC-OK", recSeries9205+"-1 to 5000", "5000")
	// line 6 of the file (line 3 of ours), retired in two steps in the ledger, one row at the registry
	recDeliver(t, url, "REC-OK", recSeries9659+"-43377 to 43476", "100")
	// (on its date, for the beneficiary its details name)
	recRetireAs(t, url, "REC-OK", recSeries9659+"-43377 to 43400", "24", "2026-02-12", "BFS Europe", "On Behalf of Third Party")
	recRetireAs(t, url, "REC-OK", recSeries9659+"-43401 to 43476", "76", "2026-02-12", "BFS Europe", "On Behalf of Third Party")
	// held, not retired: a retirements report does not list it
	recDeliver(t, url, "REC-OK", recSeries9659+"-60001 to 60100", "100")
	file := filepath.Join(t.TempDir(), "ok.csv")
	if err := os.WriteFile(file, []byte(lines[0]+"\n"+lines[1]+"\n"+lines[5]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := recRun(t, url, "reconcile", "--registry", "Climate Action Reserve", file)
	if code != 0 {
		t.Fatalf("reconcile: exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "nothing disagrees: 2 of 2 rows matched") || !strings.Contains(out, "retired in 2 ledger blocks") {
		t.Errorf("text report:\n%s", out)
	}
	r := recDecode(t, recOK(t, url, "reconcile", file, "--format", "json"))
	if !r.OK || r.classes(t)[2] != "matched" || r.classes(t)[3] != "matched" {
		t.Errorf("json: %+v", r)
	}
}

func TestReconcileUsage(t *testing.T) {
	dir := recSamples(t)
	car := filepath.Join(dir, "car-retirements.csv")
	url := "postgres://127.0.0.1:1/never-used" // usage errors are refused before any connection
	unknown := filepath.Join(t.TempDir(), "bank.csv")
	if err := os.WriteFile(unknown, []byte("Date,Amount,Memo\n2025-01-01,10,x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Puro's projects list, which no reader knows
	projects := filepath.Join(t.TempDir(), "projects.json")
	if err := os.WriteFile(projects, []byte(`{"data": [{"projectId": "227253", "code": "227253", "name": "X", "countryCode": "PH", "supplierName": "Y", "methodologyCode": "C03000000"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"reconcile"}, 2, "reconcile needs one FILE"},
		{[]string{"reconcile", car, car}, 2, "reconcile needs one FILE"},
		{[]string{"reconcile", car, "--format", "xml"}, 2, `--format "xml" is not one of text, json, csv`},
		{[]string{"reconcile", car, "--registry", "acr"}, 2, "exports of car (Climate Action Reserve), verra, gold-standard, isometric and puro are read"},
		{[]string{"reconcile", car, "--registry", "puro"}, 2, "is a Climate Action Reserve retirements export (registry car), not an export of puro"},
		{[]string{"reconcile", car, "--registry", "isometric"}, 2, "is a Climate Action Reserve retirements export (registry car), not an export of isometric"},
		{[]string{"reconcile", car, "--registry", "Gold Standard"}, 2, "is a Climate Action Reserve retirements export (registry car), not an export of gold-standard"},
		{[]string{"reconcile", car, "--registry", "verra"}, 2, "is a Climate Action Reserve retirements export (registry car), not an export of verra"},
		{[]string{"reconcile", unknown}, 1, "not a known registry export: the header (\"Date\", \"Amount\", \"Memo\"...) is none of"},
		// a real export of a registry no reader knows yet is refused naming that registry
		{[]string{"reconcile", recSample(t, "isometric-projects.csv")}, 1, "not a known registry export: the header looks most like an Isometric projects export (registry isometric), which reconcile does not read yet"},
		{[]string{"reconcile", projects}, 1, "not a known registry export: the JSON records look most like a Puro projects list (registry puro), which reconcile does not read"},
		{[]string{"reconcile", puroFile("puro-transactions.json"), "--registry", "verra"}, 2, "the file is a Puro JSON transactions list (registry puro), not an export of verra"},
		{[]string{"reconcile", filepath.Join(dir, "missing.csv")}, 1, "no such file"},
		{[]string{"reconcile", "-h"}, 2, "Exit codes: 0 nothing disagrees"},
	} {
		code, _, errOut := recRun(t, url, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.says) {
			t.Errorf("carbonledger %s: exit %d, stderr %q; want exit %d saying %q", strings.Join(tt.args, " "), code, errOut, tt.code, tt.says)
		}
	}
}

// TestReconcileSamplesAgainstDemo reconciles the three real exports against the demo ledger:
// every row is reported once, and the demo's illustrative serials are in none of them.
func TestReconcileSamplesAgainstDemo(t *testing.T) {
	dir := recSamples(t)
	url := pgtest.URL(t)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"demo", "--quiet", "--db", url}, &out, &errb); code != 0 {
		t.Fatalf("demo: exit %d\n%s", code, errb.String())
	}
	for _, tt := range []struct {
		file    string
		rows    int
		classes map[string]string // class -> rows/blocks
	}{
		{"car-retirements.csv", 100, map[string]string{"registry_only": "100/0", "ledger_only": "0/2", "not_in_export": "0/4"}},
		{"car-issuances.csv", 100, map[string]string{"issuance_summary": "100/0", "ledger_only": "0/6"}},
		{"verra-transactions.csv", 200, map[string]string{"registry_only": "200/0"}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			code, js, errOut := recRun(t, url, "reconcile", filepath.Join(dir, tt.file), "--format", "json")
			if code != 1 {
				t.Errorf("exit %d, want 1 (the demo's serials are illustrative)\n%s", code, errOut)
			}
			r := recDecode(t, js)
			if r.Rows != tt.rows || len(r.classes(t)) != tt.rows || r.Unreadable != 0 {
				t.Errorf("rows: %d reported, %d distinct lines, %d unreadable; want %d, all readable", r.Rows, len(r.classes(t)), r.Unreadable, tt.rows)
			}
			for _, tot := range r.Totals {
				got := strconv.Itoa(tot.Rows) + "/" + strconv.Itoa(tot.Blocks)
				want, ok := tt.classes[tot.Class]
				if !ok {
					want = "0/0"
				}
				if got != want {
					t.Errorf("%s: got %s, want %s", tot.Class, got, want)
				}
			}
			// the text report lists every row by its line number
			_, text, _ := recRun(t, url, "reconcile", filepath.Join(dir, tt.file))
			for line := 2; line <= tt.rows+1; line++ {
				if !strings.Contains(text, "\n"+strconv.Itoa(line)+" ") {
					t.Errorf("text report does not list line %d", line)
					break
				}
			}
		})
	}
}

// TestReconcileCancellationsAreNotRetirements: the Reserve's cancellations report lists credits
// the registry cancelled (converted to compliance credits, for ARB or Washington's ECO
// programme), not retired. Blocks delivered and retired in the ledger are reported against it
// as discrepancies that name the registry's reason, never as matched.
func TestReconcileCancellationsAreNotRetirements(t *testing.T) {
	lines := recLines(t, "car-cancellations.csv")
	url := pgtest.URL(t)
	recContract(t, url, "REC-CX")
	// lines 25, 44 and 45 (ARB) and 22 (WA ECO) of the file, each delivered and retired whole
	rows := []struct {
		line            int
		serials, tonnes string
		reason          string
	}{
		{25, "CAR-ROC-US-2055-129-2284-PA-2025-8928-1 to 5937", "5937", "ARB"},
		{44, "CAR-ROC-US-1822-125-1886-CA-2024-8697-1 to 2890", "2890", "ARB"},
		{45, "CAR-ROC-US-1822-125-1886-CA-2024-8698-1 to 617", "617", "ARB"},
		{22, "CAR-ROC-US-2211-202-2559-OH-2025-9609-1 to 39953", "39953", "WA ECO"},
	}
	body := []string{lines[0]}
	for _, r := range rows {
		if !strings.Contains(lines[r.line-1], ","+r.serials+","+r.tonnes+",") || !strings.Contains(lines[r.line-1], ","+r.reason+",") {
			t.Fatalf("line %d of car-cancellations.csv is not %s (%s): %s", r.line, r.serials, r.reason, lines[r.line-1])
		}
		recDeliver(t, url, "REC-CX", r.serials, r.tonnes)
		recRetire(t, url, "REC-CX", r.serials, r.tonnes)
		body = append(body, lines[r.line-1])
	}
	file := filepath.Join(t.TempDir(), "cancelled.csv")
	if err := os.WriteFile(file, []byte(strings.Join(body, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := recRun(t, url, "reconcile", file, "--format", "json")
	if code != 1 {
		t.Fatalf("reconcile: exit %d, want 1 (retired in the ledger, cancelled at the registry)\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	r := recDecode(t, out)
	if r.Kind != "car-cancellations" || r.Registry != "car" || r.OK || r.Rows != 4 {
		t.Errorf("report head: kind %q registry %q ok %v rows %d; want car-cancellations, car, not ok, 4", r.Kind, r.Registry, r.OK, r.Rows)
	}
	for i, it := range r.Items {
		want := rows[i]
		if it.Line != i+2 {
			t.Fatalf("item %d: line %d, want %d", i, it.Line, i+2)
		}
		if it.Class != "disagrees" {
			t.Errorf("line %d (file line %d): class %q, want disagrees (%s)", it.Line, want.line, it.Class, it.Detail)
		}
		for _, says := range []string{`the registry cancelled these serials (reason "` + want.reason + `"`, "compliance conversion",
			"the ledger retired them (contract REC-CX", "a cancellation is not a retirement"} {
			if !strings.Contains(it.Detail, says) {
				t.Errorf("line %d: detail %q does not say %q", it.Line, it.Detail, says)
			}
		}
		if it.Row == nil || it.Row.Status != "cancelled" || it.Row.Reason != want.reason || it.Row.Cancel != "compliance conversion" {
			t.Errorf("line %d: row %+v, want status cancelled, reason %q (compliance conversion)", it.Line, it.Row, want.reason)
		}
	}
	if len(r.Items) != 4 {
		t.Errorf("got %d items, want the 4 rows and nothing else: %+v", len(r.Items), r.Items)
	}
	if !strings.Contains(errOut, "4 rows disagreeing") || !strings.Contains(errOut, "(0 of 4 rows matched)") {
		t.Errorf("stderr %q does not give the verdict", errOut)
	}
	// the text report names the kind of file, so nobody takes it for a retirements report
	_, text, _ := recRun(t, url, "reconcile", file)
	if !strings.Contains(text, "Climate Action Reserve cancellations export") || strings.Contains(text, "matched  CAR-ROC") {
		t.Errorf("text report:\n%s", text)
	}
}

// gsRows reads a real Gold Standard export and returns its header and the records whose Serial
// Number is one of serials, in that order (a Note may span lines, so rows are CSV records, not
// lines).
func gsRows(t *testing.T, file string, serials ...string) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(recSample(t, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range all[0] {
		col[h] = i
	}
	var out [][]string
	for _, s := range serials {
		for _, rec := range all[1:] {
			if rec[col["Serial Number"]] == s {
				out = append(out, rec)
				break
			}
		}
		if len(out) == 0 || out[len(out)-1][col["Serial Number"]] != s {
			t.Fatalf("%s has no row of serials %s", file, s)
		}
	}
	return all[0], out
}

// gsWrite writes a header and records as a CSV file and returns its path.
func gsWrite(t *testing.T, header []string, rows [][]string) string {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(header)
	w.WriteAll(rows)
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gs.csv")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// gsBySerials maps each row item of a report to its class and detail, by its serials
// (PREFIX:FIRST-LAST), and checks the report has no other row.
func gsBySerials(t *testing.T, r recReport, rows int) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	for _, it := range r.Items {
		if it.Row == nil {
			continue
		}
		out[it.Row.Serials] = [2]string{it.Class, it.Detail}
	}
	if len(out) != rows || r.Rows != rows {
		t.Errorf("got %d rows (%d distinct serials), want %d: %+v", r.Rows, len(out), rows, r.Items)
	}
	return out
}

// TestReconcileGoldStandard records real Gold Standard serials in a ledger (a contract on
// registry gold-standard, with deliver/retire/reverse --serials in Gold Standard's own forms),
// reconciles the real retirements and issuances exports, and gets every row matched; then
// changes one fact in the file (a quantity, a state) and gets exactly that row reported, with
// that field. A cancellation with a reason (credits transferred to another registry) never
// matches a retirement.
func TestReconcileGoldStandard(t *testing.T) {
	url := pgtest.URL(t)
	path := filepath.Join(t.TempDir(), "gs.json")
	js := `{"code": "REC-GS", "buyer": "Acme Buyer", "supplier": "Cookstove Co", "project": "Efficient Cooking",
	  "method": "other", "country": "KE", "region": "Kenya", "registry": "Gold Standard", "standard": "GS TPDDTEC v3.1",
	  "term_start": "2025-01-01", "term_end": "2026-12-31", "signed_on": "2024-12-01", "tonnes": "900000",
	  "delivery_mode": "transfer"}`
	if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	recOK(t, url, "contract", "add", "-f", path)

	// the retirements export: line 2 (Hilti, its Note spans two lines), 54 and 55 retired;
	// line 47 cancelled with no reason given, which the ledger holds as reversed
	const (
		hilti   = "GS1-1-KE-GS11603-16-2025-30256-110-5463"
		energy  = "GS1-1-MG-GS10659-16-2023-29968-1-207"
		single  = "GS1-1-MG-GS7566-16-2023-29960-1343-1343"
		sacci   = "GS1-1-ZW-GS12875-16-2024-29978-1-41158"
		zimbabw = "GS1-1-ZW-GS11551-16-2024-29957-1-334563" // cancelled: transferred to the Zimbabwe registry
	)
	for _, b := range []struct{ serials, tonnes string }{{hilti, "5354"}, {energy, "207"}, {single, "1"}, {sacci, "41158"}} {
		recDeliver(t, url, "REC-GS", b.serials, b.tonnes)
	}
	// each retired as the registry shows it: on its Retirement Date, for its Using Entity
	recRetireAs(t, url, "REC-GS", hilti, "5354", "2026-04-10", "Hilti Corporation", "Voluntary")
	recRetireAs(t, url, "REC-GS", energy, "207", "2026-03-24", "Energy 350", "Voluntary")
	recRetireAs(t, url, "REC-GS", single, "1", "2026-04-13", "Michael Larsson", "Gold Standard Marketplace Order GSM31814")
	recOK(t, url, "reverse", "--contract", "REC-GS", "--tonnes", "41158", "--date", "2025-11-01", "--reason", "registry cancellation", "--serials", sacci)
	// the issuances export: a block still issued, and credits carried over from the CDM
	const (
		issued  = "GS1-1-KE-GS12146-17-2022-30273-1-21"
		carried = "RW-5-1459975-2-2-0-7014 - RW-5-1460107-2-2-0-7014"
	)
	recDeliver(t, url, "REC-GS", issued, "21")
	recDeliver(t, url, "REC-GS", carried, "133")
	// a range overlapping one delivered, in either of Gold Standard's forms, is refused
	for _, tt := range []struct{ serials, tonnes string }{
		{"GS1-1-KE-GS11603-16-2025-30256-5000-5599", "600"},
		{"RW-5-1460100-2-2-0-7014 - RW-5-1460199-2-2-0-7014", "100"},
	} {
		code, _, errOut := recRun(t, url, "deliver", "--contract", "REC-GS", "--tonnes", tt.tonnes, "--date", "2025-10-02", "--serials", tt.serials)
		if code == 0 || !strings.Contains(errOut, "already delivered under contract REC-GS") {
			t.Errorf("delivering %s again: exit %d, stderr %q; want it refused as already delivered", tt.serials, code, errOut)
		}
	}
	// each serial event keeps its range as the registry writes it; the blocks and the journal
	// show the generic PREFIX:FIRST-LAST
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var labels []string
	rs, err := db.Query(`SELECT label FROM serial_events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var l string
		if err := rs.Scan(&l); err != nil {
			t.Fatal(err)
		}
		labels = append(labels, l)
	}
	if err := rs.Close(); err != nil {
		t.Fatal(err)
	}
	if want := []string{hilti, energy, single, sacci, hilti, energy, single, sacci, issued, carried}; !slices.Equal(labels, want) {
		t.Errorf("serial event labels:\n got %q\nwant %q", labels, want)
	}
	if out := recOK(t, url, "serials", "REC-GS"); !strings.Contains(out, "GS1-1-KE-GS11603-16-2025-30256:110-5463") || !strings.Contains(out, "RW-5-2-2-0-7014:1459975-1460107") {
		t.Errorf("serials REC-GS:\n%s", out)
	}

	retHeader, retRows := gsRows(t, "gold-standard-retirements.csv", hilti, energy, single, sacci)
	series := func(label string) string {
		i := strings.LastIndex(label, "-")
		j := strings.LastIndex(label[:i], "-")
		return label[:j] + ":" + label[j+1:i] + "-" + label[i+1:]
	}

	t.Run("retirements, all matched", func(t *testing.T) {
		file := gsWrite(t, retHeader, retRows)
		code, out, errOut := recRun(t, url, "reconcile", "--registry", "gold-standard", file, "--format", "json")
		if code != 0 {
			t.Fatalf("reconcile: exit %d, want 0\n%s\n%s", code, out, errOut)
		}
		r := recDecode(t, out)
		if r.Kind != "gold-standard-retirements" || r.Registry != "gold-standard" || !r.OK {
			t.Errorf("report head: %+v", r)
		}
		got := gsBySerials(t, r, 4)
		for _, s := range []string{hilti, energy, single, sacci} {
			if got[series(s)][0] != "matched" {
				t.Errorf("%s: got %q (%s), want matched", s, got[series(s)][0], got[series(s)][1])
			}
		}
		if d := got[series(sacci)][1]; !strings.Contains(d, "reversed") || !strings.Contains(d, "the registry cancelled them (no reason given)") {
			t.Errorf("the cancelled row: detail %q", d)
		}
	})

	// one fact changed at a time: exactly that row is reported, naming what differs
	col := map[string]int{}
	for i, h := range retHeader {
		col[h] = i
	}
	for _, tt := range []struct {
		name, serials, column, value string
		says                         []string
	}{
		{"a quantity", hilti, "Quantity", "5353", []string{"the quantity 5353 disagrees with its serial range 110-5463, which holds 5354 serials"}},
		{"a state", energy, "Credit Status", "Canceled", []string{"the registry cancelled these serials", "the ledger retired them (contract REC-GS", "a cancellation is not a retirement"}},
		{"a state the other way", sacci, "Credit Status", "Retired", []string{"state differs: the registry shows them retired, the ledger has 1-41158 reversed"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rows := make([][]string, len(retRows))
			for i, row := range retRows {
				rows[i] = slices.Clone(row)
				if row[col["Serial Number"]] == tt.serials {
					rows[i][col[tt.column]] = tt.value
					if tt.value == "Retired" {
						rows[i][col["Retirement Date"]] = "2026-01-20"
					}
				}
			}
			code, out, errOut := recRun(t, url, "reconcile", gsWrite(t, retHeader, rows), "--format", "json")
			if code != 1 || !strings.Contains(errOut, "discrepancies: 1 row disagreeing (quantity, range, state or retirement) (3 of 4 rows matched)") {
				t.Errorf("exit %d, stderr %q; want 1 and one row disagreeing", code, errOut)
			}
			got := gsBySerials(t, recDecode(t, out), 4)
			for _, s := range []string{hilti, energy, single, sacci} {
				want := "matched"
				if s == tt.serials {
					want = "disagrees"
				}
				if got[series(s)][0] != want {
					t.Errorf("%s: got %q (%s), want %s", s, got[series(s)][0], got[series(s)][1], want)
				}
			}
			for _, say := range tt.says {
				if d := got[series(tt.serials)][1]; !strings.Contains(d, say) {
					t.Errorf("%s: detail %q does not say %q", tt.serials, d, say)
				}
			}
		})
	}

	t.Run("a cancellation for a transfer is not a retirement", func(t *testing.T) {
		c2 := filepath.Join(t.TempDir(), "gs2.json")
		if err := os.WriteFile(c2, []byte(strings.Replace(js, "REC-GS", "REC-GS2", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		recOK(t, url, "contract", "add", "-f", c2)
		recDeliver(t, url, "REC-GS2", zimbabw, "334563")
		recRetire(t, url, "REC-GS2", zimbabw, "334563")
		_, rows := gsRows(t, "gold-standard-retirements.csv", zimbabw)
		code, out, _ := recRun(t, url, "reconcile", gsWrite(t, retHeader, append(slices.Clone(retRows), rows...)), "--format", "json")
		got := gsBySerials(t, recDecode(t, out), 5)
		d := got[series(zimbabw)]
		if code != 1 || d[0] != "disagrees" || !strings.Contains(d[1], `reason "Transferred to Zimbabwe Carbon Registry`) ||
			!strings.Contains(d[1], "transfer to another registry), it did not retire them; the ledger retired them (contract REC-GS2") {
			t.Errorf("exit %d, %s: %q; want 1 and the row disagreeing, cancelled for a transfer", code, d[0], d[1])
		}
	})

	t.Run("issuances, all matched", func(t *testing.T) {
		header, rows := gsRows(t, "gold-standard-issuances.csv", issued, carried)
		file := gsWrite(t, header, rows)
		code, out, errOut := recRun(t, url, "reconcile", file, "--format", "json")
		if code != 0 {
			t.Fatalf("reconcile: exit %d, want 0\n%s\n%s", code, out, errOut)
		}
		r := recDecode(t, out)
		got := gsBySerials(t, r, 2)
		if r.Kind != "gold-standard-issuances" || got[series(issued)][0] != "matched" || got["RW-5-2-2-0-7014:1459975-1460107"][0] != "matched" {
			t.Errorf("kind %s, rows %v; want both matched", r.Kind, got)
		}
		// the retired and reversed blocks are not listed by an issuances export: not a discrepancy
		for _, tot := range r.Totals {
			if tot.Class == "not_in_export" && tot.Blocks < 4 {
				t.Errorf("not in export: %d blocks, want the retired and reversed ones", tot.Blocks)
			}
		}
		// a changed quantity of the carried-over row: that row, that field
		rows[1][2] = "132"
		code, out, _ = recRun(t, url, "reconcile", gsWrite(t, header, rows), "--format", "json")
		got = gsBySerials(t, recDecode(t, out), 2)
		if d := got["RW-5-2-2-0-7014:1459975-1460107"]; code != 1 || d[0] != "disagrees" || !strings.Contains(d[1], "the quantity 132 disagrees with its serial range 1459975-1460107") ||
			got[series(issued)][0] != "matched" {
			t.Errorf("exit %d, rows %v; want the carried-over row disagreeing on its quantity", code, got)
		}
	})
}

// factRows reads a real export and returns its header and the records whose column col is one
// of keys, in that order.
func factRows(t *testing.T, file, col string, keys ...string) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(recSample(t, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	c := slices.Index(all[0], col)
	if c < 0 {
		t.Fatalf("%s has no column %q", file, col)
	}
	var out [][]string
	for _, k := range keys {
		i := slices.IndexFunc(all[1:], func(rec []string) bool { return rec[c] == k })
		if i < 0 {
			t.Fatalf("%s has no row whose %s is %s", file, col, k)
		}
		out = append(out, all[1+i])
	}
	return all[0], out
}

// factReport is the JSON report's row items with their retirement facts.
type factReport struct {
	OK    bool `json:"ok"`
	Items []struct {
		Class  string `json:"class"`
		Detail string `json:"detail"`
		Row    *struct {
			Serials string `json:"serials"`
		} `json:"row"`
		Differences []struct{ Field, Registry, Ledger string }                `json:"differences"`
		Retirement  []struct{ Field, Outcome, Registry, Ledger, Note string } `json:"retirement"`
	} `json:"items"`
}

// TestReconcileRetirementFacts records real retirement rows of each registry's export in a
// ledger (delivered, then retired on the registry's date for the registry's beneficiary),
// reconciles them and gets every row matched, the beneficiary, date and quantity compared and
// the same; a row whose export names no beneficiary is matched with its beneficiary reported
// as not compared. Then a retirement recorded for another beneficiary, and one recorded on
// another day, are each the one row reported, with exactly that field, in the JSON, the CSV
// and the text report.
func TestReconcileRetirementFacts(t *testing.T) {
	url := pgtest.URL(t)
	type row struct {
		key, tonnes, date, beneficiary, reason string
	}
	for _, reg := range []struct {
		name, registry, file, col string
		same                      []row // retired as the registry shows them
		unnamed                   *row  // a row that names no beneficiary: retired for anyone, on its date
		otherBen, otherDay        row   // retired for another beneficiary; on the day before
	}{
		{name: "verra", registry: "verra", file: "verra-transactions.csv", col: "Serial Number",
			same: []row{{"19381-941412555-941441125-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0", "28571", "2026-04-06",
				"lindblad expeditions  FAMILY of Companies", "Environmental Benefit"}}, // case and spacing do not matter
			otherBen: row{"19334-940082955-940097954-VCS-VCU-576-VER-US-14-4268-01062024-31122024-1", "15000", "2026-03-31", "Shopify Inc.", "Retirement for Person or Organization"},
			otherDay: row{"19306-936117396-936119235-VCS-VCU-1531-VER-MX-14-2887-01012021-31122021-0", "1840", "2026-03-20", "Southampton Container Terminals Limited", "Corporate Emissions Inventory Accounting"}},
		{name: "gold standard", registry: "gold-standard", file: "gold-standard-retirements.csv", col: "Serial Number",
			same:     []row{{"GS1-1-KE-GS11603-16-2025-30256-110-5463", "5354", "2026-04-10", "Hilti Corporation", "Voluntary"}},
			unnamed:  &row{"GS1-1-MG-GS7566-16-2023-29960-1343-1343", "1", "2026-04-13", "Michael Larsson", "Marketplace order"},
			otherBen: row{"GS1-1-KE-GS11603-16-2024-30255-485-12623", "12139", "2026-04-10", "Hilti Corporation", "Voluntary"},
			otherDay: row{"GS1-1-KE-GS12350-16-2024-30167-1278-1777", "500", "2026-04-07", "OR Royalties Inc.", "Voluntary"}},
		{name: "climate action reserve", registry: "car", file: "car-retirements.csv", col: "Offset Credit Serial Numbers",
			// the Reserve's beneficiary is in the details: "Retired on behalf of Kinaxis Inc. F2024 period"
			same:     []row{{recSeries9205 + "-1 to 5000", "5000", "2025-10-27", "Kinaxis Inc.", "On Behalf of Third Party"}},
			unnamed:  &row{recSeries9659 + "-1 to 7275", "7275", "2026-03-25", "Maple Leaf Foods", "Environmental Benefit"},
			otherBen: row{recSeries9659 + "-43177 to 43276", "100", "2026-02-12", "BFS Europe", "On Behalf of Third Party"},
			otherDay: row{recSeries9659 + "-43277 to 43376", "100", "2026-02-12", "BFS Europe", "On Behalf of Third Party"}},
	} {
		t.Run(reg.name, func(t *testing.T) {
			code := "FACTS-" + strings.ToUpper(reg.registry)
			path := filepath.Join(t.TempDir(), "c.json")
			js := `{"code": "` + code + `", "buyer": "Acme Buyer", "supplier": "S", "project": "P", "method": "other", "country": "US",
			  "region": "R", "registry": "` + reg.registry + `", "standard": "S", "term_start": "2025-01-01", "term_end": "2026-12-31",
			  "signed_on": "2024-12-01", "tonnes": "900000", "delivery_mode": "transfer"}`
			if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
				t.Fatal(err)
			}
			recOK(t, url, "contract", "add", "-f", path)
			rows := slices.Clone(reg.same)
			if reg.unnamed != nil {
				rows = append(rows, *reg.unnamed)
			}
			for _, r := range rows {
				recDeliver(t, url, code, r.key, r.tonnes)
				recRetireAs(t, url, code, r.key, r.tonnes, r.date, r.beneficiary, r.reason)
			}

			var keys []string
			for _, r := range rows {
				keys = append(keys, r.key)
			}
			header, good := factRows(t, reg.file, reg.col, keys...)
			_, bad := factRows(t, reg.file, reg.col, reg.otherBen.key, reg.otherDay.key)

			// the rows retired as the registry shows them: all matched, exit 0
			out := recOK(t, url, "reconcile", gsWrite(t, header, good), "--format", "json")
			var r factReport
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if !r.OK || len(r.Items) != len(rows) {
				t.Fatalf("report: ok %v, %d items; want ok and %d rows:\n%s", r.OK, len(r.Items), len(rows), out)
			}
			for i, it := range r.Items {
				outcomes := map[string]string{}
				for _, f := range it.Retirement {
					outcomes[f.Field] = f.Outcome
				}
				wantBen := "same"
				if reg.unnamed != nil && i == len(rows)-1 {
					wantBen = "not_compared" // the export names no beneficiary: not called a match
				}
				if it.Class != "matched" || len(it.Differences) != 0 || outcomes["date"] != "same" || outcomes["quantity"] != "same" || outcomes["beneficiary"] != wantBen {
					t.Errorf("row %d: %s, differences %v, outcomes %v; want matched, none, date and quantity same, beneficiary %s (%s)",
						i, it.Class, it.Differences, outcomes, wantBen, it.Detail)
				}
				if wantBen == "not_compared" && !strings.Contains(it.Detail, "beneficiary not compared") {
					t.Errorf("row %d: detail %q does not say the beneficiary was not compared", i, it.Detail)
				}
			}

			// two more rows, retired in the ledger for another beneficiary and on the day before
			// the registry's: exactly those rows are reported, each with exactly its field
			recDeliver(t, url, code, reg.otherBen.key, reg.otherBen.tonnes)
			recRetireAs(t, url, code, reg.otherBen.key, reg.otherBen.tonnes, reg.otherBen.date, "Someone Else Ltd", reg.otherBen.reason)
			dayBefore := map[string]string{"2026-03-20": "2026-03-19", "2026-04-07": "2026-04-06", "2026-02-12": "2026-02-11"}[reg.otherDay.date]
			recDeliver(t, url, code, reg.otherDay.key, reg.otherDay.tonnes)
			recRetireAs(t, url, code, reg.otherDay.key, reg.otherDay.tonnes, dayBefore, reg.otherDay.beneficiary, reg.otherDay.reason)
			file := gsWrite(t, header, append(slices.Clone(good), bad...))
			code2, out, errOut := recRun(t, url, "reconcile", file, "--format", "json")
			if code2 != 1 || !strings.Contains(errOut, "2 rows disagreeing (quantity, range, state or retirement)") {
				t.Errorf("exit %d, stderr %q; want 1 and two rows disagreeing", code2, errOut)
			}
			r = factReport{}
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if len(r.Items) != len(rows)+2 {
				t.Fatalf("%d items, want %d:\n%s", len(r.Items), len(rows)+2, out)
			}
			for i, it := range r.Items[:len(rows)] {
				if it.Class != "matched" {
					t.Errorf("row %d: %s (%s), want matched", i, it.Class, it.Detail)
				}
			}
			benItem, dayItem := r.Items[len(rows)], r.Items[len(rows)+1]
			if benItem.Class != "disagrees" || len(benItem.Differences) != 1 || benItem.Differences[0].Field != "beneficiary" ||
				benItem.Differences[0].Ledger != "Someone Else Ltd" || !strings.Contains(benItem.Detail, `beneficiary: the registry "`) {
				t.Errorf("the other beneficiary: %s, differences %+v (%s); want disagrees on the beneficiary alone", benItem.Class, benItem.Differences, benItem.Detail)
			}
			if dayItem.Class != "disagrees" || len(dayItem.Differences) != 1 || dayItem.Differences[0] != (struct{ Field, Registry, Ledger string }{"date", reg.otherDay.date, dayBefore}) ||
				!strings.Contains(dayItem.Detail, `date: the registry "`+reg.otherDay.date+`", the ledger "`+dayBefore+`"`) {
				t.Errorf("the other day: %s, differences %+v (%s); want disagrees on the date alone", dayItem.Class, dayItem.Differences, dayItem.Detail)
			}

			// the CSV names the differing field of each row
			_, csvOut, _ := recRun(t, url, "reconcile", file, "--format", "csv")
			recs, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
			if err != nil || len(recs) != 1+len(rows)+2 {
				t.Fatalf("csv: %v, %d records:\n%s", err, len(recs), csvOut)
			}
			fi := slices.Index(recs[0], "differing_fields")
			if fi < 0 {
				t.Fatalf("csv header %q has no differing_fields", recs[0])
			}
			var fields []string
			for _, rec := range recs[1:] {
				fields = append(fields, rec[fi])
			}
			if want := append(make([]string, len(rows)), "beneficiary", "date"); !slices.Equal(fields, want) {
				t.Errorf("csv differing_fields %q, want %q", fields, want)
			}
		})
	}
}

// recCAR1335 are the rows of project CAR1335 in car-retirements.csv (lines 2 to 7), as the
// Reserve retired them: range, quantity, date, the beneficiary its details name, reason.
var recCAR1335 = [][5]string{
	{recSeries9205 + "-1 to 5000", "5000", "2025-10-27", "Kinaxis Inc.", "On Behalf of Third Party"},
	{recSeries9659 + "-1 to 7275", "7275", "2026-03-25", "Maple Leaf Foods", "Environmental Benefit"},
	{recSeries9659 + "-43177 to 43276", "100", "2026-02-12", "BFS Europe", "On Behalf of Third Party"},
	{recSeries9659 + "-43277 to 43376", "100", "2026-02-12", "BFS Europe", "On Behalf of Third Party"},
	{recSeries9659 + "-43377 to 43476", "100", "2026-02-12", "BFS Europe", "On Behalf of Third Party"},
	{recSeries9659 + "-7276 to 30884", "23609", "2026-03-25", "Maple Leaf Foods", "Environmental Benefit"},
}

// recProjectLedger is a ledger with one CAR contract whose serials are every CAR1335 row of
// car-retirements.csv, delivered and retired as the Reserve shows them; projects is the
// contract's registry_projects (nil: not named).
func recProjectLedger(t *testing.T, projects []string) string {
	t.Helper()
	return recAccountLedger(t, projects, nil)
}

// recAccountLedger is recProjectLedger's ledger, its contract naming registry projects and
// accounts (nil: none).
func recAccountLedger(t *testing.T, projects, accounts []string) string {
	t.Helper()
	url := pgtest.URL(t)
	named := ""
	if projects != nil {
		b, _ := json.Marshal(projects)
		named = `"registry_projects": ` + string(b) + `,`
	}
	if accounts != nil {
		b, _ := json.Marshal(accounts)
		named += `"registry_accounts": ` + string(b) + `,`
	}
	path := filepath.Join(t.TempDir(), "c.json")
	js := `{"code": "REC-PROJ", "buyer": "Acme Buyer", "supplier": "Coffeyville NAP2", "project": "Coffeyville NAP2",
	  "method": "other", "country": "US", "registry": "car", ` + named + ` "term_start": "2025-01-01", "term_end": "2026-12-31",
	  "signed_on": "2024-12-01", "tonnes": "100000", "delivery_mode": "transfer"}`
	if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	recOK(t, url, "contract", "add", "-f", path)
	for _, r := range recCAR1335 {
		recDeliver(t, url, "REC-PROJ", r[0], r[1])
		recRetireAs(t, url, "REC-PROJ", r[0], r[1], r[2], r[3], r[4])
	}
	return url
}

// recTally is a report's rows and blocks per class, "rows/blocks", classes with none left out.
func recTally(r recReport) map[string]string {
	out := map[string]string{}
	for _, t := range r.Totals {
		if t.Rows+t.Blocks > 0 {
			out[t.Class] = strconv.Itoa(t.Rows) + "/" + strconv.Itoa(t.Blocks)
		}
	}
	return out
}

// TestReconcileContractProjects: a contract names its registry project; the WHOLE Reserve
// retirements export (100 rows of many projects) reconciled with a ledger holding every
// CAR1335 row exactly exits 0, the other 94 rows counted outside the ledger's projects. The
// same ledger without registry_projects exits 1 with those rows in the registry only; there
// --project narrows the same way, and --from/--to narrow to a period.
func TestReconcileContractProjects(t *testing.T) {
	file := recSample(t, "car-retirements.csv")

	url := recProjectLedger(t, []string{"CAR1335"})
	// the stored terms, projects included, still match the digest sealed into the sign entry
	recOK(t, url, "audit")
	// the contract shows its projects, in the CLI's JSON and so in the API's
	if out := recOK(t, url, "contract", "show", "REC-PROJ", "--format", "json"); !strings.Contains(out, `"registry_projects": [`) || !strings.Contains(out, `"CAR1335"`) {
		t.Errorf("contract show does not show registry_projects:\n%s", out)
	}
	code, out, errOut := recRun(t, url, "reconcile", file)
	if code != 0 {
		t.Fatalf("whole export, contract naming CAR1335: exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"Compared: project CAR1335 (named by the ledger's contracts)",
		"nothing disagrees: 6 of 6 rows matched; 94 rows outside the ledger's projects or the period, not compared"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\n8 ") || !strings.Contains(out, "\n7 ") {
		t.Errorf("the text report should list the compared rows (line 7) and not the rows outside (line 8):\n%s", out)
	}
	r := recDecode(t, recOK(t, url, "reconcile", file, "--format", "json"))
	if got, want := recTally(r), map[string]string{"matched": "6/0", "outside": "94/0"}; !maps.Equal(got, want) || !r.OK || r.Rows != 100 {
		t.Errorf("json: ok %v, %d rows, classes %v; want ok, 100 rows, %v", r.OK, r.Rows, got, want)
	}
	classes := r.classes(t)
	for line := 2; line <= 101; line++ {
		want := "outside"
		if line <= 7 {
			want = "matched"
		}
		if classes[line] != want {
			t.Errorf("line %d: %s, want %s", line, classes[line], want)
		}
	}
	for _, it := range r.Items {
		if it.Class == "outside" && !strings.Contains(it.Detail, "is not one of the ledger's projects of this registry (CAR1335)") {
			t.Errorf("line %d: outside, detail %q does not say why", it.Line, it.Detail)
			break
		}
	}
	// a period: the three rows retired in February 2026 compared, the rest outside; the
	// ledger's blocks retired on other days are not reported as in the ledger only
	r = recDecode(t, recOK(t, url, "reconcile", file, "--from", "2026-02-01", "--to", "2026-02-28", "--format", "json"))
	if got, want := recTally(r), map[string]string{"matched": "3/0", "outside": "97/0"}; !maps.Equal(got, want) || !r.OK {
		t.Errorf("--from/--to February 2026: ok %v, classes %v; want ok and %v", r.OK, got, want)
	}
	// --project replaces the contracts' projects: another project's rows are all in the
	// registry only, and the ledger's CAR1335 blocks are outside
	code, js, errOut := recRun(t, url, "reconcile", file, "--project", "car1480", "--format", "json")
	r = recDecode(t, js)
	if got, want := recTally(r), map[string]string{"registry_only": "16/0", "outside": "84/0"}; code != 1 || !maps.Equal(got, want) ||
		!strings.Contains(errOut, "16 rows in the registry only (0 of 16 rows matched); 84 rows outside") {
		t.Errorf("--project car1480: exit %d, classes %v, stderr %q; want 1, %v", code, got, errOut, want)
	}

	// the same ledger, its contract naming no project: as before, every other project's row is
	// in the registry only
	url = recProjectLedger(t, nil)
	code, js, errOut = recRun(t, url, "reconcile", file, "--format", "json")
	r = recDecode(t, js)
	if got, want := recTally(r), map[string]string{"matched": "6/0", "registry_only": "94/0"}; code != 1 || !maps.Equal(got, want) ||
		!strings.Contains(errOut, "94 rows in the registry only (6 of 100 rows matched)") {
		t.Errorf("no registry_projects: exit %d, classes %v, stderr %q; want 1, %v", code, got, errOut, want)
	}
	// --project narrows it explicitly, in any case and with or without the registry's letters
	for _, p := range []string{"CAR1335", "1335", " car1335 "} {
		code, out, errOut = recRun(t, url, "reconcile", file, "--project", p)
		if code != 0 || !strings.Contains(out, "nothing disagrees: 6 of 6 rows matched; 94 rows outside") ||
			!strings.Contains(out, "(given with --project)") {
			t.Errorf("--project %q: exit %d\n%s\n%s", p, code, out, errOut)
		}
	}
	// --from alone: rows retired from 2026-03-01 (lines 3 and 7) compared; the block retired
	// on 2025-10-27 and the three of 2026-02-12 are outside the period, not ledger_only
	r = recDecode(t, recOK(t, url, "reconcile", file, "--project", "CAR1335", "--from", "2026-03-01", "--format", "json"))
	if got, want := recTally(r), map[string]string{"matched": "2/0", "outside": "98/0"}; !maps.Equal(got, want) {
		t.Errorf("--from 2026-03-01: classes %v, want %v", got, want)
	}
	// a subset of the export whose rows of the period are missing: the ledger's blocks of the
	// period are in the ledger only, those outside it are not reported
	lines := recLines(t, "car-retirements.csv")
	sub := filepath.Join(t.TempDir(), "sub.csv")
	if err := os.WriteFile(sub, []byte(lines[0]+"\n"+lines[1]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, js, _ = recRun(t, url, "reconcile", sub, "--project", "CAR1335", "--to", "2026-02-28", "--format", "json")
	r = recDecode(t, js)
	if got, want := recTally(r), map[string]string{"matched": "1/0", "ledger_only": "0/3", "outside": "0/2"}; code != 1 || !maps.Equal(got, want) {
		t.Errorf("subset up to 2026-02-28: exit %d, classes %v; want 1, %v", code, got, want)
	}

	// unknown or malformed values are usage errors
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"--from", "2026-13-01"}, `--from "2026-13-01" is not a date; give YYYY-MM-DD`},
		{[]string{"--to", "yesterday"}, `--to "yesterday" is not a date; give YYYY-MM-DD`},
		{[]string{"--from", "2026-03-01", "--to", "2026-02-01"}, "--to 2026-02-01 is before --from 2026-03-01"},
		{[]string{"--project", " "}, `--project "": give one registry project id per --project`},
		{[]string{"--project", "CAR1335,CAR1480"}, `--project "CAR1335,CAR1480": give one registry project id per --project`},
		{[]string{"--project", "CAR1335", "--project", "1335"}, `--project "1335" is given twice`},
	} {
		code, _, errOut := recRun(t, "postgres://127.0.0.1:1/never-used", append([]string{"reconcile", file}, tt.args...)...)
		if code != 2 || !strings.Contains(errOut, tt.says) {
			t.Errorf("reconcile %q: exit %d, stderr %q; want 2 saying %q", tt.args, code, errOut, tt.says)
		}
	}
}

// TestReconcileContractAccounts: a contract names the registry accounts its credits are
// retired from (the Reserve's Account Holder). The whole Reserve retirements export: rows of
// other accounts are outside, except one whose serials the ledger holds (its account is not
// named); a row of a named account in another project is compared and in the registry only;
// with the contract's project named too the export exits 0; --account narrows further.
func TestReconcileContractAccounts(t *testing.T) {
	file := recSample(t, "car-retirements.csv")
	accounts := []string{"ACT Commodities BV", "Maple Leaf Foods"}

	url := recAccountLedger(t, nil, accounts)
	recOK(t, url, "audit") // the terms, accounts included, match the sealed digest
	if out := recOK(t, url, "contract", "show", "REC-PROJ", "--format", "json"); !strings.Contains(out, `"registry_accounts": [`) || !strings.Contains(out, `"Maple Leaf Foods"`) {
		t.Errorf("contract show does not show registry_accounts:\n%s", out)
	}
	code, js, errOut := recRun(t, url, "reconcile", file, "--format", "json")
	r := recDecode(t, js)
	if got, want := recTally(r), map[string]string{"matched": "6/0", "registry_only": "1/0", "outside": "93/0"}; code != 1 || !maps.Equal(got, want) {
		t.Errorf("accounts named: exit %d, classes %v, stderr %q; want 1, %v", code, got, errOut, want)
	}
	classes := r.classes(t)
	if classes[2] != "matched" || classes[54] != "registry_only" || classes[8] != "outside" {
		t.Errorf("line 2 (another account, serials held) %s, line 54 (Maple Leaf Foods, CAR416) %s, line 8 %s; want matched, registry_only, outside",
			classes[2], classes[54], classes[8])
	}
	for _, it := range r.Items {
		if it.Line == 8 && !strings.Contains(it.Detail, "is not one of the ledger's accounts of this registry (ACT Commodities BV, Maple Leaf Foods)") {
			t.Errorf("line 8: detail %q does not say why it is outside", it.Detail)
		}
	}
	if r.Scope == nil || r.Scope.AccountsFrom != "contracts" || !slices.Equal(r.Scope.Accounts, accounts) {
		t.Errorf("json scope: %+v", r.Scope)
	}

	// the contract's project named too: a clean ledger, the whole export exits 0
	url = recAccountLedger(t, []string{"CAR1335"}, accounts)
	code, out, errOut := recRun(t, url, "reconcile", file)
	if code != 0 || !strings.Contains(out, "accounts ACT Commodities BV, Maple Leaf Foods (named by the ledger's contracts)") ||
		!strings.Contains(out, "6 of 6 rows matched; 94 rows outside") {
		t.Errorf("projects and accounts named: exit %d\n%s\n%s", code, out, errOut)
	}
	// --account replaces the contracts' accounts, in any case and spacing
	r = recDecode(t, recOK(t, url, "reconcile", file, "--account", " maple  leaf foods", "--format", "json"))
	if got, want := recTally(r), map[string]string{"matched": "2/0", "outside": "98/0"}; !maps.Equal(got, want) || !r.OK {
		t.Errorf("--account maple leaf foods: ok %v, classes %v; want ok and %v", r.OK, got, want)
	}
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"--account", " "}, `--account "": give one registry account per --account`},
		{[]string{"--account", "ACT Commodities BV", "--account", "act commodities bv"}, `--account "act commodities bv" is given twice`},
	} {
		code, _, errOut := recRun(t, "postgres://127.0.0.1:1/never-used", append([]string{"reconcile", file}, tt.args...)...)
		if code != 2 || !strings.Contains(errOut, tt.says) {
			t.Errorf("reconcile %q: exit %d, stderr %q; want 2 saying %q", tt.args, code, errOut, tt.says)
		}
	}
}

// recIsoProject is the Isometric project whose rows of isometric-retirements.csv the Isometric
// tests record (7 rows, one of 0.019 credits = 19 kg).
const recIsoProject = "prj_1JQEQKCF91S06HAJ"

// recIsoRow is one row of isometric-retirements.csv, as the ledger records it.
type recIsoRow struct {
	line                         int
	id, day, tonnes, beneficiary string
	purposes                     string
}

// recIsoRows reads the sample's rows of one project with the standard library alone: the
// retirement's UTC day, its kilograms as tonnes, its beneficiary.name and purposes.
func recIsoRows(t *testing.T, project string) []recIsoRow {
	t.Helper()
	f, err := os.Open(recSample(t, "isometric-retirements.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range all[0] {
		col[h] = i
	}
	var out []recIsoRow
	for i, r := range all[1:] {
		if r[col["project_id"]] != project {
			continue
		}
		kg, err := strconv.ParseInt(r[col["credit_batch_size_total.credit_kgs"]], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		at := r[col["retired_at"]]
		if !strings.HasSuffix(at, "Z") {
			t.Fatalf("retired_at %q is not in UTC", at)
		}
		out = append(out, recIsoRow{line: i + 2, id: r[col["retirement_id"]], day: at[:10],
			tonnes:      strconv.FormatInt(kg/1000, 10) + "." + strconv.FormatInt(1000+kg%1000, 10)[1:],
			beneficiary: r[col["beneficiary.name"]], purposes: r[col["purposes"]]})
	}
	return out
}

// recIsoReport is the JSON report with each item's differences.
type recIsoReport struct {
	OK    bool `json:"ok"`
	Items []struct {
		Class       string `json:"class"`
		Line        int    `json:"line"`
		Detail      string `json:"detail"`
		Differences []struct {
			Field, Registry, Ledger string
		} `json:"differences"`
		Row *struct {
			ID      string `json:"id"`
			Project string `json:"project"`
		} `json:"row"`
	} `json:"items"`
}

// TestReconcileIsometricByProjectDateQuantity: a contract of registry isometric names one
// project of the real retirements sample; each of that project's rows is recorded as a
// delivery and a retirement without serials, on the registry's day (UTC), of its quantity to
// the kilogram (0.019 t included), for its beneficiary. Reconciling the whole retirements file
// matches exactly those rows "by project, date and quantity" and exits 0, the other projects'
// rows outside and the deliveries not listed by a retirements export. With one row's quantity
// changed in the file, exactly that row disagrees, on the quantity alone, and the exit is 1.
func TestReconcileIsometricByProjectDateQuantity(t *testing.T) {
	rows := recIsoRows(t, recIsoProject)
	if len(rows) != 7 {
		t.Fatalf("the sample has %d rows of %s, want 7", len(rows), recIsoProject)
	}
	url := pgtest.URL(t)
	path := filepath.Join(t.TempDir(), "iso.json")
	js := `{"code": "ISO-1", "buyer": "Acme Buyer", "supplier": "Isometric supplier", "project": "Isometric project",
	  "method": "other", "country": "US", "registry": "isometric", "registry_projects": ["` + recIsoProject + `"],
	  "term_start": "2025-01-01", "term_end": "2026-12-31", "signed_on": "2024-12-01", "tonnes": "100000",
	  "delivery_mode": "transfer"}`
	if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	recOK(t, url, "contract", "add", "-f", path)
	lines := map[int]bool{}
	for _, r := range rows {
		lines[r.line] = true
		reason := r.purposes
		if reason == "[]" {
			reason = "retired at Isometric"
		}
		recOK(t, url, "deliver", "--contract", "ISO-1", "--tonnes", r.tonnes, "--date", r.day)
		recOK(t, url, "retire", "--contract", "ISO-1", "--tonnes", r.tonnes, "--date", r.day, "--beneficiary", r.beneficiary, "--reason", reason)
	}

	check := func(file string, wantCode int) recIsoReport {
		t.Helper()
		code, out, errOut := recRun(t, url, "reconcile", "--registry", "isometric", file, "--format", "json")
		if code != wantCode {
			t.Fatalf("reconcile %s: exit %d, want %d\n%s\n%s", file, code, wantCode, out, errOut)
		}
		var r recIsoReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := check(recSample(t, "isometric-retirements.csv"), 0)
	tally := map[string]int{}
	for _, it := range r.Items {
		tally[it.Class]++
		switch {
		case it.Line == 0:
			if it.Class != "not_in_export" {
				t.Errorf("ledger item %s: %s", it.Class, it.Detail)
			}
		case lines[it.Line]:
			if it.Class != "matched" || !strings.Contains(it.Detail, "matched by project, date and quantity") ||
				!strings.Contains(it.Detail, "agrees on date, beneficiary, quantity") || it.Row == nil || !strings.HasPrefix(it.Row.ID, "ret_") {
				t.Errorf("line %d: %s: %s", it.Line, it.Class, it.Detail)
			}
		default:
			if it.Class != "outside" {
				t.Errorf("line %d of another project: %s: %s", it.Line, it.Class, it.Detail)
			}
		}
	}
	if !r.OK || tally["matched"] != 7 || tally["outside"] != 93 || tally["not_in_export"] != 7 {
		t.Errorf("tally %v, ok %v", tally, r.OK)
	}

	// one retirement's quantity changed: exactly that row, on the quantity alone
	all := recLines(t, "isometric-retirements.csv")
	changed := rows[0] // ret_1KNHJ2ENB1S0KHVB, 36.0 credits, 36000 kg
	old := all[changed.line-1]
	spoilt := strings.Replace(old, ",36.0,36000,", ",37.0,37000,", 1)
	if spoilt == old {
		t.Fatalf("could not change the quantity of line %d: %s", changed.line, old)
	}
	all[changed.line-1] = spoilt
	file := filepath.Join(t.TempDir(), "iso.csv")
	if err := os.WriteFile(file, []byte(strings.Join(all, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = check(file, 1)
	var reported []int
	for _, it := range r.Items {
		if it.Class == "matched" || it.Class == "outside" || it.Class == "not_in_export" {
			continue
		}
		reported = append(reported, it.Line)
		if it.Line != changed.line || it.Class != "disagrees" || len(it.Differences) != 1 ||
			it.Differences[0].Field != "quantity" || it.Differences[0].Registry != "37" || it.Differences[0].Ledger != "36" {
			t.Errorf("line %d: %s: %s %+v", it.Line, it.Class, it.Detail, it.Differences)
		}
	}
	if !slices.Equal(reported, []int{changed.line}) {
		t.Errorf("rows reported: %v, want only line %d", reported, changed.line)
	}
}

// recContractJSON adds a contract from a JSON text.
func recContractJSON(t *testing.T, url, js string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "contract.json")
	if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	recOK(t, url, "contract", "add", "-f", path)
}

// recWriteLines writes the header of a sample and some of its lines (1-based) to a file.
func recWriteLines(t *testing.T, sample string, edit func(string) string, lines ...int) string {
	t.Helper()
	all := recLines(t, sample)
	out := []string{all[0]}
	for _, n := range lines {
		l := all[n-1]
		if edit != nil {
			l = edit(l)
		}
		out = append(out, l)
	}
	file := filepath.Join(t.TempDir(), sample)
	if err := os.WriteFile(file, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestReconcileIsometricByTransactionID: a real Isometric retirement is recorded, under a
// retire-on-delivery contract for the row's beneficiary, as a delivery without serials whose
// --registry-tx is the row's ret_ id, dated three days after the registry's retirement; a
// second delivery agrees with the row on project, day and quantity but has no transaction id.
// Reconciling the row pairs it with the first, by transaction id (which takes precedence), and
// reports exactly one difference, the date (a retirement's date is a fact its claim rests on);
// the second is in the ledger only. With the row dated as the ledger's entry, it is matched
// "by transaction id".
func TestReconcileIsometricByTransactionID(t *testing.T) {
	r := recIsoRows(t, recIsoProject)[0]
	d, err := time.Parse("2006-01-02", r.day)
	if err != nil {
		t.Fatal(err)
	}
	later := d.AddDate(0, 0, 3).Format("2006-01-02")
	url := pgtest.URL(t)
	recContractJSON(t, url, `{"code": "ISO-R", "buyer": "`+r.beneficiary+`", "supplier": "Isometric supplier", "project": "Isometric project",
	  "method": "other", "country": "US", "registry": "isometric", "registry_projects": ["`+recIsoProject+`"],
	  "term_start": "2025-01-01", "term_end": "2026-12-31", "signed_on": "2024-12-01", "tonnes": "100000",
	  "delivery_mode": "retire_on_delivery"}`)
	recOK(t, url, "deliver", "--contract", "ISO-R", "--tonnes", r.tonnes, "--date", r.day)
	recOK(t, url, "deliver", "--contract", "ISO-R", "--tonnes", r.tonnes, "--date", later, "--registry-tx", r.id)

	check := func(file string, wantCode int) recIsoReport {
		t.Helper()
		code, out, errOut := recRun(t, url, "reconcile", "--registry", "isometric", file, "--format", "json")
		if code != wantCode {
			t.Fatalf("reconcile: exit %d, want %d\n%s\n%s", code, wantCode, out, errOut)
		}
		var rep recIsoReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := check(recWriteLines(t, "isometric-retirements.csv", nil, r.line), 1)
	if len(rep.Items) != 2 {
		t.Fatalf("items: %+v", rep.Items)
	}
	row, other := rep.Items[0], rep.Items[1]
	if row.Line != 2 || row.Class != "disagrees" || !strings.Contains(row.Detail, "paired by transaction id "+r.id) ||
		!strings.Contains(row.Detail, "on "+later) || len(row.Differences) != 1 || row.Differences[0].Field != "date" ||
		row.Differences[0].Registry != r.day || row.Differences[0].Ledger != later {
		t.Errorf("row: %s: %s %+v", row.Class, row.Detail, row.Differences)
	}
	if other.Line != 0 || other.Class != "ledger_only" || !strings.Contains(other.Detail, "on "+r.day) {
		t.Errorf("the delivery without a transaction id: %s: %s", other.Class, other.Detail)
	}

	// the row dated as the ledger's entry: matched by transaction id; the other entry is
	// still in the ledger only
	moved := func(l string) string { return strings.Replace(l, ","+r.day+"T", ","+later+"T", 1) }
	rep = check(recWriteLines(t, "isometric-retirements.csv", moved, r.line), 1)
	if row := rep.Items[0]; row.Class != "matched" || !strings.HasPrefix(row.Detail, "matched by transaction id (the row's "+r.id+" is the entry's registry_tx)") {
		t.Errorf("row dated %s: %s: %s", later, row.Class, row.Detail)
	}
}

// TestReconcileIsometricRetirementByTransactionID: under a transfer contract the credits are
// delivered, then retired without serials with retire --registry-tx naming the row's ret_ id,
// for the row's beneficiary but on another day and with a quantity that differs: the row
// pairs with that retirement by transaction id (not with the delivery), and reports exactly
// the date and the quantity. The id travels in the journal (it is in the export's row).
func TestReconcileIsometricRetirementByTransactionID(t *testing.T) {
	r := recIsoRows(t, recIsoProject)[0]
	d, err := time.Parse("2006-01-02", r.day)
	if err != nil {
		t.Fatal(err)
	}
	later := d.AddDate(0, 0, 2).Format("2006-01-02")
	url := pgtest.URL(t)
	recContractJSON(t, url, `{"code": "ISO-T", "buyer": "`+r.beneficiary+`", "supplier": "Isometric supplier", "project": "Isometric project",
	  "method": "other", "country": "US", "registry": "isometric", "registry_projects": ["`+recIsoProject+`"],
	  "term_start": "2025-01-01", "term_end": "2026-12-31", "signed_on": "2024-12-01", "tonnes": "100000",
	  "delivery_mode": "transfer"}`)
	recOK(t, url, "deliver", "--contract", "ISO-T", "--tonnes", "5000", "--date", "2025-06-01")
	more := ledger.MustTonnes(r.tonnes).Add(ledger.MustTonnes("0.001")).String()
	recOK(t, url, "retire", "--contract", "ISO-T", "--tonnes", more, "--date", later, "--beneficiary", r.beneficiary,
		"--reason", "corporate targets", "--registry-tx", r.id)

	code, out, errOut := recRun(t, url, "reconcile", "--registry", "isometric", recWriteLines(t, "isometric-retirements.csv", nil, r.line), "--format", "json")
	var rep recIsoReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("reconcile: exit %d: %v\n%s\n%s", code, err, out, errOut)
	}
	if code != 1 || len(rep.Items) == 0 {
		t.Fatalf("reconcile: exit %d, items %+v", code, rep.Items)
	}
	row := rep.Items[0]
	var fields []string
	for _, f := range row.Differences {
		fields = append(fields, f.Field)
	}
	slices.Sort(fields)
	if row.Line != 2 || row.Class != "disagrees" || !strings.Contains(row.Detail, "paired by transaction id "+r.id) || !slices.Equal(fields, []string{"date", "quantity"}) {
		t.Errorf("row: %s: %s, differences %v; want disagrees, paired by transaction id, on date and quantity", row.Class, row.Detail, fields)
	}
	if out := recOK(t, url, "export", "--format", "csv"); !strings.Contains(out, r.id) {
		t.Errorf("the export does not carry the retirement's registry_tx %s:\n%s", r.id, out)
	}
}

// TestReconcileVerraDeliveryWithoutSerials: a real Verra issuance block (line 102 of the
// sample, project 1996, vintage 2024, 10,000 t issued 2026-04-13, still active) is recorded as
// a delivery without serials of that day, vintage and quantity under a contract naming project
// 1996; a second delivery, of vintage 2023, is recorded too. Before, a Verra export did not see
// deliveries without serials; now the row is matched "by project, vintage, date and quantity",
// the other delivery is in the ledger only (not of the row's vintage), and a row of another
// project is outside. With the row's date changed, it disagrees on the date alone.
func TestReconcileVerraDeliveryWithoutSerials(t *testing.T) {
	const line = 102
	row := recLines(t, "verra-transactions.csv")[line-1]
	if !strings.HasPrefix(row, "2026-04-13,,2024-01-01,2024-12-31,1996,") || !strings.Contains(row, `"10,000",19410-942201922-942211921-`) {
		t.Fatalf("line %d is not the block expected: %s", line, row)
	}
	url := pgtest.URL(t)
	recContractJSON(t, url, `{"code": "VER-1", "buyer": "Acme Buyer", "supplier": "Verra supplier", "project": "Verra project",
	  "method": "other", "country": "AR", "registry": "verra", "registry_projects": ["1996"],
	  "term_start": "2025-01-01", "term_end": "2026-12-31", "signed_on": "2024-12-01", "tonnes": "100000",
	  "delivery_mode": "transfer"}`)
	recOK(t, url, "deliver", "--contract", "VER-1", "--tonnes", "10000", "--date", "2026-04-13", "--vintage", "2024")
	recOK(t, url, "deliver", "--contract", "VER-1", "--tonnes", "10000", "--date", "2026-04-13", "--vintage", "2023")

	check := func(file string, wantCode int) recIsoReport {
		t.Helper()
		code, out, errOut := recRun(t, url, "reconcile", file, "--format", "json")
		if code != wantCode {
			t.Fatalf("reconcile: exit %d, want %d\n%s\n%s", code, wantCode, out, errOut)
		}
		var rep recIsoReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := check(recWriteLines(t, "verra-transactions.csv", nil, line, 2), 1)
	got := map[string]string{}
	for _, it := range rep.Items {
		got[strconv.Itoa(it.Line)] = it.Class
		switch it.Line {
		case 2:
			if !strings.HasPrefix(it.Detail, "matched by project, vintage, date and quantity (the ledger's entry has no serials): contract VER-1, delivered on 2026-04-13") {
				t.Errorf("line %d: %s: %s", line, it.Class, it.Detail)
			}
		case 0:
			if !strings.Contains(it.Detail, "no row of the export matches this deliver of 10000 t on 2026-04-13") {
				t.Errorf("ledger item: %s: %s", it.Class, it.Detail)
			}
		}
	}
	if want := map[string]string{"2": "matched", "3": "outside", "0": "ledger_only"}; !maps.Equal(got, want) || len(rep.Items) != 3 {
		t.Errorf("classes %v, want %v", got, want)
	}

	// the row's issuance date changed (its quantity is fixed by its serial range): it
	// disagrees on the date alone
	spoil := func(l string) string { return strings.Replace(l, "2026-04-13,", "2026-04-14,", 1) }
	rep = check(recWriteLines(t, "verra-transactions.csv", spoil, line), 1)
	if it := rep.Items[0]; it.Class != "disagrees" || len(it.Differences) != 1 || it.Differences[0].Field != "date" ||
		it.Differences[0].Registry != "2026-04-14" || it.Differences[0].Ledger != "2026-04-13" {
		t.Errorf("spoilt row: %s: %s %+v", it.Class, it.Detail, it.Differences)
	}
}

// puroFile is one of the Puro files internal/registry tests with: hand-written from Puro's
// documented shape, since no real export of Puro's was at hand (see its README).
func puroFile(name string) string {
	return filepath.Join("..", "..", "internal", "registry", "testdata", name)
}

// TestReconcilePuro: a ledger that holds what the Puro files show (the two active bundles of
// one issuance delivered; a retirement of two bundles, of two issuances, retired on its day for
// its beneficiary; a retirement whose beneficiary the registry hides; a withdrawal reversed)
// reconciles with both files, told from their keys, exit 0, every bundle its own row. A
// quantity changed in the file reports exactly that row, exit 1.
func TestReconcilePuro(t *testing.T) {
	url := pgtest.URL(t)
	path := filepath.Join(t.TempDir(), "puro.json")
	js := `{"code": "REC-PURO", "buyer": "Nordic Offtake AB", "supplier": "Example Biochar Producer Oy", "project": "Example Biochar Plant 1",
	  "method": "biochar", "country": "FI", "region": "Finland", "registry": "Puro.earth", "standard": "Puro Standard Biochar",
	  "term_start": "2024-01-01", "term_end": "2026-12-31", "signed_on": "2023-12-01", "tonnes": "1000",
	  "delivery_mode": "transfer"}`
	if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	recOK(t, url, "contract", "add", "-f", path)
	const (
		a = "PURO_PR_CORC100+_FI_577166_2024_0b6c1e52-4a7f-4c2e-9d15-3f8a2b7c9e01"
		b = "PURO_PR_CORC100+_SE_293847_2025_7d2f9a30-1c4b-4e8a-b6d2-5e9c0f1a2b34"
	)
	deliver := func(serials, tonnes string) {
		recOK(t, url, "deliver", "--contract", "REC-PURO", "--tonnes", tonnes, "--date", "2024-12-01", "--vintage", "2024", "--serials", serials)
	}
	for _, d := range []struct{ serials, tonnes string }{
		{a + "_1-100", "100"}, {a + "_301-450", "150"}, {a + "_101-200", "100"}, {b + "_1-60", "60"}, {a + "_201-240", "40"}, {a + "_241-300", "60"},
	} {
		deliver(d.serials, d.tonnes)
	}
	recRetireAs(t, url, "REC-PURO", a+"_101-200", "100", "2025-03-14", "Kestrel Logistics Oy", "GENERIC_COMPENSATION")
	recRetireAs(t, url, "REC-PURO", b+"_1-60", "60", "2025-03-14", "Kestrel Logistics Oy", "GENERIC_COMPENSATION")
	recRetireAs(t, url, "REC-PURO", a+"_201-240", "40", "2025-06-02", "Someone The Registry Hides", "OTHER")
	recOK(t, url, "reverse", "--contract", "REC-PURO", "--tonnes", "60", "--date", "2025-01-20", "--reason", "registry withdrawal", "--serials", a+"_241-300")

	for _, tt := range []struct {
		file, kind string
		lines      []int
	}{
		{"puro-certificates.json", "puro-certificates", []int{8, 21}},
		{"puro-transactions.json", "puro-transactions", []int{24, 37, 66, 87}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			for _, reg := range [][]string{nil, {"--registry", "puro"}, {"--registry", "Puro.earth"}} {
				code, out, errOut := recRun(t, url, append(append([]string{"reconcile"}, reg...), puroFile(tt.file), "--format", "json")...)
				if code != 0 {
					t.Fatalf("reconcile %v: exit %d\n%s\n%s", reg, code, out, errOut)
				}
				r := recDecode(t, out)
				if r.Kind != tt.kind || r.Registry != "puro" || !r.OK || r.Rows != len(tt.lines) || r.LedgerBlocks != 6 {
					t.Errorf("report head: %+v", r)
				}
				got := r.classes(t)
				for _, line := range tt.lines {
					if got[line] != "matched" {
						t.Errorf("line %d: %q", line, got[line])
					}
				}
			}
		})
	}

	// the hidden beneficiary is not compared, and the row says why
	out := recOK(t, url, "reconcile", puroFile("puro-transactions.json"))
	if !strings.Contains(out, "beneficiary not compared (the registry hides the beneficiary until 2026-05-31, as its beneficiaryHiddenUntil says)") {
		t.Errorf("text report:\n%s", out)
	}

	// one fact changed: the second bundle of the retirement says 59 credits (and the
	// transaction 159)
	text, err := os.ReadFile(puroFile("puro-transactions.json"))
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(strings.Replace(string(text), `"volume": 160`, `"volume": 159`, 1),
		`"volume": 60,
        "methodologyCode": "C07000000"`, `"volume": 59,
        "methodologyCode": "C07000000"`, 1)
	file := filepath.Join(t.TempDir(), "puro-changed.json")
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := recRun(t, url, "reconcile", file, "--format", "json")
	if code != 1 || !strings.Contains(errOut, "discrepancies: 1 row disagreeing (quantity, range, state or retirement) (3 of 4 rows matched)") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	got := recDecode(t, out).classes(t)
	for line, want := range map[int]string{24: "matched", 37: "disagrees", 66: "matched", 87: "matched"} {
		if got[line] != want {
			t.Errorf("line %d: %q, want %q", line, got[line], want)
		}
	}
}
