package httpapi

// Thirty-two HTTP clients at once against the same contracts and serials: over-delivery,
// over-retirement, double retirement of serials, one request sent by several clients under
// one Idempotency-Key, and batches that share operations or over-deliver together. Every
// answer must be the documented one (201, or the problem type and status of its refusal);
// every recorded request replayed afterwards must answer as it first did, byte for byte;
// the positions the API reports must equal a recount of the raw rows (internal/recount) and
// the test's own sum of what was answered 201, to the kilogram; and the audit is clean.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/carbonledger/carbonledger/internal/recount"
	"github.com/carbonledger/carbonledger/internal/service"
)

// answer is one HTTP exchange of a concurrent client.
type answer struct {
	method, path, key, body string
	status                  int
	header                  http.Header
	resp                    []byte
	err                     error
}

// send is ta.do for any goroutine: it reports a failure to connect instead of stopping the
// test.
func (ta *testAPI) send(method, path, token, key, body string) answer {
	a := answer{method: method, path: path, key: key, body: body}
	req, err := http.NewRequest(method, ta.srv.URL+path, strings.NewReader(body))
	if err != nil {
		a.err = err
		return a
	}
	req.Header.Set("Authorization", "Bearer "+ta.tokens[token])
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ta.srv.Client().Do(req)
	if err != nil {
		a.err = err
		return a
	}
	defer resp.Body.Close()
	a.status, a.header = resp.StatusCode, resp.Header
	a.resp, a.err = io.ReadAll(resp.Body)
	return a
}

// race sends the requests at once, one client each, and returns the answers in order.
func (ta *testAPI) race(reqs []answer) []answer {
	out := make([]answer, len(reqs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = ta.send(r.method, r.path, "admin", r.key, r.body)
		}()
	}
	close(start)
	wg.Wait()
	for i, a := range out {
		if a.err != nil {
			ta.t.Fatalf("request %d (%s %s): %v", i, a.method, a.path, a.err)
		}
	}
	return out
}

// outcomes checks that exactly ok answers are 201 and every other is a problem of kind
// (with its status), and returns the 201 answers.
func (ta *testAPI) outcomes(what string, as []answer, ok int, kind string, status int) []answer {
	ta.t.Helper()
	var created []answer
	for i, a := range as {
		if a.status == http.StatusCreated {
			created = append(created, a)
			continue
		}
		p := ta.problem(a.header, a.resp)
		if a.status != status || p.Type != ProblemTypePrefix+kind || p.Status != status || p.Detail == "" {
			ta.t.Errorf("%s %d: %d %s; want 201 or %d %s", what, i, a.status, a.resp, status, kind)
		}
	}
	if len(created) != ok {
		ta.t.Errorf("%s: %d answered 201, want exactly %d", what, len(created), ok)
	}
	return created
}

// apiTally is the test's sum of what the API answered 201 for, by contract, in kg.
type apiTally map[string]*recount.Totals

func (tl apiTally) add(code, op string, tonnes string) {
	kg, err := recount.Kg(tonnes)
	if err != nil {
		panic(err)
	}
	t := tl[code]
	switch op {
	case "deliver":
		t.Open, t.Delivered, t.Holding = t.Open-kg, t.Delivered+kg, t.Holding+kg
	case "retire":
		t.Holding, t.Retired = t.Holding-kg, t.Retired+kg
	case "cancel":
		t.Open, t.Cancelled = t.Open-kg, t.Cancelled+kg
	default:
		panic(op)
	}
}

func deliveryBody(tonnes, date, serials string) string {
	if serials == "" {
		return fmt.Sprintf(`{"tonnes":%q,"date":%q}`, tonnes, date)
	}
	return fmt.Sprintf(`{"tonnes":%q,"date":%q,"serials":%q}`, tonnes, date, serials)
}

func retirementBody(tonnes, date, serials string) string {
	if serials == "" {
		return fmt.Sprintf(`{"tonnes":%q,"date":%q,"beneficiary":"Acme Buyer","reason":"claim"}`, tonnes, date)
	}
	return fmt.Sprintf(`{"tonnes":%q,"date":%q,"beneficiary":"Acme Buyer","reason":"claim","serials":%q}`, tonnes, date, serials)
}

func TestContendedAPI(t *testing.T) {
	t.Parallel()
	ta := newAPI(t)
	ta.contract("HA", `{"over_delivery_tolerance":"5"}`)
	for _, c := range []string{"HB", "HC", "HD", "HE", "HF", "HG"} {
		ta.contract(c, "")
	}
	tally := apiTally{}
	for _, c := range []string{"SCOPED", "HA", "HB", "HC", "HD", "HE", "HF", "HG"} {
		tally[c] = &recount.Totals{Contracted: 1_000_000, Open: 1_000_000}
	}
	var recorded []answer // every request answered 201, to replay at the end

	// Phase 1: sixteen deliveries of 70 t into HA's 1,005 t (14 fit); six groups of
	// overlapping serial ranges, two clients each on HB and, for four groups, one more on HC
	// (one range per group is delivered).
	reqs := make([]answer, 32)
	group := func(i int) (code string, g int, first int) {
		if i < 28 {
			return "HB", (i - 16) / 2, 1000*((i-16)/2) + 1 + 5*((i-16)%2)
		}
		return "HC", i - 28, 1000*(i-28) + 4
	}
	for i := range reqs {
		if i < 16 {
			reqs[i] = answer{method: "POST", path: "/v1/contracts/HA/deliveries", key: fmt.Sprintf("p1-%d", i),
				body: deliveryBody("70", fmt.Sprintf("2025-03-%02d", 1+i), "")}
			continue
		}
		code, g, first := group(i)
		reqs[i] = answer{method: "POST", path: "/v1/contracts/" + code + "/deliveries", key: fmt.Sprintf("p1-%d", i),
			body: deliveryBody("10", fmt.Sprintf("2025-03-%02d", 1+g), fmt.Sprintf("PURO-API:%d-%d", first, first+9))}
	}
	as := ta.race(reqs)
	for _, a := range ta.outcomes("deliveries of 70 t into 1,005 t", as[:16], 14, "insufficient", 409) {
		tally.add("HA", "deliver", "70")
		recorded = append(recorded, a)
	}
	won := map[int]string{} // group -> the path of the contract that got it and its serials
	for _, a := range ta.outcomes("overlapping serial deliveries", as[16:], 6, "conflict", 409) {
		var i int
		fmt.Sscanf(a.key, "p1-%d", &i)
		code, g, first := group(i)
		if _, dup := won[g]; dup {
			t.Errorf("serial group %d delivered twice", g)
		}
		won[g] = code + " " + fmt.Sprintf("PURO-API:%d-%d", first, first+9)
		tally.add(code, "deliver", "10")
		recorded = append(recorded, a)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Phase 2: twelve retirements of 90 t from the 980 t HA holds (10 fit); four
	// cancellations of 10 t from its 20 t open (2 fit); each delivered range retired by two
	// clients under two keys (one is refused); and four clients sending one delivery under
	// one key: one records it, each other is answered with the same 201 as a replay, or 409
	// while the first still runs.
	reqs = make([]answer, 32)
	for i := range reqs {
		switch {
		case i < 12:
			reqs[i] = answer{method: "POST", path: "/v1/contracts/HA/retirements", key: fmt.Sprintf("p2-%d", i), body: retirementBody("90", "2025-05-01", "")}
		case i < 16:
			reqs[i] = answer{method: "POST", path: "/v1/contracts/HA/cancellations", key: fmt.Sprintf("p2-%d", i), body: `{"tonnes":"10","date":"2025-05-02","reason":"short"}`}
		case i < 28:
			code, serials, _ := strings.Cut(won[(i-16)/2], " ")
			reqs[i] = answer{method: "POST", path: "/v1/contracts/" + code + "/retirements", key: fmt.Sprintf("p2-%d", i), body: retirementBody("10", "2025-05-03", serials)}
		default:
			reqs[i] = answer{method: "POST", path: "/v1/contracts/HD/deliveries", key: "p2-same", body: deliveryBody("3", "2025-05-04", "")}
		}
	}
	as = ta.race(reqs)
	for _, a := range ta.outcomes("retirements of 90 t from 980 t", as[:12], 10, "insufficient", 409) {
		tally.add("HA", "retire", "90")
		recorded = append(recorded, a)
	}
	for _, a := range ta.outcomes("cancellations of 10 t from 20 t open", as[12:16], 2, "insufficient", 409) {
		tally.add("HA", "cancel", "10")
		recorded = append(recorded, a)
	}
	for g := range 6 {
		for _, a := range ta.outcomes(fmt.Sprintf("retirements of serial group %d", g), as[16+2*g:18+2*g], 1, "conflict", 409) {
			code, _, _ := strings.Cut(won[g], " ")
			tally.add(code, "retire", "10")
			recorded = append(recorded, a)
		}
	}
	first := 0
	for i, a := range as[28:] {
		switch {
		case a.status == 201 && a.header.Get("Idempotency-Replayed") == "":
			first++
			tally.add("HD", "deliver", "3")
			recorded = append(recorded, a)
		case a.status == 201:
		case a.status == 409 && ta.problem(a.header, a.resp).Type == ProblemTypePrefix+"request-in-progress":
		default:
			t.Errorf("same key %d: %d %s; want 201, a replayed 201, or 409 request-in-progress", i, a.status, a.resp)
		}
	}
	if first != 1 {
		t.Errorf("one request under one key from four clients was recorded %d times, want once", first)
	}
	for _, a := range as[28:] {
		if a.status == 201 && string(a.resp) != string(recorded[len(recorded)-1].resp) {
			t.Errorf("same key: answers differ:\n%s\n%s", a.resp, recorded[len(recorded)-1].resp)
		}
	}

	// Phase 3: batches. Eight atomic batches at once, each delivering 2 t of its own to HC
	// after the same two operations under the same keys (the first with serials): every
	// batch records, the shared operations once (201 in one batch, 200 in the others). Four atomic
	// batches of 3 x 100 t into HD's 997 t open: three fit, the fourth is refused whole.
	reqs = make([]answer, 12)
	for i := range 8 {
		reqs[i] = answer{method: "POST", path: "/v1/batches", key: fmt.Sprintf("p3-shared-%d", i), body: fmt.Sprintf(`{"operations":[
			{"op":"deliver","contract":"HC","tonnes":"5","date":"2025-06-01","serials":"PURO-API-B:1-5","key":"batch-shared-serials"},
			{"op":"deliver","contract":"HC","tonnes":"1","date":"2025-06-01","key":"batch-shared"},
			{"op":"deliver","contract":"HC","tonnes":"2","date":"2025-06-02"}]}`)}
	}
	for i := 8; i < 12; i++ {
		reqs[i] = answer{method: "POST", path: "/v1/batches", key: fmt.Sprintf("p3-big-%d", i), body: `{"operations":[
			{"op":"deliver","contract":"HD","tonnes":"100","date":"2025-06-03"},
			{"op":"deliver","contract":"HD","tonnes":"100","date":"2025-06-03"},
			{"op":"deliver","contract":"HD","tonnes":"100","date":"2025-06-03"}]}`}
	}
	as = ta.race(reqs)
	sharedFirst := map[int]int{}
	for i, a := range as[:8] {
		var b BatchJSON
		if a.status != 201 || json.Unmarshal(a.resp, &b) != nil || len(b.Results) != 3 {
			t.Errorf("batch %d sharing operations: %d %s; want 201", i, a.status, a.resp)
			continue
		}
		recorded = append(recorded, a)
		tally.add("HC", "deliver", "2")
		for j, r := range b.Results[:2] {
			switch r.Status {
			case 201:
				sharedFirst[j]++
			case 200:
			default:
				t.Errorf("batch %d, shared operation %d: status %d, want 201 or 200", i, j, r.Status)
			}
		}
		if b.Results[2].Status != 201 {
			t.Errorf("batch %d, own operation: status %d, want 201", i, b.Results[2].Status)
		}
	}
	for j := range 2 {
		if sharedFirst[j] != 1 {
			t.Errorf("shared operation %d: recorded by %d batches, want 1 (found present by the others)", j, sharedFirst[j])
		}
	}
	tally.add("HC", "deliver", "1")
	tally.add("HC", "deliver", "5")
	for _, a := range ta.outcomes("batches of 300 t into 997 t", as[8:], 3, "insufficient", 409) {
		for range 3 {
			tally.add("HD", "deliver", "100")
		}
		recorded = append(recorded, a)
	}
	for _, a := range as[8:] {
		if a.status == 409 {
			if p := ta.problem(a.header, a.resp); len(p.Errors) == 0 || !strings.Contains(p.Detail, "nothing was recorded") {
				t.Errorf("refused batch: %s; want the refused operations listed and nothing recorded", a.resp)
			}
		}
	}

	// Phase 4: sixteen atomic batches at once, each delivering to the same three contracts in
	// its own order, three times over: batches that took their contracts as their operations
	// came deadlocked, and one that lost three times was answered 500. All are recorded.
	orders := [][]string{{"HE", "HF", "HG"}, {"HG", "HF", "HE"}, {"HF", "HE", "HG"}, {"HF", "HG", "HE"}}
	for round := range 3 {
		reqs = make([]answer, 16)
		for i := range reqs {
			var ops []string
			for _, code := range orders[i%len(orders)] {
				ops = append(ops, fmt.Sprintf(`{"op":"deliver","contract":%q,"tonnes":"1","date":"2025-07-01"}`, code))
			}
			reqs[i] = answer{method: "POST", path: "/v1/batches", key: fmt.Sprintf("p4-%d-%d", round, i), body: `{"operations":[` + strings.Join(ops, ",") + `]}`}
		}
		for i, a := range ta.race(reqs) {
			if a.status != 201 {
				t.Errorf("round %d, batch %d over three contracts: %d %s; want 201", round, i, a.status, a.resp)
				continue
			}
			recorded = append(recorded, a)
			for _, code := range []string{"HE", "HF", "HG"} {
				tally.add(code, "deliver", "1")
			}
		}
	}

	// Every recorded request, sent again, answers as it first did, marked as a replay; its
	// key with another body is refused.
	for _, a := range recorded {
		again := ta.send(a.method, a.path, "admin", a.key, a.body)
		if again.err != nil || again.status != a.status || string(again.resp) != string(a.resp) || again.header.Get("Idempotency-Replayed") != "true" {
			t.Errorf("replay of %s %s (key %s): %d %s (replayed %q); want the original %d %s", a.method, a.path, a.key,
				again.status, again.resp, again.header.Get("Idempotency-Replayed"), a.status, a.resp)
		}
	}
	other := ta.send("POST", "/v1/contracts/HA/deliveries", "admin", recorded[0].key, deliveryBody("0.001", "2025-03-01", ""))
	if p := ta.problem(other.header, other.resp); other.status != 422 || p.Type != ProblemTypePrefix+"idempotency-key-reused" {
		t.Errorf("a recorded key with another body: %d %s; want 422 idempotency-key-reused", other.status, other.resp)
	}

	// The positions the API reports, the recount of the raw rows and the test's sum agree.
	rc, err := recount.Run(context.Background(), ta.store.DB().DB)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rc.Problems {
		t.Errorf("recount: %s", p)
	}
	for code, want := range tally {
		st, _, body := ta.do("GET", "/v1/contracts/"+code, "viewer", "", "")
		var v service.ContractJSON
		if st != 200 || json.Unmarshal(body, &v) != nil {
			t.Fatalf("GET contract %s: %d %s", code, st, body)
		}
		api := recount.Totals{Contracted: v.Contracted.Kg(), Replacements: v.Replacements.Kg(), Open: v.Open.Kg(), Delivered: v.Delivered.Kg(),
			Holding: v.Holding.Kg(), Retired: v.Retired.Kg(), Cancelled: v.Cancelled.Kg(), Reversed: v.Reversed.Kg(), BufferCancelled: v.BufferCancelled.Kg()}
		if d := want.Diff(rc.Contracts[code].Totals); d != nil {
			t.Errorf("%s: the 201 answers and the recount differ: %v", code, d)
		}
		if d := rc.Contracts[code].Totals.Diff(api); d != nil {
			t.Errorf("%s: the recount and the API's position differ: %v", code, d)
		}
	}
	st, _, body := ta.do("GET", "/v1/audit", "viewer", "", "")
	var audit struct {
		OK bool `json:"ok"`
	}
	if st != 200 || json.Unmarshal(body, &audit) != nil || !audit.OK {
		t.Errorf("GET /v1/audit: %d %s", st, body)
	}
	ta.clean()
}
