// Package migrations holds the schema as forward-only SQL files, embedded in the binary, and
// the runner that applies them.
//
// Each file NNNN_name.sql runs in its own transaction together with the row that records its
// version, so a file is either applied with its row or not at all. Concurrent runners take
// turns on an advisory lock; a second run finds every version recorded and does nothing. An
// applied file whose text has since changed is refused: migrations are never edited, only
// added.
package migrations

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
)

//go:embed *.sql
var files embed.FS

// lockKey is the advisory lock runners take turns on ("carbonledger" as a number).
const lockKey = 0x63617262_6f6e6c64

// Migration is one embedded SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
	Sum     string // sha256 of the text, hex
}

// functionsFile holds the live trigger and function bodies. It is not a numbered migration:
// the runner applies it after them whenever its text differs from the copy the database
// recorded in schema_functions, so each body lives in one place.
const functionsFile = "functions.sql"

// functions returns fsys's functions file; ok is false when it has none.
func functions(fsys fs.FS) (m Migration, ok bool, err error) {
	b, err := fs.ReadFile(fsys, functionsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	sum := sha256.Sum256(b)
	return Migration{Name: "functions", SQL: string(b), Sum: hex.EncodeToString(sum[:])}, true, nil
}

var nameRE = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

func embedded() fs.FS { return files }

// All returns the embedded migrations in version order.
func All() ([]Migration, error) { return load(files) }

func load(fsys fs.FS) ([]Migration, error) {
	paths, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, p := range paths {
		if p == functionsFile {
			continue
		}
		m := nameRE.FindStringSubmatch(p)
		if m == nil {
			return nil, fmt.Errorf("migrations: %s is not named NNNN_name.sql", p)
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, err
		}
		v, _ := strconv.Atoi(m[1])
		sum := sha256.Sum256(b)
		ms = append(ms, Migration{Version: v, Name: m[2], SQL: string(b), Sum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrations: version %04d appears twice", ms[i].Version)
		}
	}
	return ms, nil
}

// Fingerprint is a hash over all embedded migrations; the test helper names its template
// database after it, so a schema change gets a fresh template.
func Fingerprint() string {
	ms, err := All()
	if err != nil {
		panic(err)
	}
	h := sha256.New()
	for _, m := range ms {
		fmt.Fprintf(h, "%d %s\n", m.Version, m.Sum)
	}
	if fn, ok, err := functions(files); err != nil {
		panic(err)
	} else if ok {
		fmt.Fprintf(h, "functions %s\n", fn.Sum)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

const createTable = `
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    sha256     text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

const createFunctionsTable = `
CREATE TABLE IF NOT EXISTS schema_functions (
    name       text PRIMARY KEY,
    sha256     text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

// functionsSum returns the sha256 of the functions file the database last applied ("" for none).
func functionsSum(ctx context.Context, db querier) (string, error) {
	rows, err := db.QueryContext(ctx, `SELECT sha256 FROM schema_functions WHERE name = 'functions'`)
	if err != nil {
		return "", fmt.Errorf("migrate: read schema_functions: %w", err)
	}
	defer rows.Close()
	var sum string
	for rows.Next() {
		if err := rows.Scan(&sum); err != nil {
			return "", err
		}
	}
	return sum, rows.Err()
}

// applyFunctions runs the functions file and records its sum, in one transaction: the
// triggers it swaps are never missing for a moment.
func applyFunctions(ctx context.Context, conn *sql.Conn, fn Migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s: begin: %w", functionsFile, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, fn.SQL); err != nil {
		return fmt.Errorf("migrate %s: %w", functionsFile, err)
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO schema_functions (name, sha256) VALUES ('functions', $1)
		ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, applied_at = now()`, fn.Sum); err != nil {
		return fmt.Errorf("migrate %s: record it: %w", functionsFile, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %s: commit: %w", functionsFile, err)
	}
	return nil
}

// Apply applies every migration not yet recorded and returns the versions it applied.
func Apply(ctx context.Context, db *sql.DB) ([]int, error) { return applyFS(ctx, db, files) }

// applyFS applies the migrations of fsys; tests use it with migrations of their own.
func applyFS(ctx context.Context, db *sql.DB, fsys fs.FS) ([]int, error) {
	ms, err := load(fsys)
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(lockKey)); err != nil {
		return nil, fmt.Errorf("migrate: take the migration lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(lockKey))

	for _, q := range []string{createTable, createFunctionsTable} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("migrate: create the version tables: %w", err)
		}
	}
	applied, err := readApplied(ctx, conn)
	if err != nil {
		return nil, err
	}
	if err := compare(ms, applied, true); err != nil {
		return nil, err
	}

	var done []int
	for _, m := range ms {
		if _, ok := applied[m.Version]; ok {
			continue
		}
		if err := applyOne(ctx, conn, m); err != nil {
			return done, err
		}
		done = append(done, m.Version)
	}
	fn, ok, err := functions(fsys)
	if err != nil || !ok {
		return done, err
	}
	sum, err := functionsSum(ctx, conn)
	if err != nil {
		return done, err
	}
	if sum != fn.Sum {
		if err := applyFunctions(ctx, conn, fn); err != nil {
			return done, err
		}
	}
	return done, nil
}

func applyOne(ctx context.Context, conn *sql.Conn, m Migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %04d_%s: begin: %w", m.Version, m.Name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("migrate %04d_%s: %w", m.Version, m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)`,
		m.Version, m.Name, m.Sum); err != nil {
		return fmt.Errorf("migrate %04d_%s: record version: %w", m.Version, m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %04d_%s: commit: %w", m.Version, m.Name, err)
	}
	return nil
}

// SchemaError says that the database's schema and the binary's migrations differ in a way
// the binary will not paper over: migrations are pending (and the caller did not ask to
// apply them), or the database was migrated by a newer binary.
type SchemaError struct {
	Database int // the highest version the database records (0: none)
	Binary   int // the highest version embedded in this binary
	Pending  int // embedded migrations the database lacks
	// Functions is true when the database's trigger and function bodies are not this
	// binary's functions file.
	Functions bool
}

func (e *SchemaError) Error() string {
	switch {
	case e.Database > e.Binary:
		return fmt.Sprintf("database schema is at version %d, newer than this binary's %d: use a carbonledger binary at least as new as the one that migrated it",
			e.Database, e.Binary)
	case e.Pending == 0 && e.Functions:
		return fmt.Sprintf("database schema is at version %d but its write-path functions are not this binary's: run 'carbonledger migrate' against it first",
			e.Database)
	case e.Database == 0:
		return fmt.Sprintf("database has no carbonledger schema yet (this binary's is version %d): run 'carbonledger migrate' against it first", e.Binary)
	default:
		return fmt.Sprintf("database schema is at version %d and this binary needs version %d (%d pending migration(s)): run 'carbonledger migrate' against it first",
			e.Database, e.Binary, e.Pending)
	}
}

// Check returns nil when the database records exactly the embedded migrations, unchanged,
// and a *SchemaError (or the reason an applied file differs) otherwise. It writes nothing.
func Check(ctx context.Context, db *sql.DB) error { return checkFS(ctx, db, files) }

func checkFS(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	ms, err := load(fsys)
	if err != nil {
		return err
	}
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	applied := map[int]string{}
	if exists {
		if applied, err = readApplied(ctx, db); err != nil {
			return err
		}
	}
	if err := compare(ms, applied, false); err != nil {
		return err
	}
	fn, ok, err := functions(fsys)
	if err != nil || !ok {
		return err
	}
	var sum string
	var have bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('schema_functions') IS NOT NULL`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have {
		if sum, err = functionsSum(ctx, db); err != nil {
			return err
		}
	}
	if sum != fn.Sum {
		e := &SchemaError{Functions: true}
		for v := range applied {
			e.Database = max(e.Database, v)
		}
		if len(ms) > 0 {
			e.Binary = ms[len(ms)-1].Version
		}
		return e
	}
	return nil
}

// compare checks the recorded versions against the embedded ones. A version recorded that
// the binary does not know means a newer binary migrated the database; a recorded file whose
// text changed is refused; pending versions are an error unless applying is the plan.
func compare(ms []Migration, applied map[int]string, willApply bool) error {
	e := &SchemaError{}
	if len(ms) > 0 {
		e.Binary = ms[len(ms)-1].Version
	}
	known := map[int]bool{}
	for _, m := range ms {
		known[m.Version] = true
		sum, ok := applied[m.Version]
		if !ok {
			e.Pending++
			continue
		}
		if sum != m.Sum {
			return fmt.Errorf("migrate: %04d_%s.sql was changed after it was applied (recorded %s, embedded %s); add a new migration instead",
				m.Version, m.Name, sum[:min(12, len(sum))], m.Sum[:12])
		}
	}
	for v := range applied {
		e.Database = max(e.Database, v)
	}
	for v := range applied {
		if !known[v] {
			return e
		}
	}
	if e.Pending > 0 && !willApply {
		return e
	}
	return nil
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func readApplied(ctx context.Context, db querier) (map[int]string, error) {
	applied := map[int]string{}
	rows, err := db.QueryContext(ctx, `SELECT version, sha256 FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, err
		}
		applied[v] = sum
	}
	return applied, rows.Err()
}

// Pending reports how many embedded migrations the database has not recorded yet.
func Pending(ctx context.Context, db *sql.DB) (int, error) {
	ms, err := All()
	if err != nil {
		return 0, err
	}
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return len(ms), nil
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		return 0, err
	}
	return len(ms) - n, nil
}

// ApplyNumbered applies the numbered migrations only, leaving the database as a binary from
// before the functions file left it: for tests that upgrade such a database.
func ApplyNumbered(ctx context.Context, db *sql.DB) ([]int, error) {
	return applyFS(ctx, db, withoutFunctions{files})
}

type withoutFunctions struct{ fs.FS }

func (w withoutFunctions) Open(name string) (fs.File, error) {
	if name == functionsFile {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return w.FS.Open(name)
}
