// Package soak runs random valid and invalid operations against one ledger from many clients
// at once, for a bounded time, through every front end: the store directly, the HTTP API
// (single operations and batches, atomic or not) and the importer the CLI uses (all or
// nothing, or skipping bad rows). Every answer must be a success or a refusal the rules
// document for that operation; afterwards the audit must be clean, and three accounts of
// every contract must agree to the kilogram: the test's own sum of what succeeded, a recount
// of the raw rows with plain SQL and none of the product's code (internal/recount), and what
// the product reports (positions from the store and the API, the term report).
//
// CARBONLEDGER_SOAK sets the duration (default 60s; make soak runs 10m),
// CARBONLEDGER_SOAK_SEED the seed of the random choices (logged at the start, so that a
// failing run's mix can be run again; the interleaving of the clients still differs), and
// CARBONLEDGER_SOAK_CLIENTS the number of clients (default 16).
package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/internal/bulk"
	"github.com/carbonledger/carbonledger/internal/httpapi"
	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/internal/recount"
	"github.com/carbonledger/carbonledger/internal/service"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

// today is the clock of the store and the API: every valid date lies before it.
var today = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

// soakContract is one contract of the soak and what the test needs to know of it.
type soakContract struct {
	code, registry, prefix string
	unitKg                 int64 // one serial
	rod                    bool  // retired on delivery
	tonnesKg, tolKg        int64
	via                    string // how it is added: api, store or import
}

var contracts = []soakContract{
	{code: "SK-CAR-1", registry: "car", prefix: "CAR-SOAK", unitKg: 1000, tonnesKg: 500_000_000, via: "api"},
	{code: "SK-CAR-2", registry: "car", prefix: "CAR-SOAK", unitKg: 1000, tonnesKg: 200_000_000, tolKg: 50_000, via: "store"},
	{code: "SK-PURO", registry: "puro", prefix: "PURO-SOAK", unitKg: 1000, tonnesKg: 300_000_000, via: "import"},
	{code: "SK-ISO", registry: "isometric", prefix: "ISO-SOAK", unitKg: 1, tonnesKg: 100_000_000, via: "api"},
	{code: "SK-ROD", registry: "puro", prefix: "PURO-SOAK", unitKg: 1000, rod: true, tonnesKg: 200_000_000, via: "store"},
	// small: it fills up early, and then deliveries race for what is left
	{code: "SK-SMALL", registry: "car", prefix: "CAR-SOAK", unitKg: 1000, tonnesKg: 2_000_000, tolKg: 1_000, via: "api"},
}

func contractJSON(c soakContract) string {
	mode := "transfer"
	if c.rod {
		mode = "retire_on_delivery"
	}
	return fmt.Sprintf(`{"code":%q,"buyer":"Soak Buyer","supplier":"Soak Supplier","project":"Soak","method":"biochar","country":"MX",
		"region":"Guanajuato","registry":%q,"standard":"std","durability_years":"100","term_start":"2025-01-01","term_end":"2027-12-31",
		"signed_on":"2024-12-01","tonnes":%q,"delivery_mode":%q,"over_delivery_tolerance":%q}`,
		c.code, c.registry, recount.FormatKg(c.tonnesKg), mode, recount.FormatKg(c.tolKg))
}

// op is one generated operation.
type op struct {
	label  string
	c      *soakContract  // the contract it names (for a correction, its entry's)
	req    ledger.Request // nil for input that no request can hold
	fields map[string]any // its JSON members: op, contract or entry, key, and the rest
	// refuse are the refusals the rules allow it; invalid says no state makes it valid;
	// replay is the success it repeats, which must answer it.
	refuse  []string
	invalid bool
	replay  *done
	serials *ledger.SerialRange
}

func (o *op) key() string { return o.fields["key"].(string) }

// done is a success: an operation that wrote an entry.
type done struct {
	o     *op
	entry string // "" when the front end does not say (an import)
}

// servedRange is a serial range a success delivered or retired.
type servedRange struct {
	c    *soakContract
	r    ledger.SerialRange
	date time.Time
}

// world is what the clients share.
type world struct {
	t      *testing.T
	s      *store.Store
	srv    *httptest.Server
	token  string
	dir    string
	next   map[string]*atomic.Int64 // the next fresh serial of each series
	failed atomic.Int64

	mu        sync.Mutex
	dones     []*done
	byEntry   map[string]*op // successes whose entry id is known
	delivered []servedRange  // serials delivered and held (not retired on delivery)
	retired   []servedRange  // serials retired
	totals    map[string]*recount.Totals
	serials   map[string]map[string]int64 // contract -> state -> serials
	writes    int
	counts    map[string]int
}

func TestSoak(t *testing.T) {
	dur := 60 * time.Second
	if v := os.Getenv("CARBONLEDGER_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CARBONLEDGER_SOAK=%q: %v", v, err)
		}
		dur = d
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CARBONLEDGER_SOAK_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("CARBONLEDGER_SOAK_SEED=%q: %v", v, err)
		}
	}
	clients := 16
	if v := os.Getenv("CARBONLEDGER_SOAK_CLIENTS"); v != "" {
		var err error
		if clients, err = strconv.Atoi(v); err != nil || clients < 1 {
			t.Fatalf("CARBONLEDGER_SOAK_CLIENTS=%q: want a number of clients", v)
		}
	}
	t.Logf("soak: %s, %d clients, seed %d (CARBONLEDGER_SOAK_SEED=%d draws the same operations)", dur, clients, seed, seed)

	w := newWorld(t)
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	var steps atomic.Int64
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &client{w: w, id: id, rng: rand.New(rand.NewPCG(seed, uint64(id)))}
			for time.Now().Before(deadline) && w.failed.Load() < 20 {
				c.step()
				steps.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d steps, %d entries written", steps.Load(), w.writes)
	names := make([]string, 0, len(w.counts))
	for k := range w.counts {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "\n  %-58s %6d", k, w.counts[k])
	}
	t.Logf("outcomes by operation:%s", b.String())
	if w.failed.Load() > 0 {
		t.Fatalf("%d operations got an answer the rules do not document (seed %d)", w.failed.Load(), seed)
	}
	w.verify(dur >= 30*time.Second)
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.Now = func() time.Time { return today }
	api := httpapi.New(s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	api.Now = s.Now
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	token, err := s.CreateToken(ctx, "soak", "admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, s: s, srv: srv, token: token, dir: t.TempDir(), next: map[string]*atomic.Int64{},
		byEntry: map[string]*op{}, totals: map[string]*recount.Totals{}, serials: map[string]map[string]int64{}, counts: map[string]int{}}
	for i := range contracts {
		c := &contracts[i]
		w.next[c.prefix] = &atomic.Int64{}
		w.totals[c.code] = &recount.Totals{Contracted: c.tonnesKg, Open: c.tonnesKg}
		w.serials[c.code] = map[string]int64{}
		w.writes++
		switch c.via {
		case "api":
			if a := w.post("/v1/contracts", "contract-"+c.code, contractJSON(*c)); a.status != 201 {
				t.Fatalf("add %s through the API: %d %s", c.code, a.status, a.body)
			}
		case "store":
			ct, err := ledger.ParseContractJSON(strings.NewReader(contractJSON(*c)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.AddContract(ctx, ct, ""); err != nil {
				t.Fatal(err)
			}
		case "import":
			var terms bytes.Buffer
			if err := json.Compact(&terms, []byte(contractJSON(*c))); err != nil {
				t.Fatal(err)
			}
			f := w.file("contract-"+c.code+".ndjson", `{"op":"contract","key":"contract-`+c.code+`","terms":`+terms.String()+"}\n")
			if sum, err := bulk.Import(ctx, s, []*bulk.File{f}, bulk.Options{}); err != nil || sum.Written != 1 {
				t.Fatalf("import %s: %+v, %v", c.code, sum, err)
			}
		}
	}
	return w
}

func (w *world) file(name, body string) *bulk.File {
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return bulk.PathFile(p)
}

// answer is an HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (w *world) post(path, key, body string) answer {
	req, err := http.NewRequest("POST", w.srv.URL+path, strings.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+w.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	return w.do(req)
}

func (w *world) get(path string) answer {
	req, err := http.NewRequest("GET", w.srv.URL+path, nil)
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+w.token)
	return w.do(req)
}

func (w *world) do(req *http.Request) answer {
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	a.body, a.err = io.ReadAll(resp.Body)
	return a
}

// problemKind is the kind of a problem body, in the store's terms.
func problemKind(body []byte) string {
	var p httpapi.Problem
	if json.Unmarshal(body, &p) != nil || !strings.HasPrefix(p.Type, httpapi.ProblemTypePrefix) {
		return "unexpected: not a problem: " + string(body)
	}
	k := strings.TrimPrefix(p.Type, httpapi.ProblemTypePrefix)
	if k == "idempotency-key-reused" {
		return "key-reused"
	}
	return k
}

// errKind is the kind of a store error.
func errKind(err error) string {
	var fe *ledger.FieldError
	switch {
	case errors.Is(err, ledger.ErrConflict) && errors.As(err, &fe) && fe.Field == "key":
		return "key-reused"
	case errors.Is(err, ledger.ErrInsufficient):
		return "insufficient"
	case errors.Is(err, ledger.ErrConflict):
		return "conflict"
	case errors.Is(err, ledger.ErrNotFound):
		return "not-found"
	case errors.Is(err, ledger.ErrImmutable):
		return "immutable"
	case errors.Is(err, ledger.ErrInvalid):
		return "invalid"
	}
	return "unexpected: " + err.Error()
}

// client is one of the soak's clients.
type client struct {
	w   *world
	id  int
	rng *rand.Rand
	n   int
}

func (c *client) newKey(kind string) string {
	c.n++
	return fmt.Sprintf("soak-%s-%d-%d", kind, c.id, c.n)
}

// step sends one to fifteen operations through one front end.
func (c *client) step() {
	switch r := c.rng.IntN(100); {
	case r < 35:
		c.viaStore(c.gen())
	case r < 65:
		c.viaHTTP(c.gen())
	case r < 85:
		ops := make([]*op, 2+c.rng.IntN(5))
		for i := range ops {
			ops[i] = c.gen()
		}
		c.viaBatch(ops, c.rng.IntN(2) == 0)
	default:
		ops := make([]*op, 3+c.rng.IntN(13))
		for i := range ops {
			ops[i] = c.gen()
		}
		c.viaImport(ops, c.rng.IntN(2) == 0)
	}
}

func (c *client) date() time.Time {
	return ledger.Date(2025, 1, 1).AddDate(0, 0, c.rng.IntN(530))
}

func (c *client) contract() *soakContract { return &contracts[c.rng.IntN(len(contracts))] }

// withReq makes an op of a request: its fields are the request's JSON.
func withReq(label string, sc *soakContract, r ledger.Request, refuse ...string) *op {
	b, err := r.MarshalJSON()
	if err != nil {
		panic(err)
	}
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		panic(err)
	}
	// The request as a front end reads it (a serial range keeps its label as written), so
	// that it is the same request whichever front end sends it.
	if r, err = ledger.ParseOperationJSON(b); err != nil {
		panic(fmt.Sprintf("%s: %v", b, err))
	}
	return &op{label: label, c: sc, req: r, fields: f, refuse: refuse}
}

func kgT(kg int64) ledger.Tonnes { return ledger.TonnesFromKg(kg) }

// gen draws one operation: mostly ones that may succeed, and every kind of request the
// rules refuse.
func (c *client) gen() *op {
	w, rng := c.w, c.rng
	sc := c.contract()
	key := c.newKey("op")
	retire := func(sc *soakContract, t ledger.Tonnes, d time.Time) ledger.RetireRequest {
		return ledger.RetireRequest{Contract: sc.code, Tonnes: t, Date: d, Beneficiary: "Soak Buyer", Reason: "claim", Key: key}
	}
	w.mu.Lock()
	var pick *done
	if len(w.dones) > 0 {
		pick = w.dones[rng.IntN(len(w.dones))]
	}
	var held, gone *servedRange
	if len(w.delivered) > 0 {
		held = &w.delivered[rng.IntN(len(w.delivered))]
	}
	if len(w.retired) > 0 {
		gone = &w.retired[rng.IntN(len(w.retired))]
	}
	var reversible, final *done // a non-serial delivery to transfer; a retirement or a delivery retired on delivery
	if len(w.dones) > 0 {
		for range 4 {
			d := w.dones[rng.IntN(len(w.dones))]
			if d.entry == "" {
				continue
			}
			switch r := d.o.req.(type) {
			case ledger.DeliverRequest:
				if r.Serials == nil && !d.o.c.rod {
					reversible = d
				} else if d.o.c.rod {
					final = d
				}
			case ledger.RetireRequest:
				final = d
			}
		}
	}
	w.mu.Unlock()

	switch r := rng.IntN(100); {
	case r < 22:
		return withReq("deliver", sc, ledger.DeliverRequest{Contract: sc.code, Tonnes: kgT(1 + rng.Int64N(25_000)), Date: c.date(), Key: key}, "insufficient")
	case r < 32:
		n := 1 + rng.Int64N(20)
		if sc.unitKg == 1 {
			n = 1 + rng.Int64N(20_000)
		}
		first := w.next[sc.prefix].Add(n) - n + 1
		sr := ledger.SerialRange{Prefix: sc.prefix, First: first, Last: first + n - 1}
		o := withReq("deliver serials", sc, ledger.DeliverRequest{Contract: sc.code, Tonnes: kgT(n * sc.unitKg), Date: c.date(), Key: key, Serials: &sr}, "insufficient")
		o.serials = &sr
		return o
	case r < 36 && held != nil: // serials delivered already, to a contract of their registry
		to := held.c
		for i := range contracts {
			if contracts[i].registry == held.c.registry && rng.IntN(2) == 0 {
				to = &contracts[i]
			}
		}
		first := held.r.First + rng.Int64N(held.r.Last-held.r.First+1)
		sr := ledger.SerialRange{Prefix: held.r.Prefix, First: first, Last: first + rng.Int64N(5)}
		o := withReq("deliver reused serials", to, ledger.DeliverRequest{Contract: to.code, Tonnes: kgT((sr.Last - sr.First + 1) * to.unitKg), Date: c.date(), Key: key, Serials: &sr}, "conflict")
		o.invalid = true
		return o
	case r < 46:
		return withReq("retire", sc, retire(sc, kgT(1+rng.Int64N(20_000)), c.date()), "insufficient", "invalid")
	case r < 54 && held != nil: // part of a delivered range; another client may retire it first
		first := held.r.First + rng.Int64N(held.r.Last-held.r.First+1)
		last := first + rng.Int64N(held.r.Last-first+1)
		sr := ledger.SerialRange{Prefix: held.r.Prefix, First: first, Last: last}
		d := held.date.AddDate(0, 0, rng.IntN(30))
		if !d.Before(ledger.Date(today.Date())) {
			d = held.date
		}
		rr := retire(held.c, kgT((last-first+1)*held.c.unitKg), d)
		rr.Serials = &sr
		o := withReq("retire serials", held.c, rr, "conflict", "insufficient")
		o.serials = &sr
		return o
	case r < 57 && gone != nil: // serials retired already: never again
		rr := retire(gone.c, kgT((gone.r.Last-gone.r.First+1)*gone.c.unitKg), gone.date.AddDate(0, 0, 1))
		sr := gone.r
		rr.Serials = &sr
		o := withReq("retire retired serials", gone.c, rr, "conflict")
		o.invalid = true
		return o
	case r < 63:
		return withReq("cancel", sc, ledger.CancelRequest{Contract: sc.code, Tonnes: kgT(1 + rng.Int64N(5_000)), Date: c.date(), Reason: "shortfall", Key: key}, "insufficient")
	case r < 67:
		return withReq("reverse to be replaced", sc, ledger.ReverseRequest{Contract: sc.code, Tonnes: kgT(1 + rng.Int64N(5_000)), Date: c.date(),
			Reason: "fire", Remedy: ledger.RemedyReplace, Key: key}, "insufficient", "invalid")
	case r < 69:
		return withReq("reverse from the buffer", sc, ledger.ReverseRequest{Contract: sc.code, Tonnes: kgT(1 + rng.Int64N(3_000)), Date: c.date(),
			Reason: "leak", Remedy: ledger.RemedyBuffer, Key: key}, "insufficient")
	case r < 72 && reversible != nil: // another client may have corrected it already
		return withReq("revert delivery", reversible.o.c, ledger.RevertRequest{Entry: reversible.entry, Reason: "entered twice", Key: key}, "insufficient", "conflict")
	case r < 76 && pick != nil:
		o := *pick.o
		o.label, o.replay, o.refuse, o.invalid = "replay", pick, nil, false
		return &o
	case r < 79 && pick != nil: // the key of a success with another request
		code := pick.o.c
		o := withReq("reuse a key", code, ledger.CancelRequest{Contract: code.code, Tonnes: kgT(1), Date: c.date(), Reason: "other", Key: pick.o.key()}, "key-reused")
		o.invalid = true
		return o
	case r < 82:
		o := withReq("over-deliver", sc, ledger.DeliverRequest{Contract: sc.code, Tonnes: kgT(sc.tonnesKg + sc.tolKg + 1), Date: c.date(), Key: key}, "insufficient")
		o.invalid = true
		return o
	case r < 84:
		o := withReq("retire beyond any holding", sc, retire(sc, kgT(sc.tonnesKg+sc.tolKg+1), c.date()), "insufficient")
		o.invalid = true
		return o
	case r < 86:
		if sc.tonnesKg < 10_000_000 {
			sc = &contracts[0] // room enough that the date, not the tonnes, is what is wrong
		}
		o := withReq("future date", sc, ledger.DeliverRequest{Contract: sc.code, Tonnes: kgT(1000), Date: ledger.Date(today.Date()).AddDate(0, 0, 3+rng.IntN(60)), Key: key}, "invalid")
		o.invalid = true
		return o
	case r < 90:
		bad := []string{"1.0001", "-3", "abc", "0", "1e3", "", "NaN", "0.0000"}[rng.IntN(8)]
		f := map[string]any{"op": "deliver", "contract": sc.code, "tonnes": bad, "date": "2025-03-01", "key": key}
		return &op{label: "bad tonnes", c: sc, fields: f, refuse: []string{"invalid"}, invalid: true}
	case r < 92:
		o := withReq("unknown contract", sc, ledger.DeliverRequest{Contract: "SK-NO-SUCH", Tonnes: kgT(1000), Date: c.date(), Key: key}, "not-found")
		o.invalid = true
		return o
	case r < 94:
		o := withReq("before the term", sc, ledger.DeliverRequest{Contract: sc.code, Tonnes: kgT(1000), Date: ledger.Date(2024, 12, 20), Key: key}, "invalid")
		o.invalid = true
		return o
	case r < 96:
		f := map[string]any{"op": "retire", "contract": sc.code, "tonnes": "1", "date": "2025-06-01", "reason": "claim", "key": key}
		return &op{label: "no beneficiary", c: sc, fields: f, refuse: []string{"invalid"}, invalid: true}
	case r < 98 && final != nil:
		o := withReq("revert what is retired", final.o.c, ledger.RevertRequest{Entry: final.entry, Reason: "undo", Key: key}, "immutable")
		o.invalid = true
		return o
	default:
		f := map[string]any{"op": "revert", "entry": "00000000-0000-7000-8000-" + fmt.Sprintf("%012d", rng.Int64N(1e12)), "reason": "undo", "key": key}
		return &op{label: "revert an unknown entry", c: sc, fields: f, refuse: []string{"not-found"}, invalid: true}
	}
}

// settle checks one operation's outcome ("written", "replayed", or a refusal's kind; entry
// is the written or replayed entry's id when the front end says it) and records a success.
func (w *world) settle(via string, o *op, outcome, entry string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counts[o.label+": "+outcome]++
	w.counts["(via "+via+")"]++
	bad := func(format string, args ...any) {
		w.failed.Add(1)
		w.t.Errorf("%s, %s %v: %s", via, o.label, o.fields, fmt.Sprintf(format, args...))
	}
	if outcome == "request-in-progress" && via == "http" && (o.replay != nil || o.label == "reuse a key") {
		return // another client sends a request under the same key this instant (documented: 409)
	}
	if o.replay != nil {
		switch {
		case outcome != "replayed":
			bad("a replay of a success was answered %q", outcome)
		case entry != "" && o.replay.entry != "" && entry != o.replay.entry:
			bad("replayed as entry %s, the success was entry %s", entry, o.replay.entry)
		}
		return
	}
	switch outcome {
	case "written":
		if o.invalid || o.req == nil {
			bad("recorded; no state makes it valid")
			return
		}
		w.record(o, entry)
	case "replayed":
		bad("a new key was answered as a replay")
	case "refused": // an import names the field, not the kind
		if len(o.refuse) == 0 {
			bad("refused; the rules allow it no refusal")
		}
	default:
		if !slices.Contains(o.refuse, outcome) {
			bad("refused as %q; the rules allow %v", outcome, o.refuse)
		}
	}
}

// record adds a success to the test's own ledger. w.mu is held.
func (w *world) record(o *op, entry string) {
	d := &done{o: o, entry: entry}
	w.dones = append(w.dones, d)
	if entry != "" {
		w.byEntry[entry] = o
	}
	w.writes++
	code := o.c.code
	t := w.totals[code]
	switch r := o.req.(type) {
	case ledger.DeliverRequest:
		kg := r.Tonnes.Kg()
		t.Open -= kg
		t.Delivered += kg
		state := "delivered"
		if o.c.rod {
			t.Retired += kg
			state = "retired"
		} else {
			t.Holding += kg
		}
		if r.Serials != nil {
			n := r.Serials.Last - r.Serials.First + 1
			w.serials[code][state] += n
			sr := servedRange{c: o.c, r: *r.Serials, date: r.Date}
			if o.c.rod {
				w.retired = append(w.retired, sr)
			} else {
				w.delivered = append(w.delivered, sr)
			}
		}
	case ledger.RetireRequest:
		kg := r.Tonnes.Kg()
		t.Holding -= kg
		t.Retired += kg
		if r.Serials != nil {
			n := r.Serials.Last - r.Serials.First + 1
			w.serials[code]["delivered"] -= n
			w.serials[code]["retired"] += n
			w.retired = append(w.retired, servedRange{c: o.c, r: *r.Serials, date: r.Date})
		}
	case ledger.CancelRequest:
		kg := r.Tonnes.Kg()
		t.Open -= kg
		t.Cancelled += kg
	case ledger.ReverseRequest:
		kg := r.Tonnes.Kg()
		if r.Remedy == ledger.RemedyBuffer {
			t.BufferCancelled += kg
		} else {
			t.Holding -= kg
			t.Reversed += kg
			t.Open += kg
			t.Replacements += kg
		}
	case ledger.RevertRequest: // of a delivery to a holding, without serials
		orig := w.byEntry[r.Entry].req.(ledger.DeliverRequest)
		kg := orig.Tonnes.Kg()
		t.Open += kg
		t.Delivered -= kg
		t.Holding -= kg
	}
}

func (c *client) viaStore(o *op) {
	w := c.w
	ctx := context.Background()
	req := o.req
	var err error
	if req == nil {
		b, _ := json.Marshal(o.fields)
		if req, err = ledger.ParseOperationJSON(b); err == nil {
			err = req.Check(today, w.s.FutureTolerance)
		}
	}
	var res store.Result
	if err == nil {
		res, err = w.s.Submit(ctx, req)
	}
	switch {
	case err != nil:
		w.settle("store", o, errKind(err), "")
	case res.Replay:
		w.settle("store", o, "replayed", res.Entry.ID)
	default:
		w.settle("store", o, "written", res.Entry.ID)
	}
}

var routes = map[string]string{"deliver": "deliveries", "retire": "retirements", "cancel": "cancellations", "reverse": "reversals"}

func (c *client) viaHTTP(o *op) {
	w := c.w
	body := map[string]any{}
	var path string
	for k, v := range o.fields {
		body[k] = v
	}
	if o.fields["op"] == "revert" {
		path = "/v1/entries/" + o.fields["entry"].(string) + "/revert"
		delete(body, "entry")
	} else {
		path = "/v1/contracts/" + o.fields["contract"].(string) + "/" + routes[o.fields["op"].(string)]
		delete(body, "contract")
	}
	delete(body, "op")
	delete(body, "key")
	b, _ := json.Marshal(body)
	a := w.post(path, o.key(), string(b))
	if a.err != nil {
		w.settle("http", o, "unexpected: "+a.err.Error(), "")
		return
	}
	if a.status != 201 {
		w.settle("http", o, problemKind(a.body), "")
		return
	}
	var res httpapi.OperationJSON
	if err := json.Unmarshal(a.body, &res); err != nil || res.Entry.ID == "" {
		w.settle("http", o, "unexpected: "+string(a.body), "")
		return
	}
	if a.header.Get("Idempotency-Replayed") == "true" {
		w.settle("http", o, "replayed", res.Entry.ID)
		return
	}
	w.settle("http", o, "written", res.Entry.ID)
}

func (c *client) viaBatch(ops []*op, atomic bool) {
	w := c.w
	via := "batch"
	if atomic {
		via = "atomic batch"
	}
	list := make([]map[string]any, len(ops))
	for i, o := range ops {
		list[i] = o.fields
	}
	b, _ := json.Marshal(map[string]any{"atomic": atomic, "operations": list})
	key := c.newKey("batch")
	a := w.post("/v1/batches", key, string(b))
	if c.rng.IntN(10) == 0 && a.err == nil && a.status < 300 { // a retry of a recorded batch answers as the first did
		again := w.post("/v1/batches", key, string(b))
		if again.err != nil || again.status != a.status || !bytes.Equal(again.body, a.body) || again.header.Get("Idempotency-Replayed") != "true" {
			w.failed.Add(1)
			w.t.Errorf("batch %s sent again: %d %s; want the first answer %d %s, replayed", key, again.status, again.body, a.status, a.body)
		}
	}
	if a.err != nil {
		for _, o := range ops {
			w.settle(via, o, "unexpected: "+a.err.Error(), "")
		}
		return
	}
	if a.status != 200 && a.status != 201 { // an atomic batch refused whole
		var p httpapi.Problem
		kind := problemKind(a.body)
		_ = json.Unmarshal(a.body, &p)
		if !atomic || strings.HasPrefix(kind, "unexpected") || len(p.Errors) == 0 {
			for _, o := range ops {
				w.settle(via, o, "unexpected: batch answered "+string(a.body), "")
			}
			return
		}
		refused := map[int]bool{}
		for _, e := range p.Errors {
			if e.Index != nil {
				refused[*e.Index] = true
			}
		}
		union := map[string]bool{}
		for i, o := range ops {
			if !refused[i] {
				w.mu.Lock()
				w.counts[o.label+": rolled back with its batch"]++
				w.mu.Unlock()
				continue
			}
			for _, k := range o.refuse {
				union[k] = true
			}
			w.settle(via, o, "refused", "")
		}
		if !union[kind] && kind != "invalid" {
			w.failed.Add(1)
			w.t.Errorf("atomic batch refused as %q; its refused operations allow %v: %s", kind, union, a.body)
		}
		return
	}
	var res httpapi.BatchJSON
	if err := json.Unmarshal(a.body, &res); err != nil || len(res.Results) != len(ops) || res.Atomic != atomic {
		for _, o := range ops {
			w.settle(via, o, "unexpected: batch answered "+string(a.body), "")
		}
		return
	}
	for i, r := range res.Results {
		switch {
		case r.Status == 201 && r.Entry != nil:
			w.settle(via, ops[i], "written", r.Entry.ID)
		case r.Status == 200 && r.Entry != nil:
			w.settle(via, ops[i], "replayed", r.Entry.ID)
		case r.Problem != nil && !atomic:
			k := strings.TrimPrefix(r.Problem.Type, httpapi.ProblemTypePrefix)
			if k == "idempotency-key-reused" {
				k = "key-reused"
			}
			w.settle(via, ops[i], k, "")
		default:
			w.settle(via, ops[i], fmt.Sprintf("unexpected: result %+v", r), "")
		}
	}
}

func (c *client) viaImport(ops []*op, skipInvalid bool) {
	w := c.w
	via := "import"
	if skipInvalid {
		via = "import --skip-invalid"
	}
	var b strings.Builder
	for _, o := range ops {
		line, _ := json.Marshal(o.fields)
		b.Write(line)
		b.WriteByte('\n')
	}
	f := w.file(c.newKey("import")+".ndjson", b.String())
	var mu sync.Mutex
	refused := map[int]bool{}
	sum, err := bulk.Import(context.Background(), w.s, []*bulk.File{f}, bulk.Options{SkipInvalid: skipInvalid,
		OnError: func(e bulk.RowError) {
			mu.Lock()
			refused[e.Line] = true
			mu.Unlock()
		}})
	committed := err == nil
	switch {
	case err == nil:
	case errors.Is(err, bulk.ErrRefused) && !skipInvalid:
	case store.Retryable(err) && sum.Refused > 0:
		// PostgreSQL stopped it to break a deadlock after it had reported bad rows, so it did
		// not start again (docs/import.md); its one batch was not committed.
		w.mu.Lock()
		w.counts["(import stopped by a deadlock after refusing rows)"]++
		w.mu.Unlock()
	default:
		for _, o := range ops {
			w.settle(via, o, fmt.Sprintf("unexpected: import (%d refused): %v", sum.Refused, err), "")
		}
		return
	}
	present, written := 0, 0
	for i, o := range ops {
		switch {
		case refused[i+1]:
			w.settle(via, o, "refused", "")
		case !committed:
			w.mu.Lock()
			w.counts[o.label+": not written with its file"]++
			w.mu.Unlock()
		case o.replay != nil:
			present++
			w.settle(via, o, "replayed", "")
		default:
			written++
			w.settle(via, o, "written", "")
		}
	}
	if committed && (sum.Present != present || sum.Written != written) {
		w.failed.Add(1)
		w.t.Errorf("import: %+v; its rows say %d written, %d present", sum, written, present)
	}
}

// verify checks the ledger after the soak: the recount of the raw rows, the test's own
// ledger of successes and the product's reports agree to the kilogram, and the audit is
// clean. full asks that every kind of operation was tried and had its outcome.
func (w *world) verify(full bool) {
	t := w.t
	ctx := context.Background()
	rc, err := recount.Run(ctx, w.s.DB().DB)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rc.Problems {
		t.Errorf("recount: %s", p)
	}
	if rc.Entries != w.writes {
		t.Errorf("the journal holds %d entries; %d operations succeeded (signatures included)", rc.Entries, w.writes)
	}
	var term reports.Term
	a := w.get("/v1/reports/term?format=json")
	if a.err != nil || a.status != 200 || json.Unmarshal(a.body, &term) != nil {
		t.Fatalf("term report: %d %s %v", a.status, a.body, a.err)
	}
	for _, sc := range contracts {
		got := rc.Contracts[sc.code]
		if got == nil {
			t.Errorf("%s: not in the recount", sc.code)
			continue
		}
		if d := w.totals[sc.code].Diff(got.Totals); d != nil {
			t.Errorf("%s: the successes the clients saw and the recount of the postings differ: %v", sc.code, d)
		}
		st, err := w.s.Contract(ctx, sc.code)
		if err != nil {
			t.Fatal(err)
		}
		p := st.Position
		if d := got.Totals.Diff(recount.Totals{Contracted: p.Contracted.Kg(), Replacements: p.Replacements.Kg(), Open: p.Open.Kg(),
			Delivered: p.Delivered.Kg(), Holding: p.Holding.Kg(), Retired: p.Retired.Kg(), Cancelled: p.Cancelled.Kg(),
			Reversed: p.Reversed.Kg(), BufferCancelled: p.BufferCancelled.Kg()}); d != nil {
			t.Errorf("%s: the recount and the store's position differ: %v", sc.code, d)
		}
		var v service.ContractJSON
		if a := w.get("/v1/contracts/" + sc.code); a.err != nil || a.status != 200 || json.Unmarshal(a.body, &v) != nil {
			t.Fatalf("GET %s: %d %s %v", sc.code, a.status, a.body, a.err)
		}
		if d := got.Totals.Diff(recount.Totals{Contracted: v.Contracted.Kg(), Replacements: v.Replacements.Kg(), Open: v.Open.Kg(),
			Delivered: v.Delivered.Kg(), Holding: v.Holding.Kg(), Retired: v.Retired.Kg(), Cancelled: v.Cancelled.Kg(),
			Reversed: v.Reversed.Kg(), BufferCancelled: v.BufferCancelled.Kg()}); d != nil {
			t.Errorf("%s: the recount and the API's position differ: %v", sc.code, d)
		}
		for _, tc := range term.Contracts {
			if tc.Code != sc.code {
				continue
			}
			if d := got.Totals.Diff(recount.Totals{Contracted: tc.Contracted.Kg(), Replacements: tc.Replacements.Kg(), Open: got.Open,
				Delivered: tc.Delivered.Kg(), Holding: tc.Holding.Kg(), Retired: tc.Retired.Kg(), Cancelled: tc.Cancelled.Kg(),
				Reversed: tc.Reversed.Kg(), BufferCancelled: tc.BufferCancelled.Kg()}); d != nil {
				t.Errorf("%s: the recount and the term report differ: %v", sc.code, d)
			}
			var years recount.Totals
			for _, y := range tc.Years {
				years.Delivered += y.Delivered.Kg()
				years.Retired += y.Retired.Kg()
				years.Cancelled += y.Cancelled.Kg()
				years.Reversed += y.Reversed.Kg()
			}
			if d := years.Diff(recount.Totals{Delivered: got.Delivered, Retired: got.Retired, Cancelled: got.Cancelled, Reversed: got.Reversed}); d != nil {
				t.Errorf("%s: the term report's years add up otherwise than the recount: %v", sc.code, d)
			}
		}
		for _, state := range []string{"delivered", "retired", "reversed"} {
			if got.Serials[state] != w.serials[sc.code][state] {
				t.Errorf("%s: %d serials %s in the blocks; the successes say %d", sc.code, got.Serials[state], state, w.serials[sc.code][state])
			}
		}
		if held := got.Serials["delivered"] * sc.unitKg; held != p.SerializedHolding.Kg() || held > got.Holding {
			t.Errorf("%s: %d serials held, the store's serialized holding %s, holding %s", sc.code, got.Serials["delivered"], p.SerializedHolding, recount.FormatKg(got.Holding))
		}
	}
	res, err := w.s.Audit(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		t.Errorf("audit finding: %+v", f)
	}
	var audit service.AuditJSON
	if a := w.get("/v1/audit"); a.err != nil || a.status != 200 || json.Unmarshal(a.body, &audit) != nil || !audit.OK {
		t.Errorf("GET /v1/audit: %d %s %v", a.status, a.body, a.err)
	}
	if !full {
		return
	}
	// A minute is enough for every kind of operation to be tried through every front end,
	// and for the mix to have both written and refused.
	for _, want := range []string{"deliver: written", "deliver serials: written", "retire: written", "retire serials: written",
		"cancel: written", "reverse to be replaced: written", "reverse from the buffer: written", "revert delivery: written",
		"deliver reused serials: conflict", "retire retired serials: conflict", "over-deliver: insufficient",
		"retire beyond any holding: insufficient", "future date: invalid", "bad tonnes: invalid", "unknown contract: not-found",
		"before the term: invalid", "no beneficiary: invalid", "revert what is retired: immutable", "revert an unknown entry: not-found",
		"reuse a key: key-reused", "replay: replayed", "(via store)", "(via http)", "(via batch)", "(via atomic batch)",
		"(via import)", "(via import --skip-invalid)"} {
		if w.counts[want] == 0 {
			t.Errorf("the soak never saw %q", want)
		}
	}
}
