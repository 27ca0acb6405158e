package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// The limits a write runs under unless the Store says otherwise (LockTimeout,
// StatementTimeout). A write that waits longer for a lock, or whose statement runs longer,
// is cancelled by PostgreSQL and rolled back: the caller gets ErrBusy or ErrTimeout, never a
// hang. Reads, the audit and imports run without them (an audit of ten million postings
// takes about half a minute); a server bounds those by its request timeout.
const (
	DefaultLockTimeout      = 5 * time.Second
	DefaultStatementTimeout = 30 * time.Second
)

// The transient failures: the database could not do the work now, and the same request may
// succeed later. They are never a verdict on the request, so a retry with the same
// idempotency key is always safe: it answers what was recorded, or records it now.
var (
	// ErrUnavailable: the database cannot be reached, is shutting down or starting up, or
	// the connection was lost. A write whose COMMIT was under way may or may not have been
	// recorded.
	ErrUnavailable = errors.New("database unavailable")
	// ErrBusy: a lock the write needs (its contract's book, most often) was held by another
	// transaction for longer than the lock timeout. Nothing was written.
	ErrBusy = errors.New("busy")
	// ErrTimeout: a statement ran longer than the statement timeout, or was cancelled when
	// its caller's deadline passed. Nothing was written unless the deadline passed during
	// the COMMIT.
	ErrTimeout = errors.New("timeout")
)

// TransientError is a transient failure: Kind is ErrUnavailable, ErrBusy or ErrTimeout.
// Unlike DBError it says nothing about the request, so an import does not blame its row.
type TransientError struct {
	Kind  error
	Msg   string
	cause error
}

func (e *TransientError) Error() string   { return e.Msg }
func (e *TransientError) Unwrap() []error { return []error{e.Kind, e.cause} }

// transient classifies err as a transient failure, or returns nil.
func transient(err error) *TransientError {
	if err == nil {
		return nil
	}
	var te *TransientError
	if errors.As(err, &te) {
		return te
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "55P03": // lock_not_available: lock_timeout
			return &TransientError{Kind: ErrBusy, cause: err,
				Msg: "lock timeout: another transaction held a lock this write needs for longer than the lock timeout; nothing was written; retry"}
		case pe.Code == "57014" && strings.Contains(pe.Message, "statement timeout"):
			return &TransientError{Kind: ErrTimeout, cause: err,
				Msg: "statement timeout: the database took longer than the statement timeout; nothing was written; retry"}
		case pe.Code == "57014": // cancelled on the caller's behalf (its context ended)
			return &TransientError{Kind: ErrTimeout, cause: err, Msg: "the statement was cancelled: the request ran out of time; retry"}
		case pe.Code.Class() == "08", pe.Code.Class() == "57", pe.Code == "53300": // connection exception, operator intervention (shutdown, restart), too many connections
			return unavailable(err)
		}
		return nil
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded): // before net.Error, which it satisfies
		return &TransientError{Kind: ErrTimeout, cause: err, Msg: "the request ran out of time before the database answered; retry"}
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.As(err, &ne):
		return unavailable(err)
	}
	return nil
}

func unavailable(err error) *TransientError {
	return &TransientError{Kind: ErrUnavailable, cause: err, Msg: "the database is unavailable (" + err.Error() + "); retry"}
}

// dropIdle answers a failure that may be a connection the database ended (a restart, an
// administrator's pg_terminate_backend): the pool's idle connections are as likely dead, and
// each would fail the next caller that takes it, so they are closed at once and the callers
// after this one connect afresh. It reports whether err was such a failure.
func (s *Store) dropIdle(err error) bool {
	te := transient(err)
	if te == nil || te.Kind != ErrUnavailable {
		return false
	}
	s.db.SetMaxIdleConns(0)
	s.db.SetMaxIdleConns(s.db.Stats().MaxOpenConnections) // Open keeps as many idle as open
	return true
}

// beginTx begins a transaction; when the connection the pool gave was dead, it drops the
// idle ones and begins once more on a fresh one (BEGIN changed nothing, so this is safe).
func (s *Store) beginTx(ctx context.Context, opts *sql.TxOptions) (*sqlx.Tx, error) {
	tx, err := s.db.BeginTxx(ctx, opts)
	if err != nil && s.dropIdle(err) && ctx.Err() == nil {
		tx, err = s.db.BeginTxx(ctx, opts)
	}
	return tx, err
}

// busyContract names the contract whose write found it busy.
func (s *Store) busyContract(op, code string, err error) error {
	var te *TransientError
	if !errors.As(err, &te) || te.Kind != ErrBusy {
		return err
	}
	return &TransientError{Kind: ErrBusy, cause: te.cause,
		Msg: fmt.Sprintf("%s: lock timeout: contract %s is busy: another transaction held its lock for longer than %s; nothing was written; retry",
			op, code, s.LockTimeout)}
}

// writeLimits are a write transaction's lock and statement timeouts, as name/value pairs
// for set_config (local: they end with the transaction). A zero limit is left out, so the
// database's own setting holds.
func (s *Store) writeLimits() [][2]string {
	var kv [][2]string
	if s.LockTimeout > 0 {
		kv = append(kv, [2]string{"lock_timeout", pgDuration(s.LockTimeout)})
	}
	if s.StatementTimeout > 0 {
		kv = append(kv, [2]string{"statement_timeout", pgDuration(s.StatementTimeout)})
	}
	return kv
}

// writeLimitsSQL is writeLimits as SET LOCAL commands, to join to the statement a write
// sends first (one round trip for all of them).
func (s *Store) writeLimitsSQL() string {
	var b strings.Builder
	for _, kv := range s.writeLimits() {
		fmt.Fprintf(&b, "SET LOCAL %s = '%s'; ", kv[0], kv[1])
	}
	return b.String()
}

// pgDuration writes d as PostgreSQL reads a time setting: whole milliseconds, at least 1.
func pgDuration(d time.Duration) string {
	return fmt.Sprintf("%dms", max(d.Milliseconds(), 1))
}
