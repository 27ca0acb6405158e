package store

import (
	"context"
	"database/sql"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
)

// Every report rollup is re-added by the audit: a superuser who edits one (with the triggers
// off) is caught, and the finding names the rollup and the contract. So is an edit of the
// accounts a contract's terms define, whose kinds decide what the rollups count, and of the
// stored schedule versions, which its sign and amend entries seal.
func TestAuditCatchesTamperedRollups(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, sql, check string
	}{
		{"daily", `UPDATE flows SET amount = amount + 1 WHERE account_kind = 'holding'`, "rollup_daily"},
		{"monthly", `UPDATE flows_monthly SET postings = postings + 1 WHERE account_kind = 'holding'`, "rollup_monthly"},
		{"book months", `UPDATE book_months SET delivered = delivered + 1 WHERE delivered <> 0`, "rollup_book_months"},
		{"book years", `UPDATE book_years SET retired = retired - 1000 WHERE contract_year = 1`, "rollup_book_years"},
		{"book years row removed", `DELETE FROM book_years WHERE contract_year = 1`, "rollup_book_years"},
		{"effective months", `UPDATE book_months_effective SET holding_in = holding_in + 1 WHERE holding_in <> 0`, "rollup_book_months_effective"},
		{"effective month row removed", `DELETE FROM book_months_effective WHERE delivered <> 0`, "rollup_book_months_effective"},
		{"vintage months", `UPDATE vintage_months SET retired = retired + 5 WHERE retired <> 0`, "rollup_vintage_months"},
		{"vintage month moved to another shard", `UPDATE vintage_months SET shard = (shard + 1) % 16 WHERE delivered <> 0`, "rollup_vintage_months"},
		{"vintage month row added", `INSERT INTO vintage_months (shard, month, vintage, recorded_month, delivered, postings)
			VALUES (3, '2031-01-01', 2030, '2031-01-01', 1000, 1)`, "rollup_vintage_months"},
		// The columns a rollup row copies from its account and contract, which the reports
		// group by.
		{"daily account kind changed", `UPDATE flows SET account_kind = 'retired' WHERE account_kind = 'holding'`, "rollup_daily"},
		{"daily contract year changed", `UPDATE flows SET contract_year = contract_year + 1`, "rollup_daily"},
		{"monthly account kind changed", `UPDATE flows_monthly SET account_kind = 'retired' WHERE account_kind = 'holding'`, "rollup_monthly"},
		{"account kind changed", `UPDATE accounts SET kind = 'holding' WHERE kind = 'retired'`, "contract_accounts"},
		{"account floor lowered", `UPDATE accounts SET floor = -1000 WHERE kind = 'holding'`, "contract_accounts"},
		{"account added to a contract's book", `INSERT INTO accounts (code, book_id, kind, floor)
			SELECT code || '-2', book_id, kind, floor FROM accounts WHERE kind = 'holding'`, "contract_accounts"},
		{"schedule due date changed", `UPDATE schedule_lines SET due_on = '2025-06-30'`, "schedule_version"},
		{"schedule vintage changed", `UPDATE schedule_lines SET vintage = 2001`, "schedule_version"},
		{"schedule version added", `INSERT INTO schedule_lines
			SELECT contract_id, version + 1, explicit, entry_id, year, tonnes, vintage, price_per_tonne, due_on FROM schedule_lines`, "schedule_version"},
		// Rows that hold nothing, but that no posting makes.
		{"daily row of zeros added", `INSERT INTO flows SELECT account_id, effective_on + 1, recorded_on, vintage, kind, book_id,
			account_kind, contract_year, 0, 0, 0, 0 FROM flows LIMIT 1`, "rollup_daily"},
		{"monthly row of zeros added", `INSERT INTO flows_monthly SELECT account_id, month, contract_year + 1, vintage, kind, book_id,
			account_kind, 0, 0, 0, 0 FROM flows_monthly LIMIT 1`, "rollup_monthly"},
		{"book month row of zeros added", `INSERT INTO book_months (book_id, month, contract_year, recorded_month)
			SELECT book_id, month, contract_year + 1, recorded_month FROM book_months LIMIT 1`, "rollup_book_months"},
		{"vintage month row of zeros added", `INSERT INTO vintage_months (shard, month, vintage, recorded_month)
			VALUES (3, '2031-01-01', 2030, '2031-01-01')`, "rollup_vintage_months"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			c := addContract(t, s, contractDoc("RT-1", nil))
			if _, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: c.Code, Tonnes: tn("100"), Date: c.TermStart, Key: "d"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Retire(ctx, ledger.RetireRequest{Contract: c.Code, Tonnes: tn("40"), Date: c.TermStart, Beneficiary: "B", Reason: "r", Key: "r"}); err != nil {
				t.Fatal(err)
			}
			if res, err := s.Audit(ctx, nil); err != nil || !res.OK() {
				t.Fatalf("before tampering: %v %+v", err, res)
			}
			tampered(t, s, stmt(tc.sql))
			if of, all := findingsOf(t, s, tc.check); len(of) == 0 {
				t.Errorf("after %s: got findings %+v, want a %s finding", tc.sql, all, tc.check)
			}
		})
	}
}

// The rollups change only inside the posting trigger: a direct write to any of them, even by
// the owner, is refused and changes nothing, and none can come to name a book that does not
// exist (which their foreign keys refused before 0015 dropped them).
func TestRollupsChangeOnlyByPosting(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := addContract(t, s, contractDoc("RG-1", nil))
	if _, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: c.Code, Tonnes: tn("100"), Date: c.TermStart, Key: "d"}); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"flows", "flows_monthly", "book_months", "book_months_effective", "book_years", "vintage_months"} {
		key := "book_id = -1" // a row naming a book that does not exist (the rollups hold no foreign keys)
		if table == "vintage_months" {
			key = "shard = -1"
		}
		for _, q := range []string{
			`UPDATE ` + table + ` SET postings = postings + 1`,
			`UPDATE ` + table + ` SET ` + key,
			`DELETE FROM ` + table,
			`INSERT INTO ` + table + ` SELECT * FROM ` + table,
			`TRUNCATE ` + table,
		} {
			err := rawTx(ctx, s, func(tx *sql.Tx) error { return stmt(q)(ctx, tx) })
			if got := pgCode(err); got != "CL001" {
				t.Errorf("%s: got SQLSTATE %q (%v), want CL001", q, got, err)
			}
		}
	}
	if res, err := s.Audit(ctx, nil); err != nil || !res.OK() {
		t.Fatalf("after the refused writes: %v %+v", err, res)
	}
}
