package bench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
	_ "github.com/lib/pq"
)

func TestScratchProf(t *testing.T) {
	if os.Getenv("PROF") == "" {
		t.Skip()
	}
	ctx := context.Background()
	admin := "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	adb, _ := sql.Open("postgres", admin)
	adb.Exec("DROP DATABASE IF EXISTS profdb WITH (FORCE)")
	if _, err := adb.Exec("CREATE DATABASE profdb"); err != nil {
		t.Fatal(err)
	}
	url := "postgres://postgres@127.0.0.1:5432/profdb?sslmode=disable"
	s, err := openFresh(ctx, url, "migrate", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	today := ledger.Date(time.Now().UTC().Date())
	spread, _, _, err := seedWrites(ctx, s, []int{0, 20000}, today, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	db, _ := sql.Open("postgres", url)
	db.Exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
	writers, _ := strconv.Atoi(os.Getenv("PROF"))
	// warm
	deliverLevel(ctx, s, writers, spread, time.Second, time.Second, today, 1)
	db.Exec("SELECT pg_stat_statements_reset()")
	db.Exec("SELECT pg_stat_reset()")
	r, err := deliverLevel(ctx, s, writers, spread, 0, 5*time.Second, today, 2)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ops %d rate %.0f p50 %v p99 %v\n", r.ops, r.rate(), pct(r.lat, .5), pct(r.lat, .99))
	rows, err := db.Query(`SELECT calls, round((total_exec_time/nullif(calls,0)*1000)::numeric,1), round((total_plan_time/nullif(calls,0)*1000)::numeric,1), round(((total_exec_time+total_plan_time)/` + strconv.Itoa(r.ops) + `*1000)::numeric,1) per_op, left(regexp_replace(query,'\s+',' ','g'),110) FROM pg_stat_statements WHERE dbid=(select oid from pg_database where datname='profdb') ORDER BY total_exec_time+total_plan_time DESC LIMIT 40`)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("calls exec_us plan_us per_op_us query")
	for rows.Next() {
		var c int
		var e, p, po, q string
		rows.Scan(&c, &e, &p, &po, &q)
		fmt.Println(c, e, p, po, q)
	}
	rows, _ = db.Query(`SELECT funcname, calls, round((total_time/nullif(calls,0)*1000)::numeric,1), round((self_time/nullif(calls,0)*1000)::numeric,1) FROM pg_stat_user_functions ORDER BY total_time DESC LIMIT 20`)
	fmt.Println("func calls total_us self_us")
	for rows.Next() {
		var f string
		var c int
		var a, b string
		rows.Scan(&f, &c, &a, &b)
		fmt.Println(f, c, a, b)
	}
}

func TestScratchAPI(t *testing.T) {
	if os.Getenv("PROFAPI") == "" {
		t.Skip()
	}
	admin := "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	cfg := Config{Out: os.Stdout, Log: os.Stderr, Write: WriteConfig{Seconds: 5, Warmup: 1}}
	if err := API(context.Background(), admin, cfg, ledger.Date(time.Now().UTC().Date())); err != nil {
		t.Fatal(err)
	}
}
