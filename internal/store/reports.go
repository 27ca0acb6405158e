package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/shopspring/decimal"

	"github.com/carbonledger/carbonledger/ledger"
)

// ReportQuery says which effective and recorded history a report counts.
type ReportQuery struct {
	// AsOf counts what had effectively happened by the end of this date.
	AsOf time.Time
	// KnownAt, when set, counts only what the ledger had recorded by this instant, so that a
	// report published earlier can be reproduced after later back-dated corrections.
	KnownAt time.Time
	// Contract limits the report to one contract ("" for all).
	Contract string
	// Inventory asks ContractReport for the monthly deliveries into each holding too (the
	// portfolio's inventory ages them).
	Inventory bool

	// quietAfter is set once the journal is known to hold nothing recorded later on the
	// known-at day than the instant: the postings need not be read (nor planned) for it.
	quietAfter bool
}

// checkQuietAfter sets q.quietAfter when nothing was recorded on the known-at day after the
// instant (one index probe).
func (q *ReportQuery) checkQuietAfter(ctx context.Context, tx *sqlx.Tx) error {
	if q.KnownAt.IsZero() {
		return nil
	}
	var later bool
	if err := tx.GetContext(ctx, &later, `SELECT EXISTS (SELECT 1 FROM entries e`+postingsAfterInstant+`)`,
		q.AsOf, q.KnownAt); err != nil {
		return err
	}
	q.quietAfter = !later
	return nil
}

// postingsFrom joins each posting to its entry, account and contract, with x.price the price
// per tonne a delivery (or a correction of one) carries: the rollups' inputs, read from the
// journal itself for the known-at day, where the daily rollup is too coarse.
const postingsFrom = `
  FROM entries e
  JOIN postings p ON p.entry_id = e.id
  JOIN accounts a ON a.id = p.account_id
  LEFT JOIN contracts c ON c.book_id = e.book_id
  LEFT JOIN entries o ON o.id = e.reverts
  CROSS JOIN LATERAL (SELECT CASE WHEN coalesce(e.reverts_kind, e.kind) = 'deliver' AND a.kind IN ('holding', 'retired')
                                  THEN (coalesce(o.metadata, e.metadata)->>'price_per_tonne')::numeric END AS price) x
`

// pricedExpr and valueExpr are a posting's priced tonnes and money value over postingsFrom.
const (
	pricedExpr = `CASE WHEN x.price IS NOT NULL THEN p.amount ELSE 0 END`
	valueExpr  = `CASE WHEN x.price IS NOT NULL THEN p.amount * x.price ELSE 0 END`
)

// postingsAfterInstant selects, over postingsFrom, the postings effective by $1 and recorded
// on the day of the instant $2 but after it.
const postingsAfterInstant = ` WHERE e.recorded_at > $2::timestamptz
   AND e.recorded_at < (((($2::timestamptz AT TIME ZONE 'UTC')::date) + 1)::timestamp AT TIME ZONE 'UTC') AND e.effective_on <= $1::date`

// measureCols are the pivoted measures of book_months, in whole kilograms (value in money).
const measureCols = `contracted, replacements, open, delivered, holding, retired, cancelled, reversed, buffer_cancelled, holding_in, priced, value`

// measuresKg is the SQL of the measures one posting (account kind ak, effective kind k,
// amount a in tonnes) adds, in kilograms, inline (a function call per row costs more than the
// sums): the same mapping as ledger.Position.Add and the database's posting_measures.
func measuresKg(ak, k, a, priced, value string) string {
	return strings.Join(measureExprs(ak, k, a, priced, value), ", ")
}

// measureExprs is generated from ledger.Measures, in measureCols' order.
func measureExprs(ak, k, a, priced, value string) []string {
	kg := "(" + a + " * 1000)::bigint"
	var out []string
	for _, m := range ledger.Measures {
		out = append(out, "CASE WHEN "+m.MeasureSQL(ak, k)+" THEN "+kg+" ELSE 0 END")
	}
	return append(out, "("+priced+" * 1000)::bigint", value)
}

var (
	flowKg    = measuresKg("f.account_kind", "f.kind", "f.amount", "f.priced", "f.value")
	negFlowKg = negate(measureExprs("f.account_kind", "f.kind", "f.amount", "f.priced", "f.value"))
)

// negated is measureCols with every measure negated.
const negated = `-contracted, -replacements, -open, -delivered, -holding, -retired, -cancelled, -reversed, -buffer_cancelled, -holding_in, -priced, -value`

// The as-of date $1 and the known-at instant $2 of a report's SQL, cut into months and days.
const (
	dMonth = `date_trunc('month', $1::date)::date`
	dNext  = `(date_trunc('month', $1::date) + interval '1 month')::date`
	tDay   = `($2::timestamptz AT TIME ZONE 'UTC')::date`
	tMonth = `date_trunc('month', ($2::timestamptz AT TIME ZONE 'UTC'))::date`
	tNext  = `(date_trunc('month', ($2::timestamptz AT TIME ZONE 'UTC')) + interval '1 month')::date`
	// unknown keeps $2 in a query that does not otherwise read it (its type must be known)
	unknown = ` AND $2::timestamptz IS NULL`
)

// A grain is a family of pivoted rollups a report reads: rows of an id (a book, or a shard of
// books), an effective month and a key (the contract year, or the vintage), with the measures
// in kilograms and the count of postings. The same rows come from the daily rollup (flows f)
// and from the postings themselves (postingsFrom) for the parts of a month the monthly
// rollups cannot give.
type grain struct {
	effective string // by effective month, whatever the recorded month
	months    string // by effective and recorded month
	id, key   string // their id and key columns
	// the id and key over flows f and over postingsFrom
	flowID, flowKey, postID, postKey string
}

var (
	bookGrain = grain{effective: "book_months_effective", months: "book_months", id: "book_id", key: "contract_year",
		flowID: "f.book_id", flowKey: "f.contract_year",
		postID: "e.book_id", postKey: "coalesce(contract_year(c.term_start, c.term_end, e.effective_on), 0)"}
	// vintage_months has the recorded month too: it serves as both
	vintageGrain = grain{effective: "vintage_months", months: "vintage_months", id: "shard", key: "vintage",
		flowID: "(f.book_id % 16)::smallint", flowKey: "f.vintage",
		postID: "(e.book_id % 16)::smallint", postKey: "coalesce(e.vintage, 0)"}
)

// flowRow is the select list of a row of the grain from flows f, negated when neg.
func (g grain) flowRow(neg bool) string {
	if neg {
		return g.flowID + `, date_trunc('month', f.effective_on)::date, ` + g.flowKey + `, ` + negFlowKg + `, -f.postings`
	}
	return g.flowID + `, date_trunc('month', f.effective_on)::date, ` + g.flowKey + `, ` + flowKg + `, f.postings`
}

// effectiveBy returns the SQL of the grain's rows of everything effective by the as-of date
// $1, as recorded now: the monthly rollup through the as-of month, less the days of that
// month after the date from the daily rollup (none, for a report as of today).
func (g grain) effectiveBy() string {
	return `
SELECT ` + g.id + `, month, ` + g.key + `, ` + measureCols + `, postings FROM ` + g.effective + ` WHERE month <= ` + dMonth + `
UNION ALL -- less what took effect after the as-of date, in its month
SELECT ` + g.flowRow(true) + ` FROM flows f WHERE f.effective_on > $1::date AND f.effective_on < ` + dNext
}

// recordedAfter returns further rows (each beginning UNION ALL) that subtract what took
// effect by $1 but was recorded after the instant $2. What took effect in the months through
// the as-of month comes from the monthly rollup by recorded month for the months after the
// known-at month, and from the daily rollup for the known-at month, from whichever end of it
// is nearer the known-at day (addBack: subtract the whole month and add back its days up to
// the known-at day, else subtract its days after it); what of that took effect after the
// as-of date is given back from the daily rollup; the known-at day itself comes from the
// postings. The work is proportional to what was recorded after the instant, little for a
// recent one, and reads at most half a month of the daily rollup.
func (g grain) recordedAfter(addBack, quietAfter bool) string {
	after := ` > `
	if addBack {
		after = ` >= `
	}
	q := `
UNION ALL -- effective in the months to the as-of month, recorded in the months after the known-at month (addBack: from it)
SELECT ` + g.id + `, month, ` + g.key + `, ` + negated + `, -postings FROM ` + g.months + `
 WHERE month <= ` + dMonth + ` AND recorded_month` + after + tMonth
	if addBack {
		q += `
UNION ALL -- ... less the known-at month's days up to the known-at day
SELECT ` + g.flowRow(false) + ` FROM flows f
 WHERE f.effective_on < ` + dNext + ` AND f.recorded_on >= ` + tMonth + ` AND f.recorded_on <= ` + tDay
	} else {
		q += `
UNION ALL -- ... and in the known-at month after the known-at day
SELECT ` + g.flowRow(true) + ` FROM flows f
 WHERE f.effective_on < ` + dNext + ` AND f.recorded_on > ` + tDay + ` AND f.recorded_on < ` + tNext
	}
	q += `
UNION ALL -- of which what took effect after the as-of date, in its month, is not to subtract
-- (recorded_on + 0: the days after the date are few, the days recorded after an instant may
-- be many, and a bitmap of both indexes costs more than filtering the first)
SELECT ` + g.flowRow(false) + ` FROM flows f
 WHERE f.effective_on > $1::date AND f.effective_on < ` + dNext + ` AND f.recorded_on + 0 > ` + tDay
	if quietAfter {
		return q
	}
	return q + `
UNION ALL -- recorded on the known-at day after the known-at instant
SELECT ` + g.postID + `, date_trunc('month', e.effective_on)::date, ` + g.postKey + `,
       ` + negate(measureExprs("a.kind", "coalesce(e.reverts_kind, e.kind)", "p.amount", pricedExpr, valueExpr)) + `, -1
` + postingsFrom + postingsAfterInstant
}

// monthRows returns the SQL of the grain's rows whose sums are what took effect by $1 and was
// recorded by $2 (when knownAt).
func (q ReportQuery) monthRows(g grain) string {
	if q.KnownAt.IsZero() {
		return g.effectiveBy() + unknown
	}
	return g.effectiveBy() + g.recordedAfter(q.addBack(), q.quietAfter)
}

// yearRows returns the SQL of book rows whose sum per book and contract year is the position
// as of $1 and known at $2: the all-time totals of book_years, minus what took effect after
// $1 (the months after its month, and its month after the date) and, with known-at, minus
// what was recorded after $2. The work is proportional to what lies after the date and the
// instant: little for recent ones.
func (q ReportQuery) yearRows() string {
	s := `
SELECT book_id, NULL::date AS month, contract_year, ` + measureCols + `, postings FROM book_years
UNION ALL -- effective in the months after the as-of month
SELECT book_id, month, contract_year, ` + negated + `, -postings FROM book_months_effective WHERE month > ` + dMonth + `
UNION ALL -- effective in the as-of month after the as-of date
SELECT ` + bookGrain.flowRow(true) + ` FROM flows f WHERE f.effective_on > $1::date AND f.effective_on < ` + dNext
	if q.KnownAt.IsZero() {
		return s + unknown
	}
	return s + bookGrain.recordedAfter(q.addBack(), q.quietAfter)
}

// addBack reports whether the known-at day lies in the first half of its month, where the
// days up to it are fewer than the days after it.
func (q ReportQuery) addBack() bool {
	t := q.KnownAt.UTC()
	last := ledger.Date(t.Year(), t.Month()+1, 0).Day()
	return t.Day() <= last-t.Day()
}

// negate is the select list of the expressions, each negated.
func negate(exprs []string) string {
	out := make([]string, len(exprs))
	for i, e := range exprs {
		out[i] = "-(" + e + ")"
	}
	return strings.Join(out, ", ")
}

// pivotRow is an aggregate of pivoted rows, in kilograms.
type pivotRow struct {
	BookID          int64
	ContractYear    sql.NullInt64
	Month           sql.NullTime
	Key             string
	Contracted      int64
	Replacements    int64
	Open            int64
	Delivered       int64
	Holding         int64
	Retired         int64
	Cancelled       int64
	Reversed        int64
	BufferCancelled int64
	HoldingIn       int64
	Priced          int64
	Value           decimal.Decimal
}

const sumMeasures = `sum(contracted)::bigint AS contracted, sum(replacements)::bigint AS replacements, sum(open)::bigint AS open,
	sum(delivered)::bigint AS delivered, sum(holding)::bigint AS holding, sum(retired)::bigint AS retired,
	sum(cancelled)::bigint AS cancelled, sum(reversed)::bigint AS reversed, sum(buffer_cancelled)::bigint AS buffer_cancelled,
	sum(holding_in)::bigint AS holding_in, sum(priced)::bigint AS priced, sum(value) AS value`

// periodMeasures sums only the flows a period report prints (what was contracted, delivered,
// retired, cancelled and reversed), in the columns of sumMeasures: the stocks, the inventory
// and the money are left at zero, and summing five fewer columns is a third less work.
const periodMeasures = `sum(contracted)::bigint AS contracted, sum(replacements)::bigint AS replacements, 0::bigint AS open,
	sum(delivered)::bigint AS delivered, 0::bigint AS holding, sum(retired)::bigint AS retired,
	sum(cancelled)::bigint AS cancelled, sum(reversed)::bigint AS reversed, sum(buffer_cancelled)::bigint AS buffer_cancelled,
	0::bigint AS holding_in, 0::bigint AS priced, 0::numeric AS value`

// selectPivot runs a query whose columns are those of pivotRow, in its order, and scans the
// rows by hand: reflection and a decimal parse per zero value were most of a report's time.
func selectPivot(ctx context.Context, tx *sqlx.Tx, q string, args ...any) ([]pivotRow, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []pivotRow
	for rows.Next() {
		var r pivotRow
		var value string
		if err := rows.Scan(&r.BookID, &r.ContractYear, &r.Month, &r.Key, &r.Contracted, &r.Replacements, &r.Open, &r.Delivered,
			&r.Holding, &r.Retired, &r.Cancelled, &r.Reversed, &r.BufferCancelled, &r.HoldingIn, &r.Priced, &value); err != nil {
			return nil, err
		}
		if r.Value, err = parseMoney(value); err != nil {
			return nil, fmt.Errorf("value %q: %w", value, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (r pivotRow) sum() ledger.FlowSum {
	t := ledger.TonnesFromKg
	return ledger.FlowSum{Position: ledger.Position{Contracted: t(r.Contracted), Replacements: t(r.Replacements), Open: t(r.Open),
		Delivered: t(r.Delivered), Holding: t(r.Holding), Retired: t(r.Retired), Cancelled: t(r.Cancelled), Reversed: t(r.Reversed),
		BufferCancelled: t(r.BufferCancelled)}, Priced: t(r.Priced), Value: r.Value}
}

// reportTx begins the settings a report's aggregate wants: no JIT (its compile time is most of
// a 100 ms budget), room to hash-aggregate in memory, and no parallel workers (starting them
// cost more than the small scans they were planned for, from misestimated row counts; a
// contract report already reads on several connections at once).
func reportTx(ctx context.Context, tx *sqlx.Tx) error {
	_, err := tx.ExecContext(ctx, `SET LOCAL jit = off; SET LOCAL work_mem = '64MB'; SET LOCAL max_parallel_workers_per_gather = 0`)
	return err
}

func (q ReportQuery) args() (asOf time.Time, knownAt any) {
	asOf = q.AsOf
	if !q.KnownAt.IsZero() {
		knownAt = q.KnownAt
	}
	return asOf, knownAt
}

// reportContracts loads the contracts a report covers: those signed by the as-of date (and,
// with known-at, recorded by then: the sign entry is always the first of a contract's
// chain, so its position, seq 1, finds it by the primary key), with the schedule and
// termination in force then.
func reportContracts(ctx context.Context, tx *sqlx.Tx, q ReportQuery) ([]*ledger.ContractFlows, map[int64]*ledger.ContractFlows, error) {
	asOf, knownAt := q.args()
	var rows []contractRow
	if err := tx.SelectContext(ctx, &rows, `
		SELECT `+contractCols+` FROM contracts c
		 WHERE c.signed_on <= $1::date AND ($3 = '' OR c.code = $3)
		   AND ($2::timestamptz IS NULL OR EXISTS (
		        SELECT 1 FROM entries e WHERE e.book_id = c.book_id AND e.seq = 1 AND e.recorded_at <= $2::timestamptz))
		 ORDER BY c.code`, asOf, knownAt, q.Contract); err != nil {
		return nil, nil, err
	}
	if q.Contract != "" && len(rows) == 0 {
		var exists bool
		if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM contracts WHERE code = $1)`, q.Contract); err != nil {
			return nil, nil, err
		}
		if !exists {
			return nil, nil, unknownContract(q.Contract)
		}
	}
	list := make([]*ledger.ContractFlows, 0, len(rows))
	byBook := map[int64]*ledger.ContractFlows{}
	ids := make([]int64, 0, len(rows))
	byID := map[int64]*ledger.ContractFlows{}
	for _, r := range rows {
		cf := &ledger.ContractFlows{Contract: r.contract(), Years: map[int]*ledger.FlowSum{}}
		list = append(list, cf)
		byBook[r.BookID] = cf
		byID[r.ID] = cf
		ids = append(ids, r.ID)
	}
	// The schedule version in force: the latest whose entry was effective by the as-of date
	// (and recorded by known-at). Version 1 is written with the sign entry, which the list
	// above already requires, so only amendments need their entry looked up (a thousand
	// primary-key lookups were most of this query).
	// (scanned by hand, the due date as a day number: thousands of lines by reflection and
	// date parsing were a fifth of a term report's time)
	lines, err := tx.QueryContext(ctx, `
		WITH v AS (
		    SELECT s.contract_id, max(s.version) AS version
		      FROM schedule_lines s
		     WHERE s.contract_id = ANY($1) AND (s.version = 1 OR EXISTS (
		           SELECT 1 FROM entries e WHERE e.id = s.entry_id AND e.effective_on <= $2::date
		              AND ($3::timestamptz IS NULL OR e.recorded_at <= $3::timestamptz)))
		     GROUP BY s.contract_id)
		SELECT s.contract_id, s.year, s.tonnes, s.vintage, s.price_per_tonne::text, s.due_on - date '1970-01-01'
		  FROM schedule_lines s JOIN v USING (contract_id, version)
		 ORDER BY s.contract_id, s.year`, pq.Array(ids), asOf, knownAt)
	if err != nil {
		return nil, nil, err
	}
	defer lines.Close()
	for lines.Next() {
		var id int64
		var sl ledger.ScheduleLine
		var vintage, due sql.NullInt64
		var price sql.NullString
		if err := lines.Scan(&id, &sl.Year, &sl.Tonnes, &vintage, &price, &due); err != nil {
			return nil, nil, err
		}
		sl.Vintage = int(vintage.Int64)
		if price.Valid {
			p, err := decimal.NewFromString(price.String)
			if err != nil {
				return nil, nil, fmt.Errorf("contract %d: schedule price %q: %w", id, price.String, err)
			}
			sl.PricePerTonne = &p
		}
		if due.Valid {
			sl.DueOn = time.Unix(due.Int64*86400, 0).UTC()
		}
		byID[id].Schedule = append(byID[id].Schedule, sl)
	}
	if err := lines.Err(); err != nil {
		return nil, nil, err
	}
	var terms []struct {
		BookID int64     `db:"book_id"`
		On     time.Time `db:"on"`
	}
	if err := tx.SelectContext(ctx, &terms, `
		SELECT e.book_id, min(e.effective_on) AS on
		  FROM entries e
		 WHERE e.kind = 'cancel' AND e.metadata->>'terminate' = 'true' AND e.effective_on <= $1::date
		   AND ($2::timestamptz IS NULL OR e.recorded_at <= $2::timestamptz)
		   AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.reverts = e.id AND r.effective_on <= $1::date
		                     AND ($2::timestamptz IS NULL OR r.recorded_at <= $2::timestamptz))
		 GROUP BY e.book_id`, asOf, knownAt); err != nil {
		return nil, nil, err
	}
	for _, t := range terms {
		if cf, ok := byBook[t.BookID]; ok {
			cf.TerminatedOn = t.On.UTC()
		}
	}
	return list, byBook, nil
}

// ContractReport returns, per contract, its flows in total and per contract year, and the
// monthly deliveries into its holding: what the term and portfolio reports are built from.
func (s *Store) ContractReport(ctx context.Context, q ReportQuery) ([]*ledger.ContractFlows, error) {
	var (
		list       []*ledger.ContractFlows
		byBook     map[int64]*ledger.ContractFlows
		years      []pivotRow
		inv        map[int64][]ledger.MonthAmount
		bookFilter any
	)
	asOf, knownAt := q.args()
	contracts := func(tx *sqlx.Tx) (err error) {
		list, byBook, err = reportContracts(ctx, tx, q)
		return err
	}
	yearSums := func(tx *sqlx.Tx) (err error) {
		if err := reportTx(ctx, tx); err != nil {
			return err
		}
		years, err = selectPivot(ctx, tx, `
			SELECT book_id, contract_year, NULL::date AS month, '' AS key, `+sumMeasures+`
			  FROM (`+q.yearRows()+`) r
			 WHERE $3::bigint IS NULL OR book_id = $3::bigint
			 GROUP BY book_id, contract_year`, asOf, knownAt, bookFilter)
		if err != nil {
			return fmt.Errorf("contract report: %w", err)
		}
		return nil
	}
	inventory := func(tx *sqlx.Tx) (err error) {
		if err := reportTx(ctx, tx); err != nil {
			return err
		}
		if inv, err = inventorySums(ctx, tx, q, bookFilter); err != nil {
			return fmt.Errorf("contract report: inventory: %w", err)
		}
		return nil
	}
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		if err := q.checkQuietAfter(ctx, tx); err != nil {
			return err
		}
		if q.Contract != "" {
			// one contract: a few small reads, one after the other, of its book only
			if err := contracts(tx); err != nil || len(list) == 0 {
				return err
			}
			for b := range byBook {
				bookFilter = b
			}
			if err := yearSums(tx); err != nil {
				return err
			}
			if q.Inventory {
				return inventory(tx)
			}
			return nil
		}
		// every contract: the contracts, their sums and their inventory are read at once,
		// on as many connections sharing this transaction's snapshot
		fns := []func(*sqlx.Tx) error{contracts, yearSums}
		if q.Inventory {
			fns = append(fns, inventory)
		}
		return s.concurrently(ctx, tx, fns...)
	})
	if err != nil {
		return nil, err
	}
	for _, r := range years {
		if cf, ok := byBook[r.BookID]; ok {
			f := r.sum()
			cf.Years[int(r.ContractYear.Int64)] = &f
			cf.Total.Merge(f)
		}
	}
	for book, months := range inv {
		if cf, ok := byBook[book]; ok {
			cf.HoldingIn = months
		}
	}
	return list, nil
}

// concurrently runs the functions at once: the first in tx, each other in a read-only
// transaction of its own that shares tx's snapshot, so that together they read one
// consistent state of the ledger, on as many cores as there are connections.
func (s *Store) concurrently(ctx context.Context, tx *sqlx.Tx, fns ...func(*sqlx.Tx) error) error {
	var snapshot string
	if err := tx.GetContext(ctx, &snapshot, `SELECT pg_export_snapshot()`); err != nil {
		return err
	}
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i := 1; i < len(fns); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.readSnapshot(ctx, snapshot, fns[i])
		}()
	}
	errs[0] = fns[0](tx)
	wg.Wait() // the snapshot lives as long as tx: the others must be done before it ends
	return errors.Join(errs...)
}

// inventorySums returns, per book, the deliveries into the holding per month (in month
// order, months that net to zero left out), for the inventory's age. Only the one measure is
// read, as two arrays per book (tens of thousands of rows cost more to receive one by one
// than to group in the database; the arrays are parsed here, the driver's parser allocating
// for every element), with the month as a day number, not a date to parse.
func inventorySums(ctx context.Context, tx *sqlx.Tx, q ReportQuery, bookFilter any) (map[int64][]ledger.MonthAmount, error) {
	asOf, knownAt := q.args()
	rows, err := tx.QueryContext(ctx, `
		SELECT book_id, array_agg(month - date '1970-01-01'), array_agg(holding_in)
		  FROM (`+q.monthRows(bookGrain)+`) r
		 WHERE holding_in <> 0 AND ($3::bigint IS NULL OR book_id = $3::bigint)
		 GROUP BY book_id`, asOf, knownAt, bookFilter)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64][]ledger.MonthAmount{}
	var days, kgs []int64
	for rows.Next() {
		var book int64
		var dayText, kgText sql.RawBytes
		if err := rows.Scan(&book, &dayText, &kgText); err != nil {
			return nil, err
		}
		if days, err = parseInt64Array(days[:0], dayText); err != nil {
			return nil, fmt.Errorf("book %d: months: %w", book, err)
		}
		if kgs, err = parseInt64Array(kgs[:0], kgText); err != nil {
			return nil, fmt.Errorf("book %d: amounts: %w", book, err)
		}
		if len(days) != len(kgs) {
			return nil, fmt.Errorf("book %d: %d months, %d amounts", book, len(days), len(kgs))
		}
		pairs := make([][2]int64, len(days))
		for i := range days {
			pairs[i] = [2]int64{days[i], kgs[i]}
		}
		slices.SortFunc(pairs, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
		var months []ledger.MonthAmount
		for i := 0; i < len(pairs); {
			day, kg := pairs[i][0], int64(0)
			for ; i < len(pairs) && pairs[i][0] == day; i++ {
				kg += pairs[i][1]
			}
			if kg != 0 {
				months = append(months, ledger.MonthAmount{Month: time.Unix(day*86400, 0).UTC(), Amount: ledger.TonnesFromKg(kg)})
			}
		}
		out[book] = months
	}
	return out, rows.Err()
}

// parseInt64Array appends the elements of a one-dimensional integer array as PostgreSQL
// prints it ("{1,-2,3}") to dst.
func parseInt64Array(dst []int64, b []byte) ([]int64, error) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return dst, fmt.Errorf("not an array: %q", b)
	}
	b = b[1 : len(b)-1]
	if len(b) == 0 {
		return dst, nil
	}
	for {
		end := bytes.IndexByte(b, ',')
		if end < 0 {
			end = len(b)
		}
		n, err := strconv.ParseInt(string(b[:end]), 10, 64)
		if err != nil {
			return dst, fmt.Errorf("element %q: %w", b[:end], err)
		}
		dst = append(dst, n)
		if end == len(b) {
			return dst, nil
		}
		b = b[end+1:]
	}
}

// GroupKeys are the dimensions a period report can group by.
var GroupKeys = []string{"method", "supplier", "buyer", "region", "registry", "vintage", "durability", "contract"}

// groupSQL is the SQL expression of a group key over contracts c and rollup rows r. The
// durability classes mirror ledger.Durability.Class.
func groupSQL(by string) (string, error) {
	switch by {
	case "", "none":
		return `''`, nil
	case "method":
		return `c.method`, nil
	case "supplier":
		return `c.supplier`, nil
	case "buyer":
		return `c.buyer`, nil
	case "region":
		return `CASE WHEN c.region = '' THEN c.country ELSE c.region || ', ' || c.country END`, nil
	case "registry":
		return `CASE WHEN c.registry = '' THEN 'not public' ELSE c.registry END`, nil
	case "vintage":
		return `CASE WHEN r.vintage = 0 THEN 'unspecified' ELSE r.vintage::text END`, nil
	case "durability":
		return `CASE WHEN c.durability_years IS NULL THEN 'unknown' WHEN c.durability_years >= 1000 THEN '1000+ years'
		             WHEN c.durability_years >= 100 THEN '100-999 years' ELSE 'under 100 years' END`, nil
	case "contract":
		return `c.code`, nil
	}
	return "", ledger.Invalid("--by", by, "is not a grouping ("+strings.Join(GroupKeys, ", ")+")")
}

// MonthBounds returns the first day of every month from from's month to to's, inclusive:
// bounds for PeriodFlows that keep every month apart.
func MonthBounds(from, to time.Time) []time.Time {
	var out []time.Time
	for m := ledger.Date(from.Year(), from.Month(), 1); !m.After(to); m = m.AddDate(0, 1, 0) {
		out = append(out, m)
	}
	return out
}

// PeriodFlows returns the flows grouped by the key `by` and by bucket, counting what had
// happened by the as-of date and was recorded by known-at. bounds are first days of months,
// ascending: a bucket is [bounds[i], bounds[i+1]) and its rows carry Month = bounds[i];
// nothing before the first bound or from the last one on is counted. The periods of a report
// are the buckets (with their gaps as buckets of their own), so the database sums each
// period once instead of returning every month of it. Only the flows are summed (contracted,
// replacements, delivered, retired, cancelled, reversed, buffer cancelled): a period's open
// and holding balances, inventory and money are left at zero.
func (s *Store) PeriodFlows(ctx context.Context, q ReportQuery, bounds []time.Time, by string) ([]ledger.GroupFlows, error) {
	expr, err := groupSQL(by)
	if err != nil {
		return nil, err
	}
	if len(bounds) < 2 || !slices.IsSortedFunc(bounds, func(a, b time.Time) int { return a.Compare(b) }) {
		return nil, fmt.Errorf("period flows: %d bounds: want at least two, ascending", len(bounds))
	}
	var out []ledger.GroupFlows
	err = s.read(ctx, func(tx *sqlx.Tx) error {
		if err := reportTx(ctx, tx); err != nil {
			return err
		}
		if err := q.checkQuietAfter(ctx, tx); err != nil {
			return err
		}
		asOf, knownAt := q.args()
		idx := map[[2]string]int{}
		add := func(month time.Time, key string, f ledger.FlowSum) {
			k := [2]string{month.Format(time.DateOnly), key}
			i, ok := idx[k]
			if !ok {
				i = len(out)
				idx[k] = i
				out = append(out, ledger.GroupFlows{Month: month.UTC(), Key: key})
			}
			out[i].Sum.Merge(f)
		}
		cuts := make([]string, len(bounds))
		for i, b := range bounds {
			cuts[i] = ledger.FormatDate(b)
		}
		// $3 is the array of bounds; each row's bucket is the bound at or before its month
		const bucket = `($3::date[])[width_bucket(r.month, $3::date[])]`
		const inBounds = `r.month >= ($3::date[])[1] AND r.month < ($3::date[])[cardinality($3::date[])]`
		signed := `($2::timestamptz IS NULL OR EXISTS (
			        SELECT 1 FROM entries e WHERE e.book_id = c.book_id AND e.seq = 1 AND e.recorded_at <= $2::timestamptz))`
		var rows []pivotRow
		var err error
		if by != "vintage" {
			// summed per book and bucket first: the join and the grouping by key then see a
			// few rows per contract rather than every month of it
			rows, err = selectPivot(ctx, tx, `
				SELECT 0::bigint AS book_id, NULL::int AS contract_year, r.month, `+expr+` AS key, `+periodMeasures+`
				  FROM (SELECT r.book_id, `+bucket+` AS month, `+periodMeasures+`
				          FROM (`+q.monthRows(bookGrain)+`) r
				         WHERE `+inBounds+`
				         GROUP BY 1, 2
				        HAVING sum(r.postings) <> 0) r
				  JOIN contracts c ON c.book_id = r.book_id
				 WHERE `+signed+`
				 GROUP BY r.month, key
				 ORDER BY r.month, key`, asOf, knownAt, pq.Array(cuts))
		} else {
			// The vintage is a property of each entry, not of its contract: vintage_months
			// has it, over shards of books. A contract signed after the as-of date, or
			// recorded after the known-at instant, has no postings counted, so it needs no
			// filter here.
			rows, err = selectPivot(ctx, tx, `
				SELECT 0::bigint AS book_id, NULL::int AS contract_year, `+bucket+` AS month, `+expr+` AS key, `+periodMeasures+`
				  FROM (`+q.monthRows(vintageGrain)+`) r
				 WHERE `+inBounds+`
				 GROUP BY 3, 4
				HAVING sum(r.postings) <> 0
				 ORDER BY 3, 4`, asOf, knownAt, pq.Array(cuts))
		}
		if err != nil {
			return fmt.Errorf("period report: %w", err)
		}
		for _, r := range rows {
			add(r.Month.Time, r.Key, r.sum())
		}
		return nil
	})
	return out, err
}

// LastRecorded returns the newest recorded time in the journal (zero when empty), which a
// report prints as the moment its figures were known at.
func (s *Store) LastRecorded(ctx context.Context) (time.Time, error) {
	var t sql.NullTime
	err := s.db.GetContext(ctx, &t, `SELECT max(head_recorded_at) FROM books`)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, mapErr(err)
	}
	return t.Time.UTC(), nil
}
