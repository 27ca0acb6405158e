package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/ledger"
)

// newStore opens a store on a fresh database for t.
func newStore(t testing.TB) *Store {
	t.Helper()
	return openOn(t, pgtest.URL(t))
}

// openOn opens a store on the database at url for t.
func openOn(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// twoStores opens two stores on one fresh database, as two processes would.
func twoStores(t testing.TB) (a, b *Store) {
	t.Helper()
	url := pgtest.URL(t)
	return openOn(t, url), openOn(t, url)
}

func tn(s string) ledger.Tonnes { return ledger.MustTonnes(s) }

func floor0() *ledger.Tonnes { z := ledger.Zero; return &z }

// journalBook creates book code with a source account (may go negative) and two accounts with
// a floor of zero: <code> "src", "a" and "b".
func journalBook(t testing.TB, s *Store, code string) (src, a, b string) {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateBook(ctx, code); err != nil {
		t.Fatal(err)
	}
	src, a, b = "test:"+code+":src", "test:"+code+":a", "test:"+code+":b"
	for _, acc := range []ledger.Account{
		{Code: src, Book: code, Kind: ledger.AccEquity},
		{Code: a, Book: code, Kind: ledger.AccAsset, Floor: floor0()},
		{Code: b, Book: code, Kind: ledger.AccAsset, Floor: floor0()},
	} {
		if err := s.CreateAccount(ctx, acc); err != nil {
			t.Fatal(err)
		}
	}
	return src, a, b
}

func move(book, key, from, to string, amount string, day int) ledger.Entry {
	return ledger.Entry{Book: book, Kind: ledger.KindTransfer, EffectiveOn: ledger.Date(2025, 1, day), Key: key,
		Description: "move " + amount,
		Postings:    []ledger.Posting{{Account: from, Amount: tn(amount).Neg()}, {Account: to, Amount: tn(amount)}}}
}

// contractDoc returns the JSON of a test contract with code: 1,000 t over 2025, registry car,
// transfer. over replaces fields (a nil value removes one).
func contractDoc(code string, over map[string]any) string {
	m := map[string]any{
		"code": code, "buyer": "Acme Buyer", "supplier": "Good Supplier", "project": "Test project",
		"method": "biochar", "country": "MX", "region": "Guanajuato", "registry": "car", "standard": "Test protocol",
		"durability_years": 100, "term_start": "2025-01-01", "term_end": "2025-12-31", "signed_on": "2024-12-01",
		"tonnes": "1000", "delivery_mode": "transfer",
	}
	for k, v := range over {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// addContract parses contract JSON and adds the contract, failing the test on any error.
func addContract(t testing.TB, s *Store, doc string) ledger.Contract {
	t.Helper()
	c, err := ledger.ParseContractJSON(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("parse contract: %v", err)
	}
	if _, err := s.AddContract(context.Background(), c, ""); err != nil {
		t.Fatalf("add contract %s: %v", c.Code, err)
	}
	return c
}

// dbState is the database state an operation can change.
type dbState struct {
	Counts   map[string]int64  // rows per table
	Heads    map[string]string // book -> "seq hash"
	Balances map[string]string // account -> cached balance
	Blocks   []string          // serial blocks
}

// snapshot captures the database state that matters, so a test can assert that a refused
// operation changed nothing.
func snapshot(t testing.TB, s *Store) dbState {
	t.Helper()
	ctx := context.Background()
	st := dbState{Counts: map[string]int64{}, Heads: map[string]string{}, Balances: map[string]string{}}
	for _, tbl := range []string{"books", "accounts", "entries", "postings", "contracts", "schedule_lines", "serial_blocks", "serial_events"} {
		var n int64
		if err := s.DB().GetContext(ctx, &n, `SELECT count(*) FROM `+tbl); err != nil {
			t.Fatalf("snapshot %s: %v", tbl, err)
		}
		st.Counts[tbl] = n
	}
	var heads []struct {
		Code string `db:"code"`
		Seq  int64  `db:"head_seq"`
		Hash []byte `db:"head_hash"`
	}
	if err := s.DB().SelectContext(ctx, &heads, `SELECT code, head_seq, head_hash FROM books`); err != nil {
		t.Fatalf("snapshot books: %v", err)
	}
	for _, h := range heads {
		st.Heads[h.Code] = fmt.Sprintf("%d %x", h.Seq, h.Hash)
	}
	var bals []struct {
		Code    string `db:"code"`
		Balance string `db:"balance"`
	}
	if err := s.DB().SelectContext(ctx, &bals, `SELECT code, balance::text AS balance FROM accounts`); err != nil {
		t.Fatalf("snapshot balances: %v", err)
	}
	for _, b := range bals {
		st.Balances[b.Code] = b.Balance
	}
	if err := s.DB().SelectContext(ctx, &st.Blocks, `
		SELECT registry || ' ' || prefix || ' ' || serials::text || ' ' || state || ' ' || contract_id || ' ' || entry_id
		  FROM serial_blocks ORDER BY registry, prefix, lower(serials)`); err != nil {
		t.Fatalf("snapshot serial blocks: %v", err)
	}
	return st
}

// refused runs op, which must fail with an error matching want, and checks that it left the
// database unchanged. It returns the error for checks of its message.
func refused(t testing.TB, s *Store, want error, op func() error) error {
	t.Helper()
	before := snapshot(t, s)
	err := op()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
	if diff := cmp.Diff(before, snapshot(t, s)); diff != "" {
		t.Fatalf("refused operation (%v) changed the database (-before +after):\n%s", err, diff)
	}
	return err
}

// checkSound asserts the invariants: every contract's identities hold, no open balance is
// below minus its tolerance, and every cached balance equals the sum of its postings.
func checkSound(t testing.TB, s *Store) {
	t.Helper()
	ctx := context.Background()
	cs, err := s.Contracts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if bad := c.Position.Check(); len(bad) > 0 {
			t.Errorf("contract %s: identities do not hold: %v", c.Contract.Code, bad)
		}
		if c.Position.Open.LessThan(c.Contract.OverDeliveryTolerance.Neg()) {
			t.Errorf("contract %s: open %s is below minus the tolerance %s", c.Contract.Code, c.Position.Open, c.Contract.OverDeliveryTolerance)
		}
	}
	bs, err := s.Balances(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if !b.Cached.Equal(b.Posted) {
			t.Errorf("account %s: cached balance %s, sum of postings %s", b.Account, b.Cached, b.Posted)
		}
	}
	wantAuditClean(t, s)
}

// findingsOf runs the whole audit and returns its findings of the given check, failing t
// if the audit cannot run.
func findingsOf(t testing.TB, s *Store, check string) (of []ledger.Finding, all []ledger.Finding) {
	t.Helper()
	res, err := s.Audit(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		if f.Check == check {
			of = append(of, f)
		}
	}
	return of, res.Findings
}

// wantAuditClean fails t unless the whole audit finds nothing: whatever a test did through
// the API leaves nothing to find.
func wantAuditClean(t testing.TB, s *Store) {
	t.Helper()
	res, err := s.Audit(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		t.Errorf("audit finding after sound operations: %+v", f)
	}
}
