package service

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sort"
	"time"

	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// AuditJSON is the stable JSON of `carbonledger audit --format json`.
type AuditJSON struct {
	OK       bool   `json:"ok"`
	Entries  int64  `json:"entries"`
	Postings int64  `json:"postings"`
	Books    int    `json:"books"`
	Digest   string `json:"digest"`
	KnownAt  string `json:"known_at"`
	Since    string `json:"since,omitempty"`
	// RecordedBy counts the entries by who wrote them: "token:NAME" (the API), "user:NAME"
	// (the CLI), "unrecorded" for entries from before the journal recorded it.
	RecordedBy map[string]int64 `json:"recorded_by"`
	Findings   []ledger.Finding `json:"findings"`
}

// Statement builds an audit statement from an audit.
func Statement(res *store.AuditResult) ledger.Statement {
	st := ledger.Statement{Version: 1, GeneratedAt: time.Now().UTC().Format(time.RFC3339), KnownAt: res.KnownAt.Format("2006-01-02T15:04:05.000000Z"),
		Entries: res.Entries, Postings: res.Postings, Digest: res.Digest, Heads: res.Heads,
		Contracts: []ledger.StatementContract{}, Accounts: []ledger.StatementAccount{}} // [] for an empty ledger, not null
	if st.Heads == nil {
		st.Heads = []ledger.ChainHead{}
	}
	for code, p := range res.Totals {
		st.Contracts = append(st.Contracts, ledger.StatementContract{Code: code, Position: p})
	}
	for acc, b := range res.Balances {
		st.Accounts = append(st.Accounts, ledger.StatementAccount{Account: acc, Balance: b})
	}
	sort.Slice(st.Contracts, func(i, j int) bool { return st.Contracts[i].Code < st.Contracts[j].Code })
	sort.Slice(st.Accounts, func(i, j int) bool { return st.Accounts[i].Account < st.Accounts[j].Account })
	return st
}

// CheckSince verifies that today's books extend an earlier statement: the signature holds,
// every head it names is still in its chain with the same hash (the chain, verified by the
// audit, then vouches for everything before it), the totals summed up to those heads are the
// statement's, and the report as known at the statement's time gives the same totals.
func CheckSince(ctx context.Context, s *store.Store, res *store.AuditResult, st *ledger.Statement, want ed25519.PublicKey) ([]ledger.Finding, error) {
	var out []ledger.Finding
	add := func(check, where, expected, found, msg string) {
		out = append(out, ledger.Finding{Check: check, Entry: where, Expected: expected, Found: found, Message: msg})
	}
	if err := st.Verify(want); err != nil {
		add("since_signature", "statement", "a valid signature", "invalid", err.Error())
	}
	now := map[string]ledger.ChainHead{}
	for _, h := range res.Heads {
		now[h.Book] = h
	}
	for _, h := range st.Heads {
		cur, ok := now[h.Book]
		switch {
		case !ok:
			add("since_head", h.Book, fmt.Sprintf("book %s with at least %d entries", h.Book, h.Seq), "no such book", "a book the statement covered is gone")
		case cur.Seq < h.Seq:
			add("since_head", h.Book, fmt.Sprintf("at least %d entries", h.Seq), fmt.Sprint(cur.Seq), "a book has fewer entries than the statement covered")
		case res.SinceHashes[h.Book] != h.Hash:
			add("since_head", h.Book, h.Hash, res.SinceHashes[h.Book], fmt.Sprintf("entry #%d of book %s is not the entry the statement sealed", h.Seq, h.Book))
		}
	}
	if res.Entries < st.Entries {
		add("since_entries", "journal", fmt.Sprintf("at least %d", st.Entries), fmt.Sprint(res.Entries), "the journal has fewer entries than the statement covered")
	}
	for _, c := range st.Contracts {
		got := res.SinceTotals[c.Code]
		if d := diffPosition(c.Position, got); d != "" {
			add("since_totals", c.Code, "the statement's totals", d, "contract "+c.Code+": the totals up to the statement's chain position differ")
		}
	}
	for _, acc := range st.Accounts {
		if got := res.SinceAccounts[acc.Account]; !got.Equal(acc.Balance) {
			add("since_accounts", acc.Account, acc.Balance.String(), got.String(), "an account's balance up to the statement's chain position differs")
		}
	}
	known, err := time.Parse(time.RFC3339Nano, st.KnownAt)
	if err != nil {
		add("since_known_at", "statement", "an RFC 3339 known_at", st.KnownAt, "the statement's known_at is malformed")
		return out, nil
	}
	cfs, err := s.ContractReport(ctx, store.ReportQuery{AsOf: ledger.Date(2200, 12, 31), KnownAt: known})
	if err != nil {
		return nil, err
	}
	got := map[string]ledger.Position{}
	for _, cf := range cfs {
		got[cf.Contract.Code] = cf.Total.Position
	}
	for _, c := range st.Contracts {
		if d := diffPosition(c.Position, got[c.Code]); d != "" {
			add("since_known_at", c.Code, "the statement's totals", d, "contract "+c.Code+": the report --known-at "+st.KnownAt+" does not reproduce the statement")
		}
	}
	return out, nil
}

func diffPosition(want, got ledger.Position) string {
	pairs := []struct {
		name string
		w, g ledger.Tonnes
	}{{"contracted", want.Contracted, got.Contracted}, {"replacements", want.Replacements, got.Replacements}, {"open", want.Open, got.Open},
		{"delivered", want.Delivered, got.Delivered}, {"holding", want.Holding, got.Holding}, {"retired", want.Retired, got.Retired},
		{"cancelled", want.Cancelled, got.Cancelled}, {"reversed", want.Reversed, got.Reversed}, {"buffer_cancelled", want.BufferCancelled, got.BufferCancelled}}
	for _, p := range pairs {
		if !p.w.Equal(p.g) {
			return fmt.Sprintf("%s %s, expected %s", p.name, p.g, p.w)
		}
	}
	return ""
}

// Audit audits the whole journal and, when prior is not nil, checks that today's books extend
// that statement (signed by want, when want is not nil). It returns the audit's JSON form, its
// findings and the extension's together, and the audit itself (a statement is built from it).
func Audit(ctx context.Context, s *store.Store, prior *ledger.Statement, want ed25519.PublicKey) (AuditJSON, *store.AuditResult, error) {
	out, res, since, err := AuditSince(ctx, s, prior, want)
	if err != nil {
		return out, res, err
	}
	out.Findings = append(out.Findings, since...)
	out.OK = len(out.Findings) == 0
	return out, res, nil
}

// AuditSince is Audit with the findings kept apart: the books' own in the JSON form, and
// those of checking that they extend prior (none when prior is nil). The journal is read once.
func AuditSince(ctx context.Context, s *store.Store, prior *ledger.Statement, want ed25519.PublicKey) (AuditJSON, *store.AuditResult, []ledger.Finding, error) {
	var sinceSeqs map[string]int64
	if prior != nil {
		sinceSeqs = map[string]int64{}
		for _, h := range prior.Heads {
			sinceSeqs[h.Book] = h.Seq
		}
	}
	res, err := s.Audit(ctx, sinceSeqs)
	if err != nil {
		return AuditJSON{}, nil, nil, err
	}
	var since []ledger.Finding
	if prior != nil {
		if since, err = CheckSince(ctx, s, res, prior, want); err != nil {
			return AuditJSON{}, nil, nil, err
		}
	}
	findings := append([]ledger.Finding{}, res.Findings...)
	return AuditJSON{OK: len(findings) == 0, Entries: res.Entries, Postings: res.Postings, Books: len(res.Heads), Digest: res.Digest,
		KnownAt: res.KnownAt.Format("2006-01-02T15:04:05.000000Z"), Findings: findings, RecordedBy: recordedBy(res.RecordedBy)}, res, since, nil
}

func recordedBy(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, n := range m {
		if k == "" {
			k = "unrecorded"
		}
		out[k] += n
	}
	return out
}
