package store

import (
	"context"
	"testing"
)

func TestSmoke(t *testing.T) {
	s := newStore(t)
	src, a, _ := journalBook(t, s, "B1")
	e, replay, err := s.Post(context.Background(), move("B1", "k1", src, a, "10.5", 1))
	if err != nil || replay {
		t.Fatal(err, replay)
	}
	t.Logf("%+v", e)
}
