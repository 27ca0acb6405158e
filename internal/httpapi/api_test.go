package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/internal/service"
	"github.com/carbonledger/carbonledger/internal/store"
)

const delivery = `{"tonnes":"10","date":"2025-03-01"}`

// counts is what the journal holds: entries and api_responses rows, to prove a refused
// request wrote nothing.
func (ta *testAPI) counts() (entries, kept int) {
	ta.t.Helper()
	db := ta.store.DB()
	if err := db.Get(&entries, `SELECT count(*) FROM entries`); err != nil {
		ta.t.Fatal(err)
	}
	if err := db.Get(&kept, `SELECT count(*) FROM api_responses`); err != nil {
		ta.t.Fatal(err)
	}
	return entries, kept
}

// clean fails the test unless the audit finds nothing.
func (ta *testAPI) clean() {
	ta.t.Helper()
	out, _, err := service.Audit(context.Background(), ta.store, nil, nil)
	if err != nil {
		ta.t.Fatal(err)
	}
	if !out.OK {
		ta.t.Fatalf("audit findings: %+v", out.Findings)
	}
}

// TestRolesAndScopes tries every kind of caller that must be refused on every kind of write
// and read, and checks each got its status and problem type and wrote nothing.
func TestRolesAndScopes(t *testing.T) {
	ta := newAPI(t)
	ta.contract("C1", "")
	if err := ta.store.RevokeToken(context.Background(), "viewer"); err != nil {
		t.Fatal(err)
	}
	revoked := ta.tokens["viewer"]
	ta.tokens["viewer"], _ = ta.store.CreateToken(context.Background(), "viewer2", "viewer", nil)
	beforeEntries, beforeKept := ta.counts()
	cases := []struct {
		name, method, path, token, body string
		status                          int
		kind                            string
	}{
		{"no token", "POST", "/v1/contracts/C1/deliveries", "", delivery, 401, "unauthorized"},
		{"unknown token", "POST", "/v1/contracts/C1/deliveries", "clt_not-a-token", delivery, 401, "unauthorized"},
		{"revoked token", "GET", "/v1/contracts/C1", revoked, "", 401, "unauthorized"},
		{"revoked token writing", "POST", "/v1/contracts/C1/deliveries", revoked, delivery, 401, "unauthorized"},
		{"viewer delivering", "POST", "/v1/contracts/C1/deliveries", "viewer", delivery, 403, "forbidden"},
		{"viewer reverting", "POST", "/v1/entries/00000000-0000-0000-0000-000000000000/revert", "viewer", `{"reason":"x"}`, 403, "forbidden"},
		{"viewer batching", "POST", "/v1/batches", "viewer", `{"operations":[{"op":"deliver","contract":"C1","tonnes":"1","date":"2025-03-01"}]}`, 403, "forbidden"},
		{"recorder adding a contract", "POST", "/v1/contracts", "recorder", `{"code":"C2"}`, 403, "forbidden"},
		{"recorder amending", "POST", "/v1/contracts/C1/amendments", "recorder", `{"tonnes":"900","date":"2025-03-01","reason":"x"}`, 403, "forbidden"},
		{"recorder amending in a batch", "POST", "/v1/batches", "recorder", `{"operations":[{"op":"amend","contract":"C1","tonnes":"900","date":"2025-03-01","reason":"x"}]}`, 403, "forbidden"},
		{"scoped writing outside", "POST", "/v1/contracts/C1/deliveries", "scoped", delivery, 403, "forbidden"},
		{"scoped batch outside", "POST", "/v1/batches", "scoped", `{"operations":[{"op":"deliver","contract":"C1","tonnes":"1","date":"2025-03-01"}]}`, 403, "forbidden"},
		{"scoped reading outside", "GET", "/v1/contracts/C1", "scoped", "", 403, "forbidden"},
		{"scoped entries outside", "GET", "/v1/contracts/C1/entries", "scoped", "", 403, "forbidden"},
		{"scoped serials outside", "GET", "/v1/contracts/C1/serials", "scoped", "", 403, "forbidden"},
		{"scoped term report outside", "GET", "/v1/reports/term?contract=C1", "scoped", "", 403, "forbidden"},
		{"scoped period report", "GET", "/v1/reports/period?year=2025", "scoped", "", 403, "forbidden"},
		{"scoped portfolio", "GET", "/v1/reports/portfolio", "scoped", "", 403, "forbidden"},
		{"scoped audit", "GET", "/v1/audit", "scoped", "", 403, "forbidden"},
		{"scoped statement", "POST", "/v1/audit/statements", "scoped", "", 403, "forbidden"},
		{"scoped export", "GET", "/v1/export?format=hledger", "scoped", "", 403, "forbidden"},
		{"scoped adding another contract", "POST", "/v1/contracts", "scoped", `{"code":"C3","buyer":"b"}`, 400, "invalid"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, h, body := ta.do(c.method, c.path, c.token, fmt.Sprintf("refused-%d", i), c.body)
			if st != c.status {
				t.Fatalf("%s %s: status %d, want %d: %s", c.method, c.path, st, c.status, body)
			}
			p := ta.problem(h, body)
			if p.Type != ProblemTypePrefix+c.kind || p.Status != st || p.Detail == "" {
				t.Errorf("problem %+v, want type %s and status %d with a detail", p, c.kind, st)
			}
			if strings.Contains(string(body), "clt_") {
				t.Errorf("the answer echoes a token: %s", body)
			}
		})
	}
	if e, k := ta.counts(); e != beforeEntries || k != beforeKept {
		t.Errorf("refused requests wrote: entries %d -> %d, kept responses %d -> %d", beforeEntries, e, beforeKept, k)
	}
	// What the scoped token may do, it does; its lists hold only its contract.
	if st, _, body := ta.do("POST", "/v1/contracts/SCOPED/deliveries", "scoped", "s1", delivery); st != 201 {
		t.Fatalf("scoped delivery on its contract: %d %s", st, body)
	}
	_, _, body := ta.do("GET", "/v1/contracts", "scoped", "", "")
	var list struct {
		Contracts []service.ContractJSON `json:"contracts"`
	}
	if err := json.Unmarshal(body, &list); err != nil || len(list.Contracts) != 1 || list.Contracts[0].Code != "SCOPED" {
		t.Errorf("scoped contract list = %s, want SCOPED alone", body)
	}
	if st, _, body := ta.do("GET", "/v1/reports/term?contract=SCOPED", "scoped", "", ""); st != 200 {
		t.Errorf("scoped term report of its contract: %d %s", st, body)
	}
	// The access log names the token and never holds a secret.
	log := ta.log.String()
	if !strings.Contains(log, `"token":"scoped"`) || strings.Contains(log, "clt_") {
		t.Errorf("access log should name tokens and hold no secret:\n%s", log)
	}
	ta.clean()
}

// TestIdempotency: a write without a key, a replay, the same key with another body, and a
// retry while the first request still runs.
func TestIdempotency(t *testing.T) {
	ta := newAPI(t)
	ta.contract("C1", "")
	st, h, body := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "", delivery)
	if p := ta.problem(h, body); st != 400 || p.Type != ProblemTypePrefix+"idempotency-key-needed" {
		t.Fatalf("no key: %d %s", st, body)
	}
	st1, h1, first := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "k1", delivery)
	st2, h2, again := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "k1", delivery)
	if st1 != 201 || st2 != 201 || string(first) != string(again) {
		t.Fatalf("replay: %d %s then %d %s, want the same 201 and body", st1, first, st2, again)
	}
	if h1.Get("Idempotency-Replayed") != "" || h2.Get("Idempotency-Replayed") != "true" {
		t.Errorf("Idempotency-Replayed: first %q, replay %q", h1.Get("Idempotency-Replayed"), h2.Get("Idempotency-Replayed"))
	}
	if h1.Get("Location") == "" || h1.Get("Location") != h2.Get("Location") {
		t.Errorf("Location: %q then %q", h1.Get("Location"), h2.Get("Location"))
	}
	st, h, body = ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "k1", `{"tonnes":"11","date":"2025-03-01"}`)
	if p := ta.problem(h, body); st != 422 || p.Type != ProblemTypePrefix+"idempotency-key-reused" || p.Field != "key" {
		t.Errorf("same key, other body: %d %s", st, body)
	}
	// Kept answers (a statement) replay byte for byte, and refuse another request too.
	st1, _, first = ta.do("POST", "/v1/audit/statements", "viewer", "st1", "")
	st2, h2, again = ta.do("POST", "/v1/audit/statements", "viewer", "st1", "")
	if st1 != 201 || st2 != 201 || string(first) != string(again) || h2.Get("Idempotency-Replayed") != "true" {
		t.Errorf("statement replay: %d then %d (%q), bodies equal %v", st1, st2, h2.Get("Idempotency-Replayed"), string(first) == string(again))
	}
	st, h, body = ta.do("POST", "/v1/batches", "recorder", "st1", `{"operations":[{"op":"deliver","contract":"C1","tonnes":"1","date":"2025-03-01"}]}`)
	if p := ta.problem(h, body); st != 422 || p.Type != ProblemTypePrefix+"idempotency-key-reused" {
		t.Errorf("statement key reused for a batch: %d %s", st, body)
	}

	// A retry while the first still runs: the first waits on the contract's lock, which
	// this test holds; the retry is told 409 at once; the first then completes.
	tx, err := ta.store.DB().Beginx()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`SELECT 1 FROM books WHERE code = 'C1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var slowStatus int
	wg.Add(1)
	go func() {
		defer wg.Done()
		slowStatus, _, _ = ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "k2", delivery)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, running := ta.api.inflight.Load("k2"); running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first request never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	st, h, body = ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "k2", delivery)
	if p := ta.problem(h, body); st != 409 || p.Type != ProblemTypePrefix+"request-in-progress" {
		t.Errorf("retry while running: %d %s", st, body)
	}
	tx.Rollback()
	wg.Wait()
	if slowStatus != 201 {
		t.Errorf("the first request ended %d, want 201", slowStatus)
	}
	if st, h, _ := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "k2", delivery); st != 201 || h.Get("Idempotency-Replayed") != "true" {
		t.Errorf("retry after the first answered: %d %q", st, h.Get("Idempotency-Replayed"))
	}
	ta.clean()
}

// TestBadInput: every kind of malformed request gets its problem, naming the field and the
// rule, and writes nothing.
func TestBadInput(t *testing.T) {
	ta := newAPI(t)
	ta.contract("C1", "")
	before, _ := ta.counts()
	big := `{"note":"` + strings.Repeat("x", 2<<20) + `"}`
	cases := []struct {
		name, method, path, body, ctype string
		status                          int
		kind, field                     string
	}{
		{"too many decimals", "POST", "/v1/contracts/C1/deliveries", `{"tonnes":"1.2345","date":"2025-03-01"}`, "", 400, "invalid", "tonnes"},
		{"tonnes as a JSON number", "POST", "/v1/contracts/C1/deliveries", `{"tonnes":10,"date":"2025-03-01"}`, "", 400, "invalid", "tonnes"},
		{"unknown field", "POST", "/v1/contracts/C1/deliveries", `{"tonnes":"1","date":"2025-03-01","colour":"red"}`, "", 400, "invalid", "colour"},
		{"contract in the body", "POST", "/v1/contracts/C1/deliveries", `{"contract":"C2","tonnes":"1","date":"2025-03-01"}`, "", 400, "invalid", "contract"},
		{"key in the body", "POST", "/v1/contracts/C1/deliveries", `{"key":"x","tonnes":"1","date":"2025-03-01"}`, "", 400, "invalid", "key"},
		{"missing date", "POST", "/v1/contracts/C1/deliveries", `{"tonnes":"1"}`, "", 400, "invalid", "date"},
		{"impossible date", "POST", "/v1/contracts/C1/deliveries", `{"tonnes":"1","date":"2025-02-30"}`, "", 400, "invalid", "date"},
		{"future date", "POST", "/v1/contracts/C1/deliveries", `{"tonnes":"1","date":"2030-01-01"}`, "", 400, "invalid", "date"},
		{"not JSON", "POST", "/v1/contracts/C1/deliveries", `tonnes=1`, "", 400, "invalid", "body"},
		{"empty body", "POST", "/v1/contracts/C1/deliveries", ``, "", 400, "invalid", ""},
		{"form body", "POST", "/v1/contracts/C1/deliveries", `{"tonnes":"1","date":"2025-03-01"}`, "application/x-www-form-urlencoded", 415, "unsupported-media-type", ""},
		{"huge body", "POST", "/v1/contracts/C1/deliveries", big, "", 413, "too-large", ""},
		{"over-delivery", "POST", "/v1/contracts/C1/deliveries", `{"tonnes":"5000","date":"2025-03-01"}`, "", 409, "insufficient", ""},
		{"retiring more than held", "POST", "/v1/contracts/C1/retirements", `{"tonnes":"5","date":"2025-03-01","beneficiary":"B","reason":"r"}`, "", 409, "insufficient", ""},
		{"unknown contract", "POST", "/v1/contracts/NOPE/deliveries", delivery, "", 404, "not-found", "contract"},
		{"unknown entry", "GET", "/v1/entries/00000000-0000-0000-0000-000000000000", "", "", 404, "not-found", "entry"},
		{"malformed entry id", "GET", "/v1/entries/nope", "", "", 400, "invalid", "entry"},
		{"unknown report", "GET", "/v1/reports/weekly", "", "", 400, "invalid", "report"},
		{"bad report parameter", "GET", "/v1/reports/term?as_of=yesterday", "", "", 400, "invalid", "as_of"},
		{"unknown report parameter", "GET", "/v1/reports/term?colour=red", "", "", 400, "invalid", "colour"},
		{"bad limit", "GET", "/v1/contracts?limit=5000", "", "", 400, "invalid", "limit"},
		{"forged cursor", "GET", "/v1/entries?after=Zm9yZ2Vk", "", "", 400, "invalid", "after"},
		{"export without a format", "GET", "/v1/export", "", "", 400, "invalid", "format"},
		{"unknown route", "GET", "/v1/nothing", "", "", 404, "not-found", ""},
		{"wrong method", "DELETE", "/v1/contracts/C1", "", "", 405, "method-not-allowed", ""},
		{"empty batch", "POST", "/v1/batches", `{"operations":[]}`, "", 400, "invalid", "operations"},
		{"batch with an unknown member", "POST", "/v1/batches", `{"ops":[]}`, "", 400, "invalid", "body"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, ta.srv.URL+c.path, strings.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer "+ta.tokens["admin"])
			req.Header.Set("Idempotency-Key", fmt.Sprintf("bad-%d", i))
			ct := c.ctype
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			resp, err := ta.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatalf("status %d, body not a problem: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != c.status || p.Type != ProblemTypePrefix+c.kind || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s %+v, want %d %s", resp.StatusCode, resp.Header.Get("Content-Type"), p, c.status, c.kind)
			}
			if c.field != "" && p.Field != c.field && !hasField(p, c.field) {
				t.Errorf("problem names field %q (%+v), want %q", p.Field, p.Errors, c.field)
			}
			if c.kind == "method-not-allowed" && resp.Header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
		})
	}
	if after, _ := ta.counts(); after != before {
		t.Errorf("bad input wrote %d entries", after-before)
	}
	ta.clean()
}

func hasField(p Problem, field string) bool {
	for _, e := range p.Errors {
		if e.Field == field {
			return true
		}
	}
	return false
}

// TestBatches: an atomic batch with a bad operation writes nothing and lists the refusals by
// index; a good one writes all, in order, and replays; a per-item batch writes what it can.
func TestBatches(t *testing.T) {
	ta := newAPI(t)
	ta.contract("C1", "")
	before, _ := ta.counts()
	bad := `{"operations":[
		{"op":"deliver","contract":"C1","tonnes":"10","date":"2025-03-01"},
		{"op":"retire","contract":"C1","tonnes":"50","date":"2025-03-02","beneficiary":"B","reason":"r"},
		{"op":"deliver","contract":"C1","tonnes":"x","date":"2025-03-01"}]}`
	st, h, body := ta.do("POST", "/v1/batches", "recorder", "b-bad", bad)
	p := ta.problem(h, body)
	if st != 400 || len(p.Errors) != 1 || *p.Errors[0].Index != 2 {
		t.Fatalf("batch with a malformed operation: %d %s", st, body)
	}
	// Well-formed but refused by the ledger: the retirement of more than the batch delivered.
	bad = strings.Replace(bad, `"tonnes":"x"`, `"tonnes":"1"`, 1)
	st, h, body = ta.do("POST", "/v1/batches", "recorder", "b-bad2", bad)
	p = ta.problem(h, body)
	if st != 409 || len(p.Errors) != 1 || *p.Errors[0].Index != 1 || p.Type != ProblemTypePrefix+"insufficient" {
		t.Fatalf("batch with an over-retirement: %d %s", st, body)
	}
	if after, kept := ta.counts(); after != before || kept != 0 {
		t.Fatalf("refused atomic batches wrote %d entries, kept %d answers", after-before, kept)
	}
	// The retirement uses what the delivery before it in the same batch delivered.
	good := `{"operations":[
		{"op":"deliver","contract":"C1","tonnes":"10","date":"2025-03-01"},
		{"op":"retire","contract":"C1","tonnes":"4","date":"2025-03-02","beneficiary":"B","reason":"r"},
		{"op":"deliver","contract":"C1","tonnes":"1","date":"2025-03-03","key":"own-key"}]}`
	st, _, first := ta.do("POST", "/v1/batches", "recorder", "b-good", good)
	var res BatchJSON
	if err := json.Unmarshal(first, &res); err != nil || st != 201 || len(res.Results) != 3 || !res.Atomic {
		t.Fatalf("good batch: %d %s", st, first)
	}
	for i, r := range res.Results {
		if r.Status != 201 || r.Entry == nil || r.Index != i {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if res.Results[0].Entry.Key != "b-good#0" || res.Results[2].Entry.Key != "own-key" {
		t.Errorf("keys %q and %q, want b-good#0 and own-key", res.Results[0].Entry.Key, res.Results[2].Entry.Key)
	}
	st, h, again := ta.do("POST", "/v1/batches", "recorder", "b-good", good)
	if st != 201 || string(again) != string(first) || h.Get("Idempotency-Replayed") != "true" {
		t.Errorf("batch replay: %d %q, same body %v", st, h.Get("Idempotency-Replayed"), string(again) == string(first))
	}
	// One by one: the good operations are written, the bad one answered with its problem.
	mixed := `{"atomic":false,"operations":[
		{"op":"deliver","contract":"C1","tonnes":"2","date":"2025-03-04"},
		{"op":"retire","contract":"C1","tonnes":"500","date":"2025-03-05","beneficiary":"B","reason":"r"},
		{"op":"deliver","contract":"NOPE","tonnes":"1","date":"2025-03-04"}]}`
	st, _, body = ta.do("POST", "/v1/batches", "recorder", "b-mixed", mixed)
	res = BatchJSON{}
	if err := json.Unmarshal(body, &res); err != nil || st != 200 || res.Atomic {
		t.Fatalf("per-item batch: %d %s", st, body)
	}
	want := []int{201, 409, 404}
	for i, r := range res.Results {
		if r.Status != want[i] || (r.Status == 201) != (r.Entry != nil) || (r.Status != 201) != (r.Problem != nil) {
			t.Errorf("per-item result %d: %+v, want status %d", i, r, want[i])
		}
	}
	c, _ := ta.store.Contract(context.Background(), "C1")
	if got := c.Position.Delivered.String(); got != "13.000" {
		t.Errorf("delivered %s after the batches, want 13.000 (10 + 1 + 2)", got)
	}
	ta.clean()
}

// TestFeedStableUnderWrites pages through the whole journal while other clients write, and
// checks that every entry is seen exactly once.
func TestFeedStableUnderWrites(t *testing.T) {
	ta := newAPI(t)
	codes := []string{"A", "B", "C", "D"}
	for _, c := range codes {
		ta.contract(c, "")
	}
	seen := map[string]int{}
	after := ""
	write := func(round int) {
		var wg sync.WaitGroup
		for i, c := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, _, body := ta.do("POST", "/v1/contracts/"+c+"/deliveries", "recorder", fmt.Sprintf("feed-%d-%d", round, i), `{"tonnes":"1","date":"2025-03-01"}`)
				if st != 201 {
					t.Errorf("delivery: %d %s", st, body)
				}
			}()
		}
		wg.Wait()
	}
	for round := 0; ; round++ {
		if round < 12 {
			write(round)
		}
		st, _, body := ta.do("GET", "/v1/entries?limit=3&after="+after, "viewer", "", "")
		var page struct {
			Entries []service.EntryJSON `json:"entries"`
			Page
		}
		if err := json.Unmarshal(body, &page); err != nil || st != 200 {
			t.Fatalf("feed: %d %s", st, body)
		}
		for _, e := range page.Entries {
			seen[e.ID]++
		}
		after = page.Next
		if !page.HasMore && round >= 12 {
			break
		}
		if round > 200 {
			t.Fatal("the feed never ended")
		}
	}
	var all []string
	if err := ta.store.DB().Select(&all, `SELECT id FROM entries`); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(all) {
		t.Errorf("the feed returned %d entries, the journal holds %d", len(seen), len(all))
	}
	for _, id := range all {
		if seen[id] != 1 {
			t.Errorf("entry %s seen %d times", id, seen[id])
		}
	}
	// A contract's own entries page by seq.
	var got []int64
	after = ""
	for {
		_, _, body := ta.do("GET", "/v1/contracts/A/entries?limit=5&after="+after, "viewer", "", "")
		var page struct {
			Entries []service.EntryJSON `json:"entries"`
			Page
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			got = append(got, e.Seq)
		}
		after = page.Next
		if !page.HasMore {
			break
		}
	}
	if len(got) != 13 || got[0] != 1 || got[12] != 13 {
		t.Errorf("contract A's entries paged as seqs %v, want 1..13", got)
	}
}

// TestReadsMatchTheCLIForms: a contract over the API is the CLI's contract show --format
// json; reports and exports come in each format with its content type.
func TestReadsMatchTheCLIForms(t *testing.T) {
	ta := newAPI(t)
	ta.contract("C1", "")
	ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "d1", `{"tonnes":"10","date":"2025-03-01","serials":"PURO:1-10"}`)
	st, _, body := ta.do("GET", "/v1/contracts/C1", "viewer", "", "")
	cs, err := ta.store.Contract(context.Background(), "C1")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(service.ContractView(cs))
	if st != 200 || strings.TrimSpace(string(body)) != string(want) {
		t.Errorf("GET /v1/contracts/C1 = %d %s\nwant %s", st, body, want)
	}
	for _, c := range []struct{ path, ctype, has string }{
		{"/v1/reports/term?as_of=2025-12-31", "application/json", `"delivered"`},
		{"/v1/reports/term?as_of=2025-12-31&format=csv", "text/csv; charset=utf-8", "C1,year,1"},
		{"/v1/reports/period?year=2025&by=method&format=html", "text/html; charset=utf-8", "<svg"},
		{"/v1/reports/portfolio", "application/json", `"contracts"`},
		{"/v1/export?format=hledger", "text/plain; charset=utf-8", "contract:C1"},
		{"/v1/export?format=csv", "text/csv; charset=utf-8", "op,contract"},
		{"/v1/contracts/C1/serials", "application/json", `"PURO"`},
	} {
		st, h, body := ta.do("GET", c.path, "viewer", "", "")
		if st != 200 || h.Get("Content-Type") != c.ctype || !strings.Contains(string(body), c.has) {
			t.Errorf("GET %s: %d %s, want 200 %s holding %q:\n%.300s", c.path, st, h.Get("Content-Type"), c.ctype, c.has, body)
		}
	}
}

// TestUnavailable: with the database gone, readyz and every route answer 503 problems, and
// healthz still answers.
func TestUnavailable(t *testing.T) {
	ta := newAPI(t)
	ta.store.DB().Close()
	if st, _, _ := ta.do("GET", "/healthz", "", "", ""); st != 200 {
		t.Errorf("healthz = %d", st)
	}
	for _, path := range []string{"/readyz", "/v1/contracts"} {
		st, h, body := ta.do("GET", path, "viewer", "", "")
		if p := ta.problem(h, body); st != 503 || p.Type != ProblemTypePrefix+"unavailable" {
			t.Errorf("%s with the database closed: %d %s", path, st, body)
		}
	}
	_ = store.Roles
}

// TestRecordedBy: each entry records the token that wrote it, sealed by its hash, and the
// audit counts the entries by who wrote them.
func TestRecordedBy(t *testing.T) {
	ta := newAPI(t)
	ta.contract("C1", "")
	_, _, body := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "who-1", delivery)
	var res OperationJSON
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if got := res.Entry.Metadata["recorded_by"]; got != "token:recorder" {
		t.Errorf("recorded_by %q, want token:recorder", got)
	}
	e, err := ta.store.Entry(context.Background(), res.Entry.ID)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := e.ComputeHash(); err != nil || !bytes.Equal(h, e.Hash) {
		t.Errorf("the hash does not verify with recorded_by in it: %v", err)
	}
	e.Metadata["recorded_by"] = "token:someone-else"
	if h, _ := e.ComputeHash(); bytes.Equal(h, e.Hash) {
		t.Error("the hash still verifies after recorded_by was changed: it does not seal it")
	}
	_, _, body = ta.do("GET", "/v1/audit", "viewer", "", "")
	var audit service.AuditJSON
	if err := json.Unmarshal(body, &audit); err != nil {
		t.Fatal(err)
	}
	// The two contracts' sign entries by the admin token, the delivery by the recorder.
	if audit.RecordedBy["token:admin"] != 2 || audit.RecordedBy["token:recorder"] != 1 || len(audit.RecordedBy) != 2 {
		t.Errorf("audit recorded_by = %v", audit.RecordedBy)
	}
}

// TestKeysAcrossKinds: one Idempotency-Key names one request, whichever kind of answer it
// got; a replay is authorised as the first request was; the key's length is the journal's.
func TestKeysAcrossKinds(t *testing.T) {
	ta := newAPI(t)
	ta.contract("C1", "")
	if st, _, body := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "shared-1", delivery); st != 201 {
		t.Fatalf("delivery: %d %s", st, body)
	}
	st, h, body := ta.do("POST", "/v1/audit/statements", "viewer", "shared-1", "{ }")
	if p := ta.problem(h, body); st != 422 || p.Type != ProblemTypePrefix+"idempotency-key-reused" {
		t.Errorf("a delivery's key reused for a statement: %d %s", st, body)
	}
	if st, _, body := ta.do("POST", "/v1/audit/statements", "viewer", "shared-2", "{ }"); st != 201 {
		t.Fatalf("statement with an empty object body: %d %s", st, body)
	}
	for path, req := range map[string]string{"/v1/contracts/C1/deliveries": delivery, "/v1/contracts": contractDoc(t, "C9", "")} {
		st, h, body = ta.do("POST", path, "admin", "shared-2", req)
		if p := ta.problem(h, body); st != 422 || p.Type != ProblemTypePrefix+"idempotency-key-reused" {
			t.Errorf("a statement's key reused on %s: %d %s", path, st, body)
		}
	}
	// A batch on C1 by the recorder, then the same key and body from the token limited to
	// SCOPED: refused, not replayed.
	batch := `{"operations":[{"op":"deliver","contract":"C1","tonnes":"1","date":"2025-03-01"}]}`
	if st, _, body := ta.do("POST", "/v1/batches", "recorder", "b-1", batch); st != 201 {
		t.Fatalf("batch: %d %s", st, body)
	}
	if st, _, body := ta.do("POST", "/v1/batches", "scoped", "b-1", batch); st != 403 {
		t.Errorf("another token's batch replayed by a token outside its contract: %d %s", st, body)
	}
	long := strings.Repeat("k", 201)
	if st, _, _ := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", long, delivery); st != 400 {
		t.Errorf("a 201-byte key: %d, want 400", st)
	}
	if st, _, body := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", long[:200], delivery); st != 201 {
		t.Errorf("a 200-byte key: %d %s, want 201", st, body)
	}
	if st, _, _ := ta.do("POST", "/v1/batches", "recorder", long[:197], batch); st != 400 {
		t.Errorf("a batch key that leaves no room for #index: %d, want 400", st)
	}
	// A cursor of one list is refused by another.
	_, _, body = ta.do("GET", "/v1/contracts/C1/entries?limit=1", "viewer", "", "")
	var page struct{ Next string }
	json.Unmarshal(body, &page)
	if st, _, _ := ta.do("GET", "/v1/contracts?after="+page.Next, "viewer", "", ""); st != 400 {
		t.Errorf("an entries cursor on the contract list: %d, want 400", st)
	}
	if st, h, _ := ta.do("GET", "/v1/contracts", "", "", ""); st != 401 || h.Get("WWW-Authenticate") == "" {
		t.Errorf("401 without WWW-Authenticate: %d %q", st, h.Get("WWW-Authenticate"))
	}
	ta.clean()
}

// A write under a contract may take its token from the tokens the server keeps; its own
// transaction then checks the token again, so a token revoked by another process (here by
// the store directly, which the server does not hear of) is refused by every write after the
// revocation, on the group path and on the path of an operation written on its own, replays
// included, and nothing is written.
func TestKeptTokenRevokedElsewhere(t *testing.T) {
	ta := newAPI(t)
	ta.contract("C1", "")
	if st, _, body := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "kept-1", delivery); st != 201 {
		t.Fatalf("delivery: %d %s", st, body)
	}
	kept := 0
	ta.api.tokens.Range(func(_, _ any) bool { kept++; return true })
	if kept == 0 {
		t.Fatal("the server kept no token after a write")
	}
	if _, err := ta.store.DB().Exec(`UPDATE api_tokens SET revoked_at = now() WHERE name = 'recorder'`); err != nil {
		t.Fatal(err)
	}
	beforeEntries, beforeKept := ta.counts()
	for _, c := range []struct{ what, path, key, body string }{
		{"a delivery", "/v1/contracts/C1/deliveries", "kept-2", delivery},
		{"a replay of the first delivery", "/v1/contracts/C1/deliveries", "kept-1", delivery},
		{"a cancellation (written on its own)", "/v1/contracts/C1/cancellations", "kept-3", `{"tonnes":"1","date":"2025-03-01","reason":"x"}`},
	} {
		// the first refusal drops the kept token; put it back, so each case takes it from there
		ta.api.tokens.Store(sha256.Sum256([]byte(ta.tokens["recorder"])), mustToken(t, ta, "recorder"))
		st, h, body := ta.do("POST", c.path, "recorder", c.key, c.body)
		if st != 401 || ta.problem(h, body).Type != ProblemTypePrefix+"unauthorized" {
			t.Errorf("%s with the revoked token: %d %s, want 401 unauthorized", c.what, st, body)
		}
	}
	if st, _, body := ta.do("GET", "/v1/contracts/C1", "recorder", "", ""); st != 401 {
		t.Errorf("a read with the revoked token: %d %s, want 401", st, body)
	}
	if e, k := ta.counts(); e != beforeEntries || k != beforeKept {
		t.Errorf("the revoked token wrote: entries %d -> %d, kept responses %d -> %d", beforeEntries, e, beforeKept, k)
	}
}

// mustToken is the token name as the store has it now, revoked or not, with its revocation
// cleared: the token as a server that looked it up before the revocation keeps it.
func mustToken(t *testing.T, ta *testAPI, name string) store.Token {
	t.Helper()
	tok, err := ta.store.TokenByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	tok.RevokedAt = nil
	return tok
}
