package migrations

// The runner's tests run against empty databases of their own. They cannot use
// internal/pgtest (it imports this package: an import cycle in an internal test), so they
// reach the same server the way pgtest does, through pgdev.Resolve: DATABASE_URL when set,
// else the private cluster.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/carbonledger/carbonledger/internal/pgdev"
)

var (
	adminOnce sync.Once
	adminURL  string
	adminErr  error
	dbCounter atomic.Int64
)

// emptyDB creates an empty database for t and drops it when t ends. Its name follows
// pgtest's pattern (cl_test_<pid>_...), so pgtest drops it if this process dies first.
func emptyDB(t *testing.T) *sql.DB {
	t.Helper()
	adminOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		adminURL, adminErr = pgdev.Resolve(ctx, os.Stderr, "postgres")
	})
	if adminErr != nil {
		t.Fatalf("no database for the tests: %v", adminErr)
	}
	name := fmt.Sprintf("cl_test_%d_mig%d", os.Getpid(), dbCounter.Add(1))
	admin, err := sql.Open("postgres", adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	db, err := sql.Open("postgres", withDB(adminURL, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		a, err := sql.Open("postgres", adminURL)
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer a.Close()
		if _, err := a.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return db
}

// withDB points a URL or key=value connection string at database name.
func withDB(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		re := regexp.MustCompile(`dbname=\S+`)
		if re.MatchString(raw) {
			return re.ReplaceAllString(raw, "dbname="+name)
		}
		return raw + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

// recorded returns the schema_migrations rows: version -> sha256, and how many rows there are.
func recorded(t *testing.T, db *sql.DB) (map[int]string, int) {
	t.Helper()
	rows, err := db.Query(`SELECT version, sha256 FROM schema_migrations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[int]string{}
	n := 0
	for rows.Next() {
		var v int
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			t.Fatal(err)
		}
		m[v] = sum
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m, n
}

func versions(ms []Migration) []int {
	vs := make([]int, len(ms))
	for i, m := range ms {
		vs[i] = m.Version
	}
	return vs
}

func TestAll(t *testing.T) {
	ms, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("All() returned %d migrations, want at least 0001 and 0002", len(ms))
	}
	for i, m := range ms {
		if m.Version != i+1 {
			t.Errorf("migration %d has version %d, want %d (versions in order, none missing)", i, m.Version, i+1)
		}
		if m.Name == "" || m.SQL == "" {
			t.Errorf("migration %04d: name %q, %d bytes of SQL", m.Version, m.Name, len(m.SQL))
		}
		file := fmt.Sprintf("%04d_%s.sql", m.Version, m.Name)
		b, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("migration %04d: %v", m.Version, err)
			continue
		}
		sum := sha256.Sum256(b)
		if want := hex.EncodeToString(sum[:]); m.Sum != want {
			t.Errorf("%s: Sum %s, want sha256 %s", file, m.Sum, want)
		}
		if m.SQL != string(b) {
			t.Errorf("%s: the embedded text differs from the file", file)
		}
	}
	// every .sql file on disk is embedded
	files, _ := os.ReadDir(".")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f.Name(), ".sql") && f.Name() != functionsFile {
			n++
		}
	}
	if n != len(ms) {
		t.Errorf("%d .sql files, %d embedded migrations", n, len(ms))
	}
	if _, ok, err := functions(embedded()); !ok || err != nil {
		t.Errorf("%s is not embedded (%v)", functionsFile, err)
	}
}

func TestFingerprint(t *testing.T) {
	a, b := Fingerprint(), Fingerprint()
	if a != b {
		t.Fatalf("Fingerprint() is not stable: %s, then %s", a, b)
	}
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(a) {
		t.Errorf("Fingerprint() = %q, want 12 hex digits", a)
	}
	// It covers each version and its text: recompute it from All().
	ms, err := All()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, m := range ms {
		fmt.Fprintf(h, "%d %s\n", m.Version, m.Sum)
	}
	fn, _, _ := functions(embedded())
	fmt.Fprintf(h, "functions %s\n", fn.Sum)
	if want := hex.EncodeToString(h.Sum(nil))[:12]; a != want {
		t.Errorf("Fingerprint() = %s, want %s", a, want)
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"bad name", fstest.MapFS{"1_init.sql": {Data: []byte("SELECT 1")}}, "is not named NNNN_name.sql"},
		{"upper case", fstest.MapFS{"0001_Init.sql": {Data: []byte("SELECT 1")}}, "is not named NNNN_name.sql"},
		{"duplicate version", fstest.MapFS{
			"0001_a.sql": {Data: []byte("SELECT 1")},
			"0001_b.sql": {Data: []byte("SELECT 2")},
		}, "version 0001 appears twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(tc.fs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	ms, err := load(fstest.MapFS{"0002_b.sql": {Data: []byte("2")}, "0010_c.sql": {Data: []byte("10")}, "0001_a.sql": {Data: []byte("1")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := versions(ms); !slices.Equal(got, []int{1, 2, 10}) {
		t.Errorf("versions %v, want [1 2 10] (numeric order)", got)
	}
}

func TestApplyConcurrentlyOnAFreshDatabase(t *testing.T) {
	db := emptyDB(t)
	ctx := context.Background()
	ms, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := Pending(ctx, db); err != nil || n != len(ms) {
		t.Fatalf("Pending on an empty database: %d, %v; want %d", n, err, len(ms))
	}

	const runners = 6
	applied := make([][]int, runners)
	errs := make([]error, runners)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			applied[i], errs[i] = Apply(ctx, db)
		}()
	}
	close(start)
	wg.Wait()
	var all []int
	for i := range runners {
		if errs[i] != nil {
			t.Errorf("runner %d: %v", i, errs[i])
		}
		all = append(all, applied[i]...)
	}
	slices.Sort(all)
	if want := versions(ms); !slices.Equal(all, want) {
		t.Errorf("the runners applied %v between them, want each of %v exactly once", all, want)
	}
	got, n := recorded(t, db)
	if n != len(ms) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(ms))
	}
	for _, m := range ms {
		if got[m.Version] != m.Sum {
			t.Errorf("version %d recorded with sha256 %q, want %s", m.Version, got[m.Version], m.Sum)
		}
	}

	again, err := Apply(ctx, db)
	if err != nil || len(again) != 0 {
		t.Errorf("a second Apply: applied %v, %v; want nothing", again, err)
	}
	if n, err := Pending(ctx, db); err != nil || n != 0 {
		t.Errorf("Pending after Apply: %d, %v; want 0", n, err)
	}
	// the schema is there
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()
		AND tablename IN ('books', 'accounts', 'entries', 'postings', 'contracts')`).Scan(&tables); err != nil || tables != 5 {
		t.Errorf("journal tables after Apply: %d, %v; want 5", tables, err)
	}
}

func TestApplyFailingMigrationLeavesNothing(t *testing.T) {
	db := emptyDB(t)
	ctx := context.Background()
	good := fstest.MapFS{
		"0001_first.sql": {Data: []byte(`CREATE TABLE first_t (x int); INSERT INTO first_t VALUES (1);`)},
	}
	half := fstest.MapFS{
		"0001_first.sql": good["0001_first.sql"],
		// creates a table and a row, then fails: none of it may remain, nor its version
		"0002_half.sql": {Data: []byte(`CREATE TABLE half_t (x int);
			INSERT INTO half_t VALUES (1);
			CREATE INDEX half_idx ON half_t (x);
			SELECT 1 / 0;
			CREATE TABLE never_t (x int);`)},
		"0003_after.sql": {Data: []byte(`CREATE TABLE after_t (x int);`)},
	}
	done, err := applyFS(ctx, db, half)
	if err == nil {
		t.Fatal("a migration that fails half-way reported success")
	}
	if !strings.Contains(err.Error(), "0002_half") {
		t.Errorf("error %q does not name the failing migration", err)
	}
	if !slices.Equal(done, []int{1}) {
		t.Errorf("applied %v before the failure, want [1]", done)
	}
	for _, tc := range []struct {
		rel    string
		exists bool
	}{{"first_t", true}, {"half_t", false}, {"half_idx", false}, {"never_t", false}, {"after_t", false}} {
		var exists bool
		if err := db.QueryRow(`SELECT to_regclass($1) IS NOT NULL`, tc.rel).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists != tc.exists {
			t.Errorf("%s exists: %t, want %t", tc.rel, exists, tc.exists)
		}
	}
	if got, n := recorded(t, db); n != 1 || got[1] == "" {
		t.Errorf("schema_migrations after the failure: %v, want only version 1", got)
	}

	// Fixed, the run goes on from where it stopped.
	fixed := fstest.MapFS{
		"0001_first.sql": good["0001_first.sql"],
		"0002_half.sql":  {Data: []byte(`CREATE TABLE half_t (x int);`)},
		"0003_after.sql": half["0003_after.sql"],
	}
	done, err = applyFS(ctx, db, fixed)
	if err != nil || !slices.Equal(done, []int{2, 3}) {
		t.Errorf("after the fix: applied %v, %v; want [2 3]", done, err)
	}
	var rows int
	if err := db.QueryRow(`SELECT count(*) FROM first_t`).Scan(&rows); err != nil || rows != 1 {
		t.Errorf("first_t has %d rows (%v): a recorded migration ran twice", rows, err)
	}

	// An applied migration edited afterwards is refused, and nothing runs.
	edited := fstest.MapFS{
		"0001_first.sql": {Data: []byte(`CREATE TABLE first_t (x int, y int);`)},
		"0002_half.sql":  fixed["0002_half.sql"],
		"0003_after.sql": fixed["0003_after.sql"],
		"0004_more.sql":  {Data: []byte(`CREATE TABLE more_t (x int);`)},
	}
	done, err = applyFS(ctx, db, edited)
	if err == nil || !strings.Contains(err.Error(), "0001_first.sql was changed after it was applied") {
		t.Errorf("an edited migration: got %v, want a refusal naming 0001_first.sql", err)
	}
	if len(done) != 0 {
		t.Errorf("applied %v despite the edited migration", done)
	}
	var exists bool
	if err := db.QueryRow(`SELECT to_regclass('more_t') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Errorf("more_t exists: %t (%v); nothing after a refused edit may run", exists, err)
	}
}

// A binary meets a database behind it, level with it, and ahead of it: Check refuses all but
// the level one without writing, and Apply refuses the one ahead.
func TestCheckAgainstOlderAndNewerSchemas(t *testing.T) {
	db := emptyDB(t)
	ctx := context.Background()
	one := fstest.MapFS{"0001_first.sql": {Data: []byte(`CREATE TABLE first_t (x int);`)}}
	two := fstest.MapFS{
		"0001_first.sql":  one["0001_first.sql"],
		"0002_second.sql": {Data: []byte(`CREATE TABLE second_t (x int);`)},
	}
	wantSchemaErr := func(err error, want SchemaError, says string) {
		t.Helper()
		var se *SchemaError
		if !errors.As(err, &se) {
			t.Fatalf("got %v, want a *SchemaError %+v", err, want)
		}
		if *se != want {
			t.Errorf("SchemaError %+v, want %+v", *se, want)
		}
		if !strings.Contains(err.Error(), says) {
			t.Errorf("error %q does not say %q", err, says)
		}
	}

	wantSchemaErr(checkFS(ctx, db, two), SchemaError{Database: 0, Binary: 2, Pending: 2}, "run 'carbonledger migrate'")
	var exists bool
	if err := db.QueryRow(`SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Errorf("Check created schema_migrations (%v): it must write nothing", err)
	}
	if _, err := applyFS(ctx, db, one); err != nil {
		t.Fatal(err)
	}
	wantSchemaErr(checkFS(ctx, db, two), SchemaError{Database: 1, Binary: 2, Pending: 1}, "run 'carbonledger migrate'")
	if _, err := applyFS(ctx, db, two); err != nil {
		t.Fatal(err)
	}
	if err := checkFS(ctx, db, two); err != nil {
		t.Errorf("Check on a database level with the binary: %v", err)
	}
	// An older binary (it knows only 0001) against the database a newer one migrated.
	wantSchemaErr(checkFS(ctx, db, one), SchemaError{Database: 2, Binary: 1}, "newer than this binary's 1")
	done, err := applyFS(ctx, db, one)
	wantSchemaErr(err, SchemaError{Database: 2, Binary: 1}, "newer than this binary's 1")
	if len(done) != 0 {
		t.Errorf("an older binary applied %v to a newer database", done)
	}
}

// The functions file is applied after the numbered migrations, again whenever its text
// changes and never otherwise; until then Check says the database needs 'carbonledger migrate'.
func TestFunctionsFileReappliedWhenChanged(t *testing.T) {
	db := emptyDB(t)
	ctx := context.Background()
	v1 := fstest.MapFS{
		"0001_t.sql":  {Data: []byte(`CREATE TABLE t (x int); CREATE TABLE calls (n int);`)},
		functionsFile: {Data: []byte(`CREATE OR REPLACE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 1'; INSERT INTO calls VALUES (1);`)},
	}
	v2 := fstest.MapFS{
		"0001_t.sql":  v1["0001_t.sql"],
		functionsFile: {Data: []byte(`CREATE OR REPLACE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 2'; INSERT INTO calls VALUES (2);`)},
	}
	answer := func() (a, calls int) {
		t.Helper()
		if err := db.QueryRow(`SELECT answer(), (SELECT count(*) FROM calls)`).Scan(&a, &calls); err != nil {
			t.Fatal(err)
		}
		return a, calls
	}
	if _, err := applyFS(ctx, db, v1); err != nil {
		t.Fatal(err)
	}
	if a, calls := answer(); a != 1 || calls != 1 {
		t.Errorf("after the first run: answer %d, %d runs of the file; want 1, 1", a, calls)
	}
	if _, err := applyFS(ctx, db, v1); err != nil {
		t.Fatal(err)
	}
	if _, calls := answer(); calls != 1 {
		t.Errorf("an unchanged functions file ran again (%d runs)", calls)
	}
	if err := checkFS(ctx, db, v1); err != nil {
		t.Errorf("Check with the same functions: %v", err)
	}
	var se *SchemaError
	if err := checkFS(ctx, db, v2); !errors.As(err, &se) || !se.Functions || !strings.Contains(err.Error(), "carbonledger migrate") {
		t.Errorf("Check with changed functions: %v, want a SchemaError naming carbonledger migrate", err)
	}
	if _, err := applyFS(ctx, db, v2); err != nil {
		t.Fatal(err)
	}
	if a, calls := answer(); a != 2 || calls != 2 {
		t.Errorf("after the change: answer %d, %d runs; want 2, 2", a, calls)
	}
	if err := checkFS(ctx, db, v2); err != nil {
		t.Errorf("Check after applying the change: %v", err)
	}
}
