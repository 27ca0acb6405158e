package export

import (
	"encoding/hex"
	"io"
	"strings"

	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// hledgerCommodity is the commodity symbol of the hledger export; it holds a digit, so it is
// always written in double quotes.
const hledgerCommodity = `"tCO2e"`

// hledger writes an hledger journal (checked with hledger 1.25): the ledger's account codes
// are already valid hledger account names.
type hledger struct {
	o       *out
	p       period
	started bool
}

func newHledger(w io.Writer, p period) *hledger { return &hledger{o: newOut(w), p: p} }

func (h *hledger) start() {
	if h.started {
		return
	}
	h.started = true
	h.o.printf("; carbonledger journal export: %s\n", h.p)
	h.o.printf("; one transaction per entry; its code is BOOK/SEQ, its tags the entry's fields and metadata\n\n")
	h.o.printf("decimal-mark .\n")
	h.o.printf("commodity 1000.000 %s\n", hledgerCommodity)
}

// hledgerType is the hledger account type of an account kind: accounts that may go negative
// (the sources of tonnes) are equity, the others assets.
func hledgerType(kind string) string {
	if ledger.AccountKind(kind).MayGoNegative() {
		return "E"
	}
	return "A"
}

func (h *hledger) Book(b store.BookInfo) error {
	h.start()
	h.o.printf("\n; book %s: head seq %d, head hash %s\n", b.Code, b.HeadSeq, hex.EncodeToString(b.HeadHash))
	for _, a := range b.Accounts {
		if err := checkAccount(a.Code); err != nil {
			return err
		}
		h.o.printf("account %s  ; type:%s, kind:%s\n", a.Code, hledgerType(a.Kind), hledgerValue(a.Kind))
	}
	return h.o.err
}

func (h *hledger) Entry(e ledger.Entry) error {
	if !h.p.has(e.EffectiveOn) {
		return nil
	}
	// The code (BOOK/SEQ) comes first so that a description starting with '(' is not read as one.
	h.o.printf("\n%s * (%s/%d) %s  ;", ledger.FormatDate(e.EffectiveOn), e.Book, e.Seq, hledgerDescription(e.Description))
	for i, t := range tags(&e) {
		sep := ","
		if i == 0 {
			sep = ""
		}
		h.o.printf("%s %s:%s", sep, t.key, hledgerValue(t.value))
	}
	h.o.printf("\n")
	for _, p := range e.Postings {
		if err := checkAccount(p.Account); err != nil {
			return err
		}
		h.o.printf("    %s  %s %s\n", p.Account, p.Amount, hledgerCommodity)
	}
	return h.o.err
}

func (h *hledger) EndBook(store.BookInfo) error { return h.o.err }

func (h *hledger) Close() error {
	h.start()
	return h.o.flush()
}

// hledgerDescription keeps a description on one line and out of the comment that a ';'
// would start.
func hledgerDescription(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(oneLine(s), ";", ","))
}

// hledgerValue keeps a tag value on one line and in one piece: a ',' would end it.
func hledgerValue(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(oneLine(s), ",", ";"))
}
