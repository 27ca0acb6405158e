package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/lib/pq"
)

// Fingerprint describes every row of every table in the database's schema: one line per
// table with its row count and a digest of its rows. Two equal fingerprints mean nothing was
// written (the journal, postings, serials, contracts, rollups, tokens, kept API answers), so
// a test can show that a refused request left the database as it was; the counts make a
// difference readable.
func Fingerprint(t testing.TB, db *sql.DB) string {
	t.Helper()
	ctx := context.Background()
	var tables []string
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		t.Fatalf("fingerprint: list tables: %v", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	var b strings.Builder
	for _, tbl := range tables {
		var n int64
		var sum string
		q := `SELECT count(*), md5(coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '')) FROM ` + pq.QuoteIdentifier(tbl) + ` x`
		if err := db.QueryRowContext(ctx, q).Scan(&n, &sum); err != nil {
			t.Fatalf("fingerprint %s: %v", tbl, err)
		}
		fmt.Fprintf(&b, "%s %d %s\n", tbl, n, sum)
	}
	return b.String()
}
