package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
)

// raceOps runs n operations at once (released together) and returns their errors by index.
func raceOps(n int, op func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = op(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// tallyOps counts the successes and checks every failure is an error of kind want.
func tallyOps(t *testing.T, what string, errs []error, want error) int {
	t.Helper()
	n := 0
	for i, err := range errs {
		switch {
		case err == nil:
			n++
		case !errors.Is(err, want):
			t.Errorf("%s %d: got %v, want success or %v", what, i, err, want)
		}
	}
	return n
}

func TestConcurrentOverDeliveryAndOverRetirement(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("C1", nil))

	errs := raceOps(20, func(i int) error {
		r := deliverReq("C1", "60", cday(2025, 3, 1+i))
		r.Key = fmt.Sprintf("deliver-%d", i)
		_, err := s.Deliver(ctx, r)
		return err
	})
	if n := tallyOps(t, "delivery", errs, ledger.ErrInsufficient); n != 16 {
		t.Errorf("%d deliveries of 60 t into 1,000 t succeeded, want 16", n)
	}
	wantPosition(t, s, "C1", map[string]string{"delivered": "960", "open": "40", "holding": "960"})
	checkSound(t, s)

	errs = raceOps(20, func(i int) error {
		r := retireReq("C1", "55", cday(2025, 4, 1+i))
		r.Key = fmt.Sprintf("retire-%d", i)
		_, err := s.Retire(ctx, r)
		return err
	})
	if n := tallyOps(t, "retirement", errs, ledger.ErrInsufficient); n != 17 {
		t.Errorf("%d retirements of 55 t from 960 t held succeeded, want 17", n)
	}
	wantPosition(t, s, "C1", map[string]string{"delivered": "960", "retired": "935", "holding": "25"})
	es, err := s.Entries(ctx, "C1")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1+16+17 {
		t.Errorf("%d entries, want 34 (sign, 16 deliveries, 17 retirements)", len(es))
	}
	for i, e := range es {
		if e.Seq != int64(i+1) {
			t.Errorf("entry %d has seq %d; the chain has a gap or a duplicate", i, e.Seq)
		}
	}
	checkSound(t, s)
}

func TestConcurrentOverlappingSerials(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	addContract(t, s, contractDoc("SA", nil))
	addContract(t, s, contractDoc("SB", map[string]any{"registry": "Climate Action Reserve"}))

	// Every range holds serial 100; half go to each contract.
	codes := []string{"SA", "SB"}
	reqs := make([]ledger.DeliverRequest, 12)
	for i := range reqs {
		reqs[i] = deliverReq(codes[i%2], "100", cday(2025, 3, 1))
		reqs[i].Serials = serialsOf(t, fmt.Sprintf("CAR-RACE:%d-%d", 1+i*5, 100+i*5))
	}
	errs := raceOps(len(reqs), func(i int) error {
		_, err := s.Deliver(ctx, reqs[i])
		return err
	})
	if n := tallyOps(t, "serial delivery", errs, ledger.ErrConflict); n != 1 {
		t.Errorf("%d overlapping serial deliveries succeeded, want exactly 1", n)
	}
	bs, err := s.SerialBlocks(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 || bs[0].Tonnes.String() != "100.000" {
		t.Errorf("serial blocks = %+v, want one block of 100 t", bs)
	}
	a, b := positionOf(t, s, "SA"), positionOf(t, s, "SB")
	if got := a.Delivered.Add(b.Delivered); !got.Equal(tn("100")) {
		t.Errorf("delivered %s + %s, want 100 in all", a.Delivered, b.Delivered)
	}
	checkSound(t, s)
}
