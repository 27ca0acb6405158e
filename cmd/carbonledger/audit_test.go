package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carbonledger/carbonledger/internal/service"
	"github.com/carbonledger/carbonledger/ledger"
)

// auditOut runs `audit --format json` with extra flags and returns the exit code and report.
func (c cli) auditOut(args ...string) (int, service.AuditJSON) {
	c.t.Helper()
	code, out, errOut := c.run(append([]string{"audit", "--format", "json"}, args...)...)
	var r service.AuditJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		c.t.Fatalf("audit %v: exit %d, output is not JSON: %v\n%s\n%s", args, code, err, out, errOut)
	}
	return code, r
}

func hasCheck(r service.AuditJSON, check string) bool {
	for _, f := range r.Findings {
		if f.Check == check {
			return true
		}
	}
	return false
}

// A statement written today, signed, is verified by `audit --since` after more entries are
// added; tampering with a covered entry, editing the statement, or checking it against another
// key is caught.
func TestCLIAuditStatementSince(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	key, other := filepath.Join(dir, "key"), filepath.Join(dir, "other")
	c.ok("demo", "--quiet")
	c.ok("audit", "keygen", "--out", key)
	c.ok("audit", "keygen", "--out", other)
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signing key: %v, mode %v; want mode 0600", err, fi.Mode())
	}

	code, clean := c.auditOut()
	if code != 0 || !clean.OK || clean.Entries == 0 || len(clean.Digest) != 64 {
		t.Fatalf("audit of the demo: exit %d, %+v; want clean", code, clean)
	}
	st := filepath.Join(dir, "statement.json")
	c.ok("audit", "--statement", st, "--signing-key", key)
	var stmt ledger.Statement
	b, _ := os.ReadFile(st)
	if err := json.Unmarshal(b, &stmt); err != nil || stmt.Signature == nil || stmt.Digest != clean.Digest || stmt.Entries != clean.Entries {
		t.Fatalf("statement: %v %+v; want signed, digest %s, %d entries", err, stmt.Signature, clean.Digest, clean.Entries)
	}
	if len(stmt.Contracts) != 2 || len(stmt.Accounts) == 0 {
		t.Fatalf("statement has %d contracts, %d accounts; want the 2 demo contracts and their accounts", len(stmt.Contracts), len(stmt.Accounts))
	}

	// A statement that cannot be read or written is named by its flag or its path.
	c.fails(1, []string{"audit", "--since", filepath.Join(dir, "missing.json")}, "--since", "missing.json")
	c.fails(1, []string{"audit", "--statement", filepath.Join(dir, "no-such-dir", "s.json")}, "cannot write "+filepath.Join(dir, "no-such-dir", "s.json"))

	// The books grow: the statement still stands.
	c.ok("deliver", "--contract", "MSFT-TN150-BIOCHAR", "--tonnes", "12.5", "--date", "2026-07-01", "--key", "after-statement")
	code, r := c.auditOut("--since", st, "--public-key", key+".pub")
	if code != 0 || !r.OK || r.Entries != clean.Entries+1 || r.Digest == clean.Digest {
		t.Fatalf("audit --since after one more entry: exit %d, %+v; want clean, one more entry, a new digest", code, r)
	}

	// Checked against another key: refused.
	if code, r := c.auditOut("--since", st, "--public-key", other+".pub"); code != 1 || !hasCheck(r, "since_signature") {
		t.Errorf("--since with another public key: exit %d, %+v; want exit 1 and a since_signature finding", code, r)
	}
	// The statement edited after signing: refused.
	var m map[string]any
	json.Unmarshal(b, &m)
	m["entries"] = float64(stmt.Entries - 1)
	edited, _ := json.Marshal(m)
	bad := filepath.Join(dir, "edited.json")
	os.WriteFile(bad, edited, 0o644)
	if code, r := c.auditOut("--since", bad); code != 1 || !hasCheck(r, "since_signature") {
		t.Errorf("--since an edited statement: exit %d, %+v; want exit 1 and a since_signature finding", code, r)
	}

	// An entry the statement covered is altered by a superuser: the audit and --since say so.
	var id string
	if err := c.db.QueryRow(`SELECT id FROM entries WHERE idempotency_key = 'demo:tn150:retire:1'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	tx, _ := c.db.Begin()
	tx.Exec(`SET LOCAL session_replication_role = replica`)
	if _, err := tx.Exec(`UPDATE entries SET description = 'retired for someone else' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	tx.Commit()
	code, r = c.auditOut("--since", st, "--public-key", key+".pub")
	if code != 1 || !hasCheck(r, "hash_chain") {
		t.Fatalf("--since after tampering: exit %d, %+v; want exit 1 with a hash_chain finding", code, r)
	}
	// An attacker who also re-seals the head the statement named cannot hide it either.
	for _, h := range stmt.Heads {
		tx, _ := c.db.Begin()
		tx.Exec(`SET LOCAL session_replication_role = replica`)
		if _, err := tx.Exec(`UPDATE entries SET hash = sha256('forged'::bytea)
			WHERE seq = $2 AND book_id = (SELECT id FROM books WHERE code = $1)`, h.Book, h.Seq); err != nil {
			t.Fatal(err)
		}
		tx.Commit()
	}
	if code, r := c.auditOut("--since", st); code != 1 || !hasCheck(r, "since_head") {
		t.Fatalf("--since after re-sealing the heads: exit %d, %+v; want exit 1 with a since_head finding", code, r)
	}
	named := false
	for _, f := range r.Findings {
		named = named || f.Entry == id
	}
	if !named {
		t.Errorf("no finding names the altered entry %s: %+v", id, r.Findings)
	}
	// The text format says the same, and exit code 1.
	code, out, _ := c.run("audit")
	if code != 1 || !strings.Contains(out, "[hash_chain]") || !strings.Contains(out, id) {
		t.Errorf("audit text: exit %d\n%s", code, out)
	}
}

// A statement cannot be written to a file that is not a statement's place, and usage errors
// exit 2.
func TestCLIAuditUsage(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{
		{"audit", "--format", "xml"},
		{"audit", "--public-key", "x.pub"},
		{"audit", "extra"},
		{"audit", "keygen"},
	} {
		if code, _, errOut := c.run(args...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, errOut)
		}
	}
	if code, _, errOut := c.run("audit", "--since", "/nonexistent/statement.json"); code != 1 || !strings.Contains(errOut, "statement.json") {
		t.Errorf("--since a missing file: exit %d, %q; want 1 naming the file", code, errOut)
	}
}
