package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/internal/pgdev"
	"github.com/carbonledger/carbonledger/internal/store"
)

// replPair starts a primary of the test's own (never the private cluster other tests share),
// migrated, with a hot standby streaming from it by pg_basebackup, and returns the database
// URLs of both. With sync the standby is synchronous and the primary commits with
// synchronous_commit on: a commit returns only once the standby has flushed it.
func replPair(t *testing.T, sync bool) (primary, standby *pgdev.Cluster, pURL, sURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base, err := os.MkdirTemp("", "carbonledger-repl-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o755) // the postgres user runs the clusters when the test runs as root
	primary, err = pgdev.NewCluster(filepath.Join(base, "primary"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range []*pgdev.Cluster{standby, primary} {
			if c != nil {
				c.StopMode(context.Background(), "immediate")
			}
		}
		os.RemoveAll(base)
	})
	if _, err := primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	admin, err := primary.AdminURL("postgres")
	if err != nil {
		t.Fatal(err)
	}
	replExec(t, admin, `CREATE DATABASE ledger`, `ALTER SYSTEM SET synchronous_commit = on`, `SELECT pg_reload_conf()`)
	if pURL, err = primary.AdminURL("ledger"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(ctx, pURL); err != nil {
		t.Fatal(err)
	}
	if standby, err = primary.Standby(ctx, filepath.Join(base, "standby"), "standby1"); err != nil {
		t.Fatal(err)
	}
	if sURL, err = standby.AdminURL("ledger"); err != nil {
		t.Fatal(err)
	}
	if sync {
		replExec(t, admin, `ALTER SYSTEM SET synchronous_standby_names = 'standby1'`, `SELECT pg_reload_conf()`)
		replWait(t, admin, `SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE application_name = 'standby1' AND sync_state = 'sync')`)
	}
	return primary, standby, pURL, sURL
}

func replExec(t *testing.T, url string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// replWait waits until the query answers true.
func replWait(t *testing.T, url, q string, args ...any) {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(time.Minute); ; {
		var ok bool
		err := db.QueryRow(q, args...).Scan(&ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s: %v", q, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replCaughtUp waits until the standby has replayed everything the primary has written.
func replCaughtUp(t *testing.T, pURL, sURL string) {
	t.Helper()
	db, err := sql.Open("postgres", pURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var lsn string
	if err := db.QueryRow(`SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	replWait(t, sURL, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn)
}

// replAudit runs `carbonledger audit --format json` against url.
func replAudit(t *testing.T, url string) map[string]any {
	t.Helper()
	code, out, errOut := recRun(t, url, "audit", "--format", "json")
	var a map[string]any
	if err := json.Unmarshal([]byte(out), &a); err != nil || code != 0 {
		t.Fatalf("audit --db %s: exit %d: %v\n%s\n%s", url, code, err, out, errOut)
	}
	return a
}

// replServe runs `carbonledger serve` with args until the test ends, and returns its base URL.
func replServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	listening = func(a string) { addrs <- a }
	stderr := &syncBuf{}
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), io.Discard, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		listening = func(string) {}
	})
	select {
	case a := <-addrs:
		return "http://" + a
	case code := <-exited:
		t.Fatalf("serve exited %d: %s", code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	return ""
}

// replCall makes one API request; a transport error is status 0.
func replCall(method, url, token, key, body string) (int, []byte) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	client := http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestReadReplica: the reports, the audit and the dashboard can read from a hot standby.
// An audit of the standby, caught up, gives the primary's digest; `serve --read-db` answers
// its reports and audit from the standby (they fail while the standby is down, while writes
// go on on the primary, and come back by themselves when it is up again).
func TestReadReplica(t *testing.T) {
	_, standby, pURL, sURL := replPair(t, false)
	recOK(t, pURL, "contract", "add", "-f", "testdata/contract.json")
	for i := 1; i <= 20; i++ {
		recOK(t, pURL, "deliver", "--contract", "CLI-1", "--tonnes", "1.5", "--date", "2025-03-01", "--key", fmt.Sprintf("r-%d", i))
	}
	recOK(t, pURL, "retire", "--contract", "CLI-1", "--tonnes", "10", "--date", "2025-03-02", "--beneficiary", "Acme", "--reason", "claim")
	replCaughtUp(t, pURL, sURL)
	pa, sa := replAudit(t, pURL), replAudit(t, sURL)
	if pa["digest"] == nil || pa["digest"] != sa["digest"] || pa["entries"] != sa["entries"] || pa["ok"] != true || sa["ok"] != true {
		t.Fatalf("audit of the primary and of the standby at the same heads differ:\n%v\n%v", pa, sa)
	}

	// the CLI's read commands run on the standby as they are
	if out := recOK(t, sURL, "report", "term", "--contract", "CLI-1", "--format", "json"); !strings.Contains(out, "CLI-1") {
		t.Errorf("report term on the standby:\n%s", out)
	}
	if p, s := recOK(t, pURL, "export", "--format", "csv"), recOK(t, sURL, "export", "--format", "csv"); p != s {
		t.Errorf("export of the standby differs from the primary's")
	}
	if code, out, errOut := recRun(t, sURL, "deliver", "--contract", "CLI-1", "--tonnes", "1", "--date", "2025-03-01"); code == 0 {
		t.Errorf("a delivery on the standby was accepted:\n%s", out)
	} else if !strings.Contains(errOut, "during recovery") {
		t.Errorf("a delivery on the standby: exit %d, stderr %q; want it refused: the standby is in recovery", code, errOut)
	}

	token := strings.TrimSpace(recOK(t, pURL, "token", "create", "--name", "ops", "--role", "admin"))
	base := replServe(t, "--db", pURL, "--read-db", sURL)
	replCaughtUp(t, pURL, sURL) // the token, for nothing: tokens are read on the primary
	st, body := replCall("GET", base+"/v1/audit", token, "", "")
	var got map[string]any
	if st != 200 || json.Unmarshal(body, &got) != nil || got["digest"] != pa["digest"] {
		t.Fatalf("GET /v1/audit from the standby: %d %s; want the digest %v", st, body, pa["digest"])
	}
	if st, body := replCall("GET", base+"/v1/reports/term?contract=CLI-1&format=json", token, "", ""); st != 200 {
		t.Fatalf("GET term report: %d %s", st, body)
	}

	// the standby down: its reads fail, writes go on; up again on its port: the server reads
	// from it again by itself
	port, err := standby.Port()
	if err != nil {
		t.Fatal(err)
	}
	if err := standby.StopMode(context.Background(), "fast"); err != nil {
		t.Fatal(err)
	}
	if st, body := replCall("GET", base+"/v1/audit", token, "", ""); st < 500 {
		t.Errorf("GET /v1/audit with the standby down: %d %s; want it to fail", st, body)
	}
	if st, body := replCall("POST", base+"/v1/contracts/CLI-1/deliveries", token, "while-down", `{"tonnes":"1","date":"2025-03-03"}`); st != 201 {
		t.Errorf("a delivery with the standby down: %d %s", st, body)
	}
	if err := standby.StartOn(context.Background(), port); err != nil {
		t.Fatal(err)
	}
	replCaughtUp(t, pURL, sURL)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, body := replCall("GET", base+"/v1/audit", token, "", "")
		if st == 200 {
			var a2 map[string]any
			if json.Unmarshal(body, &a2) != nil || a2["ok"] != true || a2["digest"] == pa["digest"] {
				t.Errorf("the standby's audit after the delivery written while it was down: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not read from the standby again within 30 s: %d %s", st, body)
		}
	}
}

// TestFailover: a primary with a synchronous standby, `serve` given both hosts (a multi-host
// URL with target_session_attrs=read-write), clients posting deliveries; the primary is killed
// with SIGKILL mid-load and the standby promoted. Clients retry with their Idempotency-Keys
// until they are answered. Every delivery acknowledged before or after the failover is on the
// new primary exactly once, the chains verify (the audit is clean), and the server writes to
// the new primary by itself.
func TestFailover(t *testing.T) {
	primary, standby, pURL, sURL := replPair(t, true)
	recOK(t, pURL, "contract", "add", "-f", "testdata/contract.json")
	token := strings.TrimSpace(recOK(t, pURL, "token", "create", "--name", "ops", "--role", "recorder"))

	pu, _ := url.Parse(pURL)
	su, _ := url.Parse(sURL)
	both := *pu
	both.Host = pu.Host + "," + su.Host
	q := both.Query()
	q.Set("target_session_attrs", "read-write")
	both.RawQuery = q.Encode()
	base := replServe(t, "--db", both.String())

	const clients, each = 8, 25
	var acked sync.Map // key -> entry id of its 201
	var sent, beforeKill, failed atomic.Int64
	killAt := int64(clients * each / 3)
	killed := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	deadline := time.Now().Add(90 * time.Second)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				key := fmt.Sprintf("fo-%d-%d", c, i)
				for {
					st, body := replCall("POST", base+"/v1/contracts/CLI-1/deliveries", token, key, `{"tonnes":"1","date":"2025-03-01"}`)
					if st == 201 {
						acked.Store(key, string(body))
						if n := sent.Add(1); n == killAt {
							once.Do(func() { close(killed) })
						}
						select {
						case <-killed:
						default:
							beforeKill.Add(1)
						}
						break
					}
					failed.Add(1)
					if st >= 400 && st < 500 && st != 409 {
						t.Errorf("%s: %d %s", key, st, body)
						return
					}
					if time.Now().After(deadline) {
						t.Errorf("%s: not answered within the deadline: %d %s", key, st, body)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	<-killed
	if err := primary.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // writes in flight fail; clients retry
	if err := standby.Promote(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	db, err := sql.Open("postgres", sURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	acked.Range(func(k, _ any) bool {
		n++
		var count int
		if err := db.QueryRow(`SELECT count(*) FROM entries WHERE idempotency_key = $1`, k).Scan(&count); err != nil || count != 1 {
			t.Errorf("acknowledged delivery %s: %d entries on the new primary (%v), want 1", k, count, err)
		}
		return true
	})
	var total int
	if err := db.QueryRow(`SELECT count(*) FROM entries WHERE kind = 'deliver'`).Scan(&total); err != nil || total != clients*each || n != clients*each {
		t.Errorf("deliveries on the new primary: %d (%v); acknowledged %d; want %d", total, err, n, clients*each)
	}
	if beforeKill.Load() < killAt-int64(clients) {
		t.Errorf("only %d deliveries acknowledged before the kill", beforeKill.Load())
	}
	if a := replAudit(t, sURL); a["ok"] != true {
		t.Errorf("audit of the new primary: %v", a)
	}
	t.Logf("%d deliveries acknowledged before the kill, %d in all; %d attempts failed during the failover and were retried", beforeKill.Load(), n, failed.Load())
	if failed.Load() == 0 {
		t.Error("no request failed: the primary was not killed mid-load")
	}
}
