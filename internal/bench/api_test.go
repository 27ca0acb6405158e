package bench

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// TestAPILevelCountsWhatWasRecorded runs the API section's clients briefly against the real
// handler: every success it counts is a delivery in the journal under the section's keys, and
// a refused request is counted as an error with its status, never as a success.
func TestAPILevelCountsWhatWasRecorded(t *testing.T) {
	ctx := context.Background()
	today := ledger.Date(time.Now().UTC().Date())
	s, err := store.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	codes, err := seedAPI(ctx, s, today, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := s.CreateToken(ctx, "bench-test", "recorder", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, base, conns, err := serveAPI(s, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client := apiClient(4)
	defer client.CloseIdleConnections()

	// No warm-up: every request sent is measured, so successes are exactly the deliveries.
	r, err := apiLevel(ctx, client, base, secret, 4, codes, 0, time.Second, today, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.errs != 0 || r.ops == 0 {
		t.Fatalf("%d deliveries, %d errors (first: %v)", r.ops, r.errs, r.firstErr)
	}
	var recorded int
	if err := s.DB().GetContext(ctx, &recorded, `SELECT count(*) FROM entries WHERE kind = 'deliver' AND idempotency_key LIKE 'bench:api:%'`); err != nil {
		t.Fatal(err)
	}
	if recorded != r.ops || len(r.lat) != r.ops || r.rate() <= 0 {
		t.Fatalf("counted %d deliveries (%d latencies, %.0f/s), the journal has %d", r.ops, len(r.lat), r.rate(), recorded)
	}
	if n := conns.Load(); n > 4 {
		t.Errorf("%d connections for 4 clients: the client does not keep them alive", n)
	}

	_, err = apiLevel(ctx, client, base, "clt_not-a-token", 2, codes, 0, 200*time.Millisecond, today, 2)
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("with an unknown token: %v, want every request failed with HTTP 401", err)
	}
}
