package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carbonledger/carbonledger/internal/pgtest"
)

// exportTool returns the path of an external checker, failing (never skipping) without it.
func exportTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: the export tests check the files with hledger and beancount; "+
			"install them (apt-get install hledger beancount; .ci/run does it)", name)
	}
	return p
}

func TestCLIExport(t *testing.T) {
	t.Parallel()
	hledger, beanCheck := exportTool(t, "hledger"), exportTool(t, "bean-check")
	ctx := context.Background()
	url := pgtest.URL(t)
	exec1 := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(ctx, append(args, "--db", url), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errb := exec1("demo", "--quiet"); code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errb)
	}
	dir := t.TempDir()
	check := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
	}

	// hledger to stdout.
	code, out, errb := exec1("export", "--format", "hledger")
	if code != 0 {
		t.Fatalf("export --format hledger: exit %d, want 0\n%s", code, errb)
	}
	if !strings.Contains(out, `commodity 1000.000 "tCO2e"`) || !strings.Contains(out, "(MSFT-TOROTO-CALAKMUL/1)") {
		t.Errorf("export --format hledger wrote no commodity directive or no demo transaction:\n%.2000s", out)
	}
	hl := filepath.Join(dir, "demo.journal")
	if err := os.WriteFile(hl, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	check(hledger, "check", "-s", "-f", hl)

	// beancount to a file.
	bean := filepath.Join(dir, "demo.beancount")
	if code, _, errb := exec1("export", "--format", "beancount", "--output", bean); code != 0 {
		t.Fatalf("export --format beancount --output: exit %d, want 0\n%s", code, errb)
	}
	check(beanCheck, bean)

	// A period as postings CSV: only its entries.
	code, out, errb = exec1("export", "--format", "postings", "--from", "2025-01-01", "--to", "2025-03-31")
	if code != 0 {
		t.Fatalf("export --format postings --from --to: exit %d, want 0\n%s", code, errb)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("export postings: %v", err)
	}
	if len(recs) < 2 {
		t.Fatalf("export postings of 2025-Q1 has %d rows, want the header and the demo's postings", len(recs))
	}
	for _, r := range recs[1:] {
		if r[4] < "2025-01-01" || r[4] > "2025-03-31" {
			t.Errorf("export postings of 2025-Q1 holds an entry effective %s", r[4])
		}
	}

	// The operations CSV: a signing per contract, then its operations, the correction naming
	// the entry it reverts by key.
	code, out, errb = exec1("export", "--format", "csv")
	if code != 0 {
		t.Fatalf("export --format csv: exit %d, want 0\n%s", code, errb)
	}
	if recs, err = csv.NewReader(strings.NewReader(out)).ReadAll(); err != nil {
		t.Fatalf("export csv: %v", err)
	}
	if got, want := strings.Join(recs[0], ","), "op,contract,tonnes,date,vintage,serials,registry_tx,allow_late,price_per_tonne,note,beneficiary,reason,claim,remedy,terminate,schedule,entry,key,terms"; got != want {
		t.Errorf("export csv header %s, want %s", got, want)
	}
	ops := map[string]int{}
	for _, r := range recs[1:] {
		ops[r[0]]++
		if r[0] == "revert" && r[16] != "key:demo:tn150:deliver:typo" {
			t.Errorf("export csv: the demo's correction names entry %q, want key:demo:tn150:deliver:typo", r[16])
		}
	}
	if ops["contract"] == 0 || ops["deliver"] == 0 || ops["revert"] != 1 || ops["amend"] == 0 {
		t.Errorf("export csv of the demo: rows by op %v, want contracts, deliveries, an amendment and one revert", ops)
	}

	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"export", "--format", "ledger"}, `--format "ledger" is not one of hledger, beancount, csv, postings`},
		{[]string{"export"}, "export needs --format: one of hledger, beancount, csv, postings"},
		{[]string{"export", "--format", "csv", "--from", "2025-01-01"}, "csv export is the whole ledger (import reads it back); use --format postings for a period"},
		{[]string{"export", "--format", "csv", "--to", "2025-01-01"}, "use --format postings for a period"},
		{[]string{"export", "--format", "postings", "--from", "2025-13-01"}, "--from"},
		{[]string{"export", "--format", "postings", "--from", "2025-02-01", "--to", "2025-01-31"}, "is before --from"},
		{[]string{"export", "--format", "csv", "extra"}, "takes flags only"},
		{[]string{"export", "--format", "csv", "--bogus"}, "bogus"},
	} {
		code, out, errb := exec1(tc.args...)
		if code != 2 || !strings.Contains(errb, tc.says) || out != "" {
			t.Errorf("carbonledger %s: exit %d, stderr %q, stdout %d bytes; want exit 2 saying %q and no output",
				strings.Join(tc.args, " "), code, errb, len(out), tc.says)
		}
	}
}
