package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

// An import decides every row as the single commands do. The same random walk of
// deliveries, retirements (both with and without serials, back-dated and not), cancellations
// and reversals over two contracts goes to one ledger one command at a time and to another
// through one Importer; every operation must be accepted or refused alike (with the same
// kind of error, on the same field), and both ledgers must end with the same positions,
// balances and serial blocks, and audit clean.
func TestImporterDecidesAsSingleOperations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	one, bulk := newStore(t), newStore(t)
	for _, s := range []*Store{one, bulk} {
		addContract(t, s, contractDoc("IA", nil))
		addContract(t, s, contractDoc("IB", map[string]any{"tonnes": "300"}))
	}
	im, err := bulk.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Rollback()

	rng := rand.New(rand.NewPCG(3, 5))
	day := func() time.Time { return ledger.Date(2025, time.January, 1).AddDate(0, 0, rng.IntN(360)) }
	next := map[string]int64{"IA": 1, "IB": 1}
	var delivered []struct {
		code string
		r    ledger.SerialRange
	}
	var reqs []ledger.Request
	for i := range 400 {
		code := []string{"IA", "IB"}[rng.IntN(2)]
		key := fmt.Sprintf("walk:%d", i)
		t1 := int64(1 + rng.IntN(25))
		tonnes := ledger.TonnesFromKg(t1 * 1000)
		switch k := rng.IntN(20); {
		case k < 8:
			r := ledger.DeliverRequest{Contract: code, Tonnes: tonnes, Date: day(), Key: key}
			if rng.IntN(3) == 0 {
				first := next[code]
				if rng.IntN(5) == 0 && first > 3 {
					first -= 2 // overlaps what was delivered: refused
				}
				sr := ledger.SerialRange{Prefix: "CAR-" + code, First: first, Last: first + t1 - 1}
				r.Serials = &sr
				next[code] = max(next[code], sr.Last+1)
				delivered = append(delivered, struct {
					code string
					r    ledger.SerialRange
				}{code, sr})
			}
			reqs = append(reqs, r)
		case k < 15:
			r := ledger.RetireRequest{Contract: code, Tonnes: tonnes, Date: day(), Beneficiary: "Acme", Reason: "claim", Key: key}
			if len(delivered) > 0 && rng.IntN(3) == 0 {
				d := delivered[rng.IntN(len(delivered))]
				sr := d.r
				r.Contract, r.Tonnes, r.Serials = d.code, ledger.TonnesFromKg((sr.Last-sr.First+1)*1000), &sr
			}
			reqs = append(reqs, r)
		case k < 17:
			reqs = append(reqs, ledger.CancelRequest{Contract: code, Tonnes: tonnes, Date: day(), Reason: "short", Key: key})
		case k < 19:
			reqs = append(reqs, ledger.ReverseRequest{Contract: code, Tonnes: tonnes, Date: day(), Reason: "fire",
				Remedy: ledger.RemedyReplace, Key: key})
		default:
			reqs = append(reqs, ledger.DeliverRequest{Contract: code, Tonnes: tonnes, Date: day(), Key: key})
		}
	}
	var accepted, refusedN int
	for i := 0; i < len(reqs); i += 25 {
		chunk := reqs[i:min(i+25, len(reqs))]
		keys := make([]string, len(chunk))
		for j, r := range chunk {
			keys[j] = r.IdempotencyKey()
		}
		if err := im.Prefetch(ctx, keys); err != nil {
			t.Fatal(err)
		}
		for j, r := range chunk {
			_, want := one.Submit(ctx, r)
			_, got := im.Apply(ctx, r)
			if !sameRefusal(got, want) {
				t.Fatalf("operation %d (%s %+v): import gave %v, a single command %v", i+j, r.Op(), r, got, want)
			}
			if want == nil {
				accepted++
			} else {
				refusedN++
			}
		}
	}
	if err := im.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if accepted < 50 || refusedN < 20 {
		t.Errorf("the walk tried too little of each: %d accepted, %d refused", accepted, refusedN)
	}
	for _, code := range []string{"IA", "IB"} {
		a, err := one.Contract(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		b, err := bulk.Contract(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a.Position, b.Position) {
			t.Errorf("%s: position after the single commands %+v, after the import %+v", code, a.Position, b.Position)
		}
		ba, _ := one.Balances(ctx, code)
		bb, _ := bulk.Balances(ctx, code)
		if !reflect.DeepEqual(ba, bb) {
			t.Errorf("%s: balances after the single commands %+v, after the import %+v", code, ba, bb)
		}
	}
	sa, _ := one.SerialBlocks(ctx, "")
	sb, _ := bulk.SerialBlocks(ctx, "")
	if len(sa) != len(sb) {
		t.Errorf("serial blocks: %d after the single commands, %d after the import", len(sa), len(sb))
	}
	for i := range min(len(sa), len(sb)) {
		sa[i].Entry, sb[i].Entry = "", ""
		if sa[i] != sb[i] {
			t.Errorf("serial block %d: %+v after the single commands, %+v after the import", i, sa[i], sb[i])
		}
	}
	wantAuditClean(t, one)
	wantAuditClean(t, bulk)
}

// sameRefusal reports whether two outcomes are both success, or both the same kind of
// refusal on the same field.
func sameRefusal(a, b error) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	if a == nil {
		return true
	}
	for _, kind := range []error{ledger.ErrInvalid, ledger.ErrInsufficient, ledger.ErrConflict, ledger.ErrNotFound,
		ledger.ErrImmutable, ledger.ErrRequired} {
		if errors.Is(a, kind) != errors.Is(b, kind) {
			return false
		}
	}
	var fa, fb *ledger.FieldError
	if errors.As(a, &fa) != errors.As(b, &fb) {
		return false
	}
	return fa == nil || fa.Field == fb.Field
}
