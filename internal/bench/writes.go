package bench

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/carbonledger/carbonledger/internal/pgdev"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// WriteConfig sizes the write section: deliveries through the store against pgbench's TPC-B
// on the same server, and the latency of one delivery as a contract's history grows.
type WriteConfig struct {
	Seconds      int   // measured seconds of each concurrency level
	Warmup       int   // seconds run and discarded before each level
	History      []int // prior deliveries of the history contracts; the first is the baseline
	Samples      int   // timed sequential deliveries on each history contract
	PgbenchScale int   // pgbench -i -s; at least the largest client count, or TPC-B contends on branches
}

// The concurrency levels of the issue: writers over 64 contracts, then 16 writers on one.
var (
	writeLevels = []int{1, 4, 16, 32}
	spreadOver  = 64
	// spreadHistory is how many deliveries each of those contracts has before the levels
	// run: a ledger in use, not an empty one (on tables of a few pages the planner's plans,
	// kept by each connection, scan instead of using the indexes)
	spreadHistory = 150
	hotWriters    = 16
	writeDBName   = "carbonledger_bench_writes"
	pgbenchDBName = "carbonledger_bench_pgbench"
	// a session advisory lock key: one write section per server at a time, since each drops
	// and recreates the same two databases
	writeLockKey = int64(0x636c62656e6368) // "clbench"
)

// The targets.
const (
	targetRatio   = 0.8                   // ours / TPC-B at 16 writers over 64 contracts
	targetP99     = 50 * time.Millisecond // p99 at 16 writers over 64 contracts
	targetHistory = 1.2                   // p50 with the largest history / p50 with none
)

// levelResult is one measured level, ours or pgbench's.
type levelResult struct {
	ops      int
	errs     int
	firstErr error
	elapsed  time.Duration
	lat      []time.Duration // sorted
	tps      float64         // pgbench's own figure (excluding connection time); ours: ops/elapsed
}

func (r levelResult) rate() float64 {
	if r.tps > 0 || r.elapsed <= 0 {
		return r.tps
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

// pct is the nearest-rank percentile of sorted latencies.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Writes runs the write section against the server of admin (a URL of a database we may
// create databases from). It makes its two databases afresh and drops them when done.
func Writes(ctx context.Context, admin string, cfg Config, today time.Time) error {
	wc := cfg.Write
	if wc.Seconds <= 0 {
		wc.Seconds = 10
	}
	if wc.Warmup < 0 {
		wc.Warmup = 0
	}
	if len(wc.History) == 0 {
		wc.History = []int{0, 10_000, 100_000}
	}
	if wc.Samples <= 0 {
		wc.Samples = 200
	}
	if wc.PgbenchScale <= 0 {
		wc.PgbenchScale = slices.Max(writeLevels)
	}
	adminDB, release, err := ownSection(ctx, admin, "writes", writeLockKey, []string{writeDBName, pgbenchDBName}, cfg.Log)
	if err != nil {
		return err
	}
	defer release()
	writeURL, err := freshDB(ctx, adminDB, admin, writeDBName)
	if err != nil {
		return err
	}
	pgbURL, err := freshDB(ctx, adminDB, admin, pgbenchDBName)
	if err != nil {
		return err
	}

	s, err := openFresh(ctx, writeURL, "writes: migrating "+writeDBName, cfg.Log)
	if err != nil {
		return err
	}
	defer s.Close()

	spread, hot, hist, err := seedWrites(ctx, s, wc.History, today, cfg.Log)
	if err != nil {
		return err
	}

	pgb, pgbErr := newPgbench(pgbURL)
	if pgbErr == nil {
		fmt.Fprintf(cfg.Log, "writes: pgbench -i -s %d (%s)\n", wc.PgbenchScale, pgb.path)
		start := time.Now()
		pgbErr = pgb.init(ctx, wc.PgbenchScale)
		fmt.Fprintf(cfg.Log, "writes: pgbench initialised in %s\n", time.Since(start).Round(time.Second))
		defer os.RemoveAll(pgb.dir)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if pgbErr != nil {
		fmt.Fprintf(cfg.Log, "writes: no TPC-B baseline: %v\n", pgbErr)
	}

	// What durability each side ran with, each from a connection opened now.
	serverSync, _ := showSetting(ctx, admin, "synchronous_commit")
	fsync, _ := showSetting(ctx, admin, "fsync")
	version, _ := showSetting(ctx, admin, "server_version")
	oursSync, err := showSetting(ctx, writeURL, "synchronous_commit")
	if err != nil {
		return err
	}
	var poolSync string
	if err := s.DB().GetContext(ctx, &poolSync, `SHOW synchronous_commit`); err != nil {
		return err
	}
	pgbSync, err := showSetting(ctx, pgbURL, "synchronous_commit")
	if err != nil {
		return err
	}

	warm, dur := time.Duration(wc.Warmup)*time.Second, time.Duration(wc.Seconds)*time.Second
	type row struct {
		writers, contracts int
		ours, tpcb         levelResult
		tpcbErr            error
		tpcbSame           bool // the TPC-B figures are the previous row's run
	}
	var rows []row
	byWriters := map[int]levelResult{}
	tpcbBy := map[int]levelResult{}
	level := 0
	for _, n := range writeLevels {
		level++
		fmt.Fprintf(cfg.Log, "writes: %d writers over %d contracts (%ds + %ds warm-up)\n", n, len(spread), wc.Seconds, wc.Warmup)
		ours, err := deliverLevel(ctx, s, n, spread, warm, dur, today, level)
		if err != nil {
			return err
		}
		byWriters[n] = ours
		r := row{writers: n, contracts: len(spread), ours: ours, tpcbErr: pgbErr}
		if pgbErr == nil {
			fmt.Fprintf(cfg.Log, "writes: TPC-B, %d clients\n", n)
			r.tpcb, r.tpcbErr = pgb.run(ctx, n, wc.Warmup, wc.Seconds)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			tpcbBy[n] = r.tpcb
		}
		rows = append(rows, r)
		if n == hotWriters {
			// right after the 16-client TPC-B run, so both sit beside the same baseline
			level++
			fmt.Fprintf(cfg.Log, "writes: %d writers on one contract\n", hotWriters)
			h, err := deliverLevel(ctx, s, hotWriters, []string{hot}, warm, dur, today, level)
			if err != nil {
				return err
			}
			rows = append(rows, row{writers: hotWriters, contracts: 1, ours: h, tpcb: r.tpcb, tpcbErr: r.tpcbErr, tpcbSame: true})
		}
	}

	fmt.Fprintf(cfg.Log, "writes: one delivery at a time on contracts with %v prior deliveries\n", wc.History)
	histLat, err := historyLatency(ctx, s, hist, wc.Samples, today)
	if err != nil {
		return err
	}

	// The report.
	out := cfg.Out
	fmt.Fprintf(out, "\nwrites: deliveries of 1 t through store.Deliver (validation, locks, triggers, rollups, hash chain), each its own entry\n")
	fmt.Fprintf(out, "and answer, those that arrive together written in one transaction (group commit); contracts with %d prior deliveries each;\n", spreadHistory)
	fmt.Fprintf(out, "beside pgbench TPC-B (scale %d, -c N -j N -n) on the same server in the same run; %d s per level after %d s warm-up\n", wc.PgbenchScale, wc.Seconds, wc.Warmup)
	pgbPath := "-"
	if pgb != nil {
		pgbPath = pgb.path
	}
	fmt.Fprintf(out, "server: PostgreSQL %s; pgbench: %s\n", version, pgbPath)
	fmt.Fprintf(out, "synchronous_commit: server default %s; write-bench database %s (store pool: %s); pgbench database %s; fsync %s\n\n",
		serverSync, oursSync, poolSync, pgbSync, fsync)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "writers\tcontracts\tours ops/s\tp50 ms\tp99 ms\terrors\tTPC-B tps\tp50 ms\tp99 ms\tours/TPC-B\t\n")
	for _, r := range rows {
		tp, t50, t99, ratio := "-", "-", "-", "-"
		if r.tpcbErr == nil {
			tp, t50, t99 = fmt.Sprintf("%.0f", r.tpcb.rate()), ms(pct(r.tpcb.lat, .5)), ms(pct(r.tpcb.lat, .99))
			if r.tpcbSame {
				tp += " (above)"
			}
			if r.tpcb.rate() > 0 {
				ratio = fmt.Sprintf("%.2f", r.ours.rate()/r.tpcb.rate())
			}
		}
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", r.writers, r.contracts, r.ours.rate(),
			ms(pct(r.ours.lat, .5)), ms(pct(r.ours.lat, .99)), r.ours.errs, tp, t50, t99, ratio)
	}
	tw.Flush()
	for _, r := range rows {
		if r.ours.firstErr != nil {
			fmt.Fprintf(out, "  %d writers / %d contracts: %d failed deliveries, the first: %v\n", r.writers, r.contracts, r.ours.errs, r.ours.firstErr)
		}
		if r.tpcbErr != nil && !r.tpcbSame {
			fmt.Fprintf(out, "  TPC-B at %d clients: %v\n", r.writers, r.tpcbErr)
		}
	}

	fmt.Fprintf(out, "\none delivery on a contract with a history (single writer, %d deliveries each, the contracts taken in turn):\n", wc.Samples)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "prior deliveries\tp50 ms\tp99 ms\tp50 / first\tp99 / first\t\n")
	base := histLat[0]
	for i, n := range wc.History {
		l := histLat[i]
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.2f\t%.2f\t\n", n, ms(pct(l, .5)), ms(pct(l, .99)),
			ratioOf(pct(l, .5), pct(base, .5)), ratioOf(pct(l, .99), pct(base, .99)))
	}
	tw.Flush()

	// The targets, with the figures they were judged on; never an exit code.
	fmt.Fprintf(out, "\ntargets (figures, not pass/fail of the command):\n")
	at16 := byWriters[16]
	if t, ok := tpcbBy[16]; ok && t.rate() > 0 {
		r := at16.rate() / t.rate()
		fmt.Fprintf(out, "  16 writers over 64 contracts >= %.1f x TPC-B: %.0f / %.0f = %.2f  %s\n", targetRatio, at16.rate(), t.rate(), r, met(r >= targetRatio))
	} else {
		fmt.Fprintf(out, "  16 writers over 64 contracts >= %.1f x TPC-B: no TPC-B figure  not measured\n", targetRatio)
	}
	p99 := pct(at16.lat, .99)
	fmt.Fprintf(out, "  p99 at 16 writers over 64 contracts < %s: %s ms  %s\n", targetP99, ms(p99), met(len(at16.lat) > 0 && p99 < targetP99))
	fall := math.Min(byWriters[16].rate(), byWriters[32].rate()) / byWriters[4].rate()
	tpcbFall := "-"
	if len(tpcbBy) == len(writeLevels) && tpcbBy[4].rate() > 0 {
		tpcbFall = fmt.Sprintf("%.2f", math.Min(tpcbBy[16].rate(), tpcbBy[32].rate())/tpcbBy[4].rate())
	}
	fmt.Fprintf(out, "  throughput not falling from 4 to 32 writers: min(16, 32 writers) / 4 writers = %.2f (TPC-B the same: %s)  %s\n",
		fall, tpcbFall, met(fall >= 1))
	last := len(wc.History) - 1
	hr := ratioOf(pct(histLat[last], .5), pct(base, .5))
	note := ""
	if wc.History[last] != 100_000 {
		note = fmt.Sprintf(" (the issue says 100,000 prior; measured up to %d)", wc.History[last])
	}
	fmt.Fprintf(out, "  p50 with %d prior <= %.1f x with %d prior: %.2f%s  %s\n", wc.History[last], targetHistory, wc.History[0], hr, note, met(hr <= targetHistory))
	return nil
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

func ratioOf(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ownSection takes a section's advisory lock on the server of admin (each section drops and
// recreates the same databases, so one per server at a time) and returns the admin pool and
// a release that drops the section's databases, even after an interruption (a run that died
// is cleaned up by the next one's drop-and-recreate), and frees the lock.
func ownSection(ctx context.Context, admin, section string, lockKey int64, dbs []string, log io.Writer) (*sql.DB, func(), error) {
	adminDB, err := sql.Open("postgres", admin)
	if err != nil {
		return nil, nil, err
	}
	lock, err := adminDB.Conn(ctx)
	if err != nil {
		adminDB.Close()
		return nil, nil, err
	}
	var got bool
	if err := lock.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&got); err != nil || !got {
		lock.Close()
		adminDB.Close()
		if err == nil {
			err = fmt.Errorf("%s: another clbench is running this section against this server", section)
		}
		return nil, nil, err
	}
	return adminDB, func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, n := range dbs {
			if _, err := adminDB.ExecContext(c, `DROP DATABASE IF EXISTS `+n+` WITH (FORCE)`); err != nil {
				fmt.Fprintf(log, "%s: drop %s: %v\n", section, n, err)
			}
		}
		lock.Close()
		adminDB.Close()
	}, nil
}

// freshDB drops and recreates a benchmark database whose sessions commit synchronously
// (the private cluster's default is off), and returns its URL.
func freshDB(ctx context.Context, adminDB *sql.DB, admin, name string) (string, error) {
	for _, q := range []string{
		`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`,
		`CREATE DATABASE ` + name,
		`ALTER DATABASE ` + name + ` SET synchronous_commit = on`,
	} {
		if _, err := adminDB.ExecContext(ctx, q); err != nil {
			return "", fmt.Errorf("writes: %s: %w", q, err)
		}
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// showSetting reads a setting from a connection opened for the purpose.
func showSetting(ctx context.Context, dbURL, name string) (string, error) {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var v string
	err = db.QueryRowContext(ctx, `SHOW `+name).Scan(&v)
	return v, err
}

// writeContract is a contract in term today, large enough for every delivery of the section.
func writeContract(code string, today time.Time) ledger.Contract {
	dur, _ := ledger.ParseDurability("100")
	start := today.AddDate(-2, 0, 0)
	c := ledger.Contract{
		Code: code, Buyer: "Bench Buyer", Supplier: "Bench Supplier", Project: "Write benchmark " + code,
		Method: ledger.Methods[0], Country: "US", Region: "Region 1", Registry: "puro", Standard: "synthetic",
		Durability: dur, TermStart: start, TermEnd: today.AddDate(3, 0, 0), SignedOn: start.AddDate(0, 0, -30),
		Tonnes:       ledger.TonnesFromKg(10_000_000 * 1000), // ten million tonnes
		DeliveryMode: ledger.DeliverTransfer,
		Notes:        "synthetic write-benchmark contract",
	}
	if err := c.Validate(); err != nil {
		panic(fmt.Sprintf("bench contract %s: %v", code, err))
	}
	return c
}

// DeliveryHistory returns a contract's sealed history: the sign entry, then n deliveries of
// 1 t spread over the days from the term start to yesterday, each recorded on its day.
func DeliveryHistory(c ledger.Contract, n int, today time.Time) (*store.SealedHistory, error) {
	kinds := map[string]ledger.AccountKind{}
	for _, a := range c.Accounts().List(&c) {
		kinds[a.Code] = a.Kind
	}
	var pos ledger.Position
	apply := func(e ledger.Entry) {
		for _, p := range e.Postings {
			pos.Add(kinds[p.Account], e.Kind, p.Amount)
		}
	}
	sign := ledger.BuildSign(&c, "bench:"+c.Code+":sign")
	sign.ID, sign.Request = ledger.NewID(), ledger.RequestDigest("sign", sign.Key)
	if err := sign.Seal(1, ledger.GenesisHash, sign.EffectiveOn.Add(9*time.Hour)); err != nil {
		return nil, err
	}
	apply(sign)
	entries := make([]ledger.Entry, 0, n+1)
	entries = append(entries, sign)
	days := int(today.Sub(c.TermStart).Hours()/24) - 1 // the term start .. yesterday
	prev := sign.Hash
	for i := 0; i < n; i++ {
		day := c.TermStart.AddDate(0, 0, i*days/n)
		r := ledger.DeliverRequest{Contract: c.Code, Tonnes: ledger.MustTonnes("1"), Date: day, Key: fmt.Sprintf("bench:%s:%d", c.Code, i)}
		e, err := ledger.BuildDeliver(&c, c.Schedule, pos, r)
		if err != nil {
			return nil, fmt.Errorf("bench history %s: %w", c.Code, err)
		}
		e.ID, e.Request = ledger.NewID(), ledger.RequestDigest("deliver", r)
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("bench history %s: %w", c.Code, err)
		}
		// days never go back and the offset grows, so recorded times strictly increase
		if err := e.Seal(int64(i+2), prev, day.Add(9*time.Hour+time.Duration(i)*time.Millisecond)); err != nil {
			return nil, err
		}
		prev = e.Hash
		apply(e)
		entries = append(entries, e)
	}
	if bad := pos.Check(); len(bad) > 0 {
		return nil, fmt.Errorf("bench history %s: %v", c.Code, bad)
	}
	return &store.SealedHistory{Contract: c, Entries: entries}, nil
}

// seedWrites loads, in bulk, the contracts the section writes to: 64 to spread writers over,
// one every writer shares, and one per history size with that many prior deliveries.
func seedWrites(ctx context.Context, s *store.Store, sizes []int, today time.Time, log io.Writer) (spread []string, hot string, hist []string, err error) {
	var hs []*store.SealedHistory
	add := func(code string, n int) error {
		h, err := DeliveryHistory(writeContract(code, today), n, today)
		if err == nil {
			hs = append(hs, h)
		}
		return err
	}
	for i := range spreadOver {
		spread = append(spread, fmt.Sprintf("WRITE-%02d", i+1))
		if err := add(spread[i], spreadHistory); err != nil {
			return nil, "", nil, err
		}
	}
	hot = "WRITE-HOT"
	if err := add(hot, 0); err != nil {
		return nil, "", nil, err
	}
	start := time.Now()
	for i, n := range sizes {
		hist = append(hist, fmt.Sprintf("HISTORY-%d-%d", i+1, n))
		if err := add(hist[i], n); err != nil {
			return nil, "", nil, err
		}
	}
	fmt.Fprintf(log, "writes: generated histories of %v deliveries in %s\n", sizes, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	next := 0
	err = s.LoadSealed(ctx, func() (*store.SealedHistory, error) {
		if next == len(hs) {
			return nil, nil
		}
		next++
		return hs[next-1], nil
	}, nil)
	if err != nil {
		return nil, "", nil, fmt.Errorf("writes: load contracts: %w", err)
	}
	fmt.Fprintf(log, "writes: loaded %d contracts in %s\n", len(hs), time.Since(start).Round(time.Millisecond))
	return spread, hot, hist, nil
}

// deliverLevel runs n writers delivering 1 t at a time for warm+dur and measures the
// deliveries that started after the warm-up. Writer i takes the contracts j with j%n == i in
// turn, so writers share no contract while there are at least as many contracts as writers.
func deliverLevel(ctx context.Context, s *store.Store, n int, codes []string, warm, dur time.Duration, today time.Time, level int) (levelResult, error) {
	r, err := runLevel(ctx, n, codes, warm, dur, func(i, k int, code string) error {
		_, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: code, Tonnes: ledger.MustTonnes("1"), Date: today,
			Key: fmt.Sprintf("bench:write:%d:%d:%d", level, i, k)})
		return err
	})
	if err == nil && r.ops == 0 && r.firstErr != nil {
		err = fmt.Errorf("writes: every delivery failed at %d writers: %w", n, r.firstErr)
	}
	return r, err
}

// openFresh migrates the fresh database at url, saying so on log, and opens a store on it.
func openFresh(ctx context.Context, url, say string, log io.Writer) (*store.Store, error) {
	fmt.Fprintln(log, say)
	if _, err := store.Migrate(ctx, url); err != nil {
		return nil, err
	}
	return store.Open(ctx, url)
}

// runLevel runs n writers for warm+dur, each calling op on its own contracts in turn (writer i
// takes the contracts j with j%n == i; k counts its calls), and measures the calls that
// started after the warm-up: their latencies, errors, and the time from the warm-up's end to
// the last of them.
func runLevel(ctx context.Context, n int, codes []string, warm, dur time.Duration, op func(i, k int, code string) error) (levelResult, error) {
	start := time.Now()
	measureFrom, stop := start.Add(warm), start.Add(warm+dur)
	type writer struct {
		lat      []time.Duration
		errs     int
		firstErr error
		done     time.Time
	}
	ws := make([]writer, n)
	var wg sync.WaitGroup
	for i := range n {
		var mine []string
		for j, c := range codes {
			if j%n == i {
				mine = append(mine, c)
			}
		}
		if len(mine) == 0 {
			mine = []string{codes[i%len(codes)]}
		}
		wg.Add(1)
		go func(w *writer) {
			defer wg.Done()
			for k := 0; ctx.Err() == nil; k++ {
				t := time.Now()
				if !t.Before(stop) {
					break
				}
				err := op(i, k, mine[k%len(mine)])
				if t.Before(measureFrom) {
					continue
				}
				w.done = time.Now()
				if err != nil {
					if w.firstErr == nil {
						w.firstErr = err
					}
					w.errs++
					continue
				}
				w.lat = append(w.lat, w.done.Sub(t))
			}
		}(&ws[i])
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return levelResult{}, err
	}
	var r levelResult
	end := measureFrom
	for _, w := range ws {
		r.lat = append(r.lat, w.lat...)
		r.errs += w.errs
		if r.firstErr == nil {
			r.firstErr = w.firstErr
		}
		if w.done.After(end) {
			end = w.done
		}
	}
	slices.Sort(r.lat)
	r.ops, r.elapsed = len(r.lat), end.Sub(measureFrom)
	return r, nil
}

// historyLatency times single deliveries on each history contract, one writer, the
// contracts taken in turn (starting with a different one each round) so that a machine that
// slows down mid-way slows them all alike. A tenth as many rounds again warm up first.
func historyLatency(ctx context.Context, s *store.Store, codes []string, samples int, today time.Time) ([][]time.Duration, error) {
	out := make([][]time.Duration, len(codes))
	warm := max(samples/10, 5)
	for round := range warm + samples {
		for j := range codes {
			i := (round + j) % len(codes)
			t := time.Now()
			_, err := s.Deliver(ctx, ledger.DeliverRequest{Contract: codes[i], Tonnes: ledger.MustTonnes("1"), Date: today,
				Key: fmt.Sprintf("bench:history:%d:%d", i, round)})
			if err != nil {
				return nil, fmt.Errorf("writes: delivery on %s: %w", codes[i], err)
			}
			if round >= warm {
				out[i] = append(out[i], time.Since(t))
			}
		}
	}
	for _, l := range out {
		slices.Sort(l)
	}
	return out, nil
}

// pgbench runs the pgbench binary against one database.
type pgbench struct {
	path string
	uri  string   // libpq URI without the password
	env  []string // with PGPASSWORD
	dir  string   // per-transaction logs
}

// newPgbench finds pgbench beside the server binaries pgdev uses, else on PATH.
func newPgbench(dbURL string) (*pgbench, error) {
	path := ""
	if bin, err := pgdev.FindBinDir(); err == nil {
		if p := filepath.Join(bin, "pgbench"); fileExists(p) {
			path = p
		}
	}
	if path == "" {
		p, err := exec.LookPath("pgbench")
		if err != nil {
			return nil, errors.New("pgbench not found beside initdb nor on PATH (Debian: apt-get install postgresql-contrib, or postgresql)")
		}
		path = p
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), "PGAPPNAME=clbench-pgbench")
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			env = append(env, "PGPASSWORD="+pw) // kept off the command line
		}
		u.User = url.User(u.User.Username())
	}
	// lib/pq accepts parameters libpq does not; libpq refuses unknown ones
	q := u.Query()
	for _, k := range []string{"binary_parameters", "disable_prepared_binary_result"} {
		q.Del(k)
	}
	u.RawQuery = q.Encode()
	dir, err := os.MkdirTemp("", "clbench-pgbench-*")
	if err != nil {
		return nil, err
	}
	return &pgbench{path: path, uri: u.String(), env: env, dir: dir}, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (p *pgbench) cmd(ctx context.Context, args ...string) *exec.Cmd {
	// pgbench takes a connection URI where it takes a database name
	c := exec.CommandContext(ctx, p.path, append(args, p.uri)...)
	c.Env, c.Dir = p.env, p.dir
	return c
}

func (p *pgbench) init(ctx context.Context, scale int) error {
	out, err := p.cmd(ctx, "-i", "-s", strconv.Itoa(scale), "-q").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgbench -i: %v\n%s", err, out)
	}
	return nil
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// run warms up for warm seconds, then runs TPC-B for secs seconds with per-transaction logs,
// and returns pgbench's tps and the logged latencies.
func (p *pgbench) run(ctx context.Context, clients, warm, secs int) (levelResult, error) {
	c := strconv.Itoa(clients)
	if warm > 0 {
		if out, err := p.cmd(ctx, "-c", c, "-j", c, "-T", strconv.Itoa(warm), "-n").CombinedOutput(); err != nil {
			return levelResult{}, fmt.Errorf("pgbench warm-up: %v\n%s", err, out)
		}
	}
	prefix := filepath.Join(p.dir, "c"+c)
	out, err := p.cmd(ctx, "-c", c, "-j", c, "-T", strconv.Itoa(secs), "-n", "-l", "--log-prefix", prefix).CombinedOutput()
	if err != nil {
		return levelResult{}, fmt.Errorf("pgbench: %v\n%s", err, out)
	}
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return levelResult{}, fmt.Errorf("pgbench: no tps in its output:\n%s", out)
	}
	var r levelResult
	r.tps, _ = strconv.ParseFloat(string(m[1]), 64)
	logs, _ := filepath.Glob(prefix + ".*")
	if len(logs) == 0 {
		return r, fmt.Errorf("pgbench wrote no transaction log under %s", p.dir)
	}
	for _, name := range logs {
		if err := readPgbenchLog(name, &r); err != nil {
			return r, err
		}
		os.Remove(name)
	}
	slices.Sort(r.lat)
	r.ops = len(r.lat)
	return r, nil
}

// readPgbenchLog reads a per-transaction log: client_id transaction_no time script_no
// time_epoch time_us ..., time being the transaction's latency in microseconds (or "failed"
// / "skipped").
func readPgbenchLog(name string, r *levelResult) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		us, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			r.errs++
			continue
		}
		r.lat = append(r.lat, time.Duration(us)*time.Microsecond)
	}
	return sc.Err()
}
