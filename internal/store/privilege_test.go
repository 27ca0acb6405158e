package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/ledger"
)

// privilegeFixture is the attack fixture's journal books with a contract beside them: serials
// delivered (CAR-PV:41-100) and retired (CAR-PV:1-40), a schedule, an API token and an answer
// the API kept, so that every table the writer might reach holds rows.
func privilegeFixture(t *testing.T) attackFixture {
	t.Helper()
	f := newAttackFixture(t)
	ctx := context.Background()
	s := f.s
	addContract(t, s, contractDoc("PRIV-1", nil))
	d := deliverReq("PRIV-1", "100", ledger.Date(2025, 3, 1))
	d.Serials = serialsOf(t, "CAR-PV:1-100")
	opOK(t)(s.Deliver(ctx, d))
	r := retireReq("PRIV-1", "40", ledger.Date(2025, 3, 2))
	r.Serials = serialsOf(t, "CAR-PV:1-40")
	opOK(t)(s.Retire(ctx, r))
	if _, err := s.CreateToken(ctx, "ops", "admin", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.KeepResponse(ctx, KeptResponse{Key: "kept-1", Route: "POST /v1/batches", Token: "ops",
		Request: make([]byte, 32), Status: 200, Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	return f
}

// asRole runs fn in a transaction as role (SET LOCAL ROLE) and commits.
func asRole(ctx context.Context, s *Store, role string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return rawTx(ctx, s, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SET LOCAL ROLE `+role); err != nil {
			return fmt.Errorf("set role: %w", err)
		}
		return fn(ctx, tx)
	})
}

// stmts runs the statements in order, stopping at the first error.
func stmts(qs ...string) func(ctx context.Context, tx *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		for _, q := range qs {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	}
}

// then runs a after b.
func then(a, b func(ctx context.Context, tx *sql.Tx) error) func(ctx context.Context, tx *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		if err := a(ctx, tx); err != nil {
			return err
		}
		return b(ctx, tx)
	}
}

// The role the server and the CLI write as cannot change history with hand-written SQL:
// no UPDATE, DELETE or TRUNCATE of any table of the journal, its contracts, schedules,
// serials, rollups, tokens or kept answers; no trigger turned off, dropped, replaced or
// added; no session_replication_role; no function or table of its own in the schema. (That
// the session cannot go back to the owner's role is TestLoginRoleCannotReachTheOwner's.) Nor can it fool the journal's triggers with temporary tables named like
// the journal's (PostgreSQL searches a session's temporary schema first), nor write the
// bookkeeping of an entry (serial blocks, schedule versions, serial events) apart from the
// entry. Every attempt fails with a permission error (42501) or a trigger's refusal, and the
// database is byte for byte as it was; the audit stays clean.
func TestWriterRoleCannotAlterHistory(t *testing.T) {
	f := privilegeFixture(t)
	s := f.s
	ctx := context.Background()
	before := pgtest.Fingerprint(t, s.DB().DB)
	pair := [][2]string{{f.src, "-1"}, {f.a, "1"}}

	type attempt struct {
		name, code string
		run        func(ctx context.Context, tx *sql.Tx) error
	}
	var cases []attempt
	// Every table: no UPDATE, DELETE or TRUNCATE; the ones it may not write at all, no INSERT.
	column := map[string]string{
		"entries": "description", "postings": "amount", "accounts": "balance", "books": "head_seq", "contracts": "buyer",
		"schedule_lines": "tonnes", "serial_events": "label", "flows": "amount", "flows_monthly": "amount",
		"book_months": "postings", "book_years": "postings", "book_months_effective": "postings", "vintage_months": "postings",
		"api_tokens": "revoked_at", "api_responses": "status", "schema_migrations": "name", "schema_functions": "sha256",
	}
	for tbl, col := range column {
		cases = append(cases,
			attempt{"UPDATE " + tbl, "42501", stmts(`UPDATE ` + tbl + ` SET ` + col + ` = ` + col)},
			attempt{"DELETE FROM " + tbl, "42501", stmts(`DELETE FROM ` + tbl)},
			attempt{"TRUNCATE " + tbl, "42501", stmts(`TRUNCATE ` + tbl + ` CASCADE`)})
	}
	for _, tbl := range []string{"flows", "flows_monthly", "book_months", "book_years", "book_months_effective", "vintage_months",
		"schema_migrations", "schema_functions"} {
		cases = append(cases, attempt{"INSERT INTO " + tbl, "42501", stmts(`INSERT INTO ` + tbl + ` SELECT * FROM ` + tbl)})
	}
	cases = append(cases,
		attempt{"mint an API token", "42501", stmts(`INSERT INTO api_tokens (name, role, token_sha256) VALUES ('evil', 'admin', sha256('x'))`)},
		attempt{"TRUNCATE serial_blocks", "42501", stmts(`TRUNCATE serial_blocks CASCADE`)},

		// Serial blocks, schedule versions and serial events change only with their entry.
		attempt{"a retired block marked delivered", "CL005", stmts(`UPDATE serial_blocks SET state = 'delivered' WHERE state = 'retired'`)},
		attempt{"a retired block deleted", "CL005", stmts(`DELETE FROM serial_blocks WHERE state = 'retired'`)},
		attempt{"a delivered block deleted, to deliver its serials again", "CL004", stmts(`DELETE FROM serial_blocks WHERE state = 'delivered'`)},
		attempt{"a delivered block marked retired", "CL004", stmts(`UPDATE serial_blocks SET state = 'retired' WHERE state = 'delivered'`)},
		attempt{"a delivered block stretched", "CL004", stmts(`UPDATE serial_blocks SET serials = int8range(41, 1000, '[]') WHERE state = 'delivered'`)},
		attempt{"a delivered block moved to another registry", "CL001", stmts(`UPDATE serial_blocks SET registry = 'verra' WHERE state = 'delivered'`)},
		attempt{"a block made up", "CL004", stmts(`INSERT INTO serial_blocks (registry, prefix, serials, contract_id, state, entry_id)
			SELECT registry, 'CAR-MADE-UP', int8range(1, 5, '[]'), contract_id, 'delivered', entry_id FROM serial_blocks LIMIT 1`)},
		attempt{"a schedule version added to the sign entry", "CL004", stmts(`INSERT INTO schedule_lines
			SELECT contract_id, version + 1, explicit, entry_id, year, tonnes, vintage, price_per_tonne, due_on FROM schedule_lines`)},
		attempt{"a serial event added to a sealed delivery", "CL004", stmts(`INSERT INTO serial_events (entry_id, contract_id, registry, prefix, serials, label, from_state, to_state)
			SELECT entry_id, contract_id, registry, prefix, int8range(500, 600, '[]'), '', NULL, 'delivered' FROM serial_events LIMIT 1`)},

		// Triggers, functions, ownership, roles, the server's files.
		attempt{"session_replication_role = replica", "42501", stmts(`SET LOCAL session_replication_role = replica`)},
		attempt{"disable every trigger", "42501", stmts(`ALTER TABLE entries DISABLE TRIGGER ALL`)},
		attempt{"disable the posting trigger", "42501", stmts(`ALTER TABLE postings DISABLE TRIGGER postings_apply`)},
		attempt{"drop a trigger", "42501", stmts(`DROP TRIGGER entries_append_only ON entries`)},
		attempt{"add a trigger", "42501", stmts(`CREATE TRIGGER evil BEFORE INSERT ON postings FOR EACH ROW EXECUTE FUNCTION journal_refuse_change()`)},
		attempt{"add a trigger calling a temporary function", "42501", stmts(
			`CREATE FUNCTION pg_temp.evil() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`,
			`CREATE TRIGGER evil BEFORE UPDATE ON entries FOR EACH ROW EXECUTE FUNCTION pg_temp.evil()`)},
		attempt{"replace a trigger function", "42501", stmts(`CREATE OR REPLACE FUNCTION journal_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`)},
		attempt{"make the posting trigger run as the writer", "42501", stmts(`ALTER FUNCTION postings_apply() SECURITY INVOKER`)},
		attempt{"drop the posting trigger's function", "42501", stmts(`DROP FUNCTION postings_apply() CASCADE`)},
		attempt{"create a function in the schema", "42501", stmts(`CREATE FUNCTION evil() RETURNS int LANGUAGE sql AS 'SELECT 1'`)},
		attempt{"create a table in the schema", "42501", stmts(`CREATE TABLE evil (a int)`)},
		attempt{"take ownership of the journal", "42501", stmts(`ALTER TABLE entries OWNER TO carbonledger_writer`)},
		attempt{"drop the serials' exclusion constraint", "42501", stmts(`ALTER TABLE serial_blocks DROP CONSTRAINT serial_blocks_no_overlap`)},
		attempt{"grant itself UPDATE, then update", "42501", stmts(`GRANT UPDATE ON entries TO carbonledger_writer`, `UPDATE entries SET description = 'x'`)},
		attempt{"lock the journal against everyone", "42501", stmts(`LOCK TABLE entries IN ACCESS EXCLUSIVE MODE`)},
		attempt{"run a program", "42501", stmts(`COPY entries TO PROGRAM 'true'`)},
		attempt{"read a server file", "42501", stmts(`COPY postings FROM '/etc/hostname'`)},

		// Temporary tables named like the journal's, which the triggers must not read.
		attempt{"a temporary entries table makes a sealed entry look new, to append postings to it", "CL004", then(
			stmts(`CREATE TEMP TABLE entries AS SELECT * FROM public.entries`),
			func(ctx context.Context, tx *sql.Tx) error {
				if err := insertPosting(ctx, tx, f.first.ID, f.b, "-1"); err != nil {
					return err
				}
				return insertPosting(ctx, tx, f.first.ID, f.ret, "1")
			})},
		attempt{"a temporary books table with the head moved, to write an entry off the chain", "CL003", then(
			stmts(`CREATE TEMP TABLE books AS SELECT * FROM public.books`, `UPDATE pg_temp.books SET head_seq = head_seq + 5 WHERE code = 'j'`),
			func(ctx context.Context, tx *sql.Tx) error {
				_, err := insertRaw(ctx, tx, rawEntry{book: "j", kind: "transfer", key: "shadow-chain", postings: pair})
				return err
			})},
		attempt{"a temporary accounts table where retired is an asset, to draw on retired tonnes", "CL005", then(
			stmts(`CREATE TEMP TABLE accounts AS SELECT * FROM public.accounts`, `UPDATE pg_temp.accounts SET kind = 'asset' WHERE kind = 'retired'`),
			func(ctx context.Context, tx *sql.Tx) error {
				_, err := insertRaw(ctx, tx, rawEntry{book: "j", kind: "transfer", key: "shadow-retired",
					postings: [][2]string{{f.ret, "-1"}, {f.a, "1"}}})
				return err
			})},
		attempt{"a temporary postings table that balances an unbalanced entry", "CL002", func(ctx context.Context, tx *sql.Tx) error {
			id, err := insertRaw(ctx, tx, rawEntry{book: "j", kind: "transfer", key: "shadow-balance", postings: pair, sealOnly: true})
			if err != nil {
				return err
			}
			if err := stmts(`CREATE TEMP TABLE postings (entry_id uuid, account_id bigint, amount numeric)`)(ctx, tx); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO pg_temp.postings VALUES ($1, 0, -1), ($1, 0, 1)`, id); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO public.postings (entry_id, account_id, amount)
				SELECT $1, id, 1 FROM accounts WHERE code = $2`, id, f.a)
			return err
		}},
		attempt{"a temporary entries table, to delete a delivered block", "CL004", stmts(
			`CREATE TEMP TABLE entries AS SELECT * FROM public.entries`, `DELETE FROM serial_blocks WHERE state = 'delivered'`)},
		attempt{"a temporary entries table, to add a schedule version", "CL004", stmts(
			`CREATE TEMP TABLE entries AS SELECT * FROM public.entries`,
			`INSERT INTO schedule_lines SELECT contract_id, version + 1, explicit, entry_id, year, tonnes, vintage, price_per_tonne, due_on FROM schedule_lines`)},
		attempt{"a temporary function named like the guards' helper", "CL004", stmts(
			`CREATE FUNCTION pg_temp.written_in_this_transaction(x xid) RETURNS boolean LANGUAGE sql AS 'SELECT true'`,
			`DELETE FROM serial_blocks WHERE state = 'delivered'`)},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := asRole(ctx, s, "carbonledger_writer", tc.run)
			if got := pgCode(err); got != tc.code {
				t.Errorf("got SQLSTATE %q (%v), want %s", got, err, tc.code)
			}
		})
	}
	if after := pgtest.Fingerprint(t, s.DB().DB); after != before {
		t.Errorf("the refused statements changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	wantAuditClean(t, s)

	// What the writer needs still works: a sealed entry with its postings.
	if err := asRole(ctx, s, "carbonledger_writer", func(ctx context.Context, tx *sql.Tx) error {
		_, err := insertRaw(ctx, tx, rawEntry{book: "j", kind: "transfer", key: "as-writer-ok", postings: pair})
		return err
	}); err != nil {
		t.Fatalf("a valid entry as the writer: %v", err)
	}
	wantAuditClean(t, s)
}

// The role reports and the audit read as writes nothing at all.
func TestReaderRoleWritesNothing(t *testing.T) {
	f := privilegeFixture(t)
	s := f.s
	ctx := context.Background()
	if s.readerRole != "carbonledger_reader" {
		t.Fatalf("reader role %q, want carbonledger_reader", s.readerRole)
	}
	before := pgtest.Fingerprint(t, s.DB().DB)
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context, tx *sql.Tx) error
	}{
		{"an entry", func(ctx context.Context, tx *sql.Tx) error {
			_, err := insertRaw(ctx, tx, rawEntry{book: "j", kind: "transfer", key: "as-reader", postings: [][2]string{{f.src, "-1"}, {f.a, "1"}}})
			return err
		}},
		{"a posting", func(ctx context.Context, tx *sql.Tx) error { return insertPosting(ctx, tx, f.first.ID, f.b, "1") }},
		{"a book", stmts(`INSERT INTO books (code) VALUES ('reader-book')`)},
		{"a kept answer", stmts(`INSERT INTO api_responses (idempotency_key, token_name, request_sha256, status, body) VALUES ('k', 'x', sha256('x'), 200, '')`)},
		{"a serial block", stmts(`INSERT INTO serial_blocks (registry, prefix, serials, contract_id, state, entry_id)
			SELECT registry, 'CAR-READER', serials, contract_id, state, entry_id FROM serial_blocks`)},
		{"UPDATE entries", stmts(`UPDATE entries SET description = 'x'`)},
		{"DELETE FROM serial_blocks", stmts(`DELETE FROM serial_blocks`)},
		{"TRUNCATE postings", stmts(`TRUNCATE postings CASCADE`)},
		{"session_replication_role = replica", stmts(`SET LOCAL session_replication_role = replica`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := asRole(ctx, s, "carbonledger_reader", tc.run)
			if got := pgCode(err); got != "42501" {
				t.Errorf("got SQLSTATE %q (%v), want 42501", got, err)
			}
		})
	}
	if after := pgtest.Fingerprint(t, s.DB().DB); after != before {
		t.Errorf("the reader changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// Every function that runs with the owner's rights or as a trigger searches the schema and
// then pg_temp, never pg_temp first (see functions.sql), including any a later migration adds.
func TestTriggerFunctionsPinSearchPath(t *testing.T) {
	s := newStore(t)
	var rows []struct {
		Name   string         `db:"name"`
		Config sql.NullString `db:"config"`
	}
	if err := s.DB().SelectContext(context.Background(), &rows, `
		SELECT p.oid::regprocedure::text AS name, array_to_string(p.proconfig, ';') AS config FROM pg_proc p
		 WHERE p.pronamespace = current_schema()::regnamespace AND (p.prosecdef OR p.prorettype = 'trigger'::regtype)
		   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')`); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 10 {
		t.Fatalf("found %d trigger and SECURITY DEFINER functions, want the journal's", len(rows))
	}
	for _, r := range rows {
		if !strings.HasSuffix(r.Config.String, ", pg_temp") || !strings.Contains(r.Config.String, "search_path=") {
			t.Errorf("function %s has settings %q, want a search_path ending in pg_temp", r.Name, r.Config.String)
		}
	}
}

var loginRoles atomic.Int64

// loginRole creates a login role for t that is a member of the writer and reader roles and
// of nothing else, as README's "Running it on a server" sets the server up, and returns the
// URL of db as that role. The role is dropped when t ends.
func loginRole(t *testing.T, db *sql.DB, dbURL string) string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("cl_app_%d_%d", os.Getpid(), loginRoles.Add(1))
	raw := make([]byte, 16)
	rand.Read(raw)
	password := hex.EncodeToString(raw)
	if _, err := db.ExecContext(ctx, `CREATE ROLE `+name+` LOGIN PASSWORD '`+password+`' IN ROLE carbonledger_writer, carbonledger_reader`); err != nil {
		t.Fatalf("create the login role: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), `DROP ROLE IF EXISTS `+name); err != nil {
			t.Errorf("drop the login role: %v", err)
		}
	})
	if u, err := url.Parse(dbURL); err == nil && u.Scheme != "" {
		u.User = url.UserPassword(name, password)
		return u.String()
	}
	kv := regexp.MustCompile(`(^|\s)(user|password)=\S+`).ReplaceAllString(dbURL, "")
	return kv + " user=" + name + " password=" + password
}

// Run as README advises, by a login role that is only a member of the writer and reader
// roles, the store writes and reads as ever; and no statement of that session, however
// hand-written, reaches the owner's rights: SET ROLE and RESET ROLE lead no further than the
// writer's privileges, so history stays as it was.
func TestLoginRoleCannotReachTheOwner(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	admin, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() }) // after the login role is dropped
	var owner string
	if err := admin.QueryRowContext(ctx, `SELECT current_user`).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	appURL := loginRole(t, admin, dbURL)
	s, err := Open(ctx, appURL)
	if err != nil {
		t.Fatalf("open the store as the login role: %v", err)
	}
	defer s.Close()
	addContract(t, s, contractDoc("APP-1", nil))
	d := deliverReq("APP-1", "100", ledger.Date(2025, 3, 1))
	d.Serials = serialsOf(t, "CAR-APP:1-100")
	opOK(t)(s.Deliver(ctx, d))
	r := retireReq("APP-1", "40", ledger.Date(2025, 3, 2))
	r.Serials = serialsOf(t, "CAR-APP:1-40")
	opOK(t)(s.Retire(ctx, r))
	if _, _, err := s.KeepResponse(ctx, KeptResponse{Key: "kept-app", Route: "POST /v1/batches", Token: "ops",
		Request: make([]byte, 32), Status: 200, Body: []byte(`{}`)}); err != nil {
		t.Fatalf("keep an answer as the login role: %v", err)
	}
	wantAuditClean(t, s)
	if _, err := s.CreateToken(ctx, "minted", "admin", nil); pgCode(err) != "42501" {
		t.Errorf("the login role minted a token: %v", err)
	}

	before := pgtest.Fingerprint(t, admin)
	for _, tc := range []struct {
		name, code string
		qs         []string
	}{
		{"become the owner", "42501", []string{`SET ROLE ` + owner}},
		{"reset the role, then rewrite an entry", "42501", []string{`RESET ROLE`, `UPDATE entries SET description = 'x'`}},
		{"reset the role, then delete postings", "42501", []string{`RESET ROLE`, `DELETE FROM postings`}},
		{"reset the role, then turn the triggers off", "42501", []string{`RESET ROLE`, `SET session_replication_role = replica`}},
		{"reset the role, then disable a trigger", "42501", []string{`RESET ROLE`, `ALTER TABLE entries DISABLE TRIGGER ALL`}},
		{"reset the role, then mint a token", "42501", []string{`RESET ROLE`, `INSERT INTO api_tokens (name, role, token_sha256) VALUES ('evil', 'admin', sha256('x'))`}},
		{"reset the role, then delete a delivered block", "CL004", []string{`RESET ROLE`, `DELETE FROM serial_blocks WHERE state = 'delivered'`}},
		{"grant itself the owner's role", "42501", []string{`GRANT ` + owner + ` TO current_user`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := rawTx(ctx, s, func(tx *sql.Tx) error { return stmts(tc.qs...)(ctx, tx) })
			if got := pgCode(err); got != tc.code {
				t.Errorf("got SQLSTATE %q (%v), want %s", got, err, tc.code)
			}
		})
	}
	if after := pgtest.Fingerprint(t, admin); after != before {
		t.Errorf("the login role changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	wantAuditClean(t, s)
}
