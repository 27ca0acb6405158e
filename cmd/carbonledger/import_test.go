package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeFile writes a test input and returns its path.
func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The demo's history, exported as an operations file, imports into an empty ledger and gives
// the same contracts, positions, serials and reports; the audit of the copy is clean; and
// importing the file again writes nothing.
func TestImportDemoRoundTrip(t *testing.T) {
	t.Parallel()
	a, b := newCLI(t), newCLI(t)
	a.ok("demo", "--quiet")
	file := writeFile(t, "demo.csv", a.ok("export", "--format", "csv"))

	_, _, errb := b.run("import", file)
	wantOut(t, errb, "20 rows read, 20 written, 0 already present, 0 refused")
	for _, args := range [][]string{
		{"contract", "list", "--format", "json"},
		{"contract", "show", "MSFT-TN150-BIOCHAR", "--format", "json"},
		{"contract", "show", "MSFT-TOROTO-CALAKMUL", "--format", "json"},
		{"serials", "--format", "json"},
		{"report", "term", "--format", "json"},
		{"report", "period", "--year", "2025", "--by", "contract", "--format", "json"},
		{"report", "portfolio", "--format", "json"},
	} {
		got, want := stripVolatile(b.ok(args...)), stripVolatile(a.ok(args...))
		if got != want {
			t.Errorf("carbonledger %s differs after the round trip:\nimported: %.3000s\noriginal: %.3000s", strings.Join(args, " "), got, want)
		}
	}
	b.ok("audit")

	before := b.state()
	code, _, errb := b.run("import", file)
	if code != 0 {
		t.Fatalf("import again: exit %d\n%s", code, errb)
	}
	wantOut(t, errb, "20 rows read, 0 written, 20 already present, 0 refused")
	if after := b.state(); after != before {
		t.Errorf("importing the same file again changed the ledger:\nbefore: %s\nafter:  %s", before, after)
	}
}

// importTerms is a contract with a registry, whose serials a file can deliver and retire.
const importTerms = `{"code":"IMP-1","buyer":"Microsoft","supplier":"Import Supplier","project":"Import test","method":"biochar",
"country":"US","region":"Region 1","registry":"puro","standard":"synthetic","durability_years":"100",
"term_start":"2026-01-01","term_end":"2028-12-31","signed_on":"2025-12-01","tonnes":"100","delivery_mode":"transfer"}`

func csvQuote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, "\n", ""), `"`, `""`) + `"`
}

// stripVolatile removes what differs between two ledgers holding the same history: entry
// ids, recorded times, hashes, and the time a report was made.
func stripVolatile(s string) string {
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return s
	}
	var walk func(any) any
	walk = func(x any) any {
		switch x := x.(type) {
		case map[string]any:
			for k := range x {
				switch k {
				case "entry", "id", "recorded_at", "hash", "prev_hash", "known_at", "generated_at", "as_of", "last_recorded":
					delete(x, k)
				default:
					x[k] = walk(x[k])
				}
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		}
		return x
	}
	b, _ := json.MarshalIndent(walk(v), "", " ")
	return string(b)
}

// A file with bad rows is refused whole: every bad line is named with its field and rule,
// including the rules that depend on earlier rows of the file, and nothing is written.
func TestImportRefusedWhole(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("demo", "--quiet")
	file := writeFile(t, "ops.csv", strings.Join([]string{
		"op,contract,tonnes,date,serials,beneficiary,reason,key,terms",
		"contract,IMP-1,,,,,,," + csvQuote(importTerms),        // 2: good
		"deliver,IMP-1,2,2026-06-01,TEST:1-2,,,,",              // 3: good
		"retire,IMP-1,2,2026-06-02,TEST:1-2,Microsoft,claim,,", // 4: good, retires what row 3 delivered
		"retire,IMP-1,1,2026-06-03,TEST:2-2,Microsoft,claim,,", // 5: retired by row 4
		"deliver,IMP-1,1,2026-06-04,TEST:2-2,,,,",              // 6: delivered by row 3
		"deliver,NO-SUCH-CONTRACT,1,2026-06-04,,,,,",           // 7: unknown contract
		"deliver,IMP-1,1.0001,2026-06-31,,,,,",                 // 8: two bad fields
		"deliver,IMP-1,1,2026-06-05,,,,k1,",                    // 9: good
		"deliver,IMP-1,2,2026-06-05,,,,k1,",                    // 10: k1 for another request
		"deliver,IMP-1,1000,2026-06-06,,,,,",                   // 11: more than the contract's 100 t
		"cancel,IMP-1,1,2026-06-07,,,,,",                       // 12: no reason
		"retire,IMP-1,4,2026-06-08,,Microsoft,claim,,",         // 13: more than the 1 t held
		"frobnicate,IMP-1,1,2026-06-08,,,,,",                   // 14: no such op
		"deliver,IMP-1,1,2026-06-09,,,,extra,,x",               // 15: too many cells
	}, "\n")+"\n")
	c.fails(1, []string{"import", file},
		"ops.csv:5: serials", "ops.csv:6: serials", "ops.csv:7: contract \"NO-SUCH-CONTRACT\" does not exist",
		"ops.csv:8: tonnes", "ops.csv:8: date", "ops.csv:10: key \"k1\" was already used for a different request",
		"ops.csv:11: tonnes", "ops.csv:12: reason is required", "ops.csv:13: tonnes", "ops.csv:14: op",
		"ops.csv:15: has 10 cells", "10 refused", "nothing was written")
	for _, good := range []string{"ops.csv:2:", "ops.csv:3:", "ops.csv:4:", "ops.csv:9:"} {
		if _, _, errb := c.run("import", file); strings.Contains(errb, good) {
			t.Errorf("a good row was reported: %s in\n%s", good, errb)
		}
	}

	// --format json lists the same errors, one object per field at fault.
	code, out, _ := c.run("import", "--format", "json", "--quiet", file)
	if code != 1 {
		t.Errorf("import --format json: exit %d, want 1", code)
	}
	var got struct {
		Summary map[string]any `json:"summary"`
		Errors  []struct {
			Line  int    `json:"line"`
			Field string `json:"field"`
			Rule  string `json:"rule"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("import --format json: %v\n%s", err, out)
	}
	lines := map[int]bool{}
	for _, e := range got.Errors {
		lines[e.Line] = true
		if e.Rule == "" {
			t.Errorf("error without a rule: %+v", e)
		}
	}
	for _, l := range []int{5, 6, 7, 8, 10, 11, 12, 13, 14, 15} {
		if !lines[l] {
			t.Errorf("--format json: no error for line %d: %s", l, out)
		}
	}
	if got.Summary["refused"] != float64(10) || got.Summary["written"] != float64(0) || got.Summary["committed"] != false {
		t.Errorf("--format json summary = %v, want 10 refused and nothing committed", got.Summary)
	}
}

// --skip-invalid writes the good rows and the bad ones, with their reasons, to a reject file;
// fixed, the reject file imports as it is.
func TestImportSkipInvalidAndFixRejects(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("demo", "--quiet")
	before := c.show("MSFT-TN150-BIOCHAR")["delivered"]
	file := writeFile(t, "ops.csv", "op,contract,tonnes,date\n"+
		"deliver,MSFT-TN150-BIOCHAR,1,2026-06-01\n"+
		"deliver,MSFT-TN150-BIOCHAR,one,2026-06-02\n"+
		"deliver,MSFT-TN150-BIOCHAR,2,2026-06-03\n")
	code, _, errb := c.run("import", "--skip-invalid", file)
	if code != 1 {
		t.Errorf("import --skip-invalid with a bad row: exit %d, want 1\n%s", code, errb)
	}
	wantOut(t, errb, "ops.csv:3: tonnes \"one\"", "3 rows read, 2 written, 0 already present, 1 refused")
	rejects := strings.TrimSuffix(file, ".csv") + ".rejects.csv"
	rb, err := os.ReadFile(rejects)
	if err != nil {
		t.Fatal(err)
	}
	wantOut(t, string(rb), "op,contract,tonnes,date,error\n", "deliver,MSFT-TN150-BIOCHAR,one,2026-06-02,")
	if n := strings.Count(string(rb), "\n"); n != 2 {
		t.Errorf("reject file has %d lines, want the header and one row:\n%s", n, rb)
	}
	fixed := strings.Replace(string(rb), ",one,", ",4,", 1)
	if err := os.WriteFile(rejects, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, errb = c.run("import", rejects)
	wantOut(t, errb, "1 rows read, 1 written")
	if got, _ := c.show("MSFT-TN150-BIOCHAR")["delivered"].(string); got != addTonnes(t, before, "7") {
		t.Errorf("delivered %s after the import and the fixed rejects, want %v + 7", got, before)
	}
}

func addTonnes(t *testing.T, a any, b string) string {
	t.Helper()
	var x, y float64
	fmt.Sscan(a.(string), &x)
	fmt.Sscan(b, &y)
	return fmt.Sprintf("%.3f", x+y)
}

// NDJSON rows use the same names as the CSV columns, and contracts come as their JSON.
func TestImportNDJSON(t *testing.T) {
	t.Parallel()
	a, b := newCLI(t), newCLI(t)
	a.ok("demo", "--quiet")
	var sb strings.Builder
	csvOut := a.ok("export", "--format", "csv")
	sb.WriteString(`{"op":"contract","key":"sign:TN150","terms":` + termsOf(t, csvOut, "MSFT-TN150-BIOCHAR") + "}\n")
	sb.WriteString(`{"op":"deliver","contract":"MSFT-TN150-BIOCHAR","tonnes":"5","date":"2026-06-01","vintage":2026}` + "\n")
	sb.WriteString(`{"op":"retire","contract":"MSFT-TN150-BIOCHAR","tonnes":"2.5","date":"2026-06-02","beneficiary":"Microsoft","reason":"claim"}` + "\n")
	sb.WriteString(`{"op":"retire","contract":"MSFT-TN150-BIOCHAR","tonnes":"2.501","date":"2026-06-02","beneficiary":"Microsoft","reason":"claim"}` + "\n")
	file := writeFile(t, "ops.ndjson", sb.String())
	code, _, errb := b.run("import", file)
	if code != 1 {
		t.Fatalf("import: exit %d, want 1 (row 4 retires more than is held)\n%s", code, errb)
	}
	wantOut(t, errb, "ops.ndjson:4: tonnes", "nothing was written")
	lines := strings.Split(strings.TrimSpace(sb.String()), "\n")
	file = writeFile(t, "ops.ndjson", strings.Join(lines[:3], "\n")+"\n")
	b.ok("import", file)
	b.wantFigures("MSFT-TN150-BIOCHAR", map[string]string{"delivered": "5.000", "retired": "2.500"})
}

// termsOf is the terms cell of a contract's row in an operations CSV.
func termsOf(t *testing.T, csvText, code string) string {
	t.Helper()
	for _, line := range strings.Split(csvText, "\n") {
		if strings.HasPrefix(line, "contract,"+code+",") {
			i := strings.Index(line, `"{`)
			s := line[i+1 : len(line)-1]
			return strings.ReplaceAll(s, `""`, `"`)
		}
	}
	t.Fatalf("no contract row for %s", code)
	return ""
}

// An import killed with SIGKILL at any point and run again completes without writing anything
// twice: all or nothing leaves nothing behind; with --skip-invalid each committed batch stays
// and the next run finds its rows already present.
func TestImportKilledAndResumed(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "carbonledger")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, mode := range []string{"all-or-nothing", "skip-invalid"} {
		t.Run(mode, func(t *testing.T) {
			c := newCLI(t)
			c.ok("demo", "--quiet")
			const n = 20000
			var sb strings.Builder
			sb.WriteString("op,contract,tonnes,date\n")
			start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
			for i := range n {
				fmt.Fprintf(&sb, "deliver,MSFT-TN150-BIOCHAR,0.001,%s\n", start.AddDate(0, 0, i*150/n).Format(time.DateOnly))
			}
			file := writeFile(t, "many.csv", sb.String())
			count := func() int {
				var k int
				if err := c.db.QueryRow(`SELECT count(*) FROM entries WHERE idempotency_key LIKE 'import:%'`).Scan(&k); err != nil {
					t.Fatal(err)
				}
				return k
			}
			args := []string{"import", "--quiet", "--batch", "200", "--db", c.url, file}
			if mode == "skip-invalid" {
				args = append(args, "--skip-invalid")
			}
			cmd := exec.Command(bin, args...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Kill it once it is under way: all or nothing once it has written a batch (in
			// its open transaction), skip-invalid once some batches are committed.
			deadline := time.Now().Add(60 * time.Second)
			for time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				if mode == "all-or-nothing" && copying(t, c.db) || mode == "skip-invalid" && count() > 0 {
					break
				}
			}
			cmd.Process.Signal(syscall.SIGKILL)
			if cmd.Wait() == nil {
				t.Fatalf("the import finished before it was killed; the test needs a larger file")
			}
			partial := count()
			t.Logf("killed with %d of %d rows committed", partial, n)
			if mode == "all-or-nothing" && partial != 0 {
				t.Errorf("killed all-or-nothing import left %d entries", partial)
			}
			if mode == "skip-invalid" && (partial == 0 || partial == n) {
				t.Logf("killed at %d of %d rows: the kill did not land mid-import", partial, n)
			}
			out, err := exec.Command(bin, "import", "--db", c.url, file).CombinedOutput()
			if err != nil {
				t.Fatalf("import after the kill: %v\n%s", err, out)
			}
			wantOut(t, string(out), fmt.Sprintf("%d written, %d already present", n-partial, partial))
			if got := count(); got != n {
				t.Errorf("after the kill and a second run: %d entries, want %d", got, n)
			}
			c.ok("audit")
		})
	}
}

// copying reports whether an import is under way in the test's database and has sent at
// least one batch (its session's last statement was a COPY).
func copying(t *testing.T, db *sql.DB) bool {
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'COPY%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// A contracts CSV has the contract JSON's members as columns (non-text members as their
// JSON); `-` reads stdin.
func TestImportContractsCSVAndStdin(t *testing.T) {
	c := newCLI(t)
	file := writeFile(t, "contracts.csv", "code,buyer,supplier,project,method,country,region,registry,standard,"+
		"durability_years,term_start,term_end,signed_on,tonnes,delivery_mode,schedule\n"+
		"CSV-1,Acme,Supplier One,Project,biochar,US,R,puro,std,100,2026-01-01,2027-12-31,2025-12-01,1000,transfer,"+
		`"[{""year"":1,""tonnes"":""400""},{""year"":2,""tonnes"":""600""}]"`+"\n"+
		"CSV-2,Acme,Supplier Two,Project,biochar,US,R,puro,std,1000+,2026-01-01,2026-12-31,2025-12-01,50.5,transfer,\n")
	c.ok("import", file)
	c.wantFigures("CSV-1", map[string]string{"contracted": "1000.000"})
	c.wantFigures("CSV-2", map[string]string{"contracted": "50.500"})
	if got := c.ok("contract", "show", "CSV-1", "--format", "json"); !strings.Contains(got, `"400.000"`) {
		t.Errorf("CSV-1's schedule is not the one the file gave:\n%s", got)
	}

	old := stdin
	defer func() { stdin = old }()
	stdin = strings.NewReader("op,contract,tonnes,date\ndeliver,CSV-2,10.5,2026-03-01\n")
	_, _, errb := c.run("import", "-")
	wantOut(t, errb, "1 rows read, 1 written")
	c.wantFigures("CSV-2", map[string]string{"delivered": "10.500"})

	bad := writeFile(t, "bad.csv", "code,buyer\nCSV-3,Acme\n")
	c.fails(1, []string{"import", bad}, "bad.csv:2: supplier")
}
