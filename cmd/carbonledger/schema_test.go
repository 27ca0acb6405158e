package main

import (
	"bytes"
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/carbonledger/carbonledger/internal/pgtest"
)

// With --db (or DATABASE_URL) the binary never migrates by itself: a database behind it is
// refused until 'carbonledger migrate' runs, and one ahead of it is refused outright.
func TestServerSchemaIsMigratedOnlyOnRequest(t *testing.T) {
	empty := cli{t: t, url: pgtest.EmptyURL(t)}
	code, _, errOut := empty.run("contract", "list")
	if code != 1 || !strings.Contains(errOut, "no carbonledger schema") || !strings.Contains(errOut, "carbonledger migrate") {
		t.Errorf("contract list on an empty database: exit %d, stderr %q; want 1 and a pointer to 'carbonledger migrate'", code, errOut)
	}
	edb, err := sql.Open("postgres", empty.url)
	if err != nil {
		t.Fatal(err)
	}
	defer edb.Close()
	var tables int
	if err := edb.QueryRow(`SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("the refused command left %d tables (%v); it must write nothing", tables, err)
	}

	out := empty.ok("migrate")
	if !strings.Contains(out, "applied now") {
		t.Errorf("migrate printed %q", out)
	}
	if out := empty.ok("contract", "list", "--format", "json"); !strings.Contains(out, `"contracts": []`) {
		t.Errorf("contract list after migrate: %q, want no contracts", out)
	}
	if out := empty.ok("migrate"); !strings.Contains(out, "0 applied now") {
		t.Errorf("a second migrate printed %q, want nothing applied", out)
	}

	// A newer binary migrated this database: this one refuses to read or migrate it.
	if _, err := edb.Exec(`INSERT INTO schema_migrations (version, name, sha256) VALUES (9999, 'from_the_future', 'x')`); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"contract", "list"}, {"migrate"}} {
		code, _, errOut := empty.run(args...)
		if code != 1 || !strings.Contains(errOut, "schema is at version 9999, newer than this binary's") {
			t.Errorf("carbonledger %s on a newer database: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
		}
	}
}

// Without --db and DATABASE_URL, a command says once on stderr that it uses the private
// cluster, and where.
func TestPrivateClusterIsNamedOnStderr(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"migrate"}, &stdout, &stderr); code != 0 {
		t.Fatalf("migrate on the private cluster: exit %d\n%s", code, stderr.String())
	}
	notice := "carbonledger: using the private PostgreSQL cluster in "
	if n := strings.Count(stderr.String(), notice); n != 1 {
		t.Errorf("stderr names the private cluster %d times, want once:\n%s", n, stderr.String())
	}
	if !strings.Contains(stderr.String(), "on 127.0.0.1:") {
		t.Errorf("stderr does not give the cluster's address:\n%s", stderr.String())
	}
	if strings.Contains(stdout.String(), "private") {
		t.Errorf("the notice went to stdout: %q", stdout.String())
	}
}
