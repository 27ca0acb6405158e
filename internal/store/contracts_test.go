package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/carbonledger/carbonledger/ledger"
)

var (
	cday          = ledger.Date
	cTonnesEq     = cmp.Comparer(func(a, b ledger.Tonnes) bool { return a.Equal(b) })
	cSortPostings = cmpopts.SortSlices(func(a, b ledger.Posting) bool { return a.Account < b.Account })
)

// opOK returns a function that fails the test when an operation failed or was a replay, and
// returns its result: opOK(t)(s.Deliver(ctx, r)).
func opOK(t testing.TB) func(Result, error) Result {
	return func(res Result, err error) Result {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if res.Replay {
			t.Fatalf("entry %s: got a replay, want a new entry", res.Entry.ID)
		}
		return res
	}
}

func serialsOf(t testing.TB, s string) *ledger.SerialRange {
	t.Helper()
	r, err := ledger.ParseSerials(s)
	if err != nil {
		t.Fatalf("ParseSerials(%q): %v", s, err)
	}
	return &r
}

func positionOf(t testing.TB, s *Store, code string) ledger.Position {
	t.Helper()
	st, err := s.Contract(context.Background(), code)
	if err != nil {
		t.Fatalf("contract %s: %v", code, err)
	}
	return st.Position
}

func balanceOf(t testing.TB, s *Store, account string) ledger.Tonnes {
	t.Helper()
	var b ledger.Tonnes
	if err := s.DB().GetContext(context.Background(), &b, `SELECT balance FROM accounts WHERE code = $1`, account); err != nil {
		t.Fatalf("balance of %s: %v", account, err)
	}
	return b
}

// wantPosition compares the figures of a position given as "field=tonnes" pairs.
func wantPosition(t testing.TB, s *Store, code string, want map[string]string) {
	t.Helper()
	p := positionOf(t, s, code)
	got := map[string]ledger.Tonnes{"contracted": p.Contracted, "replacements": p.Replacements, "open": p.Open,
		"delivered": p.Delivered, "holding": p.Holding, "retired": p.Retired, "cancelled": p.Cancelled,
		"reversed": p.Reversed, "buffer_cancelled": p.BufferCancelled, "serialized_holding": p.SerializedHolding}
	for k, v := range want {
		g, found := got[k]
		if !found {
			t.Fatalf("no position field %q", k)
		}
		if !g.Equal(tn(v)) {
			t.Errorf("contract %s: %s = %s, want %s", code, k, g, tn(v))
		}
	}
	if bad := p.Check(); len(bad) > 0 {
		t.Errorf("contract %s: identities do not hold: %v", code, bad)
	}
}

func wantBlocks(t testing.TB, s *Store, code string, want []string) {
	t.Helper()
	bs, err := s.SerialBlocks(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range bs {
		got = append(got, fmt.Sprintf("%s:%d-%d %s", b.Prefix, b.First, b.Last, b.State))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("serial blocks of %s (-want +got):\n%s", code, diff)
	}
}

func wantMessage(t testing.TB, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func deliverReq(code, tonnes string, date time.Time) ledger.DeliverRequest {
	return ledger.DeliverRequest{Contract: code, Tonnes: tn(tonnes), Date: date}
}

func retireReq(code, tonnes string, date time.Time) ledger.RetireRequest {
	return ledger.RetireRequest{Contract: code, Tonnes: tn(tonnes), Date: date, Beneficiary: "Acme Buyer", Reason: "claim", Claim: "2025"}
}

func TestAddContract(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	c := addContract(t, s, contractDoc("TN150", map[string]any{
		"tonnes": "95000", "term_start": "2024-07-01", "term_end": "2030-06-30", "signed_on": "2024-03-21",
		"over_delivery_tolerance": "25.5", "price_per_tonne": "120.50", "currency": "USD",
	}))

	st, err := s.Contract(ctx, "TN150")
	if err != nil {
		t.Fatal(err)
	}
	var sched []string
	sum := ledger.Zero
	for _, l := range st.Schedule {
		sched = append(sched, l.Tonnes.String())
		sum = sum.Add(l.Tonnes)
	}
	wantSched := []string{"15834.000", "15834.000", "15833.000", "15833.000", "15833.000", "15833.000"}
	if diff := cmp.Diff(wantSched, sched); diff != "" {
		t.Errorf("even schedule of 95,000 t over 6 years (-want +got):\n%s", diff)
	}
	if !sum.Equal(tn("95000")) {
		t.Errorf("schedule adds up to %s, want 95000.000", sum)
	}
	if st.ScheduleVersion != 1 || st.ScheduleExplicit {
		t.Errorf("schedule version %d explicit %v, want 1 false", st.ScheduleVersion, st.ScheduleExplicit)
	}

	// The accounts, with their kinds and floors.
	var accts []struct {
		Code  string         `db:"code"`
		Kind  string         `db:"kind"`
		Floor sql.NullString `db:"floor"`
	}
	if err := s.DB().SelectContext(ctx, &accts, `SELECT a.code, a.kind, a.floor::text AS floor FROM accounts a
		JOIN books b ON b.id = a.book_id WHERE b.code = 'TN150' ORDER BY a.code`); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range accts {
		f := "none"
		if a.Floor.Valid {
			f = tn(a.Floor.String).String()
		}
		got[a.Code] = a.Kind + " " + f
	}
	want := map[string]string{
		"supplier:good-supplier:supply:TN150": "supply none",
		"contract:TN150:open":                 "open -25.500",
		"contract:TN150:cancelled":            "cancelled 0.000",
		"buyer:acme-buyer:holding:TN150":      "holding 0.000",
		"buyer:acme-buyer:retired:TN150":      "retired 0.000",
		"buyer:acme-buyer:reversed:TN150":     "reversed 0.000",
		"registry:car:buffer:TN150":           "buffer none",
		"registry:car:buffer-cancelled:TN150": "buffer_cancelled 0.000",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}

	// The sign entry posts the tonnes from supply to open.
	es, err := s.Entries(ctx, "TN150")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Kind != ledger.KindSign || !es[0].EffectiveOn.Equal(cday(2024, 3, 21)) {
		t.Fatalf("entries = %+v, want one sign entry effective 2024-03-21", es)
	}
	wantPostings := []ledger.Posting{{Account: "contract:TN150:open", Amount: tn("95000")}, {Account: "supplier:good-supplier:supply:TN150", Amount: tn("-95000")}}
	if diff := cmp.Diff(wantPostings, es[0].Postings, cTonnesEq, cSortPostings); diff != "" {
		t.Errorf("sign postings (-want +got):\n%s", diff)
	}
	if es[0].Metadata["terms_sha256"] != c.TermsDigest() {
		t.Errorf("sign entry terms_sha256 = %q, want %q", es[0].Metadata["terms_sha256"], c.TermsDigest())
	}
	wantPosition(t, s, "TN150", map[string]string{"contracted": "95000", "open": "95000", "delivered": "0", "holding": "0"})
	if b := balanceOf(t, s, "contract:TN150:open"); !b.Equal(tn("95000")) {
		t.Errorf("open balance %s, want 95000", b)
	}

	// Adding the same contract again is a replay.
	before := snapshot(t, s)
	first := es[0].ID
	res, err := s.AddContract(ctx, c, "")
	if err != nil || !res.Replay || res.Entry.ID != first {
		t.Errorf("add again: got %+v, %v; want a replay of entry %s", res, err, first)
	}
	if diff := cmp.Diff(before, snapshot(t, s)); diff != "" {
		t.Errorf("replay changed the database:\n%s", diff)
	}

	// The same code with different terms is a conflict, under the default key or another.
	other, err := ledger.ParseContractJSON(strings.NewReader(contractDoc("TN150", map[string]any{"tonnes": "96000"})))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "another-key"} {
		err := refused(t, s, ledger.ErrConflict, func() error { _, err := s.AddContract(ctx, other, key); return err })
		wantMessage(t, err, "code", "TN150")
	}

	// A contract whose explicit schedule does not add up is refused whole.
	bad, err := ledger.ParseContractJSON(strings.NewReader(contractDoc("SCHED", map[string]any{
		"schedule": []map[string]any{{"year": 1, "tonnes": "1000"}}})))
	if err != nil {
		t.Fatal(err)
	}
	bad.Schedule[0].Tonnes = tn("999")
	err = refused(t, s, ledger.ErrInvalid, func() error { _, err := s.AddContract(ctx, bad, ""); return err })
	wantMessage(t, err, "schedule", "add up")
	checkSound(t, s)
}

func TestContractJSONRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		over  map[string]any
		field string
		rule  string
	}{
		{"missing buyer", map[string]any{"buyer": nil}, "buyer", "is required"},
		{"unknown field", map[string]any{"colour": "green"}, "colour", "is not a contract field"},
		{"term ends before it starts", map[string]any{"term_end": "2024-12-31"}, "term_end", "before term_start"},
		{"zero tonnes", map[string]any{"tonnes": "0"}, "tonnes", "greater than zero"},
		{"negative tonnes", map[string]any{"tonnes": "-5"}, "tonnes", "greater than zero"},
		{"too many decimals", map[string]any{"tonnes": "1.2345"}, "tonnes", "more than 3 decimal places"},
		{"schedule does not add up", map[string]any{"schedule": []map[string]any{{"year": 1, "tonnes": "999"}}}, "schedule", "add up exactly"},
		{"bad delivery mode", map[string]any{"delivery_mode": "courier"}, "delivery_mode", "transfer or retire_on_delivery"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ledger.ParseContractJSON(strings.NewReader(contractDoc("BAD", tc.over)))
			if !errors.Is(err, ledger.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			var fe *ledger.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("error %v: field %q, want %q", err, fe.Field, tc.field)
			}
			wantMessage(t, err, tc.rule)
		})
	}
}

func TestDeliver(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	c := addContract(t, s, contractDoc("T1", nil))
	a := c.Accounts()
	res := opOK(t)(s.Deliver(ctx, ledger.DeliverRequest{Contract: "T1", Tonnes: tn("100"), Date: cday(2025, 3, 1), Vintage: 2024, RegistryTx: "TX-1"}))
	e := res.Entry
	if e.Kind != ledger.KindDeliver || e.Metadata["contract_year"] != "1" || e.Metadata["registry_tx"] != "TX-1" || e.Vintage != 2024 {
		t.Errorf("delivery entry = %+v", e)
	}
	wantPosition(t, s, "T1", map[string]string{"open": "900", "delivered": "100", "holding": "100", "retired": "0"})
	if b := balanceOf(t, s, a.Holding); !b.Equal(tn("100")) {
		t.Errorf("holding balance %s, want 100", b)
	}

	// Retire on delivery: open -> retired, nothing held.
	r := addContract(t, s, contractDoc("T2", map[string]any{"delivery_mode": "retire_on_delivery"}))
	res = opOK(t)(s.Deliver(ctx, deliverReq("T2", "250.5", cday(2025, 4, 1))))
	if res.Entry.Metadata["beneficiary"] != "Acme Buyer" || !strings.Contains(res.Entry.Description, "retired on delivery") {
		t.Errorf("retire-on-delivery entry = %+v", res.Entry)
	}
	wantPosition(t, s, "T2", map[string]string{"open": "749.5", "delivered": "250.5", "holding": "0", "retired": "250.5"})
	if b := balanceOf(t, s, r.Accounts().Retired); !b.Equal(tn("250.5")) {
		t.Errorf("retired balance %s, want 250.5", b)
	}
	// Nothing is held to retire; and the retirement is final, so the delivery cannot be reverted.
	refused(t, s, ledger.ErrInsufficient, func() error { _, err := s.Retire(ctx, retireReq("T2", "1", cday(2025, 5, 1))); return err })
	refused(t, s, ledger.ErrImmutable, func() error {
		_, err := s.Revert(ctx, ledger.RevertRequest{Entry: res.Entry.ID, Reason: "wrong"})
		return err
	})

	// Zero tonnes and unknown contracts.
	refused(t, s, ledger.ErrInvalid, func() error { _, err := s.Deliver(ctx, deliverReq("T1", "0", cday(2025, 3, 1))); return err })
	err := refused(t, s, ledger.ErrNotFound, func() error { _, err := s.Deliver(ctx, deliverReq("NOPE", "1", cday(2025, 3, 1))); return err })
	wantMessage(t, err, "contract", "NOPE", "does not exist")
	checkSound(t, s)
}

func TestOverDelivery(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("T1", nil))
	opOK(t)(s.Deliver(ctx, deliverReq("T1", "900", cday(2025, 3, 1))))
	err := refused(t, s, ledger.ErrInsufficient, func() error { _, err := s.Deliver(ctx, deliverReq("T1", "100.001", cday(2025, 3, 2))); return err })
	wantMessage(t, err, "tonnes", "100.001", "100.000 t open")
	opOK(t)(s.Deliver(ctx, deliverReq("T1", "100", cday(2025, 3, 2))))
	err = refused(t, s, ledger.ErrInsufficient, func() error { _, err := s.Deliver(ctx, deliverReq("T1", "0.001", cday(2025, 3, 3))); return err })
	wantMessage(t, err, "0.000 t open")
	wantPosition(t, s, "T1", map[string]string{"open": "0", "delivered": "1000"})

	// With a tolerance the open balance may go negative by at most the tolerance.
	c := addContract(t, s, contractDoc("T2", map[string]any{"over_delivery_tolerance": "50"}))
	opOK(t)(s.Deliver(ctx, deliverReq("T2", "1000", cday(2025, 3, 1))))
	opOK(t)(s.Deliver(ctx, deliverReq("T2", "30", cday(2025, 3, 2))))
	err = refused(t, s, ledger.ErrInsufficient, func() error { _, err := s.Deliver(ctx, deliverReq("T2", "20.001", cday(2025, 3, 3))); return err })
	wantMessage(t, err, "over-delivery tolerance of 50.000 t")
	opOK(t)(s.Deliver(ctx, deliverReq("T2", "20", cday(2025, 3, 3))))
	wantPosition(t, s, "T2", map[string]string{"open": "-50", "delivered": "1050", "holding": "1050"})
	if b := balanceOf(t, s, c.Accounts().Open); !b.Equal(tn("-50")) {
		t.Errorf("open balance %s, want -50", b)
	}
	refused(t, s, ledger.ErrInsufficient, func() error { _, err := s.Deliver(ctx, deliverReq("T2", "0.001", cday(2025, 3, 4))); return err })
	checkSound(t, s)
}

func TestDates(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("T1", nil))
	s.Now = func() time.Time { return time.Date(2026, 2, 10, 15, 0, 0, 0, time.UTC) }

	err := refused(t, s, ledger.ErrInvalid, func() error { _, err := s.Deliver(ctx, deliverReq("T1", "10", cday(2024, 12, 31))); return err })
	wantMessage(t, err, "date", "2024-12-31", "before the contract term starts")
	err = refused(t, s, ledger.ErrInvalid, func() error { _, err := s.Deliver(ctx, deliverReq("T1", "10", cday(2026, 1, 15))); return err })
	wantMessage(t, err, "date", "2026-01-15", "after the contract term ended", "--allow-late")

	late := deliverReq("T1", "10", cday(2026, 1, 15))
	late.AllowLate = true
	res := opOK(t)(s.Deliver(ctx, late))
	if res.Entry.Metadata["late"] != "true" || !strings.Contains(res.Entry.Description, "late") {
		t.Errorf("late delivery entry: metadata %v, description %q; want late=true", res.Entry.Metadata, res.Entry.Description)
	}
	if y := res.Entry.Metadata["contract_year"]; y != "1" {
		t.Errorf("late delivery contract_year = %q, want the last year 1", y)
	}

	// The future, beyond the tolerance (one day by default).
	late.Date, late.Key = cday(2026, 2, 12), ""
	err = refused(t, s, ledger.ErrInvalid, func() error { _, err := s.Deliver(ctx, late); return err })
	wantMessage(t, err, "date", "2026-02-12", "in the future")
	late.Date = cday(2026, 2, 11)
	opOK(t)(s.Deliver(ctx, late))
	s.FutureTolerance = 0
	late.Date = cday(2026, 2, 11)
	refused(t, s, ledger.ErrInvalid, func() error { _, err := s.Deliver(ctx, late); return err })
	err = refused(t, s, ledger.ErrInvalid, func() error { _, err := s.Retire(ctx, retireReq("T1", "1", cday(2026, 2, 11))); return err })
	wantMessage(t, err, "in the future")
	checkSound(t, s)
}

func TestRetire(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	c := addContract(t, s, contractDoc("T1", nil))
	opOK(t)(s.Deliver(ctx, deliverReq("T1", "100", cday(2025, 3, 1))))

	// Back-dated: a retirement before the delivery it draws on.
	err := refused(t, s, ledger.ErrInsufficient, func() error { _, err := s.Retire(ctx, retireReq("T1", "50", cday(2025, 2, 1))); return err })
	wantMessage(t, err, "2025-02-01")
	err = refused(t, s, ledger.ErrInsufficient, func() error { _, err := s.Retire(ctx, retireReq("T1", "100.001", cday(2025, 3, 5))); return err })
	wantMessage(t, err, "tonnes", "100.000 t held")
	refused(t, s, ledger.ErrInvalid, func() error {
		r := retireReq("T1", "1", cday(2025, 3, 5))
		r.Beneficiary = ""
		_, err := s.Retire(ctx, r)
		return err
	})

	res := opOK(t)(s.Retire(ctx, retireReq("T1", "60", cday(2025, 3, 5))))
	if res.Entry.Metadata["claim"] != "2025" || res.Entry.Metadata["beneficiary"] != "Acme Buyer" {
		t.Errorf("retire metadata = %v", res.Entry.Metadata)
	}
	wantPosition(t, s, "T1", map[string]string{"delivered": "100", "holding": "40", "retired": "60", "open": "900"})
	if b := balanceOf(t, s, c.Accounts().Retired); !b.Equal(tn("60")) {
		t.Errorf("retired balance %s, want 60", b)
	}
	err = refused(t, s, ledger.ErrInsufficient, func() error { _, err := s.Retire(ctx, retireReq("T1", "41", cday(2025, 3, 6))); return err })
	wantMessage(t, err, "40.000 t held", "already retired 60.000 t")

	// Retirement is final.
	err = refused(t, s, ledger.ErrImmutable, func() error {
		_, err := s.Revert(ctx, ledger.RevertRequest{Entry: res.Entry.ID, Reason: "mistake"})
		return err
	})
	wantMessage(t, err, "final")
	checkSound(t, s)
}

func TestSerials(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("A", nil))
	addContract(t, s, contractDoc("B", map[string]any{"registry": "Climate Action Reserve"}))
	addContract(t, s, contractDoc("V", map[string]any{"registry": "verra"}))
	addContract(t, s, contractDoc("NOREG", map[string]any{"registry": ""}))
	const p = "CAR-1-MX-1234-22-101-2025"

	dr := deliverReq("A", "100", cday(2025, 3, 1))
	dr.Serials, dr.Vintage = serialsOf(t, p+"-1 to 100"), 2024
	opOK(t)(s.Deliver(ctx, dr))
	wantBlocks(t, s, "A", []string{p + ":1-100 delivered"})
	wantPosition(t, s, "A", map[string]string{"holding": "100", "serialized_holding": "100"})

	// Overlapping ranges: same contract, another contract of the same registry.
	for _, tc := range []struct{ code, serials string }{{"A", p + ":100-199"}, {"B", p + ":50-149"}, {"B", p + ":1-100"}} {
		r := deliverReq(tc.code, "100", cday(2025, 3, 2))
		r.Serials = serialsOf(t, tc.serials)
		err := refused(t, s, ledger.ErrConflict, func() error { _, err := s.Deliver(ctx, r); return err })
		wantMessage(t, err, "serials", "overlap", "contract A")
	}
	// The same series under another registry is another range.
	r := deliverReq("V", "100", cday(2025, 3, 2))
	r.Serials = serialsOf(t, p+":1-100")
	opOK(t)(s.Deliver(ctx, r))
	// The count of serials must be the tonnes; a contract without registry takes none.
	r = deliverReq("B", "10", cday(2025, 3, 2))
	r.Serials = serialsOf(t, p+":200-208")
	err := refused(t, s, ledger.ErrInvalid, func() error { _, err := s.Deliver(ctx, r); return err })
	wantMessage(t, err, "serials", "9 serials")
	r = deliverReq("NOREG", "10", cday(2025, 3, 2))
	r.Serials = serialsOf(t, p+":200-209")
	refused(t, s, ledger.ErrInvalid, func() error { _, err := s.Deliver(ctx, r); return err })

	// Retiring part of a block splits it.
	rr := retireReq("A", "30", cday(2025, 3, 5))
	rr.Serials = serialsOf(t, p+":41-70")
	res := opOK(t)(s.Retire(ctx, rr))
	if res.Entry.Vintage != 2024 || res.Entry.Metadata["serials"] != p+":41-70" {
		t.Errorf("retire entry vintage %d metadata %v; want the block's vintage 2024 and the serials", res.Entry.Vintage, res.Entry.Metadata)
	}
	wantBlocks(t, s, "A", []string{p + ":1-40 delivered", p + ":41-70 retired", p + ":71-100 delivered"})
	wantPosition(t, s, "A", map[string]string{"holding": "70", "retired": "30", "serialized_holding": "70"})

	// A retired serial is never retired or delivered again.
	rr = retireReq("A", "11", cday(2025, 3, 6))
	rr.Serials = serialsOf(t, p+":60-70")
	err = refused(t, s, ledger.ErrConflict, func() error { _, err := s.Retire(ctx, rr); return err })
	wantMessage(t, err, "serials", "already retired")
	rr.Serials, rr.Tonnes = serialsOf(t, p+":35-45"), tn("11")
	refused(t, s, ledger.ErrConflict, func() error { _, err := s.Retire(ctx, rr); return err })
	r = deliverReq("B", "30", cday(2025, 3, 6))
	r.Serials = serialsOf(t, p+":41-70")
	refused(t, s, ledger.ErrConflict, func() error { _, err := s.Deliver(ctx, r); return err })
	r.Contract = "A"
	refused(t, s, ledger.ErrConflict, func() error { _, err := s.Deliver(ctx, r); return err })
	// Serials of another contract, or never delivered.
	opOK(t)(s.Deliver(ctx, deliverReq("B", "10", cday(2025, 3, 1))))
	rr = retireReq("B", "10", cday(2025, 3, 6))
	rr.Serials = serialsOf(t, p+":1-10")
	err = refused(t, s, ledger.ErrConflict, func() error { _, err := s.Retire(ctx, rr); return err })
	wantMessage(t, err, "contract A")
	rr.Serials = serialsOf(t, p+":5000-5009")
	refused(t, s, ledger.ErrInvalid, func() error { _, err := s.Retire(ctx, rr); return err })

	// Retiring a serialized holding needs its serials; the count must match the tonnes.
	err = refused(t, s, ledger.ErrInvalid, func() error { _, err := s.Retire(ctx, retireReq("A", "10", cday(2025, 3, 6))); return err })
	wantMessage(t, err, "serials", "required")
	rr = retireReq("A", "10", cday(2025, 3, 6))
	rr.Serials = serialsOf(t, p+":1-9")
	refused(t, s, ledger.ErrInvalid, func() error { _, err := s.Retire(ctx, rr); return err })
	// Retiring serials before they were delivered.
	rr.Serials, rr.Date = serialsOf(t, p+":1-10"), cday(2025, 2, 28)
	err = refused(t, s, ledger.ErrInvalid, func() error { _, err := s.Retire(ctx, rr); return err })
	wantMessage(t, err, "date", "before serials")
	// Unserialized tonnes beside serialized ones retire without serials.
	opOK(t)(s.Deliver(ctx, deliverReq("A", "5", cday(2025, 3, 7))))
	opOK(t)(s.Retire(ctx, retireReq("A", "5", cday(2025, 3, 8))))
	refused(t, s, ledger.ErrInvalid, func() error { _, err := s.Retire(ctx, retireReq("A", "1", cday(2025, 3, 8))); return err })
	wantPosition(t, s, "A", map[string]string{"delivered": "105", "holding": "70", "retired": "35", "serialized_holding": "70"})
	checkSound(t, s)
}

func TestParseSerials(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in                  string
		prefix              string
		first, last, tonnes int64
	}{
		{"CAR-1-MX-1234-22-101-2024:1-5000", "CAR-1-MX-1234-22-101-2024", 1, 5000, 5000},
		{"CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000", "CAR-1-US-1335-31-983-KS-2025-9205", 1, 5000, 5000},
		{"19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1", "VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1", 941467007, 941467431, 425},
		{"X:7-7", "X", 7, 7, 1},
	} {
		r, err := ledger.ParseSerials(tc.in)
		if err != nil {
			t.Errorf("ParseSerials(%q): %v", tc.in, err)
			continue
		}
		if r.Prefix != tc.prefix || r.First != tc.first || r.Last != tc.last || r.Count() != tc.tonnes {
			t.Errorf("ParseSerials(%q) = %+v (count %d), want %s %d-%d (%d)", tc.in, r, r.Count(), tc.prefix, tc.first, tc.last, tc.tonnes)
		}
	}
	for _, in := range []string{"", "   ", "ABC", "ABC:10-5", "ABC:1-", "ABC:-1-5", ":1-5", "ABC:1-5-7", "ABC 1-5", "ABC:1.5-7",
		"CAR-1-MX-9 to", "ABC:999999999999999-1000000000000000", "ABC:a-b", strings.Repeat("A", 301) + ":1-2"} {
		_, err := ledger.ParseSerials(in)
		if !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("ParseSerials(%q) = %v, want ErrInvalid", in, err)
			continue
		}
		var fe *ledger.FieldError
		if !errors.As(err, &fe) || fe.Field != "serials" {
			t.Errorf("ParseSerials(%q): error %v does not name the field serials", in, err)
		}
	}
}

func TestCancelAndTerminate(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("T1", nil))
	opOK(t)(s.Deliver(ctx, deliverReq("T1", "300", cday(2025, 3, 1))))
	opOK(t)(s.Cancel(ctx, ledger.CancelRequest{Contract: "T1", Tonnes: tn("100"), Date: cday(2025, 6, 30), Reason: "shortfall waived"}))
	wantPosition(t, s, "T1", map[string]string{"open": "600", "cancelled": "100", "delivered": "300"})

	err := refused(t, s, ledger.ErrInsufficient, func() error {
		_, err := s.Cancel(ctx, ledger.CancelRequest{Contract: "T1", Tonnes: tn("600.001"), Date: cday(2025, 7, 1), Reason: "x"})
		return err
	})
	wantMessage(t, err, "600.000 t open")
	refused(t, s, ledger.ErrInvalid, func() error {
		_, err := s.Cancel(ctx, ledger.CancelRequest{Contract: "T1", Tonnes: tn("1"), Date: cday(2025, 7, 1)})
		return err
	})
	refused(t, s, ledger.ErrInvalid, func() error {
		_, err := s.Cancel(ctx, ledger.CancelRequest{Contract: "T1", Tonnes: tn("10"), Date: cday(2025, 7, 1), Reason: "x", Terminate: true})
		return err
	})

	// Terminating cancels all that is open; then nothing more is delivered, cancelled or amended.
	term := opOK(t)(s.Cancel(ctx, ledger.CancelRequest{Contract: "T1", Date: cday(2025, 7, 1), Reason: "terminated", Terminate: true}))
	if term.Entry.Metadata["terminate"] != "true" {
		t.Errorf("termination metadata = %v", term.Entry.Metadata)
	}
	wantPosition(t, s, "T1", map[string]string{"open": "0", "cancelled": "700", "delivered": "300", "holding": "300"})
	st, err := s.Contract(ctx, "T1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status() != "terminated" || !st.Position.TerminatedOn.Equal(cday(2025, 7, 1)) {
		t.Errorf("status %s terminated on %v, want terminated 2025-07-01", st.Status(), st.Position.TerminatedOn)
	}
	err = refused(t, s, ledger.ErrInvalid, func() error { _, err := s.Deliver(ctx, deliverReq("T1", "1", cday(2025, 7, 2))); return err })
	wantMessage(t, err, "terminated")
	refused(t, s, ledger.ErrInvalid, func() error {
		_, err := s.Cancel(ctx, ledger.CancelRequest{Contract: "T1", Date: cday(2025, 7, 2), Reason: "again", Terminate: true})
		return err
	})
	nt := tn("1200")
	refused(t, s, ledger.ErrInvalid, func() error {
		_, err := s.Amend(ctx, ledger.AmendRequest{Contract: "T1", Tonnes: &nt, Date: cday(2025, 7, 2), Reason: "more"})
		return err
	})
	// Held credits can still be retired.
	opOK(t)(s.Retire(ctx, retireReq("T1", "300", cday(2025, 7, 3))))

	// Reverting the termination reopens the contract.
	opOK(t)(s.Revert(ctx, ledger.RevertRequest{Entry: term.Entry.ID, Reason: "terminated by mistake"}))
	wantPosition(t, s, "T1", map[string]string{"open": "600", "cancelled": "100"})
	opOK(t)(s.Deliver(ctx, deliverReq("T1", "600", cday(2025, 7, 4))))
	wantPosition(t, s, "T1", map[string]string{"open": "0", "delivered": "900"})
	checkSound(t, s)
}

func TestReverse(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	c := addContract(t, s, contractDoc("T1", nil))
	a := c.Accounts()
	opOK(t)(s.Deliver(ctx, deliverReq("T1", "300", cday(2025, 3, 1))))
	opOK(t)(s.Retire(ctx, retireReq("T1", "100", cday(2025, 3, 2))))

	// Replace: the tonnes leave the holding and the supplier owes them again.
	res := opOK(t)(s.Reverse(ctx, ledger.ReverseRequest{Contract: "T1", Tonnes: tn("50"), Date: cday(2025, 4, 1), Reason: "fire", Remedy: ledger.RemedyReplace}))
	if res.Entry.Kind != ledger.KindReverse || res.Entry.Metadata["remedy"] != "replace" || len(res.Entry.Postings) != 4 {
		t.Errorf("reversal entry = %+v", res.Entry)
	}
	wantPosition(t, s, "T1", map[string]string{"contracted": "1000", "replacements": "50", "open": "750", "delivered": "300",
		"holding": "150", "retired": "100", "reversed": "50"})
	if b := balanceOf(t, s, a.Supply); !b.Equal(tn("-1050")) {
		t.Errorf("supply balance %s, want -1050", b)
	}
	// The default remedy is replace.
	opOK(t)(s.Reverse(ctx, ledger.ReverseRequest{Contract: "T1", Tonnes: tn("10"), Date: cday(2025, 4, 2), Reason: "leak"}))
	wantPosition(t, s, "T1", map[string]string{"replacements": "60", "open": "760", "holding": "140", "reversed": "60"})
	err := refused(t, s, ledger.ErrInsufficient, func() error {
		_, err := s.Reverse(ctx, ledger.ReverseRequest{Contract: "T1", Tonnes: tn("140.001"), Date: cday(2025, 4, 3), Reason: "fire"})
		return err
	})
	wantMessage(t, err, "140.000 t held", "--remedy buffer")

	// Buffer: only the buffer accounts move; the buyer's tonnes stand.
	before := snapshot(t, s)
	opOK(t)(s.Reverse(ctx, ledger.ReverseRequest{Contract: "T1", Tonnes: tn("200"), Date: cday(2025, 4, 5), Reason: "wildfire", Remedy: ledger.RemedyBuffer}))
	after := snapshot(t, s)
	changed := map[string]string{}
	for acc, bal := range after.Balances {
		if before.Balances[acc] != bal {
			changed[acc] = tn(bal).String()
		}
	}
	if diff := cmp.Diff(map[string]string{a.Buffer: "-200.000", a.BufferCancelled: "200.000"}, changed); diff != "" {
		t.Errorf("accounts moved by a buffer reversal (-want +got):\n%s", diff)
	}
	wantPosition(t, s, "T1", map[string]string{"holding": "140", "retired": "100", "buffer_cancelled": "200", "open": "760"})
	err = refused(t, s, ledger.ErrInsufficient, func() error {
		_, err := s.Reverse(ctx, ledger.ReverseRequest{Contract: "T1", Tonnes: tn("300.001"), Date: cday(2025, 4, 6), Reason: "fire", Remedy: ledger.RemedyBuffer})
		return err
	})
	wantMessage(t, err, "300.000 t delivered")
	refused(t, s, ledger.ErrInvalid, func() error {
		_, err := s.Reverse(ctx, ledger.ReverseRequest{Contract: "T1", Tonnes: tn("1"), Date: cday(2025, 4, 6), Reason: "fire", Remedy: "insurance"})
		return err
	})
	refused(t, s, ledger.ErrInvalid, func() error {
		_, err := s.Reverse(ctx, ledger.ReverseRequest{Contract: "T1", Tonnes: tn("1"), Date: cday(2025, 4, 6), Remedy: ledger.RemedyReplace})
		return err
	})

	// The replacement is delivered like any open tonne.
	opOK(t)(s.Deliver(ctx, deliverReq("T1", "760", cday(2025, 5, 1))))
	wantPosition(t, s, "T1", map[string]string{"open": "0", "delivered": "1060", "holding": "900"})
	refused(t, s, ledger.ErrInsufficient, func() error { _, err := s.Deliver(ctx, deliverReq("T1", "1", cday(2025, 5, 2))); return err })

	// Serialized credits are reversed by serial range.
	addContract(t, s, contractDoc("S1", nil))
	dr := deliverReq("S1", "100", cday(2025, 3, 1))
	dr.Serials = serialsOf(t, "CAR-X:1-100")
	opOK(t)(s.Deliver(ctx, dr))
	err = refused(t, s, ledger.ErrInvalid, func() error {
		_, err := s.Reverse(ctx, ledger.ReverseRequest{Contract: "S1", Tonnes: tn("10"), Date: cday(2025, 4, 1), Reason: "fire"})
		return err
	})
	wantMessage(t, err, "serials", "required")
	opOK(t)(s.Reverse(ctx, ledger.ReverseRequest{Contract: "S1", Tonnes: tn("10"), Date: cday(2025, 4, 1), Reason: "fire", Serials: serialsOf(t, "CAR-X:91-100")}))
	wantBlocks(t, s, "S1", []string{"CAR-X:1-90 delivered", "CAR-X:91-100 reversed"})
	wantPosition(t, s, "S1", map[string]string{"holding": "90", "reversed": "10", "serialized_holding": "90", "open": "910"})
	rr := retireReq("S1", "10", cday(2025, 4, 2))
	rr.Serials = serialsOf(t, "CAR-X:91-100")
	refused(t, s, ledger.ErrConflict, func() error { _, err := s.Retire(ctx, rr); return err })
	checkSound(t, s)
}

func TestAmend(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	c := addContract(t, s, contractDoc("T1", map[string]any{"term_end": "2027-12-31"}))
	amend := func(tonnes string, sched []ledger.ScheduleLine, date time.Time) (Result, error) {
		r := ledger.AmendRequest{Contract: "T1", Schedule: sched, Date: date, Reason: "renegotiated"}
		if tonnes != "" {
			x := tn(tonnes)
			r.Tonnes = &x
		}
		return s.Amend(ctx, r)
	}
	schedOf := func() (int, []string) {
		st, err := s.Contract(ctx, "T1")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range st.Schedule {
			out = append(out, l.Tonnes.String())
		}
		return st.ScheduleVersion, out
	}

	res := opOK(t)(amend("1200", nil, cday(2025, 2, 1)))
	if res.Entry.Metadata["tonnes_before"] != "1000.000" || res.Entry.Metadata["tonnes_after"] != "1200.000" {
		t.Errorf("amend metadata = %v", res.Entry.Metadata)
	}
	wantPosition(t, s, "T1", map[string]string{"contracted": "1200", "open": "1200"})
	if b := balanceOf(t, s, c.Accounts().Supply); !b.Equal(tn("-1200")) {
		t.Errorf("supply balance %s, want -1200", b)
	}
	if v, sc := schedOf(); v != 2 || !cmp.Equal(sc, []string{"400.000", "400.000", "400.000"}) {
		t.Errorf("schedule after raising: version %d %v", v, sc)
	}
	opOK(t)(s.Deliver(ctx, deliverReq("T1", "300", cday(2025, 3, 1))))
	opOK(t)(amend("1100", nil, cday(2025, 4, 1)))
	wantPosition(t, s, "T1", map[string]string{"contracted": "1100", "open": "800", "delivered": "300"})
	if v, sc := schedOf(); v != 3 || !cmp.Equal(sc, []string{"367.000", "367.000", "366.000"}) {
		t.Errorf("schedule after lowering: version %d %v", v, sc)
	}

	// Not below what was delivered or cancelled.
	opOK(t)(s.Cancel(ctx, ledger.CancelRequest{Contract: "T1", Tonnes: tn("100"), Date: cday(2025, 4, 2), Reason: "waived"}))
	err := refused(t, s, ledger.ErrInsufficient, func() error { _, err := amend("399.999", nil, cday(2025, 4, 3)); return err })
	wantMessage(t, err, "tonnes", "700.000 t open", "to 400.000 t")
	opOK(t)(amend("400", nil, cday(2025, 4, 3)))
	wantPosition(t, s, "T1", map[string]string{"contracted": "400", "open": "0", "delivered": "300", "cancelled": "100"})

	// Schedule only: an entry without postings and a new schedule version.
	before := snapshot(t, s)
	res = opOK(t)(amend("", []ledger.ScheduleLine{{Year: 1, Tonnes: tn("300")}, {Year: 2, Tonnes: tn("100")}}, cday(2025, 4, 4)))
	if len(res.Entry.Postings) != 0 {
		t.Errorf("schedule-only amendment posted %v", res.Entry.Postings)
	}
	after := snapshot(t, s)
	if diff := cmp.Diff(before.Balances, after.Balances); diff != "" {
		t.Errorf("schedule-only amendment moved balances:\n%s", diff)
	}
	if v, sc := schedOf(); v != 5 || !cmp.Equal(sc, []string{"300.000", "100.000"}) {
		t.Errorf("schedule after re-phasing: version %d %v", v, sc)
	}
	wantPosition(t, s, "T1", map[string]string{"contracted": "400"})
	// The schedule is now explicit: a new total needs a new schedule.
	err = refused(t, s, ledger.ErrInvalid, func() error { _, err := amend("500", nil, cday(2025, 4, 5)); return err })
	wantMessage(t, err, "schedule", "is required")
	err = refused(t, s, ledger.ErrInvalid, func() error {
		_, err := amend("500", []ledger.ScheduleLine{{Year: 1, Tonnes: tn("300")}, {Year: 2, Tonnes: tn("100")}}, cday(2025, 4, 5))
		return err
	})
	wantMessage(t, err, "schedule", "add up exactly to the contracted 500.000 t")
	refused(t, s, ledger.ErrInvalid, func() error {
		_, err := amend("", []ledger.ScheduleLine{{Year: 4, Tonnes: tn("400")}}, cday(2025, 4, 5))
		return err
	})
	err = refused(t, s, ledger.ErrInvalid, func() error {
		_, err := amend("", []ledger.ScheduleLine{{Year: 1, Tonnes: tn("300")}, {Year: 2, Tonnes: tn("100")}}, cday(2025, 4, 5))
		return err
	})
	wantMessage(t, err, "would change nothing")
	refused(t, s, ledger.ErrInvalid, func() error { _, err := amend("", nil, cday(2025, 4, 5)); return err })
	refused(t, s, ledger.ErrInvalid, func() error { _, err := amend("0", nil, cday(2025, 4, 5)); return err })
	opOK(t)(amend("500", []ledger.ScheduleLine{{Year: 1, Tonnes: tn("300")}, {Year: 3, Tonnes: tn("200")}}, cday(2025, 4, 5)))
	wantPosition(t, s, "T1", map[string]string{"contracted": "500", "open": "100"})

	// An amendment is not reverted.
	refused(t, s, ledger.ErrInvalid, func() error {
		_, err := s.Revert(ctx, ledger.RevertRequest{Entry: res.Entry.ID, Reason: "undo"})
		return err
	})
	checkSound(t, s)
}

func TestRevert(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("T1", nil))
	es, err := s.Entries(ctx, "T1")
	if err != nil {
		t.Fatal(err)
	}
	sign := es[0]

	d1 := opOK(t)(s.Deliver(ctx, deliverReq("T1", "120", cday(2025, 3, 1))))
	rv := opOK(t)(s.Revert(ctx, ledger.RevertRequest{Entry: d1.Entry.ID, Reason: "typo"}))
	if rv.Entry.Reverts != d1.Entry.ID || !rv.Entry.EffectiveOn.Equal(cday(2025, 3, 1)) {
		t.Errorf("revert entry = %+v", rv.Entry)
	}
	wantPosition(t, s, "T1", map[string]string{"open": "1000", "delivered": "0", "holding": "0"})
	err = refused(t, s, ledger.ErrConflict, func() error {
		_, err := s.Revert(ctx, ledger.RevertRequest{Entry: d1.Entry.ID, Reason: "again"})
		return err
	})
	wantMessage(t, err, "already reverted", rv.Entry.ID)
	refused(t, s, ledger.ErrInvalid, func() error {
		_, err := s.Revert(ctx, ledger.RevertRequest{Entry: rv.Entry.ID, Reason: "undo the undo"})
		return err
	})
	refused(t, s, ledger.ErrInvalid, func() error {
		_, err := s.Revert(ctx, ledger.RevertRequest{Entry: sign.ID, Reason: "never signed"})
		return err
	})
	refused(t, s, ledger.ErrNotFound, func() error {
		_, err := s.Revert(ctx, ledger.RevertRequest{Entry: "0190c3a2-0000-7000-8000-000000000000", Reason: "x"})
		return err
	})
	refused(t, s, ledger.ErrInvalid, func() error {
		_, err := s.Revert(ctx, ledger.RevertRequest{Entry: "not-a-uuid", Reason: "x"})
		return err
	})
	d2 := opOK(t)(s.Deliver(ctx, deliverReq("T1", "50", cday(2025, 3, 2))))
	refused(t, s, ledger.ErrInvalid, func() error {
		_, err := s.Revert(ctx, ledger.RevertRequest{Entry: d2.Entry.ID, Reason: "x", Date: cday(2025, 3, 1)})
		return err
	})
	refused(t, s, ledger.ErrInvalid, func() error {
		_, err := s.Revert(ctx, ledger.RevertRequest{Entry: d2.Entry.ID})
		return err
	})
	// A delivery whose credits were since retired cannot be reverted.
	opOK(t)(s.Retire(ctx, retireReq("T1", "50", cday(2025, 3, 3))))
	refused(t, s, ledger.ErrInsufficient, func() error {
		_, err := s.Revert(ctx, ledger.RevertRequest{Entry: d2.Entry.ID, Reason: "x"})
		return err
	})

	// With serials: the block disappears and the serials can be delivered again.
	dr := deliverReq("T1", "100", cday(2025, 4, 1))
	dr.Serials = serialsOf(t, "CAR-R:1-100")
	d3 := opOK(t)(s.Deliver(ctx, dr))
	wantBlocks(t, s, "T1", []string{"CAR-R:1-100 delivered"})
	opOK(t)(s.Revert(ctx, ledger.RevertRequest{Entry: d3.Entry.ID, Reason: "wrong contract", Date: cday(2025, 4, 2)}))
	wantBlocks(t, s, "T1", nil)
	wantPosition(t, s, "T1", map[string]string{"holding": "0", "serialized_holding": "0", "delivered": "50"})
	d4 := opOK(t)(s.Deliver(ctx, dr))

	// With a partly retired block: refused, even when enough unserialized tonnes are held.
	opOK(t)(s.Deliver(ctx, deliverReq("T1", "200", cday(2025, 4, 3))))
	rr := retireReq("T1", "10", cday(2025, 4, 4))
	rr.Serials = serialsOf(t, "CAR-R:1-10")
	opOK(t)(s.Retire(ctx, rr))
	err = refused(t, s, ledger.ErrConflict, func() error {
		_, err := s.Revert(ctx, ledger.RevertRequest{Entry: d4.Entry.ID, Reason: "x"})
		return err
	})
	wantMessage(t, err, "serials")
	wantBlocks(t, s, "T1", []string{"CAR-R:1-10 retired", "CAR-R:11-100 delivered"})
	checkSound(t, s)
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("T1", map[string]any{"term_end": "2026-12-31"}))
	addContract(t, s, contractDoc("T2", nil))

	var delivered string
	nt := tn("1500")
	ops := []struct {
		name  string
		op    func() (Result, error)
		other func() (Result, error) // the same key, another request
	}{
		{"deliver", func() (Result, error) {
			r := deliverReq("T1", "400", cday(2025, 3, 1))
			r.Key, r.Serials = "k-deliver", serialsOf(t, "CAR-I:1-400")
			return s.Deliver(ctx, r)
		}, func() (Result, error) {
			r := deliverReq("T1", "401", cday(2025, 3, 1))
			r.Key, r.Serials = "k-deliver", serialsOf(t, "CAR-I:1-401")
			return s.Deliver(ctx, r)
		}},
		{"retire", func() (Result, error) {
			r := retireReq("T1", "100", cday(2025, 3, 2))
			r.Key, r.Serials = "k-retire", serialsOf(t, "CAR-I:1-100")
			return s.Retire(ctx, r)
		}, func() (Result, error) {
			r := retireReq("T1", "100", cday(2025, 3, 2))
			r.Key, r.Serials, r.Beneficiary = "k-retire", serialsOf(t, "CAR-I:1-100"), "Someone Else"
			return s.Retire(ctx, r)
		}},
		{"cancel", func() (Result, error) {
			return s.Cancel(ctx, ledger.CancelRequest{Contract: "T1", Tonnes: tn("50"), Date: cday(2025, 3, 3), Reason: "waived", Key: "k-cancel"})
		}, func() (Result, error) {
			return s.Cancel(ctx, ledger.CancelRequest{Contract: "T1", Tonnes: tn("50"), Date: cday(2025, 3, 4), Reason: "waived", Key: "k-cancel"})
		}},
		{"reverse", func() (Result, error) {
			return s.Reverse(ctx, ledger.ReverseRequest{Contract: "T1", Tonnes: tn("20"), Date: cday(2025, 3, 5), Reason: "fire", Remedy: ledger.RemedyBuffer, Key: "k-reverse"})
		}, func() (Result, error) {
			return s.Reverse(ctx, ledger.ReverseRequest{Contract: "T1", Tonnes: tn("20"), Date: cday(2025, 3, 5), Reason: "fire", Remedy: ledger.RemedyReplace, Key: "k-reverse"})
		}},
		{"amend", func() (Result, error) {
			return s.Amend(ctx, ledger.AmendRequest{Contract: "T1", Tonnes: &nt, Date: cday(2025, 3, 6), Reason: "more", Key: "k-amend"})
		}, func() (Result, error) {
			return s.Amend(ctx, ledger.AmendRequest{Contract: "T2", Tonnes: &nt, Date: cday(2025, 3, 6), Reason: "more", Key: "k-amend"})
		}},
		{"deliver-plain", func() (Result, error) {
			r := deliverReq("T1", "30", cday(2025, 3, 7))
			r.Key = "k-deliver-plain"
			res, err := s.Deliver(ctx, r)
			delivered = res.Entry.ID
			return res, err
		}, func() (Result, error) {
			r := deliverReq("T2", "30", cday(2025, 3, 7))
			r.Key = "k-deliver-plain"
			return s.Deliver(ctx, r)
		}},
		{"revert", func() (Result, error) {
			return s.Revert(ctx, ledger.RevertRequest{Entry: delivered, Reason: "typo", Key: "k-revert"})
		}, func() (Result, error) {
			return s.Revert(ctx, ledger.RevertRequest{Entry: delivered, Reason: "another reason", Key: "k-revert"})
		}},
		{"key used by another operation", func() (Result, error) {
			return s.Cancel(ctx, ledger.CancelRequest{Contract: "T2", Tonnes: tn("1"), Date: cday(2025, 3, 8), Reason: "waived", Key: "k-cancel-2"})
		}, func() (Result, error) {
			r := deliverReq("T2", "1", cday(2025, 3, 8))
			r.Key = "k-cancel-2"
			return s.Deliver(ctx, r)
		}},
	}
	for _, o := range ops {
		first := opOK(t)(o.op())
		before := snapshot(t, s)
		again, err := o.op()
		if err != nil || !again.Replay || again.Entry.ID != first.Entry.ID || again.Entry.Seq != first.Entry.Seq {
			t.Errorf("%s replayed: got entry %s replay=%v err=%v; want entry %s replay=true", o.name, again.Entry.ID, again.Replay, err, first.Entry.ID)
		}
		if !cmp.Equal(again.Entry.Postings, first.Entry.Postings, cTonnesEq, cSortPostings) {
			t.Errorf("%s replayed: postings %v, want %v", o.name, again.Entry.Postings, first.Entry.Postings)
		}
		if diff := cmp.Diff(before, snapshot(t, s)); diff != "" {
			t.Errorf("%s replay changed the database:\n%s", o.name, diff)
		}
		err = refused(t, s, ledger.ErrConflict, func() error { _, err := o.other(); return err })
		wantMessage(t, err, "key", "different request", first.Entry.ID)
	}
	// A replay of a refused request is refused again, and a refused request spends no key.
	r := deliverReq("T2", "5000", cday(2025, 3, 9))
	r.Key = "k-refused"
	refused(t, s, ledger.ErrInsufficient, func() error { _, err := s.Deliver(ctx, r); return err })
	refused(t, s, ledger.ErrInsufficient, func() error { _, err := s.Deliver(ctx, r); return err })
	r.Tonnes = tn("5")
	opOK(t)(s.Deliver(ctx, r))
	checkSound(t, s)
}

// TestContractChainsVerify checks that the hash chains written by contract operations verify.
func TestContractChainsVerify(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("T1", nil))
	opOK(t)(s.Deliver(ctx, deliverReq("T1", "100", cday(2025, 3, 1))))
	opOK(t)(s.Retire(ctx, retireReq("T1", "40", cday(2025, 3, 2))))
	heads, breaks, err := s.VerifyChains(ctx)
	if err != nil {
		t.Fatalf("VerifyChains: %v", err)
	}
	if len(breaks) > 0 {
		t.Errorf("chain breaks: %+v", breaks)
	}
	if len(heads) != 1 || heads[0].Book != "T1" || heads[0].Seq != 3 {
		t.Errorf("heads = %+v, want book T1 at seq 3", heads)
	}
}

// TestRetireOnDeliverySerials: credits of a retire-on-delivery contract are retired the moment
// they are delivered, so their serials are retired too and none of them counts as held.
func TestRetireOnDeliverySerials(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("ROD", map[string]any{"delivery_mode": "retire_on_delivery"}))
	r := deliverReq("ROD", "10", cday(2025, 3, 1))
	r.Serials = serialsOf(t, "CAR-ROD:1-10")
	opOK(t)(s.Deliver(ctx, r))
	wantPosition(t, s, "ROD", map[string]string{"delivered": "10", "retired": "10", "holding": "0", "serialized_holding": "0"})
	wantBlocks(t, s, "ROD", []string{"CAR-ROD:1-10 retired"})
	checkSound(t, s)
}

// TestBufferReversalsBoundedByDelivered: a reversal is of delivered tonnes, so buffer
// reversals together cannot exceed what was delivered.
func TestBufferReversalsBoundedByDelivered(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("BUF", nil))
	opOK(t)(s.Deliver(ctx, deliverReq("BUF", "300", cday(2025, 3, 1))))
	buffer := func(tonnes string) ledger.ReverseRequest {
		return ledger.ReverseRequest{Contract: "BUF", Tonnes: tn(tonnes), Date: cday(2025, 4, 1), Reason: "wildfire", Remedy: ledger.RemedyBuffer}
	}
	opOK(t)(s.Reverse(ctx, buffer("200")))
	refused(t, s, ledger.ErrInsufficient, func() error { _, err := s.Reverse(ctx, buffer("100.001")); return err })
	checkSound(t, s)
}

// TestAddContractKeyOfAnotherRequest: a new contract under a key another operation used is
// refused as a reused key, not as a duplicate code (the code is new).
func TestAddContractKeyOfAnotherRequest(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("K1", nil))
	r := deliverReq("K1", "1", cday(2025, 3, 1))
	r.Key = "shared-key"
	opOK(t)(s.Deliver(ctx, r))
	c, err := ledger.ParseContractJSON(strings.NewReader(contractDoc("K2", nil)))
	if err != nil {
		t.Fatal(err)
	}
	err = refused(t, s, ledger.ErrConflict, func() error { _, err := s.AddContract(ctx, c, "shared-key"); return err })
	var fe *ledger.FieldError
	if !errors.As(err, &fe) || fe.Field != "key" {
		t.Errorf("got %v; want an error about the field key (contract K2 does not exist yet)", err)
	}
}
