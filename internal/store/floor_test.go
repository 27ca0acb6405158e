package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
)

// The floor check reads only the days after an entry's date (nothing, for an entry dated on
// or after the account's last movement). Against a model that replays every day of the
// account's history, random dated movements in and out are accepted and refused alike: a
// draw is refused exactly when the account would be below zero at the end of its day or any
// later day.
func TestFloorCheckMatchesEveryDayModel(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src, a, b := journalBook(t, s, "fl")
	rng := rand.New(rand.NewPCG(7, 11))
	byDay := map[int]int64{} // accepted net kilograms into a, per day of January
	lowestFrom := func(day int) int64 {
		low, run := int64(1<<62), int64(0)
		for d := 1; d <= 28; d++ {
			run += byDay[d]
			if d >= day && run < low {
				low = run
			}
		}
		return low
	}
	var accepted, refused int
	for i := 0; i < 150; i++ {
		day := 1 + rng.IntN(28)
		kg := int64(1 + rng.IntN(5000))
		amount := ledger.MustTonnes(fmt.Sprintf("%d.%03d", kg/1000, kg%1000)).String()
		in := rng.IntN(3) == 0
		key := fmt.Sprintf("m%d", i)
		if in {
			postOK(t, s, move("fl", key, src, a, amount, day))
			byDay[day] += kg
			continue
		}
		want := lowestFrom(day)-kg >= 0
		_, _, err := s.Post(ctx, move("fl", key, a, b, amount, day))
		switch {
		case want && err != nil:
			t.Fatalf("move %d: drawing %s on Jan %d was refused (%v); the model has %d kg there at the least", i, amount, day, err, lowestFrom(day))
		case !want && !errors.Is(err, ledger.ErrInsufficient):
			t.Fatalf("move %d: drawing %s on Jan %d: got %v, want ErrInsufficient (the model has %d kg there at the least)", i, amount, day, err, lowestFrom(day))
		case want:
			byDay[day] -= kg
			accepted++
		default:
			refused++
		}
	}
	if accepted < 10 || refused < 10 {
		t.Errorf("the random walk tried too little of each: %d draws accepted, %d refused", accepted, refused)
	}
	var total int64
	for _, v := range byDay {
		total += v
	}
	if got := cachedBalance(t, s, a); got.Kg() != total {
		t.Errorf("cached balance %s, the model %d kg", got, total)
	}
	assertIntact(t, s)
}
