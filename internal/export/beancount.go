package export

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// beancountCommodity is the commodity of the beancount export (beancount wants capitals).
const beancountCommodity = "TCO2E"

// beancountOpen is the date every account is opened on: the earliest effective date the
// ledger accepts (ledger.ParseDate), so on or before any account's first posting.
var beancountOpen = ledger.Date(1990, 1, 1)

// BeancountAccount maps a ledger account code to its beancount account name: the root is
// Assets for an account that may not go negative and Equity for one that may (supply, buffer,
// equity); each ':'-separated component follows, its first letter capitalised and '_' written
// as '-' (beancount allows letters, digits and '-', starting with a capital or a digit).
// "buyer:acme:holding:C-1" of kind holding is "Assets:Buyer:Acme:Holding:C-1".
func BeancountAccount(code, kind string) (string, error) {
	if err := checkAccount(code); err != nil {
		return "", err
	}
	root := "Assets"
	if ledger.AccountKind(kind).MayGoNegative() {
		root = "Equity"
	}
	var b strings.Builder
	b.WriteString(root)
	for _, c := range strings.Split(code, ":") {
		r, n := utf8.DecodeRuneInString(c)
		b.WriteByte(':')
		b.WriteRune(unicode.ToUpper(r))
		b.WriteString(strings.ReplaceAll(c[n:], "_", "-"))
	}
	return b.String(), nil
}

// beancount writes a beancount ledger (checked with beancount 2.3.5).
type beancount struct {
	o       *out
	p       period
	started bool
	name    map[string]string // ledger account code -> beancount name, for every account seen
	owner   map[string]string // beancount name -> ledger account code: two codes must not meet
	// Per book: the last effective date exported and, for a period export, the sum of the
	// exported postings per account.
	last time.Time
	sums map[string]ledger.Tonnes
}

func newBeancount(w io.Writer, p period) *beancount {
	return &beancount{o: newOut(w), p: p, name: map[string]string{}, owner: map[string]string{}}
}

func (bc *beancount) start() {
	if bc.started {
		return
	}
	bc.started = true
	bc.o.printf("; carbonledger journal export: %s\n", bc.p)
	bc.o.printf("; one transaction per entry, with the entry's fields and metadata; each book ends with a\n")
	bc.o.printf("; balance assertion per account (%s)\n", map[bool]string{
		false: "the ledger's cached balance", true: "the sum of the exported postings"}[bc.p.set()])
	bc.o.printf("option %s %s\n\n", quote("title"), quote("carbonledger journal export: "+bc.p.String()))
	bc.o.printf("%s commodity %s\n", ledger.FormatDate(beancountOpen), beancountCommodity)
}

func (bc *beancount) Book(b store.BookInfo) error {
	bc.start()
	bc.last = time.Time{}
	bc.sums = map[string]ledger.Tonnes{}
	bc.o.printf("\n; book %s: head seq %d, head hash %s\n", b.Code, b.HeadSeq, hex.EncodeToString(b.HeadHash))
	for _, a := range b.Accounts {
		n, err := BeancountAccount(a.Code, a.Kind)
		if err != nil {
			return err
		}
		if other, ok := bc.owner[n]; ok && other != a.Code {
			return fmt.Errorf("export: accounts %s and %s would both be the beancount account %s", other, a.Code, n)
		}
		bc.owner[n], bc.name[a.Code] = a.Code, n
		bc.o.printf("%s open %s %s\n", ledger.FormatDate(beancountOpen), n, beancountCommodity)
		bc.o.printf("  ledger-account: %s\n  ledger-kind: %s\n", quote(a.Code), quote(a.Kind))
	}
	return bc.o.err
}

func (bc *beancount) Entry(e ledger.Entry) error {
	if !bc.p.has(e.EffectiveOn) {
		return nil
	}
	if e.EffectiveOn.Before(beancountOpen) {
		return fmt.Errorf("export: entry %s is effective on %s, before %s, when the beancount export opens its accounts",
			e.ID, ledger.FormatDate(e.EffectiveOn), ledger.FormatDate(beancountOpen))
	}
	if e.EffectiveOn.After(bc.last) {
		bc.last = e.EffectiveOn
	}
	bc.o.printf("\n%s * %s\n", ledger.FormatDate(e.EffectiveOn), quote(e.Description))
	for _, t := range tags(&e) {
		bc.o.printf("  %s: %s\n", t.key, quote(t.value))
	}
	for _, p := range e.Postings {
		n, ok := bc.name[p.Account]
		if !ok {
			return fmt.Errorf("export: entry %s of book %s posts to account %s, which no exported book declared", e.ID, e.Book, p.Account)
		}
		bc.o.printf("  %s  %s %s\n", n, p.Amount, beancountCommodity)
		if bc.p.set() {
			bc.sums[p.Account] = bc.sums[p.Account].Add(p.Amount)
		}
	}
	return bc.o.err
}

// EndBook asserts every account's balance the day after the book's last exported entry
// (entries never cross books, so nothing later moves these accounts): the ledger's cached
// balance for a whole export, so that bean-check proves it equals the sum of the postings;
// the sum of the exported postings for a period.
func (bc *beancount) EndBook(b store.BookInfo) error {
	day := beancountOpen
	if !bc.last.IsZero() {
		day = bc.last
	}
	day = day.AddDate(0, 0, 1)
	bc.o.printf("\n")
	for _, a := range b.Accounts {
		bal := a.Balance
		if bc.p.set() {
			bal = bc.sums[a.Code]
		}
		// "~ 0": beancount would otherwise tolerate a difference of one unit of the last
		// digit written (0.001, one kilogram) in a balance assertion.
		bc.o.printf("%s balance %s  %s ~ 0 %s\n", ledger.FormatDate(day), bc.name[a.Code], bal, beancountCommodity)
	}
	return bc.o.err
}

func (bc *beancount) Close() error {
	bc.start()
	return bc.o.flush()
}

// quote writes s as a beancount string: in double quotes, with '"' and '\' escaped and line
// breaks, tabs and the other escapes beancount reads written as escapes.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\f':
			b.WriteString(`\f`)
		case '\b':
			b.WriteString(`\b`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
