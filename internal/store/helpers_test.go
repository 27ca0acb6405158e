package store

import (
	"context"
	"testing"

	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/ledger"
)

// newStore opens a store on a fresh database for t.
func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func tn(s string) ledger.Tonnes { return ledger.MustTonnes(s) }

func floor0() *ledger.Tonnes { z := ledger.Zero; return &z }

// journalBook creates book code with a source account (may go negative) and two accounts with
// a floor of zero: <code> "src", "a" and "b".
func journalBook(t testing.TB, s *Store, code string) (src, a, b string) {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateBook(ctx, code); err != nil {
		t.Fatal(err)
	}
	src, a, b = "test:"+code+":src", "test:"+code+":a", "test:"+code+":b"
	for _, acc := range []ledger.Account{
		{Code: src, Book: code, Kind: ledger.AccEquity},
		{Code: a, Book: code, Kind: ledger.AccAsset, Floor: floor0()},
		{Code: b, Book: code, Kind: ledger.AccAsset, Floor: floor0()},
	} {
		if err := s.CreateAccount(ctx, acc); err != nil {
			t.Fatal(err)
		}
	}
	return src, a, b
}

func move(book, key, from, to string, amount string, day int) ledger.Entry {
	return ledger.Entry{Book: book, Kind: ledger.KindTransfer, EffectiveOn: ledger.Date(2025, 1, day), Key: key,
		Description: "move " + amount,
		Postings:    []ledger.Posting{{Account: from, Amount: tn(amount).Neg()}, {Account: to, Amount: tn(amount)}}}
}
