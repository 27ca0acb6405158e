package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
)

// runNoDB runs a command that must fail before it opens the store: the --db it is given
// does not resolve.
func runNoDB(args ...string) (int, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append(args, "--db", "postgres://nowhere.invalid/none?connect_timeout=1"), &stdout, &stderr)
	return code, stderr.String()
}

// TestOpFlagsCoverFields checks that every field of every operation has its flag (revert's
// entry is its argument), so nothing the ledger takes is out of reach of the CLI.
func TestOpFlagsCoverFields(t *testing.T) {
	for _, op := range ledger.Ops {
		var stdout, stderr bytes.Buffer
		run(context.Background(), []string{string(op), "-h"}, &stdout, &stderr)
		help := stderr.String()
		for _, f := range ledger.OpFields(op) {
			if op == ledger.OpRevert && f == "entry" {
				continue
			}
			fl, ok := fieldFlags[f]
			if !ok {
				t.Errorf("%s: field %s has no flag", op, f)
				continue
			}
			if !strings.Contains(help, "  -"+fl+" ") && !strings.Contains(help, "  -"+fl+"\n") {
				t.Errorf("%s -h: no -%s flag for field %s in\n%s", op, fl, f, help)
			}
		}
	}
}

func TestOpFlagErrors(t *testing.T) {
	tests := []struct {
		args  []string
		code  int
		parts []string
	}{
		// Every bad value at once, named by its flag.
		{[]string{"deliver", "--contract", "C", "--tonnes", "1.23456", "--date", "2025-02-30", "--vintage", "24", "--price", "1e2"}, 1,
			[]string{`--tonnes: "1.23456" has more than 3 decimal places`, `--date: "2025-02-30" is not a date`, `--vintage: "24" is not a year`, `--price: "1e2" uses an exponent`}},
		{[]string{"deliver", "--contract", "C", "--tonnes", "5", "--date", "2025-01-01", "--serials", "P:1-4"}, 1,
			[]string{`--serials: "P:1-4" holds 4 serials`}},
		{[]string{"deliver", "--contract", "C", "--tonnes", "5", "--date", "2099-01-01"}, 1, []string{`--date: "2099-01-01" is in the future`}},
		{[]string{"reverse", "--contract", "C", "--tonnes", "1", "--date", "2025-01-01", "--reason", "fire", "--remedy", "buffer", "--serials", "P:1-1"}, 1,
			[]string{"--serials", "not taken with remedy buffer"}},
		// Missing fields are usage errors, all named at once.
		{[]string{"retire", "--contract", "C", "--tonnes", "1", "--date", "2025-01-01"}, 2,
			[]string{"retire: --beneficiary is required; --reason is required"}},
		{[]string{"cancel", "--contract", "C", "--date", "2025-01-01", "--reason", "x"}, 2, []string{"cancel: --tonnes is required"}},
		{[]string{"amend", "--contract", "C", "--date", "2025-01-01", "--reason", "x"}, 2, []string{"amend: --tonnes is required unless a schedule is given"}},
		{[]string{"revert", entryIDForTest, "--date", "2025-01-01"}, 2, []string{"revert: --reason is required"}},
		{[]string{"amend", "--contract", "C", "--date", "2025-01-01", "--reason", "x", "--schedule", "testdata/contract.json"}, 1,
			[]string{"schedule", "where a list is expected"}},
	}
	for _, tt := range tests {
		code, errOut := runNoDB(tt.args...)
		if code != tt.code {
			t.Errorf("carbonledger %s: exit %d, want %d\nstderr: %s", strings.Join(tt.args, " "), code, tt.code, errOut)
		}
		for _, p := range tt.parts {
			if !strings.Contains(errOut, p) {
				t.Errorf("carbonledger %s: stderr %q, want it to contain %q", strings.Join(tt.args, " "), errOut, p)
			}
		}
	}
}

const entryIDForTest = "0190c3a2-0000-7000-8000-000000000000"

// TestOpSpellingsReplay checks that two spellings of one request are one request to the
// idempotency key: a replay, not a conflict.
func TestOpSpellingsReplay(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("contract", "add", "-f", "testdata/contract.json")
	first := c.ok("deliver", "--contract", "CLI-1", "--tonnes", "12.5", "--date", "2025-03-15", "--note", "n", "--key", "spell-1")
	again := c.ok("deliver", "--contract", " CLI-1", "--tonnes", "12.500", "--date", "2025-03-15", "--note", " n ", "--key", "spell-1")
	wantOut(t, again, "already recorded under key spell-1", entryID(t, first))
	c.fails(1, []string{"deliver", "--contract", "CLI-1", "--tonnes", "12.501", "--date", "2025-03-15", "--note", "n", "--key", "spell-1"},
		"key", "spell-1", "different request")
	first = c.ok("reverse", "--contract", "CLI-1", "--tonnes", "1", "--date", "2025-03-16", "--reason", "fire", "--key", "spell-2")
	again = c.ok("reverse", "--contract", "CLI-1", "--tonnes", "1", "--date", "2025-03-16", "--reason", "fire", "--remedy", "replace", "--key", "spell-2")
	wantOut(t, again, "already recorded under key spell-2", entryID(t, first))
}
