package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// TestReportsMatchThePostings loads a synthetic ledger whose entries were recorded over years
// (with back-dated corrections), checks the audit is clean, and then compares what the
// report queries read from the rollups with sums computed naively from the postings, for
// many as-of dates and known-at instants: every branch of the rollup queries (whole months,
// the partial month, earlier recorded months, the known-at day's own postings) is exercised.
func TestReportsMatchThePostings(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	today := ledger.Date(time.Now().UTC().Date())
	contracts := Contracts(6, 7, today)
	i := 0
	if err := s.LoadSealed(ctx, func() (*store.SealedHistory, error) {
		if i == len(contracts) {
			return nil, nil
		}
		i++
		return History(contracts[i-1], 3000, uint64(i), today)
	}, nil); err != nil {
		t.Fatal(err)
	}
	res, err := s.Audit(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("the seeded ledger does not audit clean: %+v", res.Findings[0])
	}

	type posting struct {
		Code        string        `db:"code"`
		Method      string        `db:"method"`
		EffectiveOn time.Time     `db:"effective_on"`
		RecordedAt  time.Time     `db:"recorded_at"`
		Vintage     int           `db:"vintage"`
		AccountKind string        `db:"account_kind"`
		Kind        string        `db:"kind"`
		Amount      ledger.Tonnes `db:"amount"`
	}
	var ps []posting
	if err := s.DB().SelectContext(ctx, &ps, `
		SELECT c.code, c.method, e.effective_on, e.recorded_at, coalesce(e.vintage, 0) AS vintage, a.kind AS account_kind,
		       coalesce(e.reverts_kind, e.kind) AS kind, p.amount
		  FROM postings p JOIN entries e ON e.id = p.entry_id JOIN accounts a ON a.id = p.account_id
		  JOIN contracts c ON c.book_id = e.book_id`); err != nil {
		t.Fatal(err)
	}
	byCode := map[string]ledger.Contract{}
	for _, c := range contracts {
		byCode[c.Code] = c
	}
	r := rand.New(rand.NewPCG(3, 5))
	bucketChecks := 0
	for n := 0; n < 80; n++ {
		asOf := ledger.Date(2019, 1, 1).AddDate(0, 0, r.IntN(int(today.Sub(ledger.Date(2019, 1, 1)).Hours()/24)+2))
		var knownAt time.Time
		if n%3 != 0 {
			knownAt = ps[r.IntN(len(ps))].RecordedAt.Add(time.Duration(r.IntN(3)-1) * time.Microsecond)
			if n%2 == 0 { // the as-of month holds the known-at day: the partial-month branches meet
				asOf = ledger.Date(knownAt.Date()).AddDate(0, 0, r.IntN(20))
			}
		}
		q := store.ReportQuery{AsOf: asOf, KnownAt: knownAt}
		counts := func(p posting) bool {
			return !p.EffectiveOn.After(asOf) && (knownAt.IsZero() || !p.RecordedAt.After(knownAt))
		}
		// the naive sums
		wantYears := map[string]map[int]ledger.Position{}
		wantGroups := map[string]ledger.Position{}
		wantVintage := map[string]ledger.Position{}
		for _, p := range ps {
			if !counts(p) {
				continue
			}
			c := byCode[p.Code]
			if wantYears[p.Code] == nil {
				wantYears[p.Code] = map[int]ledger.Position{}
			}
			y := c.YearOf(p.EffectiveOn)
			pos := wantYears[p.Code][y]
			pos.Add(ledger.AccountKind(p.AccountKind), ledger.Kind(p.Kind), p.Amount)
			wantYears[p.Code][y] = pos
			mk := p.EffectiveOn.Format("2006-01") + "|" + p.Method
			g := wantGroups[mk]
			g.Add(ledger.AccountKind(p.AccountKind), ledger.Kind(p.Kind), p.Amount)
			wantGroups[mk] = g
			vk := p.EffectiveOn.Format("2006-01") + "|" + vintageKey(p.Vintage)
			v := wantVintage[vk]
			v.Add(ledger.AccountKind(p.AccountKind), ledger.Kind(p.Kind), p.Amount)
			wantVintage[vk] = v
		}
		cfs, err := s.ContractReport(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, cf := range cfs {
			for y, f := range cf.Years {
				if got, want := f.Position, wantYears[cf.Contract.Code][y]; !samePosition(got, want) {
					t.Fatalf("as of %s known at %v: %s year %d: got %+v, want %+v", ledger.FormatDate(asOf), knownAt, cf.Contract.Code, y, got, want)
				}
			}
			for y, want := range wantYears[cf.Contract.Code] {
				if _, ok := cf.Years[y]; !ok && !samePosition(ledger.Position{}, want) {
					t.Fatalf("as of %s known at %v: %s year %d missing, want %+v", ledger.FormatDate(asOf), knownAt, cf.Contract.Code, y, want)
				}
			}
		}
		for _, by := range []struct {
			name string
			want map[string]ledger.Position
		}{{"method", wantGroups}, {"vintage", wantVintage}} {
			rows, err := s.PeriodFlows(ctx, q, store.MonthBounds(ledger.Date(2015, 1, 1), ledger.Date(2040, 1, 1)), by.name)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, row := range rows {
				k := row.Month.Format("2006-01") + "|" + row.Key
				seen[k] = true
				if !sameFlows(row.Sum.Position, by.want[k]) {
					t.Fatalf("period by %s as of %s known at %v: %s: got %+v, want %+v", by.name, ledger.FormatDate(asOf), knownAt, k, row.Sum.Position, by.want[k])
				}
			}
			for k, w := range by.want {
				if !seen[k] && !sameFlows(ledger.Position{}, w) {
					t.Fatalf("period by %s as of %s known at %v: %s missing, want %+v", by.name, ledger.FormatDate(asOf), knownAt, k, w)
				}
			}
			// Uneven buckets summed by the database equal the months summed here: cut inside
			// the months that have flows, so that some fall before, between and after.
			var months []time.Time
			for _, row := range rows {
				months = append(months, row.Month)
			}
			slices.SortFunc(months, func(a, b time.Time) int { return a.Compare(b) })
			months = slices.CompactFunc(months, func(a, b time.Time) bool { return a.Equal(b) })
			if len(months) < 4 {
				continue
			}
			mid := months[len(months)/2]
			bounds := []time.Time{months[1], mid, mid.AddDate(0, 1, 0), months[len(months)-1]}
			if !bounds[2].Before(bounds[3]) {
				continue
			}
			wantB := map[string]*ledger.FlowSum{}
			for _, row := range rows {
				i := len(bounds) - 1
				for i >= 0 && row.Month.Before(bounds[i]) {
					i--
				}
				if i < 0 || i == len(bounds)-1 {
					continue
				}
				k := ledger.FormatDate(bounds[i]) + "|" + row.Key
				if wantB[k] == nil {
					wantB[k] = &ledger.FlowSum{}
				}
				wantB[k].Merge(row.Sum)
			}
			bucketChecks++
			buckets, err := s.PeriodFlows(ctx, q, bounds, by.name)
			if err != nil {
				t.Fatal(err)
			}
			seenB := map[string]bool{}
			for _, b := range buckets {
				k := ledger.FormatDate(b.Month) + "|" + b.Key
				seenB[k] = true
				w := wantB[k]
				if w == nil {
					w = &ledger.FlowSum{}
				}
				if !sameFlows(b.Sum.Position, w.Position) {
					t.Fatalf("period by %s in buckets %v: %s: got %+v, want %+v", by.name, bounds, k, b.Sum.Position, w.Position)
				}
			}
			for k, w := range wantB {
				if !seenB[k] && !sameFlows(ledger.Position{}, w.Position) {
					t.Fatalf("period by %s in buckets %v: %s missing, want %+v", by.name, bounds, k, w.Position)
				}
			}
		}
	}
	if bucketChecks < 40 {
		t.Fatalf("only %d of 160 bucketed period checks had flows in four months or more", bucketChecks)
	}
	t.Logf("%d bucketed period checks", bucketChecks)
}

func vintageKey(v int) string {
	if v == 0 {
		return "unspecified"
	}
	return fmt.Sprint(v)
}

func samePosition(a, b ledger.Position) bool {
	a.SerializedHolding, b.SerializedHolding = ledger.Zero, ledger.Zero
	a.TerminatedOn, b.TerminatedOn = time.Time{}, time.Time{}
	return a.Contracted.Equal(b.Contracted) && a.Replacements.Equal(b.Replacements) && a.Open.Equal(b.Open) &&
		a.Delivered.Equal(b.Delivered) && a.Holding.Equal(b.Holding) && a.Retired.Equal(b.Retired) &&
		a.Cancelled.Equal(b.Cancelled) && a.Reversed.Equal(b.Reversed) && a.BufferCancelled.Equal(b.BufferCancelled)
}

// sameFlows compares what a period report sums: the flows, not the open and holding balances.
func sameFlows(a, b ledger.Position) bool {
	a.Open, a.Holding, b.Open, b.Holding = ledger.Zero, ledger.Zero, ledger.Zero, ledger.Zero
	return samePosition(a, b)
}
