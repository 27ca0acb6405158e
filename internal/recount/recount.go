// Package recount re-adds a carbonledger database's totals from its raw rows (books,
// contracts, accounts, entries, postings, serial blocks), read with plain SQL and added in
// Go as whole kilograms in int64, using none of the product's code: no ledger types, no
// store queries, no SQL functions of the schema. Tests compare the product's own positions,
// reports and audit with it, and with their own record of what succeeded, so that a mistake
// shared by the product's write path and its audit cannot hide.
//
// The rules it re-adds are the model's (docs/model.md): every tonne is in one account at a
// time; a contract's open account goes up when it is signed or amended (contracted) and when a
// reversal is to be replaced (replacements); a delivery moves tonnes from open to the buyer's
// holding, or straight to retired for a contract that retires on delivery; a correction
// counts as the kind of entry it corrects.
package recount

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Totals are a contract's figures in kilograms.
type Totals struct {
	Contracted, Replacements, Open, Delivered, Holding, Retired, Cancelled, Reversed, BufferCancelled int64
}

// Contract is what the rows say of one contract.
type Contract struct {
	Code       string
	Registry   string
	TonnesKg   int64 // as signed
	ToleranceK int64 // over-delivery tolerance, kg
	Totals
	Entries int // entries of the contract's book
	// Serials counts the serial numbers of the contract's blocks by state (delivered,
	// retired, reversed).
	Serials map[string]int64
}

// Result is the recount of a whole database.
type Result struct {
	Contracts map[string]*Contract
	Entries   int
	// Problems are what the rows break: an entry that does not balance, a cached balance
	// unequal to its postings, an account below its floor, a movement out of a retired
	// account, an identity that does not hold, overlapping serial blocks, a chain head that
	// is not the number of its book's entries. A sound ledger has none.
	Problems []string
}

// Kg reads a decimal number of tonnes as written by PostgreSQL's numeric output ("12.5",
// "-0.125", "3") as kilograms; more than three decimal places that are not zero is an error.
func Kg(s string) (int64, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	frac = strings.TrimRight(frac, "0")
	if len(frac) > 3 || whole == "" {
		return 0, fmt.Errorf("recount: %q is not a whole number of kilograms", s)
	}
	frac += strings.Repeat("0", 3-len(frac))
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("recount: %q: %w", s, err)
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("recount: %q: %w", s, err)
	}
	kg := w*1000 + f
	if neg {
		kg = -kg
	}
	return kg, nil
}

// FormatKg writes kilograms as tonnes with three decimals, the product's form ("12.500").
func FormatKg(kg int64) string {
	sign := ""
	if kg < 0 {
		sign, kg = "-", -kg
	}
	return fmt.Sprintf("%s%d.%03d", sign, kg/1000, kg%1000)
}

// Diff lists the figures in which t and o differ, as "delivered 12.000 != 11.000"; none
// when they agree to the kilogram.
func (t Totals) Diff(o Totals) []string {
	var out []string
	for _, f := range []struct {
		name string
		a, b int64
	}{
		{"contracted", t.Contracted, o.Contracted}, {"replacements", t.Replacements, o.Replacements},
		{"open", t.Open, o.Open}, {"delivered", t.Delivered, o.Delivered}, {"holding", t.Holding, o.Holding},
		{"retired", t.Retired, o.Retired}, {"cancelled", t.Cancelled, o.Cancelled}, {"reversed", t.Reversed, o.Reversed},
		{"buffer_cancelled", t.BufferCancelled, o.BufferCancelled},
	} {
		if f.a != f.b {
			out = append(out, fmt.Sprintf("%s %s != %s", f.name, FormatKg(f.a), FormatKg(f.b)))
		}
	}
	return out
}

type account struct {
	book    int64
	kind    string
	floor   *int64
	balance int64 // cached
	sum     int64 // of its postings
}

type entry struct {
	book int64
	kind string // the corrected entry's kind for a correction
	sum  int64
	n    int
}

// Run recounts the database db.
func Run(ctx context.Context, db *sql.DB) (*Result, error) {
	// One snapshot for every read, so that the rows agree with each other.
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	res := &Result{Contracts: map[string]*Contract{}}
	problem := func(format string, args ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, args...)) }

	heads := map[int64]int64{}
	bookCode := map[int64]string{}
	if err := each(ctx, tx, `SELECT id, code, head_seq FROM books`, func(r *sql.Rows) error {
		var id, head int64
		var code string
		if err := r.Scan(&id, &code, &head); err != nil {
			return err
		}
		heads[id], bookCode[id] = head, code
		return nil
	}); err != nil {
		return nil, err
	}
	byBook := map[int64]*Contract{}
	byID := map[int64]*Contract{}
	if err := each(ctx, tx, `SELECT id, book_id, code, registry, tonnes::text, over_delivery_tolerance::text FROM contracts`, func(r *sql.Rows) error {
		var id, book int64
		var code, registry, tonnes, tol string
		if err := r.Scan(&id, &book, &code, &registry, &tonnes, &tol); err != nil {
			return err
		}
		c := &Contract{Code: code, Registry: registry, Serials: map[string]int64{}}
		var err error
		if c.TonnesKg, err = Kg(tonnes); err != nil {
			return err
		}
		if c.ToleranceK, err = Kg(tol); err != nil {
			return err
		}
		res.Contracts[code], byBook[book], byID[id] = c, c, c
		return nil
	}); err != nil {
		return nil, err
	}
	accounts := map[int64]*account{}
	if err := each(ctx, tx, `SELECT id, book_id, kind, floor::text, balance::text FROM accounts`, func(r *sql.Rows) error {
		var id, book int64
		var kind, balance string
		var floor sql.NullString
		if err := r.Scan(&id, &book, &kind, &floor, &balance); err != nil {
			return err
		}
		a := &account{book: book, kind: kind}
		var err error
		if a.balance, err = Kg(balance); err != nil {
			return err
		}
		if floor.Valid {
			f, err := Kg(floor.String)
			if err != nil {
				return err
			}
			a.floor = &f
		}
		accounts[id] = a
		return nil
	}); err != nil {
		return nil, err
	}
	entries := map[string]*entry{}
	perBook := map[int64]int64{}
	if err := each(ctx, tx, `SELECT id::text, book_id, kind, coalesce(reverts_kind, '') FROM entries`, func(r *sql.Rows) error {
		var id, kind, reverts string
		var book int64
		if err := r.Scan(&id, &book, &kind, &reverts); err != nil {
			return err
		}
		if kind == "revert" {
			kind = reverts
		}
		entries[id] = &entry{book: book, kind: kind}
		perBook[book]++
		return nil
	}); err != nil {
		return nil, err
	}
	res.Entries = len(entries)
	if err := each(ctx, tx, `SELECT entry_id::text, account_id, amount::text FROM postings`, func(r *sql.Rows) error {
		var id, amount string
		var acct int64
		if err := r.Scan(&id, &acct, &amount); err != nil {
			return err
		}
		kg, err := Kg(amount)
		if err != nil {
			return err
		}
		e, a := entries[id], accounts[acct]
		if e == nil || a == nil {
			problem("posting of entry %s to account %d names a missing row", id, acct)
			return nil
		}
		e.sum += kg
		e.n++
		a.sum += kg
		if a.book != e.book {
			problem("entry %s posts to account %d of another book", id, acct)
		}
		if a.kind == "retired" && kg < 0 {
			problem("entry %s moves %s t out of a retired account", id, FormatKg(-kg))
		}
		c := byBook[a.book]
		if c == nil {
			return nil
		}
		t := &c.Totals
		switch a.kind {
		case "open":
			t.Open += kg
			switch e.kind {
			case "sign", "amend":
				t.Contracted += kg
			case "reverse":
				t.Replacements += kg
			}
		case "holding":
			t.Holding += kg
			if e.kind == "deliver" {
				t.Delivered += kg
			}
		case "retired":
			t.Retired += kg
			if e.kind == "deliver" {
				t.Delivered += kg
			}
		case "cancelled":
			t.Cancelled += kg
		case "reversed":
			t.Reversed += kg
		case "buffer_cancelled":
			t.BufferCancelled += kg
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for id, e := range entries {
		if e.sum != 0 {
			problem("entry %s sums to %s t, not zero", id, FormatKg(e.sum))
		}
		if e.n < 2 && !(e.n == 0 && e.kind == "amend") {
			problem("entry %s has %d postings", id, e.n)
		}
	}
	for id, a := range accounts {
		if a.balance != a.sum {
			problem("account %d: cached balance %s t, postings %s t", id, FormatKg(a.balance), FormatKg(a.sum))
		}
		if a.floor != nil && a.sum < *a.floor {
			problem("account %d (%s): %s t is below its floor %s t", id, a.kind, FormatKg(a.sum), FormatKg(*a.floor))
		}
	}
	for book, head := range heads {
		if head != perBook[book] {
			problem("book %s: head at %d, %d entries", bookCode[book], head, perBook[book])
		}
		if c := byBook[book]; c != nil {
			c.Entries = int(perBook[book])
		}
	}
	for _, c := range res.Contracts {
		t := c.Totals
		if l, r := t.Contracted+t.Replacements, t.Open+t.Delivered+t.Cancelled; l != r {
			problem("contract %s: contracted + replacements = %s t, open + delivered + cancelled = %s t", c.Code, FormatKg(l), FormatKg(r))
		}
		if r := t.Holding + t.Retired + t.Reversed; t.Delivered != r {
			problem("contract %s: delivered %s t, holding + retired + reversed %s t", c.Code, FormatKg(t.Delivered), FormatKg(r))
		}
		if t.Open < -c.ToleranceK {
			problem("contract %s: open %s t, below minus its tolerance %s t", c.Code, FormatKg(t.Open), FormatKg(c.ToleranceK))
		}
	}

	type block struct {
		first, last int64 // inclusive
		contract    *Contract
		state       string
	}
	series := map[string][]block{}
	if err := each(ctx, tx, `SELECT contract_id, registry, prefix, lower(serials), upper(serials) - 1, state FROM serial_blocks`, func(r *sql.Rows) error {
		var cid, first, last int64
		var registry, prefix, state string
		if err := r.Scan(&cid, &registry, &prefix, &first, &last, &state); err != nil {
			return err
		}
		c := byID[cid]
		if c == nil {
			problem("serial block %s %s:%d-%d names a missing contract", registry, prefix, first, last)
			return nil
		}
		c.Serials[state] += last - first + 1
		k := registry + "\x00" + prefix
		series[k] = append(series[k], block{first, last, c, state})
		return nil
	}); err != nil {
		return nil, err
	}
	for k, bs := range series {
		slices.SortFunc(bs, func(a, b block) int { return int(min(max(a.first-b.first, -1), 1)) })
		for i := 1; i < len(bs); i++ {
			if bs[i].first <= bs[i-1].last {
				problem("serial blocks overlap in series %q: %d-%d (%s) and %d-%d (%s)", strings.ReplaceAll(k, "\x00", " "),
					bs[i-1].first, bs[i-1].last, bs[i-1].contract.Code, bs[i].first, bs[i].last, bs[i].contract.Code)
			}
		}
	}
	slices.Sort(res.Problems)
	return res, tx.Commit()
}

func each(ctx context.Context, tx *sql.Tx, q string, fn func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("recount: %s: %w", q, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
