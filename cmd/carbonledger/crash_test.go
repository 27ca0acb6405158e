package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/internal/pgdev"
	"github.com/carbonledger/carbonledger/internal/store"
)

// The tests of this file crash what the ledger runs on in the middle of a load of writes:
// `carbonledger serve` killed with SIGKILL, PostgreSQL stopped with an immediate shutdown.
// After each, what the clients were told is held against the journal: every write answered
// 2xx is there exactly once, none answered 4xx is, one that got no answer (or a 503) is there
// once or not at all, and a retry of every request with its Idempotency-Key answers what was
// recorded, writing nothing twice. The audit is clean.

// TestServeKilledMidLoad: SIGKILL of the server while eight clients post deliveries, then a
// new server on the same database.
func TestServeKilledMidLoad(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	token := strings.TrimSpace(c.ok("token", "create", "--name", "load", "--role", "admin"))
	gate := newCommitGate(t, c.url)
	// A lock timeout longer than the gate is ever closed: the COMMITs it holds wait on a lock.
	srv := startCrashServe(t, c.url, "--lock-timeout", "1m")
	codes := addCrashContracts(t, srv.base, token)

	ld := startCrashLoad(srv.base, token, codes, 8)
	ld.waitFor(t, "100 acknowledged writes", 30*time.Second, func() bool { return ld.acks.Load() >= 100 })
	// The kill lands while the database holds COMMITs it has not answered: the server sent
	// them, and will never send their answers.
	gate.close()
	gate.waitForCommits(2)
	srv.kill(t)
	reqs := ld.finish()
	gate.open()
	t.Logf("killed after %d requests: %s", len(reqs), crashTally(reqs))

	srv = startCrashServe(t, c.url, "--lock-timeout", "1s")
	if checkExactlyOnce(t, c.db, srv.base, token, codes, reqs) == 0 {
		t.Error("the kill found no request whose COMMIT the database had: the case this test is for was not played")
	}
	crashAudit(t, c.url)

	// The flags of the new server hold: a delivery that waits for a contract's lock, held
	// here, is refused after --lock-timeout with a 503 that names the contract.
	tx, err := c.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`SELECT 1 FROM books WHERE code = $1 FOR UPDATE`, codes[0]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := crashPost(crashClient, srv.base, token, "/v1/contracts/"+codes[0]+"/deliveries", "busy-1", `{"tonnes":"1","date":"2025-05-01"}`)
	took := time.Since(start)
	tx.Rollback()
	if r.status != 503 || !strings.Contains(string(r.answer), "contract "+codes[0]+" is busy") || took > 5*time.Second {
		t.Errorf("a delivery behind a held lock: %d after %s: %s; want 503 naming the busy contract after about 1 s", r.status, took, r.answer)
	}
	srv.stop(t)
}

// TestDatabaseCrashMidLoad: PostgreSQL stopped with an immediate shutdown (as a crash would
// stop it) while eight clients post deliveries, and started again a moment later. The cluster
// is the test's own: the one the other tests share is never stopped.
func TestDatabaseCrashMidLoad(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, url := crashableCluster(ctx, t)
	if _, err := store.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	if code := run(ctx, []string{"token", "create", "--name", "load", "--role", "admin", "--db", url}, &out, &errb); code != 0 {
		t.Fatalf("token create: %s", errb.String())
	}
	token := strings.TrimSpace(out.String())
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := startCrashServe(t, url)
	codes := addCrashContracts(t, srv.base, token)

	ld := startCrashLoad(srv.base, token, codes, 8)
	ld.waitFor(t, "40 acknowledged writes", 30*time.Second, func() bool { return ld.acks.Load() >= 40 })
	unavailable := ld.unavailable.Load()
	if err := pg.StopMode(ctx, "immediate"); err != nil {
		t.Fatal(err)
	}
	down := ld.count()
	// While it is down the server answers, and answers 503.
	ld.waitFor(t, "10 answers of 503 while the database is down", 20*time.Second, func() bool { return ld.unavailable.Load() >= unavailable+10 })
	r := crashGet(srv.base + "/readyz")
	if r.status != 503 || r.problemType() != "urn:carbonledger:problem:unavailable" {
		t.Errorf("GET /readyz while the database is down: %d %s, want the unavailable problem", r.status, r.answer)
	}
	acksDown := ld.acks.Load()
	if again, err := pg.URL(ctx, "crash"); err != nil {
		t.Fatal(err)
	} else if again != url {
		t.Fatalf("the cluster came back at another address: %s, was %s", again, url)
	}
	// It comes back by itself: writes are acknowledged again, and /readyz says ready.
	ld.waitFor(t, "10 writes acknowledged after the restart", 30*time.Second, func() bool { return ld.acks.Load() >= acksDown+10 })
	if r := crashGet(srv.base + "/readyz"); r.status != 200 {
		t.Errorf("GET /readyz after the restart: %d %s", r.status, r.answer)
	}
	reqs := ld.finish()
	t.Logf("%d requests before the crash, %d in all: %s", down, len(reqs), crashTally(reqs))
	if strings.Contains(srv.log.String(), `"status":500`) {
		t.Errorf("the server answered 500 during the crash:\n%s", crashLines(srv.log.String(), `"status":500`))
	}
	checkExactlyOnce(t, db, srv.base, token, codes, reqs)
	crashAudit(t, url)
	srv.stop(t)
}

// crashableCluster initialises and starts a private cluster in a directory of the test's
// own and returns the URL of a database on it, created as the CLI creates its own. The
// cluster is stopped and removed when the test ends.
func crashableCluster(ctx context.Context, t *testing.T) (*pgdev.Cluster, string) {
	t.Helper()
	parent, err := os.MkdirTemp("", "carbonledger-crash-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(parent, 0o755) // the postgres user runs the cluster when the tests run as root
	pg, err := pgdev.NewCluster(filepath.Join(parent, "pg"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		os.RemoveAll(parent)
	})
	url, err := pg.URL(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	// The development cluster commits asynchronously for speed, which lost 2 or 3 of the
	// writes acknowledged before an immediate shutdown; a ledger's database must not.
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sync string
	if err := db.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&sync); err != nil || sync != "on" {
		t.Fatalf("synchronous_commit is %q (%v) in a database of the private cluster, want on", sync, err)
	}
	return pg, url
}

// asBinary, set in a process's environment, makes this package's test binary run as
// carbonledger itself (main, with the arguments it was given): the tests of this file start
// and kill it without building the command (which took 20 s on a busy machine).
const asBinary = "CARBONLEDGER_TEST_AS_BINARY"

func init() {
	if os.Getenv(asBinary) == "1" {
		main()
	}
}

// selfAsCarbonledger returns a command that runs carbonledger with args, as a process of its own.
func selfAsCarbonledger(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), asBinary+"=1")
	return cmd
}

// commitGate holds the COMMITs of the deliveries the load writes while it is closed: a
// deferred trigger on entries takes a shared advisory lock, which the gate's connection
// holds exclusively while closed.
type commitGate struct {
	t    *testing.T
	conn *sql.Conn
}

const gateLock = 7263002

func newCommitGate(t *testing.T, url string) *commitGate {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	for _, q := range []string{
		`CREATE FUNCTION test_commit_gate() RETURNS trigger LANGUAGE plpgsql
		 AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(` + fmt.Sprint(gateLock) + `); RETURN NULL; END $$`,
		`CREATE CONSTRAINT TRIGGER test_commit_gate AFTER INSERT ON entries DEFERRABLE INITIALLY DEFERRED
		 FOR EACH ROW WHEN (NEW.idempotency_key LIKE 'crash-%') EXECUTE FUNCTION test_commit_gate()`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &commitGate{t: t, conn: conn}
}

func (g *commitGate) exec(q string) {
	g.t.Helper()
	if _, err := g.conn.ExecContext(context.Background(), q); err != nil {
		g.t.Fatalf("%s: %v", q, err)
	}
}

func (g *commitGate) close() { g.exec(fmt.Sprintf(`SELECT pg_advisory_lock(%d)`, gateLock)) }

// open lets the COMMITs through and waits until the killed server's transactions have all
// ended, committed or rolled back.
func (g *commitGate) open() {
	g.t.Helper()
	g.exec(fmt.Sprintf(`SELECT pg_advisory_unlock(%d)`, gateLock))
	deadline := time.Now().Add(10 * time.Second)
	for {
		var busy int
		if err := g.conn.QueryRowContext(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
			  AND (state = 'active' OR state LIKE 'idle in transaction%')`).Scan(&busy); err != nil {
			g.t.Fatal(err)
		}
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%d transactions of the killed server still run 10 s after it died", busy)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitForCommits waits until n COMMITs wait at the gate (one per contract at most: each
// holds its contract's lock), or at least one after 2 s.
func (g *commitGate) waitForCommits(n int) {
	g.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		var waiting int
		if err := g.conn.QueryRowContext(context.Background(), `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND objid = $1 AND objsubid = 1`, gateLock).Scan(&waiting); err != nil {
			g.t.Fatal(err)
		}
		if waiting >= n || waiting > 0 && time.Now().After(deadline) {
			return
		}
		if time.Now().After(deadline.Add(28 * time.Second)) {
			g.t.Fatal("no COMMIT reached the gate within 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// crashServer is `carbonledger serve` running as a process of its own, which a test may kill.
type crashServer struct {
	cmd    *exec.Cmd
	base   string
	log    *serverLog
	done   chan struct{} // closed when it has exited
	waited error
}

func startCrashServe(t *testing.T, db string, flags ...string) *crashServer {
	t.Helper()
	p := &crashServer{log: &serverLog{listening: make(chan string, 1)}, done: make(chan struct{})}
	p.cmd = selfAsCarbonledger(t, append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, flags...)...)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start carbonledger serve: %v", err)
	}
	go func() { p.waited = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	select {
	case p.base = <-p.log.listening:
	case <-p.done:
		t.Fatalf("carbonledger serve exited before it listened (%v):\n%s", p.waited, p.log.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("carbonledger serve did not say it listens within 30 s:\n%s", p.log.String())
	}
	return p
}

// kill sends SIGKILL: no shutdown, no request finished, no connection closed politely.
func (p *crashServer) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// stop sends SIGTERM and expects exit 0.
func (p *crashServer) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.waited != nil {
			t.Errorf("carbonledger serve exited with %v after SIGTERM, want 0", p.waited)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("carbonledger serve did not stop within 30 s of SIGTERM")
	}
}

// addCrashContracts adds the two contracts the load delivers under (1,000 t each, over 2025).
func addCrashContracts(t *testing.T, base, token string) []string {
	t.Helper()
	doc, err := os.ReadFile("testdata/contract.json")
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, code := range []string{"CRASH-1", "CRASH-2"} {
		body := strings.Replace(string(doc), `"CLI-1"`, `"`+code+`"`, 1)
		if r := crashPost(crashClient, base, token, "/v1/contracts", "sign-"+code, body); r.status != 201 {
			t.Fatalf("add contract %s: %d %s", code, r.status, r.answer)
		}
		codes = append(codes, code)
	}
	return codes
}

// crashReq is one write a client sent and what came of it.
type crashReq struct {
	key, path, body string
	expect          int // the status the request earns: 201, or 400 or 404 for the ones made to fail
	status          int // 0: no answer (the connection was cut or refused)
	answer          []byte
	contentType     string
	replayed        bool
	err             error
}

func (r *crashReq) problemType() string {
	var p struct{ Type string }
	json.Unmarshal(r.answer, &p)
	return p.Type
}

func (r *crashReq) entryID() string {
	var v struct{ Entry struct{ ID string } }
	json.Unmarshal(r.answer, &v)
	return v.Entry.ID
}

// crashClient is for the requests a test sends one at a time.
var crashClient = &http.Client{Timeout: 20 * time.Second}

func crashPost(client *http.Client, base, token, path, key, body string) *crashReq {
	r := &crashReq{key: key, path: path, body: body}
	req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
	if err != nil {
		r.err = err
		return r
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Content-Type", "application/json")
	r.send(crashClient, req)
	return r
}

func crashGet(url string) *crashReq {
	r := &crashReq{path: url}
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		r.err = err
		return r
	}
	r.send(crashClient, req)
	return r
}

func (r *crashReq) send(client *http.Client, req *http.Request) {
	resp, err := client.Do(req)
	if err != nil {
		r.err = err
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil { // the answer was cut short: as good as none
		r.err = err
		return
	}
	r.status, r.answer, r.contentType = resp.StatusCode, b, resp.Header.Get("Content-Type")
	r.replayed = resp.Header.Get("Idempotency-Replayed") == "true"
}

// crashLoad is clients posting deliveries, each request under a key of its own. Of every ten
// requests one names a contract that does not exist (404) and one is dated after the
// contract's term (400): refusals that ran a transaction of their own and must leave nothing.
type crashLoad struct {
	mu          sync.Mutex
	reqs        []*crashReq
	acks        atomic.Int64
	unavailable atomic.Int64
	stop        chan struct{}
	wg          sync.WaitGroup
}

func startCrashLoad(base, token string, codes []string, clients int) *crashLoad {
	ld := &crashLoad{stop: make(chan struct{})}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	for g := range clients {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-ld.stop:
					return
				default:
				}
				code, date, expect := codes[(g+i)%len(codes)], fmt.Sprintf("2025-%02d-%02d", 1+i%12, 1+g), 201
				switch i % 10 {
				case 3:
					code, expect = "NO-SUCH-CONTRACT", 404
				case 7:
					date, expect = "2026-01-15", 400
				}
				r := crashPost(client, base, token, "/v1/contracts/"+code+"/deliveries", fmt.Sprintf("crash-%d-%d", g, i),
					`{"tonnes":"0.010","date":"`+date+`"}`)
				r.expect = expect
				ld.mu.Lock()
				ld.reqs = append(ld.reqs, r)
				ld.mu.Unlock()
				switch {
				case r.status/100 == 2:
					ld.acks.Add(1)
				case r.status == 503:
					ld.unavailable.Add(1)
					time.Sleep(250 * time.Millisecond) // as a client honouring Retry-After would, only sooner
				case r.status == 0:
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	return ld
}

func (ld *crashLoad) count() int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return len(ld.reqs)
}

// waitFor waits until cond holds, failing the test after within.
func (ld *crashLoad) waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			ld.finish()
			t.Fatalf("no %s within %s (%s)", what, within, crashTally(ld.reqs))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// finish stops the clients and returns every request they sent.
func (ld *crashLoad) finish() []*crashReq {
	select {
	case <-ld.stop:
	default:
		close(ld.stop)
	}
	ld.wg.Wait()
	return ld.reqs
}

func crashTally(reqs []*crashReq) string {
	n := map[int]int{}
	for _, r := range reqs {
		n[r.status]++
	}
	return fmt.Sprintf("%d acknowledged, %d refused 4xx, %d answered 503, %d without an answer, %d other",
		n[201], n[400]+n[404], n[503], n[0], len(reqs)-n[201]-n[400]-n[404]-n[503]-n[0])
}

// checkExactlyOnce holds the journal against what the clients were told, then retries every
// request with its key against base and checks each answer and the journal again. It returns
// how many requests without an answer had been recorded.
func checkExactlyOnce(t *testing.T, db *sql.DB, base, token string, codes []string, reqs []*crashReq) int {
	t.Helper()
	recorded := func() map[string]string {
		rows, err := db.Query(`SELECT idempotency_key, id FROM entries WHERE idempotency_key LIKE 'crash-%'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		m := map[string]string{}
		for rows.Next() {
			var k, id string
			if err := rows.Scan(&k, &id); err != nil {
				t.Fatal(err)
			}
			if _, dup := m[k]; dup {
				t.Errorf("key %s holds two entries", k)
			}
			m[k] = id
		}
		return m
	}
	before := recorded()
	unanswered, recordedAnyway := 0, 0
	for _, r := range reqs {
		if _, present := before[r.key]; r.status == 0 || r.status == 503 {
			unanswered++
			if present {
				recordedAnyway++
			}
		}
	}
	t.Logf("%d of the %d requests without a 2xx or 4xx answer were recorded", recordedAnyway, unanswered)
	for _, r := range reqs {
		id, present := before[r.key]
		switch {
		case r.status != 0 && r.status != 503 && r.status != r.expect:
			t.Errorf("%s: answered %d, want %d: %s", r.key, r.status, r.expect, r.answer)
		case r.status == 201:
			if !present {
				t.Errorf("%s was acknowledged (entry %s) and is not in the journal", r.key, r.entryID())
			} else if id != r.entryID() {
				t.Errorf("%s was acknowledged as entry %s; the journal holds %s under its key", r.key, r.entryID(), id)
			}
		case r.status == 400 || r.status == 404:
			if present {
				t.Errorf("%s was refused with %d and is in the journal as %s", r.key, r.status, id)
			}
		case r.status == 503 || r.status == 0:
			if present && r.expect != 201 {
				t.Errorf("%s is in the journal as %s and should have been refused", r.key, id)
			}
			if r.status == 503 && (r.contentType != "application/problem+json" || r.problemType() != "urn:carbonledger:problem:unavailable") {
				t.Errorf("%s: a 503 that is not the unavailable problem: %s %s", r.key, r.contentType, r.answer)
			}
		}
	}

	// Every request again, with its key: the same answer for what was answered, and for
	// what was not, the entry recorded (a replay) or recorded now.
	client := &http.Client{Timeout: 20 * time.Second}
	var wg sync.WaitGroup
	work := make(chan *crashReq)
	var mu sync.Mutex
	want := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				again := crashPost(client, base, token, r.path, r.key, r.body)
				// A 503 (a contract busy past the lock timeout) is no answer: ask again, as
				// a client should.
				for tries := 0; again.status == 503 && tries < 50; tries++ {
					time.Sleep(100 * time.Millisecond)
					again = crashPost(client, base, token, r.path, r.key, r.body)
				}
				_, present := before[r.key]
				var problem string
				switch {
				case r.status == 201 && (again.status != 201 || !again.replayed || string(again.answer) != string(r.answer)):
					problem = fmt.Sprintf("acknowledged %s, retried: %d replayed %v %s", r.answer, again.status, again.replayed, again.answer)
				case (r.status == 400 || r.status == 404) && (again.status != r.status || string(again.answer) != string(r.answer)):
					problem = fmt.Sprintf("refused %d %s, retried: %d %s", r.status, r.answer, again.status, again.answer)
				case (r.status == 0 || r.status == 503) && (again.status != r.expect || again.replayed != present):
					problem = fmt.Sprintf("no answer (%d), present %v; retried: %d replayed %v %s", r.status, present, again.status, again.replayed, again.answer)
				case (r.status == 0 || r.status == 503) && present && again.entryID() != before[r.key]:
					problem = fmt.Sprintf("recorded as %s, the retry answers %s", before[r.key], again.answer)
				}
				mu.Lock()
				if problem != "" {
					t.Errorf("%s: %s", r.key, problem)
				}
				if again.status == 201 {
					want++
				}
				mu.Unlock()
			}
		}()
	}
	for _, r := range reqs {
		work <- r
	}
	close(work)
	wg.Wait()

	after := recorded()
	if len(after) != want {
		t.Errorf("%d keys recorded after the retries, want %d (one per request answered 201)", len(after), want)
	}
	for k, id := range before {
		if after[k] != id {
			t.Errorf("%s: entry %s before the retries, %s after", k, id, after[k])
		}
	}
	// Nothing twice under another key either: the contracts' deliveries are those entries,
	// 10 kg each.
	var n, kg int
	if err := db.QueryRow(`SELECT count(DISTINCT e.id), coalesce(sum(p.amount) FILTER (WHERE p.amount > 0) * 1000, 0)::bigint
		FROM entries e JOIN books b ON b.id = e.book_id JOIN postings p ON p.entry_id = e.id
		WHERE b.code = ANY($1) AND e.kind = 'deliver'`, "{"+strings.Join(codes, ",")+"}").Scan(&n, &kg); err != nil {
		t.Fatal(err)
	}
	if n != want || kg != 10*want {
		t.Errorf("the contracts hold %d deliveries of %d kg in all, want %d of %d kg", n, kg, want, 10*want)
	}
	return recordedAnyway
}

// crashAudit runs `carbonledger audit`, which exits 0 only when the books are sound.
func crashAudit(t *testing.T, db string) {
	t.Helper()
	if out, err := selfAsCarbonledger(t, "audit", "--db", db).CombinedOutput(); err != nil {
		t.Errorf("carbonledger audit: %v\n%s", err, out)
	}
}

func crashLines(s, sub string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
