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

	// A period as CSV: only its entries.
	code, out, errb = exec1("export", "--format", "csv", "--from", "2025-01-01", "--to", "2025-03-31")
	if code != 0 {
		t.Fatalf("export --format csv --from --to: exit %d, want 0\n%s", code, errb)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("export csv: %v", err)
	}
	if len(recs) < 2 {
		t.Fatalf("export csv of 2025-Q1 has %d rows, want the header and the demo's postings", len(recs))
	}
	for _, r := range recs[1:] {
		if r[4] < "2025-01-01" || r[4] > "2025-03-31" {
			t.Errorf("export csv of 2025-Q1 holds an entry effective %s", r[4])
		}
	}

	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"export", "--format", "ledger"}, `--format "ledger" is not one of hledger, beancount, csv`},
		{[]string{"export"}, "export needs --format"},
		{[]string{"export", "--format", "csv", "--from", "2025-13-01"}, "--from"},
		{[]string{"export", "--format", "csv", "--from", "2025-02-01", "--to", "2025-01-31"}, "is before --from"},
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
