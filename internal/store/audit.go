package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq/oid"
	"github.com/shopspring/decimal"

	"github.com/carbonledger/carbonledger/ledger"
)

// AuditResult is what an audit found, with what a statement needs.
type AuditResult struct {
	Findings []ledger.Finding
	Entries  int64
	Postings int64
	Heads    []ledger.ChainHead
	Digest   string
	// Totals is every contract's position from its postings; Balances every account's sum.
	Totals   map[string]ledger.Position
	Balances map[string]ledger.Tonnes
	// KnownAt is the newest recorded time in the snapshot.
	KnownAt time.Time
	// SinceTotals and SinceAccounts are the sums up to the chain positions given to Audit.
	SinceTotals   map[string]ledger.Position
	SinceAccounts map[string]ledger.Tonnes
	SinceHashes   map[string]string
	// RecordedBy counts the entries by who wrote them ("" for those written before the
	// journal recorded it).
	RecordedBy map[string]int64
}

// OK reports whether the audit found nothing wrong.
func (r *AuditResult) OK() bool { return len(r.Findings) == 0 }

// Audit recomputes everything from the postings in one read-only snapshot, streaming the
// journal book by book: the hash chains, every entry's balance, the cached balances and the
// floors at every date, the rollups, each contract's identities, schedule and sealed terms,
// the serial numbers, and the corrections. since, when given, maps books to the chain
// position an earlier statement covered; the result then carries the sums up to there.
func (s *Store) Audit(ctx context.Context, since map[string]int64) (*AuditResult, error) {
	aud := ledger.NewAuditor(50)
	res := &AuditResult{Balances: map[string]ledger.Tonnes{}}
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		books, err := booksTx(ctx, tx, nil)
		if err != nil {
			return err
		}
		contracts, err := auditContracts(ctx, tx)
		if err != nil {
			return err
		}
		// The books are shared out between workers that read the same snapshot, the largest
		// first to whoever has the least, so hashing and reading run on every core.
		var snapshot string
		if err := tx.GetContext(ctx, &snapshot, `SELECT pg_export_snapshot()`); err != nil {
			return err
		}
		workers := min(runtime.NumCPU(), 4, max(len(books), 1))
		shares := make([][]BookInfo, workers)
		load := make([]int64, workers)
		sorted := slices.Clone(books)
		slices.SortStableFunc(sorted, func(a, b BookInfo) int { return cmp.Compare(b.HeadSeq, a.HeadSeq) })
		for _, b := range sorted {
			w := slices.Index(load, slices.Min(load))
			shares[w] = append(shares[w], b)
			load[w] += b.HeadSeq + 1
		}
		auds := make([]*ledger.Auditor, workers)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		// The set-based checks run meanwhile on this transaction's connection, idle until the
		// workers are done (run after them, they left a core idle for over a second).
		sqlAud, sqlErr := ledger.NewAuditor(50), make(chan error, 1)
		go func() { sqlErr <- auditSQL(ctx, tx, sqlAud) }()
		for w := range workers {
			auds[w] = ledger.NewAuditor(50)
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[w] = s.readSnapshot(ctx, snapshot, func(wtx *sqlx.Tx) error {
					q := prepared(wtx)
					v := &auditVisitor{ctx: ctx, tx: q, aud: auds[w], contracts: contracts, since: since}
					return walkJournal(ctx, q, shares[w], v)
				})
			}()
		}
		wg.Wait()
		if err := <-sqlErr; err != nil {
			return err
		}
		for w := range workers {
			if errs[w] != nil {
				return errs[w]
			}
			aud.Merge(auds[w])
		}
		slices.SortFunc(aud.Heads, func(a, b ledger.ChainHead) int { return cmp.Compare(a.Book, b.Book) })
		for _, b := range books {
			for _, a := range b.Accounts {
				res.Balances[a.Code] = a.Balance
			}
		}
		if err := auditVintages(ctx, tx, aud); err != nil {
			return err
		}
		aud.Merge(sqlAud)
		var known sql.NullTime
		if err := tx.GetContext(ctx, &known, `SELECT max(head_recorded_at) FROM books`); err != nil {
			return err
		}
		res.KnownAt = known.Time.UTC()
		return nil
	})
	if err != nil {
		return nil, err
	}
	aud.Finish()
	res.Findings, res.Entries, res.Postings, res.Heads = aud.Findings(), aud.Entries, aud.Postings, aud.Heads
	res.Digest = ledger.LedgerDigest(aud.Heads)
	res.RecordedBy = aud.RecordedBy
	res.Totals, res.SinceTotals, res.SinceAccounts, res.SinceHashes = aud.Totals, aud.SinceTotals, aud.SinceAccounts, aud.SinceHashes
	return res, nil
}

type auditVisitor struct {
	ctx       context.Context
	tx        *bookQueries
	aud       *ledger.Auditor
	contracts map[int64]*ledger.AuditContract
	since     map[string]int64
	// the last book's rollup rows, whose space the next book reuses (EndBook keeps none)
	daily, monthly []ledger.RollupRow
}

func (v *auditVisitor) Book(b BookInfo) error {
	ab := ledger.AuditBook{Code: b.Code, HeadSeq: b.HeadSeq, HeadHash: b.HeadHash, HeadRecordedAt: b.HeadRecordedAt, Contract: v.contracts[b.ID], SinceSeq: v.since[b.Code],
		Shard: int(b.ID % 16)}
	for _, a := range b.Accounts {
		acc := ledger.AuditAccount{Code: a.Code, Kind: ledger.AccountKind(a.Kind), Cached: a.Balance}
		if a.Floor.Valid {
			f, err := ledger.ParseTonnes(a.Floor.String)
			if err != nil {
				return fmt.Errorf("account %s: floor %q: %w", a.Code, a.Floor.String, err)
			}
			acc.Floor = &f
		}
		ab.Accounts = append(ab.Accounts, acc)
	}
	v.aud.BeginBook(ab)
	return nil
}

func (v *auditVisitor) Entry(e ledger.Entry) error {
	v.aud.Entry(e)
	return nil
}

func (v *auditVisitor) EndBook(b BookInfo) error {
	daily, err := rollupRows(v.ctx, v.tx, b, true, v.daily[:0])
	if err != nil {
		return err
	}
	monthly, err := rollupRows(v.ctx, v.tx, b, false, v.monthly[:0])
	if err != nil {
		return err
	}
	books, err := pivotedRows(v.ctx, v.tx, nil, `
		SELECT month, recorded_month, contract_year, contracted, replacements, open, delivered, holding, retired, cancelled,
		       reversed, buffer_cancelled, holding_in, priced, value::text, postings
		  FROM book_months WHERE book_id = $1`, b.ID)
	if err != nil {
		return err
	}
	effective, err := pivotedRows(v.ctx, v.tx, nil, `
		SELECT month, NULL::date, contract_year, contracted, replacements, open, delivered, holding, retired, cancelled,
		       reversed, buffer_cancelled, holding_in, priced, value::text, postings
		  FROM book_months_effective WHERE book_id = $1`, b.ID)
	if err != nil {
		return err
	}
	years, err := pivotedRows(v.ctx, v.tx, nil, `
		SELECT NULL::date, NULL::date, contract_year, contracted, replacements, open, delivered, holding, retired, cancelled,
		       reversed, buffer_cancelled, holding_in, priced, value::text, postings
		  FROM book_years WHERE book_id = $1`, b.ID)
	if err != nil {
		return err
	}
	v.aud.EndBook(daily, monthly, books, effective, years)
	v.daily, v.monthly = daily, monthly
	return nil
}

// rollupRows reads a book's rows of flows (daily) or flows_monthly, packed (see packedEach):
// 3.5 million rows of ten columns, decoded value by value through database/sql, were a fifth
// of the audit's time. Amounts come as text, exact whatever their scale. Besides its key and
// sums, each row carries the copies of its account's kind and its date's contract year that
// the reports group by; they are checked too. The rows are appended to out.
func rollupRows(ctx context.Context, tx queryer, b BookInfo, daily bool, out []ledger.RollupRow) ([]ledger.RollupRow, error) {
	table, days := `flows_monthly`, `month, month`
	if daily {
		table, days = `flows`, `effective_on, recorded_on`
	}
	kind, accountKind := kinds{}, kinds{}
	vals := make([][]byte, len(rollupCols))
	err := packedEach(ctx, tx, `SELECT record_send(ROW(account_id, `+days+`, contract_year, vintage, postings, kind, account_kind,
		       amount::text, priced::text, value::text))
		  FROM `+table+` WHERE book_id = $1`, func(r *packed) error {
		r.row(rollupCols, vals)
		if r.err != nil {
			return r.err
		}
		row := ledger.RollupRow{Day: dateAt(vals[1]), Year: int(int32At(vals[3])), Vintage: int(int16At(vals[4])), Postings: int64At(vals[5]),
			Kind: kind.of(vals[6]), AccountKind: ledger.AccountKind(accountKind.of(vals[7]))}
		if daily {
			row.Recorded = dateAt(vals[2])
		}
		if err := row.Amount.ScanText(vals[8]); err != nil {
			return fmt.Errorf("amount: %w", err)
		}
		if err := row.Priced.ScanText(vals[9]); err != nil {
			return fmt.Errorf("priced: %w", err)
		}
		var err error
		if row.Value, err = parseMoney(string(vals[10])); err != nil {
			return fmt.Errorf("value %q: %w", vals[10], err)
		}
		accountID := int64At(vals[0])
		if row.Account = b.codes[accountID]; row.Account == "" {
			row.Account = fmt.Sprintf("account#%d", accountID)
		}
		out = append(out, row)
		return nil
	}, b.ID)
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", table, err)
	}
	return out, nil
}

// rollupCols are the columns rollupRows packs: the account, the day and the recorded day
// (daily; the month twice, monthly), the contract year, the vintage, the postings, the kind,
// the account's kind, and the three amounts as text.
var rollupCols = []column{col(oid.T_int8), col(oid.T_date), col(oid.T_date), col(oid.T_int4), col(oid.T_int2), col(oid.T_int8),
	col(oid.T_text), col(oid.T_text), col(oid.T_text), col(oid.T_text), col(oid.T_text)}

// pivotedRows reads rows of a pivoted rollup (in kilograms): month, recorded month, a key
// (the contract year, or for vintage_months the vintage) into Year, the eleven measures in
// kilograms, the value and the postings; then, when shard is not nil, the shard into it.
func pivotedRows(ctx context.Context, tx queryer, shard *[]int, q string, args ...any) ([]ledger.BookMonth, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ledger.BookMonth
	for rows.Next() {
		var m ledger.BookMonth
		var value string
		var month, recorded sql.NullTime
		var kg [11]int64
		var sh int
		dest := []any{&month, &recorded, &m.Year, &kg[0], &kg[1], &kg[2], &kg[3], &kg[4],
			&kg[5], &kg[6], &kg[7], &kg[8], &kg[9], &kg[10], &value, &m.Postings}
		if shard != nil {
			dest = append(dest, &sh)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if shard != nil {
			*shard = append(*shard, sh)
		}
		t := ledger.TonnesFromKg
		m.Position = ledger.Position{Contracted: t(kg[0]), Replacements: t(kg[1]), Open: t(kg[2]), Delivered: t(kg[3]), Holding: t(kg[4]),
			Retired: t(kg[5]), Cancelled: t(kg[6]), Reversed: t(kg[7]), BufferCancelled: t(kg[8])}
		m.HoldingIn, m.Priced = t(kg[9]), t(kg[10])
		if m.Value, err = parseMoney(value); err != nil {
			return nil, err
		}
		m.Month, m.Recorded = month.Time.UTC(), recorded.Time.UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// auditContracts loads every contract's terms as signed, its schedule in force and its
// serialized holding, keyed by book id.
func auditContracts(ctx context.Context, tx *sqlx.Tx) (map[int64]*ledger.AuditContract, error) {
	var rows []contractRow
	if err := tx.SelectContext(ctx, &rows, `SELECT `+contractCols+` FROM contracts`); err != nil {
		return nil, err
	}
	var lines []struct {
		ContractID int64 `db:"contract_id"`
		Latest     int   `db:"latest"`
		scheduleRow
	}
	if err := tx.SelectContext(ctx, &lines, `
		SELECT contract_id, version, max(version) OVER (PARTITION BY contract_id) AS latest, explicit, year, tonnes, vintage,
		       price_per_tonne::text AS price_per_tonne, due_on, entry_id::text AS entry_id
		  FROM schedule_lines ORDER BY contract_id, version, year`); err != nil {
		return nil, err
	}
	var held []struct {
		ContractID int64         `db:"contract_id"`
		Tonnes     ledger.Tonnes `db:"tonnes"`
	}
	if err := tx.SelectContext(ctx, &held, `
		SELECT contract_id, sum((upper(serials) - lower(serials)) * serial_unit_tonnes(registry)) AS tonnes FROM serial_blocks WHERE state = 'delivered' GROUP BY 1`); err != nil {
		return nil, err
	}
	byID := map[int64]*ledger.AuditContract{}
	out := map[int64]*ledger.AuditContract{}
	for _, r := range rows {
		ac := &ledger.AuditContract{Terms: r.contract()}
		byID[r.ID], out[r.BookID] = ac, ac
	}
	for _, l := range lines {
		ac := byID[l.ContractID]
		if ac == nil {
			continue
		}
		sl, err := l.line()
		if err != nil {
			return nil, err
		}
		if l.Version == 1 {
			ac.Terms.Schedule = append(ac.Terms.Schedule, sl)
			ac.Terms.ScheduleGiven = l.Explicit
		}
		if l.Version == l.Latest {
			ac.Schedule = append(ac.Schedule, sl)
		}
		if n := len(ac.Versions); n == 0 || ac.Versions[n-1].Version != l.Version {
			ac.Versions = append(ac.Versions, ledger.ScheduleVersion{Version: l.Version, EntryID: l.EntryID})
		}
		v := &ac.Versions[len(ac.Versions)-1]
		v.Lines = append(v.Lines, sl)
	}
	for _, h := range held {
		if ac := byID[h.ContractID]; ac != nil {
			ac.SerializedHolding = h.Tonnes
		}
	}
	return out, nil
}

// auditVintages compares vintage_months, whose shards span books, with what every book's
// postings added to it.
func auditVintages(ctx context.Context, tx *sqlx.Tx, aud *ledger.Auditor) error {
	var shards []int
	rows, err := pivotedRows(ctx, tx, &shards, `
		SELECT month, recorded_month, vintage, contracted, replacements, open, delivered, holding, retired, cancelled,
		       reversed, buffer_cancelled, holding_in, priced, value::text, postings, shard
		  FROM vintage_months`)
	if err != nil {
		return fmt.Errorf("audit vintage months: %w", err)
	}
	got := make([]ledger.VintageMonth, len(rows))
	for i, r := range rows {
		got[i] = ledger.VintageMonth{Shard: shards[i], Vintage: r.Year, BookMonth: r}
		got[i].Year = 0
	}
	aud.CompareVintages(got)
	return nil
}

// auditSQL runs the set-based checks: serial ranges and corrections.
func auditSQL(ctx context.Context, tx *sqlx.Tx, aud *ledger.Auditor) error {
	checks := []struct {
		check, message, expected, sql string
	}{
		{"serial_overlap", "two serial blocks of one series overlap: a serial would be held twice", "no overlap", `
			SELECT a.registry || ' ' || a.prefix || ' ' || a.serials::text AS entry, b.serials::text AS found
			  FROM serial_blocks a JOIN serial_blocks b
			    ON a.registry = b.registry AND a.prefix = b.prefix AND a.serials && b.serials AND a.id < b.id`},
		// (A retire-on-delivery contract's delivery retires its serials as it delivers them: its
		// delivery mode is among the terms sealed into the sign entry.)
		{"serial_retired_delivered", "retired serials were not delivered before, under the same contract", "an earlier delivery of these serials", `
			SELECT r.entry_id::text AS entry, r.prefix || ':' || r.serials::text AS found
			  FROM serial_events r LEFT JOIN entries re ON re.id = r.entry_id LEFT JOIN contracts c ON c.id = r.contract_id
			 WHERE r.to_state = 'retired'
			   AND NOT coalesce(r.from_state IS NULL AND re.kind = 'deliver' AND c.delivery_mode = 'retire_on_delivery'
			                    AND c.book_id = re.book_id, false)
			   AND NOT EXISTS (
			       SELECT 1 FROM serial_events d JOIN entries de ON de.id = d.entry_id
			        WHERE d.from_state IS NULL AND d.to_state = 'delivered' AND d.contract_id = r.contract_id
			          AND d.registry = r.registry AND d.prefix = r.prefix AND d.serials @> r.serials
			          AND de.book_id = re.book_id AND de.seq < re.seq)`},
		// A block is in the state the latest event covering all of it moved it to: a block
		// that no event made (a fabricated delivery, say) or whose state was rewritten is not.
		{"serial_block_history", "a serial block is not in the state its serial history left it in", "the state of the latest event covering the block", `
			SELECT b.entry_id::text AS entry, b.prefix || ':' || b.serials::text || ' ' || b.state || ', history: '
			       || coalesce(last.to_state, CASE WHEN last.id IS NULL THEN 'no event' ELSE 'removed' END) AS found
			  FROM serial_blocks b
			  LEFT JOIN LATERAL (SELECT e.id, e.to_state FROM serial_events e
			                      WHERE e.registry = b.registry AND e.prefix = b.prefix AND e.serials @> b.serials
			                      ORDER BY e.id DESC LIMIT 1) last ON true
			 WHERE last.to_state IS DISTINCT FROM b.state`},
		{"correction_target", "a correction does not point at an earlier entry of its own book, of the kind it records", "an earlier entry of the same book and kind", `
			SELECT r.id::text AS entry, coalesce(o.kind, 'missing') || ' in ' || coalesce(o.book_id::text, '-') AS found
			  FROM entries r LEFT JOIN entries o ON o.id = r.reverts
			 WHERE r.reverts IS NOT NULL
			   AND (o.id IS NULL OR o.book_id <> r.book_id OR o.kind IS DISTINCT FROM r.reverts_kind OR o.seq >= r.seq)`},
	}
	for _, c := range checks {
		var rows []struct {
			Entry string `db:"entry"`
			Found string `db:"found"`
		}
		if err := tx.SelectContext(ctx, &rows, c.sql); err != nil {
			return fmt.Errorf("audit %s: %w", c.check, err)
		}
		for _, r := range rows {
			aud.Add(ledger.Finding{Check: c.check, Entry: r.Entry, Expected: c.expected, Found: r.Found, Message: c.message})
		}
	}
	return nil
}

// parseMoney reads a numeric printed by PostgreSQL. Zero, most rows of a rollup's value
// column (only priced deliveries carry one), is the zero Decimal without parsing: the parse
// allocates, millions of times in an audit.
func parseMoney(s string) (decimal.Decimal, error) {
	if s == "0" || (len(s) > 2 && s[:2] == "0." && strings.Trim(s[2:], "0") == "") {
		return decimal.Decimal{}, nil
	}
	return decimal.NewFromString(s)
}
