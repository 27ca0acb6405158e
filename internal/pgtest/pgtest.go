// Package pgtest hands each test an isolated, migrated PostgreSQL database in milliseconds:
// a clone (CREATE DATABASE ... TEMPLATE) of a template database migrated once per schema
// version, dropped when the test ends. It uses DATABASE_URL when set (the role needs
// CREATEDB) and the private cluster otherwise. With no way to get a database the test fails,
// saying how to install PostgreSQL; it never skips.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/carbonledger/carbonledger/internal/pgdev"
	"github.com/carbonledger/carbonledger/migrations"
)

var (
	once     sync.Once
	adminURL string
	tmplName string
	setupErr error
	counter  atomic.Int64
)

// URL returns the URL of a fresh database for t, migrated to the current schema, and drops it
// when t ends.
func URL(t testing.TB) string {
	t.Helper()
	return clone(t, "")
}

// EmptyURL returns the URL of a fresh database for t with no schema at all, as a new
// deployment has, and drops it when t ends.
func EmptyURL(t testing.TB) string {
	t.Helper()
	return clone(t, "template0")
}

// clone copies template, or the migrated template when it is "" (its name is known only
// after setup).
func clone(t testing.TB, template string) string {
	t.Helper()
	once.Do(setup)
	if setupErr != nil {
		t.Fatalf("pgtest: no database for the tests: %v", setupErr)
	}
	if template == "" {
		template = tmplName
	}
	name := fmt.Sprintf("cl_test_%d_%d", os.Getpid(), counter.Add(1))
	admin, err := sql.Open("postgres", adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx := context.Background()
	// Another clone starting at the same instant can make PostgreSQL report the template as
	// busy; try again briefly.
	for attempt := 0; ; attempt++ {
		_, err = admin.ExecContext(ctx, `CREATE DATABASE `+name+` TEMPLATE `+template)
		if err == nil || attempt > 50 || !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("pgtest: clone the template: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("postgres", adminURL)
		if err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
			return
		}
		defer a.Close()
		if _, err := a.ExecContext(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDB(adminURL, name)
}

// AdminURL returns the URL of the administrative database the clones are made from.
func AdminURL(t testing.TB) string {
	t.Helper()
	once.Do(setup)
	if setupErr != nil {
		t.Fatalf("pgtest: no database for the tests: %v", setupErr)
	}
	return adminURL
}

func withDB(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		// a key=value connection string
		re := regexp.MustCompile(`dbname=\S+`)
		if re.MatchString(raw) {
			return re.ReplaceAllString(raw, "dbname="+name)
		}
		return raw + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

func setup() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adminURL, setupErr = pgdev.Resolve(ctx, os.Stderr, "postgres")
	if setupErr != nil {
		return
	}
	tmplName = "cl_tmpl_" + migrations.Fingerprint()
	setupErr = ensureTemplate(ctx)
}

// ensureTemplate builds the template once per schema version, under an advisory lock so that
// test binaries running in parallel wait for the first one. A template is complete once it is
// marked IS_TEMPLATE; an unmarked one is the remains of an interrupted build and is rebuilt.
func ensureTemplate(ctx context.Context) error {
	admin, err := sql.Open("postgres", adminURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	conn, err := admin.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(adminURL), err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7263001)`); err != nil {
		return err
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(7263001)`)

	dropStale(ctx, conn)
	var isTemplate sql.NullBool
	err = conn.QueryRowContext(ctx, `SELECT datistemplate FROM pg_database WHERE datname = $1`, tmplName).Scan(&isTemplate)
	if err == nil && isTemplate.Bool {
		return nil
	}
	if err == nil {
		if _, err := conn.ExecContext(ctx, `DROP DATABASE `+tmplName+` WITH (FORCE)`); err != nil {
			return err
		}
	}
	if _, err := conn.ExecContext(ctx, `CREATE DATABASE `+tmplName); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	tdb, err := sql.Open("postgres", withDB(adminURL, tmplName))
	if err != nil {
		return err
	}
	if _, err := migrations.Apply(ctx, tdb); err != nil {
		tdb.Close()
		return fmt.Errorf("migrate template: %w", err)
	}
	tdb.Close()
	_, err = conn.ExecContext(ctx, `ALTER DATABASE `+tmplName+` IS_TEMPLATE true`)
	return err
}

// dropStale drops clones left by test processes that died before their cleanup ran, and
// templates of older schema versions.
func dropStale(ctx context.Context, conn *sql.Conn) {
	rows, err := conn.QueryContext(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'cl\_test\_%' OR datname LIKE 'cl\_tmpl\_%'`)
	if err != nil {
		return
	}
	var names []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			names = append(names, n)
		}
	}
	rows.Close()
	for _, n := range names {
		stale := false
		if strings.HasPrefix(n, "cl_tmpl_") {
			stale = n != tmplName
		} else if parts := strings.Split(n, "_"); len(parts) == 4 && os.Getenv("DATABASE_URL") == "" {
			// only on the private cluster, where the test processes share this machine
			pid, _ := strconv.Atoi(parts[2])
			stale = pid > 0 && syscall.Kill(pid, 0) == syscall.ESRCH
		}
		if stale {
			if strings.HasPrefix(n, "cl_tmpl_") {
				conn.ExecContext(ctx, `ALTER DATABASE `+n+` IS_TEMPLATE false`)
			}
			conn.ExecContext(ctx, `DROP DATABASE IF EXISTS `+n+` WITH (FORCE)`)
		}
	}
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	return p.Redacted()
}
