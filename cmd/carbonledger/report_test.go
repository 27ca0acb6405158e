package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every report renders in every format from the command line, and every mistake in the call
// is a usage error (exit 2) that names what is wrong.
func TestCLIReports(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("contract", "add", "-f", "testdata/contract.json")
	c.ok("deliver", "--contract", "CLI-1", "--tonnes", "300", "--date", "2025-03-01")
	c.ok("retire", "--contract", "CLI-1", "--tonnes", "100", "--date", "2025-03-10", "--beneficiary", "Acme Buyer", "--reason", "claim")

	for _, rep := range [][]string{
		{"report", "term"}, {"report", "term", "--contract", "CLI-1"},
		{"report", "period", "--years", "2024..2026", "--fiscal-year-start", "7", "--by", "method"},
		{"report", "portfolio"},
	} {
		for _, f := range []string{"table", "csv", "json", "html"} {
			out := c.ok(append(rep, "--format", f, "--as-of", "2025-12-31")...)
			if !strings.Contains(out, "CLI-1") && rep[1] != "period" {
				t.Errorf("%s --format %s does not name the contract:\n%s", strings.Join(rep, " "), f, out)
			}
			if f == "json" && !json.Valid([]byte(out)) {
				t.Errorf("%s --format json is not JSON:\n%s", strings.Join(rep, " "), out)
			}
		}
	}
	var period struct {
		Periods []struct {
			Label     string `json:"label"`
			Delivered string `json:"delivered"`
			Retired   string `json:"retired"`
		} `json:"periods"`
	}
	out := c.ok("report", "period", "--years", "2024..2026", "--fiscal-year-start", "7", "--format", "json", "--as-of", "2025-12-31")
	if err := json.Unmarshal([]byte(out), &period); err != nil {
		t.Fatal(err)
	}
	if len(period.Periods) != 3 || period.Periods[1].Label != "FY2025" || period.Periods[1].Delivered != "300.000" ||
		period.Periods[1].Retired != "100.000" || period.Periods[0].Delivered != "0.000" || period.Periods[2].Delivered != "0.000" {
		t.Errorf("period report: got %+v, want FY2024..FY2026 with 300 t delivered and 100 t retired in FY2025", period.Periods)
	}
	file := filepath.Join(t.TempDir(), "term.html")
	c.ok("report", "term", "--format", "html", "--output", file)
	if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), "<svg") {
		t.Errorf("--output %s: %v, an SVG chart: %v", file, err, err == nil && strings.Contains(string(b), "<svg"))
	}

	for _, tc := range []struct {
		args  []string
		parts []string
	}{
		{[]string{"report", "term", "--contract", "NOPE"}, []string{`"NOPE" does not exist`}},
		{[]string{"report", "term", "--as-of", "2025-02-30"}, []string{"--as-of", "2025-02-30"}},
		{[]string{"report", "term", "--known-at", "yesterday"}, []string{"--known-at", "yesterday"}},
		{[]string{"report", "period", "--year", "20x5"}, []string{"--year", "20x5"}},
		{[]string{"report", "period", "--years", "2026..2024"}, []string{"--years", "2026..2024"}},
		{[]string{"report", "period", "--year", "2025", "--fiscal-year-start", "13"}, []string{"--fiscal-year-start", "13"}},
		{[]string{"report", "period", "--year", "2025", "--by", "colour"}, []string{"--by", "colour"}},
		{[]string{"report", "term", "--format", "xml"}, []string{"--format", "xml"}},
		{[]string{"report", "weekly"}, []string{"weekly"}},
	} {
		c.fails(2, tc.args, tc.parts...)
	}
}
