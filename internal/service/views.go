// Package service is what every front end calls once it has its input as field values: the
// CLI's commands and the HTTP API's handlers parse nothing and build nothing of their own
// beyond mapping flags, query parameters or bodies to fields, and they render what these
// functions return. The JSON forms here are the stable ones users script against; the CLI's
// --format json and the API's bodies are the same bytes.
package service

import (
	"encoding/hex"
	"io"
	"slices"
	"strings"

	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

// ContractJSON is the stable JSON of `contract show` and `contract list`.
type ContractJSON struct {
	Code                  string              `json:"code"`
	Buyer                 string              `json:"buyer"`
	Supplier              string              `json:"supplier"`
	Project               string              `json:"project"`
	Method                ledger.Method       `json:"method"`
	Country               string              `json:"country"`
	Region                string              `json:"region"`
	Registry              string              `json:"registry"`
	RegistryProjects      []string            `json:"registry_projects,omitempty"` // only when the contract names any
	RegistryAccounts      []string            `json:"registry_accounts,omitempty"` // only when the contract names any
	Standard              string              `json:"standard"`
	DurabilityYears       ledger.Durability   `json:"durability_years"`
	TermStart             string              `json:"term_start"`
	TermEnd               string              `json:"term_end"`
	SignedOn              string              `json:"signed_on"`
	Tonnes                ledger.Tonnes       `json:"tonnes"` // as signed
	PricePerTonne         *string             `json:"price_per_tonne"`
	Currency              string              `json:"currency"`
	DeliveryMode          ledger.DeliveryMode `json:"delivery_mode"`
	OverDeliveryTolerance ledger.Tonnes       `json:"over_delivery_tolerance"`
	Notes                 string              `json:"notes,omitempty"`
	Schedule              []ScheduleJSON      `json:"schedule"`
	ScheduleVersion       int                 `json:"schedule_version"`
	Status                string              `json:"status"`
	TerminatedOn          string              `json:"terminated_on,omitempty"`
	Contracted            ledger.Tonnes       `json:"contracted"`
	Replacements          ledger.Tonnes       `json:"replacements"`
	Open                  ledger.Tonnes       `json:"open"`
	Delivered             ledger.Tonnes       `json:"delivered"`
	Holding               ledger.Tonnes       `json:"holding"`
	Retired               ledger.Tonnes       `json:"retired"`
	Cancelled             ledger.Tonnes       `json:"cancelled"`
	Reversed              ledger.Tonnes       `json:"reversed"`
	BufferCancelled       ledger.Tonnes       `json:"buffer_cancelled"`
	SerializedHolding     ledger.Tonnes       `json:"serialized_holding"`
	Entries               int64               `json:"entries"`
	Accounts              map[string]string   `json:"accounts"`
}

type ScheduleJSON struct {
	Year          int           `json:"year"`
	Start         string        `json:"start"`
	End           string        `json:"end"`
	Tonnes        ledger.Tonnes `json:"tonnes"`
	Vintage       int           `json:"vintage,omitempty"`
	PricePerTonne *string       `json:"price_per_tonne,omitempty"`
	DueOn         string        `json:"due_on,omitempty"`
}

func ContractView(st ledger.ContractState) ContractJSON {
	c, p := st.Contract, st.Position
	v := ContractJSON{Code: c.Code, Buyer: c.Buyer, Supplier: c.Supplier, Project: c.Project, Method: c.Method,
		Country: c.Country, Region: c.Region, Registry: c.Registry, RegistryProjects: c.RegistryProjects, RegistryAccounts: c.RegistryAccounts, Standard: c.Standard, DurabilityYears: c.Durability,
		TermStart: ledger.FormatDate(c.TermStart), TermEnd: ledger.FormatDate(c.TermEnd), SignedOn: ledger.FormatDate(c.SignedOn),
		Tonnes: c.Tonnes, Currency: c.Currency, DeliveryMode: c.DeliveryMode, OverDeliveryTolerance: c.OverDeliveryTolerance,
		Notes: c.Notes, ScheduleVersion: st.ScheduleVersion, Status: st.Status(), TerminatedOn: ledger.FormatDate(p.TerminatedOn),
		Contracted: p.Contracted, Replacements: p.Replacements, Open: p.Open, Delivered: p.Delivered, Holding: p.Holding,
		Retired: p.Retired, Cancelled: p.Cancelled, Reversed: p.Reversed, BufferCancelled: p.BufferCancelled,
		SerializedHolding: p.SerializedHolding, Entries: st.Entries}
	if c.PricePerTonne != nil {
		s := c.PricePerTonne.StringFixed(scaleOf(c.Currency))
		v.PricePerTonne = &s
	}
	years := c.Years()
	for _, y := range years {
		l := ScheduleJSON{Year: y.N, Start: ledger.FormatDate(y.Start), End: ledger.FormatDate(y.End), Tonnes: ledger.ScheduledFor(st.Schedule, y.N)}
		for _, sl := range st.Schedule {
			if sl.Year == y.N {
				l.Vintage, l.DueOn = sl.Vintage, ledger.FormatDate(sl.DueOn)
				if sl.PricePerTonne != nil {
					s := sl.PricePerTonne.StringFixed(scaleOf(c.Currency))
					l.PricePerTonne = &s
				}
			}
		}
		v.Schedule = append(v.Schedule, l)
	}
	acc := c.Accounts()
	v.Accounts = map[string]string{"supply": acc.Supply, "open": acc.Open, "cancelled": acc.Cancelled, "holding": acc.Holding,
		"retired": acc.Retired, "reversed": acc.Reversed, "buffer": acc.Buffer, "buffer_cancelled": acc.BufferCancelled}
	return v
}

func scaleOf(currency string) int32 {
	s, ok := ledger.CurrencyScale(currency)
	if !ok {
		return 2
	}
	return s
}

func WriteContractsCSV(w io.Writer, vs []ContractJSON) error {
	c := reports.NewCSV(w)
	c.Header("code", "buyer", "supplier", "project", "method", "country", "region", "registry", "term_start", "term_end",
		"status", "contracted", "replacements", "open", "delivered", "holding", "retired", "cancelled", "reversed", "buffer_cancelled")
	for _, v := range vs {
		c.Row(reports.Text(v.Code), reports.Text(v.Buyer), reports.Text(v.Supplier), reports.Text(v.Project), reports.Text(string(v.Method)),
			reports.Text(v.Country), reports.Text(v.Region), reports.Text(v.Registry), reports.Text(v.TermStart), reports.Text(v.TermEnd),
			reports.Text(v.Status), reports.Num(v.Contracted.String()), reports.Num(v.Replacements.String()), reports.Num(v.Open.String()),
			reports.Num(v.Delivered.String()), reports.Num(v.Holding.String()), reports.Num(v.Retired.String()),
			reports.Num(v.Cancelled.String()), reports.Num(v.Reversed.String()), reports.Num(v.BufferCancelled.String()))
	}
	return c.Flush()
}

// EntryJSON is the stable JSON form of a journal entry.
type EntryJSON struct {
	ID          string            `json:"id"`
	Book        string            `json:"book"`
	Seq         int64             `json:"seq"`
	Kind        ledger.Kind       `json:"kind"`
	EffectiveOn string            `json:"effective_on"`
	RecordedAt  string            `json:"recorded_at"`
	Key         string            `json:"idempotency_key"`
	Description string            `json:"description"`
	Reverts     string            `json:"reverts,omitempty"`
	Vintage     int               `json:"vintage,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Postings    []ledger.Posting  `json:"postings"`
	HashVersion int               `json:"hash_version"`
	PrevHash    string            `json:"prev_hash"`
	Hash        string            `json:"hash"`
}

// EntryView is an entry's stable JSON form. Its postings are in account order, as the journal reads them back, so an entry just written
// and the same entry read (or replayed) later are the same bytes.
func EntryView(e ledger.Entry) EntryJSON {
	ps := slices.Clone(e.Postings)
	slices.SortStableFunc(ps, func(a, b ledger.Posting) int { return strings.Compare(a.Account, b.Account) })
	if ps == nil {
		ps = []ledger.Posting{}
	}
	return EntryJSON{ID: e.ID, Book: e.Book, Seq: e.Seq, Kind: e.Kind, EffectiveOn: ledger.FormatDate(e.EffectiveOn),
		RecordedAt: e.RecordedAt.UTC().Format("2006-01-02T15:04:05.000000Z"), Key: e.Key, Description: e.Description,
		Reverts: e.Reverts, Vintage: e.Vintage, Metadata: e.Metadata, Postings: ps, HashVersion: e.HashVersion,
		PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)}
}
