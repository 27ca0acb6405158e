package store

import (
	"context"
	"database/sql"
	"testing"
)

// The serial checks, tried by breaking them: a superuser (triggers off, and a constraint
// dropped where one stands in the way) rewrites the serial blocks or their history, and the
// audit names the check. The untouched books include a retire-on-delivery contract, whose
// deliveries retire their serials at once: that is sound, and the audit says nothing of it.
func TestAuditCatchesTamperedSerials(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		sql   []string
		check string
	}{
		{"a block copied over another", []string{
			`ALTER TABLE serial_blocks DROP CONSTRAINT serial_blocks_no_overlap`,
			`INSERT INTO serial_blocks (registry, prefix, serials, contract_id, state, entry_id)
			 SELECT registry, prefix, serials, contract_id, state, entry_id FROM serial_blocks WHERE state = 'delivered' AND prefix = 'CAR-ST'`,
		}, "serial_overlap"},
		{"the delivery of retired serials removed from the history", []string{
			`DELETE FROM serial_events WHERE from_state IS NULL AND prefix = 'CAR-ST'`,
		}, "serial_retired_delivered"},
		{"a transfer contract's delivery rewritten to retire its serials", []string{
			`UPDATE serial_events SET to_state = 'retired' WHERE from_state IS NULL AND prefix = 'CAR-ST'`,
		}, "serial_retired_delivered"},
		{"a delivered block marked retired without a retirement", []string{
			`UPDATE serial_blocks SET state = 'retired' WHERE state = 'delivered' AND prefix = 'CAR-ST'`,
		}, "serial_block_history"},
		{"a delivered block made up", []string{
			`INSERT INTO serial_blocks (registry, prefix, serials, contract_id, state, entry_id)
			 SELECT registry, 'CAR-MADE-UP', int8range(1, 5, '[]'), contract_id, 'delivered', entry_id FROM serial_blocks WHERE prefix = 'CAR-ST' LIMIT 1`,
		}, "serial_block_history"},
		{"a retired block marked delivered again", []string{
			`UPDATE serial_blocks SET state = 'delivered' WHERE state = 'retired' AND prefix = 'CAR-ST'`,
		}, "serial_block_history"},
		{"a delivered block stretched past the holding", []string{
			`UPDATE serial_blocks SET serials = int8range(41, 1000, '[]') WHERE state = 'delivered' AND prefix = 'CAR-ST'`,
		}, "serials_held"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			addContract(t, s, contractDoc("ST-1", nil))
			addContract(t, s, contractDoc("ST-2", map[string]any{"delivery_mode": "retire_on_delivery"}))
			d := deliverReq("ST-1", "100", cday(2025, 3, 1))
			d.Serials = serialsOf(t, "CAR-ST:1-100")
			opOK(t)(s.Deliver(ctx, d))
			r := retireReq("ST-1", "40", cday(2025, 3, 2))
			r.Serials = serialsOf(t, "CAR-ST:1-40")
			opOK(t)(s.Retire(ctx, r))
			d = deliverReq("ST-2", "10", cday(2025, 3, 1))
			d.Serials = serialsOf(t, "CAR-ST2:1-10")
			opOK(t)(s.Deliver(ctx, d))
			wantBlocks(t, s, "ST-1", []string{"CAR-ST:1-40 retired", "CAR-ST:41-100 delivered"})
			checkSound(t, s) // clean, the retire-on-delivery contract included
			tampered(t, s, func(ctx context.Context, tx *sql.Tx) error {
				for _, q := range tc.sql {
					if _, err := tx.ExecContext(ctx, q); err != nil {
						return err
					}
				}
				return nil
			})
			got, all := findingsOf(t, s, tc.check)
			if len(got) == 0 {
				t.Fatalf("got findings %+v, want a %s finding", all, tc.check)
			}
			for _, f := range got {
				if f.Entry == "" || f.Found == "" {
					t.Errorf("finding %+v does not say where or what", f)
				}
			}
		})
	}
}
