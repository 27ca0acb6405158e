package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	_ "github.com/lib/pq"

	"github.com/carbonledger/carbonledger/internal/pgtest"
)

// cli runs the command against one fresh database; db is a direct connection to it for
// snapshots.
type cli struct {
	t   *testing.T
	url string
	db  *sql.DB
}

func newCLI(t *testing.T) cli {
	url := pgtest.URL(t)
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return cli{t: t, url: url, db: db}
}

// run calls run() with --db and returns the exit code, stdout and stderr.
func (c cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append(args, "--db", c.url), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// ok runs a command that must succeed and returns its stdout.
func (c cli) ok(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 0 {
		c.t.Fatalf("carbonledger %s: exit %d, want 0\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs a command that must exit with want, must say every one of parts on stderr, and
// must leave the database unchanged.
func (c cli) fails(want int, args []string, parts ...string) {
	c.t.Helper()
	before := c.state()
	code, out, errOut := c.run(args...)
	if code != want {
		c.t.Errorf("carbonledger %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	for _, p := range parts {
		if !strings.Contains(errOut, p) {
			c.t.Errorf("carbonledger %s: stderr %q does not say %q", strings.Join(args, " "), errOut, p)
		}
	}
	if after := c.state(); after != before {
		c.t.Errorf("carbonledger %s changed the database:\nbefore: %s\nafter:  %s", strings.Join(args, " "), before, after)
	}
}

// state is what a command may change: row counts, chain heads, balances (from which every
// contract's position follows) and serial blocks.
func (c cli) state() string {
	c.t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT count(*)::text FROM entries`, `SELECT count(*)::text FROM postings`, `SELECT count(*)::text FROM contracts`,
		`SELECT count(*)::text FROM accounts`, `SELECT count(*)::text FROM schedule_lines`, `SELECT count(*)::text FROM serial_events`,
		`SELECT coalesce(string_agg(code || '@' || head_seq || ':' || encode(head_hash, 'hex'), ',' ORDER BY code), '') FROM books`,
		`SELECT coalesce(string_agg(code || '=' || balance::text, ',' ORDER BY code), '') FROM accounts`,
		`SELECT coalesce(string_agg(prefix || ':' || serials::text || ' ' || state, ',' ORDER BY prefix, lower(serials)), '') FROM serial_blocks`,
	} {
		var v string
		if err := c.db.QueryRow(q).Scan(&v); err != nil {
			c.t.Fatalf("%s: %v", q, err)
		}
		b.WriteString(v + " | ")
	}
	return b.String()
}

// show returns `contract show CODE --format json` decoded.
func (c cli) show(code string) map[string]any {
	c.t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(c.ok("contract", "show", code, "--format", "json")), &v); err != nil {
		c.t.Fatal(err)
	}
	return v
}

// wantFigures checks position figures of `contract show --format json`: decimal strings.
func (c cli) wantFigures(code string, want map[string]string) {
	c.t.Helper()
	v := c.show(code)
	for k, w := range want {
		got, isString := v[k].(string)
		if !isString || got != w {
			c.t.Errorf("contract %s: %s = %#v, want the decimal string %q", code, k, v[k], w)
		}
	}
}

var uuidPattern = regexp.MustCompile(`entry ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})`)

// entryID returns the entry id a command printed.
func entryID(t *testing.T, out string) string {
	t.Helper()
	m := uuidPattern.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no entry id in %q", out)
	}
	return m[1]
}

func wantOut(t *testing.T, out string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(out, p) {
			t.Errorf("output %q does not say %q", out, p)
		}
	}
}

func TestCLIContractAddListShow(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	out := c.ok("contract", "add", "-f", "testdata/contract.json")
	wantOut(t, out, "contract CLI-1 signed: 1000.000 t, Good Supplier -> Acme Buyer, entry ")
	sign := entryID(t, out)

	// Adding it again is a replay that changes nothing.
	before := c.state()
	out = c.ok("contract", "add", "-f", "testdata/contract.json")
	wantOut(t, out, "already recorded", sign)
	if after := c.state(); after != before {
		t.Errorf("adding the same contract again changed the database")
	}

	// The flags form.
	out = c.ok("contract", "add", "--code", "CLI-F", "--buyer", "Acme Buyer", "--supplier", "Flag Supplier", "--project", "Flag project",
		"--method", "direct air capture", "--country", "US", "--region", "Wyoming", "--registry", "puro", "--durability", "1000+",
		"--term-start", "2025-01-01", "--term-end", "2027-12-31", "--signed-on", "2024-11-01", "--tonnes", "3001",
		"--price", "600", "--currency", "USD", "--delivery-mode", "transfer", "--over-delivery-tolerance", "1.5")
	wantOut(t, out, "contract CLI-F signed: 3001.000 t, Flag Supplier -> Acme Buyer")
	out = c.ok("contract", "add", "-f", "testdata/contract_two_years.json", "--format", "json")
	var added map[string]any
	if err := json.Unmarshal([]byte(out), &added); err != nil || added["code"] != "CLI-2Y" || added["contracted"] != "2000.000" {
		t.Errorf("contract add --format json = %v (%v)", added, err)
	}

	// show: json with the figures as decimal strings.
	v := c.show("CLI-F")
	for k, w := range map[string]string{"contracted": "3001.000", "replacements": "0.000", "open": "3001.000", "delivered": "0.000",
		"holding": "0.000", "retired": "0.000", "cancelled": "0.000", "reversed": "0.000", "over_delivery_tolerance": "1.500"} {
		if v[k] != w {
			t.Errorf("show CLI-F --format json: %s = %#v, want %q", k, v[k], w)
		}
	}
	if v["method"] != "daccs" || v["registry"] != "puro" || v["durability_years"] != "1000+" || v["price_per_tonne"] != "600.00" {
		t.Errorf("show CLI-F --format json: method %v registry %v durability %v price %v", v["method"], v["registry"], v["durability_years"], v["price_per_tonne"])
	}
	sched, _ := v["schedule"].([]any)
	var tonnes []string
	for _, l := range sched {
		tonnes = append(tonnes, fmt.Sprint(l.(map[string]any)["tonnes"]))
	}
	if strings.Join(tonnes, ",") != "1001.000,1000.000,1000.000" {
		t.Errorf("schedule of 3,001 t over 3 years = %v, want 1001, 1000, 1000", tonnes)
	}
	// show: table and csv.
	out = c.ok("contract", "show", "CLI-1")
	wantOut(t, out, "Contract CLI-1", "Position (t CO2e)", "contracted", "1000.000", "Schedule (version 1, even split)", "Climate Action Reserve")
	out = c.ok("contract", "show", "--format", "csv", "CLI-1")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0][0] != "code" || rows[1][0] != "CLI-1" {
		t.Errorf("show --format csv = %q, want a header row and one row", out)
	}

	// list in the three formats.
	out = c.ok("contract", "list")
	wantOut(t, out, "CODE", "CONTRACTED", "CLI-1", "CLI-2Y", "CLI-F")
	var list struct {
		Contracts []map[string]any `json:"contracts"`
	}
	if err := json.Unmarshal([]byte(c.ok("contract", "list", "--format", "json")), &list); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, x := range list.Contracts {
		codes = append(codes, x["code"].(string))
		for _, k := range []string{"contracted", "replacements", "open", "delivered", "holding", "retired", "cancelled", "reversed"} {
			if _, isString := x[k].(string); !isString {
				t.Errorf("list --format json: %s of %s = %#v, want a decimal string", k, x["code"], x[k])
			}
		}
	}
	if strings.Join(codes, ",") != "CLI-1,CLI-2Y,CLI-F" {
		t.Errorf("list --format json codes = %v", codes)
	}
	out = c.ok("contract", "list", "--format", "csv")
	rows, err = csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	headers := 0
	for _, r := range rows {
		if r[0] == "code" {
			headers++
		}
	}
	if len(rows) != 4 || headers != 1 || rows[0][0] != "code" {
		t.Errorf("list --format csv: %d rows with %d header rows, want 1 header and 3 contracts:\n%s", len(rows), headers, out)
	}
	if i := indexOf(rows[0], "contracted"); i < 0 || rows[1][i] != "1000.000" {
		t.Errorf("list --format csv: contracted column of CLI-1 wrong: %q", rows)
	}
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

func TestCLIOperations(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("contract", "add", "-f", "testdata/contract.json")
	c.ok("contract", "add", "-f", "testdata/contract_two_years.json")
	const p = "CAR-1-MX-1642-34-101-CM-2025"

	out := c.ok("deliver", "--contract", "CLI-1", "--tonnes", "300", "--date", "2025-03-01", "--vintage", "2024",
		"--serials", p+"-1 to 300", "--registry-tx", "CAR-TX-1")
	wantOut(t, out, "Delivery of 300.000 t under CLI-1 (contract year 1)", "entry ", "(CLI-1 #2, effective 2025-03-01)")
	out = c.ok("serials", "CLI-1")
	wantOut(t, out, p+":1-300", "delivered")

	out = c.ok("retire", "--contract", "CLI-1", "--tonnes", "100", "--date", "2025-03-10", "--beneficiary", "Acme Buyer",
		"--reason", "2025 claim", "--claim", "FY2025", "--serials", p+":1-100")
	wantOut(t, out, "Retirement of 100.000 t under CLI-1 on behalf of Acme Buyer")
	out = c.ok("serials", "CLI-1", "--format", "json")
	wantOut(t, out, `"state": "retired"`, `"first": 101`)

	// A delivery with a key, as JSON, replayed.
	out = c.ok("deliver", "--contract", "CLI-1", "--tonnes", "50", "--date", "2025-03-15", "--key", "cli-k1", "--format", "json")
	var res struct {
		Entry struct {
			ID       string            `json:"id"`
			Kind     string            `json:"kind"`
			Key      string            `json:"idempotency_key"`
			Metadata map[string]string `json:"metadata"`
			Postings []struct {
				Account string `json:"account"`
				Amount  string `json:"amount"`
			} `json:"postings"`
		} `json:"entry"`
		Replay bool `json:"replay"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Replay || res.Entry.Kind != "deliver" || res.Entry.Key != "cli-k1" || len(res.Entry.Postings) != 2 || res.Entry.Metadata["price_per_tonne"] != "120.5" {
		t.Errorf("deliver --format json = %s", out)
	}
	typo := res.Entry.ID
	before := c.state()
	out = c.ok("deliver", "--contract", "CLI-1", "--tonnes", "50", "--date", "2025-03-15", "--key", "cli-k1")
	wantOut(t, out, "already recorded under key cli-k1", typo)
	if c.state() != before {
		t.Errorf("a replayed delivery changed the database")
	}
	c.fails(1, []string{"deliver", "--contract", "CLI-1", "--tonnes", "51", "--date", "2025-03-15", "--key", "cli-k1"},
		"key", "cli-k1", "different request")

	out = c.ok("cancel", "--contract", "CLI-1", "--tonnes", "100", "--date", "2025-06-30", "--reason", "shortfall waived")
	wantOut(t, out, "Cancellation of 100.000 t under CLI-1")
	out = c.ok("reverse", "--contract", "CLI-1", "--tonnes", "20", "--date", "2025-07-01", "--reason", "wildfire", "--remedy", "buffer")
	wantOut(t, out, "Reversal of 20.000 t under CLI-1 (wildfire); made good from the registry buffer pool")
	out = c.ok("reverse", "--contract", "CLI-1", "--tonnes", "20", "--date", "2025-07-02", "--reason", "fire", "--serials", p+":281-300")
	wantOut(t, out, "Reversal of 20.000 t under CLI-1 (fire); the supplier replaces them")
	out = c.ok("amend", "--contract", "CLI-1", "--tonnes", "1200", "--date", "2025-07-03", "--reason", "more volume")
	wantOut(t, out, "Amendment of CLI-1: contracted tonnes raised by 200.000 t to 1200.000 t")
	out = c.ok("revert", typo, "--reason", "typo")
	wantOut(t, out, "Correction: reverts deliver entry "+typo+" (typo)")
	c.fails(1, []string{"revert", typo, "--reason", "again"}, "entry", "already reverted")

	c.wantFigures("CLI-1", map[string]string{"contracted": "1200.000", "replacements": "20.000", "open": "820.000",
		"delivered": "300.000", "holding": "180.000", "retired": "100.000", "cancelled": "100.000", "reversed": "20.000",
		"buffer_cancelled": "20.000", "serialized_holding": "180.000"})

	// A schedule-only amendment from a file, then a termination.
	out = c.ok("amend", "--contract", "CLI-2Y", "--schedule", "testdata/schedule.json", "--date", "2025-02-01", "--reason", "re-phased")
	wantOut(t, out, "Amendment of CLI-2Y: delivery schedule changed")
	v := c.show("CLI-2Y")
	if v["schedule_version"] != float64(2) {
		t.Errorf("schedule_version = %v, want 2", v["schedule_version"])
	}
	out = c.ok("deliver", "--contract", "CLI-2Y", "--tonnes", "500", "--date", "2025-05-01")
	wantOut(t, out, "retired on delivery")
	out = c.ok("cancel", "--contract", "CLI-2Y", "--terminate", "--date", "2025-09-01", "--reason", "supplier exit")
	wantOut(t, out, "Termination of CLI-2Y: 1500.000 t open cancelled")
	c.wantFigures("CLI-2Y", map[string]string{"contracted": "2000.000", "open": "0.000", "delivered": "500.000",
		"retired": "500.000", "holding": "0.000", "cancelled": "1500.000"})
	if v := c.show("CLI-2Y"); v["status"] != "terminated" || v["terminated_on"] != "2025-09-01" {
		t.Errorf("status %v terminated_on %v", v["status"], v["terminated_on"])
	}
	c.fails(1, []string{"deliver", "--contract", "CLI-2Y", "--tonnes", "1", "--date", "2025-09-02"}, "contract", "terminated")

	// A late delivery needs --allow-late and says so.
	c.ok("contract", "add", "--code", "CLI-LATE", "--buyer", "B", "--supplier", "S", "--project", "P", "--method", "biochar",
		"--country", "MX", "--term-start", "2025-01-01", "--term-end", "2025-06-30", "--signed-on", "2024-12-01", "--tonnes", "10")
	c.fails(1, []string{"deliver", "--contract", "CLI-LATE", "--tonnes", "1", "--date", "2025-07-15"}, "date", "after the contract term ended", "--allow-late")
	out = c.ok("deliver", "--contract", "CLI-LATE", "--tonnes", "1", "--date", "2025-07-15", "--allow-late")
	wantOut(t, out, ", late")
	c.fails(1, []string{"deliver", "--contract", "CLI-LATE", "--tonnes", "1", "--date", "2099-01-01", "--allow-late"}, "date", "in the future")

	out = c.ok("journal", "CLI-1")
	for _, k := range []string{"sign", "deliver", "retire", "cancel", "reverse", "amend", "revert"} {
		wantOut(t, out, " "+k+" ")
	}
}

func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("contract", "add", "-f", "testdata/contract.json")
	for _, args := range [][]string{
		{"frobnicate"},
		{"contract"},
		{"contract", "remove", "CLI-1"},
		{"contract", "show"},
		{"contract", "add"},
		{"contract", "add", "-f", "testdata/contract.json", "--code", "X"},
		{"deliver", "--tonnes", "1", "--date", "2025-03-01"},
		{"deliver", "--contract", "CLI-1", "--tonnes", "1"},
		{"deliver", "--contract", "CLI-1", "--date", "2025-03-01"},
		{"deliver", "--contract", "CLI-1", "--tonnes", "1", "--date", "2025-03-01", "--bogus"},
		{"contract", "list", "--format", "xml"},
		{"contract", "show", "CLI-1", "--format", "yaml"},
		{"deliver", "--contract", "CLI-1", "--tonnes", "1", "--date", "2025-03-01", "--format", "csv"},
		{"retire", "--contract", "CLI-1", "--tonnes", "1", "--date", "2025-03-01"},
		{"cancel", "--contract", "CLI-1", "--date", "2025-03-01", "--reason", "x"},
		{"reverse", "--contract", "CLI-1", "--tonnes", "1", "--date", "2025-03-01", "--reason", "fire", "--remedy", "insurance"},
		{"amend", "--contract", "CLI-1", "--date", "2025-03-01", "--reason", "x"},
		{"revert", "--reason", "x"},
	} {
		c.fails(2, args)
	}
	code, _, errOut := c.run("frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
	_, _, errOut = c.run("reverse", "--contract", "CLI-1", "--tonnes", "1", "--date", "2025-03-01", "--reason", "fire", "--remedy", "insurance")
	wantOut(t, errOut, "--remedy", "replace or buffer", "insurance")
	_, _, errOut = c.run("contract", "list", "--format", "xml")
	wantOut(t, errOut, "--format", "xml")
	_, _, errOut = c.run("deliver", "--tonnes", "1", "--date", "2025-03-01")
	wantOut(t, errOut, "--contract is required")
	_, _, errOut = c.run("deliver", "--contract", "CLI-1", "--tonnes", "1")
	wantOut(t, errOut, "--date is required")
}

func TestCLIBadInput(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("contract", "add", "-f", "testdata/contract.json")
	c.ok("contract", "add", "-f", "testdata/contract_two_years.json")
	const p = "CAR-1-MX-1642-34-101-CM-2025"
	c.ok("deliver", "--contract", "CLI-1", "--tonnes", "300", "--date", "2025-03-01", "--serials", p+":1-300")
	c.ok("retire", "--contract", "CLI-1", "--tonnes", "100", "--date", "2025-03-10", "--beneficiary", "Acme Buyer",
		"--reason", "claim", "--serials", p+":1-100")

	for _, tc := range []struct {
		name  string
		args  []string
		parts []string
	}{
		{"missing field", []string{"contract", "add", "-f", "testdata/bad_missing_buyer.json"}, []string{"buyer: is required"}},
		{"unknown field", []string{"contract", "add", "-f", "testdata/bad_unknown_field.json"}, []string{"colour: is not a contract field"}},
		{"duplicate code with other terms", []string{"contract", "add", "-f", "testdata/bad_other_terms.json"}, []string{`code: "CLI-1"`, "already exists with different terms"}},
		{"duplicate code under another key", []string{"contract", "add", "-f", "testdata/bad_other_terms.json", "--key", "other"}, []string{`code: "CLI-1"`, "contract codes are unique"}},
		{"term ends before it starts", []string{"contract", "add", "-f", "testdata/bad_term.json"}, []string{`term_end: "2024-06-30" is before term_start 2025-01-01`}},
		{"zero tonnes in JSON", []string{"contract", "add", "-f", "testdata/bad_zero_tonnes.json"}, []string{`tonnes: "0" must be greater than zero`}},
		{"negative tonnes in JSON", []string{"contract", "add", "-f", "testdata/bad_negative_tonnes.json"}, []string{`tonnes: "-5" must be greater than zero`}},
		{"more than 3 decimals in JSON", []string{"contract", "add", "-f", "testdata/bad_decimals.json"}, []string{`tonnes: "1000.0005" has more than 3 decimal places`}},
		{"schedule does not add up", []string{"contract", "add", "-f", "testdata/bad_schedule.json"}, []string{"schedule", "add up exactly to the contracted 1000.000 t"}},
		{"missing file", []string{"contract", "add", "-f", "testdata/no-such-file.json"}, []string{"no-such-file.json"}},
		{"zero tonnes", []string{"deliver", "--contract", "CLI-1", "--tonnes", "0", "--date", "2025-03-02"}, []string{`--tonnes: "0" must be greater than zero`}},
		{"negative tonnes", []string{"deliver", "--contract", "CLI-1", "--tonnes", "-5", "--date", "2025-03-02"}, []string{`--tonnes: "-5" must be greater than zero`}},
		{"more than 3 decimals", []string{"deliver", "--contract", "CLI-1", "--tonnes", "1.2345", "--date", "2025-03-02"}, []string{`--tonnes: "1.2345" has more than 3 decimal places`}},
		{"bad date", []string{"deliver", "--contract", "CLI-1", "--tonnes", "1", "--date", "2025-02-30"}, []string{"--date", "2025-02-30"}},
		{"unknown contract", []string{"deliver", "--contract", "NOPE", "--tonnes", "1", "--date", "2025-03-02"}, []string{`contract: "NOPE" does not exist`}},
		{"over-delivery", []string{"deliver", "--contract", "CLI-1", "--tonnes", "700.001", "--date", "2025-03-02"}, []string{`tonnes: "700.001" is more than contract CLI-1 can still take: 700.000 t open`}},
		{"delivery before the term", []string{"deliver", "--contract", "CLI-1", "--tonnes", "1", "--date", "2024-12-31"}, []string{`date: "2024-12-31" is before the contract term starts`}},
		{"retiring more than held", []string{"retire", "--contract", "CLI-1", "--tonnes", "200.001", "--date", "2025-03-11", "--beneficiary", "B", "--reason", "r"}, []string{`tonnes: "200.001" is more than the 200.000 t held under contract CLI-1`}},
		{"retiring serialized credits without serials", []string{"retire", "--contract", "CLI-1", "--tonnes", "10", "--date", "2025-03-11", "--beneficiary", "B", "--reason", "r"}, []string{"serials: are required"}},
		{"retiring a serial twice", []string{"retire", "--contract", "CLI-1", "--tonnes", "10", "--date", "2025-03-11", "--beneficiary", "B", "--reason", "r", "--serials", p + ":91-100"}, []string{`serials: "` + p + `:91-100"`, "already retired"}},
		{"retiring before the delivery", []string{"retire", "--contract", "CLI-1", "--tonnes", "10", "--date", "2025-02-15", "--beneficiary", "B", "--reason", "r", "--serials", p + ":201-210"}, []string{"date", "before serials", "were delivered (2025-03-01)"}},
		{"serial count is not the tonnes", []string{"deliver", "--contract", "CLI-1", "--tonnes", "10", "--date", "2025-03-02", "--serials", p + ":1001-1009"}, []string{"serials", "holds 9 serials", "one serial is one tonne"}},
		{"overlapping serial ranges", []string{"deliver", "--contract", "CLI-1", "--tonnes", "100", "--date", "2025-03-02", "--serials", p + ":250-349"}, []string{`serials: "` + p + `:250-349" overlap serials`, "already delivered under contract CLI-1"}},
		{"overlapping serials of another contract", []string{"deliver", "--contract", "CLI-2Y", "--tonnes", "10", "--date", "2025-03-02", "--serials", p + ":95-104"}, []string{"overlap serials", "contract CLI-1"}},
		{"a retired serial delivered again", []string{"deliver", "--contract", "CLI-2Y", "--tonnes", "10", "--date", "2025-03-02", "--serials", p + ":1-10"}, []string{"overlap serials", "retired"}},
		{"malformed serial string", []string{"deliver", "--contract", "CLI-1", "--tonnes", "1", "--date", "2025-03-02", "--serials", "not a range"}, []string{`--serials: "not a range" is not a serial range`}},
		{"reversed serial range", []string{"deliver", "--contract", "CLI-1", "--tonnes", "1", "--date", "2025-03-02", "--serials", p + ":10-5"}, []string{"--serials", "ends before it starts"}},
		{"cancelling more than open", []string{"cancel", "--contract", "CLI-1", "--tonnes", "700.001", "--date", "2025-03-02", "--reason", "r"}, []string{"tonnes", "700.000 t open"}},
		{"reversing more than held", []string{"reverse", "--contract", "CLI-1", "--tonnes", "200.001", "--date", "2025-03-12", "--reason", "fire"}, []string{"tonnes", "200.000 t held"}},
		{"amending below delivered", []string{"amend", "--contract", "CLI-1", "--tonnes", "299.999", "--date", "2025-03-12", "--reason", "less"}, []string{"tonnes", "at most the 700.000 t open, to 300.000 t"}},
		{"amending with a schedule for years the term lacks", []string{"amend", "--contract", "CLI-1", "--schedule", "testdata/schedule.json", "--date", "2025-03-12", "--reason", "x"}, []string{"schedule", "not a contract year"}},
		{"reverting an unknown entry", []string{"revert", "0190c3a2-0000-7000-8000-000000000000", "--reason", "x"}, []string{"entry", "does not exist"}},
		{"reverting a malformed id", []string{"revert", "42", "--reason", "x"}, []string{"entry", "is not an entry id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := cli{t: t, url: c.url, db: c.db}
			cc.fails(1, tc.args, tc.parts...)
		})
	}

	// A retirement cannot be reverted (exit 1, nothing changes).
	out := c.ok("retire", "--contract", "CLI-1", "--tonnes", "10", "--date", "2025-03-12", "--beneficiary", "B", "--reason", "r", "--serials", p+":101-110")
	c.fails(1, []string{"revert", entryID(t, out), "--reason", "x"}, "retirements are final")
}

func TestCLIDemoTwice(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	code, out1, err1 := c.run("demo")
	if code != 0 {
		t.Fatalf("demo: exit %d\nstderr: %s", code, err1)
	}
	wantOut(t, out1, "ILLUSTRATIVE", "Contract MSFT-TN150-BIOCHAR", "Contract MSFT-TOROTO-CALAKMUL")
	m := regexp.MustCompile(`demo: (\d+) entries written, 0 already present`).FindStringSubmatch(err1)
	if m == nil || m[1] == "0" {
		t.Errorf("first demo run stderr %q, want entries written and none already present", err1)
	}
	before := c.state()
	code, out2, err2 := c.run("demo")
	if code != 0 {
		t.Fatalf("second demo: exit %d\nstderr: %s", code, err2)
	}
	if m != nil {
		wantOut(t, err2, "demo: 0 entries written, "+m[1]+" already present")
	}
	if out2 != out1 {
		t.Errorf("the second demo run printed other positions:\nfirst:\n%s\nsecond:\n%s", out1, out2)
	}
	if after := c.state(); after != before {
		t.Errorf("the second demo run changed the database:\nbefore: %s\nafter:  %s", before, after)
	}
	c.wantFigures("MSFT-TN150-BIOCHAR", map[string]string{"contracted": "95000.000", "delivered": "28100.500", "retired": "14500.000",
		"holding": "13600.500", "cancelled": "1334.000", "open": "65565.500"})
	c.wantFigures("MSFT-TOROTO-CALAKMUL", map[string]string{"contracted": "234000.000", "replacements": "2000.000", "delivered": "212000.000",
		"retired": "90000.000", "reversed": "2000.000", "holding": "120000.000", "cancelled": "24000.000", "open": "0.000",
		"buffer_cancelled": "5000.000"})
}
