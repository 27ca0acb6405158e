package store

import (
	"context"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
)

// Every report rollup is re-added by the audit: a superuser who edits one (with the triggers
// off) is caught, and the finding names the rollup and the contract.
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
			tx, err := s.DB().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, tc.sql); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			res, err := s.Audit(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, f := range res.Findings {
				if f.Check == tc.check {
					found = true
				}
			}
			if !found {
				t.Errorf("after %s: got findings %+v, want a %s finding", tc.sql, res.Findings, tc.check)
			}
		})
	}
}
