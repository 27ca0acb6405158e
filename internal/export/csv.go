package export

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"strconv"

	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

// CSVColumns are the columns of the postings CSV (export --format postings), one row per
// posting. An entry without postings (an amendment of the schedule only) has one row with an
// empty account and amount, so that every entry appears.
var CSVColumns = []string{"entry_id", "book", "seq", "kind", "effective_on", "recorded_at", "idempotency_key",
	"description", "reverts", "vintage", "metadata", "account", "amount", "hash"}

// csvExport writes the postings CSV; text cells are neutralised against formula injection.
type csvExport struct {
	c       *reports.CSV
	p       period
	started bool
	err     error
}

func newCSV(w io.Writer, p period) *csvExport { return &csvExport{c: reports.NewCSV(w), p: p} }

func (x *csvExport) start() error {
	if !x.started {
		x.started = true
		x.err = x.c.Header(CSVColumns...)
	}
	return x.err
}

func (x *csvExport) Book(store.BookInfo) error { return x.start() }

func (x *csvExport) Entry(e ledger.Entry) error {
	if !x.p.has(e.EffectiveOn) {
		return nil
	}
	md, err := compactJSON(e.Metadata)
	if err != nil {
		return err
	}
	vintage := ""
	if e.Vintage != 0 {
		vintage = strconv.Itoa(e.Vintage)
	}
	ps := e.Postings
	if len(ps) == 0 {
		ps = []ledger.Posting{{}}
	}
	for _, p := range ps {
		amount := ""
		if p.Account != "" {
			amount = p.Amount.String()
		}
		if err := x.c.Row(reports.Text(e.ID), reports.Text(e.Book), reports.Num(strconv.FormatInt(e.Seq, 10)),
			reports.Text(string(e.Kind)), reports.Text(ledger.FormatDate(e.EffectiveOn)), reports.Text(recorded(e.RecordedAt)),
			reports.Text(e.Key), reports.Text(e.Description), reports.Text(e.Reverts), reports.Num(vintage),
			reports.Text(md), reports.Text(p.Account), reports.Num(amount), reports.Text(hex.EncodeToString(e.Hash))); err != nil {
			return err
		}
	}
	return nil
}

func (x *csvExport) EndBook(store.BookInfo) error { return nil }

func (x *csvExport) Close() error {
	if err := x.start(); err != nil {
		return err
	}
	return x.c.Flush()
}

// compactJSON writes metadata as one line of JSON with sorted keys, "{}" when there is none;
// '<', '>' and '&' stay as they are.
func compactJSON(md map[string]string) (string, error) {
	if md == nil {
		md = map[string]string{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(md); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}
