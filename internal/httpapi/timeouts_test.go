package httpapi

import (
	"strings"
	"testing"
	"time"
)

// Nothing the database does can hang a request: a write waits at most the store's lock
// timeout for its contract, a write's statement runs at most the statement timeout, and any
// request at most the server's request timeout. Each answers 503 (the unavailable problem,
// Retry-After) saying which limit it met, writes nothing, and the same request with the same
// key succeeds once the database lets it.

// wantQuick503 checks a request that met a limit of about limit: answered within [limit,
// limit+4s) with a 503 whose detail says all of says.
func (ta *testAPI) wantQuick503(what string, took, limit time.Duration, st int, h map[string][]string, body []byte, says ...string) {
	ta.t.Helper()
	if st != 503 {
		ta.t.Fatalf("%s: %d %s, want 503", what, st, body)
	}
	p := ta.problem(h, body)
	if p.Type != ProblemTypePrefix+"unavailable" || h["Retry-After"] == nil {
		ta.t.Errorf("%s: type %s, Retry-After %q; want the unavailable problem and Retry-After", what, p.Type, h["Retry-After"])
	}
	for _, s := range says {
		if !strings.Contains(p.Detail, s) {
			ta.t.Errorf("%s: the detail %q does not say %q", what, p.Detail, s)
		}
	}
	if took < limit-100*time.Millisecond || took > limit+4*time.Second {
		ta.t.Errorf("%s: answered after %s, want about %s", what, took, limit)
	}
}

// hold begins a transaction on its own connection and runs stmts in it; the returned
// function ends it.
func (ta *testAPI) hold(stmts ...string) func() {
	ta.t.Helper()
	tx, err := ta.store.DB().Beginx()
	if err != nil {
		ta.t.Fatal(err)
	}
	for _, q := range stmts {
		if _, err := tx.Exec(q); err != nil {
			tx.Rollback()
			ta.t.Fatalf("%s: %v", q, err)
		}
	}
	return func() { tx.Rollback() }
}

// A delivery behind a contract's lock that another transaction holds is refused after the
// lock timeout, naming the contract.
func TestLockTimeoutAnswers503(t *testing.T) {
	t.Parallel()
	ta := newAPI(t)
	ta.srv.Client().Timeout = 20 * time.Second // a hang fails the test, not the run
	ta.contract("C1", "")
	ta.store.LockTimeout = time.Second
	release := ta.hold(`SELECT 1 FROM books WHERE code = 'C1' FOR UPDATE`)
	start := time.Now()
	st, h, body := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "lock-1", delivery)
	ta.wantQuick503("a delivery behind a held lock", time.Since(start), time.Second, st, h, body,
		"lock timeout", "contract C1 is busy", "nothing was written", "retry")
	release()
	if st, h, body := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "lock-1", delivery); st != 201 || h.Get("Idempotency-Replayed") != "" {
		t.Errorf("the same request once the lock is free: %d replayed %q %s, want a first 201", st, h.Get("Idempotency-Replayed"), body)
	}
	ta.clean()
}

// A write's statement that runs too long (here, a trigger that sleeps) is cancelled after the
// statement timeout.
func TestStatementTimeoutAnswers503(t *testing.T) {
	t.Parallel()
	ta := newAPI(t)
	ta.srv.Client().Timeout = 20 * time.Second // a hang fails the test, not the run
	ta.contract("C1", "")
	ta.store.StatementTimeout = time.Second
	for _, q := range []string{
		`CREATE FUNCTION test_stall() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(60); RETURN NEW; END $$`,
		`CREATE TRIGGER test_stall BEFORE INSERT ON entries FOR EACH ROW WHEN (NEW.idempotency_key = 'stall-1') EXECUTE FUNCTION test_stall()`,
	} {
		if _, err := ta.store.DB().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	start := time.Now()
	st, h, body := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "stall-1", delivery)
	ta.wantQuick503("a delivery whose statement stalls", time.Since(start), time.Second, st, h, body, "statement timeout", "nothing was written")
	if _, err := ta.store.DB().Exec(`DROP TRIGGER test_stall ON entries`); err != nil {
		t.Fatal(err)
	}
	if st, h, body := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "stall-1", delivery); st != 201 || h.Get("Idempotency-Replayed") != "" {
		t.Errorf("the same request without the stall: %d replayed %q %s, want a first 201", st, h.Get("Idempotency-Replayed"), body)
	}
	ta.clean()
}

// With the database's own limits off, the request timeout still ends a write and a read that
// wait on locks, and cancels their statements in the database: no backend is left waiting.
func TestRequestTimeoutCancelsTheStatement(t *testing.T) {
	t.Parallel()
	ta := newAPI(t)
	ta.srv.Client().Timeout = 20 * time.Second // a hang fails the test, not the run
	ta.contract("C1", "")
	ta.store.LockTimeout, ta.store.StatementTimeout = 0, 0
	ta.api.RequestTimeout = time.Second
	release := ta.hold(`SELECT 1 FROM books WHERE code = 'C1' FOR UPDATE`, `LOCK TABLE contracts IN ACCESS EXCLUSIVE MODE`)
	for _, r := range []struct{ method, path, key, body string }{
		{"POST", "/v1/contracts/C1/deliveries", "slow-1", delivery},
		{"GET", "/v1/contracts/C1", "", ""},
	} {
		start := time.Now()
		st, h, body := ta.do(r.method, r.path, "recorder", r.key, r.body)
		ta.wantQuick503(r.method+" "+r.path+" behind held locks", time.Since(start), time.Second, st, h, body,
			"took longer than the server's limit of 1s", "retry")
	}
	// The statements were cancelled, not left waiting behind the locks.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var waiting int
		if err := ta.store.DB().Get(&waiting, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil {
			t.Fatal(err)
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d statements still wait on the held locks after their requests timed out", waiting)
		}
		time.Sleep(50 * time.Millisecond)
	}
	release()
	if st, h, body := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "slow-1", delivery); st != 201 || h.Get("Idempotency-Replayed") != "" {
		t.Errorf("the same request once the locks are free: %d replayed %q %s, want a first 201", st, h.Get("Idempotency-Replayed"), body)
	}
	if st, _, body := ta.do("GET", "/v1/contracts/C1", "recorder", "", ""); st != 200 {
		t.Errorf("GET /v1/contracts/C1 once the locks are free: %d %s", st, body)
	}
	ta.clean()
}
