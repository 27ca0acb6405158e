// Package store is the PostgreSQL adapter: all SQL lives here. Each write is one short
// transaction that locks what its rule needs in a fixed order (the book row first, then the
// accounts by id), inserts the entry and its postings, and seals the entry into its book's
// hash chain; the database's own constraints and triggers (migrations/) refuse anything the
// Go code might have missed. Serialization failures and deadlocks are retried a bounded number
// of times. SQLSTATEs are mapped onto the ledger's sentinel errors here, once.
package store

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	neturl "net/url"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/migrations"
)

// Store is a handle on one carbonledger database.
type Store struct {
	db *sqlx.DB
	// writerRole is the least-privileged role writes run as ("" when the roles could not
	// be created, e.g. on a managed server without CREATEROLE).
	writerRole string
	readerRole string
	// Now is the clock for rules about dates (the future-date tolerance); recorded times
	// come from the database clock. Tests replace it.
	Now func() time.Time
	// FutureTolerance is how far past today an effective date may lie.
	FutureTolerance time.Duration
	// MaxAttempts bounds the retries of a transaction that failed to serialize.
	MaxAttempts int
	// Recorder is who writes, when the context does not say (WithRecorder): the CLI sets
	// its OS user. Each entry records it (metadata recorded_by), sealed by the hash.
	Recorder string
	// LockTimeout and StatementTimeout bound each write transaction's lock waits and
	// statements (0: the database's own setting holds); see DefaultLockTimeout.
	LockTimeout, StatementTimeout time.Duration

	group *group // operations written together (group.go)
}

type recorderKey struct{}

// WithRecorder returns ctx saying who writes what the store writes under it: the API puts
// the token's name here for each request.
func WithRecorder(ctx context.Context, who string) context.Context {
	return context.WithValue(ctx, recorderKey{}, who)
}

func (s *Store) recorder(ctx context.Context) string {
	if who, ok := ctx.Value(recorderKey{}).(string); ok {
		return who
	}
	return s.Recorder
}

// Migrate applies the pending migrations to the database at url and returns the versions it
// applied. It refuses a database that a newer binary migrated.
func Migrate(ctx context.Context, url string) ([]int, error) {
	db, err := sql.Open("postgres", connString(url))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return migrations.Apply(ctx, db)
}

// Open connects to the database at url and returns a store. It does not migrate: a database
// whose schema is not exactly this binary's (migrations pending, or a newer binary's schema)
// is refused with a *migrations.SchemaError; Migrate first where migrating is wanted.
func Open(ctx context.Context, url string) (*Store, error) {
	// Binary parameters let lib/pq send a parameterised query as one round trip (parse, bind
	// and execute together) instead of two; []byte arguments then travel as binary, so only
	// bytea columns may take them (jsonb takes a string).
	connector, err := pq.NewConnector(withBinaryParameters(connString(url)))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	connector.Dialer(bufferedDialer{})
	db := sqlx.NewDb(sql.OpenDB(connector), "postgres")
	// As many idle connections as open ones: with fewer, a burst of concurrent callers (the
	// API's clients) had the pool close connections a moment later and open new ones (a
	// password handshake and a cold backend each), 70-200 times a second at 32 clients.
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := migrations.Check(ctx, db.DB); err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{db: db, Now: time.Now, FutureTolerance: 24 * time.Hour, MaxAttempts: 8,
		LockTimeout: DefaultLockTimeout, StatementTimeout: DefaultStatementTimeout,
		group: newGroup()}
	// The roles are usable when they exist and we may SET ROLE to them.
	const roleQ = `SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)
	                            THEN pg_has_role($1, 'MEMBER') ELSE false END`
	for _, r := range []struct {
		name string
		dst  *string
	}{{"carbonledger_writer", &s.writerRole}, {"carbonledger_reader", &s.readerRole}} {
		var ok bool
		if err := db.QueryRowContext(ctx, roleQ, r.name).Scan(&ok); err != nil {
			db.Close()
			return nil, fmt.Errorf("check role %s: %w", r.name, err)
		}
		if ok {
			*r.dst = r.name
		}
	}
	return s, nil
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// DB exposes the pool for tests and the benchmark seeder.
func (s *Store) DB() *sqlx.DB { return s.db }

// WriterRole is the role writes run as, or "" when none is available.
func (s *Store) WriterRole() string { return s.writerRole }

// write runs fn in a read-committed transaction as the writer role and commits, retrying
// serialization failures, deadlocks and lost races on a unique key a bounded number of times.
func (s *Store) write(ctx context.Context, op string, fn func(tx *sqlx.Tx) error) error {
	return s.writeAs(ctx, op, true, fn)
}

// writeAs is write; with setRole false, fn's first statement takes the writer role itself
// (operate's state query does, saving a round trip).
func (s *Store) writeAs(ctx context.Context, op string, setRole bool, fn func(tx *sqlx.Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = s.writeOnce(ctx, setRole, fn)
		if err == nil || !retryable(err) || attempt >= s.MaxAttempts || ctx.Err() != nil {
			break
		}
		// jittered exponential backoff: 2ms, 4ms, 8ms ... capped at 200ms
		d := time.Duration(1<<min(attempt, 7)) * time.Millisecond
		time.Sleep(d + rand.N(d))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, mapErr(err))
	}
	return nil
}

func (s *Store) writeOnce(ctx context.Context, setRole bool, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.beginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if setRole {
		// The role and the write's limits in one round trip.
		q := s.writeLimitsSQL()
		if s.writerRole != "" {
			q += `SET LOCAL ROLE ` + s.writerRole
		}
		if q != "" {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("set role: %w", err)
			}
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// read runs fn in a read-only, repeatable-read transaction (one snapshot) as the reader role.
func (s *Store) read(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.beginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return mapErr(err)
	}
	defer tx.Rollback()
	if s.readerRole != "" {
		if _, err := tx.ExecContext(ctx, `SET LOCAL ROLE `+s.readerRole); err != nil {
			return fmt.Errorf("set role: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		return mapErr(err)
	}
	return tx.Commit()
}

// readSnapshot runs fn in a read-only transaction that sees the snapshot another
// transaction exported (pg_export_snapshot), as the reader role.
func (s *Store) readSnapshot(ctx context.Context, snapshot string, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.beginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return mapErr(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SET TRANSACTION SNAPSHOT '`+strings.ReplaceAll(snapshot, "'", "")+`'`); err != nil {
		return fmt.Errorf("share the audit's snapshot: %w", err)
	}
	if s.readerRole != "" {
		if _, err := tx.ExecContext(ctx, `SET LOCAL ROLE `+s.readerRole); err != nil {
			return fmt.Errorf("set role: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		return mapErr(err)
	}
	return tx.Commit()
}

// Retryable reports whether err is a transaction's loss to a concurrent one (a
// serialization failure, a deadlock, a lost race on a key) that running it again may win.
func Retryable(err error) bool { return retryable(err) }

func retryable(err error) bool {
	var pe *pq.Error
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return true
	case "23505": // a concurrent writer took the same idempotency key: the retry replays it
		return pe.Constraint == "entries_idempotency_key" || pe.Constraint == "contracts_code_key"
	case "CL003": // the chain moved under us (only possible without the book lock)
		return true
	}
	return false
}

// DBError is a refusal by the database, mapped to a ledger sentinel.
type DBError struct {
	Kind  error
	Msg   string
	cause error // the driver's error, for Retryable
}

func (e *DBError) Error() string   { return e.Msg }
func (e *DBError) Unwrap() []error { return []error{e.Kind, e.cause} }

// mapErr maps SQLSTATEs onto the ledger's sentinel errors, and a lost database, a lock or
// statement timeout onto a TransientError; other errors pass through.
func mapErr(err error) error {
	if te := transient(err); te != nil {
		return te
	}
	var pe *pq.Error
	if !errors.As(err, &pe) {
		return err
	}
	kind := ledger.ErrInvalid
	msg := pe.Message
	switch pe.Code {
	case "CL001", "CL005":
		kind = ledger.ErrImmutable
	case "CL002", "CL004", "CL006":
		kind = ledger.ErrInvalid
	case "CL003":
		kind = ledger.ErrConflict
	case "23514": // check_violation
		if pe.Constraint == "accounts_balance_floor" {
			kind = ledger.ErrInsufficient
			msg = "an account would fall below its floor (" + pe.Message + ")"
		} else {
			msg = fmt.Sprintf("the database refused a value (%s: %s)", pe.Constraint, pe.Message)
		}
	case "23505": // unique_violation
		kind = ledger.ErrConflict
		msg = fmt.Sprintf("already recorded (%s)", pe.Constraint)
		if pe.Detail != "" {
			msg += ": " + pe.Detail
		}
	case "23P01": // exclusion_violation
		kind = ledger.ErrConflict
		msg = "overlaps what is already recorded (" + pe.Constraint + ")"
		if pe.Detail != "" {
			msg += ": " + pe.Detail
		}
	case "23503": // foreign_key_violation
		kind = ledger.ErrNotFound
	case "42501": // insufficient_privilege
		kind = ledger.ErrImmutable
	default:
		if strings.HasPrefix(string(pe.Code), "22") { // data exceptions
			kind = ledger.ErrInvalid
		} else {
			return err
		}
	}
	return &DBError{Kind: kind, Msg: msg, cause: err}
}

// bufferedDialer connects as lib/pq does, and reads the connection through a 64 KiB buffer.
// lib/pq reads through 4 KiB, one system call each: the audit receives gigabytes, and those
// calls were a tenth of its Go time.
type bufferedDialer struct{ d net.Dialer }

func (b bufferedDialer) Dial(network, address string) (net.Conn, error) {
	return b.DialContext(context.Background(), network, address)
}

func (b bufferedDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return b.DialContext(ctx, network, address)
}

func (b bufferedDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := b.d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return bufferedConn{c, bufio.NewReaderSize(c, 64<<10)}, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// withBinaryParameters adds binary_parameters=yes to a URL or key=value connection string.
// connString is url in a form lib/pq reads as PostgreSQL's own libpq does. A URL naming
// several hosts, postgres://u:p@h1:5432,h2:5433/db?target_session_attrs=read-write (how a
// primary and its standby are given, so that writes follow a failover), becomes the keyword
// form host=h1,h2 port=5432,5433 ...: lib/pq reads such a URL's ports wrongly. Any other
// connection string is returned as it is.
func connString(url string) string {
	u, err := neturl.Parse(url)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || !strings.Contains(u.Host, ",") {
		return url
	}
	var hosts, ports []string
	for _, hp := range strings.Split(u.Host, ",") {
		h, p, err := net.SplitHostPort(hp)
		if err != nil {
			h, p = hp, "5432"
		}
		hosts, ports = append(hosts, h), append(ports, p)
	}
	kv := []string{"host=" + quoteConnValue(strings.Join(hosts, ",")), "port=" + quoteConnValue(strings.Join(ports, ","))}
	if u.User != nil {
		kv = append(kv, "user="+quoteConnValue(u.User.Username()))
		if pw, ok := u.User.Password(); ok {
			kv = append(kv, "password="+quoteConnValue(pw))
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		kv = append(kv, "dbname="+quoteConnValue(db))
	}
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		kv = append(kv, k+"="+quoteConnValue(q.Get(k)))
	}
	return strings.Join(kv, " ")
}

// quoteConnValue quotes a keyword connection string's value.
func quoteConnValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

func withBinaryParameters(conn string) string {
	if strings.Contains(conn, "binary_parameters") {
		return conn
	}
	if u, err := neturl.Parse(conn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("binary_parameters", "yes")
		u.RawQuery = q.Encode()
		return u.String()
	}
	return conn + " binary_parameters=yes"
}
