package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// served is `carbonledger serve` running in the test on a database: its address and its
// stderr, which holds the access log.
type served struct {
	base   string
	stderr *syncBuf
	stop   func() int
}

// serve starts `carbonledger serve` on c's database; stop shuts it down and returns its exit
// code.
func serve(t *testing.T, c cli) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	listening = func(a string) { addrs <- a }
	stderr := &syncBuf{}
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", c.url}, io.Discard, stderr)
	}()
	s := &served{stderr: stderr}
	select {
	case a := <-addrs:
		s.base = "http://" + a
	case code := <-exited:
		cancel()
		t.Fatalf("serve exited %d: %s", code, stderr.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	stopped := false
	s.stop = func() int {
		if stopped {
			return 0
		}
		stopped = true
		cancel()
		listening = func(string) {}
		return <-exited
	}
	t.Cleanup(func() { s.stop() })
	return s
}

// call sends a request with token (none when "") and returns the status and body.
func (s *served) call(t *testing.T, method, path, token, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// probeWriters records, for every statement that writes a table of the journal, who wrote
// it: a statement trigger (owned by the test's superuser, SECURITY INVOKER) on each table
// notes current_user.
func probeWriters(t *testing.T, c cli) {
	t.Helper()
	stmts := []string{
		`CREATE TABLE who_wrote (tbl text, op text, who text)`,
		`GRANT INSERT ON who_wrote TO PUBLIC`,
		`CREATE FUNCTION who_wrote() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN INSERT INTO who_wrote VALUES (TG_TABLE_NAME, TG_OP, current_user); RETURN NULL; END $$`,
	}
	// Balances, chain heads and rollups are moved by the journal's own SECURITY DEFINER
	// triggers as the owner: only what a statement of the program writes is probed.
	for tbl, ops := range map[string]string{
		"entries": "INSERT OR UPDATE OR DELETE", "postings": "INSERT OR UPDATE OR DELETE", "contracts": "INSERT OR UPDATE OR DELETE",
		"schedule_lines": "INSERT OR UPDATE OR DELETE", "serial_blocks": "INSERT OR UPDATE OR DELETE",
		"serial_events": "INSERT OR UPDATE OR DELETE", "api_responses": "INSERT OR UPDATE OR DELETE",
		"books": "INSERT", "accounts": "INSERT",
	} {
		stmts = append(stmts, fmt.Sprintf(`CREATE TRIGGER zz_who_wrote AFTER %s ON %s FOR EACH STATEMENT EXECUTE FUNCTION who_wrote()`, ops, tbl))
	}
	for _, q := range stmts {
		if _, err := c.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// The server and the CLI write every row of the journal as carbonledger_writer: contracts,
// every operation, corrections, imports, batches, audit statements. (Tokens are created and
// revoked by the owner: minting a token is no write the writer may make.)
func TestWritesRunAsTheWriterRole(t *testing.T) {
	c := newCLI(t)
	probeWriters(t, c)
	c.ok("contract", "add", "-f", "testdata/contract.json")
	c.ok("deliver", "--contract", "CLI-1", "--tonnes", "100", "--date", "2025-03-01", "--serials", "CAR-W:1-100")
	c.ok("retire", "--contract", "CLI-1", "--tonnes", "10", "--date", "2025-03-02", "--beneficiary", "B", "--reason", "R", "--serials", "CAR-W:1-10")
	c.ok("reverse", "--contract", "CLI-1", "--tonnes", "5", "--date", "2025-03-03", "--reason", "fire", "--serials", "CAR-W:11-15")
	c.ok("cancel", "--contract", "CLI-1", "--tonnes", "5", "--date", "2025-03-04", "--reason", "waived")
	c.ok("amend", "--contract", "CLI-1", "--tonnes", "1100", "--date", "2025-03-05", "--reason", "more")
	typo := entryID(t, c.ok("deliver", "--contract", "CLI-1", "--tonnes", "1", "--date", "2025-03-06"))
	c.ok("revert", typo, "--reason", "typo")
	file := filepath.Join(t.TempDir(), "ops.csv")
	os.WriteFile(file, []byte("op,contract,tonnes,date,serials\ndeliver,CLI-1,3,2025-03-07,CAR-W:200-202\ndeliver,CLI-1,2,2025-03-07,\n"), 0o644)
	c.ok("import", "--quiet", file)

	admin := strings.TrimSpace(c.ok("token", "create", "--name", "w-admin", "--role", "admin"))
	s := serve(t, c)
	doc := strings.Replace(mustRead(t, "testdata/contract.json"), `"CLI-1"`, `"CLI-2"`, 1)
	for _, r := range []struct{ path, key, body string }{
		{"/v1/contracts", "w-sign", doc},
		{"/v1/contracts/CLI-2/deliveries", "w-d1", `{"tonnes":"10","date":"2025-03-01","serials":"CAR-W2:1-10"}`},
		{"/v1/contracts/CLI-2/retirements", "w-r1", `{"tonnes":"4","date":"2025-03-02","beneficiary":"B","reason":"R","serials":"CAR-W2:1-4"}`},
		{"/v1/batches", "w-b1", `{"operations":[{"op":"deliver","contract":"CLI-2","tonnes":"1","date":"2025-03-03"}]}`},
		{"/v1/batches", "w-b2", `{"atomic":false,"operations":[{"op":"deliver","contract":"CLI-2","tonnes":"1","date":"2025-03-04"}]}`},
		{"/v1/audit/statements", "w-s1", ""},
	} {
		if st, body := s.call(t, "POST", r.path, admin, r.key, r.body); st != 201 && st != 200 {
			t.Fatalf("POST %s: %d %s", r.path, st, body)
		}
	}
	s.stop()

	rows, err := c.db.Query(`SELECT tbl, op, who, count(*) FROM who_wrote GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	tables := map[string]bool{}
	for rows.Next() {
		var tbl, op, who string
		var n int
		if err := rows.Scan(&tbl, &op, &who, &n); err != nil {
			t.Fatal(err)
		}
		tables[tbl] = true
		if who != "carbonledger_writer" {
			t.Errorf("%d %s statement(s) on %s ran as %s, want carbonledger_writer", n, op, tbl, who)
		}
	}
	for _, tbl := range []string{"entries", "postings", "contracts", "schedule_lines", "serial_blocks", "serial_events", "api_responses", "books", "accounts"} {
		if !tables[tbl] {
			t.Errorf("nothing wrote %s: the probe saw no write to check", tbl)
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Tokens are kept as hashes only, and no secret reaches a log: serve's log after requests
// that succeed, fail for a wrong, a revoked or a malformed token, are forbidden, or sign in
// to the dashboard holds neither a token nor its hash; neither does `token list`, nor the
// database.
func TestNoSecretInLogs(t *testing.T) {
	c := newCLI(t)
	c.ok("contract", "add", "-f", "testdata/contract.json")
	admin := strings.TrimSpace(c.ok("token", "create", "--name", "s-admin", "--role", "admin"))
	viewer := strings.TrimSpace(c.ok("token", "create", "--name", "s-viewer", "--role", "viewer"))
	revoked := strings.TrimSpace(c.ok("token", "create", "--name", "s-revoked", "--role", "recorder"))
	c.ok("token", "revoke", "s-revoked")
	secrets := []string{admin, viewer, revoked}
	// A wrong token that looks right, and one sent where a token is not taken.
	wrong := admin[:len(admin)-4] + "AAAA"
	if wrong == admin {
		wrong = admin[:len(admin)-4] + "BBBB"
	}
	secrets = append(secrets, wrong)

	s := serve(t, c)
	for _, r := range []struct {
		method, path, token, key, body string
		status                         int
	}{
		{"GET", "/v1/contracts/CLI-1", admin, "", "", 200},
		{"POST", "/v1/contracts/CLI-1/deliveries", admin, "n-1", `{"tonnes":"1","date":"2025-03-01"}`, 201},
		{"GET", "/v1/contracts", wrong, "", "", 401},
		{"GET", "/v1/contracts", revoked, "", "", 401},
		{"GET", "/v1/contracts", "Basic " + admin, "", "", 401},
		{"POST", "/v1/contracts/CLI-1/deliveries", viewer, "n-2", `{"tonnes":"1","date":"2025-03-01"}`, 403},
		{"GET", "/v1/contracts?token=" + url.QueryEscape(admin), "", "", "", 401},
		{"GET", "/v1/no-such-route/" + admin, admin, "", "", 404},
		{"POST", "/v1/contracts/CLI-1/deliveries", admin, "n-3", `{"tonnes":"1","date":"2025-03-01","note":"` + admin + `"}`, 201},
	} {
		if st, body := s.call(t, r.method, r.path, r.token, r.key, r.body); st != r.status {
			t.Errorf("%s %s: %d %s, want %d", r.method, r.path, st, body, r.status)
		}
	}
	// The dashboard's sign-in form takes the token in its body, right and wrong.
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tok := range []string{wrong, viewer} {
		resp, err := b.Get(s.base + "/login")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := csrfInput.FindStringSubmatch(string(page))
		if m == nil {
			t.Fatal("no CSRF field on the login page")
		}
		resp, err = b.PostForm(s.base+"/login", url.Values{"csrf": {m[1]}, "token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, ck := range resp.Cookies() {
			for _, sec := range secrets {
				if strings.Contains(ck.Value, sec) {
					t.Errorf("cookie %s holds a token", ck.Name)
				}
			}
		}
	}
	if code := s.stop(); code != 0 {
		t.Errorf("serve exited %d", code)
	}
	log := s.stderr.String()
	if strings.Count(log, `"msg":"request"`) < 12 || !strings.Contains(log, `"token":"s-admin"`) || !strings.Contains(log, `"status":401`) {
		t.Fatalf("the access log lacks the requests:\n%s", log)
	}
	tokenList := c.ok("token", "list") + c.ok("token", "list", "--format", "json")
	for _, sec := range secrets {
		sum := sha256.Sum256([]byte(sec))
		forms := map[string]string{
			"the token":               sec,
			"the token without clt_":  strings.TrimPrefix(sec, "clt_"),
			"its SHA-256 in hex":      hex.EncodeToString(sum[:]),
			"its SHA-256 in base64":   base64.StdEncoding.EncodeToString(sum[:]),
			"its SHA-256 as bytea":    `\\x` + hex.EncodeToString(sum[:]),
			"its SHA-256 URL-encoded": base64.RawURLEncoding.EncodeToString(sum[:]),
		}
		for what, form := range forms {
			if strings.Contains(log, form) {
				t.Errorf("the server's log holds %s:\n%s", what, log)
			}
			if strings.Contains(tokenList, form) {
				t.Errorf("token list shows %s", what)
			}
		}
		var n int
		if err := c.db.QueryRow(`SELECT count(*) FROM api_tokens t WHERE position($1 in t::text) > 0`, sec).Scan(&n); err != nil || n != 0 {
			t.Errorf("the token is stored in the clear (%d rows, %v)", n, err)
		}
	}
	if strings.Contains(log, "clt_") || strings.Contains(tokenList, "clt_") {
		t.Errorf("a token's prefix appears in the log or the token list")
	}
}
