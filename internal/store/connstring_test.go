package store

import "testing"

// TestConnString: a URL naming a primary and its standby becomes libpq's keyword form with
// one port per host (lib/pq would read the URL's ports wrongly); other strings are kept.
func TestConnString(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"postgres://u:p@127.0.0.1:5001,127.0.0.1:5002/ledger?sslmode=disable&target_session_attrs=read-write",
			"host='127.0.0.1,127.0.0.1' port='5001,5002' user='u' password='p' dbname='ledger' sslmode='disable' target_session_attrs='read-write'"},
		{"postgresql://u:p%27q@db1,db2:6000/ledger", `host='db1,db2' port='5432,6000' user='u' password='p\'q' dbname='ledger'`},
		{"postgres://u:p@127.0.0.1:5001/ledger?sslmode=disable", "postgres://u:p@127.0.0.1:5001/ledger?sslmode=disable"},
		{"host=a,b port=1,2 dbname=x", "host=a,b port=1,2 dbname=x"},
	} {
		if got := connString(tt.in); got != tt.want {
			t.Errorf("connString(%q)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}
