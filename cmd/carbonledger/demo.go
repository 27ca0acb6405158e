package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/carbonledger/carbonledger/internal/service"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// The two contracts the product carries from day one. The parties, places, methods, tonnes,
// terms in years, registry and standard are public; every date, schedule, serial number and
// figure of the history below is invented for illustration and labelled so.
const (
	demoBiochar = "MSFT-TN150-BIOCHAR"
	demoForest  = "MSFT-TOROTO-CALAKMUL"
)

var demoContracts = []string{`{
  "code": "MSFT-TN150-BIOCHAR",
  "buyer": "Microsoft",
  "supplier": "The Next 150",
  "project": "General Biochar Systems biochar plant",
  "method": "biochar",
  "country": "MX",
  "region": "Guanajuato",
  "registry": "",
  "standard": "",
  "durability_years": "100+",
  "term_start": "2024-07-01",
  "term_end": "2030-06-30",
  "signed_on": "2024-03-21",
  "tonnes": "95000",
  "delivery_mode": "transfer",
  "notes": "Public: Microsoft, The Next 150, biochar, Guanajuato, up to 95,000 t over 6 years, announced 2024-03-21. Illustrative: term dates, durability class, even schedule; registry and standard are not public."
}`, `{
  "code": "MSFT-TOROTO-CALAKMUL",
  "buyer": "Microsoft",
  "supplier": "Toroto",
  "project": "Conhuas ejido forest restoration, Calakmul",
  "method": "forest ecosystem restoration",
  "country": "MX",
  "region": "Campeche",
  "registry": "Climate Action Reserve",
  "standard": "Mexico Forest Protocol",
  "durability_years": 100,
  "term_start": "2024-05-01",
  "term_end": "2025-04-30",
  "signed_on": "2024-04-30",
  "tonnes": "234000",
  "delivery_mode": "transfer",
  "notes": "Public: Microsoft, Toroto (Toroto SAPI de CV), forest restoration in the Conhuas ejido, Calakmul, Campeche, 234,000 t over 1 year, Climate Action Reserve, Mexico Forest Protocol (100-year permanence, buffer pool), signed April 2024, announced 2024-09-11. Illustrative: exact dates, serial numbers."
}`}

// demoStep is one operation of the illustrative history, under a fixed idempotency key so
// that running the demo again changes nothing.
type demoStep struct {
	key string
	run func(ctx context.Context, s *store.Store, key string, ids map[string]string) (store.Result, error)
}

func t(s string) ledger.Tonnes { return ledger.MustTonnes(s) }

func d(s string) time.Time {
	v, err := ledger.ParseDate("date", s)
	if err != nil {
		panic(err)
	}
	return v
}

func serials(s string) *ledger.SerialRange {
	r, err := ledger.ParseSerials(s)
	if err != nil {
		panic(err)
	}
	return &r
}

// Illustrative CAR serial series for the Toroto project (the real ones are not public).
const torotoSeries = "CAR-1-MX-1642-34-101-CM-2024"

func demoHistory() []demoStep {
	deliver := func(r ledger.DeliverRequest) func(context.Context, *store.Store, string, map[string]string) (store.Result, error) {
		return func(ctx context.Context, s *store.Store, key string, _ map[string]string) (store.Result, error) {
			r.Key = key
			return s.Deliver(ctx, r)
		}
	}
	retire := func(r ledger.RetireRequest) func(context.Context, *store.Store, string, map[string]string) (store.Result, error) {
		return func(ctx context.Context, s *store.Store, key string, _ map[string]string) (store.Result, error) {
			r.Key = key
			return s.Retire(ctx, r)
		}
	}
	return []demoStep{
		// The Next 150: biochar, delivered by transfer, retired by fiscal year.
		{"demo:tn150:deliver:1", deliver(ledger.DeliverRequest{Contract: demoBiochar, Tonnes: t("6000"), Date: d("2024-12-16"), Vintage: 2024, Note: "illustrative"})},
		{"demo:tn150:retire:1", retire(ledger.RetireRequest{Contract: demoBiochar, Tonnes: t("6000"), Date: d("2025-01-31"), Beneficiary: "Microsoft", Reason: "carbon removal claim (illustrative)", Claim: "FY2025"})},
		{"demo:tn150:deliver:2", deliver(ledger.DeliverRequest{Contract: demoBiochar, Tonnes: t("8500"), Date: d("2025-06-20"), Vintage: 2025, Note: "illustrative"})},
		{"demo:tn150:cancel:year1", func(ctx context.Context, s *store.Store, key string, _ map[string]string) (store.Result, error) {
			return s.Cancel(ctx, ledger.CancelRequest{Contract: demoBiochar, Tonnes: t("1334"), Date: d("2025-07-15"), Key: key,
				Reason: "year-1 shortfall (15,834 t scheduled, 14,500 t delivered) waived by agreement (illustrative)"})
		}},
		{"demo:tn150:amend:rephase", func(ctx context.Context, s *store.Store, key string, _ map[string]string) (store.Result, error) {
			return s.Amend(ctx, ledger.AmendRequest{Contract: demoBiochar, Date: d("2025-08-01"), Key: key,
				Reason: "delivery re-phased: 2,000 t moved from year 2 to year 6 (illustrative)",
				Schedule: []ledger.ScheduleLine{{Year: 1, Tonnes: t("15834")}, {Year: 2, Tonnes: t("13834")}, {Year: 3, Tonnes: t("15833")},
					{Year: 4, Tonnes: t("15833")}, {Year: 5, Tonnes: t("15833")}, {Year: 6, Tonnes: t("17833")}}})
		}},
		{"demo:tn150:deliver:typo", deliver(ledger.DeliverRequest{Contract: demoBiochar, Tonnes: t("720"), Date: d("2025-12-10"), Vintage: 2025, Note: "illustrative; entered with a typo"})},
		{"demo:tn150:revert:typo", func(ctx context.Context, s *store.Store, key string, ids map[string]string) (store.Result, error) {
			return s.Revert(ctx, ledger.RevertRequest{Entry: ids["demo:tn150:deliver:typo"], Key: key, Reason: "typo: 720 t entered for a 7,200 t delivery"})
		}},
		{"demo:tn150:deliver:3", deliver(ledger.DeliverRequest{Contract: demoBiochar, Tonnes: t("7200"), Date: d("2025-12-10"), Vintage: 2025, Note: "illustrative"})},
		{"demo:tn150:deliver:4", deliver(ledger.DeliverRequest{Contract: demoBiochar, Tonnes: t("6400.5"), Date: d("2026-05-04"), Vintage: 2026, Note: "illustrative"})},
		{"demo:tn150:retire:2", retire(ledger.RetireRequest{Contract: demoBiochar, Tonnes: t("8500"), Date: d("2025-09-30"), Beneficiary: "Microsoft", Reason: "carbon removal claim (illustrative)", Claim: "FY2026"})},

		// Toroto: forest restoration on the Climate Action Reserve, with serial numbers,
		// a wildfire reversal made good from the buffer pool, a replaced reversal, and a
		// termination that cancels the shortfall.
		{"demo:toroto:deliver:1", deliver(ledger.DeliverRequest{Contract: demoForest, Tonnes: t("120000"), Date: d("2024-10-15"), Vintage: 2024,
			Serials: serials(torotoSeries + "-9001-1 to 120000"), RegistryTx: "CAR-TX-2024-0417 (illustrative)"})},
		{"demo:toroto:retire:1", retire(ledger.RetireRequest{Contract: demoForest, Tonnes: t("50000"), Date: d("2024-12-20"), Beneficiary: "Microsoft",
			Reason: "Environmental Benefit (illustrative)", Claim: "FY2025", Serials: serials(torotoSeries + "-9001:1-50000")})},
		{"demo:toroto:deliver:2", deliver(ledger.DeliverRequest{Contract: demoForest, Tonnes: t("90000"), Date: d("2025-03-20"), Vintage: 2024,
			Serials: serials(torotoSeries + "-9002-1 to 90000"), RegistryTx: "CAR-TX-2025-0088 (illustrative)"})},
		{"demo:toroto:reverse:replace", func(ctx context.Context, s *store.Store, key string, _ map[string]string) (store.Result, error) {
			return s.Reverse(ctx, ledger.ReverseRequest{Contract: demoForest, Tonnes: t("2000"), Date: d("2025-04-10"), Key: key, Remedy: ledger.RemedyReplace,
				Reason: "fire in a restoration plot before the credits were claimed (illustrative)", Serials: serials(torotoSeries + "-9001:118001-120000")})
		}},
		{"demo:toroto:deliver:replacement", deliver(ledger.DeliverRequest{Contract: demoForest, Tonnes: t("2000"), Date: d("2025-04-28"), Vintage: 2025,
			Serials: serials("CAR-1-MX-1642-34-101-CM-2025-9003-1 to 2000"), RegistryTx: "CAR-TX-2025-0131 (illustrative)", Note: "replacement for the reversed 2,000 t"})},
		{"demo:toroto:cancel:shortfall", func(ctx context.Context, s *store.Store, key string, _ map[string]string) (store.Result, error) {
			return s.Cancel(ctx, ledger.CancelRequest{Contract: demoForest, Date: d("2025-05-15"), Key: key, Terminate: true,
				Reason: "term ended; the undelivered 24,000 t shortfall is waived (illustrative)"})
		}},
		{"demo:toroto:reverse:buffer", func(ctx context.Context, s *store.Store, key string, _ map[string]string) (store.Result, error) {
			return s.Reverse(ctx, ledger.ReverseRequest{Contract: demoForest, Tonnes: t("5000"), Date: d("2025-05-20"), Key: key, Remedy: ledger.RemedyBuffer,
				Reason: "wildfire in Calakmul; the Reserve cancels buffer-pool credits (illustrative)"})
		}},
		{"demo:toroto:retire:2", retire(ledger.RetireRequest{Contract: demoForest, Tonnes: t("40000"), Date: d("2025-06-30"), Beneficiary: "Microsoft",
			Reason: "Environmental Benefit (illustrative)", Claim: "FY2025", Serials: serials(torotoSeries + "-9002:1-40000")})},
	}
}

func cmdDemo(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("demo", "demo [--db URL] [--quiet]")
	quiet := fs.Bool("quiet", false, "load the data without printing the positions")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("demo takes no arguments")
	}
	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	added, replayed := 0, 0
	for _, js := range demoContracts {
		c, err := ledger.ParseContractJSON(strings.NewReader(js))
		if err != nil {
			return fmt.Errorf("demo contract: %w", err)
		}
		res, err := s.AddContract(ctx, c, "")
		if err != nil {
			return fmt.Errorf("demo contract %s: %w", c.Code, err)
		}
		count(res.Replay, &added, &replayed)
	}
	ids := map[string]string{}
	for _, st := range demoHistory() {
		res, err := st.run(ctx, s, st.key, ids)
		if err != nil {
			return fmt.Errorf("demo step %s: %w", st.key, err)
		}
		ids[st.key] = res.Entry.ID
		count(res.Replay, &added, &replayed)
	}
	fmt.Fprintf(a.stderr, "demo: %d entries written, %d already present (the demo is idempotent)\n", added, replayed)
	if *quiet {
		return nil
	}
	fmt.Fprintln(a.stdout, "carbonledger demo: Microsoft's offtake contracts with The Next 150 (biochar) and Toroto (forest restoration).")
	fmt.Fprintln(a.stdout, "Parties, places, methods, tonnes, term lengths, registry and standard are public; every date, schedule,")
	fmt.Fprintln(a.stdout, "serial number and figure of the history is ILLUSTRATIVE, invented to exercise every operation.")
	for _, code := range []string{demoBiochar, demoForest} {
		st, err := s.Contract(ctx, code)
		if err != nil {
			return err
		}
		fmt.Fprintln(a.stdout)
		if err := writePosition(a.stdout, st, service.ContractView(st)); err != nil {
			return err
		}
		if bad := st.Position.Check(); len(bad) > 0 {
			return errors.New("demo: identities do not hold: " + strings.Join(bad, "; "))
		}
	}
	out, _, err := service.Audit(ctx, s, nil, nil)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	writeAuditText(a.stdout, out)
	if !out.OK {
		return &exitError{code: 1}
	}
	return nil
}

func count(replay bool, added, replayed *int) {
	if replay {
		*replayed++
	} else {
		*added++
	}
}
