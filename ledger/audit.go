package ledger

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

// Finding is one thing the audit found wrong: which check, where (an entry id, or a book,
// account or serial range), what was expected, what was found, and a sentence for a person.
type Finding struct {
	Check    string `json:"check"`
	Entry    string `json:"entry"`
	Expected string `json:"expected"`
	Found    string `json:"found"`
	Message  string `json:"message"`
}

// AuditAccount is an account as the audit sees it at the start of its book.
type AuditAccount struct {
	Code   string
	Kind   AccountKind
	Floor  *Tonnes // nil: may go negative
	Cached Tonnes  // the balance the database caches
}

// AuditBook is what the audit needs of a book before walking its entries.
type AuditBook struct {
	Code     string
	HeadSeq  int64
	HeadHash []byte
	// HeadRecordedAt is the head's recorded time as the book caches it (zero when empty):
	// the newest of them is when a statement says the books were known.
	HeadRecordedAt time.Time
	Accounts       []AuditAccount
	// Contract is set for a contract's book.
	Contract *AuditContract
	// SinceSeq, when positive, is the chain position an earlier statement covered; the audit
	// then also sums the book up to that position.
	SinceSeq int64
	// Shard is the book's stripe of vintage_months (its id modulo 16).
	Shard int
}

// AuditContract is what the audit checks a contract's book against.
type AuditContract struct {
	Terms             Contract       // as stored (its first schedule: the one signed)
	Schedule          []ScheduleLine // the schedule in force (latest version)
	Versions          []ScheduleVersion
	SerializedHolding Tonnes // tonnes in serial blocks still delivered
}

// ScheduleVersion is a stored version of a contract's schedule and the entry (its sign or an
// amendment) that made it, whose sealed metadata holds the same schedule.
type ScheduleVersion struct {
	Version int
	EntryID string
	Lines   []ScheduleLine
}

// RollupRow is one row of a stored rollup, compared with what the postings add up to.
type RollupRow struct {
	Account     string
	AccountKind AccountKind // the row's copy of its account's kind (the reports read it)
	Day         time.Time   // effective date (daily) or first of month (monthly)
	Recorded    time.Time   // recorded date (daily only)
	Vintage     int
	Kind        Kind
	Year        int // contract year of the effective date
	Amount      Tonnes
	Priced      Tonnes
	Value       decimal.Decimal
	Postings    int64
}

// rollupKey is a row of the daily or monthly rollup: integers only (the account is its index
// in the book's accounts, the kind its index in the auditor's kinds), so that the maps the
// audit updates for every posting hash no strings. Both grains key by the contract year the
// rows copy, so a row filed under another year is a finding.
type rollupKey struct {
	account  int32
	day      int32 // days since 1970-01-01 (the first of the month for the monthly rollup)
	recorded int32
	year     int32
	vintage  int32
	kind     uint8
}

type rollupSum struct {
	amount, priced Tonnes
	value          decimal.Decimal
	postings       int64
	seen           bool // a stored row holds it (set while comparing)
}

// add adds another sum.
func (s *rollupSum) add(o *rollupSum) {
	s.amount, s.priced, s.postings = s.amount.Add(o.amount), s.priced.Add(o.priced), s.postings+o.postings
	if !o.value.IsZero() { // (adding a zero decimal still allocates)
		s.value = s.value.Add(o.value)
	}
}

// Auditor re-adds the journal as it is streamed to it, one book at a time, and collects
// findings. Its memory is bounded by one book's accounts, distinct days and priced
// deliveries, never by the size of the journal.
type Auditor struct {
	findings   []Finding
	suppressed map[string]int
	maxPerKind int

	Entries, Postings int64
	Trial             Tonnes // the sum of every posting: zero in a sound journal
	// RecordedBy counts the entries by who wrote them (MetaRecordedBy; "" for entries
	// written before it was recorded).
	RecordedBy map[string]int64
	Heads      []ChainHead

	scratch []byte // reused for canonical forms

	// per book
	book     AuditBook
	years    []ContractYear
	account  map[string]int32 // index of an account of the book in accounts
	accounts []bookAccount
	kinds    []Kind // the entry kinds seen, indexed by rollupKey.kind
	daily    map[rollupKey]*rollupSum
	byMonth  map[rollupKey]*rollupSum // daily summed to effective and recorded months (derive)
	monthly  map[rollupKey]*rollupSum
	books    map[bookKey]*BookMonth
	prices   map[string]decimal.Decimal // priced deliveries of the book, for their corrections
	prev     []byte
	seq      int64
	yearDay  int32 // the effective day whose contract year is yearOf (entries mostly share a day with the one before)
	yearOf   int32
	// which of the contract's schedule versions a sign or amend entry of the book made
	versionSeen []bool
	lastAt      time.Time
	pos         Position
	sincePos    Position

	// SinceTotals and SinceAccounts are the books' totals at the statement's chain positions,
	// and SinceHashes the hashes of the entries at those positions.
	SinceTotals   map[string]Position
	SinceAccounts map[string]Tonnes
	SinceHashes   map[string]string
	// Totals is every contract's position from its postings.
	Totals map[string]Position

	// across books: what vintage_months should hold
	vintages map[vintageKey]*BookMonth
}

// bookAccount is what the audit adds up for an account of the current book.
type bookAccount struct {
	AuditAccount
	sum, since Tonnes // all its postings; those up to the book's SinceSeq
}

// NewAuditor returns an auditor that keeps at most maxPerKind findings of each check (the
// rest are counted).
func NewAuditor(maxPerKind int) *Auditor {
	return &Auditor{suppressed: map[string]int{}, maxPerKind: maxPerKind, SinceTotals: map[string]Position{},
		SinceAccounts: map[string]Tonnes{}, SinceHashes: map[string]string{}, Totals: map[string]Position{},
		RecordedBy: map[string]int64{}, vintages: map[vintageKey]*BookMonth{}}
}

// Add records a finding.
func (a *Auditor) Add(f Finding) {
	n := 0
	for _, x := range a.findings {
		if x.Check == f.Check {
			n++
		}
	}
	if a.maxPerKind > 0 && n >= a.maxPerKind {
		a.suppressed[f.Check]++
		return
	}
	a.findings = append(a.findings, f)
}

// Findings returns the findings, plus one per check whose further findings were counted only.
func (a *Auditor) Findings() []Finding {
	out := slices.Clone(a.findings)
	checks := make([]string, 0, len(a.suppressed))
	for c := range a.suppressed {
		checks = append(checks, c)
	}
	sort.Strings(checks)
	for _, c := range checks {
		out = append(out, Finding{Check: c, Message: fmt.Sprintf("%d more findings of this check are not listed", a.suppressed[c])})
	}
	return out
}

// BeginBook starts a book.
func (a *Auditor) BeginBook(b AuditBook) {
	a.book = b
	a.years = nil
	if b.Contract != nil {
		a.years = b.Contract.Terms.Years()
	}
	// The maps are emptied, not made anew: their space is reused from book to book.
	a.account, a.daily, a.monthly = reuse(a.account), reuse(a.daily), reuse(a.monthly)
	a.books, a.prices = reuse(a.books), reuse(a.prices)
	a.accounts = a.accounts[:0]
	for i, acc := range b.Accounts {
		a.account[acc.Code] = int32(i)
		a.accounts = append(a.accounts, bookAccount{AuditAccount: acc})
	}
	if b.Contract != nil {
		a.checkContractAccounts()
	}
	a.prev, a.seq, a.lastAt = GenesisHash, 0, time.Time{}
	a.yearDay, a.yearOf = math.MinInt32, 0
	a.versionSeen = a.versionSeen[:0]
	if b.Contract != nil {
		a.versionSeen = append(a.versionSeen, make([]bool, len(b.Contract.Versions))...)
	}
	a.pos, a.sincePos = Position{}, Position{}
}

// reuse returns m emptied, or a new map.
func reuse[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	clear(m)
	return m
}

// Entry checks one entry of the current book, in chain order.
func (a *Auditor) Entry(e Entry) {
	a.Entries++
	a.RecordedBy[e.Metadata[MetaRecordedBy]]++
	a.seq++
	if p := checkLink(&e, a.seq, a.prev, &a.scratch); p != "" {
		a.Add(Finding{Check: "hash_chain", Entry: e.ID, Expected: fmt.Sprintf("%s #%d linked and sealed", a.book.Code, a.seq),
			Found: fmt.Sprintf("%s #%d", e.Book, e.Seq), Message: fmt.Sprintf("book %s, entry #%d: %s", a.book.Code, e.Seq, p)})
	}
	a.prev, a.seq = e.Hash, e.Seq
	if a.book.SinceSeq > 0 && e.Seq == a.book.SinceSeq {
		a.SinceHashes[a.book.Code] = hex.EncodeToString(e.Hash)
	}
	if e.RecordedAt.Before(a.lastAt) {
		a.Add(Finding{Check: "recorded_order", Entry: e.ID, Expected: "recorded at or after " + a.lastAt.Format(time.RFC3339Nano),
			Found: e.RecordedAt.Format(time.RFC3339Nano), Message: "an entry is recorded earlier than the entry before it in its chain"})
	}
	a.lastAt = e.RecordedAt
	var sum Tonnes
	for _, p := range e.Postings {
		sum = sum.Add(p.Amount)
	}
	if !sum.IsZero() {
		a.Add(Finding{Check: "entry_balances", Entry: e.ID, Expected: "0.000", Found: sum.String(), Message: "the entry's postings do not sum to zero"})
	}
	if n := len(e.Postings); n < 2 && !(n == 0 && e.Kind == KindAmend) {
		a.Add(Finding{Check: "entry_postings", Entry: e.ID, Expected: "at least 2 postings", Found: fmt.Sprint(n), Message: "an entry needs at least two postings"})
	}
	kind := e.Kind
	if e.Kind == KindRevert {
		kind = e.RevertsKind
	}
	price, priced := decimal.Decimal{}, false
	if kind == KindDeliver {
		src := e.Metadata["price_per_tonne"]
		if e.Kind == KindRevert {
			price, priced = a.prices[e.Reverts]
		} else if src != "" {
			if d, err := decimal.NewFromString(src); err == nil {
				price, priced = d, true
				a.prices[e.ID] = d
			}
		}
	}
	a.Postings += int64(len(e.Postings))
	day, recorded, kindAt := dayNum(e.EffectiveOn), dayNum(e.RecordedAt), a.kindIndex(kind)
	if day != a.yearDay {
		a.yearDay, a.yearOf = day, int32(yearIn(a.years, e.EffectiveOn))
	}
	for _, p := range e.Postings {
		at, ok := a.account[p.Account]
		if !ok {
			a.Add(Finding{Check: "posting_account", Entry: e.ID, Expected: "an account of book " + a.book.Code, Found: p.Account,
				Message: "a posting names an account outside its entry's book"})
			continue
		}
		if p.Amount.IsZero() {
			a.Add(Finding{Check: "posting_nonzero", Entry: e.ID, Expected: "non-zero", Found: p.Amount.String(), Message: "a posting moves nothing"})
		}
		acc := &a.accounts[at]
		if acc.Kind == AccRetired && p.Amount.IsNegative() {
			a.Add(Finding{Check: "retired_final", Entry: e.ID, Expected: "no outflow from " + p.Account, Found: p.Amount.String(),
				Message: "tonnes left a retired account"})
		}
		a.Trial = a.Trial.Add(p.Amount)
		acc.sum = acc.sum.Add(p.Amount)
		a.pos.Add(acc.Kind, kind, p.Amount)
		if a.book.SinceSeq > 0 && e.Seq <= a.book.SinceSeq {
			a.sincePos.Add(acc.Kind, kind, p.Amount)
			acc.since = acc.since.Add(p.Amount)
		}
		pr, val := Zero, decimal.Zero
		if priced && (acc.Kind == AccHolding || acc.Kind == AccRetired) {
			pr, val = p.Amount, p.Amount.Decimal().Mul(price)
		}
		// Only the daily grain is added per posting; the coarser rollups are sums of it,
		// derived once per book in EndBook (sums are linear, so that is exact).
		k := rollupKey{account: at, day: day, recorded: recorded, year: a.yearOf, vintage: int32(e.Vintage), kind: kindAt}
		s := a.daily[k]
		if s == nil {
			s = &rollupSum{}
			a.daily[k] = s
		}
		s.amount, s.priced, s.postings = s.amount.Add(p.Amount), s.priced.Add(pr), s.postings+1
		if priced { // (adding a zero decimal still allocates)
			s.value = s.value.Add(val)
		}
	}
	if e.Kind == KindSign && a.book.Contract != nil {
		a.checkTerms(e)
	}
	if (e.Kind == KindSign || e.Kind == KindAmend) && a.book.Contract != nil {
		a.checkScheduleVersion(e)
	}
}

// kindIndex is k's index in a.kinds, added when new.
func (a *Auditor) kindIndex(k Kind) uint8 {
	for i, x := range a.kinds {
		if x == k {
			return uint8(i)
		}
	}
	if len(a.kinds) == 256 { // more distinct kinds than any journal has: each beyond shares the last slot
		return 255
	}
	a.kinds = append(a.kinds, k)
	return uint8(len(a.kinds) - 1)
}

// checkContractAccounts checks that a contract's book holds exactly the accounts its terms
// define, with their kinds and floors. The terms are sealed into the sign entry (checkTerms);
// the accounts table is not, and an account's kind decides which measure its tonnes count in.
func (a *Auditor) checkContractAccounts() {
	terms := &a.book.Contract.Terms
	want := terms.Accounts().List(terms)
	describe := func(k AccountKind, floor *Tonnes) string {
		if floor == nil {
			return "kind " + string(k) + ", no floor"
		}
		return "kind " + string(k) + ", floor " + floor.String()
	}
	for _, w := range want {
		at, ok := a.account[w.Code]
		if !ok {
			a.Add(Finding{Check: "contract_accounts", Entry: w.Code, Expected: describe(w.Kind, w.Floor), Found: "no account",
				Message: "contract " + a.book.Code + ": an account its terms define is missing"})
			continue
		}
		got := a.accounts[at]
		if got.Kind != w.Kind || (got.Floor == nil) != (w.Floor == nil) || (got.Floor != nil && !got.Floor.Equal(*w.Floor)) {
			a.Add(Finding{Check: "contract_accounts", Entry: w.Code, Expected: describe(w.Kind, w.Floor), Found: describe(got.Kind, got.Floor),
				Message: "contract " + a.book.Code + ": an account's kind or floor is not the one its terms define"})
		}
	}
	if len(a.accounts) != len(want) {
		for _, got := range a.accounts {
			if !slices.ContainsFunc(want, func(w Account) bool { return w.Code == got.Code }) {
				a.Add(Finding{Check: "contract_accounts", Entry: got.Code, Expected: "no account", Found: describe(got.Kind, got.Floor),
					Message: "contract " + a.book.Code + ": its book holds an account its terms do not define"})
			}
		}
	}
}

// checkScheduleVersion checks the stored schedule version that a sign or amend entry made
// against the schedule sealed into the entry's metadata: the reports of shortfalls and what is
// due read the stored lines.
func (a *Auditor) checkScheduleVersion(e Entry) {
	c := a.book.Contract
	for i := range c.Versions {
		if v := &c.Versions[i]; v.EntryID == e.ID {
			if got, want := FormatSchedule(v.Lines), e.Metadata["schedule"]; got != want {
				a.Add(Finding{Check: "schedule_version", Entry: e.ID, Expected: want, Found: got,
					Message: fmt.Sprintf("contract %s: schedule version %d is not the schedule its %s entry sealed", a.book.Code, v.Version, e.Kind)})
			}
			a.versionSeen[i] = true
			return
		}
	}
	a.Add(Finding{Check: "schedule_version", Entry: e.ID, Expected: "a stored schedule version made by this entry", Found: "none",
		Message: "contract " + a.book.Code + ": a " + string(e.Kind) + " entry's schedule is not stored"})
}

func (a *Auditor) checkTerms(e Entry) {
	want := a.book.Contract.Terms.TermsDigest()
	if got := e.Metadata["terms_sha256"]; got != want {
		a.Add(Finding{Check: "contract_terms", Entry: e.ID, Expected: want, Found: got,
			Message: "contract " + a.book.Code + ": the stored terms no longer match the digest sealed into its sign entry"})
	}
}

// EndBook finishes the current book: the chain head, the cached balances, the floors at
// every effective date, the rollups, and a contract's identities and schedule.
func (a *Auditor) EndBook(daily, monthly []RollupRow, books, effective, years []BookMonth) {
	b := a.book
	if a.seq != b.HeadSeq || !bytes.Equal(a.prev, b.HeadHash) || !a.lastAt.Equal(b.HeadRecordedAt) {
		a.Add(Finding{Check: "chain_head", Entry: b.Code, Expected: fmt.Sprintf("head #%d %x recorded %s", a.seq, a.prev, formatInstant(a.lastAt)),
			Found: fmt.Sprintf("head #%d %x recorded %s", b.HeadSeq, b.HeadHash, formatInstant(b.HeadRecordedAt)), Message: "book " + b.Code + ": its recorded head is not its last entry"})
	}
	a.Heads = append(a.Heads, ChainHead{Book: b.Code, Seq: b.HeadSeq, Hash: hex.EncodeToString(b.HeadHash)})
	for i, acc := range a.accounts {
		if !acc.Cached.Equal(acc.sum) {
			a.Add(Finding{Check: "cached_balance", Entry: acc.Code, Expected: acc.sum.String(), Found: acc.Cached.String(),
				Message: "the cached balance differs from the sum of the account's postings"})
		}
		if acc.Floor != nil {
			a.checkFloor(int32(i))
		}
	}
	a.derive()
	a.compareRollup("rollup_daily", a.daily, daily, true)
	a.compareRollup("rollup_monthly", a.monthly, monthly, false)
	a.compareBookMonths(books)
	a.compareBookEffective(effective)
	a.compareBookYears(years)
	if c := b.Contract; c != nil {
		a.Totals[b.Code] = a.pos
		for _, msg := range a.pos.Check() {
			a.Add(Finding{Check: "contract_identity", Entry: b.Code, Expected: "identities hold", Found: msg, Message: "contract " + b.Code + ": " + msg})
		}
		var sched Tonnes
		for _, l := range c.Schedule {
			sched = sched.Add(l.Tonnes)
		}
		if !sched.Equal(a.pos.Contracted) {
			a.Add(Finding{Check: "schedule_total", Entry: b.Code, Expected: a.pos.Contracted.String(), Found: sched.String(),
				Message: "contract " + b.Code + ": the schedule in force does not add up to the contracted tonnes"})
		}
		for i, v := range c.Versions {
			if !a.versionSeen[i] {
				a.Add(Finding{Check: "schedule_version", Entry: b.Code, Expected: "every schedule version made by a sign or amend entry of the book",
					Found:   fmt.Sprintf("version %d made by entry %s", v.Version, v.EntryID),
					Message: "contract " + b.Code + ": a stored schedule version was made by no sign or amendment of its book"})
			}
		}
		if c.SerializedHolding.GreaterThan(a.pos.Holding) {
			a.Add(Finding{Check: "serials_held", Entry: b.Code, Expected: "at most " + a.pos.Holding.String(), Found: c.SerializedHolding.String(),
				Message: "contract " + b.Code + ": more tonnes are in delivered serial blocks than in the holding"})
		}
	}
	if b.SinceSeq > 0 {
		a.SinceTotals[b.Code] = a.sincePos
		for _, acc := range a.accounts {
			a.SinceAccounts[acc.Code] = acc.since
		}
	}
}

// formatInstant prints a recorded time for a finding ("never" for none).
func formatInstant(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// checkFloor checks that the account's balance never fell below its floor at any effective
// date (the running sum of its postings in date order).
func (a *Auditor) checkFloor(at int32) {
	acc := a.accounts[at]
	byDay := map[int32]Tonnes{}
	for k, s := range a.daily {
		if k.account == at {
			byDay[k.day] = byDay[k.day].Add(s.amount)
		}
	}
	days := make([]int32, 0, len(byDay))
	for d := range byDay {
		days = append(days, d)
	}
	slices.Sort(days)
	var run Tonnes
	for _, d := range days {
		run = run.Add(byDay[d])
		if run.LessThan(*acc.Floor) {
			a.Add(Finding{Check: "balance_floor", Entry: acc.Code, Expected: "at least " + acc.Floor.String(), Found: run.String() + " on " + FormatDate(dayTime(d)),
				Message: "the account fell below its floor (" + string(acc.Kind) + " accounts may not go negative)"})
			return
		}
	}
}

func (a *Auditor) compareRollup(check string, want map[rollupKey]*rollupSum, got []RollupRow, daily bool) {
	for _, r := range got {
		k := rollupKey{day: dayNum(r.Day), year: int32(r.Year), vintage: int32(r.Vintage), kind: a.kindIndex(r.Kind)}
		if daily {
			k.recorded = dayNum(r.Recorded)
		}
		at, ok := a.account[r.Account]
		k.account = at
		w := want[k]
		// A stored row that no posting makes (of an account outside the book, of a key no
		// posting has, or a second row with one key) is a finding even when it holds zeros.
		stray := !ok || w == nil || w.seen
		if stray {
			w = &rollupSum{}
		} else {
			w.seen = true
		}
		entry := func() string { return fmt.Sprintf("%s %s %s %d", r.Account, FormatDate(r.Day), r.Kind, r.Vintage) }
		switch {
		case stray:
			a.Add(Finding{Check: check, Entry: entry(), Expected: "no row", Found: fmt.Sprintf("%s t (%d postings) in contract year %d", r.Amount, r.Postings, r.Year),
				Message: "a report rollup holds a row that no posting of the book makes"})
		case !w.amount.Equal(r.Amount) || !w.priced.Equal(r.Priced) || !w.value.Equal(r.Value) || w.postings != r.Postings:
			a.Add(Finding{Check: check, Entry: entry(), Expected: fmt.Sprintf("%s t (%d postings)", w.amount, w.postings),
				Found: fmt.Sprintf("%s t (%d postings)", r.Amount, r.Postings), Message: "a report rollup differs from the sum of its postings"})
		case r.AccountKind != a.accounts[at].Kind:
			a.Add(Finding{Check: check, Entry: entry(), Expected: "account kind " + string(a.accounts[at].Kind), Found: "account kind " + string(r.AccountKind),
				Message: "a report rollup row files its account under another kind"})
		}
	}
	for k, w := range want {
		if !w.seen {
			a.Add(Finding{Check: check, Entry: fmt.Sprintf("%s %s %s %d", a.accounts[k.account].Code, FormatDate(dayTime(k.day)), a.kinds[k.kind], k.vintage),
				Expected: fmt.Sprintf("%s t (%d postings) in contract year %d", w.amount, w.postings, k.year), Found: "no row",
				Message: "a report rollup is missing postings"})
		}
	}
}

// derive sums the book's daily rollup into the coarser ones: per account and effective month
// (with the contract year), per book month, and per vintage month of the book's shard.
func (a *Auditor) derive() {
	months := map[int32]int32{} // a book has far fewer distinct days than daily rows
	month := func(d int32) int32 {
		m, ok := months[d]
		if !ok {
			m = monthNum(dayTime(d))
			months[d] = m
		}
		return m
	}
	// First to months, effective and recorded (several times fewer keys than days), then from
	// those to the three coarser rollups.
	a.byMonth = reuse(a.byMonth)
	for k, s := range a.daily {
		mk := rollupKey{account: k.account, day: month(k.day), recorded: month(k.recorded), vintage: k.vintage, kind: k.kind, year: k.year}
		m := a.byMonth[mk]
		if m == nil {
			m = &rollupSum{}
			a.byMonth[mk] = m
		}
		m.add(s)
	}
	for k, s := range a.byMonth {
		ak, kind := a.accounts[k.account].Kind, a.kinds[k.kind]
		mk := k
		mk.recorded = 0
		m := a.monthly[mk]
		if m == nil {
			m = &rollupSum{}
			a.monthly[mk] = m
		}
		m.add(s)
		addSum(a.books, bookKey{month: k.day, year: int(k.year), recorded: k.recorded}, ak, kind, s)
		addSum(a.vintages, vintageKey{month: k.day, recorded: k.recorded, vintage: int(k.vintage), shard: a.book.Shard}, ak, kind, s)
	}
}

// BookMonth is a row of the per-book pivoted rollup: a book's measures for one effective
// month, contract year and recorded month.
type BookMonth struct {
	Month, Recorded time.Time
	Year            int
	Position
	HoldingIn Tonnes
	Priced    Tonnes
	Value     decimal.Decimal
	Postings  int64
}

type bookKey struct {
	month, recorded int32
	year            int
}

func (a *Auditor) compareBookMonths(got []BookMonth) {
	compareGrouped(a, "rollup_book_months", got,
		func(k bookKey) bookKey { return k },
		func(r BookMonth) bookKey {
			return bookKey{month: dayNum(r.Month), recorded: dayNum(r.Recorded), year: r.Year}
		},
		func(k bookKey) string {
			return fmt.Sprintf("%s %s year %d recorded %s", a.book.Code, dayTime(k.month).Format("2006-01"), k.year,
				dayTime(k.recorded).Format("2006-01"))
		})
}

// compareBookYears checks the per-year totals (rows with only Year set) against the postings.
func (a *Auditor) compareBookYears(got []BookMonth) {
	compareGrouped(a, "rollup_book_years", got,
		func(k bookKey) bookKey { return bookKey{year: k.year} },
		func(r BookMonth) bookKey { return bookKey{year: r.Year} },
		func(k bookKey) string { return fmt.Sprintf("%s year %d", a.book.Code, k.year) })
}

// compareBookEffective checks the per effective month totals (book_months_effective: rows
// with Month and Year set, whatever the recorded month) against the postings.
func (a *Auditor) compareBookEffective(got []BookMonth) {
	compareGrouped(a, "rollup_book_months_effective", got,
		func(k bookKey) bookKey { return bookKey{month: k.month, year: k.year} },
		func(r BookMonth) bookKey { return bookKey{month: dayNum(r.Month), year: r.Year} },
		func(k bookKey) string {
			return fmt.Sprintf("%s %s year %d", a.book.Code, dayTime(k.month).Format("2006-01"), k.year)
		})
}

// compareGrouped sums the book's months by group(key) and compares each group with the row
// of the rollup that holds it (keyed by rowKey), naming a group by name.
func compareGrouped[K comparable](a *Auditor, check string, got []BookMonth, group func(bookKey) K, rowKey func(BookMonth) K, name func(K) string) {
	want := map[K]*BookMonth{}
	for k, m := range a.books {
		g := group(k)
		w := want[g]
		if w == nil {
			w = &BookMonth{}
			want[g] = w
		}
		w.add(m)
	}
	rows := make([]keyed[K], len(got))
	for i, r := range got {
		rows[i] = keyed[K]{rowKey(r), r}
	}
	compareMonths(a, check, want, rows, name)
}

// keyed is a row of a pivoted rollup with its key.
type keyed[K comparable] struct {
	key K
	row BookMonth
}

// compareMonths compares the rows of a pivoted rollup with what the postings say they hold.
func compareMonths[K comparable](a *Auditor, check string, want map[K]*BookMonth, got []keyed[K], name func(K) string) {
	seen := map[K]bool{}
	for _, x := range got {
		k, r := x.key, x.row
		var w BookMonth
		stray := want[k] == nil || seen[k] // (see compareRollup)
		if !stray {
			w = *want[k]
		}
		seen[k] = true
		if stray || !w.same(r) {
			f := Finding{Check: check, Entry: name(k),
				Expected: fmt.Sprintf("delivered %s, retired %s (%d postings)", w.Delivered, w.Retired, w.Postings),
				Found:    fmt.Sprintf("delivered %s, retired %s (%d postings)", r.Delivered, r.Retired, r.Postings),
				Message:  "a report rollup differs from the sum of its postings"}
			if stray {
				f.Expected, f.Message = "no row", "a report rollup holds a row that no posting makes"
			}
			a.Add(f)
		}
	}
	for k, w := range want {
		if !seen[k] {
			a.Add(Finding{Check: check, Entry: name(k), Expected: fmt.Sprintf("%d postings", w.Postings), Found: "no row",
				Message: "a report rollup is missing postings"})
		}
	}
}

// addSum adds the sum s of postings (of account kind ak, effective kind k) to the row at key.
func addSum[K comparable](rows map[K]*BookMonth, key K, ak AccountKind, k Kind, s *rollupSum) {
	m := rows[key]
	if m == nil {
		m = &BookMonth{}
		rows[key] = m
	}
	m.Position.Add(ak, k, s.amount)
	if holdingIn.Counts(ak, k) {
		m.HoldingIn = m.HoldingIn.Add(s.amount)
	}
	m.Priced, m.Postings = m.Priced.Add(s.priced), m.Postings+s.postings
	if !s.value.IsZero() { // (adding a zero decimal still allocates)
		m.Value = m.Value.Add(s.value)
	}
}

// add adds another row's measures.
func (w *BookMonth) add(m *BookMonth) {
	p, q := &w.Position, m.Position
	p.Contracted, p.Replacements, p.Open = p.Contracted.Add(q.Contracted), p.Replacements.Add(q.Replacements), p.Open.Add(q.Open)
	p.Delivered, p.Holding, p.Retired = p.Delivered.Add(q.Delivered), p.Holding.Add(q.Holding), p.Retired.Add(q.Retired)
	p.Cancelled, p.Reversed, p.BufferCancelled = p.Cancelled.Add(q.Cancelled), p.Reversed.Add(q.Reversed), p.BufferCancelled.Add(q.BufferCancelled)
	w.HoldingIn, w.Priced, w.Value, w.Postings = w.HoldingIn.Add(m.HoldingIn), w.Priced.Add(m.Priced), w.Value.Add(m.Value), w.Postings+m.Postings
}

// same reports whether two rows hold the same measures.
func (w BookMonth) same(g BookMonth) bool {
	return samePos(w.Position, g.Position) && w.HoldingIn.Equal(g.HoldingIn) && w.Priced.Equal(g.Priced) &&
		w.Value.Equal(g.Value) && w.Postings == g.Postings
}

// VintageMonth is a row of vintage_months: the measures of the books of one shard (book id
// modulo 16) for an effective month, a vintage and a recorded month.
type VintageMonth struct {
	Shard   int
	Vintage int
	BookMonth
}

type vintageKey struct {
	month, recorded int32
	vintage, shard  int
}

func (k vintageKey) String() string {
	return fmt.Sprintf("shard %d %s vintage %d recorded %s", k.shard, dayTime(k.month).Format("2006-01"), k.vintage,
		dayTime(k.recorded).Format("2006-01"))
}

// CompareVintages checks vintage_months, every shard of which spans many books, against the
// postings of all the books audited (after Merge).
func (a *Auditor) CompareVintages(got []VintageMonth) {
	rows := make([]keyed[vintageKey], len(got))
	for i, r := range got {
		rows[i] = keyed[vintageKey]{vintageKey{month: dayNum(r.Month), recorded: dayNum(r.Recorded), vintage: r.Vintage, shard: r.Shard}, r.BookMonth}
	}
	compareMonths(a, "rollup_vintage_months", a.vintages, rows, vintageKey.String)
}

func samePos(a, b Position) bool {
	return a.Contracted.Equal(b.Contracted) && a.Replacements.Equal(b.Replacements) && a.Open.Equal(b.Open) &&
		a.Delivered.Equal(b.Delivered) && a.Holding.Equal(b.Holding) && a.Retired.Equal(b.Retired) &&
		a.Cancelled.Equal(b.Cancelled) && a.Reversed.Equal(b.Reversed) && a.BufferCancelled.Equal(b.BufferCancelled)
}

// dayNum is the UTC civil date of t as days since 1970-01-01; monthNum that of its month's
// first day; dayTime turns a day number back into a date.
func dayNum(t time.Time) int32 {
	// A UTC day starts at a multiple of 86400 s (Unix time has no leap seconds): the day is
	// the floor of the seconds over 86400.
	u := t.Unix()
	d := u / 86400
	if u%86400 < 0 {
		d--
	}
	return int32(d)
}

func monthNum(t time.Time) int32 {
	y, m, _ := t.UTC().Date()
	return int32(Date(y, m, 1).Unix() / 86400)
}

func dayTime(n int32) time.Time { return time.Unix(int64(n)*86400, 0).UTC() }

// yearIn is Contract.YearOf over precomputed years (0 before the term, the last year after).
func yearIn(ys []ContractYear, d time.Time) int {
	if len(ys) == 0 || d.Before(ys[0].Start) {
		return 0
	}
	for _, y := range ys {
		if !d.After(y.End) {
			return y.N
		}
	}
	return len(ys)
}

// Merge adds what another auditor (of other books, in the same snapshot) found.
func (a *Auditor) Merge(b *Auditor) {
	for _, f := range b.findings {
		a.Add(f)
	}
	for c, n := range b.suppressed {
		a.suppressed[c] += n
	}
	a.Entries += b.Entries
	for k, n := range b.RecordedBy {
		a.RecordedBy[k] += n
	}
	a.Postings += b.Postings
	a.Trial = a.Trial.Add(b.Trial)
	a.Heads = append(a.Heads, b.Heads...)
	for k, v := range b.Totals {
		a.Totals[k] = v
	}
	for k, v := range b.SinceTotals {
		a.SinceTotals[k] = v
	}
	for k, v := range b.SinceAccounts {
		a.SinceAccounts[k] = v
	}
	for k, v := range b.SinceHashes {
		a.SinceHashes[k] = v
	}
	for k, v := range b.vintages {
		if w := a.vintages[k]; w != nil {
			w.add(v)
		} else {
			a.vintages[k] = v
		}
	}
}

// Finish closes the audit: the trial balance.
func (a *Auditor) Finish() {
	if !a.Trial.IsZero() {
		a.Add(Finding{Check: "trial_balance", Expected: "0.000", Found: a.Trial.String(), Message: "all postings together do not sum to zero"})
	}
}
