package store

import (
	"context"
	"strings"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
)

// ledger.Measures is the one definition of which postings count in which measure. The
// report SQL is generated from it; the database's posting_measures is written by hand (the
// posting trigger and the rollup views call it) and must agree for every account kind and
// entry kind, and the rollups' columns come in the same order.
func TestDatabaseMeasuresAreLedgerMeasures(t *testing.T) {
	s := newStore(t)
	names := strings.Split(measureCols, ", ")
	for i, m := range ledger.Measures {
		if names[i] != m.Name {
			t.Errorf("measure %d: the rollups' column is %s, ledger.Measures says %s", i, names[i], m.Name)
		}
	}
	for _, ak := range ledger.AccountKinds {
		for _, k := range ledger.Kinds {
			var got []string
			rows, err := s.DB().QueryContext(context.Background(), `
				SELECT unnest(ARRAY[contracted, replacements, open, delivered, holding, retired, cancelled,
				                    reversed, buffer_cancelled, holding_in])::text
				  FROM posting_measures($1, $2, 1)`, string(ak), string(k))
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var v string
				if err := rows.Scan(&v); err != nil {
					t.Fatal(err)
				}
				got = append(got, v)
			}
			rows.Close()
			for i, m := range ledger.Measures {
				want := "0"
				if m.Counts(ak, k) {
					want = "1"
				}
				if got[i] != want {
					t.Errorf("posting_measures(%s, %s, 1).%s = %s, ledger.Measures say %s", ak, k, m.Name, got[i], want)
				}
			}
		}
	}
}
