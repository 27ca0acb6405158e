package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq/oid"

	"github.com/carbonledger/carbonledger/ledger"
)

// The audit reads millions of rows. Through database/sql and lib/pq each value of each row
// is decoded from text, boxed in an interface and converted again: for the ten million
// postings, five million entries and four million rollup rows of the benchmark that was
// over half the audit's time and most of its garbage. So those reads ask PostgreSQL for
// each row as one bytea, record_send(ROW(...)): every column in its binary form, which lib/pq
// passes through untouched and database/sql hands over without a copy. Rows are then read
// here with packed. (One bytea per book, string_agg of the rows, was measured too: it cost
// PostgreSQL 5 s more over the benchmark, in the aggregate and in sorting it by chain order.)

// packedEach runs q, which returns one column, a record_send, per row, and hands each row to
// fn in order. The bytes are the driver's own: valid only until fn returns, so fn copies
// whatever it keeps.
func packedEach(ctx context.Context, tx queryer, q string, fn func(p *packed) error, args ...any) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var raw sql.RawBytes
	var p packed // (one for all rows: a new one per row escaped to the heap, 19 million times)
	for rows.Next() {
		if err := rows.Scan(&raw); err != nil {
			return err
		}
		p = packed{b: raw}
		if err := fn(&p); err != nil {
			return err
		}
		if len(p.b) > 0 {
			return fmt.Errorf("a packed row has %d bytes left over", len(p.b))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// queryer runs a query: a transaction, or the statements a walk prepares on one.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// bookQueries runs the queries a walk repeats for every book (seven for each of thousands
// of books in an audit) as statements prepared once on its transaction: each then costs one
// round trip, where an unprepared query with arguments costs two, and PostgreSQL plans it
// once rather than every time.
type bookQueries struct {
	tx    *sqlx.Tx
	stmts map[string]*sqlx.Stmt
}

func prepared(tx *sqlx.Tx) *bookQueries { return &bookQueries{tx: tx, stmts: map[string]*sqlx.Stmt{}} }

func (q *bookQueries) stmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	if st, ok := q.stmts[query]; ok {
		return st, nil
	}
	st, err := q.tx.PreparexContext(ctx, query)
	if err != nil {
		return nil, err
	}
	q.stmts[query] = st
	return st, nil
}

// QueryContext runs query, prepared on first use; the statements close with the transaction.
func (q *bookQueries) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// GetContext scans the one row of query into dest, as sqlx's GetContext does.
func (q *bookQueries) GetContext(ctx context.Context, dest any, query string, args ...any) error {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return err
	}
	return st.GetContext(ctx, dest, args...)
}

// packed reads a row packed by record_send: the column count, then per column its
// type oid, its length (-1 for NULL) and its bytes in the type's binary form. Numbers are
// big-endian. A read past the end, or a row whose columns are not the expected ones, sets
// err; the reads after that return no values.
type packed struct {
	b   []byte
	err error
}

// column is a column of a packed row: its type, the size of its binary form when that is
// fixed (0: variable), and whether it may be NULL.
type column struct {
	typ      oid.Oid
	width    int
	nullable bool
}

// col is a column of type typ that may not be NULL; nullableCol one that may.
func col(typ oid.Oid) column {
	widths := map[oid.Oid]int{oid.T_int8: 8, oid.T_int4: 4, oid.T_int2: 2, oid.T_date: 4, oid.T_timestamptz: 8, oid.T_uuid: 16}
	return column{typ: typ, width: widths[typ]}
}

func nullableCol(typ oid.Oid) column {
	c := col(typ)
	c.nullable = true
	return c
}

// row reads one record into vals (a NULL as nil), checking each column's type, size and
// nullness against cols, so the decoders below can read vals without checks. (It runs for
// 150 million columns in an audit: it works on a local slice, without a call per read.)
func (p *packed) row(cols []column, vals [][]byte) {
	if p.err != nil {
		p.fail(p.err, vals)
		return
	}
	b := p.b
	if len(b) < 4 {
		p.fail(shortBy(4, b), vals)
		return
	}
	if n := int(binary.BigEndian.Uint32(b)); n != len(cols) {
		p.fail(fmt.Errorf("a packed row has %d columns, %d were expected", n, len(cols)), vals)
		return
	}
	b = b[4:]
	for i := range cols {
		c := &cols[i]
		if len(b) < 8 {
			p.fail(shortBy(8, b), vals)
			return
		}
		typ, n := oid.Oid(binary.BigEndian.Uint32(b)), int32(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
		var err error
		switch {
		case typ != c.typ:
			err = fmt.Errorf("column %d of a packed row has type %d, %d was expected", i+1, typ, c.typ)
		case n < 0 && !c.nullable:
			err = fmt.Errorf("column %d of a packed row is NULL", i+1)
		case n < 0:
			vals[i] = nil
			continue
		case c.width > 0 && int(n) != c.width:
			err = fmt.Errorf("column %d of a packed row has %d bytes, %d were expected", i+1, n, c.width)
		case int(n) > len(b):
			err = shortBy(int(n), b)
		}
		if err != nil {
			p.fail(err, vals)
			return
		}
		vals[i], b = b[:n:n], b[n:]
	}
	p.b = b
}

// fail records err, drops what is left, and leaves no values.
func (p *packed) fail(err error, vals [][]byte) {
	p.err, p.b = err, nil
	clear(vals)
}

func shortBy(need int, b []byte) error {
	return fmt.Errorf("packed rows end %d bytes early", need-len(b))
}

// kinds interns the entry kinds read from packed rows: a handful of values, millions of rows.
type kinds map[string]ledger.Kind

func (ks kinds) of(b []byte) ledger.Kind {
	k, ok := ks[string(b)]
	if !ok {
		k = ledger.Kind(b)
		ks[string(b)] = k
	}
	return k
}

func int64At(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }
func int32At(b []byte) int32 { return int32(binary.BigEndian.Uint32(b)) }
func int16At(b []byte) int16 { return int16(binary.BigEndian.Uint16(b)) }

// pgEpoch is where PostgreSQL's binary dates and timestamps count from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// dateAt reads a date: days since 2000-01-01.
func dateAt(b []byte) time.Time { return time.Unix(pgEpoch.Unix()+int64(int32At(b))*86400, 0).UTC() }

// timestampAt reads a timestamptz: microseconds since 2000-01-01 00:00 UTC.
func timestampAt(b []byte) time.Time {
	return time.UnixMicro(int64At(b) + pgEpoch.Unix()*1_000_000).UTC()
}

// uuidString prints 16 bytes as PostgreSQL prints a uuid.
func uuidString(b []byte) string {
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}
