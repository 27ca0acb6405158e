package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// flowRows returns the SQL of the per-account rollup rows a report aggregates, with $1 the
// as-of date and $2 the known-at instant: the monthly rollup for whole months before the
// as-of month and the daily rollup for the as-of month. With known-at, what was recorded
// later is then subtracted, as yearRows does: the daily rows recorded after the known-at
// day, and the postings of that day after the instant. That reads what lies after the
// instant, little for a recent one, instead of every daily row before it. Rows of opposite
// sign cancel in the sums; a group left at zero is dropped by the caller.
func flowRows(knownAt bool) string {
	q := `
SELECT account_id, book_id, account_kind, kind, contract_year, month, vintage, amount, priced, value
  FROM flows_monthly WHERE month < date_trunc('month', $1::date)::date
UNION ALL
SELECT account_id, book_id, account_kind, kind, contract_year, date_trunc('month', effective_on)::date, vintage,
       amount, priced, value
  FROM flows WHERE effective_on >= date_trunc('month', $1::date)::date AND effective_on <= $1::date`
	if !knownAt {
		return q + ` AND $2::timestamptz IS NULL`
	}
	const tDay = `($2::timestamptz AT TIME ZONE 'UTC')::date`
	return q + `
UNION ALL -- recorded after the known-at day
SELECT account_id, book_id, account_kind, kind, contract_year, date_trunc('month', effective_on)::date, vintage,
       -amount, -priced, -value
  FROM flows WHERE effective_on <= $1::date AND recorded_on > ` + tDay + `
UNION ALL -- recorded on the known-at day after the instant
SELECT p.account_id, e.book_id, a.kind, coalesce(e.reverts_kind, e.kind),
       coalesce(contract_year(c.term_start, c.term_end, e.effective_on), 0),
       date_trunc('month', e.effective_on)::date, coalesce(e.vintage, 0), -p.amount,
       -(` + pricedExpr + `), -(` + valueExpr + `)
` + postingsFrom + postingsAfterInstant
}

// measureCols are the pivoted measures of book_months, in whole kilograms (value in money).
const measureCols = `contracted, replacements, open, delivered, holding, retired, cancelled, reversed, buffer_cancelled, holding_in, priced, value`

// measuresKg is the SQL of the measures one posting (account kind ak, effective kind k,
// amount a in tonnes) adds, in kilograms, inline (a function call per row costs more than the
// sums): the same mapping as ledger.Position.Add and the database's posting_measures.
func measuresKg(ak, k, a, priced, value string) string {
	return strings.Join(measureExprs(ak, k, a, priced, value), ", ")
}

func measureExprs(ak, k, a, priced, value string) []string {
	kg := "(" + a + " * 1000)::bigint"
	when := func(cond string) string { return "CASE WHEN " + cond + " THEN " + kg + " ELSE 0 END" }
	return []string{
		when(ak + ` = 'open' AND ` + k + ` IN ('sign', 'amend')`),
		when(ak + ` = 'open' AND ` + k + ` = 'reverse'`),
		when(ak + ` = 'open'`),
		when(ak + ` IN ('holding', 'retired') AND ` + k + ` = 'deliver'`),
		when(ak + ` = 'holding'`),
		when(ak + ` = 'retired'`),
		when(ak + ` = 'cancelled'`),
		when(ak + ` = 'reversed'`),
		when(ak + ` = 'buffer_cancelled'`),
		when(ak + ` = 'holding' AND ` + k + ` = 'deliver'`),
		"(" + priced + " * 1000)::bigint", value,
	}
}

// monthRows returns the SQL of pivoted rows (book_id, month, contract_year, measures...) that
// a report aggregates, with $1 the as-of date and $2 the known-at instant. The sets are
// disjoint and together hold exactly the postings effective by $1 and recorded by $2:
//   - book_months for whole months before the as-of month (and, with known-at, recorded in
//     months before the known-at month);
//   - the daily rollup for the rest, recorded before the known-at day;
//   - with known-at, the postings of the known-at day itself, up to the instant.
var flowKg = measuresKg("f.account_kind", "f.kind", "f.amount", "f.priced", "f.value")

func monthRows(knownAt bool) string {
	if !knownAt {
		return `
SELECT book_id, month, contract_year, ` + measureCols + `
  FROM book_months WHERE month < date_trunc('month', $1::date)::date AND $2::timestamptz IS NULL
UNION ALL
SELECT f.book_id, date_trunc('month', f.effective_on)::date, f.contract_year, ` + flowKg + `
  FROM flows f
 WHERE f.effective_on >= date_trunc('month', $1::date)::date AND f.effective_on <= $1::date`
	}
	const day = `($2::timestamptz AT TIME ZONE 'UTC')::date`
	const month = `date_trunc('month', ($2::timestamptz AT TIME ZONE 'UTC'))::date`
	return `
SELECT book_id, month, contract_year, ` + measureCols + `
  FROM book_months WHERE month < date_trunc('month', $1::date)::date AND recorded_month < ` + month + `
UNION ALL
SELECT f.book_id, date_trunc('month', f.effective_on)::date, f.contract_year, ` + flowKg + `
  FROM flows f
 WHERE f.effective_on >= date_trunc('month', $1::date)::date AND f.effective_on <= $1::date AND f.recorded_on < ` + day + `
UNION ALL
SELECT f.book_id, date_trunc('month', f.effective_on)::date, f.contract_year, ` + flowKg + `
  FROM flows f
 WHERE f.effective_on < date_trunc('month', $1::date)::date AND f.recorded_on >= ` + month + ` AND f.recorded_on < ` + day + `
UNION ALL
SELECT e.book_id, date_trunc('month', e.effective_on)::date, coalesce(contract_year(c.term_start, c.term_end, e.effective_on), 0),
       ` + measuresKg("a.kind", "coalesce(e.reverts_kind, e.kind)", "p.amount",
		pricedExpr, valueExpr) + `
` + postingsFrom + ` WHERE e.recorded_at >= (` + day + `::timestamp AT TIME ZONE 'UTC')
   AND e.recorded_at <= $2::timestamptz AND e.effective_on <= $1::date`
}

// negated is measureCols with every measure negated.
const negated = `-contracted, -replacements, -open, -delivered, -holding, -retired, -cancelled, -reversed, -buffer_cancelled, -holding_in, -priced, -value`

// yearRows returns the SQL of pivoted rows (book_id, contract_year, measures...) whose sum per
// book and contract year is the position as of $1 and known at $2: the all-time totals of
// book_years, minus what took effect after $1 (set S1) and, with known-at, minus what took
// effect by $1 but was recorded after $2 (set S2). The subtracted sets are disjoint, and each
// is read at month grain where whole months allow and at day grain elsewhere, so the work is
// proportional to what lies after the date and the instant: little for recent ones.
func yearRows(knownAt bool) string {
	const dMonth = `date_trunc('month', $1::date)::date`
	const dNext = `(date_trunc('month', $1::date) + interval '1 month')::date`
	q := `
SELECT book_id, contract_year, ` + measureCols + ` FROM book_years
UNION ALL -- S1: effective after the as-of date, in the months after its month
SELECT book_id, contract_year, ` + negated + ` FROM book_months WHERE month > ` + dMonth + `
UNION ALL -- S1: effective after the as-of date, in its month
SELECT f.book_id, f.contract_year, ` + negFlowKg + ` FROM flows f WHERE f.effective_on > $1::date AND f.effective_on < ` + dNext
	if !knownAt {
		return q + ` AND $2::timestamptz IS NULL`
	}
	const tDay = `($2::timestamptz AT TIME ZONE 'UTC')::date`
	const tMonth = `date_trunc('month', ($2::timestamptz AT TIME ZONE 'UTC'))::date`
	const tNext = `(date_trunc('month', ($2::timestamptz AT TIME ZONE 'UTC')) + interval '1 month')::date`
	return q + `
UNION ALL -- S2: whole effective months before the as-of month, recorded in months after the known-at month
SELECT book_id, contract_year, ` + negated + ` FROM book_months WHERE month < ` + dMonth + ` AND recorded_month > ` + tMonth + `
UNION ALL -- S2: effective before the as-of month, recorded later in the known-at month than its day
SELECT f.book_id, f.contract_year, ` + negFlowKg + ` FROM flows f
 WHERE f.effective_on < ` + dMonth + ` AND f.recorded_on > ` + tDay + ` AND f.recorded_on < ` + tNext + `
UNION ALL -- S2: effective in the as-of month by the as-of date, recorded after the known-at day
SELECT f.book_id, f.contract_year, ` + negFlowKg + ` FROM flows f
 WHERE f.effective_on >= ` + dMonth + ` AND f.effective_on <= $1::date AND f.recorded_on > ` + tDay + `
UNION ALL -- S2: recorded on the known-at day after the known-at instant
SELECT e.book_id, coalesce(contract_year(c.term_start, c.term_end, e.effective_on), 0),
       ` + negate(measureExprs("a.kind", "coalesce(e.reverts_kind, e.kind)", "p.amount",
		pricedExpr, valueExpr)) + `
` + postingsFrom + postingsAfterInstant
}

var negFlowKg = negate(measureExprs("f.account_kind", "f.kind", "f.amount", "f.priced", "f.value"))

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
	BookID          int64           `db:"book_id"`
	ContractYear    sql.NullInt64   `db:"contract_year"`
	Month           sql.NullTime    `db:"month"`
	Key             string          `db:"key"`
	Contracted      int64           `db:"contracted"`
	Replacements    int64           `db:"replacements"`
	Open            int64           `db:"open"`
	Delivered       int64           `db:"delivered"`
	Holding         int64           `db:"holding"`
	Retired         int64           `db:"retired"`
	Cancelled       int64           `db:"cancelled"`
	Reversed        int64           `db:"reversed"`
	BufferCancelled int64           `db:"buffer_cancelled"`
	HoldingIn       int64           `db:"holding_in"`
	Priced          int64           `db:"priced"`
	Value           decimal.Decimal `db:"value"`
}

const sumMeasures = `sum(contracted)::bigint AS contracted, sum(replacements)::bigint AS replacements, sum(open)::bigint AS open,
	sum(delivered)::bigint AS delivered, sum(holding)::bigint AS holding, sum(retired)::bigint AS retired,
	sum(cancelled)::bigint AS cancelled, sum(reversed)::bigint AS reversed, sum(buffer_cancelled)::bigint AS buffer_cancelled,
	sum(holding_in)::bigint AS holding_in, sum(priced)::bigint AS priced, sum(value) AS value`

func (r pivotRow) sum() ledger.FlowSum {
	t := ledger.TonnesFromKg
	return ledger.FlowSum{Position: ledger.Position{Contracted: t(r.Contracted), Replacements: t(r.Replacements), Open: t(r.Open),
		Delivered: t(r.Delivered), Holding: t(r.Holding), Retired: t(r.Retired), Cancelled: t(r.Cancelled), Reversed: t(r.Reversed),
		BufferCancelled: t(r.BufferCancelled)}, Priced: t(r.Priced), Value: r.Value}
}

// reportTx begins the settings a report's aggregate wants: no JIT (its compile time is most of
// a 100 ms budget) and room to hash-aggregate in memory.
func reportTx(ctx context.Context, tx *sqlx.Tx) error {
	_, err := tx.ExecContext(ctx, `SET LOCAL jit = off; SET LOCAL work_mem = '64MB'`)
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
			return nil, nil, &ledger.FieldError{Field: "contract", Value: q.Contract, Rule: "does not exist (see `carbonledger contract list`)", Kind: ledger.ErrNotFound}
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
	var lines []struct {
		ContractID int64          `db:"contract_id"`
		Year       int            `db:"year"`
		Tonnes     ledger.Tonnes  `db:"tonnes"`
		Vintage    sql.NullInt64  `db:"vintage"`
		Price      sql.NullString `db:"price_per_tonne"`
		DueOn      sql.NullTime   `db:"due_on"`
	}
	if err := tx.SelectContext(ctx, &lines, `
		WITH v AS (
		    SELECT s.contract_id, max(s.version) AS version
		      FROM schedule_lines s
		     WHERE s.contract_id = ANY($1) AND (s.version = 1 OR EXISTS (
		           SELECT 1 FROM entries e WHERE e.id = s.entry_id AND e.effective_on <= $2::date
		              AND ($3::timestamptz IS NULL OR e.recorded_at <= $3::timestamptz)))
		     GROUP BY s.contract_id)
		SELECT s.contract_id, s.year, s.tonnes, s.vintage, s.price_per_tonne::text AS price_per_tonne, s.due_on
		  FROM schedule_lines s JOIN v USING (contract_id, version)
		 ORDER BY s.contract_id, s.year`, pq.Array(ids), asOf, knownAt); err != nil {
		return nil, nil, err
	}
	for _, l := range lines {
		sl := ledger.ScheduleLine{Year: l.Year, Tonnes: l.Tonnes, Vintage: int(l.Vintage.Int64)}
		if l.Price.Valid {
			p := decimal.RequireFromString(l.Price.String)
			sl.PricePerTonne = &p
		}
		if l.DueOn.Valid {
			sl.DueOn = l.DueOn.Time.UTC()
		}
		byID[l.ContractID].Schedule = append(byID[l.ContractID].Schedule, sl)
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

type flowAgg struct {
	BookID       int64           `db:"book_id"`
	ContractYear int             `db:"contract_year"`
	Month        sql.NullTime    `db:"month"`
	Key          string          `db:"key"`
	AccountKind  string          `db:"account_kind"`
	Kind         string          `db:"kind"`
	Amount       ledger.Tonnes   `db:"amount"`
	Priced       ledger.Tonnes   `db:"priced"`
	Value        decimal.Decimal `db:"value"`
}

// ContractReport returns, per contract, its flows in total and per contract year, and the
// monthly deliveries into its holding: what the term and portfolio reports are built from.
func (s *Store) ContractReport(ctx context.Context, q ReportQuery) ([]*ledger.ContractFlows, error) {
	var out []*ledger.ContractFlows
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		list, byBook, err := reportContracts(ctx, tx, q)
		if err != nil {
			return err
		}
		out = list
		if len(list) == 0 {
			return nil
		}
		asOf, knownAt := q.args()
		var bookFilter any
		if q.Contract != "" {
			for b := range byBook {
				bookFilter = b
			}
		}
		if err := reportTx(ctx, tx); err != nil {
			return err
		}
		var rows []pivotRow
		if err := tx.SelectContext(ctx, &rows, `
			SELECT book_id, contract_year, NULL::date AS month, '' AS key, `+sumMeasures+`
			  FROM (`+yearRows(!q.KnownAt.IsZero())+`) r
			 WHERE $3::bigint IS NULL OR book_id = $3::bigint
			 GROUP BY book_id, contract_year`, asOf, knownAt, bookFilter); err != nil {
			return fmt.Errorf("contract report: %w", err)
		}
		for _, r := range rows {
			if cf, ok := byBook[r.BookID]; ok {
				f := r.sum()
				cf.Years[int(r.ContractYear.Int64)] = &f
				cf.Total.Merge(f)
			}
		}
		if q.Inventory {
			// the deliveries into each holding per month, for the inventory's age
			// (only the one measure is summed: the other eleven would cost most of the time)
			rows, err := tx.QueryContext(ctx, `
				SELECT book_id, month, sum(holding_in)::bigint
				  FROM (`+monthRows(!q.KnownAt.IsZero())+`) r
				 WHERE holding_in <> 0 AND ($3::bigint IS NULL OR book_id = $3::bigint)
				 GROUP BY book_id, month`, asOf, knownAt, bookFilter)
			if err != nil {
				return fmt.Errorf("contract report: inventory: %w", err)
			}
			defer rows.Close()
			for rows.Next() {
				var book, kg int64
				var month time.Time
				if err := rows.Scan(&book, &month, &kg); err != nil {
					return fmt.Errorf("contract report: inventory: %w", err)
				}
				if cf, ok := byBook[book]; ok && kg != 0 {
					cf.HoldingIn = append(cf.HoldingIn, ledger.MonthAmount{Month: month.UTC(), Amount: ledger.TonnesFromKg(kg)})
				}
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("contract report: inventory: %w", err)
			}
		}
		for _, cf := range list {
			slices.SortFunc(cf.HoldingIn, func(a, b ledger.MonthAmount) int { return a.Month.Compare(b.Month) })
		}
		return nil
	})
	return out, err
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
// period once instead of returning every month of it.
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
		if by != "vintage" {
			// summed per book and bucket first: the join and the grouping by key then see a
			// few rows per contract rather than every month of it
			var rows []pivotRow
			if err := tx.SelectContext(ctx, &rows, `
				SELECT 0::bigint AS book_id, NULL::int AS contract_year, r.month, `+expr+` AS key, `+sumMeasures+`
				  FROM (SELECT r.book_id, `+bucket+` AS month, `+sumMeasures+`
				          FROM (`+monthRows(!q.KnownAt.IsZero())+`) r
				         WHERE `+inBounds+`
				         GROUP BY 1, 2) r
				  JOIN contracts c ON c.book_id = r.book_id
				 WHERE `+signed+`
				 GROUP BY r.month, key
				 ORDER BY r.month, key`, asOf, knownAt, pq.Array(cuts)); err != nil {
				return fmt.Errorf("period report: %w", err)
			}
			for _, r := range rows {
				add(r.Month.Time, r.Key, r.sum())
			}
			return nil
		}
		// The vintage is a property of each entry, not of the contract: only the per-account
		// rollups carry it.
		var aggs []flowAgg
		if err := tx.SelectContext(ctx, &aggs, `
			SELECT 0::bigint AS book_id, 0 AS contract_year, r.month, `+expr+` AS key, r.account_kind, r.kind,
			       sum(r.amount) AS amount, sum(r.priced) AS priced, sum(r.value) AS value
			  FROM (SELECT r.book_id, `+bucket+` AS month, r.vintage, r.account_kind, r.kind,
			               sum(r.amount) AS amount, sum(r.priced) AS priced, sum(r.value) AS value
			          FROM (`+flowRows(!q.KnownAt.IsZero())+`) r
			         WHERE `+inBounds+`
			         GROUP BY 1, 2, 3, 4, 5) r
			  JOIN contracts c ON c.book_id = r.book_id
			 WHERE `+signed+`
			 GROUP BY r.month, key, r.account_kind, r.kind
			HAVING $2::timestamptz IS NULL OR sum(r.amount) <> 0 OR sum(r.priced) <> 0 OR sum(r.value) <> 0
			 ORDER BY r.month, key`, asOf, knownAt, pq.Array(cuts)); err != nil {
			return fmt.Errorf("period report: %w", err)
		}
		for _, a := range aggs {
			var f ledger.FlowSum
			f.AddFlow(ledger.AccountKind(a.AccountKind), ledger.Kind(a.Kind), a.Amount, a.Priced, a.Value)
			add(a.Month.Time, a.Key, f)
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
